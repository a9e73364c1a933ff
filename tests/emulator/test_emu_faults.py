"""Fault injection over real sockets: revocation, HTTP errors, resets, delays, quota."""

from __future__ import annotations

import time

import pytest
import requests
from emu_helpers import V, api, login

QUERY = f"/services/data/v{V}/query"


def test_revoke_sessions_now(emu, sf):
    assert sf.get(api(emu, "limits")).status_code == 200
    emu.faults.revoke_sessions()
    resp = sf.get(api(emu, "limits"))
    assert resp.status_code == 401
    assert resp.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_revoke_sessions_after_calls(emu, sf, keys):
    emu.faults.revoke_sessions(after_calls=2)
    assert [sf.get(api(emu, "limits")).status_code for _ in range(3)] == [200, 200, 401]
    from emu_helpers import login

    fresh = login(emu, keys)  # a new token works again
    assert fresh.get(api(emu, "limits")).status_code == 200
    assert emu.stats.statuses[401] == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "UNKNOWN_EXCEPTION"), (503, "SERVER_UNAVAILABLE"), (429, "REQUEST_LIMIT_EXCEEDED")],
)
def test_fail_with_status(emu, sf, status, code):
    emu.generate_accounts(10)
    emu.faults.fail(QUERY, status, count=2, retry_after=3)
    for _ in range(2):
        resp = sf.get(api(emu, "query"), params={"q": "SELECT Id FROM Account"})
        assert resp.status_code == status and resp.headers["Retry-After"] == "3"
        assert resp.json()[0]["errorCode"] == code
    assert sf.get(api(emu, "query"), params={"q": "SELECT Id FROM Account"}).status_code == 200
    assert emu.stats.faults_injected == 2 and emu.stats.paths[QUERY] == 3


def test_fail_variants(emu, sf):
    emu.faults.fail(QUERY, 502)
    bad_gateway = sf.get(api(emu, "query"), params={"q": "SELECT Id FROM Account"})
    assert bad_gateway.status_code == 502 and "text/html" in bad_gateway.headers["Content-Type"]
    assert "Retry-After" not in bad_gateway.headers
    emu.faults.fail(QUERY, 503, error_code="SERVER_UNAVAILABLE", retry_after=0.5, method="POST")
    assert sf.get(api(emu, "query"), params={"q": "SELECT Id FROM Account"}).status_code == 200
    emu.faults.clear()
    emu.faults.fail(
        "/services/oauth2/token", 400, body='{"error":"invalid_grant","error_description":"x"}'
    )
    resp = requests.post(emu.url + "/services/oauth2/token")
    assert resp.json()["error"] == "invalid_grant"
    emu.faults.fail(QUERY, 500, body="plain text")
    assert (
        sf.get(api(emu, "query"), params={"q": "x"})
        .headers["Content-Type"]
        .startswith("text/plain")
    )


def test_reset_connection_mid_body(emu, sf):
    emu.generate_accounts(3000)
    emu.faults.reset_connection(QUERY, after_bytes=500)
    with pytest.raises(requests.exceptions.RequestException):
        sf.get(api(emu, "query"), params={"q": "SELECT Id, Name FROM Account"}).json()
    body = sf.get(api(emu, "query"), params={"q": "SELECT Id, Name FROM Account"}).json()
    assert len(body["records"]) == 2000


def test_reset_connection_on_streamed_bulk_chunk(emu, sf):
    emu.generate_accounts(30_000)
    job = sf.post(
        api(emu, "jobs/query"), json={"operation": "query", "query": "SELECT Id, Name FROM Account"}
    ).json()
    for _ in range(3):
        sf.get(api(emu, f"jobs/query/{job['id']}"))
    emu.faults.reset_connection(
        f"/services/data/v{V}/jobs/query/{job['id']}/results", after_bytes=20_000
    )
    with pytest.raises(requests.exceptions.RequestException):
        _ = sf.get(api(emu, f"jobs/query/{job['id']}/results")).text
    text = sf.get(api(emu, f"jobs/query/{job['id']}/results")).text
    assert text.count("\n") == 30_001


def test_write_is_applied_before_the_reset(emu, sf):
    emu.faults.reset_connection(f"/services/data/v{V}/composite/sobjects", after_bytes=0)
    with pytest.raises(requests.exceptions.RequestException):
        sf.post(
            api(emu, "composite/sobjects"),
            json={"records": [{"attributes": {"type": "Account"}, "Name": "Ghost"}]},
        )
    assert [r["Name"] for r in emu.records("Account")] == [
        "Ghost"
    ]  # the outcome was unknown to the client


def test_delay(emu, sf):
    emu.faults.delay(QUERY, 0.4, count=1)
    t0 = time.monotonic()
    sf.get(api(emu, "query"), params={"q": "SELECT Id FROM Account"})
    assert time.monotonic() - t0 >= 0.4
    t0 = time.monotonic()
    sf.get(api(emu, "query"), params={"q": "SELECT Id FROM Account"})
    assert time.monotonic() - t0 < 0.3
    emu.faults.delay(QUERY, 2.0)
    with pytest.raises(requests.exceptions.Timeout):
        sf.get(api(emu, "query"), params={"q": "SELECT Id FROM Account"}, timeout=0.3)


def test_exhaust_quota(emu, sf):
    emu.faults.exhaust_quota()
    resp = sf.get(api(emu, "limits"))
    assert resp.status_code == 403
    assert resp.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert resp.headers["Sforce-Limit-Info"] == "api-usage=100000/100000"
    emu.faults.clear()
    assert sf.get(api(emu, "limits")).status_code == 200


def test_daily_limit_counts_calls(emu, keys):
    emu.daily_api_limit = 3
    s = login(emu, keys)
    codes = [s.get(api(emu, "limits")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 403]


def test_session_timeout(emu, keys):
    emu.session_timeout = 0.3
    s = login(emu, keys)
    assert s.get(api(emu, "limits")).status_code == 200
    time.sleep(0.4)
    assert s.get(api(emu, "limits")).status_code == 401
