"""What the operators and the sensor share: the connection and its cached hook, object storage,
SOQL templating, the output formats, and the options of a record load.

The shared arguments are accepted by base classes, once, so every task spells and defaults
them the same way and a DAG author who learnt one operator can guess the others. The bases
are ``BaseOperator`` subclasses rather than plain mixins on purpose: Airflow fills arguments
from a DAG's ``default_args``, and checks the arguments of ``partial()``/``expand()``, only
for the ``__init__`` methods of ``BaseOperator`` subclasses. Each base takes its own keyword
arguments and hands the rest on with ``super().__init__(**kwargs)``, so they combine in any
order a subclass lists them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, TypedDict

from airflow.sdk import BaseOperator

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook, storage_path
from airflow_provider_sfjwt.lineage import LineageMixin
from airflow_provider_sfjwt.salesforce.bulk import failed_records_limit
from airflow_provider_sfjwt.salesforce.retry import (
    DEFAULT_TRANSIENT_RETRIES,
    TRANSIENT_ERROR_CODES,
    check_transient_retries,
    transient_codes,
)
from airflow_provider_sfjwt.salesforce.storage import Destination
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


class SalesforceBaseOperator(SalesforceHookMixin, BaseOperator):
    """A task on one ``salesforce_jwt`` connection: ``salesforce_conn_id`` and the cached hook.

    The sensor uses it too, listed before ``BaseSensorOperator`` (which then comes between this
    class and ``BaseOperator``), so this class sets no class attributes that would hide the
    sensor's.
    """

    def __init__(
        self, *, salesforce_conn_id: str = SalesforceJWTHook.default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.salesforce_conn_id = salesforce_conn_id


class SalesforceTransferOperator(LineageMixin, SalesforceBaseOperator):
    """A task that moves records between Salesforce and files, and reports that as lineage.

    ``storage_conn_id`` is the Airflow connection for files given as object-storage URIs
    (``s3://bucket/key``); ``None`` lets the store use its default connection.
    """

    def __init__(self, *, storage_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.storage_conn_id = storage_conn_id


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


class SoqlToFileOperator(SalesforceTransferOperator):
    """A SOQL query whose records are written to ``output_path``, by REST or by a Bulk job.

    Takes the arguments both query operators document: ``soql``, ``output_path``, ``format``,
    ``include_deleted`` and ``file_mode``. A bad ``file_mode`` or ``format`` fails when the DAG
    is parsed, not when the task runs.
    """

    template_fields: Sequence[str] = ("soql", "output_path", "format")

    def __init__(
        self,
        *,
        soql: str,
        output_path: Any,
        format: str = "csv",
        include_deleted: bool = False,
        file_mode: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        Destination(".", file_mode)  # a bad mode fails when the DAG is parsed
        self.soql = soql
        self.output_path = output_path
        self.format = checked_format(format)
        self.include_deleted = include_deleted
        self.file_mode = file_mode

    def _destination(self) -> Destination:
        """The rendered ``output_path``, in object storage when it is a URI, with ``file_mode``."""
        return Destination(storage_path(self.output_path, self.storage_conn_id), self.file_mode)


class LoadOptions(TypedDict):
    """How records are loaded, in the keywords both the Bulk and the Collections core take."""

    external_id_field: str | None
    transient_retries: int
    transient_error_codes: list[str]


class RecordLoadOperator(SalesforceTransferOperator):
    """A load of records into Salesforce that Salesforce judges record by record.

    Takes what both loads (Bulk API 2.0 and sObject Collections) document alike: the
    ``external_id_field`` of an upsert, the ``max_failed_records`` tolerated (a count or a
    percentage, checked when the DAG is parsed unless it is a template), and the resending of
    records refused for a transient reason (``transient_retries``, ``transient_error_codes``).
    """

    def __init__(
        self,
        *,
        external_id_field: str | None = None,
        max_failed_records: int | str = 0,
        transient_retries: int = DEFAULT_TRANSIENT_RETRIES,
        transient_error_codes: str | Sequence[str] = TRANSIENT_ERROR_CODES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if "{{" not in str(max_failed_records):
            failed_records_limit(max_failed_records, 0)  # a bad setting fails at parse time
        self.external_id_field = external_id_field
        self.max_failed_records = max_failed_records
        self.transient_retries = check_transient_retries(transient_retries)
        self.transient_error_codes = sorted(transient_codes(transient_error_codes))

    def _load_options(self) -> LoadOptions:
        """The rendered load options, for the core's load functions and ``IngestSpec``."""
        return LoadOptions(
            external_id_field=self.external_id_field,
            transient_retries=self.transient_retries,
            transient_error_codes=self.transient_error_codes,
        )
