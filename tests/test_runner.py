"""The sweep runner at scale: rows identical serial / local workers / Ray, resume after the driver
is killed under each, one driver per folder, progress from inside the compiled loop."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import jax.random as jr
import pytest

import models
import sim
from experiments.paper import batch_size
from experiments.runner import workers
from experiments.runner.sweep import driver_lock, run_sweep

# JAX runs threads in this process, and forking it can deadlock (JAX warns): local workers are
# spawned and a local Ray instance is started from a spawned process, never forked from here. Every
# fork of this process (os.fork, multiprocessing's fork, a subprocess with a preexec_fn: all run the
# at-fork hooks) is counted, and every test here asserts it made none.
_FORKS = []
os.register_at_fork(before=lambda: _FORKS.append(1))


@pytest.fixture(autouse=True)
def never_forks():
    before = len(_FORKS)
    yield
    assert len(_FORKS) == before, "this process forked (JAX warns of a deadlock)"


FIG4 = {e.name: e for e in batch_size.EXPERIMENTS}["fig4"]
# Five chunks (one per B) of two seeds, a few seconds each: enough for two workers to interleave.
CFG = dataclasses.replace(
    FIG4.presets["tiny"], batch_sizes=(1, 2, 5, 10, 20), n_trains=(50,), steps=30, seeds=2
)


def _sweep(out, executor, cfg=CFG, chunk_size=FIG4.chunk_size):
    return run_sweep(
        "fig4",
        out,
        batch_size.grid(cfg),
        seeds=[0, 1],
        evaluate=FIG4.evaluate,
        shape=FIG4.shape,
        chunk_size=chunk_size,
        executor=executor,
    )


def _lines(out):
    """The results file's rows, sorted: workers append chunks as they finish, so the ORDER of the
    lines may differ from a serial run's; the rows themselves must be byte-identical."""
    return sorted((out / "fig4.jsonl").read_text().splitlines())


KILLED_ARGS = (
    "fig4",
    "--tiny",
    "--batch-sizes",
    "1,2,5,10,20",
    "--n-trains",
    "50",
    "--steps",
    "30",
    "--seeds",
    "2",
)


@pytest.fixture(scope="module", autouse=True)
def cli_reference(request, tmp_path_factory):
    """The serial command-line run that
    `test_driver_killed_under_workers_resumes_to_the_serial_rows` compares with, started with the
    module (where that test is selected) so that it runs beside the tests before it: (its output
    folder, the process, its output)."""
    test = "test_driver_killed_under_workers_resumes_to_the_serial_rows"
    if not any(
        getattr(item, "originalname", item.name) == test and item.module.__name__ == __name__
        for item in request.session.items
    ):
        yield None
        return
    out = tmp_path_factory.mktemp("cli-serial")
    # a file, not a pipe that nobody reads yet
    with open(out.parent / f"{out.name}.log", "w+") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "experiments",
                *KILLED_ARGS,
                "--workers",
                "1",
                "--out",
                str(out),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        yield out, proc, log
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    rows = _sweep(out, workers.Serial())
    return out, rows


def test_local_workers_write_exactly_the_rows_of_a_serial_run(serial, tmp_path):
    out, rows = serial
    parallel = _sweep(tmp_path, workers.LocalWorkers(2))
    assert _lines(tmp_path) == _lines(out) and len(_lines(out)) == 10
    assert parallel == rows  # returned in grid order, whatever order the chunks finished in


def test_worker_assignments_one_gpu_or_one_core_set_each():
    """Several GPUs: one per worker, round robin (4 workers on 2 GPUs: 0, 1, 0, 1), cores unpinned;
    CPU: disjoint core sets covering the machine, or c cores each when asked, or none (c = 0); one
    unpinned worker."""
    assert workers.assignments(4, 2, [0, 1, 2, 3]) == ([0, 1, 0, 1], None)
    assert workers.assignments(2, 0, [0, 1, 2, 3]) == (None, [{0, 2}, {1, 3}])
    assert workers.assignments(1, 0, [4, 5], cores_per_worker=1) == (None, [{4}])
    assert workers.assignments(2, 1, [0, 1, 2, 3], cores_per_worker=2) == (None, [{0, 1}, {2, 3}])
    assert workers.assignments(1, 0, [0, 1]) == (None, None)
    assert workers.assignments(3, 0, [0, 1]) == (None, None)  # more workers than cores: no pinning
    assert workers.assignments(2, 0, [0, 1], cores_per_worker=0) == (None, None)  # --no-pin


