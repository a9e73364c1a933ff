"""Fixtures for the emulator's own tests (defined in emu_helpers, shared with the test modules)."""

from __future__ import annotations

from emu_helpers import emu, keys, other_keys, sf  # noqa: F401

from airflow_provider_sfjwt.testing.pytest_plugin import salesforce_emulator  # noqa: F401
