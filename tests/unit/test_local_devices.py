"""Factory device keys and CSRs (matter_pki.local.devices): the key file format, runs, crashes, resumes."""

from __future__ import annotations

import base64
import errno
import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from matter_pki.csr import load_device_csr
from matter_pki.errors import InputError, KeyStoreError, MatterPkiError, StorageError
from matter_pki.local import devices
from matter_pki.local.devices import (
    HEADER_LEN,
    JOURNAL,
    DeviceKeyReader,
    DevicePlan,
    KdfParams,
    RunKey,
    csr_info,
    device_csr,
    generate_device_csrs,
    load_device_key,
    parse_device_key,
)
from tests.unit.test_local_fixtures import REPO

if TYPE_CHECKING:
    from pathlib import Path

PW = b"device passphrase"
CHEAP = KdfParams(log2_n=14)  # the smallest cost a reader accepts: keeps the tests fast


def _point(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _generate(out: Path, count: int = 5, **kw: object) -> devices.GenerateReport:
    return generate_device_csrs(out, count=count, passphrase=PW, kdf=CHEAP, jobs=1, **kw)  # type: ignore[arg-type]


def _assert_complete(out: Path, names: list[str]) -> None:
    """Every device has a key that opens with PW and a CSR the intake accepts for that same key."""
    reader = DeviceKeyReader(PW)
    for name in names:
        key = reader.load(out / f"{name}.key")
        csr = load_device_csr((out / f"{name}.csr").read_bytes())
        assert csr.public_point == _point(key), name
        assert stat.S_IMODE((out / f"{name}.key").stat().st_mode) == 0o600
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]
    assert not (out / JOURNAL).exists()


def _raw(path: Path) -> bytes:
    lines = path.read_bytes().strip().split(b"\n")
    return base64.b64decode(b"".join(lines[1:-1]))


def _rearmour(raw: bytes) -> bytes:
    return devices._armour(raw)


# -- the file format -------------------------------------------------------------------------------
def test_generated_devices_open_with_the_passphrase_and_match_their_csrs(tmp_path: Path) -> None:
    # GIVEN a run of five devices
    report = _generate(tmp_path / "out")
    # THEN each CSR is accepted by intake, names its device, and carries the public key of its key file
    names = [f"device-0000{i}" for i in range(1, 6)]
    assert (report.first, report.last, report.made, report.resumed) == ("device-00001", "device-00005", 5, False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{n}.{e}" for n in names for e in ("csr", "key"))
    _assert_complete(tmp_path / "out", names)
    csr = x509.load_pem_x509_csr((tmp_path / "out" / "device-00003.csr").read_bytes())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "device-00003"
    assert load_device_key(tmp_path / "out" / "device-00003.key", PW).public_key() == csr.public_key()


@pytest.mark.parametrize("name", ["d", "device-00001", "x" * 63, "y" * 64])
def test_csr_is_what_the_cryptography_builder_makes(name: str) -> None:
    # GIVEN a key, WHEN its CSR is assembled from the template
    key = ec.generate_private_key(ec.SECP256R1())
    built = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ).sign(key, hashes.SHA256())
    ours = x509.load_pem_x509_csr(device_csr(key, name))
    # THEN the signed bytes equal the builder's, and the signature verifies
    assert csr_info(name, _point(key)) == built.tbs_certrequest_bytes == ours.tbs_certrequest_bytes
    assert ours.is_signature_valid


