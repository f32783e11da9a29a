"""VID/PID values matter-pki certifies (``matter_pki.idrules``): one rule for every path that makes a profile."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from matter_pki.errors import ProfileError
from matter_pki.idrules import check_pid, check_vid, parse_pid, parse_vid, vid_note
from matter_pki.profiles import PaaProfile, PaiProfile, Validity

VALIDITY = Validity.no_expiry(datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("vid", [0x0000, 0xFFF5, 0xFFFE, 0xFFFF])
def test_reserved_vendor_ids_are_refused(vid: int) -> None:
    # GIVEN a VID the SDK does not accept operationally WHEN checked or put in a profile THEN refused
    with pytest.raises(ProfileError) as info:
        check_vid(vid)
    assert info.value.code == "profile.vid_reserved"
    with pytest.raises(ProfileError, match="not a valid vendor ID"):
        PaaProfile(vid=vid, common_name="PAA", validity=VALIDITY)
    with pytest.raises(ProfileError, match="not a valid vendor ID"):
        PaiProfile(vid=vid, pid=0x8000, common_name="PAI", validity=VALIDITY)


def test_pid_0000_is_refused_and_other_pids_pass() -> None:
    with pytest.raises(ProfileError) as info:
        PaiProfile(vid=0xFFF1, pid=0x0000, common_name="PAI", validity=VALIDITY)
    assert info.value.code == "profile.pid_reserved"
    assert check_pid(0x0001) == 1 and check_pid(0xFFFF) == 0xFFFF
    assert parse_pid("8000") == 0x8000


@pytest.mark.parametrize(("vid", "noted"), [(0xFFF1, True), (0xFFF4, True), (0x1349, False), (None, False)])
def test_test_vendor_ids_pass_with_a_development_note(vid: int | None, noted: bool) -> None:
    if vid is not None:
        assert check_vid(vid) == vid
    note = vid_note(vid)
    assert (note is not None) == noted
    if note:
        assert "test vendor ID" in note and "development only" in note


def test_user_text_is_parsed_then_checked() -> None:
    assert parse_vid("0xfff1") == 0xFFF1
    with pytest.raises(ValueError, match="1 to 4 hex digits"):
        parse_vid("12345")
    with pytest.raises(ProfileError):
        parse_vid("0")
