"""Crash-safe local file I/O: atomic writes (temp file + fsync + rename) and no-follow reads.

Every write goes to a temporary file in the destination folder, is fsynced, then renamed over
the final name, and the folder is fsynced: a reader (or a re-run after a crash) sees either the
old file, or the whole new one, never a partial file. The ``*_at`` variants work relative to an
open folder descriptor so that a folder swapped for a symlink mid-run cannot redirect a write.

Group commit: ``write_unsynced_at`` renames each file into place without an fsync (readers still
never see a partial file), and one ``sync_filesystem`` (``syncfs``) later makes a whole group
durable. Until that barrier, a power loss may leave such a file missing, empty or torn; the caller
must be able to re-check and re-write it (the local CA re-checks every answer against its ledger).
Writers that must never show a file before it is durable instead write unsynced temporary files
(``write_temp_at(..., sync=False)``), pass one ``sync_filesystem`` and only then rename them.

Every write goes through ``write_all``, which checks each ``os.write`` result; a full disk is
``storage.disk_full`` and any other failure ``storage.write_failed``, never a raw ``OSError``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from matter_pki.errors import StorageError

if TYPE_CHECKING:
    from collections.abc import Callable

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


_TMP_RE = re.compile(r"\..+\.tmp-[0-9a-f]{12}")


def _tmp_name(name: str) -> str:
    return f".{name}.tmp-{secrets.token_hex(6)}"


def remove_stale_temps(dir_fd: int) -> int:
    """Delete temporary files left by a killed writer; call only while no other writer uses the folder."""
    removed = 0
    with os.scandir(dir_fd) as entries:
        stale = [e.name for e in entries if _TMP_RE.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    for name in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
            removed += 1
    return removed


def fsync_dir(dir_fd: int) -> None:
    """Make a rename inside the folder durable (ignored where folders cannot be fsynced)."""
    with contextlib.suppress(OSError):
        os.fsync(dir_fd)


#: The write primitive (fault-injection tests replace it to simulate a full disk at any byte).
os_write = os.write
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (short writes are continued; a zero-byte write is an error)."""
    view = memoryview(data)
    while view:
        written = os_write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write returned no progress")
        view = view[written:]


def storage_error(e: OSError, what: str) -> StorageError:
    """The coded error for a failed write: ``storage.disk_full`` or ``storage.write_failed``."""
    if e.errno in _DISK_FULL:
        return StorageError("storage.disk_full", f"cannot write {what}: the disk is full ({e.strerror})")
    return StorageError("storage.write_failed", f"cannot write {what}: {e.strerror or e}")


def _syncfs_function() -> Callable[[int], int] | None:
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_syncfs: Callable[[int], int] | None | bool = False  # False: not looked up yet; None: the C library has none


def sync_filesystem(fd: int) -> None:
    """The one durability barrier: every write on the file system holding ``fd`` made durable at once.

    ``syncfs`` (``sync`` where the C library has none): a group of files written without fsync
    (``write_unsynced_at``, ``write_temp_at(..., sync=False)``) becomes durable together instead of
    one ``fsync`` per file. A failure is ``storage.disk_full`` or ``storage.write_failed``.
    """
    global _syncfs
    if _syncfs is False:
        _syncfs = _syncfs_function()
    function = _syncfs
    if callable(function):
        if function(fd) == 0:
            return
        import ctypes

        code = ctypes.get_errno()
        raise storage_error(OSError(code, os.strerror(code)), "to disk (syncfs)")
    os.sync()


