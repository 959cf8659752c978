"""Known answers for the minima study and the cliff study's summaries, on constructed rows (no
training).

minima: a curve whose accuracy peaks at B = 32 while its sharpness rises with B as B^0.5 exactly and
    its
evidence peaks at B = 32: B_opt by accuracy and by evidence near 32 with intervals that hold it, the
flattest minimum at the grid's left edge, the slope of ln sharpness on ln B 0.5, and the rank
correlation of accuracy with evidence +1 (monotone in each other by construction on the right
flank).
cliff: SGD curves whose cliff sits at B = 8 at every N and SDE curves whose cliff sits at B = N/125:
slope of ln B_cliff on ln N 0 and 1 (the two laws), within their intervals.
"""

import math

import numpy as np

from experiments.paper import minima
from experiments.studies import cliff

GRID = (2, 4, 8, 16, 32, 64, 128, 256)
SEEDS = 4
# Seed noise on accuracy 0.002 (the seed spread of a paper-scale curve); on ln sharpness 0.02.
RNG = np.random.default_rng(0)


def _row(experiment, config, seed, **values):
    return dict(
        experiment=experiment,
        hash=str(hash((tuple(sorted(config.items())), experiment))),
        seed=seed,
        config=config,
        diverged=False,
        diverged_step=None,
        **values,
    )


def _minima_rows():
    rows = []
    for b in GRID:
        config = dict(
            lr=0.1,
            momentum=0.9,
            n_train=1000,
            batch_size=b,
            steps=10000,
            l2=0.0,
            data="embedded",
            landscape=True,
        )
        for s in range(SEEDS):
            x = math.log(b / 32)
            rows.append(
                _row(
                    "fig4",
                    config,
                    s,
                    test_accuracy=0.9 - 0.02 * x**2 + 0.002 * RNG.standard_normal(),
                    sharpness=0.01 * b**0.5 * math.exp(0.02 * RNG.standard_normal()),
                    hessian_trace=0.1 * b**0.5,
                    w_norm_sq=500.0,
                    log_evidence=-400 - 30 * x**2 + 0.5 * RNG.standard_normal(),
                    dead_fraction=0.0,
                )
            )
    return rows


def test_minima_on_a_constructed_sweep():
    summary = minima.summarize([], minima.Config(draws=500), minima.Reads(fig4=_minima_rows()))
    (curve,) = summary["sources"]["fig4"]
    acc, ev, sharp = (curve["optima"][m] for m in ("test_accuracy", "log_evidence", "sharpness"))
    for fit in (acc, ev):
        assert abs(math.log(fit["b_opt"] / 32)) < 0.15
        assert fit["b_opt_ci95"][0] <= 32 <= fit["b_opt_ci95"][1]
    assert sharp["edge"] == "left" and sharp["b_opt"] == 2
    trend = curve["trend"]["sharpness"]
    assert abs(trend["slope"] - 0.5) < 3 * trend["se"] + 0.01
    corr = summary["rank_correlation"]["fig4"]["log_evidence"]
    assert corr["rho"] > 0.9 and corr["ci95"][0] > 0.5
    assert "fig5" not in summary["sources"]


