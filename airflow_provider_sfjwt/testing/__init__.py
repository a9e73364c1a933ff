"""A Salesforce emulator for tests, benchmarks and offline DAG development.

``SalesforceEmulator`` serves the token endpoint (JWT bearer), REST (query, sObjects, sObject
Collections, limits), Bulk API 2.0 and Apex REST on 127.0.0.1, with fault injection and counters.
No Airflow import here: the emulator is usable from any Python test suite.

The names below are imported on first use: the pytest plugin lives in this package and is loaded
by every pytest run, which should not pay for the emulator's imports unless a test uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .emulator import SalesforceEmulator, Stats
    from .keys import KeyPair, new_key_pair, shared_key_pair
    from .transport import Request
    from .wiring import EmulatorHandle

_EXPORTS = {
    "EmulatorHandle": ".wiring",
    "KeyPair": ".keys",
    "Request": ".transport",
    "SalesforceEmulator": ".emulator",
    "Stats": ".emulator",
    "new_key_pair": ".keys",
    "shared_key_pair": ".keys",
}

__all__ = [
    "EmulatorHandle",
    "KeyPair",
    "Request",
    "SalesforceEmulator",
    "Stats",
    "new_key_pair",
    "shared_key_pair",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
