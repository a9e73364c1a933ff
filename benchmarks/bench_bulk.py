"""Bulk API 2.0 benchmarks: query to CSV against a plain-``requests`` floor, and ingest.

Each measured run happens in a fresh child process, so its peak RSS (``VmHWM``) belongs to that
run alone; the emulator serving it lives in this (parent) process and is not counted.

* Query: ``query_to_file`` (job, polling, result chunks downloaded five at a time through
  ``resultPages``, CSV passthrough with each chunk's rows checked, atomic rename, job deletion)
  against a floor that does the same job with nothing but ``requests``: create the job, poll
  it, loop over the locators writing each body's bytes to disk. Both use the same emulator
  (plain HTTP, no gzip), token and chunk size, alternately; best and median of ``repeats``.
* Ingest: ``ingest_file`` of a generated Account CSV (split, upload, poll, three result files).

``make bench`` runs these through ``benchmarks.run``, which records them in ``results.json`` and
BENCHMARKS.md. ``python -m benchmarks.bench_bulk [ROWS...]`` alone prints its results as JSON.
"""

from __future__ import annotations

import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.bench_rest import FIELDS

HERE = Path(__file__).resolve().parent
SOQL = (
    "SELECT Id, Name, AccountNumber, Industry, Type, AnnualRevenue, NumberOfEmployees, "
    "BillingCity, BillingCountry, Active__c, Owner.Name, CreatedDate FROM Account"
)
POLL = 0.01
CHUNK_ROWS = 20_000
"""Rows per result chunk: at 100k rows as at 1M, more chunks than the five downloaded at once,
so the peak memory of both sizes is measured with five downloads in flight."""
USERNAME = "bench.bulk@example.com"
CONSUMER_KEY = "bench-bulk-consumer-key"


# --- parent side -------------------------------------------------------------------------------


