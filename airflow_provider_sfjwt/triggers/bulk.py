"""Trigger that waits for Bulk API 2.0 jobs in the triggerer, without holding a worker slot.

The triggerer runs many triggers on one event loop, so nothing here may block it: the
connection lookup, key loading, token exchange and every HTTP poll run in a worker thread
(:func:`~airflow_provider_sfjwt.compat.in_worker_thread`, whose threads may ask Airflow for the
connection on every release) and the loop only ever awaits.

What is serialised (and so stored in the metadata DB) is only the connection id, the job ids,
their kind, the poll interval and the deadline: never a key, token or assertion. The triggerer
builds its own hook from the connection id, exactly as a worker does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_sfjwt.compat import in_worker_thread
from airflow_provider_sfjwt.salesforce.bulk import (
    DEFAULT_POLL_INTERVAL,
    JOB_KINDS,
    BulkJobs,
    JobWatch,
)
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.errors import BulkJobError, BulkJobTimeoutError


class SalesforceBulkJobTrigger(BaseTrigger):
    """Poll one or more Bulk API 2.0 jobs of one kind until all complete, one fails, or time runs out.

    :param salesforce_conn_id: connection of type ``salesforce_jwt``.
    :param job_ids: ids of jobs of the same kind (an ingest split into several uploads has several).
    :param kind: ``"query"`` or ``"ingest"``.
    :param poll_interval: seconds before the first poll; later polls back off to 30 s at most.
    :param deadline: Unix time after which unfinished jobs are aborted. Absolute, so a triggerer
        restart does not grant a job a fresh timeout.

    Yields one event: ``{"status": "success", "kind", "job_ids", "jobs": [...]}`` or
    ``{"status": "error", "kind", "job_ids", "job_id", "state", "message", "timeout": bool}``,
    where ``jobs`` holds each job's state and record counts (no secrets, a few numbers each).
    """

    def __init__(
        self,
        salesforce_conn_id: str,
        job_ids: Sequence[str],
        kind: str,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        deadline: float | None = None,
    ) -> None:
        BaseTrigger.__init__(self)  # by name: untyped_calls_exclude misses super()
        if kind not in JOB_KINDS:
            raise ValueError(f"kind must be 'query' or 'ingest', not {kind!r}")
        self.salesforce_conn_id = salesforce_conn_id
        self.job_ids = list(job_ids)
        self.kind = kind
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self._jobs: BulkJobs | None = None
        # The same judgement as a wait in the worker; the deadline is wall-clock time, absolute.
        self._watch = JobWatch(
            kind, self.job_ids, poll_interval=self.poll_interval, deadline=deadline, clock=time.time
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "salesforce_conn_id": self.salesforce_conn_id,
                "job_ids": list(self.job_ids),
                "kind": self.kind,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    def _make_jobs(self) -> BulkJobs:
        from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook

        client: SalesforceClient = SalesforceJWTHook(
            salesforce_conn_id=self.salesforce_conn_id
        ).get_conn()
        return BulkJobs(client, poll_interval=self.poll_interval)

    async def _get_jobs(self) -> BulkJobs:
        if self._jobs is None:
            self._jobs = await in_worker_thread(self._make_jobs)
        return self._jobs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        jobs = await self._get_jobs()
        watch = self._watch
        try:
            # The same rounds as a wait in the worker; only the sleep is the event loop's.
            while (
                wait := await in_worker_thread(watch.poll_round, jobs.get, self.log)
            ) is not None:
                await asyncio.sleep(wait)
        except BulkJobError as exc:
            await self._abort_pending(jobs)
            yield TriggerEvent(
                {
                    "status": "error",
                    "kind": self.kind,
                    "job_ids": self.job_ids,
                    "job_id": exc.job_id,
                    "state": exc.state,
                    "message": exc.message,
                    "timeout": isinstance(exc, BulkJobTimeoutError),
                }
            )
            return
        yield TriggerEvent(
            {
                "status": "success",
                "kind": self.kind,
                "job_ids": self.job_ids,
                "jobs": [_job_numbers(info) for info in watch.results()],
            }
        )

    async def _abort_pending(self, jobs: BulkJobs) -> None:
        pending = self._watch.pending
        while pending:
            await in_worker_thread(jobs.abort_quietly, self.kind, pending.pop(0))

    async def on_kill(self) -> None:
        """The user killed the deferred task: abort the jobs it was waiting for."""
        if self._watch.pending:
            await self._abort_pending(await self._get_jobs())


def _job_numbers(info: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "state",
        "apiVersion",
        "numberRecordsProcessed",
        "numberRecordsFailed",
        "totalProcessingTime",
    )
    return {k: info[k] for k in keys if k in info}
