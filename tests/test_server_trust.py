"""What a broken or hostile server hands back is checked before it is used.

The emulator plays the hostile server (its fault hooks: an arbitrary token answer, redirects,
oversized bodies, repeating cursors, a wrong record count). "Another host" is a second
emulator on another loopback address (127.0.0.2) while the Login URL stays on 127.0.0.1: it
records every request that reaches it, so a test can show that nothing did.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_sfjwt import DEFAULT_API_VERSION
from airflow_provider_sfjwt.salesforce.auth import TokenCache
from airflow_provider_sfjwt.salesforce.bulk import query_to_file as bulk_query_to_file
from airflow_provider_sfjwt.salesforce.client import SalesforceClient
from airflow_provider_sfjwt.salesforce.errors import (
    ApiError,
    BodyTooLargeError,
    ConfigurationError,
    RedirectRefusedError,
    UnexpectedResponseError,
    UntrustedAnswerError,
)
from airflow_provider_sfjwt.salesforce.settings import parse_connection
from airflow_provider_sfjwt.testing import SalesforceEmulator


@pytest.fixture
def other_host() -> Iterator[SalesforceEmulator]:
    """An emulator on 127.0.0.2: the "other host" a hostile answer points at."""
    with SalesforceEmulator(host="127.0.0.2") as emu:
        yield emu


def client_for(conn: dict[str, Any], cache: TokenCache | None = None, **extra: Any):
    settings = parse_connection(
        host=conn["host"],
        login=conn["login"],
        password=None,
        extra={**conn["extra"], "max_retries": 0, **extra},
    )
    return SalesforceClient(settings, cache=cache or TokenCache())


def nothing_reached(other: SalesforceEmulator) -> None:
    assert other.stats.to_dict()["requests"] == {}, other.stats.to_dict()["requests"]


# --- 1. instance_url --------------------------------------------------------------------------


def hostile_instance_urls(emu: SalesforceEmulator, other: SalesforceEmulator) -> list[str]:
    return [
        other.url,  # http://127.0.0.2:port: another host, over plain http
        "x",
        emu.url.replace("http://", "http://user:secret@"),
        emu.url + "/?next=1",
        emu.url + "#fragment",
        "ftp" + emu.url[4:],
        "javascript:alert(1)",
    ]


def test_an_instance_url_outside_the_rules_never_gets_the_token(salesforce_emulator, other_host):
    emu = salesforce_emulator.emulator
    for instance_url in hostile_instance_urls(emu, other_host):
        emu.faults.token_instance_url(instance_url, count=1)
        client = client_for(salesforce_emulator.conn)
        with pytest.raises(UntrustedAnswerError) as caught:
            client.limits()
        message = str(caught.value)
        assert repr(instance_url) in message and "instance_domains" in message, message
    nothing_reached(other_host)
    assert emu.stats.api_calls == 0


def test_another_loopback_host_is_named_with_the_setting(salesforce_emulator, other_host):
    salesforce_emulator.emulator.faults.token_instance_url(other_host.url, count=1)
    with pytest.raises(UntrustedAnswerError, match="127.0.0.2, which is neither a Salesforce"):
        client_for(salesforce_emulator.conn).limits()
    nothing_reached(other_host)


def test_instance_domains_allows_a_private_deployment(salesforce_emulator):
    """``localhost`` is another host name for the emulator: allowed only when listed."""
    other_name = salesforce_emulator.url.replace("127.0.0.1", "localhost")
    salesforce_emulator.emulator.faults.token_instance_url(other_name)
    conn = salesforce_emulator.conn
    with pytest.raises(UntrustedAnswerError):
        client_for(conn).limits()
    client = client_for(conn, instance_domains=["*.localhost", "localhost"])
    assert client.limits()
    assert client.instance_url == other_name
    with pytest.raises(ConfigurationError, match="instance_domains"):
        client_for(conn, instance_domains=["not a domain"])


def test_https_login_never_accepts_an_http_instance():
    from airflow_provider_sfjwt.testing.keys import shared_key_pair

    keys = shared_key_pair()
    with SalesforceEmulator(tls=True) as emu:
        emu.add_app("3MVG9tls", keys.certificate_pem, ["tls@example.com"])
        emu.faults.token_instance_url(emu.url.replace("https://", "http://"))
        conn = emu.connection(private_key_pem=keys.private_key_pem, ca_bundle=emu.ca_cert_path)
        with pytest.raises(UntrustedAnswerError, match="which is not https"):
            client_for(conn).limits()
        assert emu.stats.api_calls == 0


def test_a_stored_token_is_checked_again_against_the_connection(salesforce_emulator):
    """A token stored while ``instance_domains`` allowed its host is not reused without it."""
    emu, conn = salesforce_emulator.emulator, salesforce_emulator.conn
    other_name = emu.url.replace("127.0.0.1", "localhost")
    emu.faults.token_instance_url(other_name, count=1)
    client_for(conn, TokenCache(shared=True), instance_domains="localhost").limits()
    client = client_for(conn, TokenCache(shared=True))
    assert client.instance_url == emu.url
    assert emu.stats.token_exchanges == 2


# --- 2. redirects ------------------------------------------------------------------------------

TOKEN_PATH = "/services/oauth2/token"


def test_a_redirected_token_request_never_sends_the_assertion_elsewhere(
    salesforce_emulator, other_host
):
    emu = salesforce_emulator.emulator
    for status in (301, 302, 303, 307, 308):
        emu.faults.redirect(TOKEN_PATH, other_host.url + TOKEN_PATH, status=status)
        with pytest.raises(RedirectRefusedError) as caught:
            client_for(salesforce_emulator.conn).limits()
        message = str(caught.value)
        assert f"HTTP {status} pointing at {other_host.url}{TOKEN_PATH}" in message, message
    nothing_reached(other_host)
    assert emu.stats.token_exchanges == 0 and emu.stats.api_calls == 0


def test_a_redirected_query_or_collections_post_goes_nowhere(salesforce_emulator, other_host):
    emu = salesforce_emulator.emulator
    emu.generate_accounts(3)
    client = client_for(salesforce_emulator.conn)
    emu.faults.redirect(f"{DATA}/query", other_host.url + f"{DATA}/query", status=302)
    with pytest.raises(RedirectRefusedError, match="HTTP 302 pointing at http://127.0.0.2"):
        list(client.query("SELECT Id FROM Account"))
    emu.faults.redirect(
        f"{DATA}/composite/sobjects", other_host.url + "/steal", status=307, method="POST"
    )
    with pytest.raises(RedirectRefusedError, match="HTTP 307 pointing at http://127.0.0.2"):
        list(client.collections("insert", [{"Name": "Acme"}], sobject="Account"))
    nothing_reached(other_host)
    assert len(list(client.query("SELECT Id FROM Account"))) == 3  # nothing was created


# --- 4. size caps ------------------------------------------------------------------------------


def test_an_oversized_token_answer_is_refused_unread(salesforce_emulator):
    """A token answer over 1 MB (here 300 MB, streamed by the emulator) is refused early."""
    emu = salesforce_emulator.emulator
    emu.faults.huge_body(
        TOKEN_PATH, 300 << 20, start=b'{"access_token":"', end=b'"}', method="POST"
    )
    with pytest.raises(BodyTooLargeError, match="over the 1,048,576-byte limit"):
        client_for(salesforce_emulator.conn).limits()
    served = emu.stats.to_dict().get("bytes_sent")
    assert served is None or served < 64 << 20, served


def test_an_oversized_api_answer_or_query_page_is_refused(salesforce_emulator):
    from airflow_provider_sfjwt.salesforce import guard

    emu = salesforce_emulator.emulator
    emu.generate_accounts(3)
    client = client_for(salesforce_emulator.conn)
    client.limits()
    size = guard.JSON_BODY_BYTES + (1 << 20)
    emu.faults.huge_body(f"{DATA}/limits", size, start=b'{"x":"', end=b'"}')
    with pytest.raises(BodyTooLargeError, match="limits.* over the 67,108,864-byte limit"):
        client.limits()
    emu.faults.huge_body(
        f"{DATA}/query", size, start=b'{"totalSize":1,"done":true,"records":[', fill=b"{},"
    )
    with pytest.raises(BodyTooLargeError, match="query page .* over the 67,108,864-byte limit"):
        list(client.query("SELECT Id FROM Account"))
    assert len(list(client.query("SELECT Id FROM Account"))) == 3  # the client still works


def test_a_huge_error_message_is_cut_in_the_error(salesforce_emulator):
    """An error body under the ceiling but with a 5 MB message quotes about 2 KB of it."""
    emu = salesforce_emulator.emulator
    client = client_for(salesforce_emulator.conn)
    client.limits()
    emu.faults.huge_body(
        f"{DATA}/limits",
        5 << 20,
        status=400,
        start=b'[{"errorCode":"MALFORMED_QUERY","message":"',
        end=b'"}]',
    )
    with pytest.raises(ApiError) as caught:
        client.limits()
    message = str(caught.value)
    assert "MALFORMED_QUERY" in message and "more characters not shown" in message
    assert len(message) < 4000, len(message)


# --- 5 and 6: Bulk CSV bodies, cursors and counts ----------------------------------------------

DATA = f"/services/data/v{DEFAULT_API_VERSION}"
FAST = {"poll_interval": 0.01, "timeout": 30}


def nothing_written(tmp_path: Path) -> None:
    """No output, not even a temporary part file: a failed task leaves nothing that looks done."""
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def bulk_query(salesforce_emulator, tmp_path: Path, fmt: str = "csv", on_job=None, **kw: Any):
    return bulk_query_to_file(
        client_for(salesforce_emulator.conn),
        "SELECT Id, Name, Description FROM Account",
        tmp_path / f"out.{fmt}",
        fmt,
        on_job=on_job,
        **FAST,
        **kw,
    )


def on_results(emu: SalesforceEmulator, install):
    """Install a fault on a query job's results the moment the job exists."""
    return lambda job_id: install(f"{DATA}/jobs/query/{job_id}/results")


