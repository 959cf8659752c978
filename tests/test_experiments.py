"""Issue 4: every experiment end to end (tiny variants), the sweep runner's resume after kill -9,
repair of a half-written row, and bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from experiments._sweep import Results, run_sweep

FIGURES = ["fig1", "fig3", "fig4", "fig5", "fig6", "fig7", "fig8", "fig9", "weak-order", "side-by-side", "collapse",
           "departure", "noise-shape"]


def _cli(*args, cwd, **kwargs):
    return subprocess.run([sys.executable, "-m", "experiments", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900, **kwargs)


@pytest.mark.parametrize("name", FIGURES)
def test_tiny_experiment_end_to_end_and_resume(tmp_path, name):
    result = _cli(name, "--tiny", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs and all((tmp_path / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    rows = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines()]
    assert rows and all(len(r["hash"]) == 16 and "config" in r for r in rows)
    again = _cli(name, "--tiny", "--out", str(tmp_path), cwd=tmp_path)
    assert again.returncode == 0 and "already in" in again.stdout
    assert len(next(tmp_path.glob("*.jsonl")).read_text().splitlines()) == len(rows)


def _rows(path):
    return sorted((json.loads(line) for line in path.read_text().splitlines()),
                  key=lambda r: (r["hash"], r["seed"]))


def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    """Kill a sweep with SIGKILL once its first chunk is on disk; running the same command again must
    finish with exactly the rows of an uninterrupted run (same hashes, same numbers)."""
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    args = ["fig4", "--tiny", "--batch-sizes", "1,3,10,30,100", "--out"]
    proc = subprocess.Popen([sys.executable, "-m", "experiments", *args, str(killed)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = killed / "fig4.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (results.exists() and results.read_text().count("\n") >= 1):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = results.read_text().count("\n")
    assert 1 <= partial < 5, "the kill must land mid-sweep for this test to mean anything"
    resumed = _cli(*args, str(killed), cwd=tmp_path)
    assert resumed.returncode == 0 and f"{partial} of 5 points already in" in resumed.stdout
    assert _cli(*args, str(clean), cwd=tmp_path).returncode == 0
    assert _rows(results) == _rows(clean / "fig4.jsonl")


def test_half_written_row_is_cut_and_recomputed(tmp_path):
    calls = []

    def evaluate(points, seeds):
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
    evaluate = lambda points, seeds: [[{"v": p["x"]} for _ in seeds] for p in points]  # noqa: E731
    a = run_sweep("toy", tmp_path, [{"x": 1, "lr": 0.1}], seeds=[0], evaluate=evaluate)
    b = run_sweep("toy", tmp_path, [{"x": 1, "lr": 0.2}], seeds=[0], evaluate=evaluate)
    assert a[0]["hash"] != b[0]["hash"] and len((tmp_path / "toy.jsonl").read_text().splitlines()) == 2


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
    from experiments import weak_order

    cfg = weak_order.QUICK
    reference = weak_order.exact_sde(cfg)
    errors = [abs(weak_order.exact_em(cfg, r) - reference) for r in (16, 32, 64)]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(abs(q - 2) < 0.1 for q in ratios), ratios


def test_bopt_prediction_reads_a_sweep(tmp_path):
    """Study 6 runs on a Fig 4 sweep's rows in the same folder, and refuses to run without them."""
    missing = _cli("bopt-prediction", "--tiny", "--out", str(tmp_path), cwd=tmp_path)
    assert missing.returncode == 2 and "fig4.jsonl not found" in missing.stderr
    assert not list(tmp_path.iterdir())
    assert _cli("fig4", "--tiny", "--out", str(tmp_path), cwd=tmp_path).returncode == 0
    result = _cli("bopt-prediction", "--tiny", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    numbers = json.loads((tmp_path / "bopt-prediction.json").read_text())
    assert len(numbers["along_training"]) == 2 and numbers["along_training"][0]["b_simple"] > 0


def test_departure_crossing_is_exact_for_a_power_law():
    """NSR_B falls like 1/eps at fixed g: on ys = 10/x the log-log interpolation must find 1 at x = 10
    exactly, and report None when the ladder never reaches it."""
    from experiments.departure import crossing

    xs = [1.0, 3.0, 30.0, 100.0]
    assert crossing(xs, [10 / x for x in xs]) == pytest.approx(10.0, rel=1e-12)
    assert crossing(xs[:2], [10 / x for x in xs[:2]]) is None