def test_minima_trend_starts_above_the_dying_region():
    """The constructed sweep with its two smallest batch sizes dying (dead fraction 0.6, 0.3; a
    dying net's "sharpness" 0.5): the trend starts at B = 8, the first B from which on at most
    DEAD_MAX of the units are dead, and its ratio (B = 256 over B = 8: 32^0.5 = 5.66 by
    construction) and slope (0.5) lie in their intervals; the log evidence's difference from B = 8
    to 256 (-30 ln^2 8 + 30 ln^2 4 = -72.1 nats by construction) lies in its interval."""
    rows = []
    for r in _minima_rows():
        b = r["config"]["batch_size"]
        if b in (2, 4):
            r = dict(r, dead_fraction={2: 0.6, 4: 0.3}[b], sharpness=0.5)
        rows.append(r)
    summary = minima.summarize([], minima.Config(draws=500), minima.Reads(fig4=rows))
    (curve,) = summary["sources"]["fig4"]
    assert curve["trained_from"] == 8
    sharp = curve["trend"]["sharpness"]
    assert sharp["batch_sizes"][0] == 8 and sharp["seeds"] == 4
    assert sharp["ratio_ci95"][0] <= 32**0.5 <= sharp["ratio_ci95"][1]
    assert abs(math.log(sharp["ratio"] / 32**0.5)) < 0.05
    assert sharp["slope_ci95"][0] - 0.01 <= 0.5 <= sharp["slope_ci95"][1] + 0.01
    ev = curve["trend"]["log_evidence"]
    truth = -30 * math.log(256 / 32) ** 2 + 30 * math.log(8 / 32) ** 2
    assert ev["difference_ci95"][0] <= truth <= ev["difference_ci95"][1]
    # the evidence collapses onto g where two families share a bin (one here: no bin)
    assert summary["collapse"]["log_evidence"]["fixed_n"]["bins"] == []


def test_minima_ignores_rows_without_the_landscape():
    rows = [
        dict(r, config={k: v for k, v in r["config"].items() if k != "landscape"})
        for r in _minima_rows()
    ]
    assert minima.summarize([], minima.Config(draws=100), minima.Reads(fig4=rows))["sources"] == {}


def _fig6_rows(activation=None, shift=0.0):
    """Fig 6-like rows with the landscape at N = 500 and 1000 (B < N on the grid), sharpness
    0.01 B^0.5 (N/1000)^0.3 e^shift: `activation` marks another setup's sweep in the same file."""
    rng = np.random.default_rng(1)
    rows = []
    for n in (500, 1000):
        for b in GRID:
            config = dict(lr=0.1, momentum=0.9, n_train=n, batch_size=b, steps=2000, landscape=True)
            if activation:
                config["activation"] = activation
            for s in range(2):
                x = math.log(b / 32)
                rows.append(
                    _row(
                        "fig6",
                        config,
                        s,
                        test_accuracy=0.9 - 0.02 * x**2 + 0.002 * rng.standard_normal(),
                        sharpness=0.01
                        * b**0.5
                        * (n / 1000) ** 0.3
                        * math.exp(shift)
                        * math.exp(0.02 * rng.standard_normal()),
                        hessian_trace=0.1 * b**0.5 * math.exp(shift),
                        w_norm_sq=500.0,
                    )
                )
    return rows


def test_minima_keeps_net_setups_apart():
    """fig6.jsonl holding the leaky-ReLU control's curves beside the ReLU ones (sharpness e^2
    higher): the ReLU curves' B_opt, rank correlations and collapse across N are exactly those of
    the ReLU rows alone (the same points, the same bootstrap streams: compared with ==), and the
    leaky curves get their own, under "fig6, leaky_relu", as from the leaky rows alone; pooled,
    the leaky curves would enter every bin of g as the same (eps, m, N) families."""
    relu, leaky = _fig6_rows(), _fig6_rows("leaky_relu", shift=2.0)
    cfg = minima.Config(draws=200)
    both = minima.summarize([], cfg, minima.Reads(fig6=relu + leaky))
    alone = minima.summarize([], cfg, minima.Reads(fig6=relu))
    only_leaky = minima.summarize([], cfg, minima.Reads(fig6=leaky))
    assert len(both["sources"]["fig6"]) == 4
    relu_curves = [c for c in both["sources"]["fig6"] if "leaky" not in c["label"]]
    assert [c["optima"] for c in relu_curves] == [c["optima"] for c in alone["sources"]["fig6"]]
    assert both["rank_correlation"]["fig6"] == alone["rank_correlation"]["fig6"]
    leaky_key = "fig6, leaky_relu"
    assert both["rank_correlation"][leaky_key] == only_leaky["rank_correlation"][leaky_key]
    assert "fig6" not in only_leaky["rank_correlation"]
    for m in ("sharpness", "hessian_trace"):
        assert both["collapse"][m]["across_n"] == alone["collapse"][m]["across_n"]
        leaky_collapse = both["collapse"][m]["across_n, leaky_relu"]
        assert leaky_collapse == only_leaky["collapse"][m]["across_n, leaky_relu"]
        assert all(b["points"] == 2 for b in both["collapse"][m]["across_n"]["bins"])


