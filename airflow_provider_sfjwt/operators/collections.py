"""``SalesforceCollectionsOperator``: small loads through sObject Collections, judged per record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_sfjwt.hooks.salesforce_jwt import storage_path
from airflow_provider_sfjwt.operators.base import RecordLoadOperator
from airflow_provider_sfjwt.salesforce.bulk import check_failed_records, failed_records_limit
from airflow_provider_sfjwt.salesforce.load import OPERATIONS

if TYPE_CHECKING:
    from airflow.sdk import Context


class SalesforceCollectionsOperator(RecordLoadOperator):
    """Insert, update, upsert or delete records in chunks of 200 through sObject Collections.

    For tens of thousands of records or more use ``SalesforceBulkIngestOperator``: Collections
    spend one API request per 200 records.

    Records come from ``input_path`` (CSV or JSONL, local or object storage, streamed) or from
    ``records`` (a list of dicts, e.g. from an upstream task's XCom). Salesforce answers per
    record; refused records are written to ``failed_records_path`` with their input row number
    (``sf__row``) and Salesforce's ``sf__error_code``, ``sf__error_message`` and
    ``sf__error_fields``. The task fails when more than ``max_failed_records`` were refused.
    Records refused only because they were locked for a moment (``UNABLE_TO_LOCK_ROW``: a
    trigger, flow or parallel load held them) are sent again, alone, before they count.

    :param operation: ``insert``, ``update`` (needs ``Id``), ``upsert`` (needs
        ``external_id_field``) or ``delete`` (needs ``Id``).
    :param sobject: API name of the object (``Contact``); needed except for delete.
    :param input_path: CSV or JSONL file (templated). Exactly one of input_path / records.
        CSV follows Bulk API conventions: an empty cell leaves the field unchanged, ``#N/A``
        sets it to null, a ``Account.External_Id__c`` column references a parent by external id.
    :param records: list of field dicts (templated).
    :param external_id_field: external id field for upsert (``External_Id__c``).
    :param all_or_none: roll back a whole chunk of 200 when one record in it fails.
    :param failed_records_path: where the failure report goes (``.csv`` or ``.jsonl``;
        templated). Written on every run, header only when nothing failed.
    :param max_failed_records: how many refused records are tolerated: a count (``0``, the
        default: any refusal fails the task) or a percentage of the records sent (``"5%"``),
        as for :class:`SalesforceBulkIngestOperator` (templated). Above it the task fails with
        ``TooManyFailedRecordsError`` naming the report, after the report is written.
    :param transient_retries: how many times records refused with a transient error code are
        sent again (with the connection's backoff) before they count as failed; 0 turns it off.
    :param transient_error_codes: the error codes treated as transient
        (default ``("UNABLE_TO_LOCK_ROW",)``).
    :param storage_conn_id: Airflow connection for object-storage paths given as URIs.
    :returns: XCom ``{"operation", "sobject", "records", "succeeded", "failed", "chunks",
        "failed_records_path", "retried"}`` (``retried``: records sent again after a transient
        refusal, once per resend).
    """

    template_fields: Sequence[str] = (
        "sobject",
        "input_path",
        "records",
        "external_id_field",
        "failed_records_path",
        "max_failed_records",
    )
    ui_color = "#d4e9fa"

    def __init__(
        self,
        *,
        operation: str,
        sobject: str | None = None,
        input_path: str | None = None,
        records: list[Mapping[str, Any]] | None = None,
        all_or_none: bool = False,
        failed_records_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if operation.lower() not in OPERATIONS:
            raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}, not {operation!r}")
        if (input_path is None) == (records is None):
            raise ValueError(
                "give exactly one of input_path (a CSV/JSONL file) or records (a list)"
            )
        if operation.lower() != "delete" and not sobject:
            raise ValueError(f"{operation} needs sobject, the object's API name (e.g. Contact)")
        self.operation = operation.lower()
        self.sobject = sobject
        self.input_path = input_path
        self.records = records
        self.all_or_none = all_or_none
        self.failed_records_path = failed_records_path

    def execute(self, context: Context) -> dict[str, Any]:
        failed_records_limit(self.max_failed_records, 0)  # a templated limit is known only now
        options: dict[str, Any] = {
            "sobject": self.sobject,
            "all_or_none": self.all_or_none,
            "failed_records_path": storage_path(
                self.failed_records_path or None, self.storage_conn_id
            ),
            **self._load_options(),
        }
        if self.input_path is not None:
            summary = self.hook.load_file(
                self.operation, storage_path(self.input_path, self.storage_conn_id), **options
            )
        else:
            if isinstance(self.records, str):
                raise TypeError(
                    "records rendered to a string, not a list of dicts. Pass the upstream "
                    "task's output directly (records=upstream.output) or set "
                    "render_template_as_native_obj=True on the DAG."
                )
            summary = self.hook.load_records(self.operation, self.records or [], **options)
        check_failed_records(summary.as_dict(), self.max_failed_records)
        self.record_load(self.hook.get_conn().instance_url, self.input_path, self.sobject)
        return summary.as_dict()