@contextmanager
def _emulator(**options: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A started emulator (``options`` as ``SalesforceEmulator`` takes them) with one app and
    user, and the connection a child needs (trusting the emulator's CA when it serves TLS)."""
    from airflow_provider_sfjwt.salesforce import keys
    from airflow_provider_sfjwt.testing.emulator import SalesforceEmulator

    key = keys.generate_private_key(2048)
    pem = keys.private_key_to_pem(key, None).decode()
    cert = keys.certificate_to_pem(keys.self_signed_certificate(key, "bench", days=2)).decode()
    with SalesforceEmulator(bulk_poll_transitions=1, **options) as emu:
        emu.add_app(CONSUMER_KEY, cert, [USERNAME])
        trust = {"ca_bundle": emu.ca_cert_path} if emu.ca_cert_path else {}
        yield emu, emu.connection(username=USERNAME, private_key_pem=pem, **trust)


def _child(
    mode: str, spec: dict[str, Any], module: str = "benchmarks.bench_bulk"
) -> dict[str, Any]:
    """Run one measurement in a new interpreter (``python -m <module> --child <mode>``); the
    spec (with the bench key) goes via stdin.

    A previous run's output is removed first: replacing or truncating a 170 MB file frees its
    blocks inside the timed region (tens of ms), which would be noise, not client work.
    """
    if "out" in spec:
        Path(spec["out"]).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-tokens-") as tokens:
        proc = subprocess.run(
            [sys.executable, "-m", module, "--child", mode],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            cwd=HERE.parent,
            check=False,
            # A token store of its own per run: each run logs in once, like a fresh worker.
            env={**os.environ, "SFJWT_TOKEN_CACHE_DIR": os.path.join(tokens, "store")},
        )
    if proc.returncode:
        raise RuntimeError(f"bench child {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_bulk_query_bench(n_rows: int, repeats: int = 10) -> dict[str, Any]:
    """Bulk query of ``n_rows`` Accounts to CSV vs the plain-requests floor.

    ``paired_ratio_to_floor`` (the verdict) is the median over rounds of each round's ratio: a
    round runs both back to back, so load from other processes hits both alike.
    """
    with _emulator() as (emu, conn), tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        emu.generate_accounts(n_rows)
        emu.bulk.default_max_records = CHUNK_ROWS
        spec = {"conn": conn, "soql": SOQL, "out": str(Path(tmp) / "out.csv")}
        ours: list[dict[str, Any]] = []
        floor: list[dict[str, Any]] = []
        for i in range(repeats):  # alternate who goes first, so drift hits both alike
            order = (
                (("floor", floor), ("query", ours))
                if i % 2 == 0
                else (("query", ours), ("floor", floor))
            )
            for mode, runs in order:
                runs.append(_child(mode, spec))
    for run in ours + floor:
        if run["rows"] != n_rows:
            raise AssertionError(f"expected {n_rows} rows, a run reported {run['rows']}")
    best_ours = min(r["wall_s"] for r in ours)
    best_floor = min(r["wall_s"] for r in floor)
    return {
        "bench": "bulk_query_csv",
        "rows": n_rows,
        "repeats": repeats,
        "wall_s": round(best_ours, 3),
        "floor_wall_s": round(best_floor, 3),
        "ratio_to_floor": round(best_ours / best_floor, 3),
        "median_wall_s": round(statistics.median(r["wall_s"] for r in ours), 3),
        "median_floor_wall_s": round(statistics.median(r["wall_s"] for r in floor), 3),
        "median_ratio_to_floor": round(
            statistics.median(r["wall_s"] for r in ours)
            / statistics.median(r["wall_s"] for r in floor),
            3,
        ),
        "paired_ratio_to_floor": round(
            statistics.median(o["wall_s"] / f["wall_s"] for o, f in zip(ours, floor, strict=True)),
            3,
        ),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in ours), 1),
        "floor_peak_rss_mb": round(max(r["peak_rss_mb"] for r in floor), 1),
        "start_rss_mb": round(max(r["start_rss_mb"] for r in ours), 1),
        "file_mb": round(ours[0]["bytes"] / 1e6, 1),
        "same_bytes_as_floor": ours[0]["bytes"] == floor[0]["bytes"],
        "rows_per_s": int(n_rows / best_ours),
    }


def _write_accounts_csv(path: Path, n_rows: int) -> None:
    rng = random.Random(7)
    industries = ["Banking", "Energy", "Retail", "Technology", "Healthcare", "Media"]
    cities = ["Paris", "Zürich", "São Paulo", "Osaka", "Nairobi", "Toronto"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        # The REST bench's fields that a load can set (not Id or LastModifiedDate), and a text.
        writer.writerow([*FIELDS[1:-1], "Description"])
        for i in range(n_rows):
            writer.writerow(
                [
                    f"Bench Account {i}",
                    f"BA-{i:08d}",
                    industries[i % len(industries)],
                    f"{rng.uniform(1e4, 1e9):.2f}",
                    rng.randint(1, 50_000),
                    cities[i % len(cities)],
                    'Quoted "name", comma' if i % 50 == 0 else "",
                ]
            )


def run_bulk_ingest_bench(n_rows: int) -> dict[str, Any]:
    """Bulk insert of ``n_rows`` Accounts from a CSV file, with the three result files saved."""
    with _emulator() as (_emu, conn), tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        source = Path(tmp) / "accounts.csv"
        _write_accounts_csv(source, n_rows)
        run = _child("ingest", {"conn": conn, "path": str(source)})
        size = source.stat().st_size
    if run["processed"] != n_rows or run["failed"]:
        raise AssertionError(f"ingest of {n_rows} rows reported {run}")
    return {
        "bench": "bulk_ingest_csv",
        "rows": n_rows,
        "wall_s": round(run["wall_s"], 3),
        "peak_rss_mb": round(run["peak_rss_mb"], 1),
        "start_rss_mb": round(run["start_rss_mb"], 1),
        "file_mb": round(size / 1e6, 1),
        "jobs": run["jobs"],
        "rows_per_s": int(n_rows / run["wall_s"]),
    }


# --- child side --------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak RSS. ``VmHWM``, not ``ru_maxrss``: Linux carries ru_maxrss across
    exec, so a child forked from the (large) emulator process would report the parent's size."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _client(conn: dict[str, Any]):
    from airflow_provider_sfjwt.salesforce.client import SalesforceClient
    from airflow_provider_sfjwt.salesforce.settings import parse_connection

    settings = parse_connection(
        host=conn["host"], login=conn["login"], password=conn.get("password"), extra=conn["extra"]
    )
    client = SalesforceClient(settings)
    client.auth.token()  # the token exchange is not what is measured
    return client


def _child_query(spec: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_sfjwt.salesforce.bulk import query_to_file

    client = _client(spec["conn"])
    start_rss = _rss_mb()
    t0 = time.perf_counter()
    result = query_to_file(client, spec["soql"], spec["out"], poll_interval=POLL)
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "rows": result["rows"],
        "bytes": os.path.getsize(spec["out"]),
        "peak_rss_mb": _peak_rss_mb(),
        "start_rss_mb": start_rss,
    }


def locator_loop(session: Any, results_url: str, out_path: str) -> int:
    """The sequential floor of a Bulk download: each chunk's body written as it comes (its
    header row dropped after the first), the next locator asked for after it; the row count."""
    rows = 0
    locator = None
    with open(out_path, "wb") as out:
        while True:
            params = {"locator": locator} if locator else {}
            with session.get(results_url, params=params, stream=True) as resp:
                resp.raise_for_status()
                body = resp.iter_content(1 << 20)
                if locator:  # later chunks repeat the header row
                    first = next(body, b"")
                    out.write(first[first.find(b"\n") + 1 :])
                for block in body:
                    out.write(block)
                rows += int(resp.headers["Sforce-NumberOfRecords"])
                locator = resp.headers.get("Sforce-Locator")
            if not locator or locator == "null":
                return rows


def _child_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """The least a client can do: same HTTP calls, bytes straight to disk, no policy."""
    import requests

    client = _client(spec["conn"])
    token = client.auth.token()
    base = token.instance_url + client.data_path().rstrip("/")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token.access_token}"
    start_rss = _rss_mb()
    t0 = time.perf_counter()
    job = session.post(
        f"{base}/jobs/query", json={"operation": "query", "query": spec["soql"]}
    ).json()
    while session.get(f"{base}/jobs/query/{job['id']}").json()["state"] != "JobComplete":
        time.sleep(POLL)
    rows = locator_loop(session, f"{base}/jobs/query/{job['id']}/results", spec["out"])
    session.delete(f"{base}/jobs/query/{job['id']}")
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "rows": rows,
        "bytes": os.path.getsize(spec["out"]),
        "peak_rss_mb": _peak_rss_mb(),
        "start_rss_mb": start_rss,
    }


def _child_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_sfjwt.salesforce.bulk import ingest_file

    client = _client(spec["conn"])
    start_rss = _rss_mb()
    t0 = time.perf_counter()
    summary = ingest_file(client, "Account", "insert", spec["path"], poll_interval=POLL)
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "processed": summary["processed"],
        "failed": summary["failed"],
        "jobs": len(summary["job_ids"]),
        "peak_rss_mb": _peak_rss_mb(),
        "start_rss_mb": start_rss,
    }


_CHILDREN = {"query": _child_query, "floor": _child_floor, "ingest": _child_ingest}


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        result = _CHILDREN[argv[1]](json.loads(sys.stdin.read()))
        print(json.dumps(result))
        return
    sizes = [int(a) for a in argv] or [100_000, 1_000_000]
    results = {
        "query": [run_bulk_query_bench(n) for n in sizes],
        "ingest": [run_bulk_ingest_bench(max(sizes))],
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