def _cliff_rows():
    rows = []
    for n in (500, 1000, 4000):
        for dynamics, centre in (("sgd", 8.0), ("sde", n / 125)):
            for b in GRID:
                config = dict(
                    model="net",
                    dynamics=dynamics,
                    refinement=1,
                    lr=0.1,
                    momentum=0.9,
                    l2=0.0,
                    n_train=n,
                    batch_size=b,
                    steps=1500,
                    record_every=100,
                    g=0.0,
                    data="embedded",
                )
                for s in range(SEEDS):
                    # a logistic fall from 0.9 to chance, centred on the cliff, width 0.3 in ln B
                    acc = 0.1 + 0.8 / (1 + math.exp(-(math.log(b / centre)) / 0.3))
                    dead = 1 - (acc - 0.1) / 0.8
                    rows.append(
                        _row(
                            "cliff",
                            config,
                            s,
                            test_accuracy=acc + 0.003 * RNG.standard_normal(),
                            test_xent=1.0,
                            dead_fraction=dead,
                            dead_fraction_curve=[0.0, dead, dead],
                        )
                    )
    return rows


def test_cliff_slopes_tell_the_two_laws_apart():
    summary = cliff.summarize(_cliff_rows(), cliff.Config(n_trains=(500, 1000, 4000)))
    sgd, sde = summary["slopes"]["sgd r=1"], summary["slopes"]["sde r=1"]
    assert abs(sgd["slope"]) < 0.05 and sgd["slope_ci95"][0] <= 0 <= sgd["slope_ci95"][1] + 0.02
    assert (
        abs(sde["slope"] - 1) < 0.05
        and sde["slope_ci95"][0] - 0.02 <= 1 <= sde["slope_ci95"][1] + 0.02
    )
    for n in (500, 1000, 4000):
        c = summary["curves"][f"sgd r=1 N={n}"]
        # the cliff (half-way from the peak 0.9 to chance) of a symmetric logistic is its centre
        assert abs(math.log(c["b_cliff"] / 8)) < 0.1
        assert abs(math.log(c["b_half_dead"] / 8)) < 0.1
        assert c["dead_settled_change"] == [0.0] * len(GRID)
        assert (
            summary["same_n"][str(n)]["sde_over_sgd"]
            == summary["curves"][f"sde r=1 N={n}"]["b_cliff"] / c["b_cliff"]
        )


def _budget_rows(experiment, law, families):
    """Rows of `families` ((eps, m, updates), N = 1000) whose top eigenvalue is law(g, t) (t the
    SDE time eps updates/(1 - m)) with seed noise e^(0.02 z) on it."""
    rng = np.random.default_rng(2)
    rows = []
    for lr, m, steps in families:
        for b in GRID:
            config = dict(lr=lr, momentum=m, n_train=1000, batch_size=b, steps=steps)
            config["landscape"] = True
            g = lr * (1000 / b - 1) / (1 - m)
            for s in range(SEEDS):
                rows.append(
                    _row(
                        experiment,
                        config,
                        s,
                        test_accuracy=0.9 - 0.02 * math.log(b / 32) ** 2,
                        sharpness=law(g, lr * steps / (1 - m))
                        * math.exp(0.02 * rng.standard_normal()),
                    )
                )
    return rows


