"""The experiment contract: key rules (the derivations every stored row was made with, part of the
point hash only where they change), evaluate as a top-level function a worker can receive, typed
reads, and outputs named by the preset."""

import dataclasses
import functools
import json
import pathlib
import pickle
import sys

import jax.random as jr
import numpy as np
import pytest

from experiments import registry
from experiments.runner.contract import RunContext, point_hash
from experiments.runner.keys import ORIGINAL, KeyRule, KeyRules, spec
from experiments.runner.outputs import Outputs

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _same(a, b):
    return np.array_equal(jr.key_data(a), jr.key_data(b))


def test_the_key_rules_are_the_derivations_the_stored_rows_were_made_with():
    keys = KeyRules()
    for index in (0, 1, 7, 30, 2**27):
        assert _same(keys.init(index), jr.fold_in(jr.key(0), index))
        assert _same(keys.batches(index), jr.fold_in(jr.key(1), index))
        assert _same(keys.noise(index), jr.fold_in(jr.key(2), index))
        assert _same(keys.measure(index), jr.fold_in(jr.key(3), index))
        assert _same(keys.plain(index), jr.key(index))
    for rule, root in (
        (keys.batches, 1),
        (keys.noise, 2),
        (keys.measure, 3),
        (keys.shared_path, 7),  # weak-order's linear model: once key(7)
        (keys.lanczos, 4),  # departure's Lanczos start: once key(4)
    ):
        assert _same(rule(), jr.key(root))
    assert (keys.draw, keys.problem) == (0, 1)  # NumPy seeds: the training set, a problem's noise
    assert keys.changed() == {} and set(ORIGINAL) == {f.name for f in dataclasses.fields(keys)}


def test_every_committed_row_keeps_its_hash():
    """The hash of every committed row's point under its experiment's key rules is the hash stored
    with it (so a resume finds every committed row, and a sweep started before the key rules were
    named appends rows the new code finds)."""
    experiments = {e.results_name: e for e in registry.experiments().values()}
    paths = sorted((ROOT / "figures").rglob("*.jsonl"))
    assert paths
    checked = 0
    for path in paths:
        raw = path.read_bytes()  # a sweep may be appending: only its complete lines
        for line in raw[: raw.rfind(b"\n") + 1].splitlines():
            row = json.loads(line)
            exp = experiments[row["experiment"]]
            assert point_hash(row["experiment"], row["config"], exp.keys) == row["hash"], path
            checked += 1
    assert checked > 1000


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(KeyRules)])
def test_a_changed_key_rule_is_a_new_hash(name):
    point = {"lr": 0.1, "batch_size": 10, "data": "embedded"}
    original = point_hash("fig4", point, KeyRules())
    assert original == point_hash("fig4", point)
    if isinstance(getattr(KeyRules(), name), int):  # a NumPy seed
        rules = (11, getattr(KeyRules(), name) + 1)
    else:
        rules = (KeyRule(11), KeyRule(None) if name != "plain" else KeyRule(0))
    for rule in rules:
        changed = dataclasses.replace(KeyRules(), **{name: rule})
        assert changed.changed() == {name: spec(rule)}
        assert point_hash("fig4", point, changed) != original


def test_every_evaluate_is_a_top_level_function_a_worker_receives_by_reference():
    for exp in registry.experiments().values():
        f = exp.evaluate
        assert getattr(sys.modules[f.__module__], f.__qualname__) is f, exp.name
        job = functools.partial(f, exp.context)
        assert pickle.loads(pickle.dumps(job)).func is f
        assert exp.context == RunContext(exp.results_name, exp.keys)


def test_reads_name_the_experiments_whose_rows_a_summary_reads():
    experiments = registry.experiments()
    assert experiments["bopt-prediction"].needs == ("fig5",)
    assert experiments["g-curve"].needs == ("fig5", "fig7", "fig6")
    assert experiments["g-curve"].optional == ("fig4",)
    assert experiments["minima"].needs == () and len(experiments["minima"].optional) == 4
    for exp in experiments.values():
        assert set(exp.needs + exp.optional) <= {e.results_name for e in experiments.values()}


def test_outputs_apply_the_preset_suffix(tmp_path):
    assert Outputs.of(tmp_path, "paper").path("fig1", "png") == tmp_path / "fig1.png"
    assert Outputs.of(tmp_path, None).path("fig2", "json") == tmp_path / "fig2.json"
    assert Outputs.of(tmp_path, "net").path("fig2", "json") == tmp_path / "fig2-net.json"
    Outputs.of(tmp_path, "net").json("measure", {"x": 1.0}, announce=False)
    assert json.loads((tmp_path / "measure-net.json").read_text()) == {"x": 1.0}


def test_a_worker_process_refuses_an_evaluate_it_cannot_receive():
    from experiments.runner import workers

    job = functools.partial(lambda run, points, seeds: [], RunContext("toy"))
    with pytest.raises(TypeError, match="top-level evaluate"):
        workers._check_picklable(job)


def test_fig9_reads_where_the_sde_parts_from_the_departure_rows_of_the_net():
    """The committed net departure run (figures/net/) gives the batch sizes fig9 states without it
    (38 tracks, 74 parts); the linear model's rows (figures/) say nothing about the net."""
    from experiments.paper import fig9
    from experiments.runner.sweep import load_rows

    cfg = fig9.Config()
    net = load_rows("departure", ROOT / "figures" / "net")
    found = fig9.departure_batch_sizes(fig9.Reads(departure=net), cfg)
    assert (found["tracks"], found["parts"]) == cfg.departure_batch_sizes == (38, 74)
    linear = fig9.departure_batch_sizes(fig9.Reads(load_rows("departure", ROOT / "figures")), cfg)
    assert linear["source"] == "departure-batch-sizes"
    assert fig9.departure_batch_sizes(fig9.Reads(), cfg)["tracks"] == 38


def test_every_json_of_a_net_run_records_the_net_setup(tmp_path):
    """A net config's JSON states its whole setup, defaults included (a reader never has to know
    which fields a point omits); a config whose model is not the net states none; numbers that
    state their own setup keep it. Fails if the setup is dropped, written for the linear model,
    or allowed to overwrite what a figure stage wrote."""
    from experiments.paper import batch_size
    from experiments.studies import collapse

    leaky = batch_size.Config(activation="leaky_relu")
    assert leaky.net_setup() == dict(activation="leaky_relu", init="default", inputs="pixels")
    assert collapse.Config().net_setup() is None  # the linear model by default
    assert collapse.Config(model="net").net_setup()["activation"] == "relu"

    out = Outputs.of(tmp_path, None, leaky.net_setup())
    out.json("a", {"slope": 0.5})
    out.json("b", {"activation": "tanh"})
    assert json.loads((tmp_path / "a.json").read_text()) == {**leaky.net_setup(), "slope": 0.5}
    assert json.loads((tmp_path / "b.json").read_text())["activation"] == "tanh"
    Outputs.of(tmp_path, None, None).json("c", {"slope": 0.5})
    assert json.loads((tmp_path / "c.json").read_text()) == {"slope": 0.5}
