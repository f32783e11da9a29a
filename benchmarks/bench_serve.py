"""The signing service under N concurrent stations on loopback, against the CLI end to end, in one run.

    python benchmarks/bench_serve.py [--stations 8] [--requests 2000] [--batch 0] [--cli-jobs 2]

1. A fresh home (PAA, one PAI for PID 8000, file keys) and N stations, in a temporary folder.
2. ``matter-pki serve`` in a child process on 127.0.0.1 (any free port). Each station is one
   keep-alive HTTPS connection with its client certificate, sending fresh CSRs one after the other
   (``--batch K``: K CSRs per request on the batch endpoint). One warm-up request per station is
   not timed. The run stops by itself after ``--requests`` CSRs in all (and after ``--deadline`` s
   at most). Latency is measured per request, from send to the full answer.
3. ``matter-pki dac issue --jobs <cli-jobs>`` on the same number of fresh CSR files in a fresh output
   folder, timed end to end (process start included), as docs/local-ca.md measures it.
4. Outside the timing: every DAC the service returned certifies its CSR's key and is in the ledger;
   1% go through the chip-parity validator; the CLI wrote one ``.pem`` per CSR.

The last line is ``ratio=<service DACs/s / CLI DACs/s>``. Clients run in this process (one asyncio
loop), the server in another: on a 2-core machine they share the cores, so the figure is a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from matter_pki.local import ca as ca_ops  # noqa: E402
from matter_pki.local.home import PAA_ID, KeyStoreSettings, PkiHome  # noqa: E402
from matter_pki.local.keys import Secrets  # noqa: E402
from matter_pki.local.ledger import Ledger, serial_hex  # noqa: E402
from matter_pki.local.state import open_audit  # noqa: E402
from matter_pki.serve.stations import add_station  # noqa: E402
from matter_pki.validate import validate_att_cert  # noqa: E402

PASSPHRASE = "bench passphrase"
STATION_PASSPHRASE = "bench station passphrase"
CLI = [sys.executable, "-c", "from matter_pki.cli import main; main()"]


def make_csr() -> bytes:
    """A device CSR as the Matter SDK makes it (subject O=CSR), PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "CSR")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def setup_home(root: Path, stations: int) -> tuple[PkiHome, list[Path]]:
    """A home with pai-1 (PID 8000) and ``stations`` stations."""
    home = PkiHome(root / "home")
    secrets = Secrets.fixed(PASSPHRASE.encode())
    now = datetime.now(UTC)
    ca_ops.init_paa(home, vid=0xFFF1, settings=KeyStoreSettings(), secrets=secrets, now=now)
    ca_ops.create_pai(home, pid=0x8000, secrets=secrets, now=now)
    folders = []
    for i in range(stations):
        folder = root / "stations" / f"line-{i}"
        add_station(
            home, name=f"line-{i}", pai_id="pai-1", pids=(0x8000,), quota_per_day=None, out_dir=folder,
            passphrase=PASSPHRASE.encode(), station_passphrase=STATION_PASSPHRASE.encode(),
            audit=open_audit(home, secrets), now=now,
        )
        folders.append(folder)
    return home, folders


