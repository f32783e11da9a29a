"""Factory throughput end to end, side by side on this machine, in one run.

    python benchmarks/bench_e2e.py [--n 20000] [--rss 10000,100000] [--jobs 0] [--rounds 2] [--no-peer] [--keep]
    python benchmarks/bench_e2e.py --smoke        # every phase with tiny N: checks the output, not the speed

1. Raw bound per core (as ``bench_issue.py`` measures it): verify each CSR's signature with its
   key and make one ECDSA P-256 signature, with cryptography, each CSR key used once.
2. ``issue_batch`` on all cores over the same N CSRs (PEM, as the CLI reads them).
3. The CLI end to end: ``matter-pki dac issue --jobs <cores>`` on N fresh CSRs (``<name>.csr``
   files), in a fresh home and a fresh output folder; wall time of the command, process start
   included. A sample of the DACs goes through the full validator.
4. The CLI re-delivering the same N from its ledger into a new folder (the DACs must be the same bytes).
5. ``matter-pki csr generate --count N --jobs <cores>`` (process start and the passphrase KDF included).
6. The peer a manufacturer would otherwise use: esp-matter-mfg-tool 1.0.29 in its minimal mode
   (``--no-bin --enable-dynamic-passcode``: it makes the keys itself, signs DACs with the same
   kind of PAI, no CSR, no validation), as shipped (one process), in a virtualenv this script
   creates under ``.cache/bench/`` (the tool pins an older cryptography). Skipped with the
   reason when it cannot be installed (no network, no pip).
7. Peak RSS of ``dac issue`` (its largest process) at each ``--rss`` size, each in a fresh home,
   measured by a fresh wrapper process with ``getrusage(RUSAGE_CHILDREN)``.

The last lines are ``key=value``: ``e2e_ratio`` (CLI DACs/s / (cores x raw bound)),
``e2e_ceiling`` (the raw bound's CPU µs per DAC / the CLI's CPU µs per DAC: the ``e2e_ratio`` the
CLI would reach with every core busy all the time), ``cli_cpu_us_parent`` / ``cli_cpu_us_children`` (CPU per
DAC of the issuing process and of its workers and writer, from ``getrusage``), ``cli_core_use``
(that CPU time / (cores x wall time)),
``peer_ratio`` (CLI DACs/s / peer DACs/s), ``redelivery_ratio`` (re-delivery / issuing),
``csr_generate_per_s``, ``rss_<n>_mib`` and ``rss_ratio`` (largest / smallest size).
Output folders are kept until the end of the run (deleting many files slows the next creations
on some file systems) and removed then, unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_issue import PID, PemKey, load_csrs, make_chain, raw_bound, run_batch  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat  # noqa: E402

from matter_pki.batch import BatchContext  # noqa: E402
from matter_pki.profiles import DacProfile, Validity, sign  # noqa: E402
from matter_pki.validate import validate_att_cert  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
PEER = "esp-matter-mfg-tool"
PEER_VERSION = "1.0.29"
PEER_VENV = CACHE / f"{PEER}-{PEER_VERSION}"
ECDSA = ec.ECDSA(hashes.SHA256())
PASSPHRASE = "bench passphrase"
DEVICE_PASSPHRASE = "bench device passphrase"
# Runs the CLI in this process (as the ``matter-pki`` script does) and reports its CPU time on stderr:
# the issuing process (RUSAGE_SELF) and its workers and writer (RUSAGE_CHILDREN, all waited for).
_CPU_WRAPPER = (
    "import resource, sys\n"
    "from matter_pki.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    "else:\n"
    "    code = 0\n"
    "me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print('CPU', me.ru_utime, me.ru_stime, kids.ru_utime, kids.ru_stime, file=sys.stderr)\n"
    "sys.exit(code)\n"
)
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True)\n"
    "sys.stderr.buffer.write(done.stderr[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(done.returncode)\n"
)


def say(message: str) -> None:
    """Progress on stdout, flushed (a run takes minutes)."""
    print(message, flush=True)


def cli_command() -> list[str]:
    """The installed ``matter-pki`` next to this interpreter, else the module through ``-c``."""
    script = Path(sys.executable).parent / "matter-pki"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from matter_pki.cli import main; main()"]


def cli_env() -> dict[str, str]:
    """The environment of every CLI run: passphrases set, nothing inherited that points at a home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATTER_PKI_")}
    env.update(MATTER_PKI_PASSPHRASE=PASSPHRASE, MATTER_PKI_DEVICE_PASSPHRASE=DEVICE_PASSPHRASE, MATTER_PKI_OPERATOR="bench")
    return env


