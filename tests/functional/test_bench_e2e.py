"""``benchmarks/bench_e2e.py`` runs every phase and prints its summary (sizes tiny: the format, not the speed)."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.unit.test_local_fixtures import REPO

if TYPE_CHECKING:
    from pathlib import Path


def test_smoke_run_prints_every_phase_and_the_ratios(tmp_path: Path) -> None:
    # GIVEN the benchmark with tiny sizes and without the peer tool (no network in the suite)
    work = tmp_path / "work"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_e2e.py"), "--smoke", "--no-peer", "--workdir", str(work)],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )
    # THEN it completes every phase and ends with the key=value summary
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for phase in range(1, 8):
        assert f"{phase}/7]" in done.stdout
    summary = dict(line.split("=", 1) for line in done.stdout.splitlines() if re.fullmatch(r"[a-z0-9_]+=.+", line))
    assert set(summary) == {
        "e2e_ratio", "e2e_ceiling", "cli_cpu_us_parent", "cli_cpu_us_children", "cli_core_use",
        "peer_ratio", "redelivery_ratio", "csr_generate_per_s", "rss_30_mib", "rss_60_mib", "rss_ratio",
    }
    for key in ("e2e_ratio", "e2e_ceiling", "cli_cpu_us_parent", "cli_cpu_us_children", "cli_core_use",
                "redelivery_ratio", "csr_generate_per_s", "rss_30_mib", "rss_60_mib", "rss_ratio"):
        assert float(summary[key]) > 0, key
    assert summary["peer_ratio"] == "skipped (--no-peer)"
    assert "every DAC byte-identical to the first delivery" in done.stdout
    # AND its homes and folders are gone
    assert not work.exists()
