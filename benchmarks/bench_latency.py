"""Extracts under a real network: the emulator's latency model against sequential and ideal floors.

On loopback every answer is instant, so paging one request after the other costs nothing. A
Salesforce org is tens of milliseconds away and spends 100 to 500 ms of its own per query page
or Bulk result chunk. Here the emulator adds a round trip to every request and server time to
every page and chunk (:class:`airflow_provider_sfjwt.testing.latency.Latency`), and each
product path runs against floors made of bare ``requests``, in the same rounds. As with
Salesforce, every request goes over TLS and answers come gzip-compressed (``requests`` asks for
gzip by default, the provider too); the emulator compresses each block once and keeps it, so
at zero latency the client's own work is what is measured:

* Bulk query of ``BULK_ROWS`` Accounts to CSV, the emulator serving ``BULK_CHUNK`` rows per
  chunk: ``sequential`` (the locator loop, each body written as it comes), ``parallel`` (the
  ideal: ``resultPages`` with 5 downloads at once, each chunk written to a file of its own, no
  joining), ``ours`` (``bulk.query_to_file``: 5 at once through ``resultPages``, one CSV file).
* REST extract of ``REST_ROWS`` Accounts to CSV: ``sequential`` (request, parse, write, next),
  ``pipelined`` (the next request sent before the current page is parsed), ``ours``
  (``extract.query_to_file``).
* Hook setup: ``SalesforceJWTHook().get_conn()`` in a fresh process (connection lookup, key
  loading, secret registration), the fixed cost every task pays before its first request.

Each run is a fresh child process; time starts after the token exchange (so it is the extract
alone) and ends when the output is complete. Ratios are paired: a run divided by the floor's run
of the same round, median over rounds.
"""

from __future__ import annotations

import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.bench_bulk import _emulator, locator_loop

HERE = Path(__file__).resolve().parent
BULK_ROWS = 1_000_000
BULK_CHUNK = 50_000
REST_ROWS = 200_000
FIELDS = ("Id", "Name", "AccountNumber", "Industry", "AnnualRevenue", "BillingCity")
BULK_SOQL = f"SELECT {', '.join(FIELDS)} FROM Account"
REST_SOQL = f"{BULK_SOQL} LIMIT {REST_ROWS}"
LATENCIES = {"zero": (0.0, 0.0), "50+150 ms": (0.05, 0.15)}
"""Round trip and server time per page or chunk, in seconds."""
BULK_VARIANTS = ("sequential", "parallel", "ours")
SHORT_RUN_ROUNDS = 5
"""Rounds multiplier for Bulk at zero latency: a run lasts under half a second there, and
one round's paired ratio swings by 15 % on a shared 2-core machine, so its median needs more."""
REST_VARIANTS = ("sequential", "pipelined", "ours")
POLL = 0.01
_NEXT = re.compile(rb'"nextRecordsUrl"\s*:\s*"([^"]+)"')


# --- parent side -------------------------------------------------------------------------------


