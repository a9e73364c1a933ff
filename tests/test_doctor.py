"""`sfjwt doctor`: passes on a correct setup, and names the fix for each usual misconfiguration.

The CLI runs in-process (``main(argv)``) against the emulator over real HTTP; offline checks are
also run on their own with inputs no emulator can produce (production and sandbox hosts).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from airflow_provider_sfjwt.cli import main
from airflow_provider_sfjwt.compat import conf  # noqa: F401  (its one-time log line must not land in a --json capture)
from airflow_provider_sfjwt.salesforce import keys
from airflow_provider_sfjwt.salesforce.doctor import CHECKS, DoctorInput, Status, run_doctor
from airflow_provider_sfjwt.testing.wiring import CONSUMER_KEY, USERNAME

PASSPHRASE = "doctor-passphrase-7"
ALL_NAMES = [c.name for c in CHECKS]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A key pair made by `sfjwt keygen`, as a platform engineer would have it."""
    d = tmp_path_factory.mktemp("doctor_keys")
    assert main(["keygen", "--key", str(d / "app.key"), "--cert", str(d / "app.crt")]) == 0
    return d


@pytest.fixture
def emu(emu, salesforce_emulator, files):
    """The suite's emulator, its app trusting the certificate `sfjwt keygen` made above."""
    salesforce_emulator.app.set_certificate((files / "app.crt").read_text())
    return emu


def app(emu):
    return emu.identity.apps[CONSUMER_KEY]


def flags(emu, files, **override) -> list[str]:
    values = {
        "--login-url": emu.url,
        "--username": USERNAME,
        "--consumer-key": CONSUMER_KEY,
        "--key-file": str(files / "app.key"),
        "--cert": str(files / "app.crt"),
    }
    values.update({"--" + k.replace("_", "-"): v for k, v in override.items()})
    return [item for k, v in values.items() if v is not None for item in (k, v)]


def doctor_json(capsys, argv) -> tuple[int, dict[str, dict]]:
    capsys.readouterr()
    code = main(["doctor", "--json", *argv])
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == ALL_NAMES
    return code, {e["name"]: e for e in entries}


def statuses(results: dict[str, dict]) -> dict[str, str]:
    return {name: e["status"] for name, e in results.items()}


def test_correct_setup_passes_every_check(capsys, emu, files):
    code = main(["doctor", *flags(emu, files)])
    out = capsys.readouterr().out
    assert code == 0, out
    for name in ALL_NAMES:
        assert f"PASS  {name}" in out, out
    assert f"{len(CHECKS)} passed, 0 warnings, 0 failed, 0 skipped" in out
    assert f"logged in as {USERNAME}" in out
    assert emu.stats.token_exchanges == 1


def test_json_has_one_entry_per_check(capsys, emu, files):
    code, results = doctor_json(capsys, flags(emu, files))
    assert code == 0
    assert len(results) == len(CHECKS)
    for entry in results.values():
        assert set(entry) == {"name", "status", "detail", "fix"}
        assert entry["status"] == "pass", entry
        assert entry["detail"]


def _write_pair(directory: Path, name: str, key, cert) -> tuple[str, str]:
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_bytes(keys.private_key_to_pem(key))
    key_path.chmod(0o600)
    cert_path.write_bytes(keys.certificate_to_pem(cert))
    return str(key_path), str(cert_path)


def _wrong_username(emu, files, tmp_path):
    return flags(emu, files, username="someone.else@example.com")


def _not_preauthorised(emu, files, tmp_path):
    app(emu).revoke_user(USERNAME)
    return flags(emu, files)


def _wrong_audience(emu, files, tmp_path):
    return flags(emu, files, audience="https://test.salesforce.com")


def _certificate_from_another_key(emu, files, tmp_path):
    other = keys.generate_private_key()
    other_cert = keys.self_signed_certificate(other, "the-uploaded-one")
    app(emu).set_certificate(keys.certificate_to_pem(other_cert))
    cert_path = tmp_path / "uploaded.crt"
    cert_path.write_bytes(keys.certificate_to_pem(other_cert))
    return flags(emu, files, cert=str(cert_path))


