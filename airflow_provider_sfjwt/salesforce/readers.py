"""Reading input files for loads: records from CSV or JSONL, and CSV split for Bulk uploads.

Both stream: :func:`read_records` yields one record at a time, :func:`split_csv` holds one
record in memory and one upload-sized part on disk. Sources are local paths or object-storage
paths (see :mod:`.storage`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import IO, Any

from .errors import InvalidInputError
from .storage import Destination, FilePath

__all__ = ["CsvPart", "read_records", "split_csv"]


def _format_from_name(name: str) -> str:
    lower = name.lower()
    for suffix in (".gz",):
        if lower.endswith(suffix):
            raise InvalidInputError(
                f"compressed input {name!r} is not supported: decompress it first"
            )
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise InvalidInputError(
        f"cannot tell the format of {name!r} from its suffix: pass fmt='csv'|'jsonl'"
    )


def read_records(path: FilePath | Destination, fmt: str | None = None) -> Iterator[dict[str, Any]]:
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
        raise InvalidInputError(f"read_records reads csv or jsonl, not {fmt!r}")
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
                raise InvalidInputError(
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
                raise InvalidInputError(f"{source}: a JSON array of record objects was expected")
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
                raise InvalidInputError(
                    f"{source}: line {number} is not valid JSON: {exc}"
                ) from exc


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
        raise InvalidInputError("CSV ends inside a quoted field (unbalanced quotes)")


def split_csv(path: FilePath, max_bytes: int = 100 * 1024 * 1024) -> Iterator[CsvPart]:
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
            raise InvalidInputError(f"the CSV header alone is larger than max_bytes={max_bytes}")
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
                        raise InvalidInputError(
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
