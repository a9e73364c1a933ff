"""Incremental replication of one sObject into a lake folder, run after run, exactly.

One run covers one time interval (Airflow's data interval) and writes, under the object's
folder (``output``, local or object storage):

* ``data/<key>.<fmt>`` - every row whose cursor field (``SystemModstamp``) falls in the run's
  window, read with ``queryAll`` so soft-deleted rows come with ``IsDeleted = true``;
* ``deleted/<key>.<fmt>`` - ``Id`` and ``deletedDate`` of every deletion Salesforce logged in
  the window, hard deletions included (they vanish from every query);
* ``runs/<key>.json`` - the run's manifest: window, API used, counts, fields and schema changes;
* ``_schema.json`` - the latest schema snapshot (field -> Salesforce type), written last: the
  next run compares against it, and its absence means nothing was replicated here yet, so the
  first run reads the object from the beginning.

``<key>`` is the interval's start (``20260131T130000Z``): a re-run or backfill of an interval
writes the same names, each file replaced atomically. The window is the interval widened by
``lookback`` and cut at ``now - safety_lag`` (see :mod:`.replicate_window`).

Merging the folder gives the object's current state: per ``Id`` keep the row with the latest
``SystemModstamp``, drop it if ``IsDeleted`` or if a deletion at or after that stamp is logged.
Running the intervals out of order, twice, or after a failure changes nothing in that result.

A ``formulas`` run writes ``formulas.<fmt>``: ``Id`` and every formula field of every live row,
for the ``refresh`` formula policy (formula values change without ``SystemModstamp`` moving).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict
from urllib.parse import quote

from . import bulk
from . import extract as rest_extract
from .bounds import whole_number
from .client import SalesforceClient
from .errors import DeletesUnavailableError, SchemaChangedError, UnexpectedResponseError
from .replicate_fields import (
    FORMULA_POLICIES,
    plan_fields,
    schema_changes,
)
from .replicate_layout import Layout, read_json, run_key, write_json
from .replicate_window import (
    DEFAULT_LOOKBACK,
    DEFAULT_SAFETY_LAG,
    Window,
    fetch_deleted,
    parse_datetime,
    replication_window,
    server_now,
)
from .storage import FilePath
from .writers import check_format, open_writer

__all__ = [
    "APIS",
    "DEFAULT_BULK_THRESHOLD",
    "Extracted",
    "MODES",
    "Plan",
    "ReplicationSpec",
    "ReplicationSummary",
    "Replicator",
    "run_key",
    "spec_from",
]

log = logging.getLogger(__name__)

MODES = ("incremental", "full", "formulas")
APIS = ("auto", "rest", "bulk")
SCHEMA_POLICIES = ("evolve", "fail")
DELETE_POLICIES = ("fail", "skip")
DEFAULT_BULK_THRESHOLD = 50_000
"""Rows above which ``api="auto"`` uses Bulk API 2.0. Up to it, REST reads 2,000 rows per call
(25 calls at most) and answers at once; a Bulk job costs about five calls whatever its size, but
runs seconds to minutes on Salesforce's side and counts against the org's daily Bulk query
jobs (10,000), which 40 objects replicated hourly would use up a tenth of."""


def _choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


@dataclass(frozen=True)
class ReplicationSpec:
    """What to replicate and how; every field has a documented default.

    :param sobject: the object's API name (``Account``, ``Invoice__c``).
    :param fields: API names to read, or ``None`` for every field (see :mod:`.replicate_fields`).
    :param mode: ``incremental`` (the interval's changes), ``full`` (every row, for objects
        without a cursor field or a fresh copy) or ``formulas`` (formula refresh).
    :param cursor_field: the datetime field changes are read by.
    :param lookback: how far before its interval a run starts reading (late commits).
    :param safety_lag: how far behind Salesforce's clock a run stops reading.
    :param api: ``auto`` (REST up to ``bulk_threshold`` rows in the window, else Bulk 2.0),
        ``rest`` or ``bulk``.
    :param format: ``parquet`` (typed from describe), ``csv`` or ``jsonl``.
    :param formula_fields: ``exclude`` (default), ``include`` or ``refresh`` (see
        :data:`.replicate_fields.FORMULA_POLICIES`).
    :param on_schema_change: ``evolve`` (report and carry on) or ``fail`` (write nothing).
    :param on_deletes_unavailable: ``fail`` or ``skip`` when Salesforce no longer holds the
        window's deletions (older than about 15 days).
    """

    sobject: str
    fields: tuple[str, ...] | None = None
    mode: str = "incremental"
    cursor_field: str = "SystemModstamp"
    lookback: dt.timedelta = DEFAULT_LOOKBACK
    safety_lag: dt.timedelta = DEFAULT_SAFETY_LAG
    api: str = "auto"
    bulk_threshold: int = DEFAULT_BULK_THRESHOLD
    format: str = "parquet"
    formula_fields: str = "exclude"
    on_schema_change: str = "evolve"
    on_deletes_unavailable: str = "fail"

    def __post_init__(self) -> None:
        if not self.sobject or not self.sobject.replace("_", "").isalnum():
            raise ValueError(f"sobject must be an API name such as Account, not {self.sobject!r}")
        _choice("mode", self.mode, MODES)
        _choice("api", self.api, APIS)
        _choice("formula_fields", self.formula_fields, FORMULA_POLICIES)
        _choice("on_schema_change", self.on_schema_change, SCHEMA_POLICIES)
        _choice("on_deletes_unavailable", self.on_deletes_unavailable, DELETE_POLICIES)
        object.__setattr__(self, "format", check_format(self.format))
        if self.fields is not None:
            object.__setattr__(self, "fields", tuple(self.fields))
        if self.lookback < self.safety_lag:
            raise ValueError(
                f"lookback ({self.lookback}) must be at least safety_lag ({self.safety_lag}): "
                "the tail a run leaves behind is read by the next run's lookback"
            )
        whole_number("bulk_threshold", self.bulk_threshold, 0, meaning="0: Bulk for any rows")


Extracted = rest_extract.ExtractResult | bulk.QueryResult
"""What a run's data file received, by REST or by Bulk: the two share ``path`` and ``rows``."""