def test_key_file_reveals_nothing_without_the_passphrase(tmp_path: Path) -> None:
    # GIVEN a device key file
    _generate(tmp_path, count=1)
    path = tmp_path / "device-00001.key"
    key = load_device_key(path, PW)
    data, raw = path.read_bytes(), _raw(path)
    pkcs8 = key.private_bytes(Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    # THEN neither the key nor its scalar nor the passphrase is in the file, in any encoding
    for secret in (pkcs8, scalar, PW):
        assert secret not in raw and base64.b64encode(secret) not in data and secret.hex().encode() not in data
    # AND no PEM key loader takes it; the wrong passphrase is a coded error
    with pytest.raises((ValueError, TypeError)):
        serialization.load_pem_private_key(data, None)
    with pytest.raises(KeyStoreError) as err:
        load_device_key(path, b"wrong")
    assert err.value.code == "key.passphrase_wrong"


def test_two_runs_use_two_salts_and_each_key_its_own_nonce(tmp_path: Path) -> None:
    _generate(tmp_path / "a", count=3)
    _generate(tmp_path / "b", count=1)
    a = [parse_device_key((tmp_path / "a" / f"device-0000{i}.key").read_bytes()) for i in (1, 2, 3)]
    b = parse_device_key((tmp_path / "b" / "device-00001.key").read_bytes())
    assert len({s.header for s in a}) == 1 and b.header != a[0].header
    assert len({s.nonce for s in [*a, b]}) == 4


def _flip(raw: bytes, i: int) -> bytes:
    return raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]


def test_every_altered_byte_is_a_coded_error_never_a_key(tmp_path: Path) -> None:
    # GIVEN a sealed key, and a reader that already knows this run (no scrypt per attempt)
    _generate(tmp_path, count=1)
    path = tmp_path / "device-00001.key"
    raw = _raw(path)
    reader = DeviceKeyReader(PW)
    reader.load(path)
    codes: dict[str, set[int]] = {}
    # WHEN each byte after the KDF parameters is flipped in turn (salt and check are sampled below)
    for i in range(HEADER_LEN, len(raw)):
        path.write_bytes(_rearmour(_flip(raw, i)))
        with pytest.raises(KeyStoreError) as err:
            reader.load(path)
        codes.setdefault(err.value.code, set()).add(i)
    # THEN nonce, point, name, ciphertext and tag are all authenticated: "tampered"; a name
    # length that no longer fits the file is "malformed"
    name_len_at = HEADER_LEN + 12 + 65
    assert codes.get("key.tampered", set()) | codes.get("key.malformed", set()) == set(range(HEADER_LEN, len(raw)))
    assert codes.get("key.malformed", set()) <= {name_len_at}


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (0, "key.malformed"),  # magic
        (4, "key.malformed"),  # version
        (5, "key.malformed"),  # KDF id
        (6, "key.passphrase_wrong"),  # log2 N: another (valid) cost, another key
        (7, "key.passphrase_wrong"),  # r
        (8, "key.malformed"),  # p becomes 0
        (9, "key.passphrase_wrong"),  # salt: another derived key, the check value disagrees
        (30, "key.passphrase_wrong"),  # check value
    ],
)
def test_altered_header_is_a_coded_error(tmp_path: Path, offset: int, code: str) -> None:
    _generate(tmp_path, count=1)
    path = tmp_path / "device-00001.key"
    path.write_bytes(_rearmour(_flip(_raw(path), offset)))
    with pytest.raises(KeyStoreError) as err:
        load_device_key(path, PW)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("log2_n", "r", "p"), [(40, 8, 1), (13, 8, 1), (20, 16, 1), (14, 0, 1), (14, 8, 9)], ids=["huge-n", "tiny-n", "2GiB", "r0", "p9"]
)
def test_hostile_kdf_parameters_are_refused_before_any_work(tmp_path: Path, log2_n: int, r: int, p: int) -> None:
    # GIVEN a key file whose header asks for an absurd (or too weak) scrypt cost
    _generate(tmp_path, count=1)
    path = tmp_path / "device-00001.key"
    raw = bytearray(_raw(path))
    raw[6:9] = bytes([log2_n, r, p])
    path.write_bytes(_rearmour(bytes(raw)))
    # THEN it is refused as malformed at once (no multi-GiB allocation, no hang)
    with pytest.raises(KeyStoreError) as err:
        load_device_key(path, PW)
    assert err.value.code == "key.malformed"


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[: len(d) // 2],
        lambda d: b"",
        lambda d: d.replace(b"MATTER-PKI ENCRYPTED DEVICE KEY", b"PRIVATE KEY"),
        lambda d: d.replace(b"\n", b"\n!", 1),
        lambda d: devices._armour(b"MPDK" + bytes(60)),
        lambda d: d + d,
    ],
    ids=["truncated", "empty", "other-label", "bad-base64", "short-body", "doubled"],
)
def test_damaged_files_are_malformed(tmp_path: Path, damage: object) -> None:
    _generate(tmp_path, count=1)
    path = tmp_path / "device-00001.key"
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(KeyStoreError) as err:
        load_device_key(path, PW)
    assert err.value.code == "key.malformed"


