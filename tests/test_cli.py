"""The command line: bad input gives one line and exit code 2 with nothing written; a tiny run works."""

import json
import subprocess
import sys

import pytest


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "experiments", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize(
    "args, word",
    [
        (["compare", "--lr", "0"], "lr"),
        (["compare", "--lr", "-0.5"], "lr"),
        (["compare", "--batch-size", "0"], "batch-size"),
        (["compare", "--batch-size", "1001"], "batch-size"),
        (["compare", "--momentum", "1"], "momentum"),
        (["compare", "--momentum", "-0.2"], "momentum"),
        (["compare", "--refinement", "0"], "refinement"),
        (["compare", "--steps", "0"], "steps"),
        (["compare", "--l2", "-1"], "l2"),
        (["fig99"], "invalid choice"),
        (["compare", "--mnist", "missing-folder"], "does not exist"),
        (["compare", "--frobnicate"], "unrecognized"),
        (["measure", "--k", "0"], "k must"),
        (["measure", "--k", "786"], "k must"),
        (["measure", "--probes", "0"], "probes must"),
        (["measure", "--model", "cnn"], "model must"),
        (["fig4", "--batch-sizes", "1,2000"], "exceeds N"),
        (["fig4", "--lrs", "0.1,-1"], "lrs must be > 0"),
        (["fig7", "--momenta", "0.5,1.0"], "momenta must"),
        (["fig1", "--lam-min", "0"], "lam-min must"),
        (["fig3", "--small-batch", "0"], "small-batch must"),
        (["fig9", "--batches", "0"], "batches must"),
        (["fig4", "--batch-sizes", "a,b"], "comma-separated"),
        (["departure", "--lrs", "0.2,0.1"], "lrs must be at least two increasing"),
        (["departure", "--noise-scale", "0"], "noise-scale must"),
        (["noise-shape", "--parts", "escape,cnn"], "parts must"),
        (["weak-order", "--linear-reference", "6"], "linear-reference must"),
        (["departure", "--quick", "--tiny"], "not allowed with"),
        (["fig5", "--tiny", "--paper"], "not allowed with"),
        (["side-by-side", "--preset", "net", "--quick"], "not allowed with"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, args, word):
    if word != "invalid choice":
        args = [*args, "--out", str(tmp_path / "out")]
    result = _cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0] and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_corrupt_mnist_is_one_line(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "mnist.npz").write_bytes(b"garbage")
    result = _cli("compare", "--mnist", str(folder), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_tiny_compare_end_to_end(tmp_path):
    """A seconds-long run of the main job: a table with both dynamics, a PNG and its numbers."""
    result = _cli("compare", "--tiny", "--out", str(tmp_path / "figs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SGD" in result.stdout and "SDE" in result.stdout and "test_accuracy" in result.stdout
    png = (tmp_path / "figs" / "compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads((tmp_path / "figs" / "compare.json").read_text())
    acc = numbers["sde"]["test_accuracy"]
    assert len(acc) == 2 and len(acc[0]) == len(numbers["sde"]["steps"])
    assert numbers["noise_scale"] == pytest.approx(0.1 * (100 / 30 - 1) / 0.1)
    assert "compare (2 points x 2 seeds): started" in result.stderr  # plain progress lines off a terminal


def test_list():
    result = subprocess.run([sys.executable, "-m", "experiments", "list"], capture_output=True, text=True)
    assert result.returncode == 0 and "compare" in result.stdout


def test_tiny_measure_end_to_end(tmp_path):
    result = _cli("measure", "--tiny", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    numbers = json.loads((tmp_path / "measure-logistic.json").read_text())
    assert numbers["evidence"]["method"].startswith("exact") and numbers["train_accuracy"] > 0.9
    assert "log evidence ratio" in result.stdout and "B_simple" in result.stdout
