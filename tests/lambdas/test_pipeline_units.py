"""Pipeline pieces without AWS: S3 event parsing, configuration from the environment, the botocore client settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matter_pki.errors import ConfigError, InputError
from matter_pki.pipeline import PipelineConfig, aws_clients, parse_s3_event

EVENTS = Path(__file__).resolve().parents[1] / "events"


def _body(name: str, index: int = 0) -> str:
    body: str = json.loads((EVENTS / name).read_text())["Records"][index]["body"]
    return body


def test_keys_are_url_decoded_both_ways_s3_encodes_them() -> None:
    # GIVEN S3 event bodies whose keys are encoded with %2F and with a raw "/"
    refs = [parse_s3_event(_body("s3SqsEvent.json", i))[0] for i in (0, 1)]
    # THEN both decode to the layout key, with bucket, size and event time
    assert [r.key.rsplit("/", 2)[1:] for r in refs] == [
        ["8000", "device-0001.csr"],
        ["8000", "device-0002.csr"],
    ]
    assert all(
        r.key.startswith("arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/") for r in refs
    )
    assert refs[0].bucket == "matter-csr-inbox" and refs[0].size == 473 and refs[0].event_time is not None


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("a+b.csr", "a b.csr"),
        ("a%2Bb.csr", "a+b.csr"),
        ("caf%C3%A9.csr", "caf\u00e9.csr"),
        ("x%2Fy.csr", "x/y.csr"),
    ],
)
def test_unquote_plus(encoded: str, decoded: str) -> None:
    # GIVEN an encoded key WHEN parsed THEN decoded like S3 encoded it (quote_plus)
    body = {
        "Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": encoded}}}
        ]
    }
    assert parse_s3_event(json.dumps(body))[0].key == decoded


def test_the_test_event_has_no_objects() -> None:
    # GIVEN the s3:TestEvent WHEN parsed THEN nothing to do
    assert parse_s3_event(_body("s3SqsTestEvent.json")) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        "{}",
        '{"Records": [{}]}',
        '{"Records": [{"s3": {"bucket": {"name": "b"}, "object": "k"}}]}',
        '"text"',
    ],
)
def test_anything_else_is_event_malformed(body: str) -> None:
    # GIVEN a message that is not an S3 notification WHEN parsed THEN event.malformed (the message fails)
    with pytest.raises(InputError) as err:
        parse_s3_event(body)
    assert err.value.code == "event.malformed"


def test_configuration_from_the_environment() -> None:
    # GIVEN Lambda environment variables
    config = PipelineConfig.from_env(
        {
            "MATTER_DAC_VALIDITY": "3650d",
            "MATTER_DAC_COMMON_NAME": "Acme DAC",
            "MATTER_PAI_ARNS": " a , b ",
            "MATTER_PAA_SHA256": "AB" * 32,
            "MATTER_WORKERS": "4",
            "MATTER_MAX_ATTEMPTS": "3",
            "MATTER_WAITER_DELAY": "0.25",
            "MATTER_CSR_BUCKET": "inbox",
        }
    )
    # THEN they are parsed and normalised
    assert config.validity == "3650" and config.common_name == "Acme DAC"
    assert config.allowed_pai_arns == frozenset({"a", "b"}) and config.trusted_paa_sha256 == frozenset(
        {"ab" * 32}
    )
    assert (config.workers, config.max_attempts, config.waiter_delay, config.csr_bucket) == (4, 3, 0.25, "inbox")
    # AND defaults hold for an empty environment
    default = PipelineConfig.from_env({})
    assert (default.validity, default.common_name, default.workers) == ("issuer", "Matter DAC", 10)


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("MATTER_WORKERS", "0", "config.environment"),
        ("MATTER_WORKERS", "many", "config.environment"),
        ("MATTER_WAITER_DELAY", "-1", "config.environment"),
        ("MATTER_WAITER_DELAY", "nan", "config.environment"),
        ("MATTER_DAC_VALIDITY", "forever", "config.dac_validity"),
        ("MATTER_DAC_COMMON_NAME", "x" * 65, "config.dac_common_name"),
        ("MATTER_CLAIM_WINDOW_SECONDS", "301", "config.environment"),
        ("MATTER_CLAIM_WINDOW_SECONDS", "0", "config.environment"),
        ("MATTER_MAX_ATTEMPTS", "0", "config.environment"),
    ],
)
def test_bad_configuration_is_a_config_error(name: str, value: str, code: str) -> None:
    # GIVEN one bad variable WHEN read THEN a ConfigError (Lambda init fails; nothing is refused wrongly)
    with pytest.raises(ConfigError) as err:
        PipelineConfig.from_env({name: value})
    assert err.value.code == code


def test_the_lambda_clients_retry_adaptively_within_bounded_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the signer's settings
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = PipelineConfig(max_attempts=3, workers=5)
    # WHEN its boto3 clients are built
    pca, s3 = aws_clients(config)
    # THEN botocore's adaptive mode does the retrying (nothing retries on top), each call bounded by timeouts
    for client in (pca, s3):
        cfg = client.meta.config
        assert cfg.retries == {"mode": "adaptive", "total_max_attempts": 3}
        assert (cfg.connect_timeout, cfg.read_timeout, cfg.max_pool_connections) == (2, 5, 10)
