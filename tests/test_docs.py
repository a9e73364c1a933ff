"""The documentation works as written: every shell and Python snippet of README.md and
docs/setup.md runs, in order, against the emulator (see ``docs_runner``), and the claims the
README makes about commands and settings hold.

The Salesforce side of docs/setup.md (an app with the consumer key and user the document uses, and
the certificate it tells you to upload) is played by an emulator, and the default connection
points at it, the way the document's own connection would point at the org.
"""

from __future__ import annotations

import json
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_sfjwt.testing import SalesforceEmulator

from .docs_runner import (
    OUTPUT_LANGUAGES,
    REPO,
    RUN_LANGUAGES,
    STRICT,
    TESTED_ELSEWHERE,
    DocSession,
    snippets,
)

DOCS = [REPO / "README.md", REPO / "docs" / "setup.md"]
ALL = [s for doc in DOCS for s in snippets(doc)]
RUN = [s for s in ALL if s.runnable]
SETUP_USER = "integration@acme.com"
SETUP_CONSUMER_KEY = "3MVG9..."
COMMAND = re.compile(
    r"^(sfjwt [a-z-]+( |$)|make [a-z]|python3? -|pip install|export \w+=|airflow [a-z]|aws |\$ )"
)


class _SetupOrg:
    """The org docs/setup.md sets up: an app for the document's consumer key and user, which
    gets the certificate the document makes (uploading it is a step in Salesforce Setup)."""

    def __init__(self, session: DocSession) -> None:
        self.session = session
        self.emu = SalesforceEmulator().start()
        self.app = None
        self.uploaded = ""
        self.emu.add_user(SETUP_USER)
        key_ref = f"file:{session.work / 'salesforce_jwt.key'}"
        conn = self.emu.connection(
            username=SETUP_USER, consumer_key=SETUP_CONSUMER_KEY, private_key_ref=key_ref
        )
        session.env["AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT"] = json.dumps(conn)

    def upload_certificate(self) -> None:
        cert = self.session.work / "salesforce_jwt.crt"
        if not cert.exists() or cert.read_text() == self.uploaded:
            return
        self.uploaded = cert.read_text()
        if self.app is None:
            self.app = self.emu.add_app(SETUP_CONSUMER_KEY, self.uploaded, [SETUP_USER])
        else:
            self.app.set_certificate(self.uploaded)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """One session per document, kept across that document's snippets (they build on each other)."""
    opened: dict[str, tuple[DocSession, _SetupOrg | None]] = {}
    yield lambda doc: opened.setdefault(doc, _open(doc, tmp_path_factory))
    for _session, org in opened.values():
        if org is not None:
            org.emu.stop()


def _open(doc: str, tmp_path_factory) -> tuple[DocSession, _SetupOrg | None]:
    session = DocSession.create(tmp_path_factory.mktemp(Path(doc).stem))
    return session, (_SetupOrg(session) if doc == "docs/setup.md" else None)