def test_one_worker_per_gpu_writes_the_serial_rows(serial, tmp_path):
    """A smoke test of the multi-GPU path (worker k given CUDA_VISIBLE_DEVICES = k % 2) on the CPU,
    where JAX ignores the variable: the rows are still exactly the serial ones. Two of the five
    chunks (B = 1 and 2: one for each worker): the pool and its initialiser are what differ from the
    test above. (The mapping itself is tested in
    `test_worker_assignments_one_gpu_or_one_core_set_each`.)"""
    out, rows = serial
    parallel = _sweep(
        tmp_path, workers.LocalWorkers(2, gpus=2), dataclasses.replace(CFG, batch_sizes=(1, 2))
    )
    assert len(parallel) == 4 and all(row in rows for row in parallel)
    assert set(_lines(tmp_path)) == {
        line for line in _lines(out) if json.loads(line)["config"]["batch_size"] in (1, 2)
    }


def test_ray_writes_exactly_the_rows_of_a_serial_run_and_resumes(serial, tmp_path):
    """A real local Ray instance (2 CPUs). The results file starts with the first two chunks' rows,
    as a driver killed after two chunks leaves it: Ray computes only the other three."""
    pytest.importorskip("ray")  # installed by CI (pip install -e ".[test,ray]")
    out, _ = serial
    first = (out / "fig4.jsonl").read_text().splitlines()[:4]
    (tmp_path / "fig4.jsonl").write_text("\n".join(first) + "\n")
    _sweep(tmp_path, workers.RayWorkers(None, num_cpus=2))
    assert _lines(tmp_path) == _lines(out)
    assert (tmp_path / "fig4.jsonl").read_text().splitlines()[:4] == first  # kept, not recomputed


