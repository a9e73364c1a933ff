"""Access tokens shared by the processes of one machine, so a DAG of many tasks logs in once.

Airflow 3 runs every task instance in a process of its own, so a cache in memory saves nothing
between tasks: each would log in again, and a busy worker can reach Salesforce's limit of 3,600
logins per user per hour (``LOGIN_RATE_EXCEEDED``). The store keeps one file per connection
identity (login URL, consumer key, user, audience) in a directory only this OS user can read.

The file is encrypted (AES-GCM) with a key derived (HKDF-SHA256) from the connection's private
key, and bound to the connection identity as associated data: reading a token out of it needs
the private key, which can mint a token anyway, so the file adds nothing an attacker lacks. A
rotated key, a foreign or damaged file, or a token older than ``max_age`` is a miss: a fresh
exchange replaces it. A lock file makes processes that start together share one exchange.

Every failure here (read-only home, odd permissions, no ``fcntl``) only costs the sharing; the
exchange itself then proceeds as without the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from .auth import AccessToken
    from .settings import ConnectionSettings

log = logging.getLogger(__name__)

DIR_ENV = "SFJWT_TOKEN_CACHE_DIR"
MAX_AGE = 3600.0
"""Seconds a stored token is reused: half of Salesforce's default 2-hour session timeout. An org
with a shorter timeout costs one 401 and a fresh exchange, as for any revoked session."""
_SUFFIX = ".token"
_NONCE_BYTES = 12


def default_directory() -> Path:
    """``$SFJWT_TOKEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/sfjwt/tokens`` (``~/.cache``)."""
    configured = os.environ.get(DIR_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sfjwt" / "tokens"


def identity(settings: ConnectionSettings) -> str:
    """What a stored token belongs to (also the associated data of its encryption)."""
    return "\n".join(
        (settings.login_url, settings.consumer_key, settings.username, settings.audience or "")
    )


class TokenStore:
    """One directory of encrypted token files; see the module docstring."""

    def __init__(self, directory: Path, max_age: float = MAX_AGE) -> None:
        self.directory = Path(directory)
        self.max_age = max_age
        self._usable: bool | None = None

    # --- the directory ----------------------------------------------------------------------

    def usable(self) -> bool:
        """Create the directory (mode 0700) once; refuse one that others can read or enter."""
        if self._usable is None:
            self._usable = self._prepare()
        return self._usable

    def _prepare(self) -> bool:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.directory.stat()
        except OSError as exc:
            log.warning(
                "Salesforce tokens are not shared between tasks: %s cannot be created (%s). "
                "Set %s to a writable directory, or token_cache='process' in the connection.",
                self.directory,
                exc.strerror or exc,
                DIR_ENV,
            )
            return False
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            log.warning(
                "Salesforce tokens are not shared between tasks: %s is open to other users "
                "(mode %o, owner %d). Run `chmod 700 %s`, or set %s to a private directory.",
                self.directory,
                stat.S_IMODE(info.st_mode),
                info.st_uid,
                self.directory,
                DIR_ENV,
            )
            return False
        return True

    def _path(self, settings: ConnectionSettings) -> Path:
        digest = hashlib.sha256(identity(settings).encode()).hexdigest()[:32]
        return self.directory / (digest + _SUFFIX)

    # --- encryption -------------------------------------------------------------------------

    @staticmethod
    def _cipher(settings: ConnectionSettings) -> AESGCM:
        der = settings.load_private_key().private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sfjwt", info=b"token-store-v1")
        return AESGCM(hkdf.derive(der))

    # --- reading and writing ----------------------------------------------------------------

    def load(self, settings: ConnectionSettings) -> AccessToken | None:
        """The stored token, if there is a readable one younger than ``max_age``."""
        from .auth import AccessToken

        if not self.usable():
            return None
        try:
            blob = self._path(settings).read_bytes()
            nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
            plain = self._cipher(settings).decrypt(nonce, sealed, identity(settings).encode())
            token = AccessToken(**json.loads(plain))
        except (OSError, ValueError, TypeError, InvalidTag):
            return None  # none yet, another key's, damaged: a miss
        if not 0 <= time.time() - token.obtained_at < self.max_age:
            return None
        return token

    def save(self, settings: ConnectionSettings, token: AccessToken) -> None:
        """Write the token atomically (mode 0600); prune files past ``max_age`` on the way."""
        if not self.usable():
            return
        target = self._path(settings)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plain = json.dumps(asdict(token)).encode()
        blob = nonce + self._cipher(settings).encrypt(nonce, plain, identity(settings).encode())
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(temp, target)
        except OSError as exc:
            log.warning("Could not store the Salesforce token in %s: %s", self.directory, exc)
            with contextlib.suppress(OSError):
                temp.unlink()
            return
        self._prune(keep=target)

    def _prune(self, keep: Path) -> None:
        cutoff = time.time() - self.max_age
        for path in self.directory.glob("*" + _SUFFIX):
            with contextlib.suppress(OSError):
                if path != keep and path.stat().st_mtime < cutoff:
                    path.unlink()
                    path.with_name(path.name + ".lock").unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(self, settings: ConnectionSettings) -> Iterator[None]:
        """Hold this connection's lock file, so one process exchanges while the others wait."""
        try:
            import fcntl
        except ImportError:  # not POSIX: sharing still works, without the single flight
            yield
            return
        if not self.usable():
            yield
            return
        try:
            fd = os.open(
                self._path(settings).with_suffix(".token.lock"), os.O_RDWR | os.O_CREAT, 0o600
            )
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def clear(self) -> None:
        """Delete every stored token in the directory (``TokenCache.clear``)."""
        for path in self.directory.glob("*" + _SUFFIX):
            with contextlib.suppress(OSError):
                path.unlink()
