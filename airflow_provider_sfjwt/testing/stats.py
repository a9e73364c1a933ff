"""Counters of what clients did to the emulator (tests assert on them)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Literal

CounterName = Literal[
    "token_requests",
    "token_exchanges",
    "api_calls",
    "records_served",
    "bulk_query_jobs",
    "bulk_ingest_jobs",
    "faults_injected",
]


class Stats:
    """Counters of what clients did; also served as JSON at ``GET /__emulator__/stats``.

    Tests assert on them (one token exchange per process, no page fetched twice), so every
    update goes through one lock: request handlers run in many threads at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.token_requests = 0
            self.token_exchanges = 0
            self.api_calls = 0
            self.records_served = 0
            self.bulk_query_jobs = 0
            self.bulk_ingest_jobs = 0
            self.faults_injected = 0
            self.paths: Counter[str] = Counter()
            self.requests: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()

    def increment(self, name: CounterName, by: int = 1) -> None:
        """Add ``by`` to the counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + by)

    def record_request(self, method: str, path: str) -> None:
        """Count one request by path and by ``METHOD path``."""
        with self._lock:
            self.paths[path] += 1
            self.requests[f"{method} {path}"] += 1

    def record_status(self, status: int) -> None:
        """Count one answer by HTTP status."""
        with self._lock:
            self.statuses[status] += 1

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "token_requests": self.token_requests,
                "token_exchanges": self.token_exchanges,
                "api_calls": self.api_calls,
                "records_served": self.records_served,
                "bulk_query_jobs": self.bulk_query_jobs,
                "bulk_ingest_jobs": self.bulk_ingest_jobs,
                "faults_injected": self.faults_injected,
                "paths": dict(self.paths),
                "requests": dict(self.requests),
                "statuses": {str(k): v for k, v in self.statuses.items()},
            }

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __repr__(self) -> str:
        d = self.to_dict()
        return (
            f"Stats(token_exchanges={d['token_exchanges']}, api_calls={d['api_calls']}, "
            f"records_served={d['records_served']})"
        )
