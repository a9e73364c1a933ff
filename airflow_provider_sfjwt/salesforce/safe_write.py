"""One way to write a file that holds key material or a token: never wider, never through a link.

The naive way (``open(path, "w")`` then ``chmod``) has two holes a local attacker can use: the
file exists for a moment with the umask's mode (readable by others), and a symlink planted at
``path`` beforehand is followed, so the key lands wherever the link points, or truncates a file
the victim owns there. Here:

* a new file is created exclusively (``O_CREAT | O_EXCL``), which refuses any existing name,
  a symlink included, and never follows one;
* a replacement is written to a fresh temporary name in the same directory (created the same
  exclusive way) and renamed over the old name: ``rename`` replaces a symlink at the name, it
  does not write through it, and readers see the old file or the new one, never half of one;
* the mode is set on the open descriptor before a byte is written, so the umask cannot widen
  or narrow it and no moment exists where the content is readable with another mode.

``dir_fd`` lets a caller that already holds a checked directory descriptor (the token store)
write relative to it, so the directory cannot be swapped between the check and the write.
"""

from __future__ import annotations

import contextlib
import os
import secrets

__all__ = ["write_file"]

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_CREATE |= getattr(os, "O_CLOEXEC", 0)


def write_file(
    path: str | os.PathLike[str],
    data: bytes,
    mode: int = 0o600,
    *,
    replace: bool = False,
    dir_fd: int | None = None,
) -> None:
    """Write ``data`` to ``path`` with ``mode``; see the module docstring for the guarantees.

    Without ``replace`` an existing ``path`` (file, directory or symlink) raises
    ``FileExistsError``. With ``dir_fd``, ``path`` is a name inside that directory.
    """
    path = os.fspath(path)
    if not replace:
        _create(path, data, mode, dir_fd)
        return
    directory, name = os.path.split(path)
    temp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    _create(temp, data, mode, dir_fd)
    try:
        os.replace(temp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise


def _create(path: str, data: bytes, mode: int, dir_fd: int | None) -> None:
    fd = os.open(path, _CREATE, mode, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed the mode given to open()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path, dir_fd=dir_fd)
        raise
    os.close(fd)