FIG7 = [(0.1, m, 10000) for m in (0.0, 0.5, 0.75, 0.875)]
# the paper's Fig 5 rule: updates proportional to 1/eps, equal SDE time
FIG5 = [(lr, 0.9, int(1000 / lr)) for lr in (0.025, 0.05, 0.1)]


def test_minima_collapses_sharpness_times_sde_time_onto_g():
    """A top eigenvalue 200 g^-0.3 / t (t = eps steps/(1 - m); the shape measured at paper scale):
    lambda t = 200 g^-0.3 is a function of g alone, over Fig 7's momenta at 10,000 updates and Fig
    5's learning rates at updates proportional to 1/eps pooled, so its collapse number (rms over
    bins of g of the spread over families, per seed s.e.) stays near the noise's: a bin two wide in
    g holds g^-0.3 varying by up to 2^0.3, a spread <= 0.21 in ln, against a per-seed s.e. of
    0.01, so < 25 (about 2 measured); the plain sharpness at Fig 7's equal budget differs between
    neighbouring m by ln 2 = 0.69 in a bin, less the 0.21 of g's width (> 40; 81 measured). t
    without its eps (steps/(1 - m)) or without its 1/(1 - m) fails the first bound; a lambda of g
    alone reverses the two on Fig 7."""
    cfg = minima.Config(draws=100)

    def numbers(law):
        reads = minima.Reads(
            fig7=_budget_rows("fig7", law, FIG7), fig5=_budget_rows("fig5", law, FIG5)
        )
        c = minima.summarize([], cfg, reads)["collapse"]
        return c["sharpness_time"]["fixed_n"]["rms_ratio"], c["sharpness"]["fixed_n"]["rms_ratio"]

    timed, plain = numbers(lambda g, t: 200 * g**-0.3 / t)
    assert timed < 25 and plain > 40, (timed, plain)
    timed, plain = numbers(lambda g, t: 0.2 * g**-0.3)
    assert plain < 25 and timed > 40, (timed, plain)


def test_minima_keeps_two_evidence_priors_apart():
    """Fig 4 run twice with the evidence, under lam = 1 (points without `evidence_prior`) and
    under lam = 0.01 (recorded in the point, the evidence then peaking at B = 8 instead of 32): two
    curves, each with the evidence optimum of its own rows (within the grid's half step of 8 and
    32), the other prior's curve labelled by it. Pooled, each (B, seed) would hold two evidence
    values and the optimum would sit between the two peaks."""
    from experiments.paper import batch_size

    unit = _minima_rows()
    small = []
    for r in _minima_rows():
        config = {**r["config"], "evidence": True, "evidence_prior": 0.01}
        x = math.log(r["config"]["batch_size"] / 8)
        small.append(
            {
                **_row("fig4", config, r["seed"]),
                **{k: v for k, v in r.items() if k not in ("config", "hash")},
                "log_evidence": -100 - 30 * x**2,
            }
        )
    out = minima.summarize([], minima.Config(draws=200), minima.Reads(fig4=unit + small))
    curves = {c["label"]: c["optima"]["log_evidence"]["b_opt"] for c in out["sources"]["fig4"]}
    assert len(curves) == 2, curves
    (lam_1,) = [b for label, b in curves.items() if "evidence prior" not in label]
    (lam_small,) = [b for label, b in curves.items() if "evidence prior 0.01" in label]
    assert abs(math.log(lam_1 / 32)) < 0.35 and abs(math.log(lam_small / 8)) < 0.35

    # a point records the prior only where the evidence is measured and the prior is not 1
    def prior_in(**kw):
        cfg = batch_size.Config(n_trains=(1000,), batch_sizes=(30,), lrs=(0.1,), **kw)
        return {p.get("evidence_prior") for p in batch_size.grid(cfg)}

    assert prior_in(landscape=True, evidence=True) == {None}
    assert prior_in(landscape=True, evidence=True, evidence_prior=0.01) == {0.01}
    assert prior_in(landscape=True, evidence=False, evidence_prior=0.01) == {None}
