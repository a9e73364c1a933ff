"""``SalesforceReplicateObjectOperator``: one sObject's changes in the run's data interval, to a
lake folder; plus :func:`salesforce_replication_group`, one such task per object.

Thin: the work is :class:`airflow_provider_sfjwt.salesforce.replicate.Replicator`. What is
Airflow's is here: the data interval from the context, templating, deferral while a Bulk job
runs (the same trigger as the Bulk operators), the XCom summary, and lineage with the schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_sfjwt.hooks.salesforce_jwt import storage_path
from airflow_provider_sfjwt.lineage import file_dataset, salesforce_object
from airflow_provider_sfjwt.operators.bulk import _BulkOperator, _raise_event_error
from airflow_provider_sfjwt.salesforce.bulk import QUERY
from airflow_provider_sfjwt.salesforce.replicate import (
    DEFAULT_BULK_THRESHOLD,
    Extracted,
    Plan,
    ReplicationSpec,
    ReplicationSummary,
    Replicator,
    spec_from,
)
from airflow_provider_sfjwt.salesforce.replicate_window import DEFAULT_LOOKBACK, DEFAULT_SAFETY_LAG

if TYPE_CHECKING:
    from airflow.sdk import Context

PLAN_XCOM = "replication_plan"
"""XCom key of the run's plan while a Bulk job runs (the task resumes in another process)."""


