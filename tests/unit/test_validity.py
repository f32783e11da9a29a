"""The DAC validity policy: one parser and one rule for the local CA, the CLIs, the Lambda and the CDK config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from matter_pki.errors import ConfigError
from matter_pki.profiles import NO_EXPIRY
from matter_pki.validity import ValidityPolicy

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
PAI_END = datetime(2028, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "kind", "days", "shown"),
    [("issuer", "issuer", None, "issuer"), ("No-Expiry", "no-expiry", None, "no-expiry"), ("365", "days", 365, "365"), ("30d", "days", 30, "30")],
)
def test_policies_parse_and_print_back(text: str, kind: str, days: int | None, shown: str) -> None:
    policy = ValidityPolicy.parse(text)
    assert (policy.kind, policy.days, str(policy)) == (kind, days, shown)
    assert ValidityPolicy.parse(str(policy)) == policy


@pytest.mark.parametrize("text", ["", "0", "-1", "forever", "1.5", "0d"])
def test_nonsense_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        ValidityPolicy.parse(text)
    assert err.value.code == "config.dac_validity"


def test_resolve_follows_chip_cert_days_and_the_issuer() -> None:
    # GIVEN each policy WHEN resolved under a PAI ending in 2028
    end = {"issuer_not_before": NOW - timedelta(days=1), "issuer_not_after": PAI_END}
    # THEN days end one second before start + days; issuer ends with the PAI; no-expiry is 9999
    assert ValidityPolicy.parse("10").resolve(NOW, **end).not_after == NOW + timedelta(days=10, seconds=-1)
    assert ValidityPolicy.parse("issuer").resolve(NOW, **end).not_after == PAI_END
    assert ValidityPolicy.parse("no-expiry").resolve(NOW, **end).not_after == NO_EXPIRY
    # AND a start before the issuer's notBefore moves to it
    early = ValidityPolicy.parse("issuer").resolve(NOW - timedelta(days=9), **end)
    assert early.not_before == NOW - timedelta(days=1)


def test_within_issuer_refuses_a_dac_that_outlives_its_pai() -> None:
    # GIVEN Private CA's rule (the DAC ends by its CA's notAfter)
    end = {"issuer_not_after": PAI_END, "within_issuer": True}
    for text in ("no-expiry", "3650"):
        with pytest.raises(ConfigError) as err:
            ValidityPolicy.parse(text).resolve(NOW, **end)  # type: ignore[arg-type]
        assert err.value.code == "config.dac_validity_beyond_pai"
    assert ValidityPolicy.parse("365").resolve(NOW, **end).not_after < PAI_END  # type: ignore[arg-type]


def test_an_expired_issuer_cannot_issue() -> None:
    with pytest.raises(ConfigError) as err:
        ValidityPolicy.parse("issuer").resolve(PAI_END + timedelta(seconds=1), issuer_not_after=PAI_END)
    assert err.value.code == "config.issuer_expired"


def test_the_same_rule_at_synth_time() -> None:
    # GIVEN what the CDK config knows about a PAI: days, or an end date
    assert ValidityPolicy.parse("issuer").fits_under(ca_days=730) is None
    assert "no-expiry" in (ValidityPolicy.parse("no-expiry").fits_under(ca_days=730) or "")
    assert ValidityPolicy.parse("no-expiry").fits_under(ca_end=NO_EXPIRY) is None
    assert ValidityPolicy.parse("365").fits_under(ca_days=730) is None
    assert ValidityPolicy.parse("730").fits_under(ca_days=730) is not None
    assert ValidityPolicy.parse("800").fits_under(ca_end=PAI_END, now=NOW) is not None
    assert ValidityPolicy.parse("700").fits_under(ca_end=PAI_END, now=NOW) is None


def test_the_local_ca_keeps_its_days_or_no_expiry_options() -> None:
    from matter_pki.local.ca import validity_from

    assert validity_from(NOW, None).not_after == NO_EXPIRY
    assert validity_from(NOW, 2).not_after == NOW + timedelta(days=2, seconds=-1)


@pytest.mark.parametrize("policy", ["issuer", "no-expiry", "1"])
@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_the_policy_and_the_profile_draw_the_issuer_line_at_the_same_second(policy: str, offset: int) -> None:
    # GIVEN a PAI and a DAC start one second before, at, or after the PAI's notAfter
    from cryptography.hazmat.primitives.asymmetric import ec

    from matter_pki.errors import ProfileError
    from matter_pki.profiles import DacProfile, PaaProfile, PaiProfile, Validity, sign

    k_paa, k_pai = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    paa = sign(PaaProfile(vid=0xFFF1, validity=Validity.no_expiry(NOW)).builder(k_paa.public_key(), serial=1), k_paa)
    pai_validity = Validity(not_before=NOW, not_after=PAI_END)
    pai = sign(PaiProfile(vid=0xFFF1, pid=None, validity=pai_validity).builder(k_pai.public_key(), serial=2, issuer=paa), k_paa)
    start = PAI_END + timedelta(seconds=offset)
    # WHEN the policy resolves it and the profile checks a DAC starting there
    try:
        validity: Validity | None = ValidityPolicy.parse(policy).resolve(start, issuer_not_before=NOW, issuer_not_after=PAI_END)
    except ConfigError as e:
        assert e.code == "config.issuer_expired"
        validity = None
    dac = Validity(not_before=start, not_after=start + timedelta(days=1))
    try:
        DacProfile.for_issuer(pai, pid=0x8000, validity=dac).check_issuer(pai)
        profile_ok = True
    except ProfileError as e:
        assert e.code == "profile.validity_outside_issuer"
        profile_ok = False
    # THEN both refuse from the PAI's last second on (OpenSSL: notAfter <= t is expired), both accept before it
    assert (validity is not None) == profile_ok == (offset < 0)
