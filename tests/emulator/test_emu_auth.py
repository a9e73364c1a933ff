"""Token endpoint: success shape, every documented error, audiences per app kind, clock skew."""

from __future__ import annotations

import email.utils
import time

import jwt
import requests
from emu_helpers import CK, JWT_GRANT, USER, assertion, exchange, login

LOGIN = "https://login.salesforce.com"
TEST = "https://test.salesforce.com"


def error_of(resp: requests.Response) -> tuple[int, str, str]:
    body = resp.json()
    return resp.status_code, body["error"], body["error_description"]


def test_success_shape(emu, keys):
    resp = exchange(emu, assertion(keys))
    assert resp.status_code == 200
    body = resp.json()
    assert body["instance_url"] == emu.url
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("00D") and "!" in body["access_token"]
    assert body["id"].startswith(f"{emu.url}/id/00D")
    assert body["issued_at"].isdigit() and body["signature"]
    assert "refresh_token" not in body and "expires_in" not in body
    assert resp.headers["Date"]
    assert emu.stats.token_exchanges == 1 and emu.stats.token_requests == 1
    assert emu.received_assertions and emu.issued_tokens == [body["access_token"]]


def test_my_domain_audience_works_for_connected_app(emu, keys):
    assert exchange(emu, assertion(keys, aud=emu.url)).status_code == 200
    assert exchange(emu, assertion(keys, aud=emu.url + "/")).status_code == 200


def test_wrong_audience(emu, keys):
    assert error_of(exchange(emu, assertion(keys, aud=TEST))) == (
        400,
        "invalid_grant",
        "audience is invalid",
    )


def test_an_app_can_refuse_a_wrong_audience_as_user_not_approved(emu, keys):
    """Reported for real orgs: a wrong aud answered as if the user were not pre-authorised."""
    emu.add_app("ck-unapproved", keys.certificate_pem, [USER], audience_error="user_not_approved")
    assert error_of(exchange(emu, assertion(keys, iss="ck-unapproved", aud=TEST))) == (
        400,
        "invalid_grant",
        "user hasn't approved this consumer",
    )
    assert exchange(emu, assertion(keys, iss="ck-unapproved", aud=LOGIN)).status_code == 200


def test_sandbox_app_wants_test_audience(emu, keys):
    emu.add_app("sandbox-ck", keys.certificate_pem, [USER], sandbox=True)
    assert exchange(emu, assertion(keys, iss="sandbox-ck", aud=TEST)).status_code == 200
    assert exchange(emu, assertion(keys, iss="sandbox-ck", aud=LOGIN)).status_code == 400


def test_external_client_app_accepts_only_my_domain(emu, keys):
    emu.add_app("eca", keys.certificate_pem, [USER], kind="external")
    assert error_of(exchange(emu, assertion(keys, iss="eca", aud=LOGIN))) == (
        400,
        "app_not_found",
        "External client app is not installed in this org",
    )
    assert exchange(emu, assertion(keys, iss="eca", aud=emu.url)).status_code == 200


def test_unknown_consumer_key(emu, keys):
    assert error_of(exchange(emu, assertion(keys, iss="nope"))) == (
        400,
        "invalid_client_id",
        "client identifier invalid",
    )


def test_signature_from_another_key(emu, other_keys):
    assert error_of(exchange(emu, assertion(other_keys)))[1:] == (
        "invalid_grant",
        "invalid assertion",
    )


def test_certificate_rotation(emu, keys, other_keys):
    app = emu.identity.apps[CK]
    app.add_certificate(other_keys.certificate_pem)
    assert exchange(emu, assertion(other_keys)).status_code == 200
    assert exchange(emu, assertion(keys)).status_code == 200
    app.set_certificate(other_keys.certificate_pem)
    assert exchange(emu, assertion(keys)).status_code == 400


def test_malformed_and_hs256_assertions(emu, keys):
    assert error_of(exchange(emu, "not.a.jwt"))[2] == "invalid assertion"
    hs = jwt.encode({"iss": CK, "sub": USER, "aud": LOGIN, "exp": int(time.time()) + 60}, "k" * 32)
    assert error_of(exchange(emu, hs))[2] == "invalid assertion"


