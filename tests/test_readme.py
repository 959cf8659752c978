"""The README and docs/results.md as written: every ```python block runs, every `sgd-sde ...`
command they mention parses, names a registered experiment and one of its presets, and passes its
config's checks, and every local link points at a file that exists.

The python blocks of one file run in order in one namespace, as a reader would paste them into one
session (a later block may use an earlier one's names); a block that defines `EXPERIMENTS` is an
experiment module: it runs as a module of its own, and its tiny preset runs through the sweep
runner."""

import dataclasses
import pathlib
import re
import shlex
import sys
import types

import pytest

from experiments import registry
from experiments.runner import cli, contract, sweep, workers

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "results.md"]
README_MAX_LINES = 250

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks(path, language):
    return [m.group(2) for m in FENCE.finditer(path.read_text()) if m.group(1) == language]


def _prose(path):
    """The text outside fenced blocks."""
    return FENCE.sub("", path.read_text())


def _commands(path):
    """Every `sgd-sde ...` command: from inline code spans, and from the lines of bash blocks
    (comments cut). A generic mention (`sgd-sde <name> ...`, `sgd-sde ...`) is not a command."""
    lines = [
        line.split("#", 1)[0] for block in _blocks(path, "bash") for line in block.splitlines()
    ]
    return _commands_in(_prose(path), lines)


def _commands_in(text, lines=()):
    """The `sgd-sde ...` commands of the inline code spans of `text`, and of the bash `lines`."""
    spans = re.findall(r"`([^`\n]*)`", text)
    found = []
    for text in spans + list(lines):
        for m in re.finditer(r"(?:^|[\s;&|(])sgd-sde((?:\s+[^\s;&|)`]+)*)", text):
            argv = shlex.split(m.group(1))
            if argv and not argv[0].startswith(("<", "...")):
                found.append(argv)
    return found


def test_readme_is_a_guide():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    )
    assert "pip install -e . && sgd-sde compare --quick" in "\n".join(lines[:6])
    assert "python -m pytest" in "\n".join(lines[:6])


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_local_links_exist(path):
    """Markdown links and images to files of the repository (anchors and web addresses aside)."""
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(path)):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file = (path.parent / target.split("#", 1)[0]).resolve()
        assert file.exists(), f"{path.name} links to {target}, which does not exist"


def _experiment_blocks(path):
    return [code for code in _blocks(path, "python") if re.search(r"^EXPERIMENTS\s*=", code, re.M)]


def _module(code, monkeypatch, name="readme_experiment"):
    """The experiment module a block defines, importable by name while the test runs (the CLI
    reads its docstring; a worker would import its evaluate from it)."""
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(code, f"<{name}>", "exec"), module.__dict__)
    return module


def _known(path, monkeypatch):
    """The registered experiments, and those the file itself defines (its how-to's example)."""
    experiments = dict(registry.experiments())
    for code in _experiment_blocks(path):
        experiments.update((e.name, e) for e in _module(code, monkeypatch).EXPERIMENTS)
    return experiments


def _parser(experiments):
    """The command line's own parser for these experiments, and the command aliases (name ->
    name)."""
    aliases = registry.aliases(experiments)
    return cli._parser(experiments, aliases), aliases


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_commands_name_registered_experiments_and_presets(path, monkeypatch):
    experiments = _known(path, monkeypatch)
    parser, aliases = _parser(experiments)
    for argv in _commands(path):
        argv = [aliases.get(argv[0], argv[0])] + argv[1:]
        assert argv[0] == "list" or argv[0] in experiments, (
            f"{path.name}: sgd-sde {argv[0]} is not registered"
        )
        argv = [a for a in argv if a not in ("--help", "-h")]  # the help exits; the rest must parse
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{path.name}: `sgd-sde {shlex.join(argv)}` does not parse")
        if argv[0] == "list":
            continue
        exp = experiments[argv[0]]
        preset = args.preset or "quick"
        assert preset in exp.presets, f"{path.name}: sgd-sde {argv[0]} has no preset {preset}"
        base = exp.presets[preset]
        overrides = {
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(base)
            if getattr(args, f.name) is not None
        }
        contract.validate(dataclasses.replace(base, **overrides))


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_presets_in_a_table_row_belong_to_its_experiments(path, monkeypatch):
    """A table row naming `sgd-sde NAME` (e.g. the README's experiments) and presets in other cells
    (`--paper`, `--preset paper-epochs`): each preset is one of every named experiment's."""
    experiments = _known(path, monkeypatch)
    for row in (line for line in _prose(path).splitlines() if line.startswith("|")):
        names = {argv[0] for argv in _commands_in(row)}
        presets = set(re.findall(r"--(tiny|quick|paper)\b(?!-)", row)) | set(
            re.findall(r"--preset ([\w-]+)", row)
        )
        for name in names - {"list"}:
            assert name in experiments, f"{path.name}: sgd-sde {name} is not registered"
            unknown = presets - set(experiments[name].presets)
            assert not unknown, (
                f"{path.name}: sgd-sde {name} has no preset {', '.join(sorted(unknown))}: "
                f"{row[:80]}"
            )
            # where the registry has them
            for preset, time in getattr(experiments[name], "times", {}).items():
                assert path.name != "README.md" or time in row, (
                    f"{path.name}: sgd-sde {name}'s {preset} run time {time} missing"
                )


def test_every_registered_experiment_is_in_the_readme():
    named = {argv[0] for argv in _commands(ROOT / "README.md")}
    missing = set(registry.experiments()) - named
    assert not missing, f"README.md does not mention: {', '.join(sorted(missing))}"


def _run_experiment_module(code, tmp_path, monkeypatch, capsys):
    """The block as a module; each of its experiments' tiny preset through the sweep runner."""
    for exp in _module(code, monkeypatch).EXPERIMENTS:
        sweep.run(exp, exp.presets["tiny"], tmp_path, executor=workers.Serial())
        assert (tmp_path / f"{exp.results_name}.jsonl").read_text().strip()
        assert list(tmp_path.glob("*.png")) or exp.figure is None
        assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_examples_run(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the examples read the committed figures/ by relative path
    namespace = {"__name__": "__readme__"}
    for i, code in enumerate(_blocks(path, "python")):
        if code in _experiment_blocks(path):
            _run_experiment_module(code, tmp_path / f"experiment{i}", monkeypatch, capsys)
        else:
            exec(compile(code, f"<{path.name} block {i}>", "exec"), namespace)
