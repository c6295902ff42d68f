"""Argument checks shared by the layer and model constructors (S4 arXiv 2111.00396, DSS 2203.14343,
S4D 2206.11893, S5 2208.04933).

Each check names the argument, what it expects and what it got: a wrong type raises TypeError (a
string is never coerced, ``True`` is not an int), a value out of range raises ValueError.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_bool", "check_choice", "check_int", "check_probability", "check_n_ssm"]


def _got(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    """Raise a ValueError listing the valid values unless ``value`` is one of ``valid``."""
    if value not in valid:
        raise ValueError(f"unknown {name}={value!r}; valid values are {', '.join(map(repr, valid))}")
    return value


def check_bool(name: str, value) -> bool:
    """Raise a TypeError naming ``name`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool (True or False), got {_got(value)}")
    return value


def check_int(name: str, value, minimum: int = 1, what: str = "") -> int:
    """``value`` as an int: TypeError unless an integer (Python or numpy, not bool), ValueError below
    ``minimum``. ``what`` is added to the messages (e.g. "(N/2 complex modes)")."""
    suffix = f" {what}" if what else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}{suffix}, got {_got(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}{suffix}, got {value!r}")
    return int(value)


def check_probability(name: str, value) -> float:
    """``value`` as a float in [0, 1): TypeError unless a real number (not bool), ValueError outside."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {_got(value)}")
    p = float(value)
    if not (math.isfinite(p) and 0.0 <= p < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return p


def check_n_ssm(n_ssm, d_model: int) -> int:
    """The number of distinct SSM copies for ``n_ssm``: None gives ``d_model`` (one per channel).

    ``n_ssm = k`` must be a positive int dividing ``d_model``; channel h then uses copy ``h % k``.
    """
    if n_ssm is None:
        return d_model
    if isinstance(n_ssm, bool) or not isinstance(n_ssm, int):
        raise TypeError(f"n_ssm must be None or a positive int dividing d_model={d_model}, "
                        f"got {n_ssm!r} ({type(n_ssm).__name__})")
    if n_ssm < 1 or d_model % n_ssm:
        raise ValueError(f"n_ssm must be None or a positive int dividing d_model={d_model}, got {n_ssm!r}")
    return n_ssm
