"""Small writes through sObject Collections, with a report of every record Salesforce refused.

Collections answer per record: a chunk of 200 can half succeed. A load is therefore judged by the
count of refused records, and each refused record is written to a failure report with its input
row number and Salesforce's error code, message and fields, so it can be fixed and loaded again.
The report is written (header only when nothing failed) whenever a path is given, so a stale
report from an earlier run never survives a clean run.

Some refusals are not about the data: ``UNABLE_TO_LOCK_ROW`` means another transaction (a
trigger, a flow, a parallel load) held the record or its parent for a moment. Those records, and
only those, are sent again with backoff before they count as failed; the records of the chunk
that were written are not repeated. With ``allOrNone`` the chunk was rolled back as a whole, so
the whole chunk is sent again when every refusal in it was transient.

Input records are prepared the way Bulk API 2.0 reads CSV, so one file works for both paths:
a dotted key (``Account.External_Id__c``) becomes a nested relationship reference, and in CSV
input an empty cell means "leave unchanged" while ``#N/A`` means "set to null".
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

from .client import SalesforceClient
from .errors import InvalidInputError, UnexpectedResponseError
from .readers import read_records
from .retry import (
    DEFAULT_TRANSIENT_RETRIES,
    TRANSIENT_ERROR_CODES,
    Refused,
    RetryPolicy,
    check_transient_retries,
    resend_refused,
    transient_codes,
)
from .storage import Destination, FilePath, same_file
from .writers import RecordWriter, open_writer

log = logging.getLogger(__name__)

OPERATIONS = ("insert", "update", "upsert", "delete")
ERROR_COLUMNS = ("sf__row", "sf__error_code", "sf__error_message", "sf__error_fields")
CSV_NULL = "#N/A"
ROLLED_BACK = "ALL_OR_NONE_OPERATION_ROLLED_BACK"


@dataclass(frozen=True)
class LoadSummary:
    """What a Collections load did: small, so it can go to XCom as a dict."""

    operation: str
    sobject: str | None
    records: int
    succeeded: int
    failed: int
    chunks: int
    failed_records_path: str | None
    retried: int = 0  # records sent again after a transient refusal (counted once per resend)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_format(path: FilePath) -> str:
    """``jsonl`` for ``.jsonl``/``.ndjson``/``.json`` paths, otherwise ``csv``."""
    name = str(path).lower()
    return "jsonl" if name.endswith((".jsonl", ".json", ".ndjson")) else "csv"


def prepare_record(record: Mapping[str, Any], from_csv: bool = False) -> dict[str, Any]:
    """The JSON body of one record: ``attributes`` dropped, dotted keys nested.

    With ``from_csv``, empty cells (``None`` from the reader) are left out and ``#N/A`` is null.
    """
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if from_csv:
            if value is None:
                continue
            if value == CSV_NULL:
                value = None
        *relations, leaf = key.split(".")
        target = out
        for relation in relations:
            target = target.setdefault(relation, {})
        target[leaf] = value
    return out


def _failure_rows(
    originals: list[Mapping[str, Any]], results: list[dict[str, Any]], first_row: int
) -> Iterator[dict[str, Any]]:
    for offset, (record, result) in enumerate(zip(originals, results, strict=True)):
        if result.get("success"):
            continue
        errors = result.get("errors") or [{}]
        fields = {str(f) for e in errors for f in (e.get("fields") or ())}
        yield {
            **record,
            "sf__row": first_row + offset,
            "sf__error_code": "; ".join(str(e.get("statusCode", "UNKNOWN")) for e in errors),
            "sf__error_message": "; ".join(str(e.get("message", "")) for e in errors),
            "sf__error_fields": ",".join(sorted(fields)),
        }


def _error_codes(result: Mapping[str, Any]) -> set[str]:
    return {str(e.get("statusCode")) for e in result.get("errors") or [{}]}


def _to_resend(
    results: list[dict[str, Any]], transient: frozenset[str], all_or_none: bool
) -> list[int]:
    """Positions in a chunk to send again: records refused only for a transient reason.

    With allOrNone nothing of the chunk was written; it is sent again as a whole when at least
    one refusal was transient and every other record was only rolled back along with it.
    """
    refused = [i for i, r in enumerate(results) if not r.get("success")]
    if all_or_none:
        codes = set().union(*(_error_codes(results[i]) for i in refused)) if refused else set()
        if codes & transient and codes <= transient | {ROLLED_BACK}:
            return list(range(len(results)))
        return []
    return [i for i in refused if _error_codes(results[i]) <= transient]


def _send_chunk_again(
    retry: RetryPolicy,
    send: Callable[[list[Mapping[str, Any]]], list[dict[str, Any]]],
    chunk: list[Mapping[str, Any]],
    results: list[dict[str, Any]],
    where: str,
    transient: frozenset[str],
    retries: int,
    all_or_none: bool,
) -> int:
    """Resend transiently refused records of ``chunk`` up to ``retries`` times, updating
    ``results`` in place; returns how many records were sent again in all."""

    def refused() -> Refused[list[int]] | None:
        again = _to_resend(results, transient, all_or_none)
        codes = set().union(*(_error_codes(results[i]) for i in again)) & transient
        return Refused(again, len(again), codes) if again else None

    def send_again(again: list[int]) -> None:
        answers = send([chunk[i] for i in again])
        _check_answers(answers, len(again), where)
        for i, answer in zip(again, answers, strict=True):
            results[i] = answer

    return resend_refused(retry, retries, where, "sending them again", refused, send_again)


def _check_answers(results: list[dict[str, Any]], sent: int, where: str) -> None:
    if len(results) != sent:
        raise UnexpectedResponseError(
            f"{where}: Salesforce answered {len(results)} results for {sent} records; the outcome of "
            "this chunk is unknown, check the records in Salesforce before loading again"
        )


def load_collections(
    client: SalesforceClient,
    operation: str,
    records: Iterable[Mapping[str, Any]],
    *,
    sobject: str | None = None,
    external_id_field: str | None = None,
    all_or_none: bool = False,
    failed_records_path: FilePath | None = None,
    from_csv: bool = False,
    transient_retries: int = DEFAULT_TRANSIENT_RETRIES,
    transient_error_codes: str | Collection[str] = TRANSIENT_ERROR_CODES,
) -> LoadSummary:
    """Send ``records`` in chunks of 200; write refused ones to ``failed_records_path``.

    ``sf__row`` in the report is the 1-based position of the record in the input (for a CSV
    file: the data row, header not counted). The report holds the record as given, then the
    ``sf__`` columns; its format follows the path's suffix (``.jsonl`` or CSV).

    Records refused only with one of ``transient_error_codes`` are sent again, alone, up to
    ``transient_retries`` times with the connection's backoff; what is still refused after that
    is reported like any other failure.
    """
    transient_retries = check_transient_retries(transient_retries)
    transient = transient_codes(transient_error_codes)
    op = operation.lower()
    if op not in OPERATIONS:
        raise InvalidInputError(
            f"operation must be one of {', '.join(OPERATIONS)}, not {operation!r}"
        )
    originals: deque[Mapping[str, Any]] = deque()

    def prepared() -> Iterator[dict[str, Any]]:
        for record in records:
            originals.append(record)
            yield prepare_record(record, from_csv)

    def send(batch: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return client.collection_request(op, batch, sobject, external_id_field, all_or_none)

    total = failed = chunks = retried = 0
    with ExitStack() as stack:
        report: RecordWriter | None = None
        for chunk, results in client.collections(
            op, prepared(), sobject, external_id_field, all_or_none
        ):
            given = [originals.popleft() for _ in chunk]
            where = f"{op} chunk {chunks + 1}"
            _check_answers(results, len(chunk), where)
            retried += _send_chunk_again(
                client.retry,
                send,
                chunk,
                results,
                where,
                transient,
                transient_retries,
                all_or_none,
            )
            if report is None and failed_records_path is not None:
                columns = list(dict.fromkeys(k for r in given for k in r if k != "attributes"))
                report = stack.enter_context(
                    open_writer(
                        failed_records_path,
                        file_format(failed_records_path),
                        columns + list(ERROR_COLUMNS),
                    )
                )
            failures = list(_failure_rows(given, results, total + 1))
            if report is not None and failures:
                report.write_rows([[row.get(c) for c in report.columns or ()] for row in failures])
            chunks += 1
            total += len(chunk)
            failed += len(failures)
            if failures:
                first = failures[0]
                log.warning(
                    "%s chunk %d: %d of %d records refused, e.g. row %d: %s %s",
                    op,
                    chunks,
                    len(failures),
                    len(chunk),
                    first["sf__row"],
                    first["sf__error_code"],
                    first["sf__error_message"],
                )
        if report is None and failed_records_path is not None:
            stack.enter_context(
                open_writer(
                    failed_records_path, file_format(failed_records_path), list(ERROR_COLUMNS)
                )
            )
    summary = LoadSummary(
        operation=op,
        sobject=sobject,
        records=total,
        succeeded=total - failed,
        failed=failed,
        chunks=chunks,
        failed_records_path=None if failed_records_path is None else str(failed_records_path),
        retried=retried,
    )
    log.info(
        "%s %s: %d records in %d chunks, %d succeeded, %d failed%s%s",
        op,
        sobject or "",
        total,
        chunks,
        summary.succeeded,
        failed,
        f" ({retried} sent again after a transient refusal)" if retried else "",
        f"; refused records in {failed_records_path}" if failed else "",
    )
    return summary


def load_file(
    client: SalesforceClient, operation: str, path: FilePath, **kwargs: Any
) -> LoadSummary:
    """:func:`load_collections` over the records of a CSV or JSONL file, streamed.

    A ``failed_records_path`` that is the input file itself (by name, link or hard link) is
    refused before any request: the report would replace the records being loaded.
    """
    report = kwargs.get("failed_records_path")
    if report is not None and same_file(path, report):
        raise InvalidInputError(
            f"failed_records_path {report} is the input file {path} (same file once links are "
            "resolved): the failure report would replace the records being loaded. Give it "
            "another name."
        )
    fmt = file_format(Destination(path).name)
    return load_collections(
        client, operation, read_records(path, fmt), from_csv=fmt == "csv", **kwargs
    )
