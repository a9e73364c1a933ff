"""A Salesforce emulator for tests, benchmarks and offline DAG development.

``SalesforceEmulator`` serves the token endpoint (JWT bearer), REST (query, sObjects, sObject
Collections, limits), Bulk API 2.0 and Apex REST on 127.0.0.1, with fault injection and counters.
No Airflow import here: the emulator is usable from any Python test suite.
"""

from __future__ import annotations

from .emulator import SalesforceEmulator, Stats
from .keys import KeyPair, new_key_pair, shared_key_pair
from .transport import Request

__all__ = ["KeyPair", "Request", "SalesforceEmulator", "Stats", "new_key_pair", "shared_key_pair"]
