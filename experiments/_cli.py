"""The `sgd-sde` command. Bad input: one line on stderr, exit code 2, nothing written.

Every experiment module has a frozen `Config` dataclass, `QUICK` and `TINY` instances and
`main(cfg, out)`; its options are the Config's fields (`--batch-size` for `batch_size`).
"""

import argparse
import contextlib
import dataclasses
import math
import os
import pathlib
import sys

from . import (bopt_prediction, collapse, compare, departure, fig1_2, fig3, fig4, fig5, fig6, fig7, fig8, fig9, measure,
               noise_shape, side_by_side, weak_order)

EXPERIMENTS = {
    "fig1": (fig1_2, "Figs 1-2: linear model, random vs informative labels, against lam"),
    "fig2": (fig1_2, "Figs 1-2 (the same sweep as fig1)"),
    "fig3": (fig3, "Fig 3: shallow net, momentum SGD at B = 30 against full batch"),
    "fig4": (fig4, "Fig 4: test accuracy after a fixed budget against B: an interior optimum"),
    "fig5": (fig5, "Fig 5: optimal B against eps (updates proportional to 1/eps), fitted slope"),
    "fig6": (fig6, "Fig 6: optimal B against N, fitted slope"),
    "fig7": (fig7, "Fig 7: optimal B against 1/(1 - m), fitted slope"),
    "fig8": (fig8, "Fig 8: Fig 3 with L2 = 0.1"),
    "fig9": (fig9, "Fig 9: gradient noise of single examples vs batches of 30, normality statistic"),
    "side-by-side": (side_by_side, "SGD and its SDE at equal g over many seeds, two-sample tests (issue 5, study 1)"),
    "collapse": (collapse, "test accuracy against g for pairs (eps, B) at equal g, SGD and SDE (issue 5, study 2)"),
    "departure": (departure, "raise eps at fixed g until the SDE parts from SGD; noise-to-signal criterion (issue 5, study 3)"),
    "noise-shape": (noise_shape, "gradient-shaped against isotropic noise: escape from a sharp minimum, net sharpness (issue 5, study 5)"),
    "bopt-prediction": (bopt_prediction, "does B_simple or eps N/((1-m) g_opt) predict B_opt? (issue 5, study 6)"),
    "weak-order": (weak_order, "weak order of Euler-Maruyama on the quadratic (issue 5, study 4, part)"),
    "compare": (compare, "SGD and its SDE side by side at the same noise scale g (shallow net)"),
    "measure": (measure, "train a model, then measure sharpness, evidence and gradient noise scale"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"sgd-sde: error: {message}\n")


def _option_type(field):
    default = field.default
    if isinstance(default, tuple):
        element = type(default[0]) if default else float

        def parse(text):
            try:
                return tuple(element(v) for v in text.split(",") if v.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected a comma-separated list of {element.__name__}") from None

        parse.__name__ = f"list of {element.__name__}"
        return parse
    return str if default is None else type(default)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sgd-sde", description="SGD and its SDE (Smith & Le 2018).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the experiments")
    for name, (module, text) in EXPERIMENTS.items():
        p = sub.add_parser(name, help=text, description=(module.__doc__ or "").strip())
        # One starting configuration at a time: two would leave the reader guessing which one ran.
        start = p.add_mutually_exclusive_group()
        start.add_argument("--quick", action="store_true", help="the quick configuration (the defaults)")
        start.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (tests)")
        p.add_argument("--out", default="figures", help="output folder (default: figures)")
        if hasattr(module, "PAPER"):
            start.add_argument("--paper", action="store_true", help="the paper-scale configuration")
        if hasattr(module, "PRESETS"):
            start.add_argument("--preset", choices=sorted(module.PRESETS), default=None,
                               help="start from a named configuration (flags still override it)")
        for field in dataclasses.fields(module.Config):
            p.add_argument("--" + field.name.replace("_", "-"), dest=field.name, default=None,
                           type=_option_type(field), help=f"default {field.default!r}")
    return parser


def _enable_compilation_cache() -> None:
    import jax

    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "sgd-sde" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")


@contextlib.contextmanager
def _timing():
    """Wall time of a run and the part of it spent compiling: the union of JAX's tracing, lowering,
    XLA-compile spans (reads from the persistent cache happen inside the last; nested traces are
    counted once)."""
    import time

    from jax import monitoring

    spans = []

    def listen(event, start, end, **kwargs):
        if event in _COMPILE_EVENTS:
            spans.append((start, end))

    monitoring.register_event_time_span_listener(listen)
    start = time.time()

    def report():
        wall = time.time() - start
        busy, reach = 0.0, -math.inf
        for a, b in sorted(spans):
            if b > reach:
                busy += b - max(a, reach)
                reach = b
        return f"time: {wall:.1f} s wall, of which {busy:.1f} s ({100 * busy / wall:.0f}%) compiling"

    try:
        yield report
    finally:
        monitoring.unregister_event_time_span_listener(listen)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name, (_, text) in EXPERIMENTS.items():
            print(f"{name:<17}{text}")
        return 0
    from models import DataError, load_mnist
    from sim import InputError

    module = EXPERIMENTS[args.command][0]
    try:
        base = module.TINY if args.tiny else (module.PAPER if getattr(args, "paper", False) else module.QUICK)
        if getattr(args, "preset", None):
            base = module.PRESETS[args.preset]
        overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(base)
                     if getattr(args, f.name) is not None}
        cfg = dataclasses.replace(base, **overrides).validate()
        out = pathlib.Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out} exists and is not a folder")
        if hasattr(module, "EXPERIMENT"):
            from ._sweep import Results

            Results(module.EXPERIMENT, out).check()
        if hasattr(cfg, "mnist") and (cfg.mnist is not None or os.environ.get("SGD_SDE_MNIST")):
            load_mnist(cfg.mnist)  # a missing or corrupt file fails here, before any output
        _enable_compilation_cache()
        with _timing() as report:
            module.main(cfg, out)
        print(report())
    except (InputError, DataError) as err:
        print(f"sgd-sde: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
