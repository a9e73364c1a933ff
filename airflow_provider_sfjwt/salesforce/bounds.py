"""One check for the package's whole-number settings: retries, sizes, parallelism, thresholds.

Such a setting can come from a DAG file (checked when the DAG is parsed, before any task runs)
or from a caller of the core functions; either way a bad value is refused with the same
:class:`~.errors.InvalidInputError`, naming the setting, its allowed range and what the limit
means, so the fix is clear from the message alone.
"""

from __future__ import annotations

import operator

from .errors import InvalidInputError

__all__ = ["whole_number"]


def whole_number(
    name: str, value: object, minimum: int, maximum: int | None = None, meaning: str = ""
) -> int:
    """``value`` as an ``int`` if it is a whole number from ``minimum`` to ``maximum`` (``None``:
    no upper limit); otherwise :class:`InvalidInputError`. ``meaning`` explains a limit in the
    message, e.g. ``"0: never send refused records again"``.

    Any integer type counts (``numpy.int64`` too), and so does a float without a fraction
    (``1e6``, as thresholds are often written); ``True``/``False``, text and ``2.5`` do not.
    """
    number = _whole(value)
    if number is None:
        raise InvalidInputError(f"{name} must be a whole number, not {value!r}")
    if number < minimum or (maximum is not None and number > maximum):
        allowed = f"{minimum} or more" if maximum is None else f"from {minimum} to {maximum}"
        explained = f" ({meaning})" if meaning else ""
        raise InvalidInputError(f"{name} must be {allowed}{explained}, not {value!r}")
    return number


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None
