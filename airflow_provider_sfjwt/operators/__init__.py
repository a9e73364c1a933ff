"""Operators: thin Airflow adapters over the core in ``airflow_provider_sfjwt.salesforce``."""

from airflow_provider_sfjwt.operators.bulk import (
    SalesforceBulkIngestOperator,
    SalesforceBulkQueryOperator,
)
from airflow_provider_sfjwt.operators.collections import SalesforceCollectionsOperator
from airflow_provider_sfjwt.operators.health import SalesforceCredentialHealthOperator
from airflow_provider_sfjwt.operators.query import SalesforceQueryOperator
from airflow_provider_sfjwt.operators.replicate import (
    SalesforceReplicateObjectOperator,
    salesforce_replication_group,
)
from airflow_provider_sfjwt.operators.rest import SalesforceRestOperator

__all__ = [
    "SalesforceBulkIngestOperator",
    "SalesforceBulkQueryOperator",
    "SalesforceCollectionsOperator",
    "SalesforceCredentialHealthOperator",
    "SalesforceQueryOperator",
    "SalesforceReplicateObjectOperator",
    "SalesforceRestOperator",
    "salesforce_replication_group",
]
