"""The names the book gives its loss settings, and the order it lists them in: one function for each.

Every table, legend, claim and published row of the book names a loss setting with :func:`loss_label` and orders
rows with :func:`book_order`, so a label is spelled in one place.

Example:
    >>> loss_label("focal", 1), loss_label("focal-flsd53"), book_order(["FLSD-53", "CE", "mine"])
    ('focal γ=1', 'FLSD-53', ['CE', 'FLSD-53', 'mine'])
"""
from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LOSS_SETTINGS", "LOSS_LABELS", "loss_label", "book_order"]

#: The (loss, γ) settings the book trains, in its order. γ is None where the loss fixes it (CE, FLSD-53). Focal
#: γ = 3 is Mukhoti et al.'s fixed-γ setting, held against CE with FLSD-53 in chapter 6.
LOSS_SETTINGS: tuple[tuple[str, float | None], ...] = (
    ("ce", None),
    ("focal", 0.5),
    ("focal", 1.0),
    ("focal", 2.0),
    ("focal", 3.0),
    ("focal-flsd53", None),
    ("cb-focal", 1.0),
)

_LOSS_NAMES = {"ce": "CE", "focal": "focal", "focal-flsd53": "FLSD-53", "cb-focal": "CB focal",
               "sigmoid-focal": "sigmoid focal"}
_FIXED_GAMMA = ("ce", "focal-flsd53")


def loss_label(loss: str, gamma: float | None = None) -> str:
    """Human-readable name of a loss setting, used in every table, legend and claim of the book.

    Args:
        loss: a loss name of :class:`focal.engine.config.Config` (``"ce"``, ``"focal"``, ``"focal-flsd53"``,
            ``"cb-focal"``, ``"sigmoid-focal"``).
        gamma: the focusing parameter; ignored for losses that fix it (CE, FLSD-53).

    Returns:
        e.g. ``"CE"``, ``"focal γ=2"``, ``"FLSD-53"``, ``"CB focal γ=1"``.

    Example:
        >>> loss_label("focal", 0.5), loss_label("ce", 1.0), loss_label("cb-focal", 1.0)
        ('focal γ=0.5', 'CE', 'CB focal γ=1')
    """
    if loss not in _LOSS_NAMES:
        raise ValueError(f"loss must be one of {sorted(_LOSS_NAMES)}, got {loss!r}")
    name = _LOSS_NAMES[loss]
    if loss in _FIXED_GAMMA or gamma is None:
        return name
    return f"{name} γ={float(gamma):g}"


#: Labels of :data:`LOSS_SETTINGS` in the book's order; sigmoid focal, which a profile may add, goes last.
LOSS_LABELS: tuple[str, ...] = tuple(loss_label(loss, gamma) for loss, gamma in LOSS_SETTINGS) + (
    loss_label("sigmoid-focal", 1.0),)


def book_order(labels: Iterable[str]) -> list[str]:
    """Loss labels in the book's order (:data:`LOSS_LABELS`), unknown ones last in their given order.

    Example:
        >>> book_order(["FLSD-53", "mine", "CE"])
        ['CE', 'FLSD-53', 'mine']
    """
    labels = list(dict.fromkeys(labels))
    rank = {lab: i for i, lab in enumerate(LOSS_LABELS)}
    return sorted(labels, key=lambda lab: (rank.get(lab, len(rank)), labels.index(lab)))
