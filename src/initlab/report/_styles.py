"""How every arm is drawn, in the static figures (matplotlib) and in the interactive page (uPlot) alike.

Every arm keeps one look across figures: a colour, a line style and a marker, so that twelve arms stay apart on
screen and in greyscale print. This module imports neither matplotlib nor torch, so the interactive report, which
needs the styles and nothing else of the static figures, builds without loading them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from initlab.report._collect import StudyData

# Okabe & Ito's colour-blind-safe palette (2008) extended with four darker tones to reach twelve distinct hues.
COLORS = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
    "#000000", "#F0E442", "#7F3C8D", "#8C6D31", "#666666", "#117733",
)  # fmt: skip
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
# A matplotlib line style as a canvas dash pattern (CSS pixels: dash, gap, ...), for the interactive charts.
DASHES: dict[str, list[int]] = {"-": [], "--": [6, 4], "-.": [7, 3, 2, 3], ":": [2, 3]}


@dataclass(frozen=True)
class ArmStyle:
    """How one arm is drawn in every figure."""

    color: str
    linestyle: str
    marker: str

    def line(self) -> dict[str, Any]:
        """Keyword arguments of matplotlib's ``plot`` for this look."""
        return dict(color=self.color, linestyle=self.linestyle, marker=self.marker, markersize=5, linewidth=1.6)

    def web(self) -> dict[str, Any]:
        """This look for the interactive page: colour and canvas dash pattern."""
        return dict(color=self.color, dash=DASHES[self.linestyle])


def arm_styles(arms: Sequence[str]) -> dict[str, ArmStyle]:
    """A distinct (colour, line style, marker) per arm, in the study's arm order."""
    return {
        arm: ArmStyle(COLORS[i % len(COLORS)], LINESTYLES[i % len(LINESTYLES)], MARKERS[i % len(MARKERS)])
        for i, arm in enumerate(arms)
    }


def configuration_styles(data: StudyData) -> dict[str, ArmStyle]:
    """Styles for the learning curves of a sweep: each configuration in its arm's colour, with its grid point's line
    style and marker (distinct for up to twelve arms and twelve points); the arms' own labels keep their style."""
    arms = arm_styles(data.sweep_arms())
    points: dict[str, int] = {}
    out: dict[str, ArmStyle] = dict(arms)
    for c in data.configurations:
        index = points[c.arm] = points.get(c.arm, -1) + 1
        out[c.label] = ArmStyle(arms[c.arm].color, LINESTYLES[index % len(LINESTYLES)], MARKERS[index % len(MARKERS)])
    for label in data.arms:  # stored runs that the config does not list
        out.setdefault(label, arm_styles([label])[label])
    return out


def styles_for(data: StudyData) -> dict[str, ArmStyle]:
    """The styles of ``data``'s labels: per configuration in a sweep, per arm otherwise."""
    return configuration_styles(data) if data.configurations else arm_styles(data.arms)