def _expired_certificate(emu, files, tmp_path):
    key = keys.generate_private_key()
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)
    cert = keys.self_signed_certificate(key, "expired", days=365, not_before=start)
    key_path, cert_path = _write_pair(tmp_path, "expired", key, cert)
    app(emu).set_certificate(keys.certificate_to_pem(cert))
    return flags(emu, files, key_file=key_path, cert=cert_path)


def _wrong_consumer_key(emu, files, tmp_path):
    return flags(emu, files, consumer_key="3MVG9some.other.app")


def _clock_ahead(emu, files, tmp_path):
    emu.clock_skew = 600
    return flags(emu, files)


def _clock_behind(emu, files, tmp_path):
    emu.clock_skew = -600
    return flags(emu, files)


def _expired_said_but_clocks_agree(emu, files, tmp_path):
    emu.faults.token_error("invalid_grant", "expired authorization code")
    return flags(emu, files)


def _api_disabled(emu, files, tmp_path):
    emu.faults.fail("/services/data/v66.0/limits", 403, error_code="API_DISABLED_FOR_ORG")
    return flags(emu, files)


def _api_version_missing(emu, files, tmp_path):
    return flags(emu, files, api_version="30.0")  # retired in Summer '25


# (setup, {check: (status, words the detail or fix must contain)})
MISCONFIGURATIONS = {
    "wrong-username": (
        _wrong_username,
        {
            "token_exchange": (
                "fail",
                ["user hasn't approved this consumer", "exact Salesforce username"],
            )
        },
    ),
    "user-not-pre-authorised": (
        _not_preauthorised,
        {"token_exchange": ("fail", ["Admin approved users are pre-authorized", "permission set"])},
    ),
    "wrong-audience": (
        _wrong_audience,
        {
            "token_exchange": (
                "fail",
                ["audience is invalid", "https://test.salesforce.com for a sandbox"],
            )
        },
    ),
    "certificate-from-another-key": (
        _certificate_from_another_key,
        {
            "certificate": (
                "fail",
                ["different public key", "upload the certificate made from this key"],
            ),
            "token_exchange": ("fail", ["invalid assertion", "uploaded to *this* app"]),
        },
    ),
    "wrong-consumer-key": (
        _wrong_consumer_key,
        {"token_exchange": ("fail", ["client identifier invalid", "Consumer Key"])},
    ),
    "clock-ahead": (
        _clock_ahead,
        {
            "clock": ("fail", ["ahead of", "look expired", "NTP"]),
            "token_exchange": ("fail", ["invalid assertion", "clock"]),
        },
    ),
    "clock-behind": (
        _clock_behind,
        {"clock": ("fail", ["behind", "too far in the future", "NTP"])},
    ),
    # A seed: "expired authorization code" is almost never about time; it is the setup.
    "expired-said-but-clocks-agree": (
        _expired_said_but_clocks_agree,
        {
            "clock": ("pass", []),
            "token_exchange": (
                "fail",
                [
                    "expired authorization code",
                    "mismatch",
                    "exact Salesforce username",
                    "pre-authorized",
                ],
            ),
        },
    ),
    "api-disabled-for-the-user": (
        _api_disabled,
        {
            "token_exchange": ("pass", []),
            "api_access": ("fail", ["API_DISABLED_FOR_ORG", "API Enabled"]),
        },
    ),
    "api-version-not-offered": (
        _api_version_missing,
        {
            "api_version": ("fail", ["v30.0 is not offered", "newest: v", "set api_version to "]),
            "api_access": ("skip", []),
        },
    ),
}


