"""Where files go: local paths and object storage, written atomically.

Every file this package publishes (extracts, Bulk results, failure reports, large REST answers)
is written through :func:`atomic_output`: bytes go to a hidden sibling ``.NAME.part-<random>``
and are renamed to ``NAME`` only when the ``with`` block ends without error. On any exception,
including task-kill signals, the temporary file is deleted and the exception re-raised, so a
failed task never leaves a half file that looks complete, and an existing file is replaced only
on success.

A destination is a local path (``str`` / ``os.PathLike``) or any object that behaves like
``pathlib.Path`` (``open(mode)``, ``rename``/``replace``, ``unlink``, ``name``, ``parent``,
``/``), such as Airflow's ``ObjectStoragePath`` for ``s3://``, ``gs://``, ``file://``. This
module never imports Airflow: the core must run without it, so object storage is described by
the :class:`StoragePath` protocol instead of Airflow's class.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pathlib
import secrets
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import IO, Any, Protocol, TypeGuard, Union

from .errors import InvalidInputError

__all__ = ["Destination", "FilePath", "StoragePath", "atomic_output", "same_file"]

log = logging.getLogger(__name__)


class StoragePath(Protocol):
    """What this package needs of an object-storage path such as Airflow's ``ObjectStoragePath``.

    Only these members are relied on to recognise one; writing also uses ``rename``/``replace``,
    ``unlink`` and ``/`` (or ``joinpath``), which every ``pathlib``-like class has.
    """

    @property
    def name(self) -> str: ...

    @property
    def parent(self) -> Any: ...

    def open(self, mode: str = ...) -> Any: ...


FilePath = Union[str, "os.PathLike[str]", StoragePath]
"""A file argument: a local path, a ``file://`` URL string, or an object-storage path object."""


def is_local_path(value: object) -> TypeGuard[str | os.PathLike[str]]:
    """A ``str`` or ``os.PathLike`` naming a local file, not a storage object.

    A universal-pathlib object (Airflow's ObjectStoragePath) is ``os.PathLike`` too with
    universal-pathlib < 0.3 (Airflow 3.0 and 3.1), and ``os.fspath()`` of a ``file://`` one is
    ``file:/tmp/x``: taken as a local path, a relative directory named ``file:``. Anything with a
    storage ``protocol`` goes through its own methods instead.
    """
    return isinstance(value, (str, os.PathLike)) and not hasattr(value, "protocol")


class Destination:
    """A file location: a local path, or a duck-typed pathlib-like object for remote storage.

    Local paths get their missing parent directories created. Remote objects (Airflow's
    ``ObjectStoragePath``) are used only through ``open``, ``rename``/``replace``, ``unlink``,
    ``name``, ``parent`` and ``/`` so that any fsspec-backed store works without an Airflow
    import here. A ``file://`` URL string is taken as a local path (``file://HOST/...`` with a
    host other than localhost is refused: it would silently be written here); other URL
    strings are refused, since opening them needs credentials only the Airflow side holds.

    ``file_mode`` (local files only) is the permission mode the file gets, set before a byte is
    written. Without it a new file gets the usual ``0o666`` minus the process umask (``0o644``
    under the common umask ``022``: readable by every user of the machine), like any file a
    program creates; ``0o600`` keeps an extract private to the worker's user.
    """

    def __init__(self, target: FilePath | Destination, file_mode: int | None = None) -> None:
        if file_mode is not None and (
            isinstance(file_mode, bool)
            or not isinstance(file_mode, int)
            or not 0 <= file_mode <= 0o777
        ):
            raise ValueError(
                f"file_mode must be a permission mode such as 0o600, not {file_mode!r}"
            )
        if isinstance(target, Destination):
            # A pathlib.Path, or an object-storage path used by duck typing (see StoragePath).
            self.target: Any = target.target
            self.is_local: bool = target.is_local
            self.file_mode: int | None = target.file_mode if file_mode is None else file_mode
            self._check_mode()
            return
        self.file_mode = file_mode
        if isinstance(target, str) and "://" in target:
            parsed = urllib.parse.urlparse(target)
            if parsed.scheme != "file":
                raise InvalidInputError(
                    f"cannot open {target!r} from a plain string: pass an "
                    "airflow.sdk.ObjectStoragePath (it carries the storage connection), "
                    "or a local path"
                )
            if parsed.netloc not in ("", "localhost"):
                raise InvalidInputError(
                    f"{target!r} names the host {parsed.netloc!r}, but a file:// URL is always "
                    "opened on this machine: use file:///path (or a plain path) for a local "
                    "file, or an object-storage URI for a remote one"
                )
            target = urllib.request.url2pathname(parsed.path)
        if is_local_path(target):
            self.target = pathlib.Path(os.fspath(target))
            self.is_local = True
        elif all(hasattr(target, attr) for attr in ("open", "name", "parent")):
            self.target = target
            self.is_local = False
        else:
            raise TypeError(
                f"unsupported destination {target!r}: expected a local path or a "
                "pathlib-like object with open(), name and parent (e.g. ObjectStoragePath)"
            )
        self._check_mode()

    def _check_mode(self) -> None:
        if self.file_mode is not None and not self.is_local:
            raise ValueError(
                f"file_mode applies to local files; {self.target} is in object storage, whose "
                "access is set by the store's own policies"
            )

    @property
    def name(self) -> str:
        return str(self.target.name)

    def __str__(self) -> str:
        return str(self.target)

    def __repr__(self) -> str:
        return f"Destination({str(self)!r})"

    def sibling(self, name: str) -> Destination:
        """A file next to this one (same directory or prefix), in the same kind of storage."""
        parent = self.target.parent
        return Destination(parent.joinpath(name) if hasattr(parent, "joinpath") else parent / name)

    def open(self, mode: str = "rb") -> IO[Any]:
        handle: IO[Any] = self.target.open(mode)
        return handle

    def ensure_parent(self) -> None:
        """Create missing parent directories where directories exist (local, file://).

        Object stores have no directories; calling mkdir there can even try to create a bucket,
        so it is only done for local filesystems.
        """
        if self.is_local:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            return
        protocol = getattr(self.target, "protocol", None)
        if isinstance(protocol, (tuple, list)):
            protocol = protocol[0] if protocol else None
        if protocol in (None, "", "file", "local") and hasattr(self.target.parent, "mkdir"):
            with contextlib.suppress(FileExistsError):
                self.target.parent.mkdir(parents=True, exist_ok=True)


