"""Progress: a tqdm bar with ETA on a terminal, plain timed lines in CI logs and pipes.

Progress may be fractional: the runner counts a chunk in flight by the fraction of its steps done,
reported from inside the compiled loop, so a sweep whose first chunk takes hours still shows its
steps and an ETA within its first minute."""

import sys
import time

from tqdm import tqdm


def _duration(seconds: float) -> str:
    if seconds != seconds:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Context manager yielding a callback `done(k)` (k, possibly fractional, of `total` done).
    Plain lines: the first after `first` seconds, then every `every` seconds, and at the end."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream=None,
        unit: str = "step",
        first: float = 20.0,
        every: float = 60.0,
    ):
        self.total, self.label, self.unit = total, label, unit
        self.stream = stream if stream is not None else sys.stderr
        self.first, self.every = first, every
        self.bar = None

    def __enter__(self):
        self.start = time.perf_counter()
        self.next_line = self.start + self.first
        self.finished = False
        if self.stream.isatty():
            self.bar = tqdm(
                total=self.total,
                desc=self.label,
                unit=self.unit,
                file=self.stream,
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.2f}/{total} [{elapsed}<{remaining}]",
            )
        else:
            print(
                f"{self.label}: started ({self.total} {self.unit}s)", file=self.stream, flush=True
            )
        return self.update

    def update(self, done: float) -> None:
        if self.bar is not None:
            self.bar.n = done
            self.bar.refresh()
            return
        now = time.perf_counter()
        if self.finished:
            return
        if now >= self.next_line or done >= self.total:
            self.finished = done >= self.total
            elapsed = now - self.start
            eta = elapsed / done * (self.total - done) if done > 0 else float("nan")
            print(
                f"{self.label}: {done:.2f}/{self.total} {self.unit}s "
                f"({100 * done / self.total:.1f}%), "
                f"{_duration(elapsed)} elapsed, ETA {_duration(eta)}",
                file=self.stream,
                flush=True,
            )
            self.next_line = now + self.every

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False
