"""Whole-number settings are refused the same way wherever they are given.

An operator refuses a bad size, retry count or parallelism when the DAG is parsed (before any
task runs, so no Salesforce API request is spent); a core function refuses it before its first
request. Every refusal is an ``InvalidInputError`` (a ``ValueError``) naming the setting, its
allowed range and what the limit means.
"""

from __future__ import annotations

import pytest

from airflow_provider_sfjwt.operators import (
    SalesforceBulkIngestOperator,
    SalesforceBulkQueryOperator,
    SalesforceRestOperator,
)
from airflow_provider_sfjwt.salesforce import bulk, rest_call
from airflow_provider_sfjwt.salesforce.bounds import whole_number
from airflow_provider_sfjwt.salesforce.errors import InvalidInputError
from airflow_provider_sfjwt.salesforce.guard import JSON_BODY_BYTES
from tests.test_client_rest import make_client


def test_whole_number_names_the_range_and_the_meaning():
    assert whole_number("n", 3, 0) == 3
    assert whole_number("n", 20, 1, 20) == 20
    with pytest.raises(InvalidInputError, match=r"^n must be 0 or more \(0: never\), not -1$"):
        whole_number("n", -1, 0, meaning="0: never")
    with pytest.raises(InvalidInputError, match=r"^n must be from 1 to 20, not 21$"):
        whole_number("n", 21, 1, 20)
    assert whole_number("n", 1e6, 0) == 1_000_000 and type(whole_number("n", 2.0, 0)) is int
    for not_a_number in (True, 2.5, "3", None, float("nan")):
        with pytest.raises(InvalidInputError, match="n must be a whole number"):
            whole_number("n", not_a_number, 0)


BAD_OPERATOR_SETTINGS = [
    (
        SalesforceBulkIngestOperator,
        {"max_upload_bytes": 200 * 1024 * 1024},
        r"max_upload_bytes must be from 1 to 104857600",
    ),
    (SalesforceBulkIngestOperator, {"transient_retries": -1}, r"0 or more \(0: never send"),
    (SalesforceRestOperator, {"max_inline_bytes": -1}, "max_inline_bytes must be from 0 to"),
    (SalesforceBulkQueryOperator, {"parallel_downloads": True}, "must be a whole number"),
]
REQUIRED = {
    SalesforceBulkIngestOperator: {"sobject": "Account", "operation": "insert", "input_path": "a"},
    SalesforceRestOperator: {"endpoint": "limits"},
    SalesforceBulkQueryOperator: {"soql": "SELECT Id FROM Account", "output_path": "q.csv"},
}


@pytest.mark.parametrize(("operator", "bad", "says"), BAD_OPERATOR_SETTINGS)
def test_operators_refuse_bad_settings_when_the_dag_is_parsed(operator, bad, says):
    with pytest.raises(InvalidInputError, match=says):
        operator(task_id="t", **REQUIRED[operator], **bad)


def test_the_largest_inline_answer_is_accepted():
    ok = SalesforceRestOperator(task_id="ok", endpoint="limits", max_inline_bytes=JSON_BODY_BYTES)
    assert ok.max_inline_bytes == JSON_BODY_BYTES


def test_core_functions_refuse_before_any_request(emu, tmp_path):
    client = make_client(emu)
    calls = emu.stats.api_calls
    with pytest.raises(InvalidInputError, match="max_inline_bytes"):
        rest_call.call(client, "GET", "limits", max_inline_bytes=JSON_BODY_BYTES + 1)
    spec = bulk.IngestSpec("Account", "insert")
    source = tmp_path / "a.csv"
    source.write_text("Name\nAcme\n")
    with pytest.raises(InvalidInputError, match="max_upload_bytes"):
        bulk.start_ingest(bulk.BulkJobs(client), spec, source, max_upload_bytes=0)
    assert emu.stats.api_calls == calls
