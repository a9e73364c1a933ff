"""Fidelity of what incremental replication reads: timestamps maintained on every write, the
``/deleted/`` and ``/updated/`` resources with their shapes and window rules, hard deletes,
and the test-side controls a replication test needs (late commits, system writes, undelete,
emptied Recycle Bin, formula fields, a trimmed delete log)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fidelity import FIDELITY, hook_refused, refused

from airflow_provider_sfjwt.salesforce.errors import DeletesUnavailableError
from airflow_provider_sfjwt.salesforce.replicate_window import Window, fetch_deleted

pytestmark = FIDELITY

MINUTE = dt.timedelta(minutes=1)


def now(emu) -> dt.datetime:
    return dt.datetime.fromtimestamp(emu.now(), dt.timezone.utc)


def later(emu, minutes: int = 2) -> None:
    """Move the org's clock on, so the windows below cover what was just written."""
    emu.clock_skew += minutes * 60


def stamps(emu, rid: str) -> tuple[str, str]:
    (row,) = [r for r in emu.records("Account") if r["Id"] == rid]
    return row["LastModifiedDate"], row["SystemModstamp"]


def test_every_write_moves_both_timestamps(emu, ssf, hook, tmp_path):
    (rid,) = emu.load("Account", [{"Name": "Stamped"}], modstamp="2026-01-01T00:00:00Z")
    assert stamps(emu, rid) == ("2026-01-01T00:00:00.000+0000",) * 2
    writes = [
        lambda: ssf.Account.update(rid, {"Phone": "1"}),
        lambda: ssf.restful(
            "composite/sobjects",
            method="PATCH",
            json={"records": [{"attributes": {"type": "Account"}, "Id": rid, "Phone": "2"}]},
        ),
        lambda: hook.get_conn().request("PATCH", f"sobjects/Account/{rid}", json={"Phone": "3"}),
        lambda: ssf.bulk2.Account.update(records=[{"Id": rid, "Phone": "4"}], wait=0),
        lambda: ssf.Account.delete(rid),
        lambda: emu.undelete("Account", [rid]),
    ]
    previous = stamps(emu, rid)
    for write in writes:
        emu.clock_skew += 1  # a second apart: distinct millisecond stamps on any machine
        write()
        current = stamps(emu, rid)
        assert current[0] == current[1] > previous[1]
        previous = current


def test_system_write_moves_only_system_modstamp(emu, ssf):
    (rid,) = emu.load("Account", [{"Name": "Sys"}], modstamp="2026-01-01T00:00:00Z")
    later(emu)
    emu.system_update("Account", [rid], {"AccountNumber": "RECALC-1"})
    modified, modstamp = stamps(emu, rid)
    assert modified == "2026-01-01T00:00:00.000+0000" < modstamp
    assert ssf.Account.get(rid)["AccountNumber"] == "RECALC-1"


def test_formula_value_changes_without_a_timestamp(emu, ssf, hook):
    (acc,) = emu.load("Account", [{"Name": "Old Name"}])
    (con,) = emu.load("Contact", [{"LastName": "Child", "AccountId": acc}])
    soql = (
        f"SELECT Account_Name__c, SystemModstamp, LastModifiedDate FROM Contact WHERE Id = '{con}'"
    )
    (before,) = ssf.query(soql)["records"]
    emu.system_update("Account", [acc], {"Name": "New Name"})  # the parent changes
    (after,) = ssf.query(soql)["records"]
    assert (before["Account_Name__c"], after["Account_Name__c"]) == ("Old Name", "New Name")
    assert (after["SystemModstamp"], after["LastModifiedDate"]) == (
        before["SystemModstamp"],
        before["LastModifiedDate"],
    )
    emu.add_formula_field(
        "Account", "Shout__c", "string", "UPPER(Name)", lambda row: (row["Name"] or "").upper()
    )
    described = {f["name"]: f for f in hook.get_conn().describe("Account")["fields"]}["Shout__c"]
    assert (described["calculated"], described["calculatedFormula"]) == (True, "UPPER(Name)")
    assert [
        r["Shout__c"] for r in hook.query(f"SELECT Shout__c FROM Account WHERE Id = '{acc}'")
    ] == ["NEW NAME"]