def test_exp_rules(emu, keys):
    now = int(time.time())
    assert error_of(exchange(emu, assertion(keys, exp=None)))[2] == "invalid assertion"
    assert error_of(exchange(emu, assertion(keys, exp=now - 5)))[2] == "invalid assertion"
    assert error_of(exchange(emu, assertion(keys, exp=now + 600)))[2] == "invalid assertion"
    assert exchange(emu, assertion(keys, exp=now + 180)).status_code == 200


def test_clock_skew_moves_date_header_and_exp_check(emu, keys):
    emu.clock_skew = 300  # the server is 5 minutes ahead: our exp is already past for it
    resp = exchange(emu, assertion(keys))
    assert error_of(resp)[2] == "invalid assertion"
    server = email.utils.parsedate_to_datetime(resp.headers["Date"]).timestamp()
    assert 295 <= server - time.time() <= 305
    emu.clock_skew = -300  # 5 minutes behind: exp looks too far ahead
    assert exchange(emu, assertion(keys)).status_code == 400
    emu.clock_skew = 60  # small skew still inside the 3 minute window
    assert exchange(emu, assertion(keys)).status_code == 200


def test_user_states(emu, keys):
    emu.add_user("stranger@example.com")
    assert error_of(exchange(emu, assertion(keys, sub="stranger@example.com")))[2] == (
        "user hasn't approved this consumer"
    )
    assert error_of(exchange(emu, assertion(keys, sub="ghost@example.com")))[2] == (
        "user hasn't approved this consumer"
    )
    emu.add_user(USER, approved=False)
    assert error_of(exchange(emu, assertion(keys)))[2] == "user hasn't approved this consumer"
    emu.add_user(USER, active=False)
    assert error_of(exchange(emu, assertion(keys))) == (
        400,
        "invalid_grant",
        "authentication failure",
    )
    emu.add_user(USER, active=False, inactive_error="inactive_user")
    assert error_of(exchange(emu, assertion(keys)))[1] == "inactive_user"


def test_grant_type_and_body_shapes(emu, keys):
    a = assertion(keys)
    resp = requests.post(
        emu.url + "/services/oauth2/token", data={"grant_type": "password", "assertion": a}
    )
    assert error_of(resp) == (400, "unsupported_grant_type", "grant type not supported")
    resp = requests.post(
        emu.url + "/services/oauth2/token", json={"grant_type": JWT_GRANT, "assertion": a}
    )
    assert error_of(resp)[1] == "unsupported_grant_type"
    # Salesforce also reads the parameters from the query string (clients should not: URLs get logged)
    resp = requests.post(
        emu.url + "/services/oauth2/token", params={"grant_type": JWT_GRANT, "assertion": a}
    )
    assert resp.status_code == 200
    assert requests.get(emu.url + "/services/oauth2/token").status_code == 400


def test_token_error_fault(emu, keys):
    emu.faults.token_error("rate_limit_exceeded", "too many logins", count=2)
    assert error_of(exchange(emu, assertion(keys)))[1] == "rate_limit_exceeded"
    assert error_of(exchange(emu, assertion(keys)))[1] == "rate_limit_exceeded"
    assert exchange(emu, assertion(keys)).status_code == 200
    emu.faults.token_error("maintenance", "down for maintenance", status=503, html=True)
    for _ in range(3):
        resp = exchange(emu, assertion(keys))
        assert resp.status_code == 503 and resp.headers["Content-Type"].startswith("text/html")
    emu.faults.clear()
    assert exchange(emu, assertion(keys)).status_code == 200


def test_userinfo_id_url_and_revoke(emu, keys):
    resp = exchange(emu, assertion(keys))
    body = resp.json()
    headers = {"Authorization": "Bearer " + body["access_token"]}
    info = requests.get(emu.url + "/services/oauth2/userinfo", headers=headers).json()
    assert info["preferred_username"] == USER and info["organization_id"] == emu.org_id
    ident = requests.get(body["id"], headers=headers).json()
    assert ident["username"] == USER and ident["user_id"] == info["user_id"]
    assert requests.get(emu.url + "/services/oauth2/userinfo").status_code == 403
    r = requests.post(emu.url + "/services/oauth2/revoke", data={"token": body["access_token"]})
    assert r.status_code == 200
    assert requests.get(emu.url + "/services/data/v66.0/limits", headers=headers).status_code == 401


def test_token_reuse_across_requests(emu, keys):
    s = login(emu, keys)
    for _ in range(5):
        assert s.get(emu.url + "/services/data/v66.0/limits").status_code == 200
    assert emu.stats.token_exchanges == 1 and emu.stats.api_calls == 5
