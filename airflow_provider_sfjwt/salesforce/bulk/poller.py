"""Waiting for Bulk API 2.0 jobs: one poller for the worker and for the triggerer.

A task either waits in its worker (:meth:`.jobs.BulkJobs.wait_all`) or defers to the triggerer
(:class:`airflow_provider_sfjwt.triggers.bulk.SalesforceBulkJobTrigger`). Both must judge a job
the same way: which states end the wait, which ones fail it and with what advice, how long to
sleep between polls, and what a timeout says. :class:`JobWatch` is that judgement without any
I/O: the caller fetches each job's info (blocking, or in a thread from the event loop), hands it
to :meth:`JobWatch.observe` and sleeps for :meth:`JobWatch.next_wait`. The Amazon provider
shares one waiter between its synchronous waits and ``async_wait`` the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import BulkJobError, BulkJobTimeoutError

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "TERMINAL_STATES",
    "JobWatch",
    "job_error",
    "poll_delays",
    "raise_for_state",
]

TERMINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
DEFAULT_POLL_INTERVAL = 5.0
"""Seconds before the first poll; Salesforce asks clients not to poll faster than every few seconds."""
MAX_POLL_INTERVAL = 30.0
POLL_BACKOFF = 1.5
DEFAULT_TIMEOUT = 24 * 3600.0
"""Seconds a job may take before it is aborted; Salesforce itself gives up on jobs after a day."""

_STATE_HINTS = {
    "Failed": (
        "read Salesforce's message above; for a query, run the SOQL in the Developer Console to "
        "check it; for an ingest, check the CSV header (field API names) and the operation. The "
        "job stays visible in Setup > Bulk Data Load Jobs"
    ),
    "Aborted": (
        "someone or something aborted the job (this task's on_kill or job_timeout, another "
        "client, or an admin in Setup > Bulk Data Load Jobs); run the task again if that was not "
        "intended"
    ),
}
_TIMEOUT_HINT = (
    "raise the timeout (job_timeout on the Bulk operators) if the job is just slow (large "
    "objects, busy org); Setup > Bulk Data Load Jobs shows its progress"
)


def poll_delays(poll_interval: float, max_interval: float = MAX_POLL_INTERVAL) -> Iterator[float]:
    """Waits between polls: ``poll_interval`` growing by half each time up to ``max_interval``."""
    delay = max(0.0, poll_interval)
    while True:
        yield delay
        delay = min(max(delay * POLL_BACKOFF, poll_interval), max(max_interval, poll_interval))


def job_error(
    kind: str, job_id: str, state: str, message: str, *, timeout: bool = False
) -> BulkJobError:
    """The error for a job that ended Failed or Aborted, or that ran out of time.

    The one place where the advice is chosen, so a job judged in the worker and one judged in
    the triggerer (and raised later from the trigger's event) read the same.
    """
    if timeout:
        return BulkJobTimeoutError(kind, job_id, state, message, _TIMEOUT_HINT)
    return BulkJobError(kind, job_id, state, message, _STATE_HINTS.get(state, ""))


def raise_for_state(kind: str, info: Mapping[str, Any]) -> None:
    """Raise :class:`BulkJobError` for a Failed or Aborted job; do nothing otherwise."""
    state = str(info.get("state", ""))
    if state in ("Failed", "Aborted"):
        raise job_error(kind, str(info.get("id", "?")), state, str(info.get("errorMessage") or ""))


class JobWatch:
    """Where a wait for jobs of one kind stands: which are pending, what each finished with.

    ``deadline`` is read on ``clock``: the worker uses ``time.monotonic`` with a deadline it
    computed itself, the triggerer uses ``time.time`` with the absolute deadline the operator
    serialised, so a restarted triggerer does not grant the jobs a fresh timeout.
    """

    def __init__(
        self,
        kind: str,
        job_ids: Sequence[str],
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.job_ids = list(job_ids)
        self.pending = list(job_ids)
        self.finished: dict[str, dict[str, Any]] = {}
        self.deadline = deadline
        self._clock = clock
        self._delays = poll_delays(poll_interval)
        self._states: dict[str, str] = {}

    def observe(self, job_id: str, info: Mapping[str, Any]) -> None:
        """Take one job's latest info; raise :class:`BulkJobError` if it ended Failed or Aborted.

        A failed job leaves ``pending`` before the error is raised, so what is still pending
        afterwards is exactly what the caller should abort.
        """
        state = str(info.get("state", ""))
        self._states[job_id] = state
        if state not in TERMINAL_STATES or job_id not in self.pending:
            return
        self.pending.remove(job_id)
        if state != "JobComplete":
            raise job_error(self.kind, job_id, state, str(info.get("errorMessage") or ""))
        self.finished[job_id] = dict(info)

    def describe(self, job_id: str, info: Mapping[str, Any]) -> str:
        """One poll as a log line: the job's state and how many records it has processed (and,
        for an ingest job, how many failed) - the progress Salesforce reports."""
        line = f"Bulk {self.kind} job {job_id}: {info.get('state', '?')}"
        processed = info.get("numberRecordsProcessed")
        if isinstance(processed, int):
            line += f", {processed:,} records processed"
        failed = info.get("numberRecordsFailed")
        if isinstance(failed, int) and failed:
            line += f" ({failed:,} failed)"
        return line

    def next_wait(self) -> float:
        """Seconds to sleep before the next poll; :class:`BulkJobTimeoutError` once time is up.

        The error names the first pending job; the caller aborts every pending one.
        """
        wait = next(self._delays)
        if self.deadline is None:
            return wait
        remaining = self.deadline - self._clock()
        if remaining <= 0:
            job_id = self.pending[0] if self.pending else "?"
            state = self._states.get(job_id) or "unfinished"
            raise job_error(
                self.kind,
                job_id,
                "Aborted",
                f"still {state} when the timeout ran out, so it was aborted",
                timeout=True,
            )
        return min(wait, remaining)

    def results(self) -> list[dict[str, Any]]:
        """The final info of every job, in the order the jobs were given."""
        return [self.finished[job_id] for job_id in self.job_ids]
