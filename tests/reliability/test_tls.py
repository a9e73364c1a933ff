"""TLS: verification is on by default, a wrong certificate fails clearly, a configured CA works.

The emulator's https mode (``SalesforceEmulator(tls=True)``) serves a leaf certificate signed by
its own throw-away CA (``emu.ca_cert_path``), which no system trust store knows: exactly the
situation of a private CA or a TLS-inspecting corporate proxy. Checked for the token endpoint and
for REST and Bulk calls, through the real operators; each scenario is also a row of the TLS table
in RELIABILITY.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.salesforce.errors import TokenEndpointUnreachableError, TransportError

from .columns import ACCOUNTS, FAST_BULK, csv_rows, files_in, run_task
from .conftest import connection, start_emulator, use_connection

COLUMNS = {
    "token": "Token endpoint",
    "rest_query": "SalesforceQueryOperator (REST)",
    "bulk_query": "SalesforceBulkQueryOperator (Bulk 2.0)",
}


@pytest.fixture(scope="module")
def tls_emu():
    emu = start_emulator(tls=True)
    emu.load("Account", [{"Name": f"Account {i}"} for i in range(ACCOUNTS)])
    other = start_emulator(tls=True)  # a second CA: a certificate that is "wrong" for the first
    yield emu, other.ca_cert_path
    emu.stop()
    other.stop()


def run_column(column: str, out: Path):
    from airflow_provider_sfjwt.operators import (
        SalesforceBulkQueryOperator,
        SalesforceQueryOperator,
    )

    if column == "token":
        return SalesforceJWTHook().get_conn().auth.token()
    if column == "rest_query":
        op = SalesforceQueryOperator(
            task_id="q", soql="SELECT Id FROM Account", output_path=str(out / "a.csv")
        )
    else:
        op = SalesforceBulkQueryOperator(
            task_id="bq", soql="SELECT Id FROM Account", output_path=str(out / "a.csv"), **FAST_BULK
        )
    return run_task(op)


def check_ok(column: str, out: Path, result) -> str:
    if column == "token":
        assert result.instance_url.startswith("https://")
        return "ok: token over verified TLS"
    assert result["rows"] == ACCOUNTS == len(csv_rows(out / "a.csv"))
    return f"ok: {ACCOUNTS} rows over verified TLS"


@pytest.mark.parametrize("column", list(COLUMNS))
def test_default_verification_refuses_an_unknown_ca(tls_emu, column, tmp_path, monkeypatch, cell):
    emu, _ = tls_emu
    cell.describe(
        "tls", "default", "Default verification (system store), server CA unknown", column,
        COLUMNS[column], "fails naming TLS and ca_bundle / REQUESTS_CA_BUNDLE",
    )  # fmt: skip
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    use_connection(monkeypatch, connection(emu, max_retries=0))
    before = emu.stats.token_exchanges
    with pytest.raises(TokenEndpointUnreachableError) as caught:
        run_column(column, tmp_path)
    message = str(caught.value)
    assert "TLS verification failed" in message and "ca_bundle" in message, message
    assert "REQUESTS_CA_BUNDLE" in message
    assert emu.stats.token_exchanges == before
    assert files_in(tmp_path) == []
    cell.outcome = "fails (TokenEndpointUnreachableError): TLS verification failed, names ca_bundle"


@pytest.mark.parametrize("column", list(COLUMNS))
def test_wrong_ca_bundle_fails_clearly(tls_emu, column, tmp_path, monkeypatch, cell):
    emu, other_ca = tls_emu
    cell.describe(
        "tls", "wrong_ca", "ca_bundle holds another CA (wrong certificate)", column,
        COLUMNS[column], "fails naming TLS and the CA setting",
    )  # fmt: skip
    use_connection(monkeypatch, connection(emu, max_retries=0, ca_bundle=other_ca))
    with pytest.raises(TokenEndpointUnreachableError, match="TLS verification failed"):
        run_column(column, tmp_path)
    assert files_in(tmp_path) == []
    cell.outcome = "fails (TokenEndpointUnreachableError): TLS verification failed"


@pytest.mark.parametrize("column", list(COLUMNS))
def test_configured_ca_bundle_works(tls_emu, column, tmp_path, monkeypatch, cell):
    emu, _ = tls_emu
    cell.describe(
        "tls", "ca_bundle", "Connection extra ca_bundle = the server's CA", column,
        COLUMNS[column], "success",
    )  # fmt: skip
    use_connection(monkeypatch, connection(emu, ca_bundle=emu.ca_cert_path))
    cell.outcome = check_ok(column, tmp_path, run_column(column, tmp_path))


@pytest.mark.parametrize("column", list(COLUMNS))
def test_requests_ca_bundle_env_works(tls_emu, column, tmp_path, monkeypatch, cell):
    emu, _ = tls_emu
    cell.describe(
        "tls", "env", "REQUESTS_CA_BUNDLE = the server's CA, no ca_bundle", column,
        COLUMNS[column], "success",
    )  # fmt: skip
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_cert_path)
    use_connection(monkeypatch, connection(emu))
    cell.outcome = check_ok(column, tmp_path, run_column(column, tmp_path))


@pytest.mark.parametrize("column", ["rest_query", "bulk_query"])
def test_rest_and_bulk_calls_verify_tls_too(tls_emu, column, tmp_path, monkeypatch, cell):
    """The token is already cached (good CA); the data calls then meet the wrong CA."""
    emu, other_ca = tls_emu
    cell.describe(
        "tls", "wrong_ca_data", "Token cached, then REST/Bulk calls see a wrong certificate",
        column, COLUMNS[column], "fails naming TLS and the CA setting, no output file",
    )  # fmt: skip
    use_connection(monkeypatch, connection(emu, ca_bundle=emu.ca_cert_path))
    SalesforceJWTHook().get_conn().auth.token()
    use_connection(monkeypatch, connection(emu, max_retries=0, ca_bundle=other_ca))
    with pytest.raises(TransportError) as caught:
        run_column(column, tmp_path)
    message = str(caught.value)
    assert "TLS verification failed" in message and "ca_bundle" in message, message
    assert files_in(tmp_path) == []
    cell.outcome = "fails (TransportError): TLS verification failed, names ca_bundle"


def test_verification_is_on_by_default(tls_emu, monkeypatch):
    emu, _ = tls_emu
    use_connection(monkeypatch, connection(emu))
    assert SalesforceJWTHook().settings.verify is True
