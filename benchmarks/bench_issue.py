"""DAC issuance throughput against the hardware bound, on this machine, in one run.

    python benchmarks/bench_issue.py [--n 20000] [--rounds 3] [--jobs 0] [--pem]

1. Raw bound, per core: for each CSR, verify its signature with its key (parsed before the clock
   starts, used once, as in the real job) and make one ECDSA P-256 signature over a DAC TBS, with
   cryptography (the library issuance uses). Nothing else is timed: no key parsing, no DER work.
2. ``issue_batch`` on 1 core (``jobs=1``) and on all cores, over the same N CSRs (DER, as a
   Matter device sends them in CSRResponse; ``--pem`` feeds PEM files instead).
3. The same job as a plain loop: load CSR, verify, CertificateBuilder, sign, PEM.
4. Every DAC of every timed run is checked (outside the timing): ECDSA signature with the PAI key,
   and byte-level profile equality (its TBS equals the profile builder's TBS with this DAC's
   serial, key and SKID put in, and the certificate is exactly TBS + ecdsa-with-SHA256 + signature).
   1% of them (every 100th of each run) also go through the full chip-parity validator and a
   byte-for-byte comparison with a TBS freshly built by ``DacProfile.builder``.

Rounds are interleaved (raw bound, 1 core, all cores) and the best round of each counts, so the
ratio's numerator and denominator are measured side by side. CSRs are generated once and cached in
``.cache/bench/``. The last two lines are ``ratio=`` (1-core DACs/s / raw bound) and ``scaling=``
(all cores / 1 core).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import struct
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matter_pki import der  # noqa: E402
from matter_pki.batch import BatchContext, BatchItem, issue_batch  # noqa: E402
from matter_pki.profiles import DacProfile, PaaProfile, PaiProfile, Validity, sign  # noqa: E402
from matter_pki.validate import validate_att_cert  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
CSR_CACHE = CACHE / "csrs-p256-pem.bin"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
PID = 0x8000
ECDSA = ec.ECDSA(hashes.SHA256())


class PemKey:
    """Picklable signer factory for the benchmark's PAI key (unencrypted: a throwaway key)."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        key = load_pem_private_key(self.pem, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


# -- inputs ----------------------------------------------------------------------------------------
def _make_csr(_: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    # What the Matter SDK sends: subject O=CSR, no attributes, ecdsa-with-SHA256.
    name = x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "CSR")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def load_csrs(n: int) -> list[bytes]:
    """N PEM CSRs from the cache, generating (in parallel) and appending what is missing."""
    have: list[bytes] = []
    if CSR_CACHE.exists():
        data = CSR_CACHE.read_bytes()
        pos = 0
        while pos < len(data) and len(have) < n:
            (size,) = struct.unpack_from(">H", data, pos)
            have.append(data[pos + 2 : pos + 2 + size])
            pos += 2 + size
    if len(have) < n:
        missing = n - len(have)
        print(f"generating {missing} CSRs into {CSR_CACHE} ...", flush=True)
        with multiprocessing.get_context("fork").Pool() as pool:
            new = pool.map(_make_csr, range(missing), chunksize=256)
        CACHE.mkdir(parents=True, exist_ok=True)
        with CSR_CACHE.open("ab") as fh:
            for pem in new:
                fh.write(struct.pack(">H", len(pem)) + pem)
        have.extend(new)
    return have