@pytest.mark.parametrize("snippet", RUN, ids=[s.name for s in RUN])
def test_snippet_runs_as_written(snippet, sessions):
    session, org = sessions(snippet.doc)
    result = session.run(snippet)
    assert result.returncode == 0, (
        f"{snippet.name} failed (exit {result.returncode}):\n{snippet.code}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    if org is not None:
        org.upload_certificate()


def test_every_snippet_runs_except_the_few_that_need_a_real_org():
    skipped = [s for s in ALL if s.lang in RUN_LANGUAGES and not s.runnable]
    assert len(skipped) <= 2, [s.name for s in skipped]
    for snippet in skipped:  # the reader is told, not only the test
        text = (REPO / snippet.doc).read_text().splitlines()[: snippet.line]
        assert "real org" in " ".join(text[-6:]).lower(), snippet.name
    assert len(RUN) >= 10, "the documents lost their runnable snippets"
    known = RUN_LANGUAGES.keys() | OUTPUT_LANGUAGES | TESTED_ELSEWHERE.keys()
    assert all(s.lang in known for s in ALL), [(s.name, s.lang) for s in ALL]
    runner = (REPO / "tests" / "replication_support.py").read_text()
    for snippet in (s for s in ALL if s.lang == "sql"):  # found by name by replication_support
        assert snippet.code.startswith("-- "), snippet.name
        name = snippet.code[3:].split(":", 1)[0]
        assert f'readme_sql("{name}")' in runner, f"no test runs the SQL block '-- {name}'"


def test_shell_snippets_stop_on_the_first_error():
    for snippet in (s for s in ALL if RUN_LANGUAGES.get(s.lang) == "bash"):
        first = next(line for line in snippet.code.splitlines() if line.strip())
        assert first.strip() == STRICT, f"{snippet.name} does not start with '{STRICT}'"


def test_commands_are_not_hidden_in_output_blocks():
    """A block without a language is shown as output and not run: it must not hold commands."""
    for snippet in (s for s in ALL if s.lang in OUTPUT_LANGUAGES):
        first = next((line for line in snippet.code.splitlines() if line.strip()), "")
        assert not COMMAND.match(first.lstrip()), f"{snippet.name}: {first!r}"


# --- the secrets-backend snippet never stores an empty secret --------------------------------


def _secrets_snippet():
    return next(s for s in RUN if "secretsmanager create-secret" in s.code)


def test_secrets_backend_snippet_stores_the_key_and_the_connection(tmp_path):
    """Run on its own after keygen: both secrets hold what Airflow needs."""
    session = DocSession.create(tmp_path)
    keygen = subprocess.run(
        ["sfjwt", "keygen", "--key", "salesforce_jwt.key", "--cert", "salesforce_jwt.crt"],
        cwd=session.work,
        env=session.env,
        capture_output=True,
        text=True,
    )
    assert keygen.returncode == 0, keygen.stderr
    result = session.run(_secrets_snippet())
    assert result.returncode == 0, result.stderr
    key = (session.secrets / "airflow/variables/salesforce_jwt_key").read_text()
    assert key == (session.work / "salesforce_jwt.key").read_text()
    conn = json.loads((session.secrets / "airflow/connections/salesforce_jwt_default").read_text())
    assert conn["conn_type"] == "salesforce_jwt"
    assert conn["extra"]["private_key_ref"] == "variable:salesforce_jwt_key"
    assert conn["extra"]["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert not (session.work / "conn.json").exists()


def test_secrets_backend_snippet_stops_before_storing_anything_when_a_step_fails(tmp_path):
    """No key file here: ``sfjwt connection`` fails, and nothing at all is stored - not the
    key, not an empty connection."""
    session = DocSession.create(tmp_path)
    (session.work / "salesforce_jwt.key").write_text("not a key\n")
    result = session.run(_secrets_snippet())
    assert result.returncode != 0
    assert "sfjwt connection" in result.stderr or "private_key" in result.stderr, result.stderr
    assert [p for p in session.secrets.rglob("*") if p.is_file()] == []


# --- keygen's printed next steps ---------------------------------------------------------------


def test_keygen_next_steps_run_as_printed_from_the_directory_it_wrote_to(tmp_path):
    session = DocSession.create(tmp_path)
    keygen = subprocess.run(
        ["sfjwt", "keygen"], cwd=session.work, env=session.env, capture_output=True, text=True
    )
    assert keygen.returncode == 0, keygen.stderr
    steps = keygen.stdout.split("Next steps:", 1)[1]
    commands = [line.strip() for line in steps.splitlines() if line.strip().startswith("sfjwt ")]
    assert [c.split()[:2] for c in commands] == [
        ["sfjwt", "connection"],
        ["sfjwt", "doctor"],
        ["sfjwt", "keygen"],
    ], commands
    connection, doctor, renew = commands
    printed = subprocess.run(
        [*shlex.split(connection), "--json"],
        cwd=session.work,
        env=session.env,
        capture_output=True,
        text=True,
    )
    assert printed.returncode == 0, printed.stderr
    # The org behind the printed example values: the connection as printed, at the emulator.
    conn = json.loads(printed.stdout)["secrets_backend"]
    with SalesforceEmulator() as emu:
        cert = (session.work / "salesforce_jwt.crt").read_text()
        emu.add_app(conn["extra"]["consumer_key"], cert, [conn["login"]])
        env = dict(
            session.env, AIRFLOW_CONN_SALESFORCE_JWT_DEFAULT=json.dumps({**conn, "host": emu.url})
        )
        checked = subprocess.run(
            shlex.split(doctor), cwd=session.work, env=env, capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    renewed = subprocess.run(
        shlex.split(renew), cwd=session.work, env=session.env, capture_output=True, text=True
    )
    assert renewed.returncode == 0, renewed.stderr


# --- README claims about commands and settings ---------------------------------------------------


def readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_keygen_writes_the_files_it_names(tmp_path):
    said = re.search(
        r"`(sfjwt keygen[^`]*)` writes `([^`]+)` \(mode 0600\)\s+and `([^`]+)`", readme()
    )
    assert said, "README no longer says which files sfjwt keygen writes"
    command, key, cert = said.groups()
    result = subprocess.run(
        shlex.split(command),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": f"{Path(sys.executable).parent}", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([key, cert])
    assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600


def test_readme_says_what_the_token_store_does():
    """Tasks share a token through the store for at most MAX_AGE, not for the token's life."""
    from airflow_provider_sfjwt.salesforce.token_store import MAX_AGE

    text = " ".join(readme().split())
    assert "per token lifetime" not in text
    assert MAX_AGE == 3600
    assert text.count("at most an hour") >= 2, "the table row and the Sessions paragraph"


def test_readme_says_what_the_rest_operator_puts_in_xcom(emu, tmp_path):
    """No records in XCom holds for every operator but the REST one, which the README names with
    its limit; the REST operator does push records when the resource returns them."""
    from airflow_provider_sfjwt.operators import SalesforceRestOperator
    from airflow_provider_sfjwt.salesforce.guard import JSON_BODY_BYTES
    from airflow_provider_sfjwt.salesforce.rest_call import DEFAULT_MAX_INLINE_BYTES

    text = " ".join(readme().split())
    said = re.search(r"never records or tokens — except `SalesforceRestOperator`[^.]*\.", text)
    assert said, "README says no operator pushes records, or no longer names the exception"
    assert DEFAULT_MAX_INLINE_BYTES == 64 * 1024 and JSON_BODY_BYTES == 64 * 1024 * 1024
    assert "(64 KB by default, at most 64 MB;" in said.group(0)
    with pytest.raises(ValueError, match="max_inline_bytes must be from 0 to"):
        SalesforceRestOperator(
            task_id="big", endpoint="limits", max_inline_bytes=JSON_BODY_BYTES + 1
        )
    emu.generate_accounts(3)
    query = SalesforceRestOperator(
        task_id="q", endpoint="query", query_params={"q": "SELECT Id, Name FROM Account"}
    )
    inline = query.execute({})
    assert inline["status"] == 200 and len(inline["body"]["records"]) == 3
    query.output_path = str(tmp_path / "q.json")
    assert set(query.execute({})) == {"status", "path", "bytes"}


def test_setup_and_hints_follow_salesforce_docs_and_say_reported_where_only_reported():
    """The walkthrough and the error hints as checked against Salesforce's documentation: what
    only users report is called reported, and the app_not_found / invalid_client hints name the
    causes seen in practice."""
    from airflow_provider_sfjwt.salesforce import errors

    setup = " ".join((REPO / "docs" / "setup.md").read_text(encoding="utf-8").split())
    assert "Allow creation of connected apps" in setup  # new Connected Apps need it
    assert "Enable JWT Bearer Flow" in setup  # the External Client App label
    assert "**Manage user data via APIs (api)**; **refresh_token, offline_access** only if" in setup
    assert "Community reports say a new or edited app can take 2 to 10 minutes" in setup
    assert "Salesforce is reported (on Salesforce" in setup  # expired certificates still work
    assert "reported to need since Spring '26" in errors.CHECK_AUDIENCE
    assert "Enable JWT Bearer Flow" in errors.CHECK_JWT_ENABLED
    assert "app must be installed into org" in errors.InvalidClientError.meaning
    app_not_found = " ".join([errors.AppNotFoundError.meaning, *errors.AppNotFoundError.checks])
    for cause in (
        "has no install step",
        "a sandbox refreshed before the app was created",
        "not from another org's app",
        "not login.salesforce.com or test.salesforce.com",
    ):
        assert cause in app_not_found, cause
    assert "a wrong audience can cause it" in errors.UserNotApprovedError.meaning
