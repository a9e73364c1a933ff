"""Waiting for Bulk API 2.0 jobs: one poller for the worker and for the triggerer.

A task either waits in its worker (:meth:`.jobs.BulkJobs.wait_all`) or defers to the triggerer
(:class:`airflow_provider_sfjwt.triggers.bulk.SalesforceBulkJobTrigger`). Both must judge a job
the same way: which states end the wait, which ones fail it and with what advice, how long to
sleep between polls, what each poll logs and what a timeout says. :meth:`JobWatch.poll_round` is
all of that: one round of polls over the pending jobs, returning how long to sleep before the
next round (``None`` once every job completed). The only thing its two callers do differently
is the sleeping: ``time.sleep`` in the worker, ``asyncio.sleep`` in the triggerer, which runs
the round itself in a worker thread so its blocking HTTP never stalls the event loop. The
Amazon provider shares one waiter between its synchronous waits and ``async_wait`` the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from ..errors import BulkJobError, BulkJobTimeoutError

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "TERMINAL_STATES",
    "JobWatch",
    "job_error",
    "poll_delays",
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


class InfoLog(Protocol):
    """Where poll lines go: a ``logging.Logger`` in the worker, the trigger's own logger (a
    structlog one on newer Airflow) in the triggerer, so each lands in that task's log."""

    def info(self, msg: str, *args: Any) -> Any: ...


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

    def poll_round(
        self,
        get: Callable[[str, str], Mapping[str, Any]],
        log: InfoLog,
    ) -> float | None:
        """Poll every pending job once with ``get(kind, job_id)``; the seconds to sleep before
        the next round, or ``None`` when every job has completed.

        Raises :class:`BulkJobError` when a job ended Failed or Aborted and
        :class:`BulkJobTimeoutError` when the deadline passed; ``pending`` then holds exactly the
        jobs the caller should abort.
        """
        for job_id in list(self.pending):
            info = get(self.kind, job_id)
            log.info("%s", self.describe(job_id, info))
            self.observe(job_id, info)
        if not self.pending:
            return None
        wait = self.next_wait()
        log.info("Next poll in %.1f s", wait)
        return wait

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