def run(args: list[str], what: str, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run a command; wall seconds and stdout. Exits with the command's stderr when it fails."""
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env or cli_env(), check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{what} failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def fresh_home(work: Path, tag: str) -> Path:
    """A new PKI home with a PAA (VID FFF1) and pai-1 (PID 8000); not timed."""
    home = work / f"home-{tag}"
    run([*cli_command(), "init", "--home", str(home), "--vid", "FFF1"], "init")
    run([*cli_command(), "pai", "create", "--home", str(home), "--pid", "8000"], "pai create")
    return home


def raw_cpu(csrs: list[bytes], key: ec.EllipticCurvePrivateKey, tbs: bytes) -> float:
    """CPU µs (this process) per CSR of the raw bound's loop: the same work as ``raw_bound``, timed in CPU, not wall, time."""
    work = []
    for data in csrs:
        csr = x509.load_pem_x509_csr(data)
        public = csr.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        work.append((public, csr.signature, csr.tbs_certrequest_bytes))
    start = time.process_time()
    for public, signature, info in work:
        public.verify(signature, info, ECDSA)
        key.sign(tbs, ECDSA)
    return (time.process_time() - start) / len(work) * 1e6


def write_csr_folder(folder: Path, csrs: list[bytes]) -> Path:
    """One ``<name>.csr`` per CSR (not timed)."""
    folder.mkdir(parents=True)
    for i, pem in enumerate(csrs):
        (folder / f"dev-{i:06d}.csr").write_bytes(pem)
    return folder


def dac_issue(home: Path, csr_dir: Path, out: Path, jobs: int) -> float:
    """Wall seconds of ``dac issue`` (process start included)."""
    args = ["dac", "issue", "--home", str(home), "--pai", "pai-1", "--csr", str(csr_dir), "--out", str(out), "--jobs", str(jobs)]
    elapsed, _ = run([*cli_command(), *args], "dac issue")
    return elapsed


def dac_issue_cpu(home: Path, csr_dir: Path, out: Path, jobs: int) -> tuple[float, float, float, float]:
    """Wall seconds of ``dac issue`` (process start included), the CPU seconds of its process and of its children,
    and the part of both spent in the kernel."""
    args = ["dac", "issue", "--home", str(home), "--pai", "pai-1", "--csr", str(csr_dir), "--out", str(out), "--jobs", str(jobs)]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CPU_WRAPPER, *args], capture_output=True, text=True, env=cli_env(), check=False)
    elapsed = time.perf_counter() - start
    lines = [line.split() for line in done.stderr.splitlines() if line.startswith("CPU ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"dac issue failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    user, system, child_user, child_system = map(float, lines[-1][1:])
    return elapsed, user + system, child_user + child_system, system + child_system


def check_dacs(out: Path, names: list[str], samples: int) -> None:
    """Every DAC exists; ``samples`` of them pass the full validator against the folder's chain."""
    missing = [n for n in names if not (out / f"{n}.pem").is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} DACs missing in {out}, e.g. {missing[0]}")
    paa, pai = (_der(out / f"{ca}.pem") for ca in ("paa", "pai"))
    step = max(1, len(names) // max(1, samples))
    for name in names[::step]:
        result = validate_att_cert(paa=paa, pai=pai, dac=_der(out / f"{name}.pem"), at=datetime.now(UTC), mode="commissioner")
        if not result.ok:
            raise SystemExit(f"{out / name}.pem does not validate: {result.code} {result.reason}")


def _der(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)


def same_files(a: Path, b: Path, names: list[str]) -> bool:
    """True when every ``<name>.pem`` is byte-identical in both folders."""
    return all((a / f"{n}.pem").read_bytes() == (b / f"{n}.pem").read_bytes() for n in names)


def peak_rss_mib(home: Path, csr_dir: Path, out: Path, jobs: int) -> tuple[float, float]:
    """Peak RSS (MiB) of the largest ``dac issue`` process, from a fresh wrapper process, and wall seconds."""
    args = ["dac", "issue", "--home", str(home), "--pai", "pai-1", "--csr", str(csr_dir), "--out", str(out), "--jobs", str(jobs)]
    elapsed, stdout = run([sys.executable, "-c", _RSS_WRAPPER, *cli_command(), *args], "dac issue (RSS)")
    return int(stdout.strip().splitlines()[-1]) / 1024, elapsed


# -- the peer tool ---------------------------------------------------------------------------------
def peer_tool(venv: Path) -> tuple[Path | None, str]:
    """The peer's executable, installed once into its own virtualenv; (None, reason) when impossible."""
    exe = venv / "bin" / PEER
    if exe.is_file() and (venv / ".installed").is_file():
        return exe, "cached"
    shutil.rmtree(venv, ignore_errors=True)
    say(f"installing {PEER}=={PEER_VERSION} into {venv} (once) ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", f"{PEER}=={PEER_VERSION}"],
            capture_output=True, text=True, timeout=900, check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"cannot create its virtualenv: {e}"
    if done.returncode != 0 or not exe.is_file():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"pip install {PEER}=={PEER_VERSION} failed: {last[0]}"
    (venv / ".installed").write_text(f"{PEER}=={PEER_VERSION}\n")
    return exe, "installed"


def run_peer(exe: Path, work: Path, n: int) -> float:
    """Wall seconds for the peer to make ``n`` keys and DACs under our kind of PAI (VID FFF1, PID 8000)."""
    peer_dir = work / "peer"
    peer_dir.mkdir()
    _paa, pai, pai_key = make_chain()
    (peer_dir / "pai.pem").write_bytes(pai.public_bytes(Encoding.PEM))
    (peer_dir / "pai_key.pem").write_bytes(pai_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    args = [str(exe), "-n", str(n), "-v", "0xFFF1", "-p", f"0x{PID:04X}", "--pai", "-c", "pai.pem", "-k", "pai_key.pem",
            "--no-bin", "--enable-dynamic-passcode", "--outdir", "out", "--log-level", "error"]
    elapsed, _ = run(args, PEER, cwd=peer_dir, env={**os.environ})
    made = sum(1 for _ in (peer_dir / "out").glob("*/*/internal/DAC_cert.der"))
    if made != n:
        raise SystemExit(f"{PEER} made {made} DACs, expected {n}")
    return elapsed


# -- main ------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="CSRs for the CLI, csr generate and the peer (default 20000)")
    parser.add_argument("--rss", default="10000,100000", help="CSR counts for the peak-RSS runs (default 10000,100000)")
    parser.add_argument("--jobs", type=int, default=0, help="worker processes for the CLI and issue_batch (0: every core)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of raw bound and issue_batch; the best counts")
    parser.add_argument("--raw-n", type=int, default=4000, help="CSRs per raw-bound round")
    parser.add_argument("--samples", type=int, default=50, help="DACs per CLI run through the full validator")
    parser.add_argument("--no-peer", action="store_true", help=f"skip {PEER}")
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV, help=f"virtualenv for {PEER} (created when missing)")
    parser.add_argument("--workdir", type=Path, default=None, help="where homes and folders go (default: a new folder in .cache/bench)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (checks every phase and the output format)")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.rss, args.rounds, args.raw_n, args.samples = 40, "30,60", 1, 40, 3
    rss_sizes = sorted({int(x) for x in args.rss.split(",") if x.strip()})
    cores = args.jobs or len(os.sched_getaffinity(0))
    CACHE.mkdir(parents=True, exist_ok=True)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="e2e-", dir=CACHE))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    say(f"machine: {os.cpu_count()} cores ({cores} used), load average {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}; "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}")
    say(f"N={args.n}, RSS sizes {rss_sizes}, work folder {work}")
    try:
        results = phases(args, work, cores, rss_sizes)
    finally:
        if not args.keep:
            say(f"removing {work} ...")
            shutil.rmtree(work, ignore_errors=True)
    say(f"load average now {os.getloadavg()[0]:.2f}; total {time.perf_counter() - started:.0f} s")
    for key, value in results.items():
        print(f"{key}={value}")


def phases(args: argparse.Namespace, work: Path, cores: int, rss_sizes: list[int]) -> dict[str, str]:
    """Every measurement, in order; returns the key=value summary."""
    n = args.n
    csrs = load_csrs(max([n, *rss_sizes]))
    names = [f"dev-{i:06d}" for i in range(n)]

    say("[1/7] raw bound and [2/7] issue_batch on all cores (interleaved rounds, best counts) ...")
    paa, pai, pai_key = make_chain()
    validity = Validity.for_days(datetime.now(UTC) - timedelta(hours=1), 365)
    ctx = BatchContext(
        paa_der=paa.public_bytes(Encoding.DER), pai_der=pai.public_bytes(Encoding.DER),
        signer_factory=PemKey(pai_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())), pid=PID, validity=validity,
    )
    ref_key = pai_key  # any P-256 key: the TBS only has to be a DAC's size
    ref_tbs = sign(DacProfile.for_issuer(pai, pid=PID, validity=validity).builder(ref_key.public_key(), serial=1, issuer=pai),
                   pai_key).tbs_certificate_bytes
    raw = batch = 0.0
    raw_cpu_us = float("inf")
    for r in range(args.rounds):
        sample = csrs[r * args.raw_n % n :][: args.raw_n] or csrs[: args.raw_n]
        raw = max(raw, raw_bound(sample, pai_key, ref_tbs))
        raw_cpu_us = min(raw_cpu_us, raw_cpu(sample, pai_key, ref_tbs))
        batch = max(batch, run_batch(csrs[:n], ctx, cores, None)[0])
        say(f"  round {r + 1}: raw bound {raw:,.0f}/s per core, issue_batch {batch:,.0f} DACs/s on {cores} cores")

    say(f"[3/7] CLI dac issue on {n} fresh CSRs (fresh home, fresh folder, --jobs {cores}) ...")
    csr_dir = write_csr_folder(work / f"csrs-{n}", csrs[:n])
    home = fresh_home(work, "e2e")
    cli_s, parent_cpu, children_cpu, kernel_cpu = dac_issue_cpu(home, csr_dir, work / "out-1", cores)
    cli = n / cli_s
    check_dacs(work / "out-1", names, args.samples)
    parent_us, children_us = parent_cpu / n * 1e6, children_cpu / n * 1e6
    core_use = (parent_cpu + children_cpu) / (cores * cli_s)
    say(f"  {cli:,.0f} DACs/s ({cli_s:.1f} s); CPU per DAC: issuing process {parent_us:.0f} µs, workers and writer "
        f"{children_us:.0f} µs ({kernel_cpu / n * 1e6:.0f} µs of both in the kernel); the cores were {core_use:.0%} busy with it")

    say(f"[4/7] CLI re-delivering the same {n} from the ledger into a new folder ...")
    again_s = dac_issue(home, csr_dir, work / "out-2", cores)
    again = n / again_s
    if not same_files(work / "out-1", work / "out-2", names):
        raise SystemExit("re-delivered DACs differ from the issued ones")
    say(f"  {again:,.0f} DACs/s ({again_s:.1f} s), every DAC byte-identical to the first delivery")

    say(f"[5/7] CLI csr generate --count {n} --jobs {cores} ...")
    gen_s, _ = run([*cli_command(), "csr", "generate", "--count", str(n), "--out", str(work / "generated"), "--jobs", str(cores)],
                   "csr generate")
    generated = sum(1 for _ in (work / "generated").glob("*.csr"))
    if generated != n:
        raise SystemExit(f"csr generate made {generated} CSRs, expected {n}")
    gen = n / gen_s
    say(f"  {gen:,.0f} CSRs/s ({gen_s:.1f} s)")

    say(f"[6/7] {PEER} {PEER_VERSION}, minimal mode, {n} devices ...")
    peer_value = "skipped (--no-peer)"
    peer_line = "skipped (--no-peer)"
    if not args.no_peer:
        exe, why = peer_tool(args.peer_venv)
        if exe is None:
            peer_value = peer_line = f"skipped ({why})"
        else:
            peer_s = run_peer(exe, work, n)
            peer = n / peer_s
            peer_value, peer_line = f"{cli / peer:.2f}", f"{peer:,.0f} DACs/s ({peer_s:.1f} s)"
    say(f"  {peer_line}")

    say(f"[7/7] peak RSS of dac issue at {', '.join(map(str, rss_sizes))} CSRs (fresh home each) ...")
    rss: dict[int, float] = {}
    for size in rss_sizes:
        folder = write_csr_folder(work / f"rss-csrs-{size}", csrs[:size])
        rss[size], took = peak_rss_mib(fresh_home(work, f"rss-{size}"), folder, work / f"rss-out-{size}", cores)
        say(f"  {size} CSRs: peak RSS {rss[size]:.1f} MiB ({size / took:,.0f} DACs/s)")

    say("")
    say(f"raw bound per core (CSR verify + ECDSA sign, cryptography): {raw:,.0f}/s; x {cores} cores = {cores * raw:,.0f}/s")
    say(f"issue_batch, {cores} cores: {batch:,.0f} DACs/s ({batch / (cores * raw):.3f} of the bound)")
    say(f"matter-pki dac issue --jobs {cores}, {n} fresh CSRs, end to end: {cli:,.0f} DACs/s")
    ceiling = raw_cpu_us / (parent_us + children_us)
    say(f"  CPU per DAC {parent_us + children_us:.0f} µs (issuing process {parent_us:.0f}, workers and writer {children_us:.0f}) "
        f"against {raw_cpu_us:.0f} µs of CPU for the raw bound: e2e_ratio <= {ceiling:.2f} with every core busy all the time")
    say(f"matter-pki dac issue, re-delivery of the same {n} into a new folder: {again:,.0f} DACs/s")
    say(f"matter-pki csr generate --count {n}: {gen:,.0f} CSRs/s")
    say(f"{PEER} {PEER_VERSION} (--no-bin --enable-dynamic-passcode, one process), {n}: {peer_line}")
    say("peak RSS of dac issue: " + ", ".join(f"{s} CSRs {rss[s]:.1f} MiB" for s in rss_sizes))
    summary = {
        "e2e_ratio": f"{cli / (cores * raw):.3f}",
        "e2e_ceiling": f"{ceiling:.3f}",
        "cli_cpu_us_parent": f"{parent_us:.0f}",
        "cli_cpu_us_children": f"{children_us:.0f}",
        "cli_core_use": f"{core_use:.2f}",
        "peer_ratio": peer_value,
        "redelivery_ratio": f"{again / cli:.2f}",
        "csr_generate_per_s": f"{gen:.0f}",
    }
    summary.update({f"rss_{s}_mib": f"{rss[s]:.1f}" for s in rss_sizes})
    if len(rss_sizes) > 1:
        summary["rss_ratio"] = f"{rss[rss_sizes[-1]] / rss[rss_sizes[0]]:.2f}"
    return summary


if __name__ == "__main__":
    main()