def test_a_csv_header_without_a_line_end_is_refused_and_nothing_written(
    salesforce_emulator, tmp_path
):
    emu = salesforce_emulator.emulator
    emu.generate_accounts(5)
    install = on_results(
        emu, lambda p: emu.faults.huge_body(p, 3 << 20, fill=b"Id,", content_type="text/csv")
    )
    with pytest.raises(UnexpectedResponseError, match="no line end in its first"):
        bulk_query(salesforce_emulator, tmp_path, on_job=install)
    nothing_written(tmp_path)


def test_a_header_that_cannot_be_parsed_fails_before_the_file_is_published(
    salesforce_emulator, tmp_path
):
    emu = salesforce_emulator.emulator
    emu.generate_accounts(5)
    install = on_results(
        emu,
        lambda p: emu.faults.huge_body(
            p, 7 + 4 * 10, start=b'"\xff\xfeId"\n', fill=b'"x"\n', content_type="text/csv"
        ),
    )
    with pytest.raises(UnicodeDecodeError):
        bulk_query(salesforce_emulator, tmp_path, on_job=install)
    nothing_written(tmp_path)


def test_a_repeating_bulk_locator_stops_with_a_clear_error(salesforce_emulator, tmp_path):
    emu = salesforce_emulator.emulator
    emu.generate_accounts(30)
    emu.faults.repeat_cursors()
    with pytest.raises(UnexpectedResponseError, match="answered the locator .* again"):
        bulk_query(salesforce_emulator, tmp_path, max_records=10)
    nothing_written(tmp_path)
    served = emu.stats.to_dict()["records_served"]
    assert served <= 30, served  # stopped at the first repeat, not after thousands of chunks


