"""Bulk API 2.0 CSV results: joined into one file, or parsed into records, while streaming.

A query job's results come in chunks (one per locator), each a CSV body that starts with the
header row. :class:`CsvJoiner` joins such bodies into one CSV byte stream without parsing them
(the CSV extract passes Salesforce's bytes through); :func:`csv_chunks_to_records` parses them
into record dicts for the JSONL and Parquet writers. Both hold one chunk at most. The joiner
refuses what would corrupt the output (a later header that differs from the first, a body cut
inside a quoted field); the parser reads from the joiner, so the same checks cover both.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol

from .errors import SalesforceError, UnexpectedResponseError

if TYPE_CHECKING:
    from .progress import Progress


class LineEndCounter(Protocol):
    """A body source that counts the line ends in the bytes it hands on, header row included.

    Counting is the source's job, not the joiner's: a source that downloads in a thread of its
    own counts each block there, while the joiner's thread is writing the blocks before it.
    """

    line_ends: int


class ResultChunkLike(LineEndCounter, Protocol):
    """A query result chunk as the joiner reads it: sequential (locator) or parallel."""

    job_id: str
    number: int

    @property
    def records(self) -> int: ...

    def iter_bytes(self) -> Iterator[bytes]: ...


__all__ = [
    "CsvJoiner",
    "CsvResultStream",
    "LineEndCounter",
    "ResultChunkLike",
    "count_line_ends",
    "csv_chunks_to_records",
]


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
    in_quotes = bool(data.count(b'"', start) % 2)  # RFC 4180: quote parity tells inside from out
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


def parse_header(header: bytes) -> list[str]:
    """Column names from a CSV header line (a UTF-8 BOM is ignored)."""
    text = header.decode("utf-8-sig")
    return next(csv.reader(io.StringIO(text)), [])


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
            raise UnexpectedResponseError(
                f"CSV record has {len(row)} fields, header has {width}: {row!r}"
            )
        values: list[str | None] = [v or None for v in row] if "" in row else list(row)
        record: dict[str, Any] = dict(zip(columns, values, strict=False))
        for i, convert in converters.items():
            value = values[i]
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
            columns = parse_header(header)
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


MAX_HEADER_BYTES = 1024 * 1024
"""A header row is a few kilobytes even for hundreds of columns; a body without a line end in
its first megabyte is refused instead of being buffered without end."""
MAX_RECORD_BYTES = 16 * 1024 * 1024
"""More bytes than one Salesforce record can take in CSV (an object holds at most 1,638,400
characters of long text, at most 4 bytes each in UTF-8, doubled quotes included): a body larger
than this per announced record was not counted right."""
MAX_LINES_PER_RECORD = 1000
"""Line ends per announced record beyond which a body's count is taken as wrong. A record may
hold line breaks in quoted text, but not a thousand on average over a whole body."""


COUNT_SLICE_BYTES = 64 * 1024
"""Bytes :func:`count_line_ends` takes at a time: under the size from which the C allocator maps
fresh pages from the kernel for each allocation (128 KB by default in glibc)."""


def count_line_ends(block: bytes) -> int:
    """Line ends in ``block``. Deleting them and comparing lengths is a memchr-driven pass over
    CSV (about 100 bytes between line ends), several times faster than ``bytes.count``'s
    byte-by-byte loop on CPython 3.11; for a byte as frequent as a quote it is slower.

    The deletion makes a copy. Made of a whole downloaded block (up to a megabyte), that copy
    is memory fresh from the kernel each time, and faulting its pages in cost twice the pass
    itself; slices of :data:`COUNT_SLICE_BYTES` reuse the allocator's memory instead."""
    return len(block) - sum(
        len(block[i : i + COUNT_SLICE_BYTES].replace(b"\n", b""))
        for i in range(0, len(block), COUNT_SLICE_BYTES)
    )


