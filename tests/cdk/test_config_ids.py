"""The CDK app and the local CA apply the same VID/PID rule (``matter_pki.idrules``), and a bad context
value ends the synth with one coded line, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from matter_cdk.config import ContextError, load

from matter_pki.cli import main
from tests.cdk.conftest import CDK_DIR

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(("vid", "accepted"), [("0000", False), ("FFF5", False), ("FFFF", False), ("FFF1", True), ("1349", True)])
def test_cdk_and_local_ca_accept_the_same_vendor_ids(vid: str, accepted: bool, tmp_path: Path) -> None:
    # GIVEN one VID WHEN given to the CDK app and to 'matter-pki init' THEN both accept it or both refuse it
    try:
        load({"generatePaa": "1", "vendorId": vid})
        cdk_ok = True
    except ContextError as e:
        assert e.key == "vendorId" and "not a valid vendor ID" in str(e)
        cdk_ok = False
    result = CliRunner().invoke(main, ["init", "--vid", vid, "--home", str(tmp_path / "h")],
                                env={"MATTER_PKI_PASSPHRASE": "pass-phrase"})  # fmt: skip
    assert cdk_ok == accepted
    assert (result.exit_code == 0) == accepted, result.output
    if not accepted:
        assert result.exit_code == 2 and result.stderr.startswith("error[profile.vid_reserved]")


def test_cdk_product_id_0000_is_refused_like_the_local_ca() -> None:
    with pytest.raises(ContextError, match="PID 0000 is reserved"):
        load({"generatePaiCnt": "1", "productIds": "0000"})


def test_a_test_vendor_id_is_noted_at_synth() -> None:
    config = load({"generatePaa": "1", "vendorId": "FFF2"})
    assert any("FFF2 is a Matter test vendor ID" in w for w in config.warnings())


@pytest.mark.slow
def test_bad_context_value_is_one_line_not_a_traceback() -> None:
    # GIVEN cdk synth's command (python3 app.py) with vendorId=FFF in the context
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"generatePaa": "1", "vendorId": "FFF"})}
    result = subprocess.run([sys.executable, "app.py"], cwd=CDK_DIR, env=env, capture_output=True, text=True,
                            timeout=300, check=False)  # fmt: skip
    # THEN exit 2 and one coded line naming the key
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error[")]
    assert lines == ["error[cdk.context]: context vendorId: vendor ID must be exactly 4 hex digits (e.g. FFF1), got 'FFF'"]