def test_swapped_or_renamed_key_files_are_refused(tmp_path: Path) -> None:
    # GIVEN two devices whose key files are swapped
    _generate(tmp_path, count=2)
    a, b = tmp_path / "device-00001.key", tmp_path / "device-00002.key"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    # THEN each is refused: the name sealed inside is authenticated
    for path in (a, b):
        with pytest.raises(KeyStoreError) as err:
            load_device_key(path, PW)
        assert err.value.code == "key.tampered"
    # AND a reader told not to check names still gets the right key for the sealed name
    assert DeviceKeyReader(PW).load(a, check_name=False).public_key() == load_device_csr(
        (tmp_path / "device-00002.csr").read_bytes()
    ).public_key


def test_group_readable_key_file_is_refused(tmp_path: Path) -> None:
    _generate(tmp_path, count=1)
    (tmp_path / "device-00001.key").chmod(0o644)
    with pytest.raises(KeyStoreError) as err:
        load_device_key(tmp_path / "device-00001.key", PW)
    assert err.value.code == "key.permissions"


def test_run_key_never_shows_its_secret() -> None:
    run = RunKey.new(PW, CHEAP)
    assert "secret" not in repr(run) and run._secret.hex() not in repr(run)
    assert "device passphrase" not in repr(DeviceKeyReader(PW))


# -- plans and refusals ------------------------------------------------------------------------------
def test_plan_names_and_limits() -> None:
    assert DevicePlan("d-", 7, 3).first == "d-00007" and DevicePlan("d-", 99_998, 3).last == "d-100000"
    assert DevicePlan("d-", 1, 5).owns("d-00005.key") and not DevicePlan("d-", 1, 5).owns("d-00006.csr")
    assert not DevicePlan("d-", 1, 5).owns("d-0001.csr") and not DevicePlan("d-", 1, 5).owns("d-00001.pem")
    for args, code in [(("d-", 1, 0), "input.count"), (("d-", -1, 1), "input.count"), ((".hidden", 1, 1), "key.name"),
                       (("a b", 1, 1), "key.name"), (("x" * 60, 1, 1), "key.name")]:
        with pytest.raises(InputError) as err:
            DevicePlan(*args)  # type: ignore[arg-type]
        assert err.value.code == code


def test_never_overwrites_and_changes_nothing_when_refusing(tmp_path: Path) -> None:
    # GIVEN a folder holding one of the target names
    out = tmp_path / "out"
    out.mkdir()
    (out / "device-00004.csr").write_bytes(b"mine")
    # WHEN a run would make it
    with pytest.raises(StorageError) as err:
        _generate(out)
    # THEN it is refused before any key is made, and the folder is untouched
    assert err.value.code == "storage.exists" and "device-00004.csr" in err.value.message
    assert [p.name for p in out.iterdir()] == ["device-00004.csr"]


def test_missing_or_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        generate_device_csrs(tmp_path, count=1, passphrase=None, kdf=CHEAP)
    with pytest.raises(KeyStoreError) as err:
        generate_device_csrs(tmp_path, count=1, passphrase=b"", kdf=CHEAP)
    assert err.value.code == "key.passphrase_empty"
    assert list(tmp_path.iterdir()) == []


def test_a_second_run_on_the_same_folder_is_busy(tmp_path: Path) -> None:
    # GIVEN another process holding the folder
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(StorageError) as err:
            _generate(out)
        assert err.value.code == "storage.busy"
    finally:
        os.close(fd)
    assert list(out.iterdir()) == []


def test_worker_processes_make_the_same_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN small chunks so that a few hundred devices spread over two workers (fork and spawn)
    monkeypatch.setattr(devices, "CHUNK", 64)
    progress: list[int] = []
    for method in ("fork", "spawn"):
        out = tmp_path / method
        report = generate_device_csrs(out, count=300, passphrase=PW, kdf=CHEAP, jobs=2, start_method=method,
                                      on_progress=progress.append)
        assert report.made == 300
        _assert_complete(out, [f"device-{i:05d}" for i in range(1, 301)])
    assert sum(progress) == 600


