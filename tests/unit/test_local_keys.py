"""Where secrets come from (matter_pki.local.keys): the device-key passphrase and passphrase files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from matter_pki.errors import InputError, KeyStoreError, MatterPkiError
from matter_pki.local.keys import (
    DEVICE_PASSPHRASE_ENV,
    Secrets,
    device_passphrase_source,
    read_passphrase_file,
)

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"pw\n", b"pw"), (b"pw\r\nmore\n", b"pw"), (b"no newline", b"no newline"), (b" spaced  \n", b" spaced  ")],
)
def test_passphrase_file_gives_its_first_line(tmp_path: Path, content: bytes, expected: bytes) -> None:
    (tmp_path / "pw").write_bytes(content)
    assert read_passphrase_file(tmp_path / "pw") == expected


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda p: p.write_bytes(b"\nsecond"), "key.passphrase_empty"),
        (lambda p: p.write_bytes(b""), "key.passphrase_empty"),
        (lambda p: p.write_bytes(b"x" * 5000), "input.too_large"),
        (lambda p: p.mkdir(), "input.not_a_file"),
        (lambda p: None, "input.not_a_file"),
    ],
    ids=["empty-first-line", "empty", "oversized", "folder", "missing"],
)
def test_bad_passphrase_files_are_coded_errors(tmp_path: Path, setup: object, code: str) -> None:
    path = tmp_path / "pw"
    setup(path)  # type: ignore[operator]
    with pytest.raises(MatterPkiError) as err:
        read_passphrase_file(path)
    assert err.value.code == code


def test_device_passphrase_sources_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a file, the environment and a prompt, each with another value
    (tmp_path / "pw").write_bytes(b"file\n")
    monkeypatch.setenv(DEVICE_PASSPHRASE_ENV, "env")
    monkeypatch.setenv("MATTER_PKI_PASSPHRASE", "the CA's")
    asked: list[bool] = []

    def prompt(confirm: bool) -> bytes:
        asked.append(confirm)
        return b"typed"

    # THEN the file wins, then the environment, then the prompt; the CA passphrase never
    assert Secrets(device_passphrase_source=device_passphrase_source(tmp_path / "pw", prompt)).device_passphrase() == b"file"
    assert Secrets(device_passphrase_source=device_passphrase_source(None, prompt)).device_passphrase() == b"env"
    monkeypatch.delenv(DEVICE_PASSPHRASE_ENV)
    secrets = Secrets(device_passphrase_source=device_passphrase_source(None, prompt))
    assert secrets.device_passphrase(confirm=True) == b"typed" and secrets.device_passphrase() == b"typed"
    assert asked == [True]  # asked once, then kept
    with pytest.raises(KeyStoreError) as err:
        Secrets(device_passphrase_source=device_passphrase_source(None)).device_passphrase()
    assert err.value.code == "key.device_passphrase_missing" and DEVICE_PASSPHRASE_ENV in err.value.message


def test_empty_device_passphrase_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEVICE_PASSPHRASE_ENV, "")
    with pytest.raises(KeyStoreError) as err:
        Secrets(device_passphrase_source=device_passphrase_source(None)).device_passphrase()
    assert err.value.code == "key.passphrase_empty"
    assert Secrets.fixed(device_passphrase=b"x").device_passphrase() == b"x"
    monkeypatch.setenv(DEVICE_PASSPHRASE_ENV, "from env")
    assert Secrets.from_env().device_passphrase() == b"from env"
    with pytest.raises(InputError):
        read_passphrase_file("/nonexistent/definitely")


def test_passphrase_from_a_pipe_and_a_pipe_without_writer(tmp_path: Path) -> None:
    # GIVEN a pipe holding the passphrase (as bash's <(...) gives), and a named pipe nobody writes to
    import os

    read_end, write_end = os.pipe()
    os.write(write_end, b"piped\n")
    os.close(write_end)
    try:
        assert read_passphrase_file(f"/dev/fd/{read_end}") == b"piped"
    finally:
        os.close(read_end)
    os.mkfifo(tmp_path / "fifo")
    # THEN the first is read, the second is an empty passphrase at once (no hang)
    with pytest.raises(KeyStoreError) as err:
        read_passphrase_file(tmp_path / "fifo")
    assert err.value.code == "key.passphrase_empty"
