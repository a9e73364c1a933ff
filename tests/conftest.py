"""Suite-wide set-up: an isolated AIRFLOW_HOME before Airflow is imported, and test keys.

Keys are generated at test time (never committed) and cached for the session, because RSA
generation is the slowest thing most tests would otherwise do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="sfjwt_airflow_home_")
os.environ.setdefault("AIRFLOW_HOME", _HOME)
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault(
    "AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "example_dags")
)

import pytest  # noqa: E402

from airflow_provider_sfjwt.compat import reset_secrets_masker  # noqa: E402
from airflow_provider_sfjwt.salesforce import keys  # noqa: E402
from airflow_provider_sfjwt.salesforce.auth import TOKEN_CACHE  # noqa: E402


class KeyPair:
    """A generated RSA key with its certificate, in the shapes tests need."""

    def __init__(self, bits: int = 2048, days: int = 365, passphrase: str | None = None) -> None:
        self.key = keys.generate_private_key(bits)
        self.passphrase = passphrase
        self.pem = keys.private_key_to_pem(self.key, passphrase).decode()
        self.cert = keys.self_signed_certificate(self.key, "sfjwt-test", days=days)
        self.cert_pem = keys.certificate_to_pem(self.cert).decode()


@pytest.fixture(scope="session")
def keypair() -> KeyPair:
    return KeyPair()


@pytest.fixture(scope="session")
def other_keypair() -> KeyPair:
    return KeyPair()


@pytest.fixture(autouse=True)
def _fresh_token_cache_and_masker(tmp_path_factory, monkeypatch):
    """Each test starts with an empty process-wide token cache and token store (a directory of
    its own, inherited by the processes it starts), so exchange counts are exact.

    Airflow's secrets masker recompiles one regex of every secret ever registered on each new
    one; a long test session registers thousands (a token per exchange), so it is reset too.
    """
    monkeypatch.setenv("SFJWT_TOKEN_CACHE_DIR", str(tmp_path_factory.mktemp("tokens") / "store"))
    TOKEN_CACHE.clear()
    yield
    TOKEN_CACHE.clear()
    reset_secrets_masker()