def _child(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-tokens-") as tokens:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_latency", mode],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            cwd=HERE.parent,
            check=False,
            timeout=1800,
            env={
                **os.environ,
                "SFJWT_TOKEN_CACHE_DIR": os.path.join(tokens, "store"),
                # The floors' bare sessions trust the emulator's CA the way requests lets an
                # environment do it (this variable outranks a session's own ``verify``).
                "REQUESTS_CA_BUNDLE": spec["conn"]["extra"]["ca_bundle"],
            },
        )
    if done.returncode:
        raise RuntimeError(f"latency bench child {mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _paired(runs: list[dict[str, Any]], variant: str, floor: str) -> float:
    by_round = {(r["latency"], r["round"]): r for r in runs if r["variant"] == floor}
    ratios = [
        r["seconds"] / by_round[(r["latency"], r["round"])]["seconds"]
        for r in runs
        if r["variant"] == variant
    ]
    return round(statistics.median(ratios), 3)


def summarize(runs: list[dict[str, Any]], variants: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per (latency, variant): median time, ratio to each floor (paired), peak RSS."""
    rows = []
    for latency in LATENCIES:
        mine = [r for r in runs if r["latency"] == latency]
        if not mine:
            continue
        for variant in variants:
            own = [r for r in mine if r["variant"] == variant]
            rows.append(
                {
                    "latency": latency,
                    "variant": variant,
                    "rounds": len(own),
                    "median_s": round(statistics.median(r["seconds"] for r in own), 3),
                    "best_s": round(min(r["seconds"] for r in own), 3),
                    "vs_sequential": _paired(mine, variant, variants[0]),
                    "vs_second_floor": _paired(mine, variant, variants[1]),
                    "peak_rss_mb": round(max(r["peak_rss_mb"] for r in own), 1),
                    "requests": own[0]["requests"],
                }
            )
    return rows


def run(repeat: int = 3, bulk_rows: int = BULK_ROWS, rest_rows: int = REST_ROWS) -> dict[str, Any]:
    """Every variant at every latency, ``repeat`` rounds each, order rotating within a round."""
    from airflow_provider_sfjwt.testing.latency import Latency

    bulk_runs: list[dict[str, Any]] = []
    rest_runs: list[dict[str, Any]] = []
    with (
        _emulator(tls=True, gzip=True) as (emu, conn),
        tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp,
    ):
        emu.generate_accounts(max(bulk_rows, rest_rows))
        emu.bulk.default_max_records = BULK_CHUNK
        out = str(Path(tmp) / "out.csv")
        plan = (
            ("bulk", BULK_VARIANTS, bulk_runs, BULK_SOQL, bulk_rows),
            ("rest", REST_VARIANTS, rest_runs, f"{BULK_SOQL} LIMIT {rest_rows}", rest_rows),
        )
        # The emulator builds each answer's bytes on the first read and caches them: one untimed
        # read of each kind first, so no variant's first round pays for the others.
        for what, variants, _, soql, _ in plan:
            _child(f"{what}-{variants[0]}", {"conn": conn, "out": out, "soql": soql})
            _clean(out)
        for label, (rtt, page) in LATENCIES.items():
            # On for the whole run of a child: its token exchange and imports are not timed.
            emu.latency = Latency(rtt=rtt, page_seconds=page)
            for attempt in range(repeat * SHORT_RUN_ROUNDS):
                for what, variants, runs, soql, rows in plan:
                    if attempt >= _rounds(repeat, what, label):
                        continue
                    shift = attempt % len(variants)
                    for variant in variants[shift:] + variants[:shift]:
                        _clean(out)
                        before = emu.stats.api_calls
                        result = _child(
                            f"{what}-{variant}", {"conn": conn, "out": out, "soql": soql}
                        )
                        if result["rows"] != rows:
                            raise RuntimeError(
                                f"{what} {variant} wrote {result['rows']} rows, not {rows}"
                            )
                        result.update(
                            latency=label,
                            variant=variant,
                            round=attempt + 1,
                            requests=emu.stats.api_calls - before,
                        )
                        print(
                            f"  {what} {variant:<10} {label:>9} round {attempt + 1}: "
                            f"{result['seconds']:6.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB",
                            flush=True,
                        )
                        runs.append(result)
        emu.latency = Latency()
        _clean(out)
        setup = [_child("hook-setup", {"conn": conn}) for _ in range(max(3, repeat))]
    return {
        "bulk_rows": bulk_rows,
        "bulk_chunk": BULK_CHUNK,
        "rest_rows": rest_rows,
        "repeat": repeat,
        "bulk": summarize(bulk_runs, BULK_VARIANTS),
        "rest": summarize(rest_runs, REST_VARIANTS),
        "bulk_runs": bulk_runs,
        "rest_runs": rest_runs,
        "hook_setup": {
            "wall_ms": round(1000 * statistics.median(s["wall_s"] for s in setup), 1),
            "cpu_ms": round(1000 * statistics.median(s["cpu_s"] for s in setup), 1),
            "mask_ms": round(1000 * statistics.median(s["mask_s"] for s in setup), 1),
            "key_ms": round(1000 * statistics.median(s["key_s"] for s in setup), 1),
            "second_hook_ms": round(1000 * statistics.median(s["second_s"] for s in setup), 1),
        },
    }


def _rounds(repeat: int, what: str, latency: str) -> int:
    return repeat * SHORT_RUN_ROUNDS if (what, latency) == ("bulk", "zero") else repeat


def _clean(out: str) -> None:
    for path in Path(out).parent.glob(Path(out).name + "*"):
        path.unlink()


# --- child side --------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _client(conn: dict[str, Any]) -> Any:
    from airflow_provider_sfjwt.salesforce.client import SalesforceClient
    from airflow_provider_sfjwt.salesforce.settings import parse_connection

    settings = parse_connection(
        host=conn["host"], login=conn["login"], password=conn.get("password"), extra=conn["extra"]
    )
    client = SalesforceClient(settings)
    client.auth.token()
    return client


def _session(client: Any) -> tuple[Any, str, str]:
    """A bare requests session with the client's token, the instance URL and the data base."""
    import requests
    from requests.adapters import HTTPAdapter

    token = client.auth.token()
    session = requests.Session()
    session.mount("https://", HTTPAdapter(pool_maxsize=8))
    session.headers["Authorization"] = f"Bearer {token.access_token}"
    return session, token.instance_url, token.instance_url + client.data_path().rstrip("/")


def _bulk_job(session: Any, base: str, soql: str) -> str:
    job = session.post(f"{base}/jobs/query", json={"operation": "query", "query": soql}).json()
    while session.get(f"{base}/jobs/query/{job['id']}").json()["state"] != "JobComplete":
        time.sleep(POLL)
    return str(job["id"])


def _bulk_sequential(spec: dict[str, Any]) -> int:
    client = _client(spec["conn"])
    session, _, base = _session(client)
    started = time.perf_counter()
    job_id = _bulk_job(session, base, spec["soql"])
    rows = locator_loop(session, f"{base}/jobs/query/{job_id}/results", spec["out"])
    spec["_seconds"] = time.perf_counter() - started
    return rows


def _bulk_parallel(spec: dict[str, Any]) -> int:
    """The ideal: resultPages read as they come, five downloads at once, one file per chunk."""
    client = _client(spec["conn"])
    session, instance, base = _session(client)
    started = time.perf_counter()
    job_id = _bulk_job(session, base, spec["soql"])

    def download(number: int, url: str) -> int:
        with (
            session.get(instance + url, stream=True) as r,
            open(f"{spec['out']}.{number}", "wb") as out,
        ):
            r.raise_for_status()
            for block in r.iter_content(1 << 20):
                out.write(block)
            return int(r.headers["Sforce-NumberOfRecords"])

    futures = []
    with ThreadPoolExecutor(5) as pool:
        answer = session.get(f"{base}/jobs/query/{job_id}/resultPages").json()
        while True:
            for page in answer["resultPages"]:
                futures.append(pool.submit(download, len(futures), page["resultUrl"]))
            if answer["done"]:
                break
            answer = session.get(instance + answer["nextRecordsUrl"]).json()
        rows = sum(f.result() for f in futures)
    spec["_seconds"] = time.perf_counter() - started
    session.delete(f"{base}/jobs/query/{job_id}")
    return rows


def _bulk_ours(spec: dict[str, Any]) -> int:
    from airflow_provider_sfjwt.salesforce.bulk import query_to_file, wait_for_deletions

    client = _client(spec["conn"])
    started = time.perf_counter()
    result = query_to_file(client, spec["soql"], spec["out"], poll_interval=POLL)
    spec["_seconds"] = time.perf_counter() - started
    wait_for_deletions()
    return int(result["rows"])


def _rest_rows(page: dict[str, Any]) -> list[list[Any]]:
    return [[r[f] for f in FIELDS] for r in page["records"]]


def _rest_sequential(spec: dict[str, Any]) -> int:
    client = _client(spec["conn"])
    session, instance, base = _session(client)
    started = time.perf_counter()
    url: str | None = f"{base}/query"
    params: dict[str, str] | None = {"q": spec["soql"]}
    rows = 0
    with open(spec["out"], "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        while url:
            response = session.get(url, params=params)
            response.raise_for_status()
            page = response.json()
            writer.writerows(_rest_rows(page))
            rows += len(page["records"])
            following = page.get("nextRecordsUrl")
            url = None if page["done"] or not following else instance + following
            params = None
    spec["_seconds"] = time.perf_counter() - started
    return rows


def _rest_pipelined(spec: dict[str, Any]) -> int:
    """Sends the next request as soon as a page's body is in, before parsing and writing it."""
    client = _client(spec["conn"])
    session, instance, base = _session(client)

    def fetch(url: str, params: dict[str, str] | None) -> bytes:
        response = session.get(url, params=params)
        response.raise_for_status()
        return response.content

    started = time.perf_counter()
    rows = 0
    with ThreadPoolExecutor(1) as pool, open(spec["out"], "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        pending = pool.submit(fetch, f"{base}/query", {"q": spec["soql"]})
        while pending is not None:
            body = pending.result()
            following = _NEXT.search(body, 0, 4096)
            pending = (
                pool.submit(fetch, instance + following.group(1).decode(), None)
                if following
                else None
            )
            page = json.loads(body)
            writer.writerows(_rest_rows(page))
            rows += len(page["records"])
    spec["_seconds"] = time.perf_counter() - started
    return rows


def _rest_ours(spec: dict[str, Any]) -> int:
    from airflow_provider_sfjwt.salesforce.extract import query_to_file

    client = _client(spec["conn"])
    started = time.perf_counter()
    result = query_to_file(client, spec["soql"], spec["out"])
    spec["_seconds"] = time.perf_counter() - started
    return int(result["rows"])


def _hook_setup(spec: dict[str, Any]) -> dict[str, Any]:
    """A task's fixed cost before its first request, in a process that imported the hook."""
    os.environ["AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT"] = json.dumps(spec["conn"])
    from airflow_provider_sfjwt.compat import mask_secret
    from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
    from airflow_provider_sfjwt.salesforce import settings

    calls: list[float] = []
    import airflow_provider_sfjwt.hooks.salesforce_jwt as hook_module

    def timed_mask(secret: Any, name: str | None = None) -> None:
        t = time.perf_counter()
        mask_secret(secret, name)
        calls.append(time.perf_counter() - t)

    hook_module.mask_secret = timed_mask  # type: ignore[assignment]
    parse = settings.load_private_key
    parse_times: list[float] = []

    def timed_parse(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return parse(*args, **kwargs)
        finally:
            parse_times.append(time.perf_counter() - t)

    settings.load_private_key = timed_parse  # type: ignore[assignment]
    cpu, wall = time.process_time(), time.perf_counter()
    SalesforceJWTHook().get_conn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    second = time.perf_counter()
    SalesforceJWTHook().get_conn()
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "mask_s": sum(calls),
        "key_s": sum(parse_times),
        "second_s": time.perf_counter() - second,
    }


_CHILDREN = {
    "bulk-sequential": _bulk_sequential,
    "bulk-parallel": _bulk_parallel,
    "bulk-ours": _bulk_ours,
    "rest-sequential": _rest_sequential,
    "rest-pipelined": _rest_pipelined,
    "rest-ours": _rest_ours,
}


def main(mode: str) -> None:
    spec = json.loads(sys.stdin.read())
    if mode == "hook-setup":
        print(json.dumps(_hook_setup(spec)))
        return
    rows = _CHILDREN[mode](spec)
    print(json.dumps({"rows": rows, "seconds": spec["_seconds"], "peak_rss_mb": _peak_rss_mb()}))


if __name__ == "__main__":
    main(sys.argv[1])


# --- report ------------------------------------------------------------------------------------

BULK_PARALLEL_TARGET = 1.15
BULK_ZERO_TARGET = 1.10
REST_TARGET = 0.95


def _row(rows: list[dict[str, Any]], latency: str, variant: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["latency"] == latency and r["variant"] == variant), None)


def verdicts(data: dict[str, Any]) -> list[str]:
    """Target lines: Bulk vs the ideal parallel floor under latency and vs the sequential floor
    at zero latency; REST vs the sequential floor under latency."""
    lines = []
    slow = [label for label, (rtt, _) in LATENCIES.items() if rtt][-1]
    checks = (
        (
            "bulk",
            slow,
            "vs_second_floor",
            "the ideal parallel floor",
            BULK_PARALLEL_TARGET,
            "Bulk query",
        ),
        ("bulk", "zero", "vs_sequential", "the sequential floor", BULK_ZERO_TARGET, "Bulk query"),
        ("rest", slow, "vs_sequential", "the sequential floor", REST_TARGET, "REST extract"),
    )
    for kind, latency, column, floor, target, name in checks:
        row = _row(data[kind], latency, "ours")
        if row is None:
            continue
        rows = data["bulk_rows"] if kind == "bulk" else data["rest_rows"]
        ratio = row[column]
        lines.append(
            f"- {name} of {rows:,} rows at {latency} latency (TLS, gzip) vs {floor}, median of "
            "paired runs: "
            f"{ratio:.2f}x (target <= {target:.2f}x): {'met' if ratio <= target else 'NOT met'}"
        )
    setup = data.get("hook_setup")
    if setup:
        lines.append(
            f"- Hook setup (`SalesforceJWTHook().get_conn()`, first in a fresh process): "
            f"{setup['wall_ms']:.0f} ms wall, {setup['cpu_ms']:.0f} ms CPU, of which "
            f"{setup['mask_ms']:.0f} ms registering the key with Airflow's masker and "
            f"{setup['key_ms']:.0f} ms parsing the key; a second hook in the same process: "
            f"{setup['second_hook_ms']:.1f} ms"
        )
    return lines


def report_lines(data: dict[str, Any]) -> list[str]:
    """The BENCHMARKS.md section for this benchmark."""
    header = (
        "| latency | variant | median s | best s | vs sequential (paired) | vs second floor "
        "(paired) | peak RSS MB | API calls |"
    )
    lines = [
        "## Under a real network",
        "",
        "From `benchmarks/bench_latency.py`: the emulator's latency model adds a round trip to "
        "every request, server time to every REST query page and Bulk result chunk, and "
        "handshake round trips to every new connection (`airflow_provider_sfjwt.testing.latency`). "
        "As with Salesforce, every request goes over TLS and answers come gzip-compressed; the "
        "emulator compresses each block once and keeps it, so at zero latency the clients' own "
        "work is what is measured (the Bulk API 2.0 section above compares the same Bulk paths "
        "on plain HTTP without gzip, where counting each chunk's rows weighs more). "
        f"{data['repeat']} rounds per latency ({data['repeat'] * SHORT_RUN_ROUNDS} for Bulk at "
        "zero latency, where a run lasts under half a second and one round's ratio swings "
        "by 15 % on a shared 2-core machine), each running every variant back to back in a fresh "
        "child process (order rotating), after one untimed warm-up read of each kind (the "
        "emulator caches an answer's bytes once built); time starts after the token exchange and "
        "ends when the "
        "output is complete. Ratios are paired: a run divided by the floor's run of the same round, "
        "median over rounds.",
        "",
        f"Bulk query of {data['bulk_rows']:,} Accounts to CSV, {data['bulk_chunk']:,} rows per "
        "chunk: **sequential** is the locator loop with bare `requests`, each body written as it "
        "comes; **parallel** (the second floor) is the ideal client: `resultPages` read as they "
        "come and five chunks downloaded at once, each to a file of its own, never joined; "
        "**ours** is `bulk.query_to_file` (five at once through `resultPages`, one CSV file).",
        "",
        header,
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["bulk"]:
        lines.append(
            f"| {r['latency']} | {r['variant']} | {r['median_s']:.2f} | {r['best_s']:.2f} | "
            f"{r['vs_sequential']:.2f}x | {r['vs_second_floor']:.2f}x | {r['peak_rss_mb']:.1f} | "
            f"{r['requests']} |"
        )
    lines += [
        "",
        f"REST extract of {data['rest_rows']:,} Accounts to CSV: **sequential** requests a page, "
        "parses it, writes it, then asks for the next; **pipelined** (the second floor) sends the "
        "next request as soon as a page's body is in, before parsing it; **ours** is "
        "`extract.query_to_file` (the next request goes out when a page's first bytes name it).",
        "",
        header,
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["rest"]:
        lines.append(
            f"| {r['latency']} | {r['variant']} | {r['median_s']:.2f} | {r['best_s']:.2f} | "
            f"{r['vs_sequential']:.2f}x | {r['vs_second_floor']:.2f}x | {r['peak_rss_mb']:.1f} | "
            f"{r['requests']} |"
        )
    lines += ["", "Targets:", "", *verdicts(data), ""]
    return lines
