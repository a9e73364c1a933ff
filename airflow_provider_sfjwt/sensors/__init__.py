"""Sensors: thin Airflow adapters over the core in ``airflow_provider_sfjwt.salesforce``."""

from airflow_provider_sfjwt.sensors.soql import SalesforceSoqlSensor

__all__ = ["SalesforceSoqlSensor"]
