"""Airflow hook: turns a ``salesforce_jwt`` connection into the core :class:`SalesforceClient`.

Thin on purpose: connection parsing, signing, caching and retries live in the core package
(``airflow_provider_sfjwt.salesforce``), which has no Airflow import. The hook adds only what is
Airflow's: where the connection and Variables come from, and registering every secret with
Airflow's masker the moment it is loaded or received.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from airflow_provider_sfjwt.salesforce import bulk, extract, load, rest_call
from airflow_provider_sfjwt.salesforce.auth import TokenCache
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.errors import SalesforceError
from airflow_provider_sfjwt.salesforce.keys import certificate_info, certificate_matches_key
from airflow_provider_sfjwt.salesforce.settings import ConnectionSettings, parse_connection

log = logging.getLogger(__name__)


def _get_variable(name: str) -> str | None:
    from airflow.sdk import Variable

    try:
        return Variable.get(name)
    except Exception:  # Variable.get raises a KeyError subclass or AirflowNotFoundException
        return None


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
        conn = self.get_connection(self.salesforce_conn_id)
        settings = parse_connection(
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra=conn.extra,
            get_variable=_get_variable,
            on_secret=mask_secret,
        )
        self._warn_certificate_expiry(settings)
        return settings

    def get_conn(self) -> SalesforceClient:
        """The core client; one per hook, sharing the process-wide token cache."""
        return self.client

    @cached_property
    def client(self) -> SalesforceClient:
        return SalesforceClient(self.settings, on_secret=mask_secret)

    def _warn_certificate_expiry(self, settings: ConnectionSettings) -> None:
        cert = settings.load_certificate()
        if cert is None:
            return
        info = certificate_info(cert)
        days = info.days_left()
        if days < 0:
            log.error(
                "The certificate in connection %r expired on %s: Salesforce will refuse every "
                "token exchange. Make a new key and certificate (sfjwt keygen), upload the "
                "certificate to the app and update the connection.",
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

    # --- connection test (UI Test button, `airflow connections test`) ---------------------

    def test_connection(self) -> tuple[bool, str]:
        """Token exchange plus one cheap REST call; the failure message is the mapped hint.

        Always a real exchange (a private cache), so a key or app change shows at once instead of
        hiding behind a token that tasks shared earlier.
        """
        client = None
        try:
            client = SalesforceClient(self.settings, on_secret=mask_secret, cache=TokenCache())
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
        self, soql: str, path: Any, format: str = "csv", include_deleted: bool = False
    ) -> dict[str, Any]:
        """Stream a SOQL result into a csv/jsonl/parquet file, local or ``s3://``-like URI.

        Returns ``{"path", "rows", "columns", "format"}``; the file appears only when complete.
        """
        return extract.query_to_file(
            self.get_conn(), soql, storage_path(path), format, include_deleted
        )

    def call(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        output_path: Any = None,
        max_inline_bytes: int = rest_call.DEFAULT_MAX_INLINE_BYTES,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        """One REST or Apex REST call; the body comes back inline when small, else in a file.

        ``endpoint`` is relative to the data API (``limits``) or from the instance root
        (``/services/apexrest/Orders/v1``). Returns ``{"status", "body"}``, or
        ``{"status", "path", "bytes"}`` when ``output_path`` is set.
        """
        return rest_call.call(
            self.get_conn(),
            method,
            endpoint,
            params=params,
            json=json,
            output_path=storage_path(output_path),
            max_inline_bytes=max_inline_bytes,
            idempotent=idempotent,
        )

    # --- sObject Collections ---------------------------------------------------------------

    def load_file(self, operation: str, path: Any, **options: Any) -> load.LoadSummary:
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
        self,
        soql: str,
        path: Any,
        format: str = "csv",
        include_deleted: bool = False,
        **kwargs: Any,
    ) -> bulk.QueryResult:
        """Run a Bulk API 2.0 query job, wait for it here and stream its results into a file.

        ``kwargs`` are those of :func:`airflow_provider_sfjwt.salesforce.bulk.query_to_file`
        (``max_records``, ``poll_interval``, ``timeout``, ``field_types``, ``keep_job``,
        ``on_job``). Returns ``{"path", "rows", "job_id", "format", "columns"}``.
        """
        return bulk.query_to_file(
            self.get_conn(),
            soql,
            storage_path(path),
            format,
            include_deleted=include_deleted,
            **kwargs,
        )

    def bulk_ingest_file(
        self,
        sobject: str,
        operation: str,
        path: Any,
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
        self,
        job_id: str,
        path: Any,
        *,
        format: str = "csv",
        soql: str | None = None,
        max_records: int | None = None,
        field_types: Mapping[str, str] | None = None,
    ) -> bulk.QueryResult:
        """Stream the results of a completed query job into a file (as ``bulk_query_to_file``)."""
        return bulk.download_results(
            self.get_conn(),
            job_id,
            storage_path(path),
            format=format,
            soql=soql,
            max_records=max_records,
            field_types=field_types,
        )

    def bulk_start_ingest(
        self,
        spec: bulk.IngestSpec,
        path: Any,
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
        path: Any,
        *,
        results_dir: Any = None,
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

    def bulk_abort_job(self, kind: str, job_id: str) -> bool:
        """Abort a query or ingest job; ``False`` when it had already finished."""
        return self.bulk_jobs().abort(kind, job_id)

    def bulk_delete_job(self, kind: str, job_id: str) -> None:
        """Delete a finished job and the results Salesforce keeps for it."""
        self.bulk_jobs().delete(kind, job_id)


def storage_path(path: Any, conn_id: str | None = None) -> Any:
    """A URI such as ``s3://bucket/key`` as an Airflow ``ObjectStoragePath``; anything else as is.

    ``conn_id`` names the Airflow connection of the store (default: the store's default
    connection). Local paths, ``file://`` URIs and objects that already are paths stay as they are:
    the core writes local files itself, with its own atomic rename and permission checks.
    Airflow-only, so it lives beside the hook rather than in the Airflow-free core.
    """
    if isinstance(path, str) and "://" in path and not path.startswith("file://"):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(path, conn_id=conn_id)
    return path
