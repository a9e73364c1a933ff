"""Matrix 2: bad inputs - every connection field and every operator argument - against every operator.

Each cell builds the real operator with one bad value (a connection field through
``AIRFLOW_CONN_*``, or an operator argument) and runs it. It must fail with a message that names
the problem, before any network call (the emulator counts zero token requests and zero API calls
for the cell) and without writing anything (no output file, no record created). Messages must
not echo key material or the content of a file a reference points to.

Decisions recorded here (see RELIABILITY.md):
- ``file:`` references are the operator's choice of path, so an absolute path is read wherever it
  points - with ``..`` and symlinks resolved and the real path named in every message - but a
  *relative* path is refused: workers, the triggerer and the API server start in different
  directories, so it would name different files (``file:../../etc/shadow`` says so and shows the
  path it resolves to here). A file over 64 KB is not read at all.
- A unicode username is valid input (Salesforce usernames are e-mail shaped and may be
  internationalised): it is not refused locally, it travels UTF-8 in the JWT ``sub`` - see
  ``test_unicode_username_is_accepted``.
- SOQL has no bind variables, so a templated value is pasted verbatim. A value that breaks out of
  its quotes to stack a statement (``'; DELETE ...``) is refused before any request (SOQL has no
  ``;``); one that only widens a read (``x' OR Name != '``) is valid SOQL that no client can tell
  apart - quote or validate such params in the DAG.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from airflow_provider_sfjwt.operators import (
    SalesforceBulkIngestOperator,
    SalesforceBulkQueryOperator,
    SalesforceCollectionsOperator,
    SalesforceQueryOperator,
    SalesforceRestOperator,
)
from airflow_provider_sfjwt.salesforce.keys import pem_lines, private_key_to_pem
from airflow_provider_sfjwt.sensors import SalesforceSoqlSensor
from airflow_provider_sfjwt.testing.keys import shared_key_pair

from .columns import files_in, run_task
from .conftest import CONN_ID, USERNAME, connection, start_emulator, use_connection

PASSPHRASE = "input-matrix-passphrase"


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


# --- columns: each operator with good arguments, overridable per row ------------------------


@dataclass(frozen=True)
class OpColumn:
    key: str
    title: str
    build: Callable[[Path, dict[str, Any]], Any]


def _query(out: Path, kw: dict[str, Any]) -> Any:
    args = {"soql": "SELECT Id, Name FROM Account", "output_path": str(out / "a.csv")}
    return SalesforceQueryOperator(task_id="q", **{**args, **kw})


def _collections(out: Path, kw: dict[str, Any]) -> Any:
    args = {"operation": "insert", "sobject": "Account", "records": [{"Name": "INPUT-1"}]}
    return SalesforceCollectionsOperator(task_id="c", **{**args, **kw})


def _rest(out: Path, kw: dict[str, Any]) -> Any:
    return SalesforceRestOperator(task_id="r", **{"endpoint": "limits", **kw})


def _sensor(out: Path, kw: dict[str, Any]) -> Any:
    args = {"soql": "SELECT COUNT() FROM Account", "poke_interval": 0.01, "timeout": 5}
    return SalesforceSoqlSensor(task_id="s", **{**args, **kw})


def _bulk_query(out: Path, kw: dict[str, Any]) -> Any:
    args = {
        "soql": "SELECT Id FROM Account",
        "output_path": str(out / "b.csv"),
        "poll_interval": 0.01,
    }
    return SalesforceBulkQueryOperator(task_id="bq", **{**args, **kw})


def _bulk_ingest(out: Path, kw: dict[str, Any]) -> Any:
    source = out.parent / "in.csv"
    source.write_text("LastName\nINPUT-1\n", encoding="utf-8")
    args = {
        "sobject": "Contact",
        "operation": "insert",
        "input_path": str(source),
        "results_dir": str(out),
        "poll_interval": 0.01,
    }
    return SalesforceBulkIngestOperator(task_id="bi", **{**args, **kw})


OP_COLUMNS = [
    OpColumn("rest_query", "SalesforceQueryOperator", _query),
    OpColumn("collections", "SalesforceCollectionsOperator", _collections),
    OpColumn("rest", "SalesforceRestOperator", _rest),
    OpColumn("sensor", "SalesforceSoqlSensor", _sensor),
    OpColumn("bulk_query", "SalesforceBulkQueryOperator (deferrable)", _bulk_query),
    OpColumn("bulk_ingest", "SalesforceBulkIngestOperator (deferrable)", _bulk_ingest),
]
ALL = tuple(c.key for c in OP_COLUMNS)


# --- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadInput:
    key: str
    title: str
    words: tuple[str, ...]
    conn: dict[str, Any] = field(default_factory=dict)  # host/login/password/extra overrides
    raw_extra: str | None = None  # the extra as a raw string (not JSON object)
    args: dict[str, dict[str, Any]] = field(default_factory=dict)  # column -> operator kwargs
    columns: tuple[str, ...] = ALL
    pasted: str | None = None  # a secret pasted into the wrong field: never echoed, in any case

    @property
    def group(self) -> str:
        return "connection" if self.conn or self.raw_extra is not None else "argument"


def conn_row(key: str, title: str, words: tuple[str, ...], **conn: Any) -> BadInput:
    return BadInput(key, title, words, conn=conn)


def extra_row(key: str, title: str, words: tuple[str, ...], **extra: Any) -> BadInput:
    return BadInput(key, title, words, conn={"extra": extra})


def pasted_row(key: str, title: str, words: tuple[str, ...], secret: str, **conn: Any) -> BadInput:
    """A secret in the wrong field: refused, quoted by length and a short prefix at most."""
    return BadInput(key, title, words + ("characters",), conn=conn, pasted=secret)


def arg_row(key: str, title: str, words: tuple[str, ...], **per_column: dict) -> BadInput:
    return BadInput(key, title, words, args=per_column, columns=tuple(per_column))


def rows(tmp_root: Path) -> list[BadInput]:
    kp = shared_key_pair()
    big_file = tmp_root / "big.pem"
    big_file.write_text("-----BEGIN PRIVATE KEY-----\n" + "A" * (1 << 20), encoding="ascii")
    encrypted = private_key_to_pem(
        serialization.load_pem_private_key(kp.private_key_pem.encode(), None), PASSPHRASE
    ).decode()
    no_key = {"private_key": ""}
    source = tmp_root / "load.csv"
    source.write_text("LastName\n" + "".join(f"INPUT-{i}\n" for i in range(300)))
    link = tmp_root / "report.csv"
    if not link.is_symlink():
        link.symlink_to(source)
    pem = kp.private_key_pem
    line = pem_lines(pem)[3]
    passphrase = "Tr0ub4dor&3:horse#battery"
    return [
        conn_row("host_http", "Login URL http:// to a remote host", ("https",),
                 host="http://login.salesforce.com"),
        conn_row("host_not_http", "Login URL with another scheme (ftp://)", ("not an http(s) URL",),
                 host="ftp://example.com"),
        conn_row("host_ui", "Login URL is a Lightning UI host", ("UI host", "acme.my.salesforce.com"),
                 host="https://acme.lightning.force.com"),
        conn_row("host_credentials", "Login URL with user:password@", ("user name or password",),
                 host="https://user:pw@login.salesforce.com"),
        conn_row("host_api_path", "Login URL includes the token path", ("API path",),
                 host="https://login.salesforce.com/services/oauth2/token"),
        conn_row("host_crlf", "Login URL with CR/LF (header injection)", ("control characters",),
                 host="https://login.salesforce.com\r\nX-Injected: 1"),
        conn_row("host_bad_port", "Login URL 'javascript:alert(1)'", ("valid host",),
                 host="javascript:alert(1)"),
        conn_row("host_oversized", "Login URL of 2,000+ characters", ("too long",),
                 host="https://" + "a" * 2000 + ".com"),
        conn_row("login_missing", "Username empty", ("Username",), login=""),
        conn_row("login_not_email", "Username not e-mail shaped", ("user@example.com",),
                 login="just a name"),
        conn_row("login_oversized", "Username of 300+ characters", ("Username",),
                 login="a" * 300 + "@example.com"),
        conn_row("login_newline", "Username with a newline", ("Username",),
                 login=f"{USERNAME}\nX-Evil: 1"),
        conn_row("passphrase_wrong", "Encrypted key, wrong passphrase", ("wrong passphrase",),
                 password="not-the-passphrase", extra={"private_key": encrypted}),
        conn_row("passphrase_missing", "Encrypted key, no passphrase", ("encrypted", "passphrase"),
                 extra={"private_key": encrypted}),
        BadInput("extra_not_json", "Extra is not JSON", ("extra", "not valid JSON"),
                 raw_extra="consumer_key=abc"),
        BadInput("extra_array", "Extra is a JSON array", ("extra", "JSON object"),
                 raw_extra="[1, 2]"),
        extra_row("consumer_key_missing", "consumer_key empty", ("consumer_key",), consumer_key=""),
        extra_row("consumer_key_type", "consumer_key is a number", ("consumer_key", "must be text"),
                  consumer_key=12345),
        extra_row("consumer_key_oversized", "consumer_key of 400 characters", ("consumer_key",),
                  consumer_key="3MVG" + "x" * 400),
        extra_row("key_missing", "Neither private_key nor private_key_ref", ("both empty",),
                  **no_key),
        extra_row("key_both", "Both private_key and private_key_ref", ("both set",),
                  private_key_ref="env:SFJWT_REL_KEY"),
        extra_row("key_not_pem", "private_key is not a PEM", ("not a PEM",), private_key="hello"),
        extra_row("key_binary", "private_key is binary garbage", ("not a PEM",),
                  private_key="\x00\xff\xfe\x01" * 64),
        extra_row("key_huge", "private_key of 200 KB", ("far too large",),
                  private_key="-----BEGIN PRIVATE KEY-----\n" + "A" * 200_000),
        extra_row("key_type", "private_key is a list", ("private_key", "must be text"),
                  private_key=["-----BEGIN PRIVATE KEY-----"]),
        extra_row("key_ec", "private_key is an EC key", ("EC key", "RSA"),
                  private_key=_pem(ec.generate_private_key(ec.SECP256R1()))),
        extra_row("key_1024", "private_key is RSA 1024", ("1024 bits", "2048"),
                  private_key=_pem(rsa.generate_private_key(65537, 1024))),
        extra_row("ref_relative_traversal", "private_key_ref file:../../etc/shadow",
                  ("relative path", "/etc/shadow", "absolute path"),
                  private_key="", private_key_ref="file:../../etc/shadow"),
        extra_row("ref_absolute_traversal", "private_key_ref file:/tmp/../etc/passwd",
                  ("not a PEM",), private_key="", private_key_ref="file:/tmp/../etc/passwd"),
        extra_row("ref_missing", "private_key_ref to a missing file", ("does not exist",),
                  private_key="", private_key_ref="file:/no/such/dir/key.pem"),
        extra_row("ref_huge_file", "private_key_ref to a 1 MB file", ("far too large",),
                  private_key="", private_key_ref=f"file:{big_file}"),
        extra_row("ref_device", "private_key_ref file:/dev/zero", ("/dev/zero",),
                  private_key="", private_key_ref="file:/dev/zero"),
        extra_row("ref_scheme", "private_key_ref s3://bucket/key.pem", ("file:/path",),
                  private_key="", private_key_ref="s3://bucket/key.pem"),
        extra_row("ref_env_unset", "private_key_ref env: variable not set", ("not set",),
                  private_key="", private_key_ref="env:SFJWT_REL_NOT_SET"),
        extra_row("audience_not_url", "audience 'production'", ("audience", "not a URL"),
                  audience="production"),
        extra_row("api_version_bad", "api_version 'latest'", ("api_version",),
                  api_version="latest"),
        extra_row("timeout_word", "request_timeout 'soon'", ("request_timeout", "number"),
                  request_timeout="soon"),
        extra_row("timeout_negative", "request_timeout -1", ("request_timeout", "between"),
                  request_timeout=-1),
        extra_row("retries_huge", "max_retries 1000", ("max_retries", "between 0 and 20"),
                  max_retries=1000),
        extra_row("ca_bundle_missing", "ca_bundle to a missing file", ("ca_bundle", "does not exist"),
                  ca_bundle="/no/such/ca.pem"),
        extra_row("usage_percent", "max_api_usage_percent 150", ("between 1 and 100",),
                  max_api_usage_percent=150),
        pasted_row("pasted_passphrase_host", "Passphrase pasted into the Login URL",
                   ("Login URL", "valid host"), passphrase, host=passphrase),
        pasted_row("pasted_pem_line_audience", "A PEM line pasted into audience",
                   ("audience", "not a URL"), line, extra={"audience": line}),
        pasted_row("pasted_pem_api_version", "The whole PEM pasted into api_version",
                   ("api_version",), pem, extra={"api_version": pem}),
        pasted_row("pasted_pem_ca_bundle", "The whole PEM pasted into ca_bundle",
                   ("ca_bundle", "does not exist"), pem, extra={"ca_bundle": pem}),
        pasted_row("pasted_pem_token_cache", "The whole PEM pasted into token_cache",
                   ("token_cache", "'file'"), pem, extra={"token_cache": pem}),
        pasted_row("pasted_pem_key_ref", "A PEM line pasted into private_key_ref",
                   ("private_key_ref", "file:/path"), line,
                   extra={"private_key": "", "private_key_ref": line}),
        pasted_row("pasted_passphrase_timeout", "Passphrase pasted into request_timeout",
                   ("request_timeout", "number"), passphrase,
                   extra={"request_timeout": passphrase}),
        # --- operator arguments -----------------------------------------------------------------
        arg_row("format_unknown", "format 'xlsx'", ("format",),
                rest_query={"format": "xlsx"}, bulk_query={"format": "xlsx"}),
        arg_row("soql_not_select", "SOQL is not a SELECT (DELETE ...)", ("not a SOQL SELECT",),
                rest_query={"soql": "DELETE FROM Account"},
                bulk_query={"soql": "DELETE FROM Account"}),
        arg_row("soql_stacked_injection", "Templated value stacks a statement ('; DELETE ...)",
                ("statement separator",),
                rest_query={"soql": "SELECT Id FROM Account WHERE Name = 'x'; DELETE FROM Account"},
                bulk_query={"soql": "SELECT Id FROM Account WHERE Name = 'x'; DELETE FROM Account"},
                sensor={"soql": "SELECT COUNT() FROM Account WHERE Name = 'x'; DELETE FROM Account"}),
        arg_row("operation_unknown", "operation 'merge'", ("operation",),
                collections={"operation": "merge"}, bulk_ingest={"operation": "merge"}),
        arg_row("upsert_no_external_id", "upsert without external_id_field", ("external_id_field",),
                collections={"operation": "upsert"}, bulk_ingest={"operation": "upsert"}),
        arg_row("both_inputs", "both input_path and records", ("exactly one",),
                collections={"input_path": "/tmp/x.csv"}),
        arg_row("neither_input", "neither input_path nor records", ("exactly one",),
                collections={"records": None}),
        arg_row("max_failed_negative", "max_failed_records -1", ("max_failed_records",),
                collections={"max_failed_records": -1}, bulk_ingest={"max_failed_records": -1}),
        arg_row("max_failed_percent_bad", "max_failed_records 'abc%'", ("max_failed_records",),
                bulk_ingest={"max_failed_records": "abc%"}),
        arg_row("max_failed_percent_over", "max_failed_records '150%'", ("max_failed_records",),
                bulk_ingest={"max_failed_records": "150%"}),
        arg_row("input_missing", "input file does not exist", ("/no/such/input.csv",),
                collections={"records": None, "input_path": "/no/such/input.csv"},
                bulk_ingest={"input_path": "/no/such/input.csv"}),
        arg_row("report_is_input", "failed_records_path is the input file", ("is the input file",),
                collections={"records": None, "input_path": str(source),
                             "failed_records_path": str(source)}),
        arg_row("report_links_to_input", "failed_records_path is a link to the input file",
                ("is the input file",),
                collections={"records": None, "input_path": str(source),
                             "failed_records_path": str(link)}),
        arg_row("output_file_url_host", "output path file://127.0.0.2/... (a host)",
                ("names the host", "file:///path"),
                rest_query={"output_path": "file://127.0.0.2/tmp/sfjwt-never-written.csv"},
                bulk_query={"output_path": "file://127.0.0.2/tmp/sfjwt-never-written.csv"},
                collections={"records": None, "input_path": "file://127.0.0.2/tmp/in.csv"}),
        arg_row("rest_full_url", "REST endpoint is a URL on another host", ("full URL",),
                rest={"endpoint": "https://attacker.example.com/collect"}),
        arg_row("rest_method", "REST method 'FETCH'", ("method",), rest={"method": "FETCH"}),
        arg_row("comparison_unknown", "sensor comparison '=>'", ("comparison",),
                sensor={"comparison": "=>"}),
        arg_row("threshold_not_number", "sensor threshold 'many' (after templating)",
                ("whole number",), sensor={"threshold": "many"}),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict[str, BadInput]:
    return {r.key: r for r in rows(tmp_path_factory.mktemp("inputs"))}


def _cells() -> list[Any]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        defined = rows(Path(tmp))
    return [
        pytest.param(row.key, column, id=f"{row.key}-{column.key}")
        for row in defined
        for column in OP_COLUMNS
        if column.key in row.columns
    ]


@pytest.mark.parametrize(("row_key", "column"), _cells())
def test_input_cell(row_key, column, bad_inputs, emu, tmp_path, monkeypatch, cell):
    row = bad_inputs[row_key]
    expected = "refused before any request, naming " + " / ".join(repr(w) for w in row.words)
    cell.describe(
        "inputs", row.key, f"{row.group}: {row.title}", column.key, column.title, expected
    )
    emu.load("Account", [{"Name": f"Account {i}"} for i in range(3)])
    conn = connection(emu)
    for name in ("host", "login", "password"):
        if name in row.conn:
            conn[name] = row.conn[name]
    conn["extra"] = {**conn["extra"], **row.conn.get("extra", {})}
    if row.raw_extra is not None:
        conn["extra"] = row.raw_extra
    use_connection(monkeypatch, conn)
    monkeypatch.setenv("SFJWT_REL_KEY", shared_key_pair().private_key_pem)
    before = (emu.stats.token_requests, emu.stats.api_calls, len(emu.records("Account")))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the message is what is checked
        run_task(column.build(out, dict(row.args.get(column.key, {}))))
    error = caught.value
    message = str(error)
    for word in row.words:
        assert word.lower() in message.lower(), (word, message)
    after = (emu.stats.token_requests, emu.stats.api_calls, len(emu.records("Account")))
    assert after == before, f"network or writes happened: {before} -> {after}"
    assert files_in(out) == [], files_in(out)
    for args in row.args.values():  # an input the task was given is still whole
        if "input_path" in args and args["input_path"].endswith("load.csv"):
            assert Path(args["input_path"]).read_text().count("\n") == 301
    key_lines = pem_lines(shared_key_pair().private_key_pem)
    assert not [line for line in key_lines if line in message or line in repr(error)]
    if row.pasted:
        told = (message + repr(error)).lower()
        pieces = pem_lines(row.pasted) or [row.pasted]
        assert not [p for p in pieces if p.lower() in told], "a pasted secret was echoed"
        assert not [p for p in pieces if p[:12].lower() in told], "more than a short prefix"
    assert "root:" not in message, "a referenced file's content was echoed"
    cell.outcome = f"{type(error).__name__}: {message.splitlines()[0][:140]}"


def test_unicode_username_is_accepted(monkeypatch, tmp_path, cell):
    """Not a bad input: an internationalised username reaches Salesforce as UTF-8 and works."""
    cell.describe(
        "inputs",
        "login_unicode",
        "connection: Username with non-ASCII characters (accepted, valid)",
        "rest_query",
        "SalesforceQueryOperator",
        "accepted; the token exchange succeeds for that user",
    )
    emu = start_emulator()
    try:
        name = "jürgen.müller@exämple.com"
        emu.add_app("3MVG9unicode", shared_key_pair().certificate_pem, [name])
        emu.load("Account", [{"Name": "Ünïcödé"}])
        conn = connection(emu)
        conn.update(login=name)
        conn["extra"]["consumer_key"] = "3MVG9unicode"
        use_connection(monkeypatch, conn, CONN_ID)
        result = run_task(_query(tmp_path, {}))
        assert result["rows"] == 1 and emu.stats.token_exchanges == 1
        body = json.loads(json.dumps(result))
        cell.outcome = f"ok: {body['rows']} row, 1 token exchange"
    finally:
        emu.stop()