@pytest.mark.parametrize("case", list(MISCONFIGURATIONS))
def test_misconfiguration_fails_with_the_fix(case, capsys, emu, files, tmp_path):
    setup, expected = MISCONFIGURATIONS[case]
    code, results = doctor_json(capsys, setup(emu, files, tmp_path))
    assert code == 1
    for name, (status, words) in expected.items():
        entry = results[name]
        assert entry["status"] == status, entry
        text = entry["detail"] + "\n" + entry["fix"]
        for word in words:
            assert word in text, (word, entry)
    if results["token_exchange"]["status"] == "fail":
        assert {statuses(results)[n] for n in ("rest_api", "identity")} == {"skip"}


def test_expired_certificate_is_a_rotation_warning_not_a_failure(capsys, emu, files, tmp_path):
    """Salesforce is reported to keep accepting assertions after the uploaded certificate has
    expired: the doctor warns (a rotation policy) and does not promise the exchange fails."""
    code, results = doctor_json(capsys, _expired_certificate(emu, files, tmp_path))
    entry = results["certificate_expiry"]
    assert entry["status"] == "warn", entry
    for word in ("expired on", "reported", "--reuse-key"):
        assert word in entry["detail"] + entry["fix"], (word, entry)
    assert "refuse" not in entry["detail"]
    assert results["token_exchange"]["status"] == "pass"
    assert code == 0


def test_text_report_prints_the_fix_under_the_failure(capsys, emu, files):
    code = main(["doctor", *flags(emu, files, consumer_key="3MVG9some.other.app")])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("FAIL  token_exchange"))
    assert "fix: 1. consumer_key" in lines[at + 1]
    assert "1 failed, 4 skipped" in out


def test_reads_an_airflow_env_connection_and_cert_flag_overrides(capsys, monkeypatch, emu, files):
    conn = emu.connection(
        username=USERNAME,
        consumer_key=CONSUMER_KEY,
        private_key_pem=keys.private_key_to_pem(
            keys.load_private_key((files / "app.key").read_text(), None), PASSPHRASE
        ),
        passphrase=PASSPHRASE,
        certificate=(files / "app.crt").read_text(),
    )
    monkeypatch.setenv("AIRFLOW_CONN_SF_DOCTOR", json.dumps(conn))
    code, results = doctor_json(capsys, ["--conn-id", "sf_doctor"])
    assert code == 0, results
    assert "encrypted" in results["private_key"]["detail"]
    assert results["key_storage"]["detail"].startswith("inline in the connection")
    other = keys.self_signed_certificate(keys.generate_private_key(), "other")
    other_path = files / "other.crt"
    other_path.write_bytes(keys.certificate_to_pem(other))
    code, results = doctor_json(capsys, ["--conn-id", "sf_doctor", "--cert", str(other_path)])
    assert code == 1
    assert results["certificate"]["status"] == "fail"


def test_default_connection_of_the_pytest_fixture(capsys, salesforce_emulator, tmp_path):
    code, results = doctor_json(capsys, [])  # no flags: the default connection id
    assert code == 0
    assert results["certificate"]["status"] == "warn"  # the fixture stores no certificate
    assert "--cert" in results["certificate"]["fix"]
    cert = tmp_path / "emulator.crt"
    cert.write_text(salesforce_emulator.certificate_pem)
    code, results = doctor_json(capsys, ["--cert", str(cert)])
    assert code == 0
    assert set(statuses(results).values()) == {"pass"}
    assert salesforce_emulator.username in results["identity"]["detail"]


def test_unknown_connection_id_is_a_usage_error(capsys):
    assert main(["doctor", "--conn-id", "no_such_sf_conn"]) == 2
    err = capsys.readouterr().err
    assert "AIRFLOW_CONN_NO_SUCH_SF_CONN" in err


def test_no_secret_reaches_the_output(capsys, emu, files, monkeypatch, keypair):
    encrypted = keys.private_key_to_pem(keypair.key, PASSPHRASE).decode()
    key_path = files / "encrypted.key"
    key_path.write_text(encrypted)
    key_path.chmod(0o600)
    app(emu).set_certificate(keypair.cert_pem)
    monkeypatch.setenv("SF_DOCTOR_PASS", PASSPHRASE)
    argv = flags(emu, files, key_file=str(key_path), cert=None) + [
        "--passphrase-env",
        "SF_DOCTOR_PASS",
    ]
    assert main(["doctor", *argv]) == 0
    assert main(["doctor", "--json", *argv]) == 0
    out = capsys.readouterr().out
    tokens = list(emu.identity.sessions)
    assert len(tokens) == 2
    for secret in [PASSPHRASE, *tokens, *keys.pem_lines(encrypted), *keys.pem_lines(keypair.pem)]:
        assert secret not in out


