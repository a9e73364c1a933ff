"""Replay: over 100+ simulated hours the org changes in every way replication must survive, an
hourly replication runs after each hour, and merging every run's files (the README's DuckDB
query) gives exactly the org's final live rows: 0 missing, 0 stale, 0 resurrected.

Each simulated hour brings creates, user updates (REST PATCH) and system updates, soft deletes,
undeletes, hard deletes (Bulk ``hardDelete`` and an emptied Recycle Bin), late commits (rows
stamped inside the next run's lookback but written after this hour's run) and formula changes
(a formula on the owner's name, changed by renaming users; a formula on TODAY(), changed by
the passing days) that never move ``SystemModstamp``. The emulator's clock is the simulated
clock, so every stamp, Date header and TODAY() follows it. A low ``bulk_threshold`` sends the
busier windows through Bulk API 2.0, the others through REST.

Variants: a backfill (a paused stretch run later in shuffled order, and old intervals run
again at the end, out of order) and a run that fails mid-way (after its data file, before its
deletions) and is retried.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce.bulk import ingest_file
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.errors import ApiError
from airflow_provider_sfjwt.salesforce.replicate import ReplicationSpec, Replicator
from airflow_provider_sfjwt.testing import SalesforceEmulator

from .replication_support import UTC, at, compare, live_rows, merged_lake

pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

HOUR = dt.timedelta(hours=1)
LOOKBACK = dt.timedelta(minutes=10)
INTERVALS = 104
BULK = {"poll_interval": 0.01}


class Org:
    """The simulated org: random changes of every kind, at the simulated clock.

    It keeps its own view of which rows are live or in the Recycle Bin and when each was last
    stamped, to pick targets without reading the whole object for every change.
    """

    def __init__(self, emu: SalesforceEmulator, client: SalesforceClient, seed: int, tmp: Path):
        self.emu = emu
        self.client = client
        self.rng = random.Random(seed)
        self.tmp = tmp
        self.counts: dict[str, int] = {}
        records = emu.records("Account")
        self.owners = [
            r["Id"] for r in emu.records("User") if r.get("Username", "").startswith("owner")
        ]
        self.live = {r["Id"] for r in records if not r["IsDeleted"]}
        self.binned = {r["Id"] for r in records if r["IsDeleted"]}
        epoch = dt.datetime(2000, 1, 1, tzinfo=UTC)
        self.stamped = {r["Id"]: epoch for r in records}

    def _count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def _pick(self, pool: set[str], n: int = 1) -> list[str]:
        return self.rng.sample(sorted(pool), min(n, len(pool)))

    def hour(self, start: dt.datetime, k: int) -> None:
        """Random changes at random moments of ``[start, start + 1h)``."""
        rng = self.rng
        moments = sorted(start + dt.timedelta(seconds=rng.randrange(10, 3590)) for _ in range(10))
        for moment in moments:
            at(self.emu, moment)
            kind = rng.choice(
                ["create", "create", "update", "update", "system", "delete", "undelete", "owner"]
            )
            if kind == "create":
                # now and then a burst, so that Bulk gets windows too
                n = rng.choice([1, 1, 1, 2, 2, 30])
                new = self.emu.load(
                    "Account",
                    [
                        {
                            "Name": f"Acme {k}-{rng.randrange(10**6)}",
                            "AnnualRevenue": round(rng.uniform(0, 1e6), 2),
                            "BillingCity": rng.choice(["Paris", "Zürich", None]),
                            "OwnerId": rng.choice(self.owners),
                        }
                        for _ in range(n)
                    ],
                )
                self.live.update(new)
                self.stamped.update(dict.fromkeys(new, moment))
                self._count("create", n)
            elif kind == "update" and self.live:
                (rid,) = self._pick(self.live)
                body = {"Name": f"Renamed {k}", "NumberOfEmployees": rng.randrange(1, 5000)}
                self.client.request("PATCH", f"sobjects/Account/{rid}", json=body)
                self.stamped[rid] = moment
                self._count("update")
            elif kind == "system" and self.live:
                rids = self._pick(self.live)
                self.emu.system_update("Account", rids, {"Description": f"sys {k}"})
                self.stamped.update(dict.fromkeys(rids, moment))
                self._count("system update")
            elif kind == "delete" and self.live:
                rids = self._pick(self.live, 2)
                self.emu.delete_records("Account", rids)
                self.live.difference_update(rids)
                self.binned.update(rids)
                self.stamped.update(dict.fromkeys(rids, moment))
                self._count("soft delete", len(rids))
            elif kind == "undelete" and self.binned:
                rids = self._pick(self.binned)
                self.emu.undelete("Account", rids)
                self.binned.difference_update(rids)
                self.live.update(rids)
                self.stamped.update(dict.fromkeys(rids, moment))
                self._count("undelete")
            elif kind == "owner":
                # the formula Owner_Name__c changes on every Account of this owner, none stamped
                self.emu.system_update("User", [rng.choice(self.owners)], {"Name": f"Owner {k}"})
                self._count("formula change (owner renamed)")
        if k % 9 == 4 and self.live:
            at(self.emu, start + dt.timedelta(minutes=59, seconds=30))
            self.hard_delete(self._pick(self.live, 2))
        if k % 13 == 6:
            at(self.emu, start + dt.timedelta(minutes=59, seconds=50))
            self._count("purged from the Recycle Bin", self.emu.empty_recycle_bin("Account"))
            self.binned.clear()

    def hard_delete(self, ids: list[str]) -> None:
        path = self.tmp / "hard_delete.csv"
        path.write_text("Id\n" + "".join(f"{i}\n" for i in ids))
        summary = ingest_file(self.client, "Account", "hardDelete", path, poll_interval=0.01)
        assert summary["failed"] == 0, summary
        self.live.difference_update(ids)
        self._count("hard delete", len(ids))

    def late_commit(self, next_start: dt.datetime, k: int) -> None:
        """Rows stamped inside the next run's lookback, written after this hour's run: one
        created, one updated (a row last stamped before that moment)."""
        lookback = int(LOOKBACK.total_seconds())
        stamp = next_start - dt.timedelta(seconds=self.rng.randrange(30, lookback - 30))
        new = self.emu.load(
            "Account",
            [{"Name": f"Late {k}", "OwnerId": self.rng.choice(self.owners)}],
            modstamp=stamp,
        )
        self.live.update(new)
        self.stamped.update(dict.fromkeys(new, stamp))
        self._count("late commit")
        older = {rid for rid in self.live if self.stamped[rid] < stamp - dt.timedelta(seconds=5)}
        if older:
            (rid,) = self._pick(older)
            iso = stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
            self.emu.load(
                "Account",
                [{"Id": rid, "Phone": f"late-{k}", "SystemModstamp": iso, "LastModifiedDate": iso}],
            )
            self.stamped[rid] = stamp
            self._count("late commit")


@pytest.fixture
def replay(emu: SalesforceEmulator, tmp_path: Path) -> Any:
    client = SalesforceJWTHook().get_conn()
    client.auth.token()  # the token exchange happens on the real clock; the token then lives on
    emu.add_formula_field(
        "Account",
        "Owner_Name__c",
        "string",
        "Owner.Name",
        lambda row: row["Owner.Name"],
    )
    emu.generate_accounts(200, seed=7)
    return client


def run_interval(replicator: Replicator, start: dt.datetime) -> dict[str, Any]:
    return replicator.run(start, start + HOUR, **BULK)


def check(client: SalesforceClient, folder: Path, replicator: Replicator) -> dict[str, Any]:
    refresh = Replicator(
        client,
        ReplicationSpec("Account", mode="formulas", api="bulk", formula_fields="refresh"),
        folder,
    )
    refresh.run(dt.datetime(2000, 1, 1, tzinfo=UTC), dt.datetime(2000, 1, 1, 1, tzinfo=UTC), **BULK)
    snapshot = json.loads((folder / "_schema.json").read_text())
    types = {
        **snapshot["fields"],
        "Owner_Name__c": "string",
        "Days_Since_Last_Activity__c": "double",
    }
    lake = merged_lake(folder, formulas=True)
    org = live_rows(client, "Account", types)
    return compare(lake, org, types)


@pytest.mark.parametrize("variant", ["in_order", "backfill", "failure_and_retry"])
def test_replay_lake_copy_equals_the_org(emu, replay, tmp_path, variant):
    client = replay
    folder = tmp_path / "lake" / "Account"
    spec = ReplicationSpec(
        "Account", lookback=LOOKBACK, bulk_threshold=30, formula_fields="refresh"
    )
    replicator = Replicator(client, spec, folder)
    org = Org(
        emu,
        client,
        seed={"in_order": 1, "backfill": 2, "failure_and_retry": 3}[variant],
        tmp=tmp_path,
    )
    base = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - (INTERVALS + 6) * HOUR
    paused = range(40, 52) if variant == "backfill" else range(0)
    failing = 57 if variant == "failure_and_retry" else None
    apis: dict[str, int] = {}
    runs = 0
    for k in range(INTERVALS):
        start = base + k * HOUR
        org.hour(start, k)
        at(emu, start + HOUR + dt.timedelta(minutes=org.rng.randrange(3, 20)))
        if k in paused:
            continue
        if paused and k == paused.stop:
            order = list(paused)
            org.rng.shuffle(order)
            for j in order:  # the paused hours, backfilled out of order
                result = run_interval(replicator, base + j * HOUR)
                apis[result["api"]] = apis.get(result["api"], 0) + 1
                runs += 1
        if k == failing:
            version = client.api_version
            emu.faults.fail(
                f"/services/data/v{version}/sobjects/Account/deleted",
                status=400,
                error_code="UNKNOWN_EXCEPTION",
            )
            with pytest.raises(ApiError):
                run_interval(replicator, start)
            assert (folder / "data" / f"{start:%Y%m%dT%H%M%SZ}.parquet").exists()
        result = run_interval(replicator, start)
        apis[result["api"]] = apis.get(result["api"], 0) + 1
        runs += 1
        if k < INTERVALS - 1 and org.rng.random() < 0.4:
            org.late_commit(start + HOUR, k)
    if variant == "backfill":
        old = org.rng.sample(range(1, INTERVALS - 1), 12)
        for j in old:  # old intervals run again at the end, out of order
            run_interval(replicator, base + j * HOUR)
            runs += 1
    outcome = check(client, folder, replicator)
    print(f"{variant}: {runs} runs ({apis}), changes {org.counts}, outcome {outcome}")
    assert runs >= INTERVALS
    assert apis.get("rest", 0) > 0 and apis.get("bulk", 0) > 0, apis
    for kind in (
        "create",
        "update",
        "system update",
        "soft delete",
        "undelete",
        "hard delete",
        "late commit",
        "formula change (owner renamed)",
        "purged from the Recycle Bin",
    ):
        assert org.counts.get(kind, 0) > 0, (kind, org.counts)
    assert (outcome["missing"], outcome["stale"], outcome["resurrected"]) == (0, 0, 0), outcome