# -- crashes and re-runs ----------------------------------------------------------------------------
_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from matter_pki.local import devices
    target, after = sys.argv[2], int(sys.argv[3])
    calls = {"n": 0}
    real = getattr(devices, target)
    def hook(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > after:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(devices, target, hook)
    devices.CHUNK = 8
    devices.generate_device_csrs(Path(sys.argv[1]), count=20, passphrase=b"device passphrase",
                                 kdf=devices.KdfParams(log2_n=14), jobs=1)
    """
)


def _killed_run(out: Path, target: str, after: int) -> None:
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(out), target, str(after)], cwd=REPO,
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def _assert_crash_invariants(out: Path) -> None:
    """What any instant of a kill may leave: whole keys, CSRs only beside their keys, the journal."""
    reader = DeviceKeyReader(PW)
    finals = [p for p in out.iterdir() if not p.name.startswith(".")]
    for path in finals:
        if path.suffix == ".key":
            reader.load(path)
        elif path.suffix == ".csr":
            key = reader.load(path.with_suffix(".key"))
            assert load_device_csr(path.read_bytes()).public_point == _point(key)
    assert (out / JOURNAL).exists()


@pytest.mark.parametrize(
    ("target", "after"),
    [
        ("write_temp_at", 0), ("write_temp_at", 19), ("sync_filesystem", 1),
        ("_rename_noreplace", 3), ("_rename_noreplace", 8), ("_rename_noreplace", 21), ("publish", 2),
    ],
    ids=["first-write", "mid-writes", "at-second-barrier", "mid-keys", "between-keys-and-csrs", "mid-csrs", "third-chunk"],
)
def test_kill_at_any_step_then_rerun_finishes_exactly(tmp_path: Path, target: str, after: int) -> None:
    # GIVEN a run killed (SIGKILL) at one step of publishing a chunk
    out = tmp_path / "out"
    _killed_run(out, target, after)
    # THEN no final name holds a partial file, and no CSR exists without its key
    _assert_crash_invariants(out)
    # WHEN the same command runs again
    report = generate_device_csrs(out, count=20, passphrase=PW, kdf=CHEAP, jobs=1)
    # THEN it finishes that run: every device complete, temporaries and journal gone
    assert report.resumed and report.made + report.kept + report.rebuilt == 20
    _assert_complete(out, [f"device-{i:05d}" for i in range(1, 21)])
    assert len({parse_device_key((out / f"device-{i:05d}.key").read_bytes()).header for i in range(1, 21)}) == 1


def test_power_loss_leftovers_are_cleaned_and_finished(tmp_path: Path) -> None:
    # GIVEN a run killed while renaming, and then what a power loss does to files never synced:
    # temporaries truncated or gone
    out = tmp_path / "out"
    _killed_run(out, "_rename_noreplace", 3)
    temps = sorted(p for p in out.iterdir() if ".tmp-" in p.name)
    assert temps
    for i, tmp in enumerate(temps):
        if i % 2:
            tmp.unlink()
        else:
            tmp.write_bytes(tmp.read_bytes()[: i % 7])
    # WHEN the run is repeated
    generate_device_csrs(out, count=20, passphrase=PW, kdf=CHEAP, jobs=1)
    # THEN every device is whole
    _assert_complete(out, [f"device-{i:05d}" for i in range(1, 21)])


def test_publication_order_keeps_data_durable_before_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a log of every write, barrier and rename
    events: list[tuple[str, str]] = []
    for fn, tag in (("write_temp_at", "write"), ("_rename_noreplace", "rename"), ("sync_filesystem", "barrier"), ("fsync_dir", "dirsync")):
        real = getattr(devices, fn)

        def hook(*args: object, _real: object = real, _tag: str = tag, **kwargs: object) -> object:
            result = _real(*args, **kwargs)  # type: ignore[operator]
            events.append((_tag, str(args[2] if _tag == "rename" else args[1] if _tag == "write" else "")))
            return result

        monkeypatch.setattr(devices, fn, hook)
    monkeypatch.setattr(devices, "CHUNK", 4)
    _generate(tmp_path / "out", count=8)
    # THEN a file gets its final name only after a barrier that followed its write, and every CSR
    # of a chunk is renamed only after its keys were renamed and the folder synced
    written: dict[str, int] = {}
    last_barrier = last_dirsync = -1
    for i, (tag, name) in enumerate(events):
        if tag == "write":
            written[name] = i
        elif tag == "barrier":
            last_barrier = i
        elif tag == "dirsync":
            last_dirsync = i
        elif tag == "rename":
            assert written[name] < last_barrier, name
            if name.endswith(".csr"):
                key_rename = next(j for j, e in enumerate(events) if e == ("rename", name[:-4] + ".key"))
                assert key_rename < last_dirsync, name


def test_rerun_with_other_options_or_passphrase_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _killed_run(out, "_rename_noreplace", 8)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(StorageError) as err:
        generate_device_csrs(out, count=21, passphrase=PW, kdf=CHEAP, jobs=1)
    assert err.value.code == "storage.incomplete_run" and "--count 20" in err.value.message
    with pytest.raises(KeyStoreError) as wrong:
        generate_device_csrs(out, count=20, passphrase=b"other", kdf=CHEAP, jobs=1)
    assert wrong.value.code == "key.passphrase_wrong"
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.parametrize(
    ("damage", "code"),
    [
        (lambda out: (out / "device-00001.key").unlink(), "storage.exists"),  # a CSR left without its key
        (lambda out: (out / "device-00002.key").write_bytes(_rearmour(_flip(_raw(out / "device-00002.key"), 200))), "key.tampered"),
        (lambda out: (out / "device-00003.csr").write_bytes((out / "device-00004.csr").read_bytes()), "storage.exists"),
        (lambda out: (out / JOURNAL).write_text("{not json"), "storage.unreadable"),
    ],
    ids=["orphan-csr", "tampered-key", "foreign-csr", "damaged-journal"],
)
def test_rerun_refuses_what_it_did_not_make(tmp_path: Path, damage: object, code: str) -> None:
    # GIVEN an interrupted run whose folder was then altered
    out = tmp_path / "out"
    _killed_run(out, "_rename_noreplace", 21)
    damage(out)  # type: ignore[operator]
    # THEN the re-run stops with a coded error instead of overwriting or trusting it
    with pytest.raises(MatterPkiError) as err:
        generate_device_csrs(out, count=20, passphrase=PW, kdf=CHEAP, jobs=1)
    assert err.value.code == code


def test_journal_records_the_run_and_is_removed_at_the_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _killed_run(out, "_rename_noreplace", 3)
    journal = json.loads((out / JOURNAL).read_text())
    assert (journal["prefix"], journal["start"], journal["count"]) == ("device-", 1, 20)
    assert bytes.fromhex(journal["header"]) == parse_device_key((out / "device-00001.key").read_bytes()).header
    generate_device_csrs(out, count=20, passphrase=PW, kdf=CHEAP, jobs=1)
    assert not (out / JOURNAL).exists()


def test_full_disk_is_a_coded_error_and_the_run_finishes_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a disk that fills up while the second chunk is written
    monkeypatch.setattr(devices, "CHUNK", 4)
    real = devices.write_temp_at
    calls = {"n": 0}

    def full(*args: object, **kwargs: object) -> str:
        calls["n"] += 1
        if calls["n"] == 11:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(devices, "write_temp_at", full)
    out = tmp_path / "out"
    # WHEN a run hits it
    with pytest.raises(StorageError) as err:
        _generate(out, count=12)
    # THEN a coded error, no temporary left, only whole devices, the journal kept
    assert err.value.code == "storage.write_failed" and "No space left" in err.value.message
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    _assert_crash_invariants(out)
    # AND once there is room, the same command finishes the run
    monkeypatch.setattr(devices, "write_temp_at", real)
    report = _generate(out, count=12)
    assert (report.kept, report.made) == (4, 8)
    _assert_complete(out, [f"device-{i:05d}" for i in range(1, 13)])
