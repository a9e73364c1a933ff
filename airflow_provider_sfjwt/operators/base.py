"""What the operators and the sensor share: a cached hook, SOQL templating, the output formats."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce.writers import check_format


class SalesforceHookMixin:
    """A ``hook`` built once per task from ``salesforce_conn_id``, as Airflow's own providers do.

    Cached, so every call a task makes (and ``on_kill``) shares one hook, one core client and
    one HTTP session. It is built on first use, inside ``execute``/``poke``, after templates
    are rendered, so a templated ``salesforce_conn_id`` is honoured.
    """

    salesforce_conn_id: str

    @cached_property
    def hook(self) -> SalesforceJWTHook:
        return SalesforceJWTHook(salesforce_conn_id=self.salesforce_conn_id)


class SoqlTemplating:
    """Templating of a ``soql`` argument: it may name a ``.soql`` or ``.sql`` file (read and
    rendered like an inline query), and the UI shows the rendered query as SQL."""

    template_ext: Sequence[str] = (".soql", ".sql")
    template_fields_renderers: dict[str, str] = {"soql": "sql"}
    ui_color = "#d4e9fa"


def checked_format(format: str) -> str:
    """``format`` unchanged when it is one of the writers' formats (any case) or still a template.

    Called from ``__init__`` so a typo fails when the DAG is parsed, and again from ``execute``
    once a templated value has been rendered, before any request is made.
    """
    if "{{" not in format:
        check_format(format)
    return format