def _cli(*args, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "experiments", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def test_driver_killed_under_workers_resumes_to_the_serial_rows(cli_reference, tmp_path):
    """kill -9 of the driver and its two workers once some chunk is written; the same command again
    ends with exactly the rows of a serial run of the same command (float32, as the CLI runs)."""
    args = KILLED_ARGS
    killed = tmp_path / "killed"
    proc = _cli(*args, "--workers", "2", "--out", str(killed))
    results = killed / "fig4.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and results.read_text().count("\n") >= 2:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert 2 <= results.read_text().count("\n")
    again = _cli(*args, "--workers", "2", "--out", str(killed))
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    clean, serial_cli, log = cli_reference
    assert serial_cli.wait(timeout=600) == 0, log.seek(0) or log.read()
    assert _lines(killed) == _lines(clean)


def test_a_second_driver_on_the_same_folder_exits_2(tmp_path):
    """While one driver holds the folder's lock, a second one says so in one line and exits 2
    without computing or writing anything."""
    with driver_lock(tmp_path, "fig4"):
        proc = _cli("fig4", "--tiny", "--out", str(tmp_path))
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "already running fig4" in lines[0] and str(tmp_path) in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fig4.lock"]


def test_progress_is_reported_from_inside_the_compiled_loop():
    """One record interval of 200 steps (record_every = steps, as the batch-size sweeps run) still
    reports its progress about 20 times, increasing, ending at the run's total."""
    data = models.Dataset(
        jr.normal(jr.key(1), (16, 5)),
        jr.randint(jr.key(2), (16,), 0, 3),
        jr.normal(jr.key(3), (8, 5)),
        jr.randint(jr.key(4), (8,), 0, 3),
        3,
    )
    seen = []
    with sim.on_progress(lambda done, total: seen.append((done, total))):
        sim.run_sgd(
            models.ShallowNet(5, 7, 3, key=jr.key(0)),
            data,
            lr=0.1,
            batch_size=4,
            steps=200,
            key=jr.key(5),
            record_every=200,
        )
    assert len(seen) == 20 and all(t == 200 for _, t in seen)
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[0] == 10 and done[-1] == 200


def test_a_variant_preset_writes_its_own_outputs_beside_the_standard_ones(tmp_path):
    """A preset other than tiny/quick/paper writes <name>-<preset>.png/.json, so a variant run in a
    shared folder (fig5 --preset paper-updates beside fig5 --paper) never overwrites the standard
    preset's figure or numbers; the rows share one file."""
    from experiments.runner import sweep

    cfg = dataclasses.replace(CFG, batch_sizes=(1, 5), steps=10, seeds=1)
    sweep.run(FIG4, cfg, tmp_path, preset="paper")
    standard = (tmp_path / "fig4.json").read_text()
    sweep.run(FIG4, dataclasses.replace(cfg, steps=12), tmp_path, preset="variant")
    assert (tmp_path / "fig4-variant.png").exists() and (tmp_path / "fig4-variant.json").exists()
    assert (tmp_path / "fig4.json").read_text() == standard
    assert len((tmp_path / "fig4.jsonl").read_text().splitlines()) == 4  # 2 points x 1 seed, twice


def test_unpinned_workers_match_a_serial_run_where_reductions_over_the_batch_are_split(tmp_path):
    """B = 500 and 1000 of N = 1000: XLA:CPU splits the gradient's reduction over the examples by
    the cores a process sees, so workers pinned to one core each wrote other float32 rows than a
    serial run on this 2-core machine (measured); unpinned (`cores_per_worker=0`, the CLI's
    --no-pin), each worker sees what the serial run sees and the rows are byte-identical; so are a
    local Ray instance's. Five steps are enough to tell: pinned workers' rows differ from these
    serial ones after 5 steps as after 20 (measured, float64 as here), so a worker pinned by mistake
    fails this test."""
    cfg = dataclasses.replace(
        FIG4.presets["tiny"], batch_sizes=(500, 1000), n_trains=(1000,), steps=5, seeds=2
    )

    def rows(name, executor):
        _sweep(tmp_path / name, executor, cfg, chunk_size=1)
        return _lines(tmp_path / name)

    serial = rows("serial", workers.Serial())
    assert rows("unpinned", workers.LocalWorkers(2, cores_per_worker=0)) == serial
    try:
        import ray  # noqa: F401  (installed by CI; Ray's workers are unpinned too)
    except ImportError:
        return
    assert rows("ray", workers.RayWorkers(None, num_cpus=2)) == serial


def test_load_results_fills_the_setup_a_default_point_omits():
    """A default point records no `activation` (its hash predates the option); the table fills the
    default in, so grouping by activation keeps the ReLU rows (pandas drops NaN groups), and a
    result that was not measured stays missing. Fails if the fill is dropped (NaN, rows vanish from
    the groups) or applied to results (a sharpness the ReLU rows never measured reads as a
    number)."""
    import pathlib

    import experiments

    folder = pathlib.Path(__file__).parent.parent / "figures" / "paper"
    raw = [json.loads(line) for line in (folder / "fig5.jsonl").read_text().splitlines() if line]
    df = experiments.load_results("fig5", folder)
    assert len(df) == len({(r["hash"], r["seed"]) for r in raw})
    n_default = sum("activation" not in r["config"] for r in raw)
    assert 0 < n_default < len(raw)  # both kinds are committed, so the test has teeth
    assert df["config.activation"].notna().all()
    groups = df.groupby("config.activation").size()
    assert groups["relu"] + groups["leaky_relu"] == len(df)
    assert (df["config.landscape"] == False).sum() == sum(  # noqa: E712 (a column, not a bool)
        not r["config"].get("landscape") for r in raw
    )
    assert df.loc[df["config.landscape"] == False, "sharpness"].isna().all()  # noqa: E712


def test_load_results_fills_the_evidence_prior_a_unit_prior_point_omits(tmp_path):
    """Fig 4 with the evidence under lam = 1 (the point omits `evidence_prior`, as every stored
    point does) and under lam = 0.01 in one file: grouping by the prior keeps both runs' rows
    (pandas drops NaN groups). Fails if the fill misses the field or invents a value other than
    1."""
    import experiments

    rows = [
        dict(experiment="fig4", hash=h, seed=0, config=dict(batch_size=30, evidence=True, **c))
        for h, c in (("a", {}), ("b", {"evidence_prior": 0.01}))
    ]
    (tmp_path / "fig4.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    df = experiments.load_results("fig4", tmp_path)
    assert df.groupby("config.evidence_prior").size().to_dict() == {0.01: 1, 1.0: 1}
