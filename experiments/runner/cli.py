"""The `sgd-sde` command, built from the registry. Bad input: one line on stderr, exit code 2,
nothing written; `--help`, `list` and bad input answer without importing JAX.

Every experiment is an `Experiment` record (`runner.contract`): its presets are the starting
configurations (`--preset NAME`, with `--tiny`, `--quick` and `--paper` as short forms), its config
fields the options (`--batch-size` for `batch_size`), each field's help its help. Outputs go to
`results/` unless `--out` says otherwise (`figures/` holds the committed reference runs).
"""

import argparse
import contextlib
import dataclasses
import difflib
import importlib.util
import os
import pathlib
import sys

from .. import registry
from . import timing
from .contract import flag, validate

OUT = "results"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"sgd-sde: error: {message}\n")

    def _check_value(self, action, value):
        """argparse's choice check, with "did you mean" for a near miss; an unknown experiment
        points to `sgd-sde list` rather than listing every name."""
        if action.choices is None or value in action.choices:
            return
        close = difflib.get_close_matches(str(value), [str(c) for c in action.choices], n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        if isinstance(action, argparse._SubParsersAction):
            raise argparse.ArgumentError(
                None, f"unknown experiment {value!r}{hint} (`sgd-sde list` lists them)"
            )
        raise argparse.ArgumentError(
            action,
            f"invalid choice: {value!r}{hint} (choose from {', '.join(map(str, action.choices))})",
        )


def _shown(value) -> str:
    """A default as it would be typed on the command line: 0.1, relu, 1,3,10, true, none."""
    if isinstance(value, tuple):
        return ",".join(_shown(v) for v in value)
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)


def _option_type(field):
    default = field.default
    if isinstance(default, tuple):
        element = type(default[0]) if default else float

        def parse(text):
            try:
                return tuple(element(v) for v in text.split(",") if v.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected a comma-separated list of {element.__name__}"
                ) from None

        parse.__name__ = f"list of {element.__name__}"
        return parse
    if isinstance(default, bool):

        def parse_bool(text):
            value = {
                "true": True,
                "yes": True,
                "1": True,
                "false": False,
                "no": False,
                "0": False,
            }.get(text.lower())
            if value is None:
                raise argparse.ArgumentTypeError("expected true or false")
            return value

        parse_bool.__name__ = "true or false"
        return parse_bool
    return str if default is None else type(default)


_SHORT = {
    "tiny": "a seconds-long smoke run (tests)",
    "quick": "the quick configuration (the default)",
    "paper": "the paper-scale configuration",
}


