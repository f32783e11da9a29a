"""Secret files (matter_pki.local.keys.read_secret_file): regular 0600 files and pipes, never a hang."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pytest

from matter_pki.errors import InputError
from matter_pki.local.keys import read_secret_file

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"pw\n", b"pw"), (b"pw\r\nmore\n", b"pw"), (b"no newline", b"no newline"), (b" spaced  \n", b" spaced  ")],
)
def test_secret_file_gives_its_first_line(tmp_path: Path, content: bytes, expected: bytes) -> None:
    (tmp_path / "pw").write_bytes(content)
    (tmp_path / "pw").chmod(0o600)
    assert read_secret_file(tmp_path / "pw") == expected


def _private(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.write_bytes(data)
    path.chmod(mode)


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda p: _private(p, b"\nsecond"), "empty"),
        (lambda p: _private(p, b""), "empty"),
        (lambda p: _private(p, b"x" * 5000), "too large"),
        (lambda p: _private(p, b"pw\n", 0o640), "0640"),
        (lambda p: p.mkdir(), "not a regular file or a pipe"),
        (lambda p: None, "cannot read"),
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file or a pipe"),
    ],
    ids=["empty-first-line", "empty", "oversized", "group-readable", "folder", "missing", "device"],
)
def test_bad_secret_files_are_coded_errors(tmp_path: Path, setup: object, fragment: str) -> None:
    path = tmp_path / "pw"
    setup(path)  # type: ignore[operator]
    with pytest.raises(InputError) as err:
        read_secret_file(path, "--device-passphrase-file")
    assert err.value.code == "input.passphrase_file" and fragment in err.value.message
    assert "--device-passphrase-file" in err.value.message


def test_secret_from_a_pipe_and_a_named_pipe_without_writer(tmp_path: Path) -> None:
    # GIVEN a pipe holding the passphrase (as bash's <(...) gives), written in two pieces
    read_end, write_end = os.pipe()
    os.write(write_end, b"pi")
    later = threading.Timer(0.05, lambda: (os.write(write_end, b"ped\nrest\n"), os.close(write_end)))
    later.start()
    try:
        # THEN it is read to its end (no mode check applies to a pipe)
        assert read_secret_file(f"/dev/fd/{read_end}") == b"piped"
    finally:
        later.join()
        os.close(read_end)
    # AND a named pipe nobody writes to is an empty secret at once (no hang)
    os.mkfifo(tmp_path / "fifo", 0o644)
    with pytest.raises(InputError, match="empty"):
        read_secret_file(tmp_path / "fifo")