def start_server(home: PkiHome, log: Path, env: dict[str, str], extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    """``matter-pki serve`` on 127.0.0.1:0; returns the process and its port."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CLI, "serve", "--home", str(home.path), "--listen", "127.0.0.1:0",
             "--max-connections", "1024", *extra],
            stdout=subprocess.DEVNULL, stderr=out, env=env,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if '"serve.listening"' in line:
                return proc, int(json.loads(line)["port"])
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def context(folder: Path) -> ssl.SSLContext:
    """Client TLS context of a station."""
    ctx = ssl.create_default_context(cafile=str(folder / "ca.pem"))
    ctx.load_cert_chain(folder / "station.pem", folder / "station.key", password=STATION_PASSPHRASE)
    return ctx


async def station_loop(
    url: str, folder: Path, work: list[list[bytes]], batch: int, latencies: list[float], results: list[tuple[bytes, bytes]],
    deadline: float,
) -> None:
    """One station: one keep-alive connection, requests one after the other."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, verify=context(folder), limits=limits, timeout=60) as client:
        # Warm-up (not timed): the TLS handshake and a first DAC.
        await client.post("/v1/pais/pai-1/dacs", content=make_csr(), headers={"content-type": "application/pkcs10"})
        await START.wait()
        for csrs in work:
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            if batch:
                response = await client.post("/v1/pais/pai-1/dacs/batch", json={"csrs": [c.decode() for c in csrs]})
                body = response.json()
                dacs = [r["dac"].encode() for r in body["results"]]
            else:
                response = await client.post("/v1/pais/pai-1/dacs", content=csrs[0], headers={"content-type": "application/pkcs10"})
                dacs = [response.content]
            latencies.append(time.perf_counter() - t0)
            if response.status_code not in (200, 201):
                raise SystemExit(f"unexpected answer {response.status_code}: {response.text}")
            results.extend(zip(csrs, dacs, strict=True))


START: asyncio.Event


async def run_stations(url: str, folders: list[Path], csrs: list[bytes], batch: int, deadline: float) -> tuple[float, list[float], list[tuple[bytes, bytes]]]:
    """All stations at once; returns (wall seconds, latencies, (csr, answer) pairs)."""
    global START
    START = asyncio.Event()
    per = max(1, batch)
    groups = [csrs[i : i + per] for i in range(0, len(csrs), per)]
    shares: list[list[list[bytes]]] = [groups[i :: len(folders)] for i in range(len(folders))]
    latencies: list[float] = []
    results: list[tuple[bytes, bytes]] = []
    tasks = [
        asyncio.create_task(station_loop(url, f, share, batch, latencies, results, deadline))
        for f, share in zip(folders, shares, strict=True)
    ]
    await asyncio.sleep(0.5)  # warm-ups done
    t0 = time.perf_counter()
    START.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    async with httpx.AsyncClient(base_url=url, verify=context(folders[0])) as client:
        SERVER_METRICS.update(parse_metrics((await client.get("/metrics")).text))
    return wall, latencies, results


SERVER_METRICS: dict[str, float] = {}


def parse_metrics(text: str) -> dict[str, float]:
    """Sums of the server's batch metrics (name -> value)."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = ("matter_pki_serve_batch_csrs_count", "matter_pki_serve_batch_csrs_sum", "matter_pki_serve_batch_seconds_sum")
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def check_service(home: PkiHome, results: list[tuple[bytes, bytes]]) -> None:
    """Every DAC certifies its CSR's key and is in the ledger; 1% fully validated."""
    with Ledger(home.ledger_path) as ledger:
        recorded = {e.serial: e.der for e in ledger.entries(ca="pai-1", kind="dac")}
    paa = home.load_cert(PAA_ID).public_bytes(Encoding.DER)
    pai = home.load_cert("pai-1").public_bytes(Encoding.DER)
    now = datetime.now(UTC)
    for i, (csr, answer) in enumerate(results):
        dac = x509.load_pem_x509_certificates(answer)[0]
        assert dac.public_key() == x509.load_pem_x509_csr(csr).public_key(), "DAC does not certify its CSR"
        der = dac.public_bytes(Encoding.DER)
        assert recorded.get(serial_hex(dac.serial_number)) == der, "DAC missing from the ledger"
        if i % 100 == 0:
            assert validate_att_cert(paa=paa, pai=pai, dac=der, at=now, mode="commissioner").ok
    assert len({x509.load_pem_x509_certificates(a)[0].serial_number for _, a in results}) == len(results)


def run_cli(home: PkiHome, root: Path, csrs: list[bytes], jobs: int, env: dict[str, str]) -> float:
    """``matter-pki dac issue`` on fresh CSR files into a fresh folder; returns wall seconds."""
    folder, out = root / "cli-csrs", root / "cli-out"
    folder.mkdir()
    for i, csr in enumerate(csrs):
        (folder / f"dev-{i:06d}.csr").write_bytes(csr)
    t0 = time.perf_counter()
    subprocess.run(
        [*CLI, "dac", "issue", "--home", str(home.path), "--pai", "pai-1", "--csr", str(folder), "--out", str(out),
         "--jobs", str(jobs), "--format", "json"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - t0
    assert len(list(out.glob("dev-*.pem"))) == len(csrs), "the CLI did not answer every CSR"
    return elapsed


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=8, help="concurrent stations (connections)")
    parser.add_argument("--requests", type=int, default=2000, help="CSRs in all (for the service and for the CLI)")
    parser.add_argument("--batch", type=int, default=0, help="CSRs per request on the batch endpoint (0: one per request)")
    parser.add_argument("--cli-jobs", type=int, default=len(os.sched_getaffinity(0)), help="--jobs for dac issue")
    parser.add_argument("--batch-wait", type=float, default=0.005, help="the server's --batch-wait (seconds)")
    parser.add_argument("--deadline", type=float, default=600, help="stop the service run after this many seconds")
    args = parser.parse_args()
    print(f"cores={len(os.sched_getaffinity(0))} load={os.getloadavg()[0]:.2f} stations={args.stations} "
          f"csrs={args.requests} batch={args.batch or 1}", flush=True)
    csrs = [make_csr() for _ in range(2 * args.requests)]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        root = Path(tmp)
        home, folders = setup_home(root, args.stations)
        env = {**os.environ, "MATTER_PKI_PASSPHRASE": PASSPHRASE, "MATTER_PKI_OPERATOR": "bench"}
        proc, port = start_server(home, root / "serve.log", env, ["--batch-wait", str(args.batch_wait)])
        try:
            wall, latencies, results = asyncio.run(
                run_stations(f"https://127.0.0.1:{port}", folders, csrs[: args.requests], args.batch,
                             time.monotonic() + args.deadline)
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
        assert code == 0, f"server exited with {code}"
        check_service(home, results)
        serve_rate = len(results) / wall
        print(f"service: {len(results)} DACs in {wall:.2f} s = {serve_rate:,.0f} DACs/s; per request "
              f"p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms, "
              f"mean {statistics.fmean(latencies) * 1000:.1f} ms", flush=True)
        batches = SERVER_METRICS.get("matter_pki_serve_batch_csrs_count", 0) or 1
        print(f"server: {batches:.0f} signing batches, {SERVER_METRICS.get('matter_pki_serve_batch_csrs_sum', 0) / batches:.1f} "
              f"CSRs and {SERVER_METRICS.get('matter_pki_serve_batch_seconds_sum', 0) / batches * 1000:.1f} ms each "
              f"(signing thread busy {SERVER_METRICS.get('matter_pki_serve_batch_seconds_sum', 0) / wall:.0%} of the run)")
        cli_wall = run_cli(home, root, csrs[args.requests :], args.cli_jobs, env)
        cli_rate = args.requests / cli_wall
        print(f"cli: matter-pki dac issue --jobs {args.cli_jobs}: {args.requests} DACs in {cli_wall:.2f} s = "
              f"{cli_rate:,.0f} DACs/s (end to end, process start included)")
        print(f"checked: {len(results)} service DACs (key, ledger; {len(results[::100])} with the validator), "
              f"{args.requests} CLI answers")
        print(f"ratio={serve_rate / cli_rate:.3f}")


if __name__ == "__main__":
    main()