def write_temp_at(dir_fd: int, name: str, data: bytes, mode: int, *, sync: bool = True) -> str:
    """A temporary file beside ``name`` holding ``data``; ``sync=False`` leaves durability to one ``sync_filesystem``."""
    tmp = _tmp_name(name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow the requested mode
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    return tmp


def atomic_write_at(dir_fd: int, name: str, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> None:
    """Write ``name`` inside an open folder atomically; ``exclusive`` refuses to replace an existing file."""
    if not name or "/" in name or name in (".", ".."):
        raise StorageError("storage.name", f"refusing to write to {name!r}: not a plain file name")
    try:
        tmp = write_temp_at(dir_fd, name, data, mode)
        try:
            if exclusive:
                # link() fails when the name exists, which rename() would silently replace.
                os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                os.unlink(tmp, dir_fd=dir_fd)
            else:
                os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        fsync_dir(dir_fd)
    except FileExistsError as e:
        raise StorageError("storage.exists", f"{name!r} already exists; refusing to overwrite it") from e
    except OSError as e:
        raise storage_error(e, repr(name)) from e


def atomic_write_many_at(dir_fd: int, files: list[tuple[str, bytes]], *, mode: int = 0o644) -> None:
    """Several atomic writes in one folder with a single folder fsync (each file is still whole or absent)."""
    for name, _data in files:
        if not name or "/" in name or name in (".", ".."):
            raise StorageError("storage.name", f"refusing to write to {name!r}: not a plain file name")
    temps: list[tuple[str, str]] = []
    try:
        for name, data in files:
            temps.append((write_temp_at(dir_fd, name, data, mode), name))
        while temps:
            tmp, name = temps[0]
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            temps.pop(0)
        fsync_dir(dir_fd)
    except OSError as e:
        raise storage_error(e, f"{len(files)} file(s)") from e
    finally:
        for tmp, _name in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)


def write_unsynced_at(dir_fd: int, files: list[tuple[str, bytes]], *, mode: int = 0o644, replace: bool = True) -> None:
    """Put each file in place whole (readers never see a partial file), without any fsync: see ``sync_filesystem``.

    Where the kernel offers it, each file is written as an unnamed ``O_TMPFILE`` inode and linked
    under its name, so a killed writer leaves no temporary file; elsewhere a temporary name and a
    rename. ``replace=False`` refuses an existing name (``storage.exists``).
    """
    global _tmpfile_ok
    for name, data in files:
        _check_name(name)
        if _tmpfile_ok:
            try:
                _link_tmpfile(dir_fd, name, data, mode, replace)
                continue
            except _NoTmpfile:
                _tmpfile_ok = False
        tmp = _tmp_name(name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, mode, dir_fd=dir_fd)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            if replace:
                os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            else:
                os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
                os.unlink(tmp, dir_fd=dir_fd)
        except FileExistsError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise StorageError("storage.exists", f"{name!r} already exists; refusing to overwrite it") from e
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise storage_error(e, repr(name)) from e


class _NoTmpfile(Exception):
    """The file system does not offer O_TMPFILE (or /proc is absent)."""


_tmpfile_ok = hasattr(os, "O_TMPFILE") and Path("/proc/self/fd").is_dir()


def process_umask() -> int | None:
    """This process's umask, read without changing it (``/proc/self/status``); None when unknown."""
    global _umask
    if _umask is False:
        _umask = None
        with contextlib.suppress(OSError, ValueError):
            with open("/proc/self/status", "rb") as status:  # noqa: PTH123 - procfs, not a project path
                for line in status:
                    if line.startswith(b"Umask:"):
                        _umask = int(line.split()[1], 8)
                        break
    return _umask


_umask: int | None | bool = False  # False: not read yet


def _link_tmpfile(dir_fd: int, name: str, data: bytes, mode: int, replace: bool) -> None:
    try:
        fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | _O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            raise _NoTmpfile from e
        raise storage_error(e, repr(name)) from e
    try:
        umask = process_umask()
        if umask is None or mode & umask:
            os.fchmod(fd, mode)  # the umask narrowed the requested mode (or is unknown): set it exactly
        write_all(fd, data)
        source = f"/proc/self/fd/{fd}"
        try:
            os.link(source, name, dst_dir_fd=dir_fd, follow_symlinks=True)
        except FileExistsError:
            if not replace:
                raise
            os.unlink(name, dir_fd=dir_fd)
            os.link(source, name, dst_dir_fd=dir_fd, follow_symlinks=True)
    except FileExistsError as e:
        raise StorageError("storage.exists", f"{name!r} already exists; refusing to overwrite it") from e
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EPERM) and not Path("/proc/self/fd").is_dir():
            raise _NoTmpfile from e
        raise storage_error(e, repr(name)) from e
    finally:
        os.close(fd)


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", ".."):
        raise StorageError("storage.name", f"refusing to write to {name!r}: not a plain file name")


def atomic_write(path: str | Path, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> None:
    """Write a file atomically (temp file in the same folder, fsync, rename, fsync the folder)."""
    target = Path(path)
    try:
        dir_fd = os.open(target.parent, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except OSError as e:
        raise StorageError("storage.write_failed", f"cannot open folder {str(target.parent)!r}: {e.strerror}") from e
    try:
        atomic_write_at(dir_fd, target.name, data, mode=mode, exclusive=exclusive)
    finally:
        os.close(dir_fd)


def open_dir(path: str | Path, *, dir_fd: int | None = None, follow: bool = True) -> int:
    """Open a folder for ``*_at`` calls; ``follow=False`` refuses a symlink as the last component."""
    flags = os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC | (0 if follow else _O_NOFOLLOW)
    try:
        return os.open(path, flags, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR) and not follow:
            raise StorageError("storage.symlink", f"{str(path)!r} is a symlink or not a folder; refused") from e
        raise StorageError("storage.unreadable", f"cannot open folder {str(path)!r}: {e.strerror}") from e


def exists_at(dir_fd: int, name: str) -> bool:
    """True when ``name`` exists in the folder (a dangling symlink counts as existing)."""
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def read_regular_at(dir_fd: int, name: str, *, max_bytes: int) -> bytes:
    """Read a regular file without following symlinks; at most ``max_bytes + 1`` bytes are read."""
    try:
        fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | getattr(os, "O_NONBLOCK", 0), dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StorageError("storage.symlink", f"{name!r} is a symlink; refused") from e
        raise StorageError("storage.unreadable", f"cannot read {name!r}: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StorageError("storage.not_regular", f"{name!r} is not a regular file; refused")
        first = os.read(fd, max_bytes + 1)
        if len(first) >= info.st_size or len(first) > max_bytes:
            return first  # the whole file in one read (no second read just to see the end)
        chunks = [first]
        remaining = max_bytes + 1 - len(first)
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise StorageError("storage.unreadable", f"cannot read {name!r}: {e.strerror}") from e
    finally:
        os.close(fd)


def ensure_private_dir(path: str | Path) -> Path:
    """Create a folder (and parents) readable only by its owner."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise StorageError("storage.write_failed", f"cannot create folder {str(p)!r}: {e.strerror}") from e
    return p
