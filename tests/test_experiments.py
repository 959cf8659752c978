"""Every experiment end to end (tiny variants), the sweep runner's resume after kill -9,
repair of a half-written row, and bad input."""

import concurrent.futures as cf
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from experiments.runner.sweep import Results, run_sweep

from experiments import registry

# Every registered experiment, from the registry: fig2 is fig1's sweep, compare and measure have
# their own end-to-end tests (test_cli.py), and those that read another's rows are tested below
# (minima, which only reads, in test_minima.py).
FIGURES = [
    name
    for name, e in registry.experiments().items()
    if not e.needs and name not in ("fig2", "compare", "measure", "minima")
]


def _cli(*args, cwd, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "experiments", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        **kwargs,
    )


KILL_9_ARGS = ("fig4", "--tiny", "--batch-sizes", "1,3,10,30,100")
# The longest tiny runs (25-55 s of CPU each on this class of machine), started first so that the
# two cores finish together (longest first); an experiment missing here only starts later.
LONGEST = ("cliff", "noise-shape", "side-by-side", "fig3-setups", "svag", "fig6", "departure")


def _selected(session, test):
    return [
        item
        for item in session.items
        if getattr(item, "originalname", item.name) == test and item.module.__name__ == __name__
    ]


def _kill_9_then_resume(folder):
    """A sweep killed with SIGKILL once its first chunk is on disk, then the same command again, in
    `folder`: (its results file, the rows it held after the kill, the second run)."""
    args = [*KILL_9_ARGS, "--out", str(folder)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments", *args],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results = folder / "fig4.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (
        results.exists() and results.read_text().count("\n") >= 1
    ):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = results.read_text().count("\n") if results.exists() else 0
    return results, partial, _cli(*args, cwd=folder)


def _bopt_prediction_on(fig5, folder):
    """`sgd-sde bopt-prediction --tiny` in `folder` holding the rows of the fig5 run `fig5` (a
    future of its folder and process): (folder, the process, or fig5's when that failed)."""
    fig5_out, made = fig5.result()
    if made.returncode != 0:
        return folder, made
    (folder / "fig5.jsonl").write_bytes((fig5_out / "fig5.jsonl").read_bytes())
    return folder, _cli("bopt-prediction", "--tiny", "--out", str(folder), cwd=folder)


@pytest.fixture(scope="module")
def background(request, tmp_path_factory):
    """The command-line runs this module's selected tests read but do not steer, started at once,
    each in its own fresh process exactly as a user types it, one per core (a tiny run spends most
    of its time compiling, on one core): {key: future of its outcome}. Every tiny run (its output
    folder and finished process), kill -9 and its resume, the uninterrupted run it is compared with,
    and bopt-prediction on fig5's rows."""
    tiny = _selected(request.session, "test_tiny_experiment_end_to_end_and_resume")
    names = [item.callspec.params["name"] for item in tiny]
    names.sort(key=lambda name: LONGEST.index(name) if name in LONGEST else len(LONGEST))
    bopt = bool(_selected(request.session, "test_bopt_prediction_reads_a_sweep"))
    if bopt and "fig5" not in names:
        names.append("fig5")
    kill_9 = bool(_selected(request.session, "test_kill_9_then_resume_equals_uninterrupted"))

    def run(key, args):
        out = tmp_path_factory.mktemp(key.replace(" ", "-"))
        return out, _cli(*args, "--out", str(out), cwd=out)

    jobs = [(name, run, name, (name, "--tiny")) for name in names]
    if kill_9:  # after the longest tiny runs: the two take about as long as one of them
        at = sum(name in LONGEST for name in names)
        jobs[at:at] = [
            ("kill-9", _kill_9_then_resume, tmp_path_factory.mktemp("killed")),
            ("kill-9 reference", run, "kill-9 reference", KILL_9_ARGS),
        ]
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    futures = {}
    with cf.ThreadPoolExecutor(max_workers=max(1, min(cores, 4))) as pool:
        for key, job, *args in jobs:
            futures[key] = pool.submit(job, *args)
        if bopt:  # after fig5's run, which has then started when this one waits for it
            futures["bopt-prediction"] = pool.submit(
                _bopt_prediction_on, futures["fig5"], tmp_path_factory.mktemp("bopt-prediction")
            )
        yield futures
        for future in futures.values():
            future.cancel()


class _MustNotRun:
    """The executor of a sweep that must find every row on disk: entered only to compute a chunk."""

    workers = 1

    def __enter__(self):
        raise AssertionError("the second run computed a chunk: the first one left rows out")


def _numbers(value):
    """Every number in a JSON value (nested lists flattened; booleans and None are not numbers)."""
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [float(value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


POSITIVE = math.ulp(0.0)  # a lower bound meaning "> 0"


def _bounds(key):
    """The range of a quantity by its name: accuracies and escape fractions in [0, 1],
    cross-entropies and losses >= 0, sharpness, B_simple and NSR_B > 0; anything else only
    finite."""
    if "accuracy" in key or key == "escaped":
        return 0.0, 1.0
    if "xent" in key or "loss" in key:
        return 0.0, math.inf
    if "eigenvalue" in key or key in ("b_simple", "nsr"):
        return POSITIVE, math.inf
    return -math.inf, math.inf


def _check_row(row):
    """One result row (one point and seed): every number finite unless the run diverged, each
    quantity in the range its name implies (`_bounds`), counts and times >= 0, and Fig 9's sample
    moments with excess kurtosis >= skew^2 - 2 (Pearson's inequality, exact for sample moments too),
    JB >= 0 and p in [0, 1]."""
    meta = {"config", "hash", "experiment", "seed", "diverged", "diverged_step"}
    for key, value in row.items():
        if key in meta:
            continue
        nums = _numbers(value)
        if not row["diverged"]:
            assert all(math.isfinite(v) for v in nums), (key, value)
        low, high = _bounds(key)
        assert all(low <= v <= high for v in nums if math.isfinite(v)), (key, value)
        if key in ("time", "steps", "dropped", "diverged_runs"):
            assert all(v >= 0 for v in nums), (key, value)
        if key.endswith("_stats"):  # fig9: (skew, excess kurtosis, JB, p)
            skew, kurt, jb, p = value
            assert kurt >= skew**2 - 2 - 1e-9 and jb >= 0 and 0 <= p <= 1, (key, value)
        if key == "batch_var_ratio":  # 1 in expectation; 200 batches: s.e. ~ 0.1
            assert 0.5 < value < 1.5, value


def _mean_in(triple, low, high=math.inf):
    """A (mean, s.e., n) triple as mean_se writes it: mean in [low, high] and s.e. >= 0 when there
    are values; NaN mean and no count when there are none."""
    mean, se, n = triple
    if n == 0:
        return math.isnan(mean)
    return low <= mean <= high and (math.isnan(se) if n == 1 else se >= 0)


def _check_numbers(name, out):
    """The headline numbers of each tiny run's JSON: finite and in range (structure alone is not
    enough: a NaN or a percentage where a fraction belongs would pass it)."""

    def load(stem):
        return json.loads((out / f"{stem}.json").read_text())

    if name == "fig1":
        for series in load("fig1")["series"].values():
            assert all(
                _mean_in(t, 0, 1) for t in series["train_accuracy"] + series["test_accuracy"]
            )
            assert all(_mean_in(t, 0) for t in series["test_xent"])
            assert all(_mean_in(t, -math.inf) for t in series["log_evidence_ratio"])
        claims = load("fig1")["claims"]  # fig1.json holds the claims fig2.json holds
        assert all(0 <= v <= 1 for k, v in claims.items() if "accuracy" in k)
        assert -1 <= claims["rank_correlation_evidence_vs_minus_test_xent"] <= 1
        assert all(math.isfinite(v) for v in claims.values())
    elif name in ("fig3", "fig8"):
        claims = load(name)["claims"]
        for key, value in claims.items():
            if "accuracy" in key:
                assert _mean_in(value, 0, 1) if isinstance(value, list) else 0 <= value <= 1, key
            if "xent" in key:
                assert _mean_in(value, 0), key
    elif name in ("fig4", "fig5", "fig6", "fig7"):
        numbers = load(name)
        for o in numbers["optima"].values():
            assert o["b_grid"] in o["batch_sizes"] and o["log_sigma"] > 0
            assert all(_mean_in(t, 0, 1) for t in o["accuracy"])
            means = [t[0] if t[2] else -math.inf for t in o["accuracy"]]
            # the best mean on the grid
            assert o["b_grid"] == o["batch_sizes"][means.index(max(means))]
            lo, hi = o["b_opt_ci95"]
            assert min(o["batch_sizes"]) <= o["b_opt"] <= max(o["batch_sizes"]) and lo <= hi
        if name != "fig4":
            assert math.isfinite(numbers["slope"]) and numbers["slope_grid_se"] > 0
            assert numbers["slope_ci95"][0] <= numbers["slope_ci95"][1]
    elif name == "fig9":
        c = load("fig9")["claims"]
        for part in ("single", "batch"):
            assert c[f"{part}_excess_kurtosis"] >= c[f"{part}_skew"] ** 2 - 2 - 1e-9
            assert c[f"{part}_jarque_bera"] >= 0 and 0 <= c[f"{part}_p_value"] <= 1
        assert 0.5 < c["batch_variance_over_theory"] < 1.5
        numbers = load("fig9")
        for state in numbers["states"]:
            # Exact finite-population moments obey Pearson's inequality K >= S^2 - 2 (checked on the
            # leading eigenvector's seed-mean curves, for which it still holds by convexity). The
            # Monte Carlo sample skewness within 6 bootstrap standard errors of the closed form: a
            # loose range check of the tiny run (200 batches; the sample skewness is biased toward 0
            # by O(1/n), so this is not a calibrated test; the closed forms are tested exactly in
            # tests/test_noise_shape.py).
            for s, k in zip(state["skew_top"]["mid"], state["kurtosis_top"]["mid"]):
                assert k >= s**2 - 2 - 1e-9
            assert state["mc_vs_exact_max_se"] < 6
            assert state["top_eigenvalue"] > 0 and 0 <= state["test_accuracy"] <= 1
    elif name == "weak-order":
        numbers = load("weak-order")
        assert all(d > 0 for d in numbers["dt"])
        assert all(e >= 0 and math.isfinite(e) for e in numbers["error"])
        assert math.isfinite(numbers["reference"]) and math.isfinite(numbers["slope"])
        for level in numbers["linear"]["levels"].values():
            assert all(math.isfinite(e) for e in level["error"]) and all(
                se >= 0 for se in level["se"]
            )
            assert math.isfinite(level["slope"]) and level["reference_mean"] >= 0
    elif name == "side-by-side":
        for key, test in load("side-by-side")["tests"].items():
            assert 0 <= test["ks"] <= 1 and 0 <= test["p"] <= 1, key
            bounds = _bounds(key.split()[-1])  # "SDE r=1 test_accuracy"
            assert _mean_in(test["sgd"], *bounds) and _mean_in(test["sde"], *bounds), key
    elif name == "collapse":
        for key, s in load("collapse")["summary"].items():
            assert all(0 <= a <= 1 for a in s["accuracy_over_eps"]), key
            assert s["spread"] >= 0 and s["seed_se"] >= 0, key
    elif name == "departure":
        numbers = load("departure")
        assert all(v > 0 for v in numbers["nsr"] + numbers["lambda_max"])
        lrs = [q["lr"] for q in numbers["rungs"]]
        assert all(q["g"] > 0 and q["batch_size"] >= 1 for q in numbers["rungs"])
        for ladder in numbers["sde"].values():
            assert ladder["parted_lr"] is None or ladder["parted_lr"] in lrs
            for c in ladder["comparisons"]:
                assert (
                    0 <= c["test_accuracy"]["sgd"][0] <= 1
                    and 0 <= c["test_accuracy"]["sde"][0] <= 1
                )
                assert c["train_loss"]["sgd"][0] >= 0 and c["test_xent"]["sde"][0] >= 0
    elif name == "noise-shape":
        numbers = load("noise-shape")
        assert all(0 <= e["final"] <= 1 and e["se"] >= 0 for e in numbers["escape"].values())
        assert all(k["rate"] > 0 and k["temperature"] > 0 for k in numbers["kramers"].values())
        for key, test in numbers["net"].items():
            bounds = _bounds(key.split()[-1])  # "gradient test_accuracy"
            assert _mean_in(test["sgd"], *bounds) and _mean_in(test["sde"], *bounds), key
    elif name == "svag":
        table = load("svag")["table"]
        assert (
            table["SVAG l=1"]["test_accuracy"]["mean_se"]
            == table["SGD"]["test_accuracy"]["mean_se"]
        )
        for road, e in table.items():
            assert (
                _mean_in(e["test_accuracy"]["mean_se"], 0, 1) and e["seconds_per_sde_time"] > 0
            ), road
            assert all(
                e[m]["mean_se"][0] >= 0 for m in ("w_norm_sq", "grad_norm_sq", "noise_trace")
            ), road
    elif name == "fig8-l2":
        numbers = load("fig8-l2")
        for e in numbers["ladder"]:
            assert e["mean_loss_l2"] == pytest.approx(e["l2"] / 100)  # tiny: N = 100
            assert _mean_in(e["small"], 0, 1) and _mean_in(e["full"], 0, 1)
        assert numbers["closes_at_l2"] is None or numbers["closes_at_l2"] in [
            e["l2"] for e in numbers["ladder"]
        ]
    elif name == "cliff":
        numbers = load("cliff")
        assert set(numbers["curves"]) == {
            f"{d} r=1 N={n}" for d in ("sgd", "sde") for n in (100, 200)
        }
        for c in numbers["curves"].values():
            assert all(_mean_in(t, 0, 1) for t in c["test_accuracy"] + c["dead_fraction"])
            assert all(_mean_in(t, 0) for t in c["sharpness"])
            assert all(0 <= v <= 1 for v in c["dead_settled_change"])
    elif name == "fig3-setups":
        numbers = load("fig3-setups")
        # tiny: 2 activations x 1 init x 2 preprocessings at the short budget, and the long budget
        # for the setups whose small batch trained
        assert len({(e["activation"], e["inputs"]) for e in numbers["table"]}) == 4
        for e in numbers["table"]:
            for side in ("small", "full"):
                acc, dead = e[side]["test_accuracy"], e[side]["dead"]
                assert e[side]["diverged"] == e[side]["runs"] or (
                    _mean_in(acc, 0, 1) and _mean_in(dead, 0, 1)
                )
    else:
        raise AssertionError(f"no plausibility checks for {name}")


@pytest.mark.parametrize("name", FIGURES)
def test_tiny_experiment_end_to_end_and_resume(background, capsys, name):
    """Each experiment's tiny run (`sgd-sde NAME --tiny`, in a fresh process): PNGs, one row per
    point and seed, numbers finite and in range, and a second run finds everything done: its sweep,
    the refinements of an adaptive grid included, computes no chunk and says so, and the summary is
    made again from the rows on disk (run here: the command line's own resume after a kill is tested
    below and in test_runner.py)."""
    out, result = background[name].result()
    assert result.returncode == 0, result.stderr
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs and all((out / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    rows = [json.loads(line) for line in next(out.glob("*.jsonl")).read_text().splitlines()]
    assert rows and all(len(r["hash"]) == 16 and "config" in r for r in rows)
    for row in rows:
        _check_row(row)
    _check_numbers(name, out)
    from experiments.runner import sweep

    exp = registry.experiments()[name]
    capsys.readouterr()
    sweep.run(
        dataclasses.replace(exp, figure=None),
        exp.presets["tiny"],
        out,
        executor=_MustNotRun(),
        preset="tiny",
    )
    assert "already in" in capsys.readouterr().out
    assert len(next(out.glob("*.jsonl")).read_text().splitlines()) == len(rows)


def _rows(path):
    return sorted(
        (json.loads(line) for line in path.read_text().splitlines()),
        key=lambda r: (r["hash"], r["seed"]),
    )


def test_kill_9_then_resume_equals_uninterrupted(background):
    """Kill a sweep with SIGKILL once its first chunk is on disk; running the same command again
    must finish with exactly the rows of an uninterrupted run (same hashes, same numbers). (Run in
    the background with the tiny runs: `_kill_9_then_resume`.)"""
    results, partial, resumed = background["kill-9"].result()
    assert 1 <= partial < 5, "the kill must land mid-sweep for this test to mean anything"
    assert resumed.returncode == 0 and f"{partial} of 5 points already in" in resumed.stdout
    clean, uninterrupted = background["kill-9 reference"].result()
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert _rows(results) == _rows(clean / "fig4.jsonl")


def test_half_written_row_is_cut_and_recomputed(tmp_path):
    calls = []

    def evaluate(run, points, seeds):
        calls.append([p["x"] for p in points])
        return [[{"value": p["x"] * 10 + s} for s in seeds] for p in points]

    points = [{"x": x} for x in range(4)]
    run_sweep("toy", tmp_path, points, seeds=[0, 1], evaluate=evaluate, chunk_size=2)
    path = tmp_path / "toy.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:5]) + lines[5][:17])  # a crash in the middle of the 6th row
    calls.clear()
    rows = run_sweep("toy", tmp_path, points, seeds=[0, 1], evaluate=evaluate, chunk_size=2)
    assert calls == [[2, 3]]  # only the chunk with missing rows, recomputed whole
    assert [r["value"] for r in rows] == [0, 1, 10, 11, 20, 21, 30, 31]
    assert len(path.read_text().splitlines()) == 8 and path.read_text().endswith("\n")


def test_changed_config_is_a_new_hash(tmp_path):
    evaluate = lambda run, points, seeds: [[{"v": p["x"]} for _ in seeds] for p in points]  # noqa: E731
    a = run_sweep("toy", tmp_path, [{"x": 1, "lr": 0.1}], seeds=[0], evaluate=evaluate)
    b = run_sweep("toy", tmp_path, [{"x": 1, "lr": 0.2}], seeds=[0], evaluate=evaluate)
    assert (
        a[0]["hash"] != b[0]["hash"] and len((tmp_path / "toy.jsonl").read_text().splitlines()) == 2
    )


def test_folder_with_another_experiments_results(tmp_path):
    Results("fig5", tmp_path).append([{"experiment": "fig5", "hash": "0" * 16, "seed": 0}])
    (tmp_path / "fig4.jsonl").write_text((tmp_path / "fig5.jsonl").read_text())
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _cli("fig4", "--tiny", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "holds results of experiment 'fig5'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_euler_maruyama_weak_order_one_on_the_quadratic():
    """Exact EM moments against the exact OU solution: halving dt halves the weak error once
    dt * lambda_max(A) is small (ratios within 5% of 2 at r = 16 -> 32 -> 64)."""
    from experiments.studies import weak_order

    cfg = weak_order.Config()
    reference = weak_order.exact_sde(cfg)
    errors = [abs(weak_order.exact_em(cfg, r) - reference) for r in (16, 32, 64)]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(abs(q - 2) < 0.1 for q in ratios), ratios


def test_bopt_prediction_reads_a_sweep(background, tmp_path):
    """bopt-prediction declares that it reads fig5's rows: without them it says which command makes
    them (one line, exit 2, nothing written); with them (those of `sgd-sde fig5 --tiny`) it runs."""
    missing = _cli("bopt-prediction", "--tiny", "--out", str(tmp_path), cwd=tmp_path)
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(lines) == 1 and "sgd-sde fig5 --tiny" in lines[0]
    assert not list(tmp_path.iterdir())
    out, result = background["bopt-prediction"].result()  # `_bopt_prediction_on`, with fig5's rows
    assert result.returncode == 0, result.stderr
    numbers = json.loads((out / "bopt-prediction.json").read_text())
    assert len(numbers["along_training"]) == 2 and numbers["along_training"][0]["b_simple"] > 0


def test_departure_crossing_is_exact_for_a_power_law():
    """NSR_B falls like 1/eps at fixed g: on ys = 10/x the log-log interpolation must find 1 at x =
    10 exactly, and report None when the ladder never reaches it."""
    from experiments.studies.departure import crossing

    xs = [1.0, 3.0, 30.0, 100.0]
    assert crossing(xs, [10 / x for x in xs]) == pytest.approx(10.0, rel=1e-12)
    assert crossing(xs[:2], [10 / x for x in xs[:2]]) is None
