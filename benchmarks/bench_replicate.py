"""Replication benchmark: an hourly incremental run against a full extract, over 1M rows.

The emulator holds ``N`` Accounts (1,000,000 by default); 1% of them are changed inside the
hour being replicated. Measured, each in a fresh child process (the emulator stays in this
one), ``repeats`` rounds:

* ``full``: ``mode="full"``, what a pipeline without incremental replication runs every hour:
  every row (``api="auto"`` picks Bulk API 2.0 above 50,000 rows), to Parquet;
* ``incremental``: the hour's run after that first full copy, ``api="auto"`` (a ``COUNT()`` of
  the window; 10,000 rows stay on REST), with its deletions sidecar and schema snapshot;
* ``incremental (bulk)``: the same window forced through Bulk API 2.0.

API calls are the emulator's count of data-API requests during the run (the token exchange
happens before the clock starts and is not counted).
``python -m benchmarks.bench_replicate [N]`` prints the result as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_bulk import _child, _client, _emulator, _peak_rss_mb

POLL = 0.01
CHANGED = 0.01
VARIANTS = (
    ("full", {"mode": "full"}),
    ("incremental", {}),
    ("incremental (bulk)", {"api": "bulk"}),
)


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_sfjwt.salesforce.replicate import Replicator, spec_from

    client = _client(spec["conn"])
    replicator = Replicator(client, spec_from("Account", **spec["options"]), spec["folder"])
    start = dt.datetime.fromisoformat(spec["start"])
    t0 = time.perf_counter()
    result = replicator.run(start, start + dt.timedelta(hours=1), poll_interval=POLL)
    wall = time.perf_counter() - t0
    size = Path(result["data_path"]).stat().st_size
    return {
        "wall_s": wall,
        "rows": result["rows"],
        "api": result["api"],
        "deleted": result["deleted"],
        "data_mb": round(size / 1e6, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def run_replicate_bench(n_rows: int = 1_000_000, repeats: int = 3) -> list[dict[str, Any]]:
    """Median wall time, API calls and rows of each variant over ``repeats`` rounds."""
    changed = int(n_rows * CHANGED)
    now = dt.datetime.now(dt.timezone.utc)
    start = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in VARIANTS}
    with _emulator() as (emu, conn), tempfile.TemporaryDirectory(prefix="bench-lake-") as lake:
        print(f"Loading {n_rows:,} Accounts, changing {changed:,} of them ...", flush=True)
        emu.generate_accounts(n_rows)
        ids = list(emu.store.table("Account").cols["Id"])  # not 1M record dicts
        emu.clock_skew = (start + dt.timedelta(minutes=30)).timestamp() - time.time()
        emu.system_update("Account", random.Random(0).sample(ids, changed), {"Description": "x"})
        emu.clock_skew = 0.0
        for attempt in range(repeats):
            folder = Path(lake) / f"round{attempt}" / "Account"
            for name, options in VARIANTS:  # full first: it also makes the folder's first copy
                emu.reset_stats()
                spec = {
                    "conn": conn,
                    "folder": str(folder),
                    "start": start.isoformat(),
                    "options": options,
                }
                result = _child("run", spec, module="benchmarks.bench_replicate")
                result["api_calls"] = emu.stats.api_calls
                runs[name].append(result)
                print(f"  round {attempt + 1} {name}: {result}", flush=True)
    full = statistics.median(r["wall_s"] for r in runs["full"])
    out = []
    for name, _ in VARIANTS:
        items = runs[name]
        wall = statistics.median(r["wall_s"] for r in items)
        out.append(
            {
                "variant": name,
                "rows_in_object": n_rows,
                "rows_read": items[0]["rows"],
                "api": items[0]["api"],
                "api_calls": items[0]["api_calls"],
                "wall_s_median": round(wall, 2),
                "wall_s_best": round(min(r["wall_s"] for r in items), 2),
                "vs_full": f"{wall / full:.3f}x",
                "data_mb": items[0]["data_mb"],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in items),
            }
        )
    return out


def report_lines(results: list[dict[str, Any]]) -> list[str]:
    """The BENCHMARKS.md section for :func:`run_replicate_bench`'s results."""
    if not results:
        return []
    n = results[0]["rows_in_object"]
    lines = [
        "## Replication: an hourly incremental run against a full extract",
        "",
        f"From `benchmarks/bench_replicate.py`: {n:,} Accounts in the emulator, "
        f"{CHANGED:.0%} of them changed inside the replicated hour, Parquet output. `full` is "
        '`mode="full"` (every row), what an hourly job without incremental replication reads; '
        "`incremental` is the hour's run after that first copy, with its deletions sidecar and "
        'schema snapshot; both with `api="auto"` (a `COUNT()` chooses; the `api` column says '
        "what it chose). `incremental (bulk)` forces the same window through Bulk API 2.0. "
        "Fresh child per run; API calls counted by the emulator, token exchange excluded; "
        "`data_mb` is the run's data file.",
        "",
    ]
    columns = [k for k in results[0] if k != "rows_in_object"]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for item in results:
        lines.append("| " + " | ".join(str(item[k]) for k in columns) + " |")
    lines.append("")
    return lines


def main(argv: list[str]) -> None:
    if argv[:2] == ["--child", "run"]:
        print(json.dumps(_run_child(json.loads(sys.stdin.read()))))
        return
    n_rows = int(argv[0]) if argv else 1_000_000
    print(json.dumps(run_replicate_bench(n_rows), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
