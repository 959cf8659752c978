"""The named key rules of an experiment's runs: how every random key of a chunk is derived.

A rule is data, `KeyRule(root)`: `rule(i)` is `jr.fold_in(jr.key(root), i)` and `rule()` is
`jr.key(root)`; `KeyRule(None)` numbers keys directly, `rule(i)` = `jr.key(i)`. The seeds of
NumPy's draws of data (a training set from its pool, a synthetic problem's noise terms) are rules
too, plain ints. An experiment's rules (`KeyRules`, the `keys` of its `Experiment` record) reach
its evaluate through the run context, so a module writes `run.keys.init(seed)`, never
`jr.fold_in(jr.key(0), seed)`, and no key or seed is a bare number inside a module.

The rules are part of every point's hash: a rule that differs from `ORIGINAL` (the rules every
stored row was made with) is hashed with the point, so a changed rule makes new rows and a resume
never mixes rows of two rules; the original rules add nothing, so every stored hash stays what it
was.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class KeyRule:
    """Keys numbered by an index i (a seed, a batch size, a checkpoint): `fold_in(key(root), i)`, or
    `key(root)` without an index; with root None, `key(i)` itself."""

    root: int | None

    def __call__(self, index: int | None = None):
        import jax.random as jr

        if self.root is None:
            if index is None:
                raise TypeError("a KeyRule(None) numbers keys by their index: rule(i)")
            return jr.key(index)
        key = jr.key(self.root)
        return key if index is None else jr.fold_in(key, index)

    @property
    def spec(self) -> str:
        """The rule as it is hashed: "fold_in(key(0), i)", or "key(i)" for root None."""
        return "key(i)" if self.root is None else f"fold_in(key({self.root}), i)"


@dataclasses.dataclass(frozen=True)
class KeyRules:
    """The key rules of an experiment's runs, by name.

    - init: a model's initialisation, `init(seed)` (shared by every dynamics and batch size, so that
      runs of one seed start from the same weights);
    - batches: SGD's (and SVAG's) batch draws, `batches()` or `batches(i)` for a chunk's own stream;
    - noise: the SDE's Brownian motion, `noise()`; Fig 9's sampled batches, `noise(i)`;
    - measure: measurements of a trained model (Lanczos, Hutchinson, noise probes), `measure(seed)`;
    - plain: keys numbered directly, `plain(i)` = `key(i)`: a run's own key split into named keys at
      its top (compare, measure), a stream numbered by the point (bopt-prediction's probes at
      checkpoint k, weak-order's Brownian motion at refinement r);
    - shared_path: the one Brownian path every refinement of weak-order's linear model shares,
      `shared_path()`;
    - lanczos: the start of departure's Lanczos runs (its top Hessian eigenvalue), `lanczos()`;
    - draw: the NumPy seed of a task's draw of its training set from the pool, where the point does
      not choose it (`tasks.net_data`, `tasks.train`; weak-order's and svag's tasks);
    - problem: the NumPy seed of a synthetic problem's noise terms (weak-order's quadratic,
      noise-shape's escape problem).
    """

    init: KeyRule = KeyRule(0)
    batches: KeyRule = KeyRule(1)
    noise: KeyRule = KeyRule(2)
    measure: KeyRule = KeyRule(3)
    plain: KeyRule = KeyRule(None)
    shared_path: KeyRule = KeyRule(7)
    lanczos: KeyRule = KeyRule(4)
    draw: int = 0
    problem: int = 1

    def changed(self) -> dict[str, str]:
        """The rules that differ from `ORIGINAL`, name -> spec: what a point's hash adds."""
        out = {}
        for field in dataclasses.fields(self):
            rule = spec(getattr(self, field.name))
            if ORIGINAL.get(field.name) != rule:
                out[field.name] = rule
        return out


def spec(rule: KeyRule | int) -> str:
    """A rule as it is hashed: a `KeyRule`'s spec, or "default_rng(s)" for a NumPy seed s."""
    if isinstance(rule, KeyRule):
        return rule.spec
    if isinstance(rule, bool) or not isinstance(rule, int):
        raise TypeError(f"a key rule is a KeyRule or an int seed (got {rule!r})")
    return f"default_rng({rule})"


# The rules every stored row (figures/, figures/paper/, ...) was made with, as specs. Never edit: a
# rule not listed here exactly enters the point hash, and its rows are new rows.
ORIGINAL = {
    "init": "fold_in(key(0), i)",
    "batches": "fold_in(key(1), i)",
    "noise": "fold_in(key(2), i)",
    "measure": "fold_in(key(3), i)",
    "plain": "key(i)",
    "shared_path": "fold_in(key(7), i)",
    "lanczos": "fold_in(key(4), i)",
    "draw": "default_rng(0)",
    "problem": "default_rng(1)",
}
