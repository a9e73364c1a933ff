"""RSA key pair and certificate for tests, cached per process.

Generating a 2048-bit RSA key takes 50-100 ms; a test suite with hundreds of emulator fixtures
would spend seconds on it, so one pair per process is reused. The provider's own key helpers are
used when present (one implementation of PKCS#8 / certificate building for the whole project).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyPair:
    private_key_pem: str
    certificate_pem: str


_lock = threading.Lock()
_cached: KeyPair | None = None


def _fallback(common_name: str) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyPair(pem.decode(), cert.public_bytes(serialization.Encoding.PEM).decode())


def new_key_pair(common_name: str = "sfjwt-emulator") -> KeyPair:
    """A fresh key and self-signed certificate (not cached)."""
    try:
        from ..salesforce import keys as core
    except ImportError:  # pragma: no cover - the core helpers are not importable
        return _fallback(common_name)
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
