"""Suite-wide set-up: an isolated AIRFLOW_HOME before Airflow is imported (removed when the
session ends, unless the caller chose one), test keys and the one emulator fixture.

Keys are generated at test time (never committed) and cached for the session, because RSA
generation is the slowest thing most tests would otherwise do. ``keypair`` is the key the
emulator's app trusts (the emulator package's shared pair), so a test can sign with it directly.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def _remove_home(path: str, owner: int) -> None:
    """Remove the session's AIRFLOW_HOME, in the process that made it only: a child forked by a
    test (Airflow's task runner forks) may run exit handlers while the session still needs it."""
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="sfjwt_airflow_home_")
    atexit.register(_remove_home, os.environ["AIRFLOW_HOME"], os.getpid())
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault(
    "AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "example_dags")
)

import pytest  # noqa: E402

from airflow_provider_sfjwt.compat import reset_secrets_masker  # noqa: E402
from airflow_provider_sfjwt.salesforce import keys  # noqa: E402
from airflow_provider_sfjwt.salesforce.auth import TOKEN_CACHE  # noqa: E402
from airflow_provider_sfjwt.testing import EmulatorHandle, SalesforceEmulator  # noqa: E402
from airflow_provider_sfjwt.testing.keys import new_key_pair, shared_key_pair  # noqa: E402


class KeyPair:
    """An RSA key with its certificate, in the shapes tests need (objects and PEM)."""

    def __init__(self, private_key_pem: str, certificate_pem: str) -> None:
        self.key = keys.load_private_key(private_key_pem, None)
        self.pem = private_key_pem
        self.cert = keys.load_certificate(certificate_pem)
        self.cert_pem = certificate_pem


@pytest.fixture(scope="session")
def keypair() -> KeyPair:
    """The key the ``emu`` fixture's Connected App trusts."""
    shared = shared_key_pair()
    return KeyPair(shared.private_key_pem, shared.certificate_pem)


@pytest.fixture(scope="session")
def other_keypair() -> KeyPair:
    """A key no app trusts."""
    other = new_key_pair("sfjwt-other")
    return KeyPair(other.private_key_pem, other.certificate_pem)


@pytest.fixture
def emu(salesforce_emulator: EmulatorHandle) -> SalesforceEmulator:
    """The started emulator of the ``salesforce_emulator`` fixture (the suite's one emulator
    fixture): a Connected App trusting ``keypair`` with its approved user, reached through the
    ``salesforce_jwt_default`` connection."""
    return salesforce_emulator.emulator


@pytest.fixture(autouse=True)
def _fresh_token_cache_and_masker(tmp_path_factory, monkeypatch):
    """Each test starts with an empty process-wide token cache and token store (a directory of
    its own, inherited by the processes it starts), so exchange counts are exact.

    Airflow's secrets masker recompiles one regex of every secret ever registered on each new
    one; a long test session registers thousands (a token per exchange), so it is reset too.
    """
    from airflow_provider_sfjwt.hooks.salesforce_jwt import forget_registered_secrets

    monkeypatch.setenv("SFJWT_TOKEN_CACHE_DIR", str(tmp_path_factory.mktemp("tokens") / "store"))
    TOKEN_CACHE.clear()
    yield
    TOKEN_CACHE.clear()
    reset_secrets_masker()
    forget_registered_secrets()


OTHER_USER = "sfjwt-other"


@pytest.fixture(scope="session")
def other_user() -> tuple[int, int]:
    """(uid, gid) of a real second local user, for what another user of the machine can do.

    Created with ``useradd`` (no home, no login shell) the first time; needs root, so the tests
    that use it are skipped, saying so, when the suite does not run as root.
    """
    import pwd
    import shutil
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("needs root to create a second local user (useradd); not running as root")
    try:
        entry = pwd.getpwnam(OTHER_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            pytest.skip("useradd is not installed: cannot create a second local user")
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(OTHER_USER)
    return entry.pw_uid, entry.pw_gid


def as_user(user: tuple[int, int], code: str, *args: str) -> None:
    """Run ``code`` (Python) as ``user`` in a process of its own: what that user can do."""
    import shutil
    import subprocess

    uid, gid = user
    # The system interpreter: the test's own may sit under a directory only root can enter.
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"
    done = subprocess.run(
        [python, "-c", code, *args],
        user=uid,
        group=gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-2000:]
