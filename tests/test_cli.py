"""`sfjwt keygen`, `sfjwt connection`, `sfjwt token` and `sfjwt emulator`, end to end.

In-process through ``main(argv)`` for speed, against the emulator over real HTTP; one test runs
the installed console script in a subprocess with a secrets-backend connection.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID

from airflow_provider_sfjwt.cli import main
from airflow_provider_sfjwt.compat import conf  # noqa: F401  (its one-time log line must not land in a capture)
from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce import keys
from airflow_provider_sfjwt.salesforce.auth import TOKEN_CACHE
from airflow_provider_sfjwt.salesforce.doctor import CHECKS
from airflow_provider_sfjwt.testing import SalesforceEmulator

CONSUMER_KEY = "3MVG9cli.test.consumer_key"
USERNAME = "cli@example.com"
PASSPHRASE = "cli-passphrase-123"


def keygen(tmp_path: Path, *extra: str, name: str = "sf") -> tuple[int, Path, Path]:
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    code = main(["keygen", "--key", str(key), "--cert", str(cert), *extra])
    return code, key, cert


def load_cert(path: Path) -> x509.Certificate:
    return keys.load_certificate(path.read_text())


# --- keygen ----------------------------------------------------------------------------------


def test_keygen_writes_a_private_pkcs8_key_and_a_matching_certificate(tmp_path, capsys):
    code, key, cert = keygen(tmp_path)
    out = capsys.readouterr().out
    assert code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.stat().st_mode) == 0o644
    pem = key.read_text()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    loaded = keys.load_private_key(pem, None)
    assert loaded.key_size == 2048
    certificate = load_cert(cert)
    assert keys.certificate_matches_key(certificate, loaded)
    info = keys.certificate_info(certificate)
    assert f"SHA-256 {info.fingerprint_sha256}" in out
    assert f"Expires            {info.not_after:%Y-%m-%d}" in out
    assert "(365 days)" in out
    for step in ("External Client App", "Connected App", "Admin approved users are pre-authorized"):
        assert step in out
    assert f"--key-file {key}" in out  # the next command is ready to paste
    for line in keys.pem_lines(pem):
        assert line not in out


def test_keygen_never_overwrites_without_force(tmp_path, capsys):
    assert keygen(tmp_path)[0] == 0
    key = tmp_path / "sf.key"
    before = key.read_bytes()
    capsys.readouterr()
    code, _, _ = keygen(tmp_path)
    err = capsys.readouterr().err
    assert code == 2
    assert "already exists" in err and "--force" in err
    assert key.read_bytes() == before
    assert keygen(tmp_path, "--force")[0] == 0
    assert key.read_bytes() != before
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_keygen_encrypts_with_a_passphrase_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SF_KEY_PASS", PASSPHRASE)
    code, key, _ = keygen(tmp_path, "--passphrase-env", "SF_KEY_PASS")
    assert code == 0
    pem = key.read_text()
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert keys.load_private_key(pem, PASSPHRASE).key_size == 2048
    assert "encrypted, mode 0600" in capsys.readouterr().out
    monkeypatch.delenv("SF_KEY_PASS")
    code, _, _ = keygen(tmp_path, "--passphrase-env", "SF_KEY_PASS", name="again")
    assert code == 2
    assert "'SF_KEY_PASS', which is not set" in capsys.readouterr().err


def test_keygen_encrypt_prompts_twice_on_a_terminal(tmp_path, capsys, monkeypatch):
    answers = iter([PASSPHRASE, PASSPHRASE])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    code, key, _ = keygen(tmp_path, "--encrypt")
    assert code == 0
    assert keys.load_private_key(key.read_text(), PASSPHRASE)
    answers = iter([PASSPHRASE, "something else"])
    code, _, _ = keygen(tmp_path, "--encrypt", name="mismatch")
    assert code == 2
    assert "differ" in capsys.readouterr().err
    assert not (tmp_path / "mismatch.key").exists()


def test_keygen_encrypt_without_a_terminal_points_to_the_env_option(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    assert keygen(tmp_path, "--encrypt")[0] == 2
    assert "--passphrase-env" in capsys.readouterr().err


def test_keygen_subject_bits_and_days(tmp_path):
    code, key, cert = keygen(
        tmp_path, "--bits", "3072", "--days", "10", "--subject", "/C=US/O=Acme Corp/CN=airflow-sf"
    )
    assert code == 0
    assert keys.load_private_key(key.read_text(), None).key_size == 3072
    certificate = load_cert(cert)
    assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Acme Corp"
    )
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "airflow-sf"
    left = keys.certificate_info(certificate).days_left()
    assert 9.9 < left <= 10


@pytest.mark.parametrize("subject", ["/C=GB/O=Acme/CN=airflow", "CN=airflow, O=Acme, C=GB"])
def test_subject_in_openssl_and_rfc4514_forms(subject):
    from airflow_provider_sfjwt.salesforce.keygen import parse_subject

    name = parse_subject(subject)
    assert {a.oid: a.value for a in name} == {
        NameOID.COUNTRY_NAME: "GB",
        NameOID.ORGANIZATION_NAME: "Acme",
        NameOID.COMMON_NAME: "airflow",
    }


def test_keygen_rejects_bad_subject_and_small_keys(tmp_path, capsys):
    assert keygen(tmp_path, "--subject", "CN=ok,BOGUS=x")[0] == 2
    assert "--subject" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: only 2048, 3072, 4096
        keygen(tmp_path, "--bits", "1024")


def test_keygen_reuse_key_renews_only_the_certificate(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SF_KEY_PASS", PASSPHRASE)
    _, key, old_cert = keygen(tmp_path, "--passphrase-env", "SF_KEY_PASS")
    before = key.read_bytes()
    new_cert = tmp_path / "renewed.crt"
    args = ["keygen", "--reuse-key", str(key), "--cert", str(new_cert), "--days", "730"]
    assert main(args) == 2  # encrypted key, no passphrase given
    assert "--passphrase-env" in capsys.readouterr().err
    assert main([*args, "--passphrase-env", "SF_KEY_PASS"]) == 0
    assert key.read_bytes() == before
    renewed = load_cert(new_cert)
    assert keys.certificate_matches_key(renewed, keys.load_private_key(before, PASSPHRASE))
    assert renewed.serial_number != load_cert(old_cert).serial_number
    assert keys.certificate_info(renewed).days_left() > 729


def test_keygen_warns_when_the_key_could_be_committed(tmp_path, capsys):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert keygen(repo)[0] == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "not ignored" in err and ".gitignore" in err
    (repo / ".gitignore").write_text("*.key\n")
    assert keygen(repo, "--force")[0] == 0
    assert "WARNING" not in capsys.readouterr().err
    assert keygen(tmp_path, name="outside")[0] == 0  # not in a work tree at all
    assert "WARNING" not in capsys.readouterr().err


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_keygen_output_is_accepted_by_the_emulator(tmp_path, capsys, monkeypatch, encrypted):
    extra = []
    if encrypted:
        monkeypatch.setenv("SF_KEY_PASS", PASSPHRASE)
        extra = ["--passphrase-env", "SF_KEY_PASS"]
    code, key, cert = keygen(tmp_path, *extra)
    assert code == 0
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, cert.read_text(), [USERNAME])
        capsys.readouterr()
        code = main(
            [
                "token",
                "--show",
                "--login-url",
                emu.url,
                "--username",
                USERNAME,
                "--consumer-key",
                CONSUMER_KEY,
                "--key-file",
                str(key),
                *extra,
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        values = dict(  # as the shell would read `eval "$(sfjwt token --show)"`
            shlex.split(line)[1].split("=", 1)
            for line in out.splitlines()
            if line.startswith("export ")
        )
        assert values["SF_INSTANCE_URL"] == emu.url
        token = values["SF_ACCESS_TOKEN"]
        assert token in emu.identity.sessions
        assert emu.stats.token_exchanges == 1
        who = requests.get(
            f"{emu.url}/services/oauth2/userinfo",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert who.status_code == 200
        assert who.json()["preferred_username"] == USERNAME


# --- token -----------------------------------------------------------------------------------


def test_token_is_masked_unless_asked_for(capsys, keypair, tmp_path):
    key = tmp_path / "k.pem"
    key.write_text(keypair.pem)
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, keypair.cert_pem, [USERNAME])
        argv = ["token", "--login-url", emu.url, "--username", USERNAME]
        argv += ["--consumer-key", CONSUMER_KEY, "--key-file", str(key)]
        assert main(argv) == 0
        out = capsys.readouterr().out
        (token,) = emu.identity.sessions
        assert token not in out
        assert "masked" in out and "--show" in out
        assert f"export SF_INSTANCE_URL={emu.url}" in out
        assert "/services/data/v66.0/limits" in out


def test_token_failure_prints_the_mapped_hint(capsys, keypair, tmp_path):
    key = tmp_path / "k.pem"
    key.write_text(keypair.pem)
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, keypair.cert_pem, [USERNAME])
        argv = ["token", "--login-url", emu.url, "--username", "nobody@example.com"]
        argv += ["--consumer-key", CONSUMER_KEY, "--key-file", str(key)]
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "user hasn't approved this consumer" in err
    assert "Admin approved users are pre-authorized" in err
    assert "sfjwt doctor" in err


# --- connection ------------------------------------------------------------------------------


def connection_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    code = main(["connection", "--json", *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_connection_forms_round_trip_into_a_working_hook(capsys, monkeypatch, tmp_path):
    _, key, cert = keygen(tmp_path)
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, cert.read_text(), [USERNAME])
        base = ["--login-url", emu.url + "/", "--username", USERNAME]
        base += ["--consumer-key", CONSUMER_KEY, "--key-file", str(key), "--cert", str(cert)]
        result = connection_json(capsys, "--conn-id", "sf_cli_roundtrip", *base)
        env = result["env"]
        assert env["name"] == "AIRFLOW_CONN_SF_CLI_ROUNDTRIP"
        doc = json.loads(env["value"])
        assert doc == result["secrets_backend"]
        assert doc["host"] == emu.url  # normalised
        assert doc["extra"]["private_key_ref"] == f"file:{key}"
        assert "private_key" not in doc["extra"] and "password" not in doc
        assert doc["extra"]["certificate"] == cert.read_text()
        for line in keys.pem_lines(key.read_text()):
            assert line not in json.dumps(result)
        # The airflow command carries the same values.
        words = shlex.split(result["airflow_cli"].replace("\\\n", " "))
        assert words[:4] == ["airflow", "connections", "add", "sf_cli_roundtrip"]
        assert json.loads(words[words.index("--conn-extra") + 1]) == doc["extra"]
        assert words[words.index("--conn-host") + 1] == emu.url
        # The env form works as is.
        monkeypatch.setenv(env["name"], env["value"])
        ok, message = SalesforceJWTHook("sf_cli_roundtrip").test_connection()
        assert ok, message
        # The text form prints all three, ready to paste.
        capsys.readouterr()
        assert main(["connection", "--conn-id", "sf_cli_roundtrip", *base]) == 0
        out = capsys.readouterr().out
        assert "airflow connections add sf_cli_roundtrip" in out
        assert f"export AIRFLOW_CONN_SF_CLI_ROUNDTRIP={shlex.quote(env['value'])}" in out
        assert "airflow/connections/sf_cli_roundtrip" in out
        assert "sfjwt doctor --conn-id sf_cli_roundtrip" in out


def test_connection_inline_key_and_encrypted_passphrase(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SF_KEY_PASS", PASSPHRASE)
    _, key, cert = keygen(tmp_path, "--passphrase-env", "SF_KEY_PASS")
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, cert.read_text(), [USERNAME])
        base = ["--login-url", emu.url, "--username", USERNAME, "--consumer-key", CONSUMER_KEY]
        base += ["--key-file", str(key), "--passphrase-env", "SF_KEY_PASS"]
        result = connection_json(capsys, *base)
        assert PASSPHRASE not in json.dumps(result)
        assert '--conn-password "$SF_KEY_PASS"' in result["airflow_cli"]
        assert any("passphrase" in note for note in result["notes"])
        inline = connection_json(capsys, "--conn-id", "sf_cli_inline", *base, "--inline-key")
        doc = inline["secrets_backend"]
        assert doc["password"] == PASSPHRASE
        assert doc["extra"]["private_key"] == key.read_text()
        assert "private_key_ref" not in doc["extra"]
        assert any("secret" in note for note in inline["notes"])
        TOKEN_CACHE.clear()
        monkeypatch.setenv(inline["env"]["name"], inline["env"]["value"])
        assert SalesforceJWTHook("sf_cli_inline").test_connection()[0]


def test_connection_key_in_a_variable_resolves_through_airflow(capsys, monkeypatch, keypair):
    monkeypatch.setenv("AIRFLOW_VAR_SF_CLI_KEY", keypair.pem)
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, keypair.cert_pem, [USERNAME])
        result = connection_json(
            capsys,
            "--conn-id",
            "sf_cli_var",
            "--login-url",
            emu.url,
            "--username",
            USERNAME,
            "--consumer-key",
            CONSUMER_KEY,
            "--key-ref",
            "variable:sf_cli_key",
        )
        assert result["secrets_backend"]["extra"]["private_key_ref"] == "variable:sf_cli_key"
        assert any("airflow/variables/sf_cli_key" in note for note in result["notes"])
        monkeypatch.setenv(result["env"]["name"], result["env"]["value"])
        capsys.readouterr()
        assert main(["doctor", "--conn-id", "sf_cli_var", "--json"]) == 0
        checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
        assert "variable:sf_cli_key" in checks["private_key"]["detail"]
        assert checks["identity"]["status"] == "pass"
    assert os.environ.get("_AIRFLOW_PROCESS_CONTEXT") is None  # restored after the lookups


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            ["--login-url", "https://acme.lightning.force.com"],
            ["--login-url", "https://acme.my.salesforce.com"],
        ),
        (["--username", "not-an-email"], ["--username", "Setup > Users"]),
        (["--consumer-key", "3MVG with spaces"], ["--consumer-key", "copy it again"]),
        (["--key-ref", "s3://bucket/key"], ["--key-ref", "file:/path/on/workers"]),
        (["--key-file", "/nonexistent/sf.key"], ["does not exist"]),
    ],
)
def test_connection_refuses_bad_values_naming_the_flag(capsys, keypair, tmp_path, change, words):
    key = tmp_path / "k.pem"
    key.write_text(keypair.pem)
    values = {
        "--login-url": "https://acme.my.salesforce.com",
        "--username": USERNAME,
        "--consumer-key": CONSUMER_KEY,
        "--key-file": str(key),
    }
    values[change[0]] = change[1]
    argv = [item for pair in values.items() for item in pair]
    assert main(["connection", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    for word in words:
        assert word in captured.err


def test_connection_key_ref_that_cannot_be_read_here_asks_for_a_local_copy(capsys):
    argv = ["connection", "--login-url", "https://acme.my.salesforce.com", "--username", USERNAME]
    argv += ["--consumer-key", CONSUMER_KEY, "--key-ref", "file:/opt/airflow/secrets/sf.key"]
    assert main(argv) == 2
    assert "--key-file with a local copy" in capsys.readouterr().err


# --- emulator and the installed console script -----------------------------------------------


def test_emulator_subcommand_delegates_to_the_emulator(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["emulator", "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_sfjwt_emulator_serves_a_connection_that_doctor_accepts(tmp_path, capsys, monkeypatch):
    script = Path(sys.executable).with_name("sfjwt")
    assert script.exists(), "install the package first: pip install -e . (make test does it)"
    argv = [str(script), "emulator", "--port", "0", "--accounts", "5", "--contacts", "0"]
    argv += ["--key-dir", str(tmp_path)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("export AIRFLOW_CONN_"):
                break
        name, _, value = lines[-1].removeprefix("export ").strip().partition("=")
        assert name == "AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT", lines
        monkeypatch.setenv(name, shlex.split(value)[0])
        capsys.readouterr()
        assert main(["doctor", "--json"]) == 0
        results = json.loads(capsys.readouterr().out)
        assert {r["name"]: r["status"] for r in results}["identity"] == "pass"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_installed_console_script_with_a_secrets_backend_connection(tmp_path, keypair):
    """The real `sfjwt` executable, reading a connection and a key Variable from a secrets
    backend (Airflow's LocalFilesystemBackend), runs the whole doctor checklist green."""
    script = Path(sys.executable).with_name("sfjwt")
    assert script.exists(), "install the package first: pip install -e . (make test does it)"
    cert_file = tmp_path / "app.crt"
    cert_file.write_text(keypair.cert_pem)
    with SalesforceEmulator() as emu:
        emu.add_app(CONSUMER_KEY, keypair.cert_pem, [USERNAME])
        conns = {
            "sf_backend": {
                "conn_type": "salesforce_jwt",
                "host": emu.url,
                "login": USERNAME,
                "extra": {
                    "consumer_key": CONSUMER_KEY,
                    "private_key_ref": "variable:sf_backend_key",
                    "certificate": f"file:{cert_file}",
                },
            }
        }
        (tmp_path / "conns.json").write_text(json.dumps(conns))
        (tmp_path / "vars.json").write_text(json.dumps({"sf_backend_key": keypair.pem}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
        env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)  # as a user runs it
        env["AIRFLOW__SECRETS__BACKEND"] = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
        env["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps(
            {
                "connections_file_path": str(tmp_path / "conns.json"),
                "variables_file_path": str(tmp_path / "vars.json"),
            }
        )
        started = dt.datetime.now()
        done = subprocess.run(
            [str(script), "doctor", "--conn-id", "sf_backend", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        elapsed = (dt.datetime.now() - started).total_seconds()
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout)
    assert [r["name"] for r in results] == [c.name for c in CHECKS]
    assert {r["status"] for r in results} == {"pass"}, results
    assert elapsed < 60
    for line in keys.pem_lines(keypair.pem):
        assert line not in done.stdout + done.stderr


def test_version_and_missing_command(capsys):
    from airflow_provider_sfjwt import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sfjwt {__version__}"
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


# --- relative paths on the command line ------------------------------------------------------


def test_relative_paths_on_the_command_line_become_absolute_file_references(
    tmp_path, monkeypatch, capsys
):
    """What docs/setup.md types, from the directory keygen wrote to: every relative path given
    as a flag is resolved against the current directory and stored as an absolute reference."""
    monkeypatch.chdir(tmp_path)
    here = Path.cwd()
    assert main(["keygen", "--key", "salesforce_jwt.key", "--cert", "salesforce_jwt.crt"]) == 0
    base = ["--login-url", "https://acme.my.salesforce.com", "--username", USERNAME]
    base += ["--consumer-key", CONSUMER_KEY, "--key-file", "salesforce_jwt.key"]
    result = connection_json(capsys, *base, "--cert", "salesforce_jwt.crt")
    extra = result["secrets_backend"]["extra"]
    assert extra["private_key_ref"] == f"file:{here / 'salesforce_jwt.key'}"
    assert extra["certificate"] == (here / "salesforce_jwt.crt").read_text()
    # A relative --key-ref file: is resolved the same way (the worker path is then this one).
    (here / "keys").mkdir()
    (here / "keys" / "k.pem").write_bytes((here / "salesforce_jwt.key").read_bytes())
    result = connection_json(capsys, *base, "--key-ref", "file:keys/k.pem")
    assert result["secrets_backend"]["extra"]["private_key_ref"] == f"file:{here / 'keys/k.pem'}"
    # Rotation with the same key, as setup.md writes it.
    renew = ["keygen", "--reuse-key", "salesforce_jwt.key", "--cert", "salesforce_jwt-2027.crt"]
    assert main(renew) == 0
    renewed = load_cert(here / "salesforce_jwt-2027.crt")
    key = keys.load_private_key((here / "salesforce_jwt.key").read_text(), None)
    assert keys.certificate_matches_key(renewed, key)


def test_a_stored_connection_with_a_relative_file_reference_is_refused_with_the_reason(
    tmp_path, monkeypatch
):
    """Inside a stored connection a relative path has no meaning: workers, the triggerer and the
    API server each start in another directory. That stays an error that says so."""
    from airflow_provider_sfjwt.salesforce.errors import ConfigurationError
    from airflow_provider_sfjwt.salesforce.settings import parse_connection

    monkeypatch.chdir(tmp_path)
    assert main(["keygen", "--key", "k.pem", "--cert", "k.crt"]) == 0
    with pytest.raises(ConfigurationError) as caught:
        parse_connection(
            host="https://acme.my.salesforce.com",
            login=USERNAME,
            password=None,
            extra={"consumer_key": CONSUMER_KEY, "private_key_ref": "file:k.pem"},
        )
    message = str(caught.value)
    assert "relative path 'k.pem'" in message
    assert "each start in a different directory" in message and "absolute path" in message
