"""The latency model: round trips, server time per page or chunk, new-connection handshakes.

Only lower bounds are asserted (an answer cannot come sooner than the modelled delays), so a busy
machine cannot make these tests fail; the speed-ups the model exists for are measured by
``make bench``, not here.
"""

from __future__ import annotations

import time

import pytest
import requests
from emu_helpers import api

from airflow_provider_sfjwt.testing.latency import Latency


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def test_pages_and_chunks_cost_server_time_other_calls_a_round_trip(emu, sf):
    emu.generate_accounts(10)
    sf.get(api(emu, "limits"))  # the session's connection exists before the model is on
    emu.latency = Latency(rtt=0.05, page_seconds=0.2, connect_round_trips=0)
    _, limits = timed(lambda: sf.get(api(emu, "limits")))
    page, query = timed(lambda: sf.get(api(emu, "query"), params={"q": "SELECT Id FROM Account"}))
    assert page.json()["totalSize"] == 10
    assert limits >= 0.05 and query >= 0.25
    job = sf.post(
        api(emu, "jobs/query"), json={"operation": "query", "query": "SELECT Id FROM Account"}
    )
    for _ in range(emu.bulk_poll_transitions):
        sf.get(api(emu, f"jobs/query/{job.json()['id']}"))
    chunk, results = timed(lambda: sf.get(api(emu, f"jobs/query/{job.json()['id']}/results")))
    assert chunk.headers["Sforce-NumberOfRecords"] == "10" and results >= 0.25
    emu.latency = Latency()
    assert emu.stats.paths[f"/services/data/v66.0/jobs/query/{job.json()['id']}/results"] == 1


def test_the_emulators_own_work_counts_toward_the_modelled_delay(emu, sf, monkeypatch):
    """A page the emulator takes a while to build is not answered that much later than the
    model says: it waits only for what is left of the page's server time, then the round trip;
    a call that is no page waits the round trip whole. (The waits are recorded, not slept, so
    this holds on a busy machine.)"""
    emu.generate_accounts(2000)
    sf.get(api(emu, "limits"))  # the session's connection exists before the model is on
    waits: list[float] = []
    monkeypatch.setattr(emu, "pause", waits.append)
    emu.latency = Latency(rtt=0.05, page_seconds=0.2, connect_round_trips=0)
    sf.get(api(emu, "limits"))
    page = sf.get(api(emu, "query"), params={"q": "SELECT Id, Name, BillingCity FROM Account"})
    emu.latency = Latency()
    assert len(page.json()["records"]) == 2000
    limits_wait, page_wait = waits
    assert limits_wait == pytest.approx(0.05)
    assert 0.05 < page_wait < 0.25


def test_a_new_connection_pays_its_handshakes(emu):
    emu.latency = Latency(rtt=0.1, connect_round_trips=2)
    with requests.Session() as fresh:
        _, first = timed(lambda: fresh.get(emu.url + "/services/data/"))
    assert first >= 0.3  # two handshake round trips, then the request's own


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="0 or more"):
        Latency(rtt=-1)
    with pytest.raises(ValueError, match="0 or more"):
        Latency(connect_round_trips=-1)
    assert Latency(rtt=0.05).connect_delay(tls=True) == pytest.approx(0.1)
    assert Latency(rtt=0.05).connect_delay(tls=False) == pytest.approx(0.05)


def test_command_line_sets_the_model(tmp_path):
    from airflow_provider_sfjwt.testing.cli import build_parser, start_from_args

    args = build_parser().parse_args(
        ["--port", "0", "--accounts", "0", "--contacts", "0", "--key-dir", str(tmp_path)]
        + ["--rtt-ms", "50", "--page-ms", "150", "--connect-round-trips", "3"]
    )
    emu, _ = start_from_args(args)
    try:
        assert emu.latency == Latency(rtt=0.05, page_seconds=0.15, connect_round_trips=3)
    finally:
        emu.stop()


def test_no_latency_given_is_none_and_settings_stay_attributes():
    from airflow_provider_sfjwt.testing import SalesforceEmulator

    emu = SalesforceEmulator(latency=None, serialize_cache_mb=8)  # type: ignore[arg-type]
    assert emu.latency == Latency() and not emu.latency.active
    assert emu.serialize_cache_mb == 8
