"""The error-code registry: every code the source raises is registered, with an exit class and a clause
that points at the Matter specification, the SDK or DCL source, an RFC or AWS documentation (never at notes
the package does not ship).

To register a new code, add a row to ``matter_pki/error_codes.csv``: ``code,exit,clause,description``
with ``exit`` one of refused / usage / retry / interrupted / internal (README, "Exit status").
"""

from __future__ import annotations

import ast
import csv
import inspect
import re
from functools import cache
from pathlib import Path

import pytest

from matter_pki import errors
from matter_pki.cli.common import ExitStatus, exit_status
from matter_pki.errorcodes import ExitClass, exit_class, registry
from matter_pki.errors import ConfigError, InputError, MatterPkiError, StorageError, TransientError
from matter_pki.findings import catalogue

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("matter_pki", "lambdas", "cdk")
CODE = re.compile(r"[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9_.-]*")
# A clause names where the rule comes from: the SDK source, the Matter specification, an RFC / X.690, AWS docs,
# the Distributed Compliance Ledger's source (zigbee-alliance/distributed-compliance-ledger).
CLAUSE = re.compile(r"-|(SDK |Matter Core |RFC \d+|X\.690 |AWS |DCL ).+")
ERROR_CLASSES = {n for n, c in vars(errors).items() if inspect.isclass(c) and issubclass(c, MatterPkiError)}
# Modules whose ``Problem`` is a verdict of the chip model: it carries a finding code (codes.csv), never an error code.
FINDING_PROBLEM_MODULES = {"matter_pki/chip.py"}


def _literals(node: ast.expr) -> list[str]:
    """Code strings an argument can hold: a literal, an f-string as a pattern, both arms of a conditional."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(re.escape(v.value) if isinstance(v, ast.Constant) else "\0" for v in node.values)]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    return []


@cache
def _scan() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(error codes, finding codes of the chip model's Problem), each with where it is given."""
    found: dict[str, list[str]] = {}
    findings: dict[str, list[str]] = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            chip_model = path.relative_to(ROOT).as_posix() in FINDING_PROBLEM_MODULES
            for node in ast.walk(tree):
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
                if isinstance(node, ast.Call) and node.args:
                    func = node.func
                    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                    if name in ERROR_CLASSES or name == "Problem":
                        target = findings if name == "Problem" and chip_model else found
                        for code in _literals(node.args[0]):
                            target.setdefault(code, []).append(where)
                # Tables of codes chosen at run time, e.g. ``_PERMANENT_CODES = {"AwsCode": "backend.x"}``.
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                    if any(n.endswith("_CODES") for n in names):
                        for value in node.value.values:
                            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                                found.setdefault(value.value, []).append(where)
    return found, findings


def raised_codes() -> dict[str, list[str]]:
    """Every code given to a MatterPkiError subclass (or a verification Problem), and where."""
    return _scan()[0]


def _unknown(codes: dict[str, list[str]], known: set[str]) -> list[str]:
    """The codes (f-strings as patterns) that are not in ``known``, with their first place."""
    missing = []
    for code, places in codes.items():
        if "\0" in code:
            pattern = re.compile(code.replace("\0", "[a-z0-9_-]+"))
            ok = any(pattern.fullmatch(r) for r in known)
        else:
            ok = code in known
        if not ok:
            missing.append(f"{code} ({places[0]})")
    return missing


def test_every_code_raised_in_the_source_is_registered() -> None:
    # GIVEN every error code the source raises (f-strings as patterns)
    missing = _unknown(raised_codes(), set(registry()))
    # THEN each one has a row in error_codes.csv (add: code,exit,clause,description)
    assert not missing, "unregistered error codes; add them to matter_pki/error_codes.csv: " + ", ".join(missing)


def test_every_code_the_chip_model_reports_is_a_finding_code() -> None:
    # GIVEN the codes chip.py's Problem carries (validate_att_cert reports them as reason codes)
    codes = _scan()[1]
    assert "cert.version_not_v3" in codes and any("\0" in c for c in codes)  # literal and f-string codes are seen
    # THEN each one is in the finding catalogue (codes.csv), where `matter-pki codes` lists it
    missing = _unknown(codes, set(catalogue()))
    assert not missing, "chip-model codes missing from matter_pki/codes.csv: " + ", ".join(missing)


def test_the_scan_sees_codes_raised_in_every_style() -> None:
    # GIVEN the scanner WHEN it reads the source THEN literal, multi-line, f-string and table codes are found
    codes = raised_codes()
    assert "csr.key_curve" in codes  # CsrError("csr.key_curve", ...)
    assert "storage.busy" in codes  # StorageError(...) spread over lines
    assert "config.aws_credentials" in codes and "config.aws_access_denied" in codes  # a conditional
    assert "backend.malformed_csr" in codes  # a *_CODES table
    assert any("\0" in c and c.startswith("profile") for c in codes)  # f"profile.{what}_range"


def test_registry_shape_and_clauses() -> None:
    # GIVEN the packaged CSV
    rows = list(csv.DictReader((ROOT / "matter_pki" / "error_codes.csv").open(encoding="utf-8")))
    # THEN columns, unique sorted codes, valid exit classes, real clauses, a description each
    assert list(rows[0]) == ["code", "exit", "clause", "description"]
    codes = [r["code"] for r in rows]
    assert len(codes) == len(set(codes)) and codes == sorted(codes)
    for r in rows:
        assert CODE.fullmatch(r["code"]), r["code"]
        assert r["exit"] in {c.value for c in ExitClass}, r
        assert CLAUSE.fullmatch(r["clause"]), r
        assert r["description"] and "\n" not in r["description"], r
    # AND no code is both a finding code and an error code
    assert not set(codes) & set(catalogue())


def test_finding_clauses_point_at_the_spec_or_sdk_not_at_unshipped_notes() -> None:
    # GIVEN the finding catalogue WHEN its clauses are read THEN each names SDK or DCL source, an RFC, X.690 or '-'
    for info in catalogue().values():
        assert "matter-rules" not in info.clause, info.code
        assert CLAUSE.fullmatch(info.clause), (info.code, info.clause)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InputError("input.not_a_file", "x"), ExitStatus.USAGE),
        (ConfigError("config.home_missing", "x"), ExitStatus.USAGE),
        (StorageError("storage.busy", "x"), ExitStatus.RETRY_LATER),  # retry later, not a refusal
        (TransientError("backend.transient", "x"), ExitStatus.RETRY_LATER),
        (MatterPkiError("csr.key_curve", "x"), ExitStatus.REFUSED),
        (MatterPkiError("issue.batch_order", "x"), ExitStatus.INTERNAL),
        (MatterPkiError("cli.interrupted", "x"), ExitStatus.INTERRUPTED),
        # Not registered (a code added elsewhere): the error's type decides.
        (TransientError("unregistered.thing", "x"), ExitStatus.RETRY_LATER),
        (InputError("unregistered.thing", "x"), ExitStatus.USAGE),
        (StorageError("unregistered.thing", "x"), ExitStatus.REFUSED),
    ],
)
def test_exit_status_comes_from_the_registry(error: MatterPkiError, status: ExitStatus) -> None:
    # GIVEN an error WHEN mapped THEN the documented status
    assert exit_status(error) == status
    assert exit_class(error) in ExitClass


def test_exit_statuses_are_the_documented_table() -> None:
    # GIVEN the README WHEN read THEN its exit-status table lists exactly these statuses
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| (\d+) \| ", readme.split("## Exit status", 1)[1].split("\n## ", 1)[0], re.M)
    assert [int(s) for s in table] == [int(s) for s in ExitStatus]
