"""Where a figure stage writes: `Outputs`, the output folder and the preset's suffix."""

import dataclasses
import json
import pathlib

STANDARD_PRESETS = (None, "tiny", "quick", "paper")


@dataclasses.dataclass(frozen=True)
class Outputs:
    """The figures and numbers of one run. A preset other than tiny/quick/paper writes
    `<stem>-<preset>.png/.json` (`suffix` "-<preset>"), so a variant run in a shared folder never
    overwrites the standard preset's outputs (the rows share one file, told apart by their hash).
    Every JSON of a net run records the net's `setup` (activation, init, inputs)."""

    folder: pathlib.Path
    suffix: str = ""
    # the net's setup (activation, init, inputs) that every JSON of a net run records
    setup: dict | None = None

    @classmethod
    def of(cls, folder, preset: str | None, setup: dict | None = None) -> "Outputs":
        suffix = "" if preset in STANDARD_PRESETS else f"-{preset}"
        return cls(pathlib.Path(folder), suffix, setup)

    def path(self, stem: str, extension: str) -> pathlib.Path:
        """OUT/<stem><suffix>.<extension>."""
        return self.folder / f"{stem}{self.suffix}.{extension}"

    def save(self, fig, stem: str, numbers: dict, caption: str | None = None) -> None:
        """The figure as PNG (the caption under it, when there is one) and its numbers as JSON."""
        from .plotting import pyplot

        if caption is None:
            fig.tight_layout()
        else:
            fig.text(0.01, 0.005, caption, fontsize=7, va="bottom", ha="left", wrap=True)
            fig.tight_layout(rect=(0, 0.06, 1, 1))
        png = self.path(stem, "png")
        fig.savefig(png, dpi=110)
        pyplot().close(fig)
        self.json(stem, numbers, announce=False)
        print(f"wrote {png} and {self.path(stem, 'json')}")

    def json(self, stem: str, numbers: dict, *, announce: bool = True) -> None:
        """The numbers alone, as JSON (a net run's setup first, unless the numbers state it)."""
        path = self.path(stem, "json")
        numbers = {**(self.setup or {}), **numbers}
        path.write_text(json.dumps(numbers, indent=1, default=float))
        if announce:
            print(f"wrote {path}")
