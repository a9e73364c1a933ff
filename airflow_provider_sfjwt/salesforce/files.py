"""Streaming record writers and readers: CSV, JSONL and Parquet, local or object storage.

Why this module exists: the official provider builds a DataFrame of every record, which costs
gigabytes at a million rows. Here records flow page by page from the client into a writer and
are never collected, so peak memory is bounded by one page (or one Parquet row group), whatever
the row count.

Rules kept by every writer:

* **Atomic output.** Bytes go to a hidden sibling ``.NAME.part-<random>`` and are renamed to
  ``NAME`` only when the ``with`` block ends without error; on any exception (including task
  kill signals) the temporary file is deleted and the exception re-raised. A failed task never
  leaves a half file that looks complete, and an existing file is replaced only on success.
* **Destinations** are a local path (``str`` / ``os.PathLike``) or any object that behaves like
  ``pathlib.Path`` (``open(mode)``, ``rename``/``replace``, ``unlink``, ``name``, ``parent``,
  ``/``), such as Airflow's ``ObjectStoragePath`` for ``s3://``, ``gs://``, ``file://``. This
  module never imports Airflow: the core must run without it.
* **Parquet is optional**: pyarrow is imported only when Parquet is asked for.

Column names follow the SOQL SELECT list (see :func:`select_columns`); relationship fields are
flattened to dotted names (``Owner.Name``), ``attributes`` is dropped, compound fields
(addresses, geolocations) and sub-query results become JSON strings in CSV and Parquet and stay
nested JSON in JSONL.

What lives here: ``open_writer`` and its writers (extracts), ``atomic_output`` and
``Destination`` (any file this provider publishes), ``open_csv_passthrough`` and
``csv_chunks_to_records`` (Bulk query results), ``read_records`` and ``split_csv`` (loads).
``select_columns`` is re-exported from :mod:`.soql` for convenience.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import pathlib
import secrets
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from operator import itemgetter
from typing import IO, Any, ClassVar

from airflow_provider_sfjwt.salesforce.soql import select_columns

__all__ = [
    "FORMATS",
    "PARQUET_INSTALL_HINT",
    "CsvChunkWriter",
    "CsvPart",
    "CsvWriter",
    "Destination",
    "JsonlWriter",
    "ParquetWriter",
    "RecordWriter",
    "atomic_output",
    "csv_chunks_to_records",
    "flatten_record",
    "infer_columns",
    "open_csv_passthrough",
    "open_writer",
    "read_records",
    "select_columns",
    "split_csv",
]

log = logging.getLogger(__name__)

PARQUET_INSTALL_HINT = "pip install 'airflow-provider-sfjwt[parquet]'"
FORMATS = ("csv", "jsonl", "parquet")

# Rows handed to the csv/json encoders per batch: large enough to amortise call overhead, small
# enough that a batch is a few hundred kilobytes at most.
_BATCH = 1000
# Rows held as Python objects before the Parquet writer encodes them into Arrow arrays.
_ARROW_BATCH = 5000


# --- destinations ------------------------------------------------------------------------------


def is_local_path(value: Any) -> bool:
    """A ``str`` or ``os.PathLike`` naming a local file, not a storage object.

    A universal-pathlib object (Airflow's ObjectStoragePath) is ``os.PathLike`` too with
    universal-pathlib < 0.3 (Airflow 3.0 and 3.1), and ``os.fspath()`` of a ``file://`` one is
    ``file:/tmp/x``: taken as a local path, a relative directory named ``file:``. Anything with a
    storage ``protocol`` goes through its own methods instead.
    """
    return isinstance(value, (str, os.PathLike)) and not hasattr(value, "protocol")


class Destination:
    """A file location: a local path, or a duck-typed pathlib-like object for remote storage.

    Local paths get their missing parent directories created. Remote objects (Airflow's
    ``ObjectStoragePath``) are used only through ``open``, ``rename``/``replace``, ``unlink``,
    ``name``, ``parent`` and ``/`` so that any fsspec-backed store works without an Airflow
    import here. A ``file://`` URL string is taken as a local path; other URL strings are
    refused, since opening them needs credentials only the Airflow side holds.
    """

    def __init__(self, target: Any) -> None:
        if isinstance(target, Destination):
            self.target: Any = target.target
            self.is_local: bool = target.is_local
            return
        if isinstance(target, str) and "://" in target:
            parsed = urllib.parse.urlparse(target)
            if parsed.scheme != "file":
                raise ValueError(
                    f"cannot open {target!r} from a plain string: pass an "
                    "airflow.sdk.ObjectStoragePath (it carries the storage connection), "
                    "or a local path"
                )
            target = urllib.request.url2pathname(parsed.path)
        if is_local_path(target):
            self.target = pathlib.Path(os.fspath(target))
            self.is_local = True
        elif all(hasattr(target, attr) for attr in ("open", "name", "parent")):
            self.target = target
            self.is_local = False
        else:
            raise TypeError(
                f"unsupported destination {target!r}: expected a local path or a "
                "pathlib-like object with open(), name and parent (e.g. ObjectStoragePath)"
            )

    @property
    def name(self) -> str:
        return str(self.target.name)

    def __str__(self) -> str:
        return str(self.target)

    def __repr__(self) -> str:
        return f"Destination({str(self)!r})"

    def sibling(self, name: str) -> Any:
        """A path next to this one (same directory or prefix), same kind of object."""
        parent = self.target.parent
        if hasattr(parent, "joinpath"):
            return parent.joinpath(name)
        return parent / name

    def open(self, mode: str = "rb") -> IO[Any]:
        return self.target.open(mode)

    def ensure_parent(self) -> None:
        """Create missing parent directories where directories exist (local, file://).

        Object stores have no directories; calling mkdir there can even try to create a bucket,
        so it is only done for local filesystems.
        """
        if self.is_local:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            return
        protocol = getattr(self.target, "protocol", None)
        if isinstance(protocol, (tuple, list)):
            protocol = protocol[0] if protocol else None
        if protocol in (None, "", "file", "local") and hasattr(self.target.parent, "mkdir"):
            with contextlib.suppress(FileExistsError):
                self.target.parent.mkdir(parents=True, exist_ok=True)


def _move(source: Any, target: Any) -> None:
    """Rename ``source`` to ``target``, replacing an existing target."""
    if hasattr(source, "replace") and not isinstance(source, (str, bytes)):
        source.replace(target)
    else:
        source.rename(target)


def _discard(path: Any) -> None:
    """Best-effort delete used on the error path: never mask the original exception."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except Exception:  # noqa: BLE001 - cleanup must not hide the real failure
        log.warning("could not delete temporary file %s", path, exc_info=True)


@contextlib.contextmanager
def atomic_output(path: Any, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open ``path`` for writing through a temporary sibling; publish it only on success.

    Yields a binary file (``mode="wb"``) or a UTF-8 text file with universal newlines off
    (``mode="w"``, suitable for the csv module). The data lands in ``.NAME.part-<random>`` next to
    the final name and is renamed over ``NAME`` when the block ends normally. On any exception,
    including ``KeyboardInterrupt`` and Airflow's task-kill exceptions, the temporary file is
    deleted and the exception propagates, so readers never see a truncated file under the final
    name and a previous good file stays in place.
    """
    if mode not in ("wb", "w"):
        raise ValueError("atomic_output mode must be 'wb' or 'w'")
    dest = Destination(path)
    dest.ensure_parent()
    temp = dest.sibling(f".{dest.name}.part-{secrets.token_hex(6)}")
    raw = temp.open("wb")
    handle: IO[Any] = raw
    try:
        if mode == "w":
            handle = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield handle
        handle.close()
        _move(temp, dest.target)
    except BaseException:
        with contextlib.suppress(Exception):
            handle.close()
        with contextlib.suppress(Exception):
            raw.close()
        _discard(temp)
        raise


# --- flattening --------------------------------------------------------------------------------

_MISSING = object()
_COMPOUND_TYPES = frozenset({dict, list})


def _find_key(mapping: Mapping[str, Any], name: str) -> str | None:
    """The key of ``mapping`` equal to ``name`` ignoring case (SOQL is case-insensitive)."""
    if name in mapping:
        return name
    low = name.lower()
    for key in mapping:
        if isinstance(key, str) and key.lower() == low:
            return key
    return None


def _strip_attributes(value: Any) -> Any:
    """Drop Salesforce ``attributes`` and unwrap sub-query results to their record lists."""
    if isinstance(value, dict):
        if "records" in value and "totalSize" in value:
            return [_strip_attributes(r) for r in value.get("records") or []]
        return {k: _strip_attributes(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [_strip_attributes(v) for v in value]
    return value


def _json_cell(value: Any) -> str:
    return json.dumps(_strip_attributes(value), ensure_ascii=False, separators=(",", ":"))


class _Flattener:
    """Turns a record into one value per column, fast for the common case.

    Salesforce returns every selected field, in its canonical case, in every record, so after
    the first record the top-level keys are fetched with one ``itemgetter`` call (C speed). Case
    differences between the SOQL text and the response, dotted relationship paths and flat
    dotted keys (records parsed from Bulk CSV) are resolved on the slow path, which also learns
    the canonical key names for the next records.
    """

    def __init__(self, columns: Sequence[str], nested: bool = False) -> None:
        self.columns = list(columns)
        self.nested = nested  # JSONL keeps compound values as JSON objects
        self._paths = [c.split(".") for c in self.columns]
        self._keys = [p[0] for p in self._paths]
        self._walk = [(i, p[1:]) for i, p in enumerate(self._paths) if len(p) > 1]
        self._getter = self._make_getter()

    def _make_getter(self) -> Any:
        if not self._keys:
            return lambda record: ()
        getter = itemgetter(*self._keys)
        if len(self._keys) == 1:
            return lambda record: (getter(record),)
        return getter

    def _resolve(self, record: Mapping[str, Any]) -> None:
        """Learn how each column maps onto this record's keys."""
        changed = False
        for i, column in enumerate(self.columns):
            path = self._paths[i]
            if self._keys[i] in record:
                continue
            flat = _find_key(record, column) if len(path) > 1 else None
            if flat is not None:
                self._paths[i] = [flat]
                self._keys[i] = flat
                changed = True
                continue
            key = _find_key(record, path[0])
            if key is not None:
                path[0] = key
                self._keys[i] = key
                changed = True
        if changed:
            self._walk = [(i, p[1:]) for i, p in enumerate(self._paths) if len(p) > 1]
            self._getter = self._make_getter()

    def values(self, record: Mapping[str, Any]) -> list[Any]:
        try:
            values = list(self._getter(record))
        except KeyError:
            self._resolve(record)
            values = [record.get(k) for k in self._keys]
        except TypeError as exc:
            raise TypeError(f"expected a record dict, got {type(record).__name__}") from exc
        for i, rest in self._walk:
            value = values[i]
            if value is None:  # null relationship: every field below it is null
                continue
            for j, part in enumerate(rest):
                if not isinstance(value, dict):
                    value = None
                    break
                found = value.get(part, _MISSING)
                if found is _MISSING:
                    key = _find_key(value, part)
                    if key is None:
                        value = None
                        break
                    rest[j] = key
                    found = value[key]
                value = found
            values[i] = value
        if not _COMPOUND_TYPES.isdisjoint(map(type, values)):
            for i, value in enumerate(values):
                if type(value) in (dict, list):
                    values[i] = _strip_attributes(value) if self.nested else _json_cell(value)
        return values


def flatten_record(record: Mapping[str, Any], columns: Sequence[str]) -> list[Any]:
    """One value per column from a REST record: the row a file writer emits.

    ``attributes`` is ignored, dotted columns follow nested relationship objects (a null parent
    gives ``None``), key matching ignores case because SOQL may be written in another case than
    Salesforce's canonical field names, and compound fields (addresses, geolocations,
    sub-query results) become compact JSON strings. A column absent from the record is ``None``.
    """
    return _Flattener(columns).values(record)


def infer_columns(record: Mapping[str, Any]) -> list[str]:
    """Column names from one record, for queries whose SELECT list is unknown (``FIELDS()``).

    Relationship objects (dicts carrying ``attributes``) are flattened to dotted names; compound
    fields stay one column. Caveat: a relationship that is null in this first record yields a
    single column (``Owner``) rather than its fields; name the columns explicitly when that
    matters.
    """
    columns: list[str] = []
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict) and "attributes" in value:
            columns.extend(f"{key}.{sub}" for sub in infer_columns(value))
        else:
            columns.append(key)
    return columns


# --- record writers ----------------------------------------------------------------------------


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
        path: Any,
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
        self._flattener: _Flattener | None = None
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
            self._flattener = _Flattener(self._columns or [], nested=self._nested)
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
            raise ValueError("write_rows needs the columns: pass columns to open_writer")
        width = len(self._columns)
        iterator = iter(rows)
        written = 0
        while True:
            batch = [list(r) for r in islice(iterator, _BATCH)]
            if not batch:
                break
            for row in batch:
                if len(row) != width:
                    raise ValueError(f"row has {len(row)} values, expected {width}: {row!r}")
                if not _COMPOUND_TYPES.isdisjoint(map(type, row)):
                    for i, value in enumerate(row):
                        if type(value) in (dict, list):
                            row[i] = _strip_attributes(value) if self._nested else _json_cell(value)
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


def _import_pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"Parquet output needs pyarrow, which is not installed: {PARQUET_INSTALL_HINT}"
        ) from exc
    return pyarrow, pyarrow.parquet


# Salesforce describe ``type`` -> Arrow type name; anything unlisted is written as a string.
_SF_TO_ARROW = {
    "int": "int64",
    "long": "int64",
    "double": "float64",
    "currency": "float64",
    "percent": "float64",
    "boolean": "bool",
    "date": "date32",
    "datetime": "timestamp",
}


def _arrow_type(pa: Any, sf_type: str | None) -> Any:
    name = _SF_TO_ARROW.get((sf_type or "").lower())
    if name == "int64":
        return pa.int64()
    if name == "float64":
        return pa.float64()
    if name == "bool":
        return pa.bool_()
    if name == "date32":
        return pa.date32()
    if name == "timestamp":
        return pa.timestamp("ms", tz="UTC")
    return pa.string()


class ParquetWriter(RecordWriter):
    """Parquet through pyarrow, one row group per ``row_group_size`` rows.

    Column types come from ``field_types`` (Salesforce describe types, keys matched ignoring
    case): id/string/picklist/... -> string, int -> int64, double/currency/percent -> float64,
    boolean -> bool, date -> date32, datetime -> timestamp[ms, UTC]; unknown -> string. Values
    may be JSON-typed (REST) or strings (Bulk CSV), both are converted. Without ``field_types``
    the first rows (up to 5,000) decide: all-boolean -> bool, all-integer -> int64, numeric ->
    float64, else string; pass ``field_types`` when later rows might not fit that guess.
    Memory: at most 5,000 rows as Python objects, the rest of a row group as compact Arrow data.
    """

    format = "parquet"
    _text_mode = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pa, self._pq = _import_pyarrow()
        self._buffer: list[list[Any]] = []
        self._batches: list[Any] = []
        self._batched = 0
        self._writer: Any = None
        self._schema: Any = None

    def _declared_type(self, column: str) -> Any:
        types = {k.lower(): v for k, v in self._field_types.items()}
        if column.lower() in types:
            return _arrow_type(self._pa, types[column.lower()])
        return None

    def _guess_type(self, values: Sequence[Any]) -> Any:
        pa = self._pa
        seen = {type(v) for v in values if v is not None}
        if not seen:
            return pa.string()
        if seen == {bool}:
            return pa.bool_()
        if seen == {int}:
            return pa.int64()
        if seen <= {int, float}:
            return pa.float64()
        return pa.string()

    def _build_schema(self, columns_values: list[tuple[Any, ...]]) -> Any:
        pa = self._pa
        fields = []
        for i, name in enumerate(self._columns or []):
            declared = self._declared_type(name)
            if declared is None:
                declared = (
                    self._guess_type(columns_values[i])
                    if self._field_types == {} and columns_values
                    else pa.string()
                )
            fields.append(pa.field(name, declared))
        return pa.schema(fields)

    def _array(self, name: str, values: Sequence[Any], arrow_type: Any) -> Any:
        pa = self._pa
        if arrow_type == pa.string():
            try:
                return pa.array(values, type=arrow_type)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return pa.array([_as_text(v) for v in values], type=arrow_type)
        if not pa.types.is_timestamp(arrow_type) and not pa.types.is_date(arrow_type):
            try:
                return pa.array(values, type=arrow_type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                pass
        try:  # strings, as parsed from Bulk CSV: let Arrow parse them
            return pa.array(values, type=pa.string()).cast(arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
        texts = [None if v is None or v == "" else _as_text(v) for v in values]
        try:
            return pa.array(texts, type=pa.string()).cast(arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            if pa.types.is_integer(arrow_type):
                try:
                    return pa.array([_as_int(v) for v in texts], type=arrow_type)
                except (TypeError, ValueError):
                    pass
            raise ValueError(
                f"column {name!r}: values do not fit Parquet type {arrow_type} ({exc}); "
                "check field_types"
            ) from exc

    def _to_arrow(self) -> None:
        """Encode the buffered rows into an Arrow record batch (compact, off the Python heap)."""
        pa = self._pa
        columns_values = list(zip(*self._buffer, strict=False)) if self._buffer else []
        if self._schema is None:
            self._schema = self._build_schema(columns_values)
            self._writer = self._pq.ParquetWriter(self._file, self._schema)
        if self._buffer:
            arrays = [
                self._array(field.name, columns_values[i], field.type)
                for i, field in enumerate(self._schema)
            ]
            self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self._schema))
            self._batched += len(self._buffer)
            self._buffer = []
        if self._batched >= self._row_group_size:
            self._write_group()

    def _write_group(self) -> None:
        if self._batches:
            table = self._pa.Table.from_batches(self._batches, schema=self._schema)
            self._writer.write_table(table, row_group_size=self._row_group_size)
        self._batches = []
        self._batched = 0

    def _write_batch(self, rows: list[list[Any]]) -> None:
        # Python rows are turned into Arrow every few thousand rows; a row group is written
        # once ``row_group_size`` rows are encoded, so exactly one group per write.
        step = min(_ARROW_BATCH, self._row_group_size)
        i = 0
        while i < len(rows):
            room = min(
                step - len(self._buffer),
                self._row_group_size - self._batched - len(self._buffer),
            )
            self._buffer.extend(rows[i : i + room])
            i += room
            if (
                len(self._buffer) >= step
                or self._batched + len(self._buffer) >= self._row_group_size
            ):
                self._to_arrow()

    def _finish(self) -> None:
        self._to_arrow()
        self._write_group()
        if self._writer is not None:
            self._writer.close()

    def _abort(self) -> None:
        self._buffer = []
        self._batches = []
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _json_cell(value)
    return str(value)


def _as_int(value: Any) -> int | None:
    if value is None:
        return None
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


_WRITERS: dict[str, type[RecordWriter]] = {
    "csv": CsvWriter,
    "jsonl": JsonlWriter,
    "parquet": ParquetWriter,
}


def open_writer(
    path: Any,
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
    if key == "json":
        key = "jsonl"
    if key not in _WRITERS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return _WRITERS[key](path, columns, field_types=field_types, row_group_size=row_group_size)


# --- Bulk API CSV ------------------------------------------------------------------------------

_SCAN_BLOCK = 1 << 20


def _scan(data: bytes, start: int = 0, in_quotes: bool = False) -> tuple[int, bool]:
    """Count newlines outside double quotes in ``data[start:]``; return (count, in_quotes at end).

    RFC 4180 escapes a quote by doubling it, so quote parity alone tells inside from outside.
    Without any quote the answer is one ``bytes.count``. Otherwise each megabyte block is split
    on ``"`` and the outside pieces joined and counted: all C-level work, with a bounded copy.
    """
    if not in_quotes and data.find(b'"', start) < 0:
        return data.count(b"\n", start), False
    count = 0
    for pos in range(start, len(data), _SCAN_BLOCK):
        parts = data[pos : pos + _SCAN_BLOCK].split(b'"')
        count += b"".join(parts[1::2] if in_quotes else parts[0::2]).count(b"\n")
        if len(parts) % 2 == 0:
            in_quotes = not in_quotes
    return count, in_quotes


def _first_record_end(data: bytes) -> int:
    """Index just past the first record (the header line), honouring quoted newlines."""
    pos = data.find(b"\n")
    while pos >= 0:
        if data.count(b'"', 0, pos) % 2 == 0:
            return pos + 1
        pos = data.find(b"\n", pos + 1)
    return len(data)


def _last_record_end(data: bytes, start: int = 0) -> int:
    """Index just past the last complete record in ``data[start:]`` (``start`` if none)."""
    pos = data.rfind(b"\n", start)
    if pos < 0:
        return start
    if data.find(b'"', start) < 0:
        return pos + 1
    _, in_quotes = _scan(data, start)
    quotes_after = 0
    end = len(data)
    while pos >= 0:
        quotes_after += data.count(b'"', pos + 1, end)
        end = pos + 1
        # inside quotes at pos == in_quotes at end XOR (odd number of quotes after pos)
        if in_quotes == bool(quotes_after % 2):
            return pos + 1
        pos = data.rfind(b"\n", start, pos)
    return start


def _parse_header(header: bytes) -> list[str]:
    text = header.decode("utf-8-sig")
    return next(csv.reader(io.StringIO(text)), [])


class CsvChunkWriter:
    """Concatenate Bulk API 2.0 CSV result chunks into one file, as raw bytes.

    Every results chunk repeats the header row; the first chunk is written whole and the
    header line of each following chunk is skipped (it must be byte-identical, else the chunks
    do not belong together and ``ValueError`` is raised). Rows are not re-parsed: passing
    ``rows`` (the ``Sforce-NumberOfRecords`` header) skips counting entirely; otherwise
    newlines outside quotes are counted (see ``_scan``). A chunk that does not end with a
    newline gets one, so the next chunk's first record cannot fuse with its last; a chunk that
    ends inside a quoted field is refused. Atomic like every writer here.
    """

    def __init__(self, path: Any) -> None:
        self._dest = Destination(path)
        self._rows = 0
        self._header: bytes | None = None
        self._stack: contextlib.ExitStack | None = None
        self._file: IO[bytes] | None = None

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def path(self) -> str:
        return str(self._dest)

    @property
    def columns(self) -> list[str] | None:
        """Column names from the header of the first chunk (``None`` before any)."""
        return None if self._header is None else _parse_header(self._header)

    def __enter__(self) -> CsvChunkWriter:
        stack = contextlib.ExitStack()
        self._file = stack.enter_context(atomic_output(self._dest, "wb"))
        self._stack = stack
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        assert self._stack is not None, "CsvChunkWriter used without 'with'"
        stack, self._stack = self._stack, None
        return stack.__exit__(exc_type, exc, tb)

    def write_chunk(self, data: bytes, rows: int | None = None) -> int:
        """Append one results chunk (header + records); return the records it held."""
        if self._stack is None or self._file is None:
            raise RuntimeError("CsvChunkWriter must be used as a context manager")
        if not data:
            return 0
        header_end = _first_record_end(data)
        header = data[:header_end]
        if not header.endswith(b"\n"):
            header += b"\n"
        first = self._header is None
        if first:
            self._header = header
            self._file.write(data)
        else:
            if header != self._header:
                raise ValueError(
                    "CSV chunk header differs from the first chunk's: "
                    f"{header[:200]!r} != {self._header[:200]!r}"
                )
            self._file.write(memoryview(data)[header_end:])
        if rows is None:
            rows, in_quotes = _scan(data, header_end)
            if in_quotes:
                raise ValueError("CSV chunk ends inside a quoted field: it was cut mid-record")
            if header_end < len(data) and not data.endswith(b"\n"):
                rows += 1
        # Keep the file ending at a record boundary, whatever the chunk looked like.
        if not data.endswith(b"\n") and (first or header_end < len(data)):
            self._file.write(b"\n")
        self._rows += rows
        return rows


def open_csv_passthrough(path: Any) -> CsvChunkWriter:
    """A :class:`CsvChunkWriter` for ``path``; use it with ``with``."""
    return CsvChunkWriter(path)


_DECODE_BLOCK = 1 << 20


def _decoded_blocks(data: bytes, start: int, end: int) -> Iterator[str]:
    """``data[start:end]`` decoded in blocks of about a megabyte, each cut after a newline.

    Decoding a whole chunk at once (and wrapping it in StringIO, which stores 4 bytes per
    character) would cost several times the chunk size; blocks keep that bounded.
    """
    pos = start
    while pos < end:
        stop = min(pos + _DECODE_BLOCK, end)
        if stop < end:
            cut = data.rfind(b"\n", pos, stop)
            if cut < 0:
                cut = data.find(b"\n", stop, end)
            stop = end if cut < 0 else cut + 1
        yield data[pos:stop].decode("utf-8")
        pos = stop


def _decoded_lines(data: bytes, start: int, end: int) -> Iterator[str]:
    """Lines of ``data[start:end]`` with their line endings, as the csv module wants them."""
    return chain.from_iterable(
        io.StringIO(text, newline="") for text in _decoded_blocks(data, start, end)
    )


def _records_from_csv_text(
    data: bytes, start: int, end: int, columns: list[str], converters: dict[int, Any]
) -> Iterator[dict[str, Any]]:
    width = len(columns)
    for row in csv.reader(_decoded_lines(data, start, end)):
        if not row:
            continue
        if len(row) != width:
            raise ValueError(f"CSV record has {len(row)} fields, header has {width}: {row!r}")
        if "" in row:
            row = [v or None for v in row]
        record = dict(zip(columns, row, strict=False))
        for i, convert in converters.items():
            value = row[i]
            if value:
                record[columns[i]] = convert(value)
        yield record


def _converters(columns: list[str], field_types: Mapping[str, str] | None) -> dict[int, Any]:
    if not field_types:
        return {}
    types = {k.lower(): (v or "").lower() for k, v in field_types.items()}
    table = {
        "boolean": lambda v: v.lower() == "true",
        "int": int,
        "long": int,
        "double": float,
        "currency": float,
        "percent": float,
    }
    return {
        i: table[types[c.lower()]] for i, c in enumerate(columns) if types.get(c.lower()) in table
    }


def csv_chunks_to_records(
    chunks: Iterable[bytes], field_types: Mapping[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Parse streamed Bulk API CSV chunks into record dicts (empty cell -> ``None``).

    Keys are the header names (``Owner.Name`` stays one flat dotted key; the writers accept
    that). Values are strings, unless ``field_types`` (Salesforce describe types) is given:
    then boolean/int/double/currency/percent cells become ``bool``/``int``/``float``.
    Memory is bounded by one chunk. A chunk is expected to start with the header row and end at
    a record boundary, as Bulk results do; a trailing partial record is carried into the next
    chunk, and a chunk not starting with the header is taken as a continuation, so plain
    byte blocks also work (unless a data row happens to equal the header line).
    """
    header: bytes | None = None
    columns: list[str] = []
    converters: dict[int, Any] = {}
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        if header is None:
            if pending:
                chunk = pending + chunk
                pending = b""
            end = _first_record_end(chunk)
            if end == len(chunk) and not chunk.endswith(b"\n"):
                pending = chunk  # the header line is not complete yet
                continue
            header = chunk[:end].rstrip(b"\r\n") + b"\n"
            columns = _parse_header(header)
            converters = _converters(columns, field_types)
            data, start = chunk, end
        elif not pending and chunk.startswith(header.rstrip(b"\n")):
            end = _first_record_end(chunk)
            same = chunk[:end].rstrip(b"\r\n") + b"\n" == header
            data, start = chunk, (end if same else 0)
        else:
            data, start = chunk, 0
        if pending:
            data, start = pending + data[start:], 0
        cut = _last_record_end(data, start)
        pending = data[cut:]
        if cut > start:
            yield from _records_from_csv_text(data, start, cut, columns, converters)
    if header is None and pending:
        return  # a header without records
    if pending.strip(b"\r\n"):
        yield from _records_from_csv_text(pending, 0, len(pending), columns, converters)


# --- readers for loads -------------------------------------------------------------------------


def _format_from_name(name: str) -> str:
    lower = name.lower()
    for suffix in (".gz",):
        if lower.endswith(suffix):
            raise ValueError(f"compressed input {name!r} is not supported: decompress it first")
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {name!r} from its suffix: pass fmt='csv'|'jsonl'")


def read_records(path: Any, fmt: str | None = None) -> Iterator[dict[str, Any]]:
    """Stream records from a CSV or JSONL file (local or object storage), one dict at a time.

    ``fmt`` defaults from the suffix (``.csv``; ``.jsonl``/``.ndjson``/``.json`` as JSON Lines).
    CSV: the first row is the header, a UTF-8 BOM is ignored, an empty cell is ``None`` (as in
    Salesforce's own CSV, where empty means null) and all other values are strings. JSONL:
    blank lines are skipped. A file whose first character is ``[`` is read as one JSON array
    of records; that is loaded whole, so keep big inputs in JSON Lines.
    """
    source = Destination(path)
    kind = (fmt or _format_from_name(source.name)).lower()
    if kind == "json":
        kind = "jsonl"
    if kind not in ("csv", "jsonl"):
        raise ValueError(f"read_records reads csv or jsonl, not {fmt!r}")
    return _read_csv(source) if kind == "csv" else _read_jsonl(source)


def _read_csv(source: Destination) -> Iterator[dict[str, Any]]:
    with source.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text)
        columns = next(reader, None)
        if columns is None:
            return
        width = len(columns)
        for row in reader:
            if not row:
                continue
            if len(row) != width:
                raise ValueError(
                    f"{source}: line {reader.line_num} has {len(row)} fields, header has {width}"
                )
            yield {k: (v or None) for k, v in zip(columns, row, strict=False)}


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    """A binary file's lines through ``readline`` alone: some storage wrappers' file objects (the
    ObjectStoragePath of Airflow 3.0) have no ``__iter__`` and cannot be looped over."""
    return iter(handle.readline, b"")


def _read_jsonl(source: Destination) -> Iterator[dict[str, Any]]:
    with source.open("rb") as raw:
        skipped = 0
        first = raw.readline()
        while first and not first.strip(b"\xef\xbb\xbf \t\r\n"):
            skipped += 1
            first = raw.readline()
        if first.lstrip(b"\xef\xbb\xbf \t").startswith(b"["):
            records = json.loads((first + raw.read()).decode("utf-8-sig"))
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ValueError(f"{source}: a JSON array of record objects was expected")
            yield from records
            return
        if first.startswith(b"\xef\xbb\xbf"):
            first = first[3:]
        for number, line in enumerate(chain([first], _lines(raw)), start=1 + skipped):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{source}: line {number} is not valid JSON: {exc}") from exc


@dataclass(frozen=True)
class CsvPart:
    """One upload-sized piece of a CSV file: the header row plus whole records.

    ``path`` is a local temporary file, valid only until the ``split_csv`` iterator is
    advanced or closed; upload it before asking for the next part. ``size`` is its exact byte
    length (for ``Content-Length``), ``line_ending`` is "LF" or "CRLF" as found in the header
    (the ingest job's ``lineEnding`` must match).
    """

    path: str
    index: int
    rows: int
    size: int
    header: bytes
    line_ending: str

    def open(self) -> IO[bytes]:
        """The part as a binary file; ``requests`` streams it as a request body."""
        return open(self.path, "rb")  # noqa: SIM115 - the caller closes it

    def iter_bytes(self, block: int = 1 << 20) -> Iterator[bytes]:
        """The part in blocks of ``block`` bytes."""
        with open(self.path, "rb") as f:
            while data := f.read(block):
                yield data


def _iter_csv_records(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Group physical lines into CSV records by quote parity; blank lines are dropped."""
    buffer: list[bytes] = []
    odd = False
    for line in lines:
        if line.count(b'"') % 2:
            odd = not odd
        if odd:
            buffer.append(line)
            continue
        if buffer:
            buffer.append(line)
            yield b"".join(buffer)
            buffer = []
        elif line.strip(b"\r\n"):
            yield line
    if buffer:
        raise ValueError("CSV ends inside a quoted field (unbalanced quotes)")


def split_csv(path: Any, max_bytes: int = 100 * 1024 * 1024) -> Iterator[CsvPart]:
    """Stream a CSV file into parts of at most ``max_bytes`` bytes, each starting with the header.

    Why: a Bulk API 2.0 ingest upload is limited to 150 MB (100 MB of raw CSV recommended), so
    big files become several jobs. Parts are cut only between records (quoted newlines kept
    inside their record), a UTF-8 BOM is removed from the header, a missing final newline is
    added, and blank lines are dropped. Each part is written to a temporary file and deleted
    when the iterator moves on, so memory holds one record at a time and disk one part.
    Raises ``ValueError`` when a single record (plus header) is larger than ``max_bytes``.
    """
    source = Destination(path)
    with source.open("rb") as raw:
        records = _iter_csv_records(_lines(raw))
        header = next(records, None)
        if header is None:
            return
        if header.startswith(b"\xef\xbb\xbf"):
            header = header[3:]
        line_ending = "CRLF" if header.endswith(b"\r\n") else "LF"
        newline = b"\r\n" if line_ending == "CRLF" else b"\n"
        if not header.endswith(b"\n"):
            header += newline
        if len(header) >= max_bytes:
            raise ValueError(f"the CSV header alone is larger than max_bytes={max_bytes}")
        workdir = tempfile.mkdtemp(prefix="sfjwt-split-")
        out: IO[bytes] | None = None
        try:
            index = 0
            part_path = ""
            size = rows = 0
            for record in records:
                if not record.endswith(b"\n"):
                    record += newline
                if out is not None and size + len(record) > max_bytes:
                    out.close()
                    yield CsvPart(part_path, index, rows, size, header, line_ending)
                    os.unlink(part_path)
                    out = None
                    index += 1
                if out is None:
                    if len(header) + len(record) > max_bytes:
                        raise ValueError(
                            f"record {rows + 1} of part {index} is larger than "
                            f"max_bytes={max_bytes} with the header"
                        )
                    part_path = os.path.join(workdir, f"part-{index:05d}.csv")
                    out = open(part_path, "wb", buffering=1 << 20)  # noqa: SIM115
                    out.write(header)
                    size, rows = len(header), 0
                out.write(record)
                size += len(record)
                rows += 1
            if out is not None:
                out.close()
                yield CsvPart(part_path, index, rows, size, header, line_ending)
        finally:
            if out is not None:
                out.close()
            shutil.rmtree(workdir, ignore_errors=True)
