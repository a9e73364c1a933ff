"""``SalesforceSoqlSensor``: wait until a SOQL query returns rows, or a count crosses a line."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_sfjwt.operators.base import SalesforceBaseOperator, SoqlTemplating
from airflow_provider_sfjwt.salesforce.soql import select_columns

if TYPE_CHECKING:
    from airflow.sdk import Context

COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    "<": operator.lt,
}


class SalesforceSoqlSensor(SoqlTemplating, SalesforceBaseOperator, BaseSensorOperator):
    """Succeed when ``count <comparison> threshold``, where count is the query's ``totalSize``.

    With the defaults (``>= 1``) it waits until the query returns any row. For a count, write
    ``SELECT COUNT() FROM ... WHERE ...``: Salesforce returns the count as ``totalSize`` without
    sending records. (``SELECT COUNT(Id) ...`` returns one aggregate row, so its totalSize is 1.)
    Each poke is one API request and fetches at most the first page; add ``LIMIT 1`` to a plain
    SELECT that only needs to return something.

    Use ``mode="reschedule"`` for long waits: the worker slot is freed between pokes (each poke
    then runs in a new process and exchanges a token; in ``poke`` mode one token serves all).

    :param soql: the query (templated).
    :param threshold: the number the count is compared with (templated; an int or a template
        that renders to one).
    :param comparison: one of ``>= > == != <= <``.
    :param include_deleted: count deleted and archived records too (``queryAll``).
    :returns: XCom ``{"count": n}`` when satisfied.
    """

    template_fields: Sequence[str] = ("soql", "threshold")

    def __init__(
        self,
        *,
        soql: str,
        threshold: int | str = 1,
        comparison: str = ">=",
        include_deleted: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if comparison not in COMPARISONS:
            raise ValueError(
                f"comparison must be one of {' '.join(COMPARISONS)}, not {comparison!r}"
            )
        self.soql = soql
        self.threshold = threshold
        self.comparison = comparison
        self.include_deleted = include_deleted

    def poke(self, context: Context) -> PokeReturnValue:
        select_columns(self.soql)  # a non-SELECT or stacked statement: refused before any request
        try:  # checked before the query, so a bad threshold costs no API request
            threshold = int(self.threshold)
        except ValueError:
            raise ValueError(
                f"threshold must be a whole number, got {self.threshold!r} after templating"
            ) from None
        count = self.hook.count(self.soql, include_deleted=self.include_deleted)
        done = COMPARISONS[self.comparison](count, threshold)
        self.log.info(
            "Count %d %s %d: %s",
            count,
            self.comparison,
            threshold,
            "met" if done else "not yet",
        )
        return PokeReturnValue(is_done=done, xcom_value={"count": count} if done else None)
