"""Fixtures for the emulator's own tests (defined in emu_helpers, shared with the test modules)."""

from __future__ import annotations

from emu_helpers import keys, other_keys, sf  # noqa: F401
