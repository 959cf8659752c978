"""Where a figure stage writes: `Outputs`, the output folder and the preset's suffix."""

import dataclasses
import json
import pathlib

STANDARD_PRESETS = (None, "tiny", "quick", "paper")


@dataclasses.dataclass(frozen=True)
class Outputs:
    """The figures and numbers of one run. A preset other than tiny/quick/paper writes
    `<stem>-<preset>.png/.json` (`suffix` "-<preset>"), so a variant run in a shared folder never
    overwrites the standard preset's outputs (the rows share one file, told apart by their hash)."""

    folder: pathlib.Path
    suffix: str = ""

    @classmethod
    def of(cls, folder, preset: str | None) -> "Outputs":
        return cls(pathlib.Path(folder), "" if preset in STANDARD_PRESETS else f"-{preset}")

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
        """The numbers alone, as JSON."""
        path = self.path(stem, "json")
        path.write_text(json.dumps(numbers, indent=1, default=float))
        if announce:
            print(f"wrote {path}")
