"""Context parsing and VID/PID validation (pure: no CDK needed)."""

from __future__ import annotations

import re

import pytest
from matter_cdk.config import DEV_PAA_ARN, ContextError, Mode, load

from tests.cdk.conftest import PAA_ARN, PAI_CONTEXT


def test_generate_paa_alone_uses_dev_vendor_and_says_so() -> None:
    # GIVEN only the sample's generatePaa flag WHEN loading
    config = load({"generatePaa": "1"})
    # THEN the PAA uses test VID FFF1, 10 years, and the defaults are reported
    assert config.mode is Mode.PAA
    assert config.paa is not None and config.paa.vid == 0xFFF1
    assert config.paa.validity.pca() == {"Type": "DAYS", "Value": 3650}
    assert any("vendorId=FFF1" in d for d in config.dev_defaults)
    assert any("DevDefaultsAcknowledged=yes" in w for w in config.warnings())


def test_full_paa_context_has_no_dev_defaults() -> None:
    # GIVEN a complete PAA context (lower-case hex accepted) WHEN loading
    config = load({"generatePaa": 1, "vendorId": "fff2", "paaCommonName": "Acme", "paaOU": "Lab"})
    # THEN the subject is rendered upper-case and nothing is a default
    assert config.paa is not None
    assert config.paa.profile().pca_subject()["CustomAttributes"] == [
        {"ObjectIdentifier": "2.5.4.3", "Value": "Acme"},
        {"ObjectIdentifier": "2.5.4.11", "Value": "Lab"},
        {"ObjectIdentifier": "1.3.6.1.4.1.37244.2.1", "Value": "FFF2"},
    ]
    assert config.dev_defaults == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("FFF", "exactly 4 hex digits"),
        ("0xFFF1", "exactly 4 hex digits"),
        ("FFF1 ", None),
        ("GGGG", "exactly 4 hex digits"),
        ("12345", "exactly 4 hex digits"),
        ("0000", "reserved"),
    ],
)
def test_vendor_id_must_be_four_hex_digits(value: str, message: str | None) -> None:
    # GIVEN a vendorId WHEN loading THEN only 4 hex digits (not 0000) pass, with the key named
    if message is None:
        assert load({"generatePaa": "1", "vendorId": value}).paa.vid == 0xFFF1  # type: ignore[union-attr]
        return
    with pytest.raises(ContextError, match=message) as info:
        load({"generatePaa": "1", "vendorId": value})
    assert info.value.key == "vendorId"
    assert str(info.value).startswith("context vendorId:")


def test_nothing_to_build_explains_the_three_modes() -> None:
    # GIVEN an empty context WHEN loading THEN the error lists generatePaa, paaArn and generatePaiCnt
    with pytest.raises(ContextError) as info:
        load({})
    assert (
        "generatePaa=1" in str(info.value)
        and "paaArn" in str(info.value)
        and "generatePaiCnt" in str(info.value)
    )


def test_existing_paa_mode_needs_a_valid_arn() -> None:
    # GIVEN paaArn alone WHEN loading THEN it is the "roles around an existing PAA" mode
    assert load({"paaArn": PAA_ARN}).paa_arn == PAA_ARN
    with pytest.raises(ContextError, match="not a Private CA ARN"):
        load({"paaArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc"})


def test_pai_context_parses_pids_names_and_region() -> None:
    # GIVEN the sample's PAI keys WHEN loading without CDK_DEFAULT_REGION
    config = load(PAI_CONTEXT)
    # THEN two product-scoped PAIs live in the PAA's Region and account
    assert config.mode is Mode.PAI
    assert [(p.pid, p.common_name, p.organization) for p in config.pais] == [
        (0x8000, "Acme PAI 8000", "Acme"),
        (0x8001, "Acme PAI 8001", "Acme"),
    ]
    assert (config.region, config.account, config.paa_region) == ("eu-west-1", "123456789012", "eu-west-1")
    assert not config.cross_region
    assert config.pipeline is not None and config.pipeline.dac_validity == "1000"


@pytest.mark.parametrize(("value", "policy"), [(None, "issuer"), ("Issuer", "issuer"), ("30", "30")])
def test_dac_validity_is_days_or_a_signer_policy(value: str | None, policy: str) -> None:
    # GIVEN dacValidityInDays (or none) WHEN loading THEN the signer gets days or 'issuer' (default)
    context = {k: v for k, v in {**PAI_CONTEXT, "dacValidityInDays": value}.items() if v is not None}
    assert load(context).pipeline.dac_validity == policy  # type: ignore[union-attr]


