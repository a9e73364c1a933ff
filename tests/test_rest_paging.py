"""REST query pages read ahead: the next page is requested while the caller still works on the
current one, never further ahead; what a page's start says is checked against its end; progress
lines show rows of totalSize."""

from __future__ import annotations

import json
import logging
import time

import pytest

from airflow_provider_sfjwt.salesforce.errors import SalesforceError
from airflow_provider_sfjwt.salesforce.extract import query_to_file
from airflow_provider_sfjwt.salesforce.paging import page_head
from tests.polling import wait_for
from tests.test_client_rest import API, QUERY, make_client


def page_requests(emu) -> int:
    """GETs of query pages received so far (the first page and every locator page)."""
    return sum(n for path, n in emu.stats.paths.items() if path.startswith(QUERY))


def test_next_page_is_requested_while_the_caller_holds_the_current_one(emu):
    emu.generate_accounts(1000)
    pages = make_client(emu).query_pages("SELECT Id FROM Account", batch_size=200)
    first = next(pages)
    assert len(first["records"]) == 200
    # page 2 is on its way although nobody asked for it yet ...
    assert wait_for(lambda: page_requests(emu) == 2)
    time.sleep(0.2)
    assert page_requests(emu) == 2  # ... and page 3 is not: two pages in memory at most
    second = next(pages)
    assert wait_for(lambda: page_requests(emu) == 3)
    ids = [r["Id"] for page in (first, second, *pages) for r in page["records"]]
    assert len(ids) == len(set(ids)) == 1000
    assert page_requests(emu) == 5


def test_stopping_early_fetches_nothing_more(emu):
    emu.generate_accounts(1000)
    pages = make_client(emu).query_pages("SELECT Id FROM Account", batch_size=200)
    next(pages)
    pages.close()
    time.sleep(0.2)
    assert page_requests(emu) <= 2


def test_page_head_is_read_from_the_first_bytes():
    page = b'{"totalSize":5,"done":false,"nextRecordsUrl":"/services/data/v66.0/query/01g-2","records":[{"Id"'
    assert page_head(page) == {
        "totalSize": 5,
        "done": False,
        "nextRecordsUrl": "/services/data/v66.0/query/01g-2",
    }
    assert page_head(b'{"totalSize":5,"done":fal') is None  # records not reached yet
    assert page_head(b'{"records":[],"done":true}') is None  # another key order: read it all
    assert page_head(b'{"totalSize":5,"done":true,"records":[]}') == {"totalSize": 5, "done": True}


def fake_page(emu, body: dict | str, count: int = 10) -> None:
    """Every query page answers ``body`` (the emulator acting as a broken or hostile server)."""
    text = body if isinstance(body, str) else json.dumps(body)
    emu.faults.fail(QUERY, 200, count=count, body=text)


def test_a_repeating_next_records_url_stops_with_an_error(emu):
    loop = f"{API}/query/01gLOOP-2000"
    fake_page(emu, {"totalSize": 9, "done": False, "nextRecordsUrl": loop, "records": []})
    with pytest.raises(SalesforceError, match="same nextRecordsUrl twice"):
        list(make_client(emu).query_pages("SELECT Id FROM Account"))


def test_a_page_whose_start_and_end_disagree_is_refused(emu):
    text = (
        f'{{"totalSize":9,"done":false,"nextRecordsUrl":"{API}/query/01gA-2000",'
        f'"records":[],"nextRecordsUrl":"{API}/query/01gB-2000"}}'
    )
    fake_page(emu, text)
    with pytest.raises(SalesforceError, match="two different next pages"):
        list(make_client(emu).query_pages("SELECT Id FROM Account"))


def test_a_page_that_is_not_json_is_refused(emu):
    fake_page(emu, "<html>proxy error page</html>")
    with pytest.raises(SalesforceError, match="not valid JSON"):
        list(make_client(emu).query_pages("SELECT Id FROM Account"))


def test_extract_logs_rows_of_total_size_with_rate_and_time_left(emu, tmp_path, caplog):
    emu.generate_accounts(5000)
    caplog.set_level(logging.INFO, logger="airflow_provider_sfjwt.salesforce.extract")
    result = query_to_file(make_client(emu), "SELECT Id, Name FROM Account", tmp_path / "a.csv")
    assert result["rows"] == 5000
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("REST query:")]
    assert lines[0].startswith("REST query: 2,000 of 5,000 rows (40 %), ")
    assert "rows/s" in lines[0] and "left" in lines[0]
    assert lines[-1].startswith("REST query: 5,000 of 5,000 rows (100 %), ")
    assert "left" not in lines[-1]
