"""Bulk API 2.0 ingest processing: CSV rows in, writes applied, result CSV files out.

Runs in a worker thread per job, reading the uploaded file row by row and applying writes in
internal batches of 10,000 rows (like Salesforce), so a million-row upload needs little memory and
queries keep being served between batches.
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from typing import IO, TYPE_CHECKING, Any

from . import values as field_values
from . import writes
from .ids import normalize_id
from .store import Table
from .values import Rejected, WriteError

if TYPE_CHECKING:
    from .bulk_job import Job
    from .emulator import SalesforceEmulator

DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
INTERNAL_BATCH = 10_000


class IngestProcessing:
    """Ingest-job processing, mixed into :class:`.bulk.Bulk`."""

    emu: SalesforceEmulator

    def _path(self, job: Job, suffix: str) -> str:  # provided by Bulk
        raise NotImplementedError

    def _open_upload(self, job: Job) -> IO[str]:
        if job.upload is None:
            return io.StringIO("")
        if job.gzipped:
            return io.TextIOWrapper(gzip.open(job.upload, "rb"), encoding="utf-8-sig", newline="")
        return open(job.upload, encoding="utf-8-sig", newline="")

    def _writer(self, path: str) -> tuple[IO[str], Any]:
        fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller
        return fh, csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n")

    def _write_unprocessed(self, job: Job, skip: int) -> None:
        """Rows ``skip``.. of the upload, as Salesforce returns them for aborted/failed jobs."""
        out, w = self._writer(self._path(job, "unp"))
        with out, self._open_upload(job) as src:
            reader = csv.reader(src, delimiter=DELIMITERS[job.delimiter])
            header = next(reader, None)
            if header:
                w.writerow(header)
                for k, row in enumerate(reader):
                    if k >= skip:
                        w.writerow(row)

    def _process(self, job: Job) -> None:
        t0 = time.monotonic()
        try:
            self._process_rows(job)
        except Exception as exc:  # a bug or bad file: report it like Salesforce does
            job.error_message = f"InvalidBatch : {exc}"
        finally:
            job.processing_ms = int((time.monotonic() - t0) * 1000)
            job.finished.set()

    def _process_rows(self, job: Job) -> None:
        emu = self.emu
        store = emu.store
        table = store.table(job.object)
        ok_fh, ok = self._writer(self._path(job, "ok"))
        err_fh, err = self._writer(self._path(job, "err"))
        with ok_fh, err_fh, self._open_upload(job) as src:
            reader = csv.reader(src, delimiter=DELIMITERS[job.delimiter])
            header = next(reader, None)
            if header is None:
                ok.writerow(["sf__Id", "sf__Created"])
                err.writerow(["sf__Id", "sf__Error"])
                self._write_unprocessed(job, 0)
                return
            columns = self._columns(job, table, header)
            if columns is None:
                ok.writerow(["sf__Id", "sf__Created", *header])
                err.writerow(["sf__Id", "sf__Error", *header])
                self._write_unprocessed(job, 0)
                return
            ok.writerow(["sf__Id", "sf__Created", *header])
            err.writerow(["sf__Id", "sf__Error", *header])
            done = 0
            batch: list[list[str]] = []
            for row in reader:
                batch.append(row)
                if len(batch) >= INTERNAL_BATCH:
                    if job.abort_requested:
                        break
                    self._apply_batch(job, table, columns, batch, ok, err)
                    done += len(batch)
                    batch = []
            else:
                if batch and not job.abort_requested:
                    self._apply_batch(job, table, columns, batch, ok, err)
                    done += len(batch)
                    batch = []
        if job.abort_requested:
            self._write_unprocessed(job, done)
        else:
            out, w = self._writer(self._path(job, "unp"))
            with out:
                w.writerow(header)

    def _columns(self, job: Job, table: Table, header: list[str]) -> list[Any] | None:
        """Per column: (field, parent table, parent external-id field) or None (ignored)."""
        store = self.emu.store
        out: list[Any] = []
        for name in header:
            name = name.strip()
            if "." in name:
                rel, _, ext = name.partition(".")
                ref = table.relationship(rel)
                parent = (
                    store.table(ref.reference_to) if ref is not None and ref.reference_to else None
                )
                pf = parent.field(ext) if parent is not None else None
                if (
                    ref is None
                    or parent is None
                    or pf is None
                    or not (pf.external_id or pf.name == "Id")
                ):
                    job.error_message = f"InvalidBatch : Field name not found : {name}"
                    return None
                out.append((ref, parent, pf))
                continue
            f = table.field(name)
            if f is None:
                job.error_message = f"InvalidBatch : Field name not found : {name}"
                return None
            out.append((f, None, None))
        return out

    def _apply_batch(
        self, job: Job, table: Table, columns: list[Any], batch: list[list[str]], ok: Any, err: Any
    ) -> None:
        emu = self.emu
        now = emu.now_datetime()
        with emu.store.lock:
            for row in batch:
                rid = ""
                try:
                    if emu.faults.take_row_lock():
                        raise Rejected(writes.LOCKED)
                    values = self._values(table, columns, row)
                    rid = values.pop("Id", None) or ""
                    created = self._write_one(job, table, values, rid, now)
                    rid = created[0]
                    ok.writerow([rid, "true" if created[1] else "false", *row])
                except Rejected as exc:
                    job.failed += 1
                    err.writerow([rid if isinstance(rid, str) else "", exc.error.bulk(), *row])
                job.processed += 1

    def _values(self, table: Table, columns: list[Any], row: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for (f, parent, pf), raw in zip(columns, row, strict=False):
            if raw == "":
                continue
            if raw == "#N/A":
                values[f.name] = None
                continue
            if parent is not None:
                values[f.name] = writes.foreign_key(self.emu.store, f, pf.name, raw)
                continue
            values[f.name] = field_values.from_csv(f, raw)
        return values

    def _write_one(
        self, job: Job, table: Table, values: dict[str, Any], rid: str, now: str
    ) -> tuple[str, bool]:
        store = self.emu.store
        op = job.operation
        batch = writes.Batch()
        if op == "insert":
            plan = writes.plan_create(store, table, values, batch, typed=True)
            return writes.apply_create(table, plan, now, job.created_by or None), True
        if op in ("delete", "hardDelete"):
            n = normalize_id(rid)
            if n is None:
                raise Rejected(
                    WriteError("MALFORMED_ID", f"malformed id {rid}", ["Id"] if not rid else [])
                )
            row = table.index.get(n)
            if row is None:
                raise Rejected(
                    WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
                )
            if op == "delete":
                writes.find(table, n)
                table.soft_delete(row, now)
            else:
                table.purge(row, now)
            return n, False
        if op == "update":
            if not rid:
                raise Rejected(
                    WriteError("MISSING_ARGUMENT", "Id not specified in an update call", [])
                )
            row, plan = writes.plan_update(store, table, rid, values, batch, typed=True)
            return writes.apply_update(table, row, plan, now), False
        ext = job.external_id or "Id"
        key = values.get(ext) if ext != "Id" else rid
        if key in (None, ""):
            raise Rejected(WriteError("MISSING_ARGUMENT", f"{ext} not specified", []))
        row = (
            table.unique_index(ext).get(key)
            if ext != "Id"
            else table.index.get(normalize_id(key) or "")
        )
        if row is not None:
            rid = table.cols["Id"][row]
            row, plan = writes.plan_update(store, table, rid, values, batch, typed=True)
            return writes.apply_update(table, row, plan, now), False
        plan = writes.plan_create(store, table, values, batch, typed=True)
        return writes.apply_create(table, plan, now, job.created_by or None), True
