"""``SalesforceQueryOperator``: a SOQL result streamed to a file; XCom gets only a summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_sfjwt.operators.base import SoqlTemplating, SoqlToFileOperator
from airflow_provider_sfjwt.salesforce.extract import ExtractResult

if TYPE_CHECKING:
    from airflow.sdk import Context


class SalesforceQueryOperator(SoqlTemplating, SoqlToFileOperator):
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

    def execute(self, context: Context) -> ExtractResult:
        result = self.hook.query_to_file(
            self.soql,
            self._destination(),
            format=self.format,
            include_deleted=self.include_deleted,
        )
        self.record_extract(self.hook.get_conn().instance_url, self.soql, result)
        return result