# --- offline checks: inputs the loopback emulator cannot stand for ---------------------------


def offline(host, *, names, login=USERNAME, password=None, **extra) -> dict[str, object]:
    extra.setdefault("consumer_key", CONSUMER_KEY)
    inp = DoctorInput(host=host, login=login, password=password, extra=extra)
    results = run_doctor(inp, checks=tuple(c for c in CHECKS if c.name in names))
    return {r.name: r for r in results}


@pytest.mark.parametrize(
    ("host", "status", "word"),
    [
        ("https://acme.lightning.force.com", Status.FAIL, "https://acme.my.salesforce.com"),
        ("http://acme.my.salesforce.com", Status.FAIL, "https://acme.my.salesforce.com"),
        ("https://na42.salesforce.com", Status.WARN, "My Domain"),
        ("https://acme--uat.my.salesforce.com", Status.WARN, "sandbox.my.salesforce.com"),
        ("https://example.org", Status.WARN, "login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", Status.PASS, "a sandbox"),
        ("https://acme-dev-ed.develop.my.salesforce.com", Status.PASS, "Developer Edition"),
        ("https://login.salesforce.com", Status.PASS, "External Client Apps"),
    ],
)
def test_login_url_forms(host, status, word):
    result = offline(host, names={"login_url"})["login_url"]
    assert result.status is status, result
    assert word in result.detail + result.fix


@pytest.mark.parametrize(
    ("host", "audience", "status", "word"),
    [
        (
            "https://acme--uat.sandbox.my.salesforce.com",
            "https://login.salesforce.com",
            Status.FAIL,
            "https://test.salesforce.com",
        ),
        ("https://test.salesforce.com", "https://login.salesforce.com", Status.FAIL, "sandbox"),
        (
            "https://login.salesforce.com",
            "https://test.salesforce.com",
            Status.FAIL,
            "https://login.salesforce.com",
        ),
        (
            "https://acme.my.salesforce.com",
            "https://other.my.salesforce.com",
            Status.WARN,
            "another org",
        ),
        (
            "https://acme.my.salesforce.com",
            "https://acme.lightning.force.com",
            Status.FAIL,
            "UI host",
        ),
        ("https://acme.my.salesforce.com", None, Status.PASS, "then https://login.salesforce.com"),
        (
            "https://acme--uat.sandbox.my.salesforce.com",
            None,
            Status.PASS,
            "then https://test.salesforce.com",
        ),
    ],
)
def test_audience_against_the_login_url(host, audience, status, word):
    result = offline(host, names={"audience"}, audience=audience)["audience"]
    assert result.status is status, result
    assert word in result.detail + result.fix


@pytest.mark.parametrize(
    ("consumer_key", "status", "word"),
    [
        ("a" * 64, Status.WARN, "Consumer Secret"),
        ("3MVG9abc def", Status.FAIL, "spaces"),
        ("0H4abcdefghijkl", Status.WARN, "3MVG"),
        ("3MVG9good.key_1", Status.PASS, "iss"),
    ],
)
def test_consumer_key_shapes(consumer_key, status, word):
    host = "https://acme.my.salesforce.com"
    entry = offline(host, names={"consumer_key"}, consumer_key=consumer_key)["consumer_key"]
    assert entry.status is status, entry
    assert word in entry.detail + entry.fix


def test_sandbox_username_without_suffix_warns():
    host = "https://acme--uat.sandbox.my.salesforce.com"
    assert offline(host, names={"username"})["username"].status is Status.WARN
    ok = offline(host, names={"username"}, login="doctor@example.com.uat")["username"]
    assert ok.status is Status.PASS


