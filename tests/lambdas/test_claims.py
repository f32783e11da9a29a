"""Claims: the record that makes IssueCertificate exactly-once (rules 1-4 of matter_pki.pipeline.claims)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from matter_pki.errors import ConfigError, OperatorError
from matter_pki.pipeline.claims import Attempt, Claim, ClaimStore
from matter_pki.storage.s3 import S3Store

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def claim(*attempts: Attempt) -> Claim:
    base = Claim(
        pai_arn="arn:pai", pid=0x8000, csr_sha256="ab" * 32, token="mp1-x", not_before=1, not_after=2,
        common_name="Matter DAC", csr_key="arn:pai/8000/d.csr",
    )  # fmt: skip
    for a in attempts:
        base = base.with_attempt(a)
    return base


def test_every_write_has_a_new_writer_so_no_two_writes_share_an_etag() -> None:
    a = claim()
    b = a.with_attempt(Attempt("1", NOW))
    c = b.settled("1", "unknown")
    assert len({a.writer, b.writer, c.writer}) == 3


def test_a_claim_is_free_only_when_every_attempt_certainly_issued_nothing() -> None:
    # GIVEN two attempts
    c = claim(Attempt("1", NOW), Attempt("2", NOW))
    # WHEN one is refused with a 4xx and the other unknown THEN still issuing (the unknown one may have issued)
    assert c.settled("1", "not_issued").settled("2", "unknown").state == "issuing"
    # WHEN both are refused THEN free
    assert c.settled("1", "not_issued").settled("2", "not_issued").state == "free"
    # WHEN one issued THEN issued with its ARN
    done = c.settled("2", "issued", "arn:cert")
    assert (done.state, done.certificate_arn) == ("issued", "arn:cert")


def test_joining_is_allowed_only_inside_the_window_of_the_oldest_uncertain_attempt() -> None:
    store = ClaimStore.__new__(ClaimStore)
    store.window, store.now = timedelta(seconds=240), lambda: NOW
    assert store.may_join(claim())
    assert store.may_join(claim(Attempt("1", NOW - timedelta(seconds=239))))
    assert not store.may_join(claim(Attempt("1", NOW - timedelta(seconds=240))))
    old_but_refused = claim(Attempt("1", NOW - timedelta(hours=1))).settled("1", "not_issued")
    assert store.may_join(old_but_refused.with_attempt(Attempt("2", NOW)))


def test_claims_round_trip_and_corrupt_ones_need_an_operator() -> None:
    c = claim(Attempt("1", NOW)).settled("1", "issued", "arn:cert").refused({"code": "issue.x", "serial": "AB"})
    assert Claim.from_bytes(c.to_bytes()) == c
    for junk in (b"", b"{}", b'{"format": "other", "state": "issued"}', b"\xff"):
        with pytest.raises(OperatorError) as err:
            Claim.from_bytes(junk)
        assert err.value.code == "pipeline.claim_corrupt"


def test_conditional_writes_decide_races(aws_env: None) -> None:
    # GIVEN a claim store on a (moto) bucket
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="inbox")
    store = ClaimStore(S3Store(s3), timedelta(seconds=240), lambda: NOW)
    c = claim(Attempt("1", NOW))
    # WHEN two writers create the same claim THEN one wins
    etag = store.create("inbox", "claims/k", c)
    assert etag and store.create("inbox", "claims/k", claim()) is None
    # AND a replace with a stale ETag loses, with the current one wins
    loaded = store.load("inbox", "claims/k")
    assert loaded == (c, etag)
    newer = c.settled("1", "unknown")
    assert store.replace("inbox", "claims/k", newer, etag) is not None
    assert store.replace("inbox", "claims/k", newer.settled("1", "issued", "arn"), etag) is None


def test_without_conditional_writes_there_are_no_claims() -> None:
    class Old:
        conditional_writes = False

    with pytest.raises(ConfigError) as err:
        ClaimStore(Old(), timedelta(seconds=1), lambda: NOW)  # type: ignore[arg-type]
    assert err.value.code == "config.s3_conditional_writes"


