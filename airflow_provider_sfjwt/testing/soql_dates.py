"""SOQL relative date literals (``TODAY``, ``LAST_N_MONTHS:3``, ``THIS_FISCAL_YEAR``, ...).

Each literal stands for a range of whole days relative to today; ``=`` matches inside it, ``<``
before its first day, ``>`` after its last day. The emulated user's locale is ``en_GB`` (weeks
start on Monday), its time zone UTC, and the org's fiscal year is the calendar year (the default
for a new org), so the FISCAL literals equal their calendar counterparts.
"""

from __future__ import annotations

import datetime as dt

_FIXED = {
    "yesterday",
    "today",
    "tomorrow",
    "last_week",
    "this_week",
    "next_week",
    "last_month",
    "this_month",
    "next_month",
    "last_90_days",
    "next_90_days",
    "this_quarter",
    "last_quarter",
    "next_quarter",
    "this_year",
    "last_year",
    "next_year",
    "this_fiscal_quarter",
    "last_fiscal_quarter",
    "next_fiscal_quarter",
    "this_fiscal_year",
    "last_fiscal_year",
    "next_fiscal_year",
}
_WITH_N = {
    "last_n_days",
    "next_n_days",
    "n_days_ago",
    "last_n_weeks",
    "next_n_weeks",
    "n_weeks_ago",
    "last_n_months",
    "next_n_months",
    "n_months_ago",
    "last_n_quarters",
    "next_n_quarters",
    "n_quarters_ago",
    "last_n_years",
    "next_n_years",
    "n_years_ago",
    "last_n_fiscal_quarters",
    "next_n_fiscal_quarters",
    "n_fiscal_quarters_ago",
    "last_n_fiscal_years",
    "next_n_fiscal_years",
    "n_fiscal_years_ago",
}
NAMES = _FIXED | _WITH_N


def needs_number(name: str) -> bool:
    return name in _WITH_N


def _month_start(day: dt.date, shift: int) -> dt.date:
    """First day of the month ``shift`` months from ``day``'s month."""
    index = day.year * 12 + day.month - 1 + shift
    return dt.date(index // 12, index % 12 + 1, 1)


def _unit_start(today: dt.date, unit: str, shift: int) -> dt.date:
    """First day of the week/month/quarter/year ``shift`` units from the current one."""
    if unit == "week":
        return today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=shift)
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    first = _month_start(today, 0)
    if unit == "quarter":
        first = dt.date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    elif unit == "year":
        first = dt.date(today.year, 1, 1)
    return _month_start(first, shift * months)


def day_range(name: str, n: int, today: dt.date) -> tuple[dt.date, dt.date]:
    """The first day and the day after the last day of literal ``name`` (``n`` for ``:n``)."""
    one = dt.timedelta(days=1)
    if name in ("today", "yesterday", "tomorrow"):
        day = today + one * {"today": 0, "yesterday": -1, "tomorrow": 1}[name]
        return day, day + one
    if name == "last_90_days":
        return today - 90 * one, today + one
    if name == "next_90_days":
        return today + one, today + 91 * one
    if name == "last_n_days":
        return today - n * one, today + one
    if name == "next_n_days":
        return today + one, today + (n + 1) * one
    if name == "n_days_ago":
        return today - n * one, today - (n - 1) * one
    name = name.replace("fiscal_", "")
    unit = next(u for u in ("week", "month", "quarter", "year") if u in name)
    if name.startswith(("this_", "last_", "next_")) and "_n_" not in name:
        shift = {"this": 0, "last": -1, "next": 1}[name.split("_")[0]]
        return _unit_start(today, unit, shift), _unit_start(today, unit, shift + 1)
    if name.startswith("last_n_"):
        return _unit_start(today, unit, -n), _unit_start(today, unit, 0)
    if name.startswith("next_n_"):
        return _unit_start(today, unit, 1), _unit_start(today, unit, n + 1)
    return _unit_start(today, unit, -n), _unit_start(today, unit, -n + 1)  # n_<units>_ago