def _interval(context: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """The run's data interval. A manual run without a logical date has none: it gets the
    interval Airflow itself infers for a manual run at that moment (the one that ended last,
    with interval timetables), so it rewrites that interval's files like its scheduled run."""
    start = context.get("data_interval_start")
    end = context.get("data_interval_end")
    run_after = getattr(context.get("dag_run"), "run_after", None)
    infer = getattr(
        getattr(context.get("dag"), "timetable", None), "infer_manual_data_interval", None
    )
    if (start is None or end is None) and run_after is not None and infer is not None:
        import pendulum  # Airflow's timetables compute with pendulum datetimes

        inferred = infer(run_after=pendulum.instance(run_after))
        start, end = inferred.start, inferred.end
    if start is None or end is None or end <= start:
        raise ValueError(
            f"replication reads the run's data interval, and this run has none ({start} to "
            f"{end}): Airflow 3's cron schedules ('@hourly') give runs a single moment. Schedule "
            "the DAG with intervals, e.g. schedule=CronDataIntervalTimetable('0 * * * *', "
            "timezone='UTC') from airflow.timetables.interval (the run at 13:00 reads "
            "[12:00, 13:00))"
        )
    return start, end


class SalesforceReplicateObjectOperator(_BulkOperator):
    """Replicate one sObject's changes in the run's data interval into ``output_path``.

    Each run writes ``data/<interval start>.parquet`` (rows changed in the window, soft-deleted
    ones with ``IsDeleted``), ``deleted/<interval start>.parquet`` (hard and soft deletions
    Salesforce logged), ``runs/<interval start>.json`` and ``_schema.json`` under
    ``output_path``; a re-run or backfill of an interval replaces its files atomically. The
    first run into an empty folder reads the whole object. See the README's "Replicating
    objects" for the layout and the merge.

    :param sobject: the object's API name (templated).
    :param output_path: the object's folder: local path or object-storage URI such as
        ``s3://lake/salesforce/Account`` (templated).
    :param fields: API names to read, or ``None`` for every field (compound fields are read as
        their components; base64 fields are left out unless ``api="rest"``).
    :param mode: ``incremental`` (default), ``full`` or ``formulas`` (formula refresh).
    :param cursor_field: the datetime field changes are read by (``SystemModstamp``).
    :param lookback: how far before its interval a run reads, for rows committed late
        (``timedelta`` or seconds; default 10 minutes).
    :param safety_lag: how far behind Salesforce's clock a run stops (default 2 minutes).
    :param api: ``auto`` (a ``COUNT()`` of the window chooses: REST up to ``bulk_threshold``
        rows, else Bulk API 2.0), ``rest`` or ``bulk``.
    :param format: ``parquet`` (typed from describe), ``csv`` or ``jsonl``.
    :param formula_fields: ``exclude`` (default), ``include`` or ``refresh``.
    :param on_schema_change: ``evolve`` (default: report and go on) or ``fail``.
    :param on_deletes_unavailable: ``fail`` (default) or ``skip`` when Salesforce no longer
        holds the window's deletions (older than about 15 days).

    The Bulk options (``poll_interval``, ``job_timeout``, ``deferrable``, ...) are those of
    :class:`SalesforceBulkQueryOperator`. Returns (XCom) the run's summary: window, API, rows,
    deletions, paths, columns, excluded fields and schema changes.
    """

    template_fields: Sequence[str] = ("sobject", "output_path", "fields", "mode")
    ui_color = "#c7e6fb"
    _kind = QUERY

    def __init__(
        self,
        *,
        sobject: str,
        output_path: Any,
        fields: Sequence[str] | None = None,
        mode: str = "incremental",
        cursor_field: str = "SystemModstamp",
        lookback: dt.timedelta | float = DEFAULT_LOOKBACK,
        safety_lag: dt.timedelta | float = DEFAULT_SAFETY_LAG,
        api: str = "auto",
        bulk_threshold: int = DEFAULT_BULK_THRESHOLD,
        format: str = "parquet",
        formula_fields: str = "exclude",
        on_schema_change: str = "evolve",
        on_deletes_unavailable: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sobject = sobject
        self.output_path = output_path
        self.fields = list(fields) if fields is not None else None
        self.mode = mode
        self.options: dict[str, Any] = {
            "cursor_field": cursor_field,
            "lookback": lookback,
            "safety_lag": safety_lag,
            "api": api,
            "bulk_threshold": bulk_threshold,
            "format": format,
            "formula_fields": formula_fields,
            "on_schema_change": on_schema_change,
            "on_deletes_unavailable": on_deletes_unavailable,
        }
        if "{{" not in sobject and "{{" not in mode:
            self._spec()  # a bad option fails when the DAG is parsed, not at 3 a.m.

    def _spec(self) -> ReplicationSpec:
        return spec_from(self.sobject, fields=self.fields, mode=self.mode, **self.options)

    def _replicator(self) -> Replicator:
        output = storage_path(self.output_path, self.storage_conn_id)
        return self.hook.replicator(self._spec(), output)

    def execute(self, context: Context) -> ReplicationSummary:
        interval_start, interval_end = _interval(context)
        replicator = self._replicator()
        plan = replicator.plan(interval_start, interval_end)
        if plan.api == "bulk" and self.deferrable:
            # The plan waits in XCom: the run resumes after the trigger in a new process.
            context["ti"].xcom_push(key=PLAN_XCOM, value=plan.as_dict())
            replicator.start_bulk(
                plan, self.hook.bulk_jobs(poll_interval=self.poll_interval, on_job=self._remember)
            )
            self._defer(self._job_ids)
        extracted = replicator.extract(plan, **self._job_wait())
        return self._finish(replicator, plan, extracted)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> ReplicationSummary:
        """Back from the triggerer: download the job's rows, then deletions and the snapshot."""
        if event.get("status") != "success":
            _raise_event_error(event)
        job_id = event["job_ids"][0]
        self._job_ids = [job_id]
        replicator = self._replicator()
        restored = Plan.from_dict(context["ti"].xcom_pull(task_ids=self.task_id, key=PLAN_XCOM))
        extracted = replicator.download_bulk(restored, job_id)
        if not self.keep_job:
            self.hook.bulk_delete_job(QUERY, job_id)
        return self._finish(replicator, restored, extracted)

    def _finish(
        self, replicator: Replicator, plan: Plan, extracted: Extracted
    ) -> ReplicationSummary:
        result = replicator.finish(plan, extracted)
        changes = result["schema_changes"]
        if changes:
            self.log.warning("Schema of %s changed since the last run: %s", plan.sobject, changes)
        root = replicator.layout.root
        columns, types, notes = schema_facet(plan.columns, plan.types, changes)
        outputs = [file_dataset(root.joinpath("data"), columns, types, notes)]
        if result["deleted_path"]:
            outputs.append(
                file_dataset(
                    root.joinpath("deleted"),
                    ["Id", "deletedDate"],
                    {"Id": "id", "deletedDate": "datetime"},
                )
            )
        instance = replicator.client.instance_url
        self.record_lineage([salesforce_object(instance, plan.sobject, plan.columns)], outputs)
        return result


def schema_facet(
    columns: Sequence[str], types: Mapping[str, str], changes: Mapping[str, Any]
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Columns, types and notes for the OpenLineage schema facet of an object's data folder.

    The folder is the dataset (its name stays the same run after run, so lineage tools show
    how its schema evolves); a field removed from Salesforce stays listed, since the folder's
    older files still hold it.
    """
    out_columns, out_types = list(columns), dict(types)
    notes: dict[str, str] = {}
    for name in changes.get("added", {}):
        notes[name] = "added since the last run"
    for name, (old, new) in changes.get("retyped", {}).items():
        notes[name] = f"type changed since the last run: {old} -> {new}"
    for name, old in changes.get("removed", {}).items():
        out_columns.append(name)
        out_types[name] = old
        notes[name] = "removed from Salesforce since the last run; older files still hold it"
    return out_columns, out_types, notes


def object_folder(output_prefix: str, sobject: str) -> str:
    """``<output_prefix>/<sobject>`` for a local path or a URI."""
    return f"{output_prefix.rstrip('/')}/{sobject}"


def object_asset(output_prefix: str, sobject: str) -> Any:
    """The Airflow Asset naming one object's folder (``file://`` for a local path)."""
    from airflow.sdk import Asset

    folder = object_folder(output_prefix, sobject)
    uri = folder if "://" in folder else "file://" + folder
    return Asset(uri)


def salesforce_replication_group(
    objects: Iterable[str] | Mapping[str, Mapping[str, Any]],
    output_prefix: str,
    *,
    group_id: str = "replicate_salesforce",
    **defaults: Any,
) -> Any:
    """A task group with one :class:`SalesforceReplicateObjectOperator` per object.

    ``objects`` is a list of API names, or a mapping ``{name: {option: value}}`` for options
    of one object (``fields``, ``mode``, ``api``, ...); ``defaults`` apply to all. Each task
    writes to ``<output_prefix>/<Object>`` and declares that folder as its static outlet
    Asset, so a downstream DAG with ``schedule=[object_asset(prefix, "Account")]`` runs when
    Account has landed. Nothing here calls Salesforce: the DAG parses offline.
    """
    from airflow.sdk import TaskGroup

    items: Iterable[tuple[str, Mapping[str, Any]]] = (
        objects.items() if isinstance(objects, Mapping) else ((o, {}) for o in objects)
    )
    with TaskGroup(group_id=group_id) as group:
        for sobject, options in items:
            SalesforceReplicateObjectOperator(
                task_id=sobject,
                sobject=sobject,
                output_path=object_folder(output_prefix, sobject),
                outlets=[object_asset(output_prefix, sobject)],
                **{**defaults, **dict(options)},
            )
    return group