def same_file(first: FilePath, second: FilePath) -> bool:
    """Whether two destinations name one file: the same path after links and ``..`` are
    resolved, or (both existing) the same inode, as a hard link is; for object storage the
    same protocol and key. Used to refuse an output that would replace an input."""
    a, b = Destination(first), Destination(second)
    if a.is_local != b.is_local:
        return False
    if a.is_local:
        with contextlib.suppress(OSError):
            if os.path.samefile(a.target, b.target):
                return True
        return bool(os.path.realpath(a.target) == os.path.realpath(b.target))
    return (getattr(a.target, "protocol", None), str(a.target)) == (
        getattr(b.target, "protocol", None),
        str(b.target),
    )


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_CREATE |= getattr(os, "O_CLOEXEC", 0)


def _create_local(temp: pathlib.Path, file_mode: int | None) -> IO[bytes]:
    """A new temporary file, created exclusively (never through a link planted at its name),
    with ``file_mode`` set before anything is written (else the umask's default)."""
    fd = os.open(temp, _CREATE, 0o666 if file_mode is None else file_mode)
    try:
        if file_mode is not None:
            os.fchmod(fd, file_mode)  # the umask may have narrowed it
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def _move(source: Any, target: Any) -> None:
    """Rename ``source`` to ``target``, replacing an existing target."""
    if hasattr(source, "replace") and not isinstance(source, (str, bytes)):
        source.replace(target)
    else:
        source.rename(target)


def _discard(path: Any) -> None:
    """Best-effort delete used on the error path: never mask the original exception."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except Exception:  # noqa: BLE001 - cleanup must not hide the real failure
        log.warning("could not delete temporary file %s", path, exc_info=True)


@contextlib.contextmanager
def atomic_output(path: FilePath | Destination, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open ``path`` for writing through a temporary sibling; publish it only on success.

    Yields a binary file (``mode="wb"``) or a UTF-8 text file with universal newlines off
    (``mode="w"``, suitable for the csv module). The data lands in ``.NAME.part-<random>`` next to
    the final name and is renamed over ``NAME`` when the block ends normally. On any exception,
    including ``KeyboardInterrupt`` and Airflow's task-kill exceptions, the temporary file is
    deleted and the exception propagates, so readers never see a truncated file under the final
    name and a previous good file stays in place.
    """
    if mode not in ("wb", "w"):
        raise InvalidInputError("atomic_output mode must be 'wb' or 'w'")
    dest = Destination(path)
    dest.ensure_parent()
    temp = dest.sibling(f".{dest.name}.part-{secrets.token_hex(6)}")
    raw = _create_local(temp.target, dest.file_mode) if dest.is_local else temp.open("wb")
    handle: IO[Any] = raw
    try:
        if mode == "w":
            handle = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield handle
        handle.close()
        _move(temp.target, dest.target)
    except BaseException:
        with contextlib.suppress(Exception):
            handle.close()
        with contextlib.suppress(Exception):
            raw.close()
        _discard(temp.target)
        raise
