"""An experiment's rows as a table, for notebooks."""

import pathlib

from .tasks import EVIDENCE_PRIOR, SETUP_DEFAULTS

# The point fields recorded only where they differ from these defaults.
OMITTED_DEFAULTS = {
    **SETUP_DEFAULTS,
    "landscape": False,
    "evidence": False,
    "evidence_prior": EVIDENCE_PRIOR,
}


def load_results(name: str, out="results"):
    """The rows of experiment `name` in folder `out` as a pandas DataFrame: one row per point and
    seed, the point's config flattened into columns (`config.lr`, `config.batch_size`, ...), then
    the results (`test_accuracy`, `diverged`, ...). A point records its net setup and its landscape
    switches only where they differ from the defaults (so that default points keep their hash); here
    every row carries them once any row does (`config.activation` "relu" rather than missing), so
    grouping by them never drops the default rows. A result a row did not measure stays missing.
    Rows of the same point and seed appear once (the first written, as the runner itself reads
    them). Experiments that share one sweep (fig1 and fig2) share its rows. Missing results:
    `sim.InputError` saying which command makes them.

    `out` defaults to where the command line writes (`results/`); the committed reference runs are
    in `figures/` (quick presets) and `figures/paper/` (paper scale)."""
    import pandas as pd

    from .. import registry
    from .sweep import load_rows

    experiments = registry.experiments()
    stem = experiments[name].results_name if name in experiments else name
    rows = load_rows(stem, pathlib.Path(out))
    df = pd.json_normalize(rows, sep=".")
    for key, default in OMITTED_DEFAULTS.items():
        if f"config.{key}" in df:
            df[f"config.{key}"] = (
                df[f"config.{key}"].astype(object).where(df[f"config.{key}"].notna(), default)
            )
    return df