def test_a_repeating_next_records_url_stops_with_a_clear_error(salesforce_emulator, tmp_path):
    from airflow_provider_sfjwt.salesforce.extract import query_to_file

    emu = salesforce_emulator.emulator
    emu.generate_accounts(5000)
    emu.faults.repeat_cursors()
    client = client_for(salesforce_emulator.conn)
    with pytest.raises(UnexpectedResponseError, match="next page a second time, after 2 pages"):
        query_to_file(client, "SELECT Id FROM Account", tmp_path / "out.csv")
    nothing_written(tmp_path)


@pytest.mark.parametrize("parallel_downloads", [1, 5])
@pytest.mark.parametrize(
    ("announced", "words"),
    [(1, "line ends"), (10**6, "too few for that many rows")],
)
def test_a_csv_count_that_grossly_disagrees_is_refused(
    salesforce_emulator, tmp_path, announced, words, parallel_downloads
):
    """Checked the same whether the chunks are read one after the other (counted as they are
    read) or side by side (counted in their download threads)."""
    emu = salesforce_emulator.emulator
    emu.generate_accounts(3000)
    emu.faults.wrong_record_count(announced)
    with pytest.raises(UnexpectedResponseError, match=words):
        bulk_query(salesforce_emulator, tmp_path, parallel_downloads=parallel_downloads)
    nothing_written(tmp_path)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_parsed_count_that_disagrees_is_refused_before_publishing(
    salesforce_emulator, tmp_path, fmt
):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    emu = salesforce_emulator.emulator
    emu.generate_accounts(20)
    emu.faults.wrong_record_count(21)
    with pytest.raises(UnexpectedResponseError, match="announced 21 records .* but held 20"):
        bulk_query(salesforce_emulator, tmp_path, fmt, field_types={})
    nothing_written(tmp_path)
