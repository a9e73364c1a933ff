"""One Bulk API 2.0 job of the emulator: its record and the job info Salesforce answers with.

A query job's result chunks are addressed by locators: opaque to clients, here the base64 of the
first row's offset (Salesforce's are opaque too, so a client must only echo them back).
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import soql


@dataclass
class Job:
    id: str
    kind: str  # "query" | "ingest"
    operation: str
    object: str
    version: str
    created_by: str
    created: str
    delimiter: str = "COMMA"
    line_ending: str = "LF"
    state: str = "UploadComplete"
    polls: int = 0
    started: float = field(default_factory=time.monotonic)
    fault: tuple[str, str] | None = None
    error_message: str | None = None
    modstamp: str = ""
    # query
    query: soql.Query | None = None
    rows: Any = None
    # ingest
    external_id: str | None = None
    upload: str | None = None
    gzipped: bool = False
    processed: int = 0
    failed: int = 0
    worker: threading.Thread | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    abort_requested: bool = False
    processing_ms: int = 0

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created,
            "systemModstamp": self.modstamp or self.created,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
        }
        if self.kind == "query":
            out.update(
                {
                    "jobType": "V2Query",
                    "numberRecordsProcessed": len(self.rows) if self.state == "JobComplete" else 0,
                    "retries": 0,
                    "totalProcessingTime": 0 if self.state != "JobComplete" else 42,
                    "isPkChunkingSupported": True,
                }
            )
        else:
            out.update(
                {
                    "jobType": "V2Ingest",
                    "contentUrl": f"services/data/v{self.version}/jobs/ingest/{self.id}/batches",
                    "externalIdFieldName": self.external_id,
                    "numberRecordsProcessed": self.processed,
                    "numberRecordsFailed": self.failed,
                    "retries": 0,
                    "totalProcessingTime": self.processing_ms,
                    "apiActiveProcessingTime": self.processing_ms,
                    "apexProcessingTime": 0,
                }
            )
        if self.error_message:
            out["errorMessage"] = self.error_message
        return out


def locator(offset: int) -> str:
    """The opaque ``Sforce-Locator`` of a result chunk starting at row ``offset``."""
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def locator_offset(locator: str) -> int | None:
    """The row a locator points at; ``None`` for one this emulator never handed out."""
    if not locator:
        return 0
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4)).decode()
        return int(text) if text.isdigit() else None
    except (ValueError, UnicodeDecodeError):
        return None