def make_chain() -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A PAA (VID FFF1) and a PAI (VID FFF1, no PID) with fresh keys."""
    k_paa, k_pai = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    paa = sign(PaaProfile(vid=0xFFF1, validity=Validity.no_expiry(NOW)).builder(k_paa.public_key(), serial=1), k_paa)
    pai_profile = PaiProfile(vid=0xFFF1, validity=Validity.no_expiry(NOW))
    pai = sign(pai_profile.builder(k_pai.public_key(), serial=2, issuer=paa), k_paa)
    return paa, pai, k_pai


# -- measurements ----------------------------------------------------------------------------------
def raw_bound(csrs: list[bytes], key: ec.EllipticCurvePrivateKey, tbs: bytes) -> float:
    """Verifications + signatures per second, one core; each CSR key parsed before the clock starts, used once."""
    work = []
    for data in csrs:
        csr = x509.load_der_x509_csr(data) if data[:1] == b"\x30" else x509.load_pem_x509_csr(data)
        public = csr.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        work.append((public, csr.signature, csr.tbs_certrequest_bytes))
    start = time.perf_counter()
    for public, signature, info in work:
        public.verify(signature, info, ECDSA)
        key.sign(tbs, ECDSA)
    return len(work) / (time.perf_counter() - start)


def hot_loop_bound(csr: bytes, key: ec.EllipticCurvePrivateKey, tbs: bytes, count: int) -> float:
    """The same with one CSR over and over (what openssl speed measures: warm key, warm caches)."""
    loaded = x509.load_der_x509_csr(csr) if csr[:1] == b"\x30" else x509.load_pem_x509_csr(csr)
    public, signature, info = loaded.public_key(), loaded.signature, loaded.tbs_certrequest_bytes
    assert isinstance(public, ec.EllipticCurvePublicKey)
    start = time.perf_counter()
    for _ in range(count):
        public.verify(signature, info, ECDSA)
        key.sign(tbs, ECDSA)
    return count / (time.perf_counter() - start)


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_batch(
    csrs: list[bytes], ctx: BatchContext, jobs: int, start_method: str | None
) -> tuple[float, float, list[tuple[bytes, int]]]:
    """DACs/s through issue_batch, CPU seconds per DAC (this process and its workers), and the DACs."""
    out: list[tuple[bytes, int]] = []
    cpu = _cpu()
    start = time.perf_counter()
    for result in issue_batch(
        (BatchItem(f"d{i}", pem) for i, pem in enumerate(csrs)), ctx, jobs=jobs, start_method=start_method
    ):
        if result.dac_der is None or result.serial is None:
            raise SystemExit(f"refused {result.name}: {result.error_code} {result.error_message}")
        out.append((result.dac_der, result.serial))
    elapsed = time.perf_counter() - start
    return len(out) / elapsed, (_cpu() - cpu) / len(out), out


def plain_loop(csrs: list[bytes], pai: x509.Certificate, key: ec.EllipticCurvePrivateKey, validity: Validity) -> float:
    """The straightforward loop: load CSR, verify, builder, sign, PEM; one certificate at a time."""
    profile = DacProfile.for_issuer(pai, pid=PID, validity=validity)
    subject, issuer = profile.subject(), pai.subject
    pai_skid = pai.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    akid = x509.AuthorityKeyIdentifier(pai_skid, None, None)
    bc, ku = profile.basic_constraints(), profile.key_usage()
    start = time.perf_counter()
    for data in csrs:
        csr = x509.load_der_x509_csr(data) if data[:1] == b"\x30" else x509.load_pem_x509_csr(data)
        if not csr.is_signature_valid:
            raise SystemExit("bad CSR signature")
        public = csr.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity.not_before)
            .not_valid_after(validity.not_after)
            .add_extension(bc, critical=True)
            .add_extension(ku, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)  # type: ignore[arg-type]
            .add_extension(akid, critical=False)
        )
        builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)
    return len(csrs) / (time.perf_counter() - start)


# -- checks (outside the timing) ---------------------------------------------------------------------
_check: dict[str, object] = {}


def _check_init(state: dict[str, object]) -> None:
    _check.update(state)


def _point(data: bytes) -> bytes:
    csr = x509.load_der_x509_csr(data) if data[:1] == b"\x30" else x509.load_pem_x509_csr(data)
    return csr.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _spki(point: bytes) -> bytes:
    return bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + point


def check_slice(args: tuple[list[tuple[bytes, int]], list[bytes], list[bool]]) -> int:
    """Check DACs (with their CSRs); returns how many went through the full validator."""
    dacs, csrs, full = args
    st = _check
    pai_key = st["pai_key"]
    assert isinstance(pai_key, ec.EllipticCurvePublicKey)
    ref_body, ref_serial_tlv, ref_spki, ref_skid = (st[k] for k in ("ref_body", "ref_serial_tlv", "ref_spki", "ref_skid"))
    assert isinstance(ref_body, bytes) and isinstance(ref_serial_tlv, bytes) and isinstance(ref_spki, bytes) and isinstance(ref_skid, bytes)
    validated = 0
    for (dac, serial), pem, deep in zip(dacs, csrs, full, strict=True):
        cert = x509.load_der_x509_certificate(dac)
        tbs = cert.tbs_certificate_bytes
        pai_key.verify(cert.signature, tbs, ECDSA)
        point = _point(pem)
        skid = hashlib.sha1(point).digest()  # noqa: S324 - RFC 5280 method 1
        # The profile builder's TBS with this DAC's own serial, key and SKID substituted (each
        # reference field occurs once), re-wrapped with its new length.
        expected = der.encode_tlv(
            der.SEQUENCE,
            ref_body.replace(ref_serial_tlv, der.encode_integer(serial), 1).replace(ref_spki, _spki(point), 1).replace(ref_skid, skid, 1),
        )
        if tbs != expected or cert.serial_number != serial:
            raise SystemExit(f"DAC serial {serial:x}: TBS differs from the profile's")
        sig_alg = der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.840.10045.4.3.2"))
        bits = der.encode_tlv(der.BIT_STRING, b"\0" + cert.signature)
        if dac != der.encode_tlv(der.SEQUENCE, tbs + sig_alg + bits):
            raise SystemExit(f"DAC serial {serial:x}: outer structure is not the expected DER")
        if deep:
            profile = st["profile"]
            assert isinstance(profile, DacProfile)
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
            built = sign(profile.builder(public, serial=serial, issuer=st["pai"]), st["throwaway"])  # type: ignore[arg-type]
            if built.tbs_certificate_bytes != tbs:
                raise SystemExit(f"DAC serial {serial:x}: differs from a freshly built TBS")
            result = validate_att_cert(paa=st["paa_der"], pai=st["pai_der"], dac=dac, at=st["at"], mode="commissioner")  # type: ignore[arg-type]
            if not result.ok:
                raise SystemExit(f"DAC serial {serial:x}: validator says {result.code} {result.reason}")
            validated += 1
    return validated


def check_all(pool: object, runs: list[list[tuple[bytes, int]]], csrs: list[bytes], sample: float) -> tuple[int, int]:
    """Check every DAC of every run; returns (checked, fully validated)."""
    every = max(1, int(1 / sample))
    tasks = []
    for dacs in runs:
        full = [i % every == 0 for i in range(len(dacs))]
        for lo in range(0, len(dacs), 1000):
            tasks.append((dacs[lo : lo + 1000], csrs[lo : lo + 1000], full[lo : lo + 1000]))
    validated = sum(pool.map(check_slice, tasks))  # type: ignore[attr-defined]
    return sum(len(d) for d in runs), validated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="DACs per run (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each counts")
    parser.add_argument("--jobs", type=int, default=0, help="all-cores run: worker processes (0 = every core)")
    parser.add_argument("--raw-n", type=int, default=4000, help="CSRs per raw-bound round")
    parser.add_argument("--sample", type=float, default=0.01, help="fraction of DACs through the full validator")
    parser.add_argument("--start-method", choices=["fork", "spawn"], default=None)
    parser.add_argument("--pem", action="store_true", help="feed PEM CSRs (default: DER, as a Matter device sends them)")
    args = parser.parse_args()
    cores = args.jobs or len(os.sched_getaffinity(0))

    csrs = load_csrs(args.n)
    if not args.pem:
        csrs = [x509.load_pem_x509_csr(pem).public_bytes(Encoding.DER) for pem in csrs]
    paa, pai, pai_key = make_chain()
    validity = Validity.for_days(NOW + timedelta(hours=1), 365)
    factory = PemKey(pai_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    ctx = BatchContext(
        paa_der=paa.public_bytes(Encoding.DER), pai_der=pai.public_bytes(Encoding.DER),
        signer_factory=factory, pid=PID, validity=validity,
    )
    profile = DacProfile.for_issuer(pai, pid=PID, validity=validity)
    ref_key = ec.generate_private_key(ec.SECP256R1())
    ref_serial = 0x1234567890ABCDEF
    ref = sign(profile.builder(ref_key.public_key(), serial=ref_serial, issuer=pai), pai_key)
    ref_tbs = ref.tbs_certificate_bytes
    ref_point = ref_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}")
    print(f"N={args.n} {'PEM' if args.pem else 'DER'} CSRs, rounds={args.rounds}, all cores = {cores} workers")
    raw_n = min(args.raw_n, args.n)
    best = {"raw": 0.0, "one": 0.0, "all": 0.0}
    cpu_one = cpu_all = float("inf")
    runs: list[list[tuple[bytes, int]]] = []
    for r in range(args.rounds):
        raw = raw_bound(csrs[r * raw_n % args.n :][:raw_n] or csrs[:raw_n], pai_key, ref_tbs)
        one, cpu1, dacs_one = run_batch(csrs, ctx, 1, args.start_method)
        many, cpun, dacs_all = run_batch(csrs, ctx, cores, args.start_method)
        cpu_one, cpu_all = min(cpu_one, cpu1), min(cpu_all, cpun)
        runs += [dacs_one, dacs_all]
        best["raw"], best["one"], best["all"] = max(best["raw"], raw), max(best["one"], one), max(best["all"], many)
        print(f"round {r + 1}: raw bound {raw:,.0f}/s  1 core {one:,.0f} DACs/s ({one / raw:.3f})  {cores} cores {many:,.0f} DACs/s")
    plain = plain_loop(csrs, pai, pai_key, validity)
    hot = hot_loop_bound(csrs[0], pai_key, ref_tbs, raw_n)

    state = {
        "pai_key": pai.public_key(), "pai": pai, "profile": profile, "throwaway": ref_key,
        "paa_der": ctx.paa_der, "pai_der": ctx.pai_der, "at": validity.not_before + timedelta(seconds=1),
        "ref_body": der.read_tlv(ref_tbs).value(ref_tbs), "ref_serial_tlv": der.encode_integer(ref_serial),
        "ref_spki": _spki(ref_point), "ref_skid": hashlib.sha1(ref_point).digest(),  # noqa: S324
    }
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(cores, initializer=_check_init, initargs=(state,)) as pool:
        checked, validated = check_all(pool, runs, csrs, args.sample)
    serials = [s for dacs in runs for _, s in dacs]
    per_run_unique = all(len({s for _, s in dacs}) == len(dacs) for dacs in runs)
    print(
        f"checked {checked} DACs: signature + byte-level profile equality all OK; {validated} "
        f"({validated / checked:.1%}) also full validator + fresh-builder TBS OK; serials unique per run: "
        f"{per_run_unique}, across runs: {len(set(serials)) == len(serials)}  [{time.perf_counter() - start:.1f} s]"
    )
    print(f"load average now {os.getloadavg()[0]:.2f}")
    print(f"raw bound (verify + sign, 1 core, each CSR key used once): {best['raw']:,.0f}/s")
    print(f"  for reference, one key over and over (as openssl speed): {hot:,.0f}/s")
    print(f"issue_batch 1 core:  {best['one']:,.0f} DACs/s")
    print(f"issue_batch {cores} cores: {best['all']:,.0f} DACs/s")
    print(f"plain cryptography loop, 1 core: {plain:,.0f} DACs/s ({plain / best['raw']:.2f} of the raw bound)")
    print(
        f"CPU per DAC: {cpu_one * 1e6:.1f} µs on 1 core, {cpu_all * 1e6:.1f} µs with {cores} workers (parent included): "
        f"scaling on an idle machine at most {cores * cpu_one / cpu_all:.2f}"
    )
    print(f"ratio={best['one'] / best['raw']:.3f}")
    print(f"scaling={best['all'] / best['one']:.3f}")


if __name__ == "__main__":
    main()