def test_no_expiry_dacs_need_a_pai_that_never_expires() -> None:
    # GIVEN 'no-expiry' DACs (Private CA refuses a DAC that outlives its PAI)
    # WHEN the PAIs expire (two years) THEN synth fails, naming the key
    with pytest.raises(ContextError) as err:
        load({**PAI_CONTEXT, "validityInDays": "730", "dacValidityInDays": "no-expiry"})
    assert err.value.key == "dacValidityInDays" and "outlive" in str(err.value)
    # WHEN the PAIs end 99991231235959 THEN 'no-expiry' is fine
    forever = load({**PAI_CONTEXT, "validityEndDate": "99991231235959", "dacValidityInDays": "no-expiry"})
    assert forever.pipeline is not None and forever.pipeline.dac_validity == "no-expiry"


def test_pai_in_another_region_is_cross_region() -> None:
    # GIVEN the CLI profile's Region differs from the PAA ARN's WHEN loading THEN the PAIs are cross-Region
    config = load(PAI_CONTEXT, {"CDK_DEFAULT_REGION": "us-west-2"})
    assert config.cross_region and config.region == "us-west-2" and config.paa_region == "eu-west-1"
    assert any("PAIs in us-west-2 under a PAA in eu-west-1" in w for w in config.warnings())


@pytest.mark.parametrize(
    ("override", "key", "message"),
    [
        ({"productIds": "8000"}, "productIds", "expected 2 comma-separated values (generatePaiCnt=2), got 1"),
        ({"productIds": "8000,800"}, "productIds", "exactly 4 hex digits"),
        ({"productIds": "8000,8000"}, "productIds", "distinct"),
        ({"productIds": "8000,"}, "productIds", "empty entry"),
        ({"paiCommonNames": "A,B,C"}, "paiCommonNames", "expected 2"),
        ({"paiOrganizationalUnits": "X"}, "paiOrganizationalUnits", "expected 2"),
        ({"generatePaiCnt": "0"}, "generatePaiCnt", "must be 1..20"),
        ({"generatePaiCnt": "two"}, "generatePaiCnt", "whole number"),
        ({"dacValidityInDays": "3600"}, "dacValidityInDays", "less than the PAI validityInDays"),
        ({"validityEndDate": "20261301000000"}, "validityEndDate", "not a calendar date"),
        ({"validityEndDate": "2026-01-01"}, "validityEndDate", "YYYYMMDDHHMMSS"),
        ({"paaRegion": "us-east-1"}, "paaRegion", "differs from the Region in paaArn"),
        ({"vendorId": None}, "vendorId", "required with paaArn"),
        (
            {"paiCommonNames": "A" * 65 + ",B"},
            "paiCommonNames/paiOrganizations/paiOrganizationalUnits[0]",
            "1..64",
        ),
        ({"stackNamePrefix": "9lives"}, "stackNamePrefix", "letter"),
        ({"crlBucketName": "Bad_Bucket"}, "crlBucketName", "not a valid S3 bucket name"),
    ],
)
def test_pai_context_errors_name_the_key(override: dict[str, str | None], key: str, message: str) -> None:
    # GIVEN one wrong PAI context value WHEN loading THEN the error names the key and what is expected
    context = {k: v for k, v in {**PAI_CONTEXT, **override}.items() if v is not None}
    with pytest.raises(ContextError, match=re.escape(message)) as info:
        load(context)
    assert info.value.key == key


def test_json_lists_from_cdk_json_are_accepted() -> None:
    # GIVEN list values as cdk.json would give them WHEN loading THEN they parse like comma lists
    config = load({**PAI_CONTEXT, "productIds": ["8000", "8001"], "paiCommonNames": ["A", "B"]})
    assert [p.pid for p in config.pais] == [0x8000, 0x8001]


def test_pai_account_must_match_the_paa() -> None:
    # GIVEN credentials of another account WHEN loading THEN cross-account PAIs are refused
    with pytest.raises(ContextError, match="PAIs must be in the PAA's account"):
        load(PAI_CONTEXT, {"CDK_DEFAULT_ACCOUNT": "999999999999"})


def test_generate_pai_alone_uses_a_placeholder_paa() -> None:
    # GIVEN only generatePaiCnt (the literal dev command) WHEN loading
    config = load({"generatePaiCnt": "2"})
    # THEN a placeholder PAA in account 000000000000 and VID FFF1 are used, flagged as dev defaults
    assert config.paa_arn == DEV_PAA_ARN and config.account == "000000000000"
    assert [p.vid for p in config.pais] == [0xFFF1, 0xFFF1] and [p.pid for p in config.pais] == [None, None]
    assert len(config.dev_defaults) == 2


def test_validity_end_date_overrides_days() -> None:
    # GIVEN both validity keys WHEN loading THEN END_DATE wins, as in the sample
    config = load(
        {"generatePaa": "1", "vendorId": "FFF2", "validityInDays": "10", "validityEndDate": "99991231235959"}
    )
    assert config.paa is not None
    assert config.paa.validity.pca() == {"Type": "END_DATE", "Value": 99991231235959}
