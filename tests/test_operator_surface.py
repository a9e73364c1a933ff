"""What every operator and the sensor share: one name per idea, and a cached hook.

Airflow's own providers give each operator a ``hook`` built once per task (``HttpOperator``,
``AwsBaseOperator``); these tests hold the provider's operators to the same shape and to one
argument name per idea, so a DAG author who learnt one operator can guess the others.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from airflow_provider_sfjwt.hooks.salesforce_jwt import SalesforceJWTHook
from airflow_provider_sfjwt.operators import (
    SalesforceBulkIngestOperator,
    SalesforceBulkQueryOperator,
    SalesforceCollectionsOperator,
    SalesforceCredentialHealthOperator,
    SalesforceQueryOperator,
    SalesforceReplicateObjectOperator,
    SalesforceRestOperator,
)
from airflow_provider_sfjwt.sensors import SalesforceSoqlSensor

SOQL = "SELECT Id FROM Account"
TASKS: list[tuple[type, dict[str, Any]]] = [
    (SalesforceQueryOperator, {"soql": SOQL, "output_path": "/tmp/a.csv"}),
    (SalesforceBulkQueryOperator, {"soql": SOQL, "output_path": "/tmp/a.csv"}),
    (
        SalesforceBulkIngestOperator,
        {"sobject": "Account", "operation": "insert", "input_path": "/tmp/a.csv"},
    ),
    (
        SalesforceCollectionsOperator,
        {"operation": "insert", "sobject": "Account", "records": [{"Name": "A"}]},
    ),
    (SalesforceRestOperator, {"endpoint": "limits"}),
    (SalesforceReplicateObjectOperator, {"sobject": "Account", "output_path": "/tmp/lake/A"}),
    (SalesforceCredentialHealthOperator, {}),
    (SalesforceSoqlSensor, {"soql": "SELECT COUNT() FROM Account"}),
]
IDS = [cls.__name__ for cls, _ in TASKS]
FILE_ARGUMENTS = {"input_path", "output_path", "failed_records_path", "results_dir"}


@pytest.mark.parametrize(("cls", "kwargs"), TASKS, ids=IDS)
def test_every_task_has_one_cached_hook_for_its_connection(cls, kwargs):
    op = cls(task_id="t", salesforce_conn_id="sf_before_rendering", **kwargs)
    op.salesforce_conn_id = "sf_rendered"  # what template rendering does before execute
    hook = op.hook
    assert isinstance(hook, SalesforceJWTHook)
    assert hook.salesforce_conn_id == "sf_rendered"
    assert op.hook is hook, "the hook is built once per task and then reused"


def arguments(cls: type) -> set[str]:
    """The keyword arguments the provider's own classes in ``cls``'s MRO accept."""
    return {
        name
        for klass in cls.__mro__
        if klass.__module__.startswith("airflow_provider_sfjwt.") and "__init__" in vars(klass)
        for name in inspect.signature(klass.__init__).parameters
    } - {"self", "kwargs"}


@pytest.mark.parametrize(("cls", "kwargs"), TASKS, ids=IDS)
def test_one_argument_name_per_idea(cls, kwargs):
    params = arguments(cls)
    assert "path" not in params, "files are input_path / output_path, a REST resource endpoint"
    assert {p for p in params if "path" in p or p.endswith("_dir")} <= FILE_ARGUMENTS
    assert "salesforce_conn_id" in params
    if FILE_ARGUMENTS & params:
        assert "storage_conn_id" in params, "object-storage files need their connection"


def test_rest_resource_is_an_endpoint():
    assert (
        "endpoint" in arguments(SalesforceRestOperator)
        and "endpoint" in SalesforceRestOperator.template_fields
    )


LOADS: list[tuple[type, dict[str, Any]]] = [
    (
        SalesforceBulkIngestOperator,
        {"sobject": "Account", "operation": "insert", "input_path": "/tmp/a.csv"},
    ),
    (
        SalesforceCollectionsOperator,
        {"operation": "insert", "sobject": "Account", "records": [{"Name": "A"}]},
    ),
]


@pytest.mark.parametrize(("cls", "kwargs"), LOADS, ids=[c.__name__ for c, _ in LOADS])
def test_max_failed_records_is_a_count_or_a_percentage_on_every_load(cls, kwargs):
    for allowed in (0, 10, "10", "5%", "{{ params.limit }}"):
        assert cls(task_id="t", max_failed_records=allowed, **kwargs).max_failed_records == allowed
    assert "max_failed_records" in cls.template_fields
    for bad in (-1, "abc%", "150%"):  # refused when the DAG is parsed
        with pytest.raises(ValueError, match="max_failed_records must be a count"):
            cls(task_id="t", max_failed_records=bad, **kwargs)
