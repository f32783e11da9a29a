"""Atomic writes and no-follow reads (matter_pki.storage.local)."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from matter_pki.errors import StorageError
from matter_pki.storage.local import atomic_write, atomic_write_at, open_dir, read_regular_at

if TYPE_CHECKING:
    from pathlib import Path


def test_atomic_write_creates_file_with_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    # GIVEN an empty folder
    target = tmp_path / "a.pem"
    # WHEN a file is written with mode 0600
    atomic_write(target, b"hello", mode=0o600)
    # THEN it holds exactly the bytes, has the mode, and no temporary file remains
    assert target.read_bytes() == b"hello"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pem"]


def test_atomic_write_replaces_but_exclusive_refuses(tmp_path: Path) -> None:
    # GIVEN an existing file
    target = tmp_path / "k"
    atomic_write(target, b"one")
    # WHEN it is rewritten normally, THEN the content is replaced
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    # WHEN it is written exclusively, THEN storage.exists and the content is kept
    with pytest.raises(StorageError) as err:
        atomic_write(target, b"three", exclusive=True)
    assert err.value.code == "storage.exists"
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_atomic_write_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    # GIVEN out.pem is a symlink to a file outside the folder
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"secret")
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "out.pem").symlink_to(outside)
    # WHEN out.pem is written atomically
    fd = open_dir(folder)
    try:
        atomic_write_at(fd, "out.pem", b"dac")
    finally:
        os.close(fd)
    # THEN the link itself was replaced and the outside file is untouched
    assert not (folder / "out.pem").is_symlink()
    assert (folder / "out.pem").read_bytes() == b"dac"
    assert outside.read_bytes() == b"secret"


@pytest.mark.parametrize("bad", ["", "a/b", "..", "."])
def test_atomic_write_at_refuses_non_plain_names(tmp_path: Path, bad: str) -> None:
    fd = open_dir(tmp_path)
    try:
        with pytest.raises(StorageError) as err:
            atomic_write_at(fd, bad, b"x")
    finally:
        os.close(fd)
    assert err.value.code == "storage.name"


def test_read_regular_at_refuses_symlinks_and_folders_and_caps_size(tmp_path: Path) -> None:
    # GIVEN a regular file, a symlink to it and a sub-folder
    (tmp_path / "real.csr").write_bytes(b"x" * 100)
    (tmp_path / "link.csr").symlink_to(tmp_path / "real.csr")
    (tmp_path / "dir.csr").mkdir()
    fd = open_dir(tmp_path)
    try:
        # THEN the regular file is read up to max_bytes + 1
        assert read_regular_at(fd, "real.csr", max_bytes=10) == b"x" * 11
        # AND the symlink and the folder are refused with codes
        with pytest.raises(StorageError) as link:
            read_regular_at(fd, "link.csr", max_bytes=10)
        with pytest.raises(StorageError) as folder:
            read_regular_at(fd, "dir.csr", max_bytes=10)
    finally:
        os.close(fd)
    assert link.value.code == "storage.symlink"
    assert folder.value.code == "storage.not_regular"


def test_open_dir_without_follow_refuses_symlinked_folder(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    parent = open_dir(tmp_path)
    try:
        with pytest.raises(StorageError) as err:
            open_dir("link", dir_fd=parent, follow=False)
    finally:
        os.close(parent)
    assert err.value.code == "storage.symlink"


def test_group_commit_writes_unsynced_temps_then_one_barrier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN temporaries written with sync=False (no fsync each)
    from matter_pki.storage import local

    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(local.os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    dir_fd = open_dir(tmp_path)
    try:
        temps = [local.write_temp_at(dir_fd, f"f{i}", b"data", 0o600, sync=False) for i in range(3)]
        assert fsyncs == []
        # WHEN one barrier is passed THEN it succeeds and the files are whole, with their mode
        local.sync_filesystem(dir_fd)
        for tmp in temps:
            assert (tmp_path / tmp).read_bytes() == b"data" and stat.S_IMODE((tmp_path / tmp).stat().st_mode) == 0o600
        # AND where the C library has no syncfs, sync() is the barrier
        synced: list[bool] = []
        monkeypatch.setattr(local, "_syncfs", None)
        monkeypatch.setattr(local.os, "sync", lambda: synced.append(True))
        local.sync_filesystem(dir_fd)
        assert synced == [True]
    finally:
        os.close(dir_fd)


def test_a_failed_barrier_is_a_coded_error() -> None:
    from matter_pki.storage import local

    if local._syncfs_function() is None:
        pytest.skip("no syncfs in this C library (the sync() fallback cannot fail)")
    with pytest.raises(StorageError) as err:
        local.sync_filesystem(-1)  # not a descriptor: syncfs fails with EBADF
    assert err.value.code == "storage.write_failed" and "sync" in err.value.message
