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

On a shared machine the directory is not trusted by its name. Each use walks the path from
``/`` one directory at a time (``openat`` with ``O_NOFOLLOW``), the way ssh's StrictModes checks
``~/.ssh``: every directory on the way must belong to root or to this user and must not be
writable by others (a sticky directory such as ``/tmp`` is fine: nobody else can rename what
is ours in it); a symlink on the way is followed only when it sits in such a directory. The
store directory itself must be this user's with mode 0700. Every file operation is then
relative to that open directory (``O_NOFOLLOW | O_NONBLOCK``, and ``fstat``: a regular file of
this user, of sane size), so nobody can swap the directory or plant a link or a FIFO between
the check and the use. The lock is taken with a deadline: a process that holds it too long
costs the others one private exchange each, never a hang.

Every failure here (read-only home, odd owners or modes, a stuck lock, no POSIX ``openat``)
only costs the sharing, with one warning that says what to fix; the exchange itself proceeds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import UnsafeStoreError
from .safe_write import write_file

if TYPE_CHECKING:
    from .auth import AccessToken
    from .settings import ConnectionSettings

log = logging.getLogger(__name__)

DIR_ENV = "SFJWT_TOKEN_CACHE_DIR"
MAX_AGE = 3600.0
"""Seconds a stored token is reused: half of Salesforce's default 2-hour session timeout. An org
with a shorter timeout costs one 401 and a fresh exchange, as for any revoked session."""
LOCK_TIMEOUT = 5.0
"""Seconds a process waits for another one's exchange before it logs in on its own. A token
exchange takes well under a second; a lock held longer belongs to a stuck or hostile process."""
MAX_FILE_BYTES = 64 * 1024
"""A token file is a few hundred bytes; anything larger is not ours and is not read."""
_SUFFIX = ".token"
_LOCK_SUFFIX = ".token.lock"
_NONCE_BYTES = 12
_MAX_SYMLINKS = 40  # as the kernel's own limit on links followed in one path
_OPEN = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
_OPEN_DIR = _OPEN | getattr(os, "O_DIRECTORY", 0)
_OPEN_FILE = _OPEN | getattr(os, "O_NONBLOCK", 0)
_SUPPORTED = (
    hasattr(os, "O_NOFOLLOW") and hasattr(os, "O_DIRECTORY") and os.open in os.supports_dir_fd
)


_WARNED: set[str] = set()
_WARN_LOCK = threading.Lock()


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


# --- the directory: walked from / like ssh's StrictModes ---------------------------------------


