"""Differential harness: mutated chains through this validator and through chip's own checks.

Each chain comes from ``matter_pki.testing.mutate`` (one to three field mutations, re-signed by the
right issuer). It is judged four ways, in both check orders (``chip-cert`` and ``commissioner``):

* ``ours``: ``matter_pki.validate.validate_att_cert``;
* ``openssl``: chip's checks rebuilt on the system OpenSSL 3 (``openssl_chip.py``) — the reference
  the project's verdicts follow (chip-cert and chip-tool on Linux);
* ``sdk``: the Matter SDK wheel's compiled checks (``chip_sdk.py``), which link BoringSSL;
* ``ours.boringssl``: the BoringSSL verdict this validator predicts where the two libraries differ.

A reference that crashes, or (chip-cert) cannot read a certificate, gives no code: the chain counts
for the verdict (ours must call it invalid) and not for the code.

``python -m tests.conformance.differential --count 3000`` runs a fresh seed and prints the rates.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from matter_pki.testing.mutate import random_chain
from matter_pki.validate import validate_att_cert

from .openssl_chip import NO_VERDICT, OpenSSLChip, RefVerdict

MODES = ("chip-cert", "commissioner")
# validator vs chip on OpenSSL 3 (the verdict); its BoringSSL prediction vs the SDK wheel; the two references.
COMPARISONS = ("ours~openssl", "ours.boringssl~sdk", "openssl~sdk")


@dataclass
class Case:
    """One mutated chain and every verdict it got."""

    index: int
    labels: list[str]
    paa: bytes
    pai: bytes
    dac: bytes
    ours: dict[str, tuple[int, str | None, str]] = field(default_factory=dict)
    ours_boringssl: dict[str, int | None] = field(default_factory=dict)
    openssl: dict[str, RefVerdict] = field(default_factory=dict)
    sdk: dict[str, int | str | None] = field(default_factory=dict)


@dataclass
class Rates:
    """Agreement counts for one comparison in one mode."""

    chains: int = 0
    verdict_agree: int = 0
    both_invalid: int = 0
    code_agree: int = 0
    undecided: int = 0

    @property
    def verdict_rate(self) -> float:
        """Share of chains with the same valid/invalid verdict."""
        return self.verdict_agree / self.chains if self.chains else 1.0

    @property
    def code_rate(self) -> float:
        """Share of chains both call invalid (with a reference code) that get the same code."""
        return self.code_agree / self.both_invalid if self.both_invalid else 1.0

    def line(self) -> str:
        """One summary line."""
        return (
            f"verdict {self.verdict_agree}/{self.chains} = {100 * self.verdict_rate:.2f}%  "
            f"code {self.code_agree}/{self.both_invalid} = {100 * self.code_rate:.2f}%"
            + (f"  (no reference code: {self.undecided})" if self.undecided else "")
        )


def generate(seed: int, count: int, now: datetime, deterministic: bool = False) -> list[Case]:
    """``count`` mutated chains from ``seed`` (byte-for-byte reproducible with ``deterministic``)."""
    rng = random.Random(seed)
    cases = []
    for index in range(count):
        chain, labels = random_chain(rng, now)
        paa, pai, dac = chain.build(deterministic=deterministic)
        cases.append(Case(index, labels, paa, pai, dac))
    return cases


def judge(cases: list[Case], now: datetime, use_sdk: bool) -> None:
    """Fill in every verdict."""
    ref = OpenSSLChip()
    for case in cases:
        for mode in MODES:
            result = validate_att_cert(paa=case.paa, pai=case.pai, dac=case.dac, at=now, mode=mode)  # type: ignore[arg-type]
            case.ours[mode] = (int(result.result), result.code, result.reason)
            bssl = result.boringssl_result
            case.ours_boringssl[mode] = int(bssl) if bssl is not None else int(result.result)
            run = ref.chip_cert if mode == "chip-cert" else ref.commissioner
            case.openssl[mode] = run(case.paa, case.pai, case.dac, now)
    if use_sdk:
        from .chip_sdk import sdk_commissioner_many, sdk_validate_many

        triples = [(c.paa, c.pai, c.dac) for c in cases]
        for mode, fn in (("chip-cert", sdk_validate_many), ("commissioner", sdk_commissioner_many)):
            for case, verdict in zip(cases, fn(triples), strict=True):
                # What stops chip before any check (a file OpenSSL cannot read, a certificate over 600
                # bytes) stops a BoringSSL build too; the wheel's composition has no such step.
                stopped = case.openssl[mode].code == NO_VERDICT
                case.sdk[mode] = NO_VERDICT if stopped else verdict.code


def compare(ours: int, ref: int | str | None, rates: Rates) -> bool:
    """Count one chain; True when verdict and (where there is one) code agree."""
    rates.chains += 1
    ref_valid = ref == 0
    agree = (ours == 0) == ref_valid
    rates.verdict_agree += agree
    if not isinstance(ref, int):
        rates.undecided += 1
        return agree
    if ours != 0 and ref != 0:
        rates.both_invalid += 1
        rates.code_agree += ours == ref
        return ours == ref
    return agree


def summarise(cases: list[Case], use_sdk: bool) -> tuple[dict[str, Rates], dict[str, Counter[str]]]:
    """Rates per comparison and mode, and the mutation labels of the disagreements."""
    rates: dict[str, Rates] = {}
    misses: dict[str, Counter[str]] = {}
    for mode in MODES:
        for name in COMPARISONS if use_sdk else COMPARISONS[:1]:
            key = f"{mode:12} {name}"
            rates[key] = Rates()
            misses[key] = Counter()
            for case in cases:
                if name == "ours~openssl":
                    left: int = case.ours[mode][0]
                    right: int | str | None = case.openssl[mode].code
                elif name == "ours.boringssl~sdk":
                    left, right = case.ours_boringssl[mode] or 0, case.sdk[mode]
                else:
                    opens = case.openssl[mode].code
                    left, right = (opens if isinstance(opens, int) else -1), case.sdk[mode]
                if not compare(left, right, rates[key]):
                    for label in case.labels:
                        misses[key][label] += 1
    return rates, misses


def main(argv: list[str] | None = None) -> int:
    """Run a fresh (or given) seed and print agreement rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=None, help="default: a fresh random seed")
    parser.add_argument("--no-sdk", action="store_true", help="skip the SDK wheel (BoringSSL) comparisons")
    parser.add_argument("--show", type=int, default=10, help="print this many disagreeing chains per comparison")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbits(48)
    now = datetime.now(UTC).replace(microsecond=0)
    use_sdk = not args.no_sdk
    if use_sdk:
        from .chip_sdk import sdk_available

        ok, reason = sdk_available()
        if not ok:
            print(f"SDK wheel unavailable ({reason}); OpenSSL comparison only", file=sys.stderr)
            use_sdk = False
    start = time.perf_counter()
    cases = generate(seed, args.count, now)
    judge(cases, now, use_sdk)
    rates, misses = summarise(cases, use_sdk)
    print(f"seed {seed}, {len(cases)} chains, {time.perf_counter() - start:.1f} s")
    print("ours = matter_pki.validate; openssl = chip's checks on libcrypto 3; sdk = the Matter SDK wheel (BoringSSL)")
    for key, r in rates.items():
        print(f"{key:32} {r.line()}")
    for key, counter in misses.items():
        if counter:
            print(f"\n{key}: labels of disagreeing chains: {counter.most_common(12)}")
    if args.show:
        for mode in MODES:
            shown = 0
            for case in cases:
                ours, ref = case.ours[mode], case.openssl[mode]
                if ((ours[0] == 0) != (ref.code == 0)) or (isinstance(ref.code, int) and ref.code and ours[0] and ours[0] != ref.code):
                    print(f"[{mode}] #{case.index} {case.labels}: ours {ours[0]} [{ours[1]}] {ours[2][:80]} | openssl {ref.code} {ref.detail[:80]}")
                    shown += 1
                    if shown >= args.show:
                        break
    return 0


if __name__ == "__main__":
    sys.exit(main())
