"""Parquet output through pyarrow, typed from Salesforce's describe types.

pyarrow is an optional extra (``airflow-provider-sfjwt[parquet]``): it is imported when a
:class:`ParquetWriter` is created, never when this module is, so CSV and JSONL users need not
install it and the missing extra is named before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import InvalidInputError
from .records import json_cell
from .writers import RecordWriter

__all__ = ["PARQUET_INSTALL_HINT", "ParquetWriter"]

PARQUET_INSTALL_HINT = "pip install 'airflow-provider-sfjwt[parquet]'"

# Rows held as Python objects before the writer encodes them into Arrow arrays.
_ARROW_BATCH = 5000


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
            raise InvalidInputError(
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
        return json_cell(value)
    return str(value)


def _as_int(value: Any) -> int | None:
    if value is None:
        return None
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)
