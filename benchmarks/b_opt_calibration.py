"""Calibration of the B_opt estimator (`experiments.analysis.b_opt`) on synthetic sweeps whose
optimum is known, shaped like the paper-scale accuracy curves: a logistic cliff on the left
(accuracy falls to chance below B ~ 5-8), a gentle slope on the right, 4 seeds, seed noise growing
down the cliff, the paper's grid (2, 4, ..., 256) refined at 2^(1/2) around the coarse peak. Not a
speed benchmark and not a test: it measures how wrong the estimate may be where the peak is not a
parabola.

    python benchmarks/b_opt_calibration.py [--sweeps 200] [--draws 300]

For each shape: the median error of ln B_opt against the true argmax (bias), the rms error in ln B
and how often the 95% interval covers the truth, with a symmetric parabola as the control.
Writes benchmarks/b_opt_calibration.json.
"""

import argparse
import json
import math
import pathlib

import numpy as np

from experiments import analysis

SHAPES = {  # (cliff centre, cliff steepness, slope and curvature of the right side)
    "cliff 6.5, slope 0.009": (6.5, 5.0, 0.009, 0.004),
    "cliff 5, slope 0.006": (5.0, 4.0, 0.006, 0.002),
    "cliff 8, slope 0.012": (8.0, 6.0, 0.012, 0.003),
}
GRID = [2, 4, 8, 16, 23, 32, 45, 64, 128, 256]  # the paper grid refined around a coarse peak at 32


def cliff_curve(b, centre, steep, slope, curv):
    x, x0 = np.log(b), math.log(16)
    right = 0.92 - slope * (x - x0) - curv * (x - x0) ** 2
    return 0.1 + (right - 0.1) / (1 + np.exp(-steep * (x - math.log(centre))))


def calibrate(curve, truth, sweeps, draws, rng):
    grid = np.array(GRID, float)
    clean = curve(grid)
    errors, covered = [], 0
    for _ in range(sweeps):
        scores = clean + (0.0015 + 0.15 * (0.92 - clean)) * rng.standard_normal((4, grid.size))
        fit = analysis.b_opt(GRID, scores, draws=draws, seed=int(rng.integers(1 << 30)))
        errors.append(math.log(fit["b_opt"] / truth))
        lo, hi = fit["b_opt_ci95"]
        covered += lo <= truth <= hi
    errors = np.array(errors)
    return dict(
        bias_ln=float(np.median(errors)),
        rms_ln=float(np.sqrt(np.mean(errors**2))),
        coverage=covered / sweeps,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--draws", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    fine = np.geomspace(1, 300, 40_000)
    report = {}
    for name, params in SHAPES.items():
        curve = lambda b, p=params: cliff_curve(b, *p)  # noqa: E731
        truth = float(fine[np.argmax(curve(fine))])
        report[name] = dict(truth=truth, **calibrate(curve, truth, args.sweeps, args.draws, rng))
    symmetric = lambda b: 0.9 - ((np.log(b) - math.log(23.0)) / 1.5) ** 2 * 0.05  # noqa: E731
    report["symmetric parabola (control)"] = dict(
        truth=23.0, **calibrate(symmetric, 23.0, args.sweeps, args.draws, rng)
    )
    for name, r in report.items():
        print(
            f"{name}: true B_opt {r['truth']:.1f}; bias {r['bias_ln']:+.3f} (ln B), rms "
            f"{r['rms_ln']:.3f}, "
            f"95% interval covers {r['coverage']:.3f}"
        )
    pathlib.Path(__file__).with_suffix(".json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