class ReplicationSummary(TypedDict):
    """What one replication run did: returned to XCom and written as the run's manifest.

    ``deleted`` / ``deleted_path`` are ``None`` when the run read no deletions (a full or
    formula run, or the first window); ``deletes_skipped`` then says why, when Salesforce's
    delete log no longer reached back far enough and ``on_deletes_unavailable='skip'``.
    """

    object: str
    mode: str
    api: str
    key: str
    window: dict[str, str | None] | None
    from_beginning: bool
    count: int | None
    rows: int
    data_path: str
    deleted: int | None
    deleted_path: str | None
    deletes_skipped: str | None
    columns: list[str]
    excluded: dict[str, str]
    schema_changes: dict[str, Any]
    manifest_path: str


@dataclass
class Plan:
    """What a run will read and where it writes; JSON-able, so it survives a deferral."""

    sobject: str
    mode: str
    key: str
    api: str
    soql: str
    include_deleted: bool
    columns: list[str]
    types: dict[str, str]
    excluded: dict[str, str]
    window: dict[str, str | None] | None
    count: int | None
    now: str = ""
    changes: dict[str, Any] = field(default_factory=dict)
    from_beginning: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(**data)


def _iso_ms(moment: dt.datetime) -> str:
    utc = moment.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class Replicator:
    """Runs :class:`ReplicationSpec` for one object folder with one client.

    :meth:`run` does a whole run in this process. A deferrable caller splits it: :meth:`plan`,
    then either :meth:`extract` or Bulk's :meth:`start_bulk` ... :meth:`download_bulk`, then
    :meth:`finish`; a :class:`Plan` carries what the steps share.
    """

    def __init__(
        self,
        client: SalesforceClient,
        spec: ReplicationSpec,
        output: FilePath,
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.client = client
        self.spec = spec
        self.layout = Layout(output, spec.format)
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    # --- planning ------------------------------------------------------------------------

    def _describe(self) -> tuple[dict[str, Any], dt.datetime]:
        """describe, and now by the earlier of Salesforce's clock and ours."""
        response = self.client.request("GET", f"sobjects/{quote(self.spec.sobject)}/describe")
        local = self._clock()
        server = server_now(response)
        describe = response.json()
        if not isinstance(describe, dict):
            raise UnexpectedResponseError(f"describe of {self.spec.sobject} is not a JSON object")
        return describe, min(local, server) if server else local

    def previous_schema(self) -> dict[str, str] | None:
        """The last run's snapshot at this folder (``None``: nothing replicated here yet)."""
        content = read_json(self.layout.schema())
        if content is None:
            return None
        fields = content.get("fields") if isinstance(content, dict) else None
        if not isinstance(fields, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
        ):
            raise UnexpectedResponseError(
                f"{self.layout.schema()} is not a schema snapshot this provider wrote; move it "
                "away (the next run then reads the object from the beginning)"
            )
        return fields

    def plan(self, interval_start: dt.datetime, interval_end: dt.datetime) -> Plan:
        """Describe, compare the schema, compute the window and choose the API."""
        spec = self.spec
        describe, now = self._describe()
        formulas = spec.mode == "formulas"
        fields = plan_fields(
            spec.sobject,
            describe,
            spec.fields,
            cursor_field=None if spec.mode != "incremental" else spec.cursor_field,
            bulk_possible=spec.api != "rest",
            formula_fields=spec.formula_fields,
            formulas_only=formulas,
        )
        for name, reason in fields.excluded.items():
            log.info("%s.%s not read: %s", spec.sobject, name, reason)
        if formulas and len(fields.columns) == 1:
            raise ValueError(f"{spec.sobject} has no formula fields to refresh")
        previous = None if formulas else self.previous_schema()
        changes = schema_changes(previous, fields.types)
        if changes:
            log.warning("%s schema changed since the last run: %s", spec.sobject, changes)
            if spec.on_schema_change == "fail":
                raise SchemaChangedError(spec.sobject, changes)
        window = self._window(describe, interval_start, interval_end, now, previous is None)
        soql = fields.select(spec.sobject)
        if window is not None:
            soql += f" WHERE {window.where(spec.cursor_field)}"
        include_deleted = not formulas
        api, count = self._choose_api(spec, window, include_deleted)
        return Plan(
            sobject=spec.sobject,
            mode=spec.mode,
            key=run_key(interval_start),
            api=api,
            soql=soql,
            include_deleted=include_deleted,
            columns=fields.columns,
            types=fields.types,
            excluded=fields.excluded,
            window=window.as_dict() if window else None,
            count=count,
            now=now.isoformat(),
            changes=changes.as_dict() if changes else {},
            from_beginning=spec.mode == "incremental" and previous is None,
        )

    def _window(
        self,
        describe: dict[str, Any],
        interval_start: dt.datetime,
        interval_end: dt.datetime,
        now: dt.datetime,
        first: bool,
    ) -> Window | None:
        spec = self.spec
        if spec.mode == "incremental":
            return replication_window(
                interval_start,
                interval_end,
                now,
                lookback=spec.lookback,
                safety_lag=spec.safety_lag,
                from_beginning=first,
            )
        names = {str(f.get("name", "")).lower() for f in describe.get("fields", [])}
        if spec.mode == "full" and spec.cursor_field.lower() in names:
            return Window(None, now - spec.safety_lag)  # one consistent cut for every row
        return None

    def _choose_api(
        self, spec: ReplicationSpec, window: Window | None, include_deleted: bool
    ) -> tuple[str, int | None]:
        if spec.api != "auto":
            return spec.api, None
        soql = f"SELECT COUNT() FROM {spec.sobject}"
        if window is not None:
            soql += f" WHERE {window.where(spec.cursor_field)}"
        count = self.client.count(soql, include_deleted=include_deleted)
        if count < 0:
            raise UnexpectedResponseError(f"COUNT() of {spec.sobject} answered {count}")
        api = "bulk" if count > spec.bulk_threshold else "rest"
        log.info(
            "%s: %d rows in the window, %s API (bulk_threshold=%d)",
            spec.sobject,
            count,
            api.upper(),
            spec.bulk_threshold,
        )
        return api, count

    # --- extraction ----------------------------------------------------------------------

    def _data_path(self, plan: Plan) -> FilePath:
        return self.layout.formulas() if plan.mode == "formulas" else self.layout.data(plan.key)

    def extract(self, plan: Plan, **bulk_options: Any) -> Extracted:
        """Read the plan's rows into its data file, by REST or by a Bulk job waited for here."""
        query_to_file: Callable[..., Extracted] = (
            functools.partial(bulk.query_to_file, **bulk_options)
            if plan.api == "bulk"
            else rest_extract.query_to_file
        )
        return query_to_file(
            self.client,
            plan.soql,
            self._data_path(plan),
            self.spec.format,
            include_deleted=plan.include_deleted,
            field_types=plan.types,
        )

    def start_bulk(self, plan: Plan, jobs: bulk.BulkJobs) -> str:
        """Create the plan's Bulk query job (a deferring caller waits for it elsewhere)."""
        return jobs.create_query(plan.soql, include_deleted=plan.include_deleted)

    def download_bulk(self, plan: Plan, job_id: str, **options: Any) -> bulk.QueryResult:
        """Write a completed job's results to the plan's data file."""
        return bulk.download_results(
            self.client,
            job_id,
            self._data_path(plan),
            format=self.spec.format,
            field_types=plan.types,
            **options,
        )

    # --- deletions, snapshot, manifest ---------------------------------------------------

    def finish(self, plan: Plan, extracted: Extracted) -> ReplicationSummary:
        """Write the deletions sidecar, the run's manifest and the schema snapshot (last)."""
        manifest = self.layout.manifest(plan.key, plan.mode)
        result: ReplicationSummary = {
            "object": plan.sobject,
            "mode": plan.mode,
            "api": plan.api,
            "key": plan.key,
            "window": plan.window,
            "from_beginning": plan.from_beginning,
            "count": plan.count,
            "rows": int(extracted["rows"]),
            "data_path": str(extracted["path"]),
            "deleted": None,
            "deleted_path": None,
            "deletes_skipped": None,
            "columns": list(plan.columns),
            "excluded": dict(plan.excluded),
            "schema_changes": dict(plan.changes),
            "manifest_path": str(manifest),
        }
        if plan.mode == "incremental" and plan.window and plan.window.get("start"):
            self._write_deletes(plan, result)
        write_json(manifest, {**result, "fields": plan.types})
        if plan.mode != "formulas":
            write_json(self.layout.schema(), {"object": plan.sobject, "fields": plan.types})
        log.info(
            "%s %s run %s: %d rows (%s), %s",
            plan.sobject,
            plan.mode,
            plan.key,
            result["rows"],
            plan.api,
            _deletions_said(plan, result),
        )
        return result

    def _write_deletes(self, plan: Plan, result: ReplicationSummary) -> None:
        assert plan.window is not None
        window = Window.from_dict(plan.window)
        now = parse_datetime(plan.now, "plan time")
        path = self.layout.deleted(plan.key)
        try:
            rows = [
                [record_id, _iso_ms(when)]
                for record_id, when in fetch_deleted(self.client, plan.sobject, window, now)
            ]
        except DeletesUnavailableError as exc:
            if self.spec.on_deletes_unavailable != "skip":
                raise DeletesUnavailableError(
                    f"{exc} Set on_deletes_unavailable='skip' to replicate the window without "
                    "them (its hard-deleted rows then stay in the lake copy), or start a fresh "
                    "copy in a new folder."
                ) from None
            log.warning("%s; skipped (on_deletes_unavailable='skip')", exc)
            result["deletes_skipped"] = str(exc)
            return
        with open_writer(
            path, self.spec.format, ["Id", "deletedDate"], {"Id": "id", "deletedDate": "datetime"}
        ) as writer:
            writer.write_rows(rows)
        result["deleted"] = len(rows)
        result["deleted_path"] = str(path)

    def run(
        self, interval_start: dt.datetime, interval_end: dt.datetime, **bulk_options: Any
    ) -> ReplicationSummary:
        """Plan, extract and finish one interval in this process."""
        plan = self.plan(interval_start, interval_end)
        return self.finish(plan, self.extract(plan, **bulk_options))


def _deletions_said(plan: Plan, result: Mapping[str, Any]) -> str:
    """What the run did about deletions, in the words of the log line: a count, or why the
    delete log was not read (a read from the beginning already lacks every hard-deleted row)."""
    if result["deletes_skipped"]:
        return "deletions not read (on_deletes_unavailable='skip')"
    if result["deleted"] is not None:
        return f"{result['deleted']} deletions"
    if plan.mode == "formulas":
        return "formula values only"
    return "read from the beginning, so hard-deleted rows are absent: delete log not read"


def spec_from(sobject: str, **options: Any) -> ReplicationSpec:
    """A :class:`ReplicationSpec` from keyword options, timedeltas also given as seconds."""
    for name in ("lookback", "safety_lag"):
        value = options.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            options[name] = dt.timedelta(seconds=value)
    fields = options.get("fields")
    if isinstance(fields, str):
        options["fields"] = tuple(f.strip() for f in fields.split(",") if f.strip())
    elif isinstance(fields, Iterable):
        options["fields"] = tuple(fields)
    return ReplicationSpec(sobject, **options)
