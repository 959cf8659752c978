"""Rows from trajectories (one per seed), and rows grouped by their points."""


def final_rows(traj, **extra_per_seed) -> list[dict]:
    """One row per seed of a trajectory: final train loss, test accuracy and test cross-entropy, the
    model's diagnostics (e.g. `dead_fraction`), and whether (and when) the seed diverged."""
    return [
        final_row(traj, s, **{k: v[s] for k, v in extra_per_seed.items()})
        for s in range(traj.n_seeds)
    ]


def diagnostics_of(traj, r: int) -> dict:
    """Run r's final diagnostics (e.g. `dead_fraction`); empty for a model without any."""
    return {name: float(values[r, -1]) for name, values in traj.diagnostics.items()}


def final_row(traj, r: int, **extra) -> dict:
    """Run r's final metrics and diagnostics, and whether (and when) it diverged."""
    div = int(traj.diverged_step[r])
    return dict(
        traj.finals(r),
        diverged=div >= 0,
        diverged_step=div if div >= 0 else None,
        **extra,
    )


def group_rows(rows, key):
    """{key(row's point): [rows]}, in the order the keys first appear."""
    out = {}
    for row in rows:
        out.setdefault(key(row["config"]), []).append(row)
    return out