def test_weak_and_wrong_keys_fail_and_the_exchange_is_not_attempted(tmp_path):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = tmp_path / "small.key"
    path.write_bytes(keys.private_key_to_pem(small))
    results = offline(
        "https://acme.my.salesforce.com",
        names={"private_key", "token_exchange", "rest_api", "identity"},
        private_key_ref=f"file:{path}",
    )
    assert results["private_key"].status is Status.FAIL
    assert "1024 bits" in results["private_key"].detail
    assert "sfjwt keygen" in results["private_key"].fix
    assert results["token_exchange"].status is Status.FAIL
    assert results["token_exchange"].detail.startswith("not attempted")
    assert results["rest_api"].status is Status.SKIP
    ec_key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(keys.private_key_to_pem(ec_key))  # works for any key type
    result = offline(
        "https://x.my.salesforce.com", names={"private_key"}, private_key_ref=f"file:{path}"
    )
    assert "needs RSA" in result["private_key"].detail


def test_wrong_passphrase_names_the_password_field(keypair):
    pem = keys.private_key_to_pem(keypair.key, PASSPHRASE).decode()
    result = offline(
        "https://acme.my.salesforce.com",
        names={"private_key"},
        password="wrong-one",
        private_key=pem,
    )["private_key"]
    assert result.status is Status.FAIL
    assert "'password'" in result.detail and "wrong passphrase" in result.detail


def test_key_file_readable_by_others_warns(tmp_path, keypair):
    path = tmp_path / "open.key"
    path.write_text(keypair.pem)
    path.chmod(0o644)
    result = offline(
        "https://acme.my.salesforce.com",
        names={"private_key", "key_storage"},
        private_key_ref=f"file:{path}",
    )["key_storage"]
    assert result.status is Status.WARN
    assert f"chmod 600 {path}" in result.fix


def test_key_in_a_git_work_tree_warns_until_ignored(tmp_path, keypair):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    path = tmp_path / "sf.key"
    path.write_text(keypair.pem)
    path.chmod(0o600)
    names = {"private_key", "key_storage"}
    result = offline("https://a.my.salesforce.com", names=names, private_key_ref=f"file:{path}")
    assert result["key_storage"].status is Status.WARN
    assert ".gitignore" in result["key_storage"].fix
    (tmp_path / ".gitignore").write_text("*.key\n")
    result = offline("https://a.my.salesforce.com", names=names, private_key_ref=f"file:{path}")
    assert result["key_storage"].status is Status.PASS


@pytest.mark.parametrize(
    ("days_left", "warning_days", "status"),
    [
        (10, None, Status.WARN),
        (10, 5, Status.PASS),
        (100, None, Status.PASS),
        (100, 120, Status.WARN),
    ],
)
def test_certificate_expiry_window(keypair, days_left, warning_days, status):
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    cert = keys.self_signed_certificate(keypair.key, "soon", days=days_left + 1, not_before=start)
    extra = {"certificate": keys.certificate_to_pem(cert).decode(), "private_key": keypair.pem}
    if warning_days is not None:
        extra["cert_expiry_warning_days"] = warning_days
    names = {"private_key", "certificate", "certificate_expiry"}
    result = offline("https://a.my.salesforce.com", names=names, **extra)
    assert result["certificate"].status is Status.PASS
    assert result["certificate_expiry"].status is status, result["certificate_expiry"]
    if status is Status.WARN:
        assert "--reuse-key" in result["certificate_expiry"].fix


def test_unreachable_login_url_fails_the_exchange_with_the_network_hint(keypair):
    # A port nobody listens on: refused at once, no waiting.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = offline(
        f"http://127.0.0.1:{port}",
        names={"clock", "token_exchange"},
        private_key=keypair.pem,
        max_retries=0,
    )
    assert results["clock"].status is Status.SKIP
    assert results["token_exchange"].status is Status.FAIL
    assert "could not connect" in results["token_exchange"].detail
    assert "reachable from this machine" in results["token_exchange"].fix
