"""Cost of ``validate_att_cert`` per well-formed chain, against a bound measured in the same run.

    python benchmarks/bench_validate.py [--n 2000] [--rounds 5] [--against REF]

* bound: what any chip-parity validator must do at least: load the three certificates with
  ``cryptography`` and verify the PAI and DAC signatures (ECDSA P-256);
* ``validate_att_cert`` in ``chip-cert`` and ``commissioner`` order on the same chain (the generated
  ``baseline`` vector, which the release gate's chains resemble);
* with ``--against REF`` (a git ref, e.g. ``main``), the same measurement of that revision's validator in
  a child process, and the ratio now / then.

CPU time (``time.process_time``) is used and the best of the interleaved rounds counts, so a loaded
machine skews the figures less; ratios to the bound are what to compare between machines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VECTOR = ROOT / "tests" / "vectors" / "attestation" / "baseline"
AT = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)

_MEASURE = r"""
import json, sys, time
from datetime import datetime, UTC
from pathlib import Path
from matter_pki.validate import validate_att_cert
n, rounds, vector = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
paa, pai, dac = ((vector / f"{r}.der").read_bytes() for r in ("paa", "pai", "dac"))
at = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
out = {}
for mode in ("chip-cert", "commissioner"):
    assert validate_att_cert(paa=paa, pai=pai, dac=dac, at=at, mode=mode).ok
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            validate_att_cert(paa=paa, pai=pai, dac=dac, at=at, mode=mode)
        best = min(best, (time.process_time() - start) / n)
    out[mode] = best
print(json.dumps(out))
"""


def bound(n: int, rounds: int, paa: bytes, pai: bytes, dac: bytes) -> float:
    """Best CPU seconds per chain for: load three certificates, verify two ECDSA signatures."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    ecdsa = ec.ECDSA(hashes.SHA256())
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            a, i, d = (x509.load_der_x509_certificate(x) for x in (paa, pai, dac))
            for issuer, subject in ((a, i), (i, d)):
                key = issuer.public_key()
                assert isinstance(key, ec.EllipticCurvePublicKey)
                key.verify(subject.signature, subject.tbs_certificate_bytes, ecdsa)
        best = min(best, (time.process_time() - start) / n)
    return best


def measure(pythonpath: Path, n: int, rounds: int) -> dict[str, float]:
    """validate_att_cert per chain (CPU seconds) for the package under ``pythonpath``, in a child process."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(n), str(rounds), str(VECTOR)],
        env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def checkout(ref: str, into: Path) -> Path:
    """``matter_pki`` of a git revision, unpacked under ``into``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "matter_pki"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    """Print per-chain costs and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", help="a git ref whose validator is measured too")
    args = parser.parse_args()
    paa, pai, dac = ((VECTOR / f"{r}.der").read_bytes() for r in ("paa", "pai", "dac"))
    floor = bound(args.n, args.rounds, paa, pai, dac)
    now = measure(ROOT, args.n, args.rounds)
    print(f"bound (load 3 certificates + verify 2 signatures): {floor * 1e6:8.0f} us/chain")
    for mode, cost in now.items():
        print(f"validate_att_cert {mode:12}:               {cost * 1e6:8.0f} us/chain  ratio to bound {cost / floor:.2f}")
    if args.against:
        with tempfile.TemporaryDirectory() as tmp:
            then = measure(checkout(args.against, Path(tmp)), args.n, args.rounds)
        for mode, cost in then.items():
            print(f"{args.against} validate_att_cert {mode:12}: {cost * 1e6:8.0f} us/chain  now/then {now[mode] / cost:.2f}")


if __name__ == "__main__":
    main()