def _check_ancestor(info: os.stat_result, where: str) -> None:
    """A directory above the store: root's or ours, and nobody else may rename entries in it."""
    uid = os.getuid()
    if info.st_uid not in (0, uid):
        raise UnsafeStoreError(
            f"{where} belongs to user id {info.st_uid}, who could replace the token directory "
            "under it"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022 and not mode & stat.S_ISVTX:
        raise UnsafeStoreError(
            f"{where} is writable by other users (mode {mode:04o}), who could replace the token "
            "directory under it"
        )


def _check_store(info: os.stat_result, where: str) -> None:
    """The store directory itself: ours, and closed to everyone else."""
    uid = os.getuid()
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != uid:
        raise UnsafeStoreError(
            f"{where} belongs to user id {info.st_uid}, not to this user (id {uid}); a token "
            "directory must be your own"
        )
    if mode & 0o077:
        raise UnsafeStoreError(
            f"{where} is open to other users (mode {mode:04o}); run `chmod 700 {where}`"
        )


def open_directory(path: str | os.PathLike[str], create: bool = True) -> int:
    """A descriptor of the store directory at ``path``, checked on the way down from ``/``.

    Missing directories are created with mode 0700 (``create``). Raises
    :class:`UnsafeStoreError` for an untrusted directory on the way, ``OSError`` otherwise.
    """
    pending = [p for p in os.path.abspath(os.fspath(path)).split(os.sep) if p]
    pending.reverse()  # a stack: the next component is pending[-1]
    where = os.sep
    fd = os.open(os.sep, _OPEN_DIR)
    links = 0
    try:
        _check_ancestor(os.fstat(fd), where)
        while pending:
            name = pending.pop()
            if name == ".":
                continue
            if name == "..":  # only from a link's target: walk that path again from /
                pending.extend(reversed([p for p in os.path.dirname(where).split(os.sep) if p]))
                os.close(fd)
                fd, where = os.open(os.sep, _OPEN_DIR), os.sep
                continue
            try:
                child = os.open(name, _OPEN_DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=fd)
                child = os.open(name, _OPEN_DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise
                # A symlink: its directory was checked, so root or we put it there. Follow it
                # by walking its target, checked the same way.
                target = os.readlink(name, dir_fd=fd)
                links += 1
                if links > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many symbolic links", where) from None
                parts = [p for p in target.split(os.sep) if p]
                pending.extend(reversed(parts))
                if os.path.isabs(target):
                    os.close(fd)
                    fd, where = os.open(os.sep, _OPEN_DIR), os.sep
                continue
            os.close(fd)
            fd, where = child, os.path.join(where, name)
            if pending:
                _check_ancestor(os.fstat(fd), where)
        _check_store(os.fstat(fd), where)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _regular_file(fd: int, name: str) -> os.stat_result:
    """``fstat`` of an opened store file: a regular file of this user, of sane size."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(errno.EPERM, "not a regular file of this user", name)
    if info.st_size > MAX_FILE_BYTES:
        raise OSError(errno.EFBIG, "larger than a token file", name)
    return info


# --- one use of the store, under its lock ------------------------------------------------------


class StoreSession:
    """The store directory opened and checked, with one connection's lock held."""

    def __init__(self, store: TokenStore, dir_fd: int, settings: ConnectionSettings) -> None:
        self.store = store
        self.dir_fd = dir_fd
        self.settings = settings
        self.name = _file_name(settings)

    def load(self) -> AccessToken | None:
        """The stored token, if there is a readable one younger than ``max_age``."""
        from .auth import AccessToken

        s = self.settings
        try:
            fd = os.open(self.name, _OPEN_FILE, dir_fd=self.dir_fd)
        except OSError:
            return None  # none yet, or a link or something else planted there: a miss
        try:
            _regular_file(fd, self.name)
            blob = os.read(fd, MAX_FILE_BYTES + 1)
            nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
            plain = _cipher(s).decrypt(nonce, sealed, identity(s).encode())
            token = AccessToken(**json.loads(plain))
        except (OSError, ValueError, TypeError, InvalidTag):
            return None  # another key's, damaged, foreign: a miss
        finally:
            os.close(fd)
        if not 0 <= time.time() - token.obtained_at < self.store.max_age:
            return None
        return token

    def save(self, token: AccessToken) -> None:
        """Write the token atomically (mode 0600); prune files past ``max_age`` on the way."""
        s = self.settings
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plain = json.dumps(asdict(token)).encode()
        blob = nonce + _cipher(s).encrypt(nonce, plain, identity(s).encode())
        try:
            write_file(self.name, blob, 0o600, replace=True, dir_fd=self.dir_fd)
        except OSError as exc:
            log.warning("Could not store the Salesforce token in %s: %s", self.store.directory, exc)
            return
        _prune(self.dir_fd, time.time() - self.store.max_age, keep=self.name)


def _file_name(settings: ConnectionSettings) -> str:
    return hashlib.sha256(identity(settings).encode()).hexdigest()[:32] + _SUFFIX


def _cipher(settings: ConnectionSettings) -> AESGCM:
    der = settings.load_private_key().private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sfjwt", info=b"token-store-v1")
    return AESGCM(hkdf.derive(der))


def _prune(dir_fd: int, cutoff: float, keep: str | None = None) -> None:
    """Delete token files (and their locks) older than ``cutoff`` (all with ``cutoff=inf``).

    Only names in the checked directory, and only regular files of this user: a symlink is
    removed as a link (``unlink`` never follows one), a file someone else owns is left alone.
    """
    uid = os.getuid()
    with os.scandir(dir_fd) as entries:
        names = [e.name for e in entries if e.name.endswith(_SUFFIX) and e.name != keep]
    for name in names:
        with contextlib.suppress(OSError):
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_uid == uid and info.st_mtime < cutoff:
                os.unlink(name, dir_fd=dir_fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name[: -len(_SUFFIX)] + _LOCK_SUFFIX, dir_fd=dir_fd)


def _lock(dir_fd: int, name: str, timeout: float) -> int | None:
    """The lock file's descriptor with an exclusive ``flock`` held, or None after ``timeout``."""
    import fcntl

    flags = os.O_RDWR | os.O_CREAT | (_OPEN_FILE & ~os.O_RDONLY)
    fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    try:
        _regular_file(fd, name)
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
    except BaseException:
        os.close(fd)
        raise


class TokenStore:
    """One directory of encrypted token files; see the module docstring."""

    def __init__(
        self, directory: Path, max_age: float = MAX_AGE, lock_timeout: float = LOCK_TIMEOUT
    ) -> None:
        self.directory = Path(directory)
        self.max_age = max_age
        self.lock_timeout = lock_timeout

    @staticmethod
    def _warn_once(key: str, message: str, *args: object) -> None:
        """Log ``message`` the first time this process meets ``key`` (a problem and a path)."""
        with _WARN_LOCK:
            if key in _WARNED:
                return
            _WARNED.add(key)
        log.warning(message, *args)

    def _open(self, create: bool = True) -> int | None:
        """The checked directory descriptor, or None (with one warning) when it is unusable."""
        if not _SUPPORTED:
            self._warn_once(
                "unsupported",
                "Salesforce tokens are not shared between tasks: this platform has no safe "
                "openat(); set token_cache='process' in the connection to silence this.",
            )
            return None
        try:
            return open_directory(self.directory, create=create)
        except UnsafeStoreError as exc:
            self._warn_once(
                str(exc),
                "Salesforce tokens are not shared between tasks: %s. Set %s to a directory "
                "of your own under a path only you and root can change (or token_cache="
                "'process' in the connection).",
                exc,
                DIR_ENV,
            )
        except OSError as exc:
            if create or not isinstance(exc, FileNotFoundError):
                self._warn_once(
                    f"{self.directory}: {exc.errno}",
                    "Salesforce tokens are not shared between tasks: %s cannot be used (%s). "
                    "Set %s to a writable directory, or token_cache='process' in the connection.",
                    self.directory,
                    exc.strerror or exc,
                    DIR_ENV,
                )
        return None

    @contextlib.contextmanager
    def session(self, settings: ConnectionSettings) -> Iterator[StoreSession | None]:
        """This connection's lock held in the checked directory, or None when the store cannot
        be used now (an unsafe directory, or a lock held past ``lock_timeout``): the caller
        then exchanges for itself."""
        dir_fd = self._open()
        if dir_fd is None:
            yield None
            return
        try:
            name = _file_name(settings)[: -len(_SUFFIX)] + _LOCK_SUFFIX
            try:
                lock_fd = _lock(dir_fd, name, self.lock_timeout)
            except (ImportError, OSError) as exc:
                self._warn_once(
                    f"{self.directory / name}: {exc}",
                    "Salesforce tokens are not shared between tasks: the lock file %s cannot be "
                    "used (%s).",
                    self.directory / name,
                    exc,
                )
                yield None
                return
            if lock_fd is None:
                self._warn_once(
                    f"{self.directory / name}: timeout",
                    "Another process has held the Salesforce token lock %s for more than %.0f s; "
                    "this process logs in on its own. If this repeats, look for a hung task "
                    "holding it.",
                    self.directory / name,
                    self.lock_timeout,
                )
                yield None
                return
            try:
                yield StoreSession(self, dir_fd, settings)
            finally:
                os.close(lock_fd)  # closing releases the lock
        finally:
            os.close(dir_fd)

    def load(self, settings: ConnectionSettings) -> AccessToken | None:
        """The stored token for ``settings`` (taking the lock), or None."""
        with self.session(settings) as shared:
            return shared.load() if shared is not None else None

    def clear(self) -> None:
        """Delete every stored token in the directory (``TokenCache.clear``)."""
        dir_fd = self._open(create=False)
        if dir_fd is not None:
            try:
                _prune(dir_fd, float("inf"))
            finally:
                os.close(dir_fd)
