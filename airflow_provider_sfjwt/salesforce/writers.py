"""Streaming record writers: CSV, JSONL and Parquet, local or object storage.

Why: a DataFrame of every record costs gigabytes at a million rows. Here records flow page by
page from the client into a writer and are never collected, so peak memory is bounded by one
batch (or one Parquet row group), whatever the row count. Each writer publishes its file through
:func:`.storage.atomic_output`, so the file appears under its final name only when complete.
Parquet lives in :mod:`.parquet` and needs the optional ``pyarrow``, imported only when Parquet
is asked for.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import IO, Any, ClassVar

from .errors import InvalidInputError
from .records import COMPOUND_TYPES, Flattener, infer_columns, json_cell, strip_attributes
from .storage import Destination, FilePath, atomic_output

__all__ = ["FORMATS", "CsvWriter", "JsonlWriter", "RecordWriter", "check_format", "open_writer"]

FORMATS = ("csv", "jsonl", "parquet")
"""The file formats every extract can write."""

# Rows handed to the csv/json encoders per batch: large enough to amortise call overhead, small
# enough that a batch is a few hundred kilobytes at most.
_BATCH = 1000


class RecordWriter:
    """Base of the per-format writers: context management, counting, flattening.

    Use as a context manager; the file appears under its final name only when the ``with``
    block exits without an exception. ``columns`` fixes the output columns and their order; when
    it is ``None`` or empty they are inferred from the first record (see :func:`infer_columns`).
    """

    format: ClassVar[str] = ""
    _text_mode: ClassVar[bool] = True
    _nested: ClassVar[bool] = False

    def __init__(
        self,
        path: FilePath | Destination,
        columns: Sequence[str] | None = None,
        field_types: Mapping[str, str] | None = None,
        row_group_size: int = 50_000,
    ) -> None:
        self._dest = Destination(path)
        self._columns: list[str] | None = list(columns) if columns else None
        self._field_types = dict(field_types or {})
        self._row_group_size = max(1, int(row_group_size))
        self._rows = 0
        self._stack: contextlib.ExitStack | None = None
        self._file: IO[Any] | None = None
        self._flattener: Flattener | None = None
        self._started = False

    # public state
    @property
    def rows(self) -> int:
        """Rows written so far (the header is not a row)."""
        return self._rows

    @property
    def path(self) -> str:
        """The final path as a string (``s3://...`` for object storage)."""
        return str(self._dest)

    @property
    def columns(self) -> list[str]:
        """The output columns (empty until inferred, when none were given)."""
        return list(self._columns or ())

    # context management
    def __enter__(self) -> RecordWriter:
        stack = contextlib.ExitStack()
        self._file = stack.enter_context(
            atomic_output(self._dest, mode="w" if self._text_mode else "wb")
        )
        self._stack = stack
        if self._columns is not None:
            self._start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        assert self._stack is not None, "writer used without 'with'"
        stack, self._stack = self._stack, None
        if exc_type is None:
            try:
                if self._columns is None:
                    self._columns = []
                if not self._started:
                    self._start()
                self._finish()
            except BaseException as error:
                if stack.__exit__(type(error), error, error.__traceback__):
                    return None
                raise
        else:
            with contextlib.suppress(Exception):
                self._abort()
        return stack.__exit__(exc_type, exc, tb)

    def _require_open(self) -> None:
        if self._stack is None:
            raise RuntimeError(f"{type(self).__name__} must be used as a context manager")

    def _set_columns(self, columns: Sequence[str]) -> None:
        self._columns = list(columns)
        self._start()

    def _start(self) -> None:
        """Called once the columns are known: write headers, build schemas."""
        self._started = True

    def _finish(self) -> None:
        """Flush whatever is buffered before the file is published."""

    def _abort(self) -> None:
        """Release format resources on failure; the temporary file is deleted afterwards."""

    def _write_batch(self, rows: list[list[Any]]) -> None:
        raise NotImplementedError

    # writing
    def write_records(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Flatten and write records (dicts as Salesforce returns them); returns rows written."""
        self._require_open()
        iterator = iter(records)
        if self._columns is None:
            first = next(iterator, None)
            if first is None:
                return 0
            self._set_columns(infer_columns(first))
            iterator = _chain_one(first, iterator)
        if self._flattener is None:
            self._flattener = Flattener(self._columns or [], nested=self._nested)
        values = self._flattener.values
        written = 0
        while True:
            batch = [values(r) for r in islice(iterator, _BATCH)]
            if not batch:
                break
            self._write_batch(batch)
            written += len(batch)
            self._rows += len(batch)
        return written

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> int:
        """Write already-flattened rows, one value per column; returns rows written."""
        self._require_open()
        if self._columns is None:
            raise InvalidInputError("write_rows needs the columns: pass columns to open_writer")
        width = len(self._columns)
        iterator = iter(rows)
        written = 0
        while True:
            batch = [list(r) for r in islice(iterator, _BATCH)]
            if not batch:
                break
            for row in batch:
                if len(row) != width:
                    raise InvalidInputError(f"row has {len(row)} values, expected {width}: {row!r}")
                if not COMPOUND_TYPES.isdisjoint(map(type, row)):
                    for i, value in enumerate(row):
                        if type(value) in (dict, list):
                            row[i] = strip_attributes(value) if self._nested else json_cell(value)
            self._write_batch(batch)
            written += len(batch)
            self._rows += len(batch)
        return written


def _chain_one(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


class CsvWriter(RecordWriter):
    """RFC 4180 CSV through the csv module, in the style of Salesforce's own exports.

    Header in SELECT order, ``\\n`` line endings, quotes only where needed, null as an empty
    cell, booleans as ``true``/``false``, numbers as JSON writes them.
    """

    format = "csv"

    def _start(self) -> None:
        super()._start()
        self._writer = csv.writer(self._file, lineterminator="\n")  # type: ignore[arg-type]
        if self._columns:
            self._writer.writerow(self._columns)

    _bool_columns: list[int]

    def _write_batch(self, rows: list[list[Any]]) -> None:
        # Booleans are rewritten in Salesforce style. Columns known to hold booleans are fixed
        # directly; the C-level ``in`` test then catches any other column (it also matches 1
        # and 0, which only costs the slow loop for that row).
        known = self.__dict__.setdefault("_bool_columns", [])
        for row in rows:
            for i in known:
                value = row[i]
                if value is True:
                    row[i] = "true"
                elif value is False:
                    row[i] = "false"
            if True in row or False in row:
                for i, value in enumerate(row):
                    if type(value) is bool:
                        row[i] = "true" if value else "false"
                        if i not in known:
                            known.append(i)
        self._writer.writerows(rows)


class JsonlWriter(RecordWriter):
    """One JSON object per line, keys are the (dotted) column names, JSON types kept."""

    format = "jsonl"
    _nested = True

    def _write_batch(self, rows: list[list[Any]]) -> None:
        columns = self._columns or []
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        text = "\n".join(dumps(dict(zip(columns, row, strict=False))) for row in rows)
        assert self._file is not None
        self._file.write(text + "\n")


def check_format(fmt: str) -> str:
    """``fmt`` in lower case if it is one of :data:`FORMATS`; ``ValueError`` naming them if not."""
    key = (fmt or "").lower()
    if key not in FORMATS:
        raise InvalidInputError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return key


def open_writer(
    path: FilePath | Destination,
    fmt: str,
    columns: Sequence[str] | None,
    field_types: Mapping[str, str] | None = None,
    row_group_size: int = 50_000,
) -> RecordWriter:
    """Create the writer for ``fmt`` ("csv", "jsonl" or "parquet"); use it with ``with``.

    ``columns`` is usually ``select_columns(soql)``; ``None`` or ``[]`` infers them from the
    first record. ``field_types`` (name -> Salesforce describe type) types Parquet columns and
    is ignored by CSV and JSONL. Raises ImportError naming the ``parquet`` extra when pyarrow
    is missing, before anything is written.
    """
    key = (fmt or "").lower().lstrip(".")
    kind = check_format("jsonl" if key == "json" else key)
    writer: type[RecordWriter]
    if kind == "parquet":
        from .parquet import ParquetWriter  # pyarrow only for those who ask for Parquet

        writer = ParquetWriter
    else:
        writer = CsvWriter if kind == "csv" else JsonlWriter
    return writer(path, columns, field_types=field_types, row_group_size=row_group_size)
