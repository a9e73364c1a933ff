"""Airflow hook: turns a ``salesforce_jwt`` connection into the core :class:`SalesforceClient`.

Thin on purpose: connection parsing, signing, caching and retries live in the core package
(``airflow_provider_sfjwt.salesforce``), which has no Airflow import. The hook adds only what is
Airflow's: where the connection and Variables come from, and registering every secret with
Airflow's masker the moment it is loaded or received.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, overload

from airflow_provider_sfjwt import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_sfjwt.compat import (
    AirflowNotFoundException,
    BaseHook,
    connection_form_widgets,
    mask_secret,
    ui_field_behaviour,
)
from airflow_provider_sfjwt.salesforce import bulk, extract, load, rest_call
from airflow_provider_sfjwt.salesforce.auth import TokenCache
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.errors import SalesforceError
from airflow_provider_sfjwt.salesforce.keys import certificate_info, certificate_matches_key
from airflow_provider_sfjwt.salesforce.settings import (
    ConnectionSettings,
    parse_connection,
    parse_extra,
)
from airflow_provider_sfjwt.salesforce.storage import Destination, FilePath, StoragePath

if TYPE_CHECKING:
    from airflow_provider_sfjwt.salesforce.replicate import ReplicationSpec, Replicator

log = logging.getLogger(__name__)


_registered: set[str] = set()
_registered_lock = threading.Lock()
_registered_pid = os.getpid()


def register_secrets(*secrets: str) -> None:
    """Give secrets to Airflow's log masker: the one way this provider registers them.

    Each secret is registered once per process, however many hooks, clients and triggers meet
    it, and the new ones of a call go to the masker in one call (one message to the task's
    supervisor). Airflow recompiles one pattern of every secret it knows on each new one, so
    they go shortest first: a key's lines before the whole key, whose text then weighs on a
    single compilation instead of all of them.
    """
    global _registered_pid
    with _registered_lock:
        if _registered_pid != os.getpid():
            # A forked process (an Airflow task) starts with a reset masker: register anew.
            _registered.clear()
            _registered_pid = os.getpid()
        new = sorted({s for s in secrets if s and s not in _registered}, key=len)
        _registered.update(new)
    if len(new) == 1:
        mask_secret(new[0])
    elif new:
        mask_secret(list[Any](new))


def forget_registered_secrets() -> None:
    """Forget which secrets were registered (for tests that reset Airflow's masker too)."""
    with _registered_lock:
        _registered.clear()


def _get_variable(name: str) -> str | None:
    from airflow.sdk import Variable

    try:
        value = Variable.get(name)
    except Exception:  # Variable.get raises a KeyError subclass or AirflowNotFoundException
        return None
    return None if value is None else str(value)


class SalesforceJWTHook(BaseHook):
    """Salesforce through the OAuth 2.0 JWT Bearer flow.

    :param salesforce_conn_id: id of a connection of type ``salesforce_jwt``.
    """

    conn_name_attr = "salesforce_conn_id"
    default_conn_name = "salesforce_jwt_default"
    conn_type = "salesforce_jwt"
    hook_name = "Salesforce (JWT Bearer)"

    def __init__(self, salesforce_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.salesforce_conn_id = salesforce_conn_id

    @cached_property
    def settings(self) -> ConnectionSettings:
        conn = self._get_connection()
        settings = parse_connection(
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra=conn.extra,
            get_variable=_get_variable,
            on_secret=register_secrets,
        )
        self._warn_certificate_expiry(settings)
        return settings

    def _get_connection(self) -> Any:
        try:
            return self.get_connection(self.salesforce_conn_id)
        except AirflowNotFoundException:
            # Airflow 3.0 drops an AIRFLOW_CONN_ variable whose extra is not a JSON object (it
            # logs why) and reports the id as undefined; name the field to fix instead.
            raw = os.environ.get(f"AIRFLOW_CONN_{self.salesforce_conn_id.upper()}", "")
            try:
                extra = json.loads(raw).get("extra") if raw.lstrip().startswith("{") else None
            except ValueError:  # not JSON at all: Airflow's own message stands
                extra = None
            parse_extra(extra)  # raises ConfigurationError naming "extra" when that is the fault
            raise

    def get_conn(self) -> SalesforceClient:
        """The core client; one per hook, sharing the process-wide token cache."""
        return self.client

    @cached_property
    def client(self) -> SalesforceClient:
        return SalesforceClient(self.settings, on_secret=register_secrets)

    def login_client(self) -> SalesforceClient:
        """A client with a token cache of its own: its first call does a real token exchange.

        For checks of the credentials themselves (the connection test, the health check), so a
        key or app change shows at once instead of hiding behind a token another task stored.
        Close it after use.
        """
        return SalesforceClient(self.settings, on_secret=register_secrets, cache=TokenCache())

    def _warn_certificate_expiry(self, settings: ConnectionSettings) -> None:
        cert = settings.load_certificate()
        if cert is None:
            return
        info = certificate_info(cert)
        days = info.days_left()
        if days < 0:
            log.warning(
                "The certificate in connection %r expired on %s. Salesforce is reported to keep "
                "accepting its key, but it is past its rotation date: renew it (sfjwt keygen "
                "--reuse-key), upload it to the app and update the connection.",
                self.salesforce_conn_id,
                info.not_after.date(),
            )
        elif days < settings.cert_expiry_warning_days:
            log.warning(
                "The certificate in connection %r expires in %d days (%s). Rotate it before then: "
                "sfjwt keygen, upload to the app, update the connection.",
                self.salesforce_conn_id,
                int(days),
                info.not_after.date(),
            )
        if not certificate_matches_key(cert, settings.load_private_key()):
            log.warning(
                "The certificate in connection %r does not belong to its private key; Salesforce "
                "will answer 'invalid assertion' if that certificate is the one uploaded to the app.",
                self.salesforce_conn_id,
            )

    # --- connection form of Airflow 3.0 and 3.1 (3.2+ read the provider info instead) ------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's extra fields, from :data:`~airflow_provider_sfjwt.CONN_FIELDS`."""
        return connection_form_widgets(CONN_FIELDS)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Labels, placeholders and hidden standard fields, from ``UI_FIELD_BEHAVIOUR``."""
        return ui_field_behaviour(UI_FIELD_BEHAVIOUR)

    # --- connection test (UI Test button, `airflow connections test`) ---------------------

    def test_connection(self) -> tuple[bool, str]:
        """Token exchange plus one cheap REST call; the failure message is the mapped hint.

        Always a real exchange (:meth:`login_client`).
        """
        client = None
        try:
            client = self.login_client()
            token = client.auth.token()
            versions = {v.get("version") for v in client.versions()}
        except SalesforceError as exc:
            return False, str(exc)
        except Exception as exc:  # the Test button must show something readable, never a trace
            return False, f"{type(exc).__name__}: {exc}"
        finally:
            if client is not None:
                client.close()
        version = client.api_version
        if versions and version not in versions:
            newest = max(versions, key=lambda v: float(v or 0))
            return False, (
                f"Connected to {token.instance_url} as {self.settings.username}, but API v{version} "
                f"is not offered by this org (newest: v{newest}). Set api_version in the connection."
            )
        return (
            True,
            f"Connected to {token.instance_url} as {self.settings.username}, API v{version}",
        )

    # --- REST query and calls --------------------------------------------------------------

    def query(self, soql: str, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Stream records of a SOQL query (one page in memory at a time)."""
        return self.get_conn().query(soql, include_deleted=include_deleted)

    def count(self, soql: str, include_deleted: bool = False) -> int:
        """The query's ``totalSize`` from its first page (``SELECT COUNT() ...`` sends no rows)."""
        return self.get_conn().count(soql, include_deleted=include_deleted)

    def identity(self) -> dict[str, Any]:
        """The logged-in user as Salesforce describes it (``/services/oauth2/userinfo``)."""
        return self.get_conn().identity()

    def query_to_file(
        self,
        soql: str,
        path: FilePath | Destination,
        format: str = "csv",
        include_deleted: bool = False,
    ) -> extract.ExtractResult:
        """Stream a SOQL result into a csv/jsonl/parquet file, local or ``s3://``-like URI.

        Returns ``{"path", "rows", "columns", "format"}``; the file appears only when complete.
        """
        return extract.query_to_file(
            self.get_conn(), soql, storage_path(path), format, include_deleted=include_deleted
        )

    def call(
        self, method: str, endpoint: str, *, output_path: FilePath | None = None, **options: Any
    ) -> rest_call.RestAnswer:
        """One REST or Apex REST call; the body comes back inline when small, else in a file.

        ``endpoint`` is relative to the data API (``limits``) or from the instance root
        (``/services/apexrest/Orders/v1``). Returns ``{"status", "body"}``, or
        ``{"status", "path", "bytes"}`` when ``output_path`` is set. ``options`` are those of
        :func:`airflow_provider_sfjwt.salesforce.rest_call.call` (``params``, ``json``,
        ``max_inline_bytes``, ``idempotent``).
        """
        return rest_call.call(
            self.get_conn(), method, endpoint, output_path=storage_path(output_path), **options
        )

    # --- sObject Collections ---------------------------------------------------------------

    def load_file(self, operation: str, path: FilePath, **options: Any) -> load.LoadSummary:
        """Write the records of a CSV or JSONL file through sObject Collections, 200 a call.

        ``options`` are those of :func:`airflow_provider_sfjwt.salesforce.load.load_file`
        (``sobject``, ``external_id_field``, ``failed_records_path``, ...).
        """
        return load.load_file(self.get_conn(), operation, storage_path(path), **options)

    def load_records(
        self, operation: str, records: Iterable[Mapping[str, Any]], **options: Any
    ) -> load.LoadSummary:
        """Write records given as dicts through sObject Collections (options as ``load_file``)."""
        return load.load_collections(self.get_conn(), operation, records, **options)

    # --- Bulk API 2.0 ----------------------------------------------------------------------

    def bulk_query_to_file(
        self, soql: str, path: FilePath | Destination, format: str = "csv", **kwargs: Any
    ) -> bulk.QueryResult:
        """Run a Bulk API 2.0 query job, wait for it here and stream its results into a file.

        ``kwargs`` are those of :func:`airflow_provider_sfjwt.salesforce.bulk.query_to_file`
        (``include_deleted``, ``max_records``, ``poll_interval``, ``timeout``, ``field_types``,
        ``keep_job``, ``on_job``, ``parallel_downloads``). Returns ``{"path", "rows",
        "job_id", "format", "columns"}``.
        """
        return bulk.query_to_file(self.get_conn(), soql, storage_path(path), format, **kwargs)

    def bulk_ingest_file(
        self,
        sobject: str,
        operation: str,
        path: FilePath,
        external_id_field: str | None = None,
        **kwargs: Any,
    ) -> bulk.IngestSummary:
        """Load a CSV through Bulk API 2.0 ingest jobs, waiting here; result files go beside it.

        ``kwargs`` are those of :func:`airflow_provider_sfjwt.salesforce.bulk.ingest_file`.
        Returns a summary with job ids, processed/failed counts and the result file paths.
        """
        return bulk.ingest_file(
            self.get_conn(),
            sobject,
            operation,
            storage_path(path),
            external_id_field=external_id_field,
            **kwargs,
        )

    # The steps a deferrable task takes on each side of its wait in the triggerer.

    def bulk_jobs(
        self,
        *,
        poll_interval: float = bulk.DEFAULT_POLL_INTERVAL,
        on_job: Callable[[str], None] | None = None,
    ) -> bulk.BulkJobs:
        """The connection's Bulk API 2.0 jobs: create, wait, abort, delete.

        ``on_job`` is told every job id as soon as the job exists (a task keeps them for
        ``on_kill``).
        """
        return bulk.BulkJobs(self.get_conn(), poll_interval=poll_interval, on_job=on_job)

    def bulk_start_query(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        on_job: Callable[[str], None] | None = None,
    ) -> str:
        """Create a Bulk API 2.0 query job and return its id without waiting for it."""
        jobs = self.bulk_jobs(on_job=on_job)
        return jobs.create_query(soql, include_deleted=include_deleted)

    def bulk_download(
        self, job_id: str, path: FilePath | Destination, **options: Any
    ) -> bulk.QueryResult:
        """Stream the results of a completed query job into a file (as ``bulk_query_to_file``).

        ``options`` are those of :func:`airflow_provider_sfjwt.salesforce.bulk.download_results`
        (``format``, ``soql``, ``max_records``, ``field_types``, ``parallel_downloads``, and
        ``job``: the job's final state when already known, which saves one request).
        """
        return bulk.download_results(self.get_conn(), job_id, storage_path(path), **options)

    def bulk_start_ingest(
        self,
        spec: bulk.IngestSpec,
        path: FilePath,
        *,
        max_upload_bytes: int = bulk.MAX_UPLOAD_BYTES,
        on_job: Callable[[str], None] | None = None,
    ) -> list[str]:
        """Split a CSV into uploads under the size limit, one ingest job each, without waiting.

        Returns the job ids (none for a file without records).
        """
        jobs = self.bulk_jobs(on_job=on_job)
        job_ids, _ = bulk.start_ingest(
            jobs, spec, storage_path(path), max_upload_bytes=max_upload_bytes
        )
        return job_ids

    def bulk_finish_ingest(
        self,
        spec: bulk.IngestSpec,
        job_ids: Sequence[str],
        path: FilePath,
        *,
        results_dir: FilePath | None = None,
        infos: Sequence[Mapping[str, Any]] | None = None,
        poll_interval: float = bulk.DEFAULT_POLL_INTERVAL,
        timeout: float = bulk.DEFAULT_TIMEOUT,
        keep_job: bool = False,
        max_failed_records: int | str | None = None,
        on_job: Callable[[str], None] | None = None,
    ) -> bulk.IngestSummary:
        """After the ingest jobs completed: load transient refusals again, save the result files.

        ``path`` is the source CSV (results go beside it unless ``results_dir``), ``infos`` the
        jobs' final state when already known. Jobs are deleted unless ``keep_job``; more
        failures than ``max_failed_records`` raise ``TooManyFailedRecordsError`` once the files
        are saved.
        """
        return bulk.finish_ingest(
            self.bulk_jobs(poll_interval=poll_interval, on_job=on_job),
            spec,
            job_ids,
            storage_path(path),
            results_dir=storage_path(results_dir),
            infos=infos,
            timeout=timeout,
            keep_job=keep_job,
            max_failed_records=max_failed_records,
        )

    # --- replication ---------------------------------------------------------------------

    def replicator(self, spec: ReplicationSpec, output_path: FilePath) -> Replicator:
        """The runner of one object's replication into ``output_path`` (local or URI)."""
        from airflow_provider_sfjwt.salesforce.replicate import Replicator

        return Replicator(self.get_conn(), spec, storage_path(output_path))

    def bulk_abort_job(self, kind: str, job_id: str) -> bool:
        """Abort a query or ingest job; ``False`` when it had already finished."""
        return self.bulk_jobs().abort(kind, job_id)

    def bulk_delete_job(self, kind: str, job_id: str, *, background: bool = False) -> None:
        """Delete a finished job and the results Salesforce keeps for it.

        With ``background`` the deletion runs in a thread and the caller goes on; it is waited
        for before the process exits (see ``bulk.wait_for_deletions``).
        """
        jobs = self.bulk_jobs()
        if background:
            jobs.delete_in_background(kind, job_id)
        else:
            jobs.delete(kind, job_id)


_Path = TypeVar("_Path", bound="FilePath | Destination")


@overload
def storage_path(path: _Path, conn_id: str | None = None) -> _Path | StoragePath: ...


@overload
def storage_path(path: None, conn_id: str | None = None) -> None: ...


@overload
def storage_path(path: _Path | None, conn_id: str | None = None) -> _Path | StoragePath | None: ...


def storage_path(
    path: FilePath | Destination | None, conn_id: str | None = None
) -> FilePath | Destination | None:
    """A URI such as ``s3://bucket/key`` as an Airflow ``ObjectStoragePath``; anything else as is.

    ``conn_id`` names the Airflow connection of the store (default: the store's default
    connection). Local paths, ``file://`` URIs and objects that already are paths stay as they are:
    the core writes local files itself, with its own atomic rename and permission checks.
    Airflow-only, so it lives beside the hook rather than in the Airflow-free core.
    """
    if isinstance(path, str) and "://" in path and not path.startswith("file://"):
        from airflow_provider_sfjwt.compat import ObjectStoragePath

        return ObjectStoragePath(path, conn_id=conn_id)
    return path
