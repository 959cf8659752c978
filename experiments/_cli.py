"""The `sgd-sde` command. Bad input: one line on stderr, exit code 2, nothing written."""

import argparse
import dataclasses
import os
import pathlib
import sys

EXPERIMENTS = {
    "compare": "SGD and its SDE side by side at the same noise scale g (shallow net, embedded MNIST)",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"sgd-sde: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sgd-sde", description="SGD and its SDE (Smith & Le 2018).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the experiments")
    cmp = sub.add_parser("compare", help=EXPERIMENTS["compare"])
    cmp.add_argument("--quick", action="store_true", help="the quick configuration (the default values)")
    cmp.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (tests)")
    cmp.add_argument("--out", default="figures", help="folder for the PNG and its numbers (default: figures)")
    cmp.add_argument("--mnist", default=None, help="folder with full MNIST (IDX files or mnist.npz); "
                     "default $SGD_SDE_MNIST, else the embedded 5,000 digits")
    for name, kind in [("lr", float), ("batch-size", int), ("momentum", float), ("l2", float),
                       ("steps", int), ("seeds", int), ("n-train", int), ("width", int),
                       ("refinement", int), ("record-every", int), ("seed", int)]:
        cmp.add_argument(f"--{name}", type=kind, default=None)
    cmp.add_argument("--scheme", choices=["euler", "semi-implicit"], default=None)
    return parser


def _enable_compilation_cache() -> None:
    import jax

    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "sgd-sde" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name, text in EXPERIMENTS.items():
            print(f"{name:<12}{text}")
        return 0
    from models import DataError
    from sim import InputError

    from . import compare

    try:
        base = compare.TINY if args.tiny else compare.QUICK
        overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(base)
                     if getattr(args, f.name, None) is not None}
        cfg = dataclasses.replace(base, **overrides).validate()
        out = pathlib.Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out} exists and is not a folder")
        if cfg.mnist is not None or os.environ.get("SGD_SDE_MNIST"):
            import models

            models.load_mnist(cfg.mnist)  # a missing or corrupt file fails here, before any output
        _enable_compilation_cache()
        compare.main(cfg, out)
    except (InputError, DataError) as err:
        print(f"sgd-sde: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