def _parser(experiments, aliases) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sgd-sde",
        description="SGD and its SDE (Smith & Le 2018). `sgd-sde list` lists the "
        "experiments with their run times.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="command"
    )
    sub.add_parser("list", help="list the experiments and their run times")
    also = {}
    for alias, name in aliases.items():
        also.setdefault(name, []).append(alias)
    for name, exp in experiments.items():
        module = sys.modules[exp.grid.__module__]
        p = sub.add_parser(
            name,
            aliases=also.get(name, []),
            help=exp.title,
            description=(module.__doc__ or exp.title).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # One starting configuration at a time: two would leave the reader guessing which one ran.
        start = p.add_mutually_exclusive_group()
        for preset, text in _SHORT.items():
            if preset in exp.presets:
                took = (
                    f" ({exp.times[preset]} on 2 cores)".replace("%", "%%")
                    if preset in exp.times
                    else ""
                )
                start.add_argument(
                    f"--{preset}",
                    dest="preset",
                    action="store_const",
                    const=preset,
                    help=text + took,
                )
        start.add_argument(
            "--preset",
            choices=list(exp.presets),
            default=None,
            help="start from a named configuration (flags still override it; default quick)",
        )
        p.add_argument(
            "--out",
            default=OUT,
            help=f"output folder (default: {OUT}; figures/ holds the committed reference runs)",
        )
        where = p.add_mutually_exclusive_group()
        where.add_argument(
            "--workers",
            type=int,
            default=None,
            help="run chunks in N local processes (default: one per GPU, else half the "
            "cores up to 8; 1 on a 2-core machine)",
        )
        where.add_argument(
            "--ray",
            nargs="?",
            const="local",
            default=None,
            metavar="ADDRESS",
            help="run chunks as Ray tasks on the cluster at ADDRESS (host:port or 'auto'); "
            "no ADDRESS starts a local Ray instance",
        )
        p.add_argument(
            "--no-pin",
            action="store_true",
            help="local workers see every core instead of one share each: their rows are then "
            "bit-identical to a serial run's at every batch size (XLA:CPU splits reductions "
            "over the examples by the cores a process sees), about 10%% slower on 2 cores",
        )
        quick = exp.presets["quick"]
        for field in dataclasses.fields(exp.config):
            text = field.metadata.get("help", "")
            default = f"quick: {_shown(getattr(quick, field.name))}".replace("%", "%%")
            p.add_argument(
                "--" + flag(field.name),
                dest=field.name,
                default=None,
                type=_option_type(field),
                help=f"{text} ({default})" if text else default,
            )
    return parser


def _list(experiments, aliases) -> None:
    print(
        "sgd-sde NAME [--tiny | --quick | --paper | --preset NAME]; wall time of each preset on 2 "
        "cores, "
        "compilation included (?: not measured)"
    )
    also = {}
    for alias, name in aliases.items():
        also.setdefault(name, []).append(alias)
    for section, title in registry.SECTIONS.items():
        names = [e for e in experiments.values() if e.section == section]
        if names:
            print(f"\n{title}:")
            for e in names:
                alias = f" (also {', '.join(also[e.name])})" if e.name in also else ""
                print(f"  {e.name:<17}{e.title}{alias}")
                print(
                    f"  {'':<17}  "
                    + ", ".join(f"{preset} {e.times.get(preset, '?')}" for preset in e.presets)
                )


def _enable_compilation_cache() -> str:
    import jax

    cache = (
        pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
        / "sgd-sde"
        / "jax"
    )
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return str(cache)


def _check_where(args) -> None:
    """Bad --workers or --ray, refused before anything starts."""
    from sim import InputError

    if args.workers is not None and args.workers < 1:
        raise InputError(f"workers must be >= 1 (got {args.workers})")
    if args.ray is not None and importlib.util.find_spec("ray") is None:
        raise InputError('--ray needs Ray: pip install -e ".[ray]"')


def _executor(args, cache: str):
    """Where chunks run: --ray, --workers N, or the machine's default
    (`workers.default_workers`)."""
    from . import workers

    if args.ray is not None:
        return workers.RayWorkers(None if args.ray == "local" else args.ray, cache_dir=cache)
    n = args.workers if args.workers is not None else workers.default_workers()
    return (
        workers.Serial()
        if n == 1
        else workers.LocalWorkers(
            n,
            cache_dir=cache,
            gpus=workers.gpu_count(),
            cores_per_worker=0 if args.no_pin else None,
        )
    )


@contextlib.contextmanager
def _timing():
    """Yields report() -> "time: ... s wall, of which ... s compiling"."""
    with timing.timed() as elapsed:

        def report():
            wall, busy = elapsed()
            return (
                f"time: {wall:.1f} s wall, of which {busy:.1f} s "
                f"({100 * busy / wall:.0f}%) compiling"
            )

        yield report


def main(argv=None) -> int:
    experiments = registry.experiments()
    aliases = registry.aliases(experiments)
    args = _parser(experiments, aliases).parse_args(argv)
    if args.command == "list":
        _list(experiments, aliases)
        return 0
    from models import DataError, load_mnist
    from sim import InputError

    exp = experiments[aliases.get(args.command, args.command)]
    try:
        base = exp.presets[args.preset or "quick"]
        overrides = {
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(base)
            if getattr(args, f.name) is not None
        }
        cfg = validate(dataclasses.replace(base, **overrides))
        out = pathlib.Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out} exists and is not a folder")
        _check_where(args)
        mnist = cfg.mnist
        if mnist is not None or os.environ.get("SGD_SDE_MNIST"):
            load_mnist(mnist)  # a missing or corrupt file fails here, before any output
        from .sweep import prepare, run

        # every check that reads: nothing written yet
        prepared = prepare(exp, cfg, out, preset=args.preset)
        cache = _enable_compilation_cache()
        executor = _executor(args, cache)
        with _timing() as report:
            run(exp, cfg, out, executor=executor, preset=args.preset, prepared=prepared)
        print(report())
    except (InputError, DataError) as err:
        print(f"sgd-sde: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
