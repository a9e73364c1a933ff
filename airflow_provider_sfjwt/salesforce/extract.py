"""SOQL result to a file, streamed: the engine behind ``query_to_file`` and the query operator.

Records go from the client's page iterator straight into a streaming writer, so memory holds two
pages (the one being written, the next one being fetched; 2,000 records each) whatever the size
of the result. Progress (rows written of the query's ``totalSize``, rate, time left) is logged
as the pages come. The writer writes to a temporary name and renames at the end; a failure anywhere
(network, quota, disk) leaves no file that looks complete. The header follows the SELECT list as written, not the first record's keys.

Parquet needs column types before the first row group: they come from ``describe`` of the FROM
object, following relationship fields (``Owner.Name``) one describe per related object.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import time
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypedDict, TypeVar, cast

from .client import SalesforceClient
from .progress import Progress
from .soql import select_columns
from .storage import Destination, FilePath
from .writers import check_format, open_writer

log = logging.getLogger(__name__)

T = TypeVar("T")
_END = object()

_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'", re.DOTALL)
_PARENS = re.compile(r"\([^()]*\)")
_FROM = re.compile(r"\bFROM\s+([A-Za-z_][\w]*)", re.IGNORECASE)


class ExtractResult(TypedDict):
    """What an extract wrote: small, so it can go to XCom."""

    path: str
    rows: int
    columns: list[str]
    format: str


def from_object(soql: str) -> str | None:
    """The sObject after the top-level FROM (sub-queries and string literals are skipped)."""
    text = _QUOTED.sub("''", soql)
    while True:
        stripped = _PARENS.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    match = _FROM.search(text)
    return match.group(1) if match else None


def column_types(client: SalesforceClient, soql: str, columns: list[str]) -> dict[str, str]:
    """Salesforce field types of ``columns`` (``"double"``, ``"date"``, ...) from describe.

    Columns that describe cannot type (aggregates, sub-queries, polymorphic lookups) are left
    out; the writer treats them as text.
    """
    sobject = from_object(soql)
    if not sobject or not columns:
        return {}
    describes: dict[str, dict[str, dict[str, Any]]] = {}

    def fields_of(name: str) -> dict[str, dict[str, Any]]:
        if name not in describes:
            described = client.describe(name)
            describes[name] = {f["name"].lower(): f for f in described.get("fields", ())}
        return describes[name]

    types: dict[str, str] = {}
    for column in columns:
        *relations, leaf = column.split(".")
        current = sobject
        for relation in relations:
            ref = next(
                (
                    f
                    for f in fields_of(current).values()
                    if (f.get("relationshipName") or "").lower() == relation.lower()
                ),
                None,
            )
            targets = (ref or {}).get("referenceTo") or []
            if len(targets) != 1:
                current = ""
                break
            current = targets[0]
        field = fields_of(current).get(leaf.lower()) if current else None
        if field is not None:
            types[column] = field.get("type", "string")
    return types


@contextlib.contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Keep the cyclic garbage collector off the objects the process already holds.

    Every page allocates thousands of dicts, and each full collection they trigger rescans every
    long-lived object of the process: in an Airflow task, Airflow's own modules, some 170,000
    objects, which cost a fifth of the extract's CPU in the benchmark. ``gc.freeze`` parks them
    in the permanent generation for the duration; ``gc.unfreeze`` returns them. If something
    froze objects already (Airflow's LocalExecutor does before forking), that is left alone.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def prefetched(items: Iterator[T]) -> Generator[T, None, None]:
    """Yield from ``items`` while a worker thread already fetches the next one.

    A page's file write then overlaps the network round trip and JSON parsing of the next page
    instead of following it. Memory holds at most two pages. The worker advances the iterator
    only between yields, never concurrently with itself.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sfjwt-prefetch")
    future: Future[T | object] = pool.submit(next, items, _END)
    try:
        while (item := future.result()) is not _END:
            future = pool.submit(next, items, _END)
            yield cast(T, item)
    finally:
        future.cancel()
        pool.shutdown(wait=True)
        close = getattr(items, "close", None)
        if close is not None:
            close()


def query_to_file(
    client: SalesforceClient,
    soql: str,
    path: FilePath | Destination,
    format: str = "csv",
    *,
    field_types: Mapping[str, str] | None = None,
    include_deleted: bool = False,
) -> ExtractResult:
    """Write the result of ``soql`` to ``path`` (local path or object-storage path object).

    ``field_types`` (column -> Salesforce type) types Parquet columns without the describe
    calls otherwise made for them. The result is small enough for XCom.
    """
    fmt = check_format(format)
    columns = select_columns(soql)
    types: Mapping[str, str] = {}
    if fmt == "parquet":
        types = field_types if field_types is not None else column_types(client, soql, columns)
    progress: Progress | None = None
    started = time.monotonic()
    with long_lived_objects_frozen(), open_writer(path, fmt, columns, types) as writer:
        for page in client.query_pages(soql, include_deleted=include_deleted):
            records = page.get("records") or ()
            writer.write_records(records)
            if progress is None:
                progress = Progress(log, "REST query", "rows", _total_size(page), started=started)
            progress.add(len(records))
        columns = writer.columns or []
    rows = progress.done if progress is not None else 0
    if progress is not None:
        progress.finish()
    log.info("Wrote %d %s rows to %s", rows, fmt, path)
    return {"path": str(path), "rows": rows, "columns": columns, "format": fmt}


def _total_size(page: Mapping[str, Any]) -> int | None:
    """The page's ``totalSize`` when it is a count (it is, on every Salesforce query page)."""
    total = page.get("totalSize")
    return total if isinstance(total, int) and total >= 0 else None
