"""REST extract benchmark: ``query_to_file`` against the simplest loop that does the same job.

Three ways to write the same N Accounts (8 fields) from the emulator to CSV, each in a fresh
child process so that peak RSS is that run's alone:

* ``floor`` - a plain ``requests`` loop: one JWT exchange with PyJWT, GET ``/query``, follow
  ``nextRecordsUrl``, ``csv.writer.writerows``. No retries, no re-auth, no atomic rename: the
  least work anything can do, and the reference for the wall-time ratio.
* ``core`` - ``airflow_provider_sfjwt.salesforce.extract.query_to_file`` on the core client,
  without importing Airflow: what the product's own code costs.
* ``hook`` - ``SalesforceJWTHook().query_to_file`` with the connection from
  ``AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT``: what a task does. Importing Airflow alone costs about
  110 MB of RSS, so its peak is reported next to the growth above that baseline.
* ``peer`` - simple-salesforce ``query_all`` then ``csv.writer``, as the official provider's hook
  does (minus its pandas DataFrame): run once per N against a TLS emulator, for memory.

The child prints one JSON line; :func:`run_variant` starts it and reads it. Run a single child by
hand with ``python -m benchmarks.bench_rest VARIANT OUTPUT`` and ``SFJWT_BENCH_CONN`` set.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIELDS = (
    "Id",
    "Name",
    "AccountNumber",
    "Industry",
    "AnnualRevenue",
    "NumberOfEmployees",
    "BillingCity",
    "LastModifiedDate",
)
SOQL = f"SELECT {', '.join(FIELDS)} FROM Account"
VARIANTS = ("floor", "core", "hook")
CONN_ENV = "SFJWT_BENCH_CONN"


def _rss_mb() -> float:
    """Peak resident set size of this process so far, in MB.

    Linux's ``VmHWM`` belongs to the address space, which ``exec`` replaces, so it is this
    program's own peak. ``ru_maxrss`` is not: it keeps the high-water mark of the forked copy of
    the parent (the emulator, holding a million rows) from before ``exec``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _exchange(session: Any, conn: dict[str, Any]) -> dict[str, Any]:
    """One JWT bearer exchange with PyJWT and ``requests``, as any hand-written client does."""
    import jwt

    extra = conn["extra"]
    key = Path(extra["private_key_ref"].removeprefix("file:")).read_text()
    claims = {
        "iss": extra["consumer_key"],
        "sub": conn["login"],
        "aud": conn["host"],
        "exp": int(time.time()) + 150,
    }
    return session.post(
        conn["host"] + "/services/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt.encode(claims, key, algorithm="RS256"),
        },
    ).json()


def _floor(conn: dict[str, Any], output: str) -> int:
    import csv

    import requests

    session = requests.Session()
    token = _exchange(session, conn)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    url: str | None = f"{token['instance_url']}/services/data/v66.0/query"
    params: dict[str, str] | None = {"q": SOQL}
    rows = 0
    with open(output, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        while url:
            response = session.get(url, params=params, headers=headers)
            response.raise_for_status()
            page = response.json()
            records = page["records"]
            writer.writerows([[r[f] for f in FIELDS] for r in records])
            rows += len(records)
            next_url = page.get("nextRecordsUrl")
            url = None if page["done"] or not next_url else token["instance_url"] + next_url
            params = None
    return rows


def _core(conn: dict[str, Any], output: str) -> int:
    from airflow_provider_sfjwt.salesforce.client import SalesforceClient
    from airflow_provider_sfjwt.salesforce.extract import query_to_file
    from airflow_provider_sfjwt.salesforce.settings import parse_connection

    settings = parse_connection(
        host=conn["host"], login=conn["login"], password=None, extra=conn["extra"]
    )
    return query_to_file(SalesforceClient(settings), SOQL, output)["rows"]


def _hook(conn: dict[str, Any], output: str) -> int:
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook

    return SalesforceJWTHook().query_to_file(SOQL, output)["rows"]


def _peer(conn: dict[str, Any], output: str) -> int:
    """What the official provider's ``SalesforceHook`` does: simple-salesforce ``query_all``
    holds every record in memory before anything is written (the provider then also builds a
    pandas DataFrame, so this is a lower bound of its cost). Needs the emulator in TLS mode:
    simple-salesforce always builds https URLs; ``conn["ca_cert"]`` is the emulator's CA."""
    import csv

    import requests
    from simple_salesforce import Salesforce

    session = requests.Session()
    session.verify = conn["ca_cert"]
    session.trust_env = False  # REQUESTS_CA_BUNDLE from the environment would override verify
    token = _exchange(session, conn)
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        version="66.0",
        session=session,
    )
    records = sf.query_all(SOQL)["records"]
    with open(output, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        writer.writerows([r[f] for f in FIELDS] for r in records)
    return len(records)


def child(variant: str, output: str) -> dict[str, Any]:
    """Run one variant in this process; measure after imports so start-up is not timed."""
    conn = json.loads(os.environ[CONN_ENV])
    run = {"floor": _floor, "core": _core, "hook": _hook, "peer": _peer}[variant]
    if variant == "hook":
        import airflow_provider_sfjwt.hooks.salesforce_jwt  # noqa: F401
    elif variant == "core":
        import airflow_provider_sfjwt.salesforce.extract  # noqa: F401
    elif variant == "peer":
        import simple_salesforce  # noqa: F401
    else:
        import csv  # noqa: F401

        import jwt  # noqa: F401
        import requests  # noqa: F401
    baseline = _rss_mb()
    cpu_started = time.process_time()
    started = time.perf_counter()
    rows = run(conn, output)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    peak = _rss_mb()
    return {
        "variant": variant,
        "rows": rows,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mb": round(peak, 1),
        "baseline_rss_mb": round(baseline, 1),
        "growth_rss_mb": round(peak - baseline, 1),
        "bytes": os.path.getsize(output),
    }


AIRFLOW_IMPORT = "airflow.sdk"
"""The floor under any Airflow task, whatever provider it uses."""
PROVIDER_IMPORT = (
    "airflow_provider_sfjwt.salesforce.bulk, airflow_provider_sfjwt.salesforce.extract"
)
"""The provider's core (REST and Bulk): the baseline the extracts' memory is measured against."""


def import_rss(modules: str, env: dict[str, str]) -> float:
    """Peak RSS (MB) of a process that only runs ``import <modules>``."""
    code = (
        f"import {modules}\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    return round(int(done.stdout.strip().splitlines()[-1]) / 1024, 1)


def run_variant(variant: str, conn: dict[str, Any], output: Path, env: dict[str, str]) -> dict:
    """Start one child for ``variant`` and return its measurements (plus process wall time)."""
    child_env = dict(env)
    child_env[CONN_ENV] = json.dumps(conn)
    child_env["AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT"] = json.dumps(conn)
    # A token store of its own: each run logs in once, as a first task on a fresh worker does.
    child_env["SFJWT_TOKEN_CACHE_DIR"] = str(output.parent / f"tokens-{time.time_ns()}")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_rest", variant, str(output)],
        env=child_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode:
        raise RuntimeError(f"{variant} run failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 3)
    return result


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.argv[2])))