class CsvJoiner:
    """Joins CSV bodies that each start with a header row into one CSV byte stream.

    Bytes pass through untouched (no parsing): the first header row is kept, the header of every
    later body dropped, and a later header that differs from the first is refused, since it would
    misalign the columns. A body that does not end with a newline gets one, so the next body's
    first record cannot fuse with its last.

    A body cut mid-record must not be joined, and each check costs one C-level pass over every
    block, so the joiner makes one of two: by default it counts quotes and refuses a body that
    ends inside a quoted field; for a body whose source counts its line ends
    (:class:`LineEndCounter`) it takes that count instead (:attr:`body_lines`), for a caller that
    knows how many records each body holds and checks that (a record cut off loses its line end,
    so its body holds fewer line ends than records).

    Nothing from the server is trusted to be small or right: a header row is collected into a
    ``bytearray`` (linear cost) up to :data:`MAX_HEADER_BYTES`, and a body given its announced
    record count is refused as soon as its size or line ends grossly exceed it. Every check
    raises while the bytes are still flowing, so a writer that publishes only on success
    (``atomic_output``) never publishes such a body.
    """

    def __init__(self) -> None:
        self.header: bytes | None = None
        self.body_lines = 0
        """For a body read with a ``counter``: line ends after the header in the last body read
        (one more if it lacked the last)."""

    @property
    def columns(self) -> list[str]:
        """Column names from the first header row (empty before any)."""
        return parse_header(self.header) if self.header else []

    def body(
        self,
        blocks: Iterable[bytes],
        what: str,
        records: int | None = None,
        counter: LineEndCounter | None = None,
    ) -> Iterator[bytes]:
        """One body's bytes for the joined stream; ``what`` names the body in errors.

        ``counter`` is the source of ``blocks`` when it counts their line ends; the body is then
        checked by that count instead of by its quotes. With ``records`` (the server's count of
        records in this body), a body that is far too large for that many is refused while it
        flows: more than :data:`MAX_RECORD_BYTES` per record or, with a ``counter``, more than
        :data:`MAX_LINES_PER_RECORD` line ends per record.
        """
        blocks = iter(blocks)
        self.body_lines = 0
        head: bytes = b""
        newline = -1
        spanning: bytearray | None = None  # a header row longer than the first block
        for block in blocks:
            if spanning is None:
                newline = block.find(b"\n")
                if newline >= 0:
                    head = block
                    break
                spanning = bytearray(block)
            else:
                start = len(spanning)
                spanning += block
                newline = spanning.find(b"\n", start)
                if newline >= 0:
                    head = bytes(spanning)
                    break
            if len(spanning) > MAX_HEADER_BYTES:
                raise UnexpectedResponseError(
                    f"{what} has no line end in its first {len(spanning):,} bytes: that is no "
                    f"header row (at most {MAX_HEADER_BYTES:,} bytes are read). The server "
                    "answered something other than Bulk API CSV."
                )
        if newline < 0:  # a header-only body without a final newline, or nothing
            if spanning:
                header = bytes(spanning) + b"\n"
                self._check_header(header, what)
                if self.header is None:
                    self.header = header
                    yield header
            return
        header, rest = head[: newline + 1], head[newline + 1 :]
        del head, spanning
        self._check_header(header, what)
        if self.header is None:
            self.header = header
            yield header
        quotes = size = 0
        last = b"\n"
        for block in chain((rest,), blocks):
            if block:
                size += len(block)
                if counter is None:
                    quotes += block.count(b'"')
                if records is not None:
                    lines = None if counter is None else counter.line_ends - 1
                    self._check_size(what, records, size, lines)
                last = block[-1:]
                yield block
        if counter is not None:
            # The header row's line end is not a record's; a last record without one still is.
            self.body_lines = counter.line_ends - 1 + (last != b"\n")
        elif quotes % 2:
            raise SalesforceError(
                f"{what} ends inside a quoted field: it was cut mid-record, and joining it "
                "would corrupt the rows that follow. Run the task again."
            )
        if last != b"\n":
            yield b"\n"

    @staticmethod
    def _check_size(what: str, records: int, size: int, lines: int | None) -> None:
        """Refuse a body whose ``size`` bytes (or ``lines`` line ends) after the header so far
        are far more than ``records`` records can take; early, so a huge body is not written."""
        if size > MAX_RECORD_BYTES * (records + 1):
            found = f"more than {size:,} bytes, far more than that many rows can take"
        elif lines is not None and lines > MAX_LINES_PER_RECORD * (records + 1):
            found = f"more than {lines:,} line ends, far more than that many rows can hold"
        else:
            return
        raise UnexpectedResponseError(
            f"{what} announced {records:,} records (Sforce-NumberOfRecords) but holds {found}. "
            "The count or the body is wrong, so the row count cannot be trusted; nothing was "
            "written. Run the task again; if it repeats, report the job id."
        )

    def _check_header(self, header: bytes, what: str) -> None:
        if self.header is not None and header != self.header:
            raise SalesforceError(
                f"{what} has another header row than the first ({header[:200]!r}); the "
                "results cannot be joined into one file."
            )


class CsvResultStream(CsvJoiner):
    """The result chunks of a query job as one CSV byte stream; ``rows`` counts as it is read.

    Rows come from Salesforce's ``Sforce-NumberOfRecords`` on each chunk. Each chunk is checked
    against its count: passed through, it must hold at least that many line ends (a value may
    span lines, so more is fine; fewer means a record was lost or cut off, which this check
    catches instead of the quote count) and not grossly more; parsed (:meth:`records`), exactly
    that many records. ``progress`` is told each chunk's rows once they are handed on.
    """

    def __init__(self, chunks: Iterable[ResultChunkLike], progress: Progress | None = None) -> None:
        super().__init__()
        self._chunks = chunks
        self._progress = progress
        self.rows = 0

    def _counted(self, chunk: ResultChunkLike, found: int, what: str, exact: bool) -> None:
        expected = chunk.records
        if found < expected or (exact and found != expected):
            held = (
                f"held {found:,}"
                if exact
                else f"holds only {found:,} lines, too few for that many rows"
            )
            raise UnexpectedResponseError(
                f"{what} announced {expected:,} records (Sforce-NumberOfRecords) but {held}; "
                "rows would be lost or invented, so nothing was written. Run the task again, "
                "and if it persists, report the job id."
            )
        self.rows += expected
        if self._progress is not None:
            self._progress.add(expected)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            what = f"Result chunk {chunk.number} of Bulk query job {chunk.job_id}"
            yield from self.body(chunk.iter_bytes(), what, chunk.records, chunk)
            self._counted(chunk, self.body_lines, what, exact=False)

    def records(self, field_types: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """The records of every chunk in order, parsed (see :func:`csv_chunks_to_records`) and
        counted exactly per chunk."""
        for chunk in self._chunks:
            what = f"Result chunk {chunk.number} of Bulk query job {chunk.job_id}"
            header = self.header
            blocks = self.body(chunk.iter_bytes(), what, chunk.records, chunk)
            if header is not None:  # later bodies lose their header row in the joiner
                blocks = chain((header,), blocks)
            found = 0
            for record in csv_chunks_to_records(blocks, field_types):
                found += 1
                yield record
            self._counted(chunk, found, what, exact=True)
