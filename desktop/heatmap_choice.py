"""Words for the heatmap the reviewer looks at: whose map it is and how likely that class is.

A class activation map is scaled to its own maximum, so the map of a class the
model all but rules out looks as hot as the map of the class it predicted.
The class's probability is therefore printed next to every map, and below
:data:`UNLIKELY_BELOW` a sentence says that the map shows what would argue
for the class, not evidence that it is there.
"""

from __future__ import annotations

from collections.abc import Sequence

from desktop.folder_model import format_probability

UNLIKELY_BELOW = 0.05  # a map for a class below this probability is described as unlikely


def map_note(
    class_names: Sequence[str],
    probabilities: Sequence[float] | None,
    class_index: int,
    predicted_index: int | None,
) -> tuple[str, bool]:
    """(one line for the map of class ``class_index``, whether that class is unlikely)."""
    name = class_names[class_index] if 0 <= class_index < len(class_names) else f"#{class_index}"
    if probabilities is None or not 0 <= class_index < len(probabilities):
        return f"Map for {name}.", False
    p = float(probabilities[class_index])
    shown = format_probability(p)
    if class_index == predicted_index:
        return f"Map for {name}, the AI's class ({shown}).", False
    if p < UNLIKELY_BELOW:
        return f"{name} is unlikely here ({shown}): this map shows what would argue for it.", True
    ai = (
        f", not the AI's class ({class_names[predicted_index]})"
        if predicted_index is not None and 0 <= predicted_index < len(class_names)
        else ""
    )
    return f"Map for {name} ({shown}){ai}.", False


def class_label(name: str, probability: float | None) -> str:
    """A class as the "For class" list shows it: with this image's probability."""
    return name if probability is None else f"{name} ({format_probability(probability)})"
