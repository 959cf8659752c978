"""Progress: a tqdm bar with ETA on a terminal, a few plain lines in CI logs and pipes."""

import sys
import time

from tqdm import tqdm


class Progress:
    """Context manager yielding a callback `done(k)` (k = steps done so far out of `total`)."""

    def __init__(self, total: int, label: str, *, stream=None, unit: str = "step"):
        self.total, self.label, self.unit = total, label, unit
        self.stream = stream if stream is not None else sys.stderr
        self.bar = None

    def __enter__(self):
        self.start = time.perf_counter()
        self.next_line = 0.25
        if self.stream.isatty():
            self.bar = tqdm(total=self.total, desc=self.label, unit=self.unit, file=self.stream,
                            dynamic_ncols=True)
        else:
            print(f"{self.label}: started ({self.total} {self.unit}s)", file=self.stream, flush=True)
        return self.update

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        elif done / self.total >= self.next_line or done == self.total:
            elapsed = time.perf_counter() - self.start
            eta = elapsed / done * (self.total - done) if done else float("nan")
            print(f"{self.label}: {done}/{self.total} {self.unit}s ({elapsed:.0f} s, ETA {eta:.0f} s)",
                  file=self.stream, flush=True)
            while self.next_line <= done / self.total:
                self.next_line += 0.25

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False
