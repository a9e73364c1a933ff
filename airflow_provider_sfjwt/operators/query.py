"""``SalesforceQueryOperator``: a SOQL result streamed to a file; XCom gets only a summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook, storage_path
from airflow_provider_sfjwt.lineage import LineageMixin
from airflow_provider_sfjwt.operators.base import (
    SalesforceHookMixin,
    SoqlTemplating,
    checked_format,
)
from airflow_provider_sfjwt.salesforce.extract import ExtractResult
from airflow_provider_sfjwt.salesforce.storage import Destination

if TYPE_CHECKING:
    from airflow.sdk import Context


class SalesforceQueryOperator(SoqlTemplating, SalesforceHookMixin, LineageMixin, BaseOperator):
    """Run a SOQL query and write every record to ``output_path``, page by page.

    Memory holds one page whatever the result size, the file appears only when complete, and
    the returned XCom is ``{"path", "rows", "columns", "format"}`` - never the records.

    :param soql: the query (templated; a ``.soql`` file path is read as a template).
    :param output_path: local path or object-storage URI (``s3://bucket/key.csv``; templated).
    :param format: ``csv`` (header in SELECT order, ``Owner.Name`` flattened), ``jsonl`` or
        ``parquet`` (needs the ``parquet`` extra; columns typed from describe).
    :param include_deleted: use ``queryAll`` to include deleted and archived records.
    :param salesforce_conn_id: a ``salesforce_jwt`` connection.
    :param storage_conn_id: Airflow connection for an object-storage ``output_path`` given as a
        URI (default: the store's default connection).
    :param file_mode: permission mode of a local output file, e.g. ``0o600`` to keep it private
        to the worker's user; by default the process umask decides (``0o644`` under the usual
        ``022``: readable by every user of the machine).
    """

    template_fields: Sequence[str] = ("soql", "output_path", "format")

    def __init__(
        self,
        *,
        soql: str,
        output_path: str,
        format: str = "csv",
        include_deleted: bool = False,
        salesforce_conn_id: str = SalesforceJWTHook.default_conn_name,
        storage_conn_id: str | None = None,
        file_mode: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        Destination(".", file_mode)  # a bad mode fails when the DAG is parsed
        self.soql = soql
        self.output_path = output_path
        self.format = checked_format(format)
        self.include_deleted = include_deleted
        self.salesforce_conn_id = salesforce_conn_id
        self.storage_conn_id = storage_conn_id
        self.file_mode = file_mode

    def execute(self, context: Context) -> ExtractResult:
        result = self.hook.query_to_file(
            self.soql,
            Destination(storage_path(self.output_path, self.storage_conn_id), self.file_mode),
            format=self.format,
            include_deleted=self.include_deleted,
        )
        self.record_extract(self.hook.get_conn().instance_url, self.soql, result)
        return result