def test_updated_reports_ids_by_system_modstamp_with_its_window_rules(emu, ssf, hook):
    start = now(emu).replace(second=0, microsecond=0)
    old = emu.load("Account", [{"Name": "Old"}], modstamp=start - dt.timedelta(days=3))
    new = emu.load("Account", [{"Name": "New 1"}, {"Name": "New 2"}])
    late = emu.load("Account", [{"Name": "Late"}], modstamp=start - 5 * MINUTE)  # late commit
    later(emu)
    got = ssf.Account.updated(start, now(emu) + MINUTE)
    assert sorted(got["ids"]) == sorted(new) and set(got) == {"ids", "latestDateCovered"}
    covered = dt.datetime.strptime(got["latestDateCovered"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert covered == now(emu).replace(second=0, microsecond=0)  # never after now
    lookback = ssf.Account.updated(start - 10 * MINUTE, now(emu))
    assert sorted(lookback["ids"]) == sorted(new + late) and old[0] not in lookback["ids"]
    params = {"start": start.isoformat(), "end": now(emu).isoformat()}
    assert sorted(
        hook.get_conn().request("GET", "sobjects/Account/updated/", params=params).json()["ids"]
    ) == sorted(new)
    for begin, end, words in [
        (start, start + dt.timedelta(seconds=30), "at least one minute"),
        (start - dt.timedelta(days=31), start, "30 days"),
    ]:
        status, code, message, _ = refused(lambda b=begin, e=end: ssf.Account.updated(b, e))
        assert (status, code) == (400, "INVALID_REPLICATION_DATE") and words in message


def test_deleted_reports_the_recycle_bin_and_hard_deletes(emu, ssf, hook, tmp_path):
    start = now(emu).replace(second=0, microsecond=0)
    soft, purged, hard, restored, kept = emu.load(
        "Account", [{"Name": n} for n in ("Soft", "Purged", "Hard", "Restored", "Kept")]
    )
    emu.delete_records("Account", [purged])
    assert emu.empty_recycle_bin("Account") == 1  # gone from queryAll, still in /deleted/
    ssf.Account.delete(soft)  # in the Recycle Bin
    ids_csv = tmp_path / "hard.csv"
    ids_csv.write_text(f"Id\n{hard}\n")
    summary = hook.bulk_ingest_file("Account", "hardDelete", ids_csv, poll_interval=0.01)
    assert summary["failed"] == 0
    emu.delete_records("Account", [restored])
    emu.undelete("Account", [restored])  # back from the bin: no longer reported
    later(emu)
    result = ssf.Account.deleted(start, now(emu))
    assert set(result) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    assert {r["id"] for r in result["deletedRecords"]} == {soft, purged, hard}
    assert all(
        r["deletedDate"] >= start.strftime("%Y-%m-%dT%H:%M") for r in result["deletedRecords"]
    )
    everything = {
        r["Name"]
        for r in ssf.query_all("SELECT Name FROM Account", include_deleted=True)["records"]
    }
    assert everything == {"Soft", "Restored", "Kept"}  # hard-deleted and purged rows are gone
    status, code, message, _ = refused(
        lambda: ssf.Account.deleted(start - dt.timedelta(days=16), start)
    )
    assert (status, code) == (400, "INVALID_REPLICATION_DATE") and "15 days" in message
    client = hook.get_conn()
    read = fetch_deleted(client, "Account", Window(start, now(emu) - MINUTE), now(emu))
    assert {rid for rid, _ in read} == {soft, purged, hard}  # the provider's replication path
    with pytest.raises(DeletesUnavailableError, match="no longer kept"):
        list(
            fetch_deleted(client, "Account", Window(start - dt.timedelta(days=16), start), now(emu))
        )
    emu.expire_delete_log("Account", now(emu) - MINUTE)
    trimmed = (
        hook.get_conn()
        .request(
            "GET",
            "sobjects/Account/deleted/",
            params={"start": start.isoformat(), "end": now(emu).isoformat()},
        )
        .json()
    )
    assert trimmed["deletedRecords"] == []  # entries older than the floor were dropped
    assert trimmed["earliestDateAvailable"] > result["earliestDateAvailable"]  # resync needed


def test_too_many_ids_for_one_window(emu, ssf):
    start = now(emu).replace(second=0, microsecond=0)
    emu.load("Account", [{"Name": f"A{i}"} for i in range(5)])
    emu.replication_id_limit = 4  # Salesforce's is 600,000
    later(emu)
    status, code, message, _ = refused(lambda: ssf.Account.updated(start, now(emu)))
    assert (status, code) == (400, "EXCEEDED_ID_LIMIT") and "closer together" in message


def test_late_commit_is_found_only_with_a_lookback(emu, hook, tmp_path: Path):
    """What a replicator that keeps a high-water mark meets: a row committed with a
    SystemModstamp before the mark already read."""
    emu.load("Account", [{"Name": "Early"}], modstamp="2026-02-01T10:00:00Z")
    mark = max(r["SystemModstamp"] for r in hook.query("SELECT SystemModstamp FROM Account"))
    emu.load("Account", [{"Name": "Late"}], modstamp="2026-02-01T09:59:00Z")
    after_mark = f"SELECT Name FROM Account WHERE SystemModstamp > {mark[:19]}Z"
    assert [r["Name"] for r in hook.query(after_mark)] == []
    with_lookback = "SELECT Name FROM Account WHERE SystemModstamp > 2026-02-01T09:55:00Z"
    assert sorted(r["Name"] for r in hook.query(with_lookback)) == ["Early", "Late"]
    status, code, _ = hook_refused(
        lambda: list(hook.query("SELECT Name FROM Account WHERE SystemModstamp > 2026-02-01"))
    )
    assert (status, code) == (400, "INVALID_FIELD")
