"""RSA key pair and certificate for tests, cached per process.

Generating a 2048-bit RSA key takes 50-100 ms; a test suite with hundreds of emulator fixtures
would spend seconds on it, so one pair per process is reused. The keys are made by the provider's
own helpers (one implementation of PKCS#8 / certificate building for the whole project), so the
emulator tests the same kind of key and certificate a user makes with ``sfjwt keygen``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..salesforce import keys as core


@dataclass(frozen=True)
class KeyPair:
    private_key_pem: str
    certificate_pem: str


_lock = threading.Lock()
_cached: KeyPair | None = None


def new_key_pair(common_name: str = "sfjwt-emulator") -> KeyPair:
    """A fresh key and self-signed certificate (not cached)."""
    key = core.generate_private_key(2048)
    cert = core.self_signed_certificate(key, common_name)
    return KeyPair(core.private_key_to_pem(key).decode(), core.certificate_to_pem(cert).decode())


def shared_key_pair() -> KeyPair:
    """The process-wide cached key pair used by the pytest fixture."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = new_key_pair()
        return _cached
