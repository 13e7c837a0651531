"""Argument checks of the engine: every bad value gets an error that names the argument and what was expected."""
from __future__ import annotations

import numbers
from typing import Any, Iterable

__all__ = ["check_int", "check_choice"]


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int ≥ ``minimum``; ``TypeError``/``ValueError`` naming ``name`` otherwise.

    Example:
        >>> check_int("n_max", 5, 1)
        5
        >>> check_int("n_max", 0, 1)
        Traceback (most recent call last):
        ...
        ValueError: n_max must be >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, valid: Iterable[str]) -> str:
    """``value`` if it is one of ``valid``; otherwise a ``ValueError`` that lists them.

    Example:
        >>> check_choice("Config.loss", "hinge", ("ce", "focal"))
        Traceback (most recent call last):
        ...
        ValueError: Config.loss='hinge' is not valid; expected one of: ce, focal
    """
    valid = tuple(valid)
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; expected one of: {', '.join(valid)}")
    return value
