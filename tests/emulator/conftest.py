"""Fixtures for the emulator's own tests, defined in emu_helpers (requests sessions) and
fidelity (simple-salesforce and the provider's hook)."""

from __future__ import annotations

from emu_helpers import keys, other_keys, sf  # noqa: F401
from fidelity import hook, ssf  # noqa: F401
