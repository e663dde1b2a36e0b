"""The string formats of form data: each accepts what it should and refuses look-alikes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from server.formats import CHECKS, format_checker, id_card_check_char, is_cn_id_card


def id_card(region: str, birth: str, sequence: str) -> str:
    """Build an ID-card number with its correct GB 11643 check character."""
    first17 = region + birth + sequence
    assert len(first17) == 17
    return first17 + id_card_check_char(first17)


def conforms(fmt: str, value) -> bool:
    return format_checker().conforms(value, fmt)


VALID = {
    "date": ["2024-05-01", "2024-02-29", "1999-12-31", "2000-01-01"],
    "date-time": [
        "2024-05-01T09:30",  # local time, as an <input type="datetime-local"> sends it
        "2024-05-01T09:30:15",
        "2024-05-01T09:30:00Z",
        "2024-05-01T09:30:00+08:00",
        "2024-05-01T09:30:00.123456-05:00",
        "2024-05-01t09:30:00z",
    ],
    "time": ["09:30", "00:00", "23:59", "09:30:15", "23:59:59", "09:30:15.5", "09:30:00+08:00", "09:30Z"],
    "email": ["a@b.cn", "zhang.san@example.com.cn", "wang+grid@gov.example.org"],
    "cn-mobile": ["13800138000", "19912345678", "15000000000", "17712345678"],
    "grid-code": ["G1", "C1", "C1-D2-S3", "3301-02", "A" * 64],
    "attachment": ["0" * 64, "a" * 64, "0123456789abcdef" * 4],
}

OURS = ("date", "date-time", "time", "email", "cn-mobile", "cn-id-card", "grid-code", "attachment")

INVALID = {
    "date": ["2023-02-29", "2024-13-01", "2024-04-31", "2024-5-1", "20240501", "2024/05/01",
             "2024-05-01T00:00", "", "明天"],
    "date-time": [
        "2024-05-01",  # a date alone is not a moment
        "09:30",
        "2024-05-01T24:00",
        "2024-02-30T09:30",
        "2024-05-01T09:60",
        "2024-05-01T09:30+0800",  # RFC 3339 offsets have a colon
        "2024-05-01T09:30+25:00",
        "2024-05-01T9:30",
        "",
    ],
    "time": ["9:30", "24:00", "09:60", "09:30:60", "0930", "09:30:15.1234567", "09:30 AM", "", "上午九点"],
    "email": ["a@b", "a b@c.cn", "@b.cn", "a@", "a@@b.cn", "a@b.c.", "zhangsan", "",
              "a" * 250 + "@b.cn"],
    "cn-mobile": ["12800138000", "10800138000", "1380013800", "138001380000", "+8613800138000",
                  "138-0013-8000", "1380013800a", "23800138000", ""],
    "grid-code": ["g1", "-G1", "G 1", "G_1", "网格1", "A" * 65, ""],
    "attachment": ["A" * 64, "a" * 63, "a" * 65, "g" * 64, "photo.jpg", ""],
}


@pytest.mark.parametrize("fmt, value", [(f, v) for f, vs in VALID.items() for v in vs])
def test_valid_value_passes_its_format(fmt, value):
    assert CHECKS[fmt](value) is True
    assert conforms(fmt, value)


@pytest.mark.parametrize("fmt, value", [(f, v) for f, vs in INVALID.items() for v in vs])
def test_invalid_value_fails_its_format(fmt, value):
    assert CHECKS[fmt](value) is False
    assert not conforms(fmt, value)


@pytest.mark.parametrize("fmt", OURS)
@pytest.mark.parametrize("value", [20240501, 13800138000, 1.5, True, None, ["2024-05-01"], {"a": 1}])
def test_non_string_passes_every_format_check(fmt, value):
    # Whether the value is a string is the job of `type`, not of `format`.
    assert conforms(fmt, value)


def test_format_checker_holds_every_format_we_check():
    assert set(format_checker().checkers) == set(CHECKS)
    assert set(OURS) <= set(CHECKS)


# -- trailing newlines and look-alike digits ---------------------------------------------------


@pytest.mark.parametrize("fmt", OURS)
def test_value_with_trailing_newline_fails_its_format(fmt):
    good = VALID[fmt][0] if fmt in VALID else id_card("110105", "19491231", "002")
    assert CHECKS[fmt](good)
    assert CHECKS[fmt](good + "\n") is False


@pytest.mark.parametrize("fmt, value", [
    ("cn-mobile", "138\u0660\u0660\u0661\u0663\u0668\u0660\u0660\u0660"),  # Arabic-Indic digits
    ("cn-mobile", "1380013800\uff10"),  # a full-width zero at the end
    ("time", "\uff10\uff19:30"),  # full-width 09
    ("cn-id-card", "\uff11" + id_card("110105", "19491231", "002")[1:]),  # full-width leading 1
])
def test_non_ascii_digits_fail_the_format(fmt, value):
    assert CHECKS[fmt](value) is False


# -- ID-card numbers (GB 11643) ------------------------------------------------------------------


def test_published_example_id_card_has_check_character_x():
    assert id_card_check_char("11010519491231002") == "X"
    assert is_cn_id_card("11010519491231002X")


@pytest.mark.parametrize("region, birth, sequence", [
    ("110105", "19491231", "002"),
    ("440304", "20000229", "123"),
    ("330106", "19800101", "001"),
    ("510107", "20101010", "888"),
    ("650102", "18000101", "005"),
])
def test_id_card_with_correct_check_character_is_valid(region, birth, sequence):
    number = id_card(region, birth, sequence)
    assert len(number) == 18
    assert is_cn_id_card(number)
    assert conforms("cn-id-card", number)


def test_every_check_character_value_is_produced_and_accepted():
    seen = {}
    for n in range(200):
        first17 = f"110105198001{n % 28 + 1:02d}{n:03d}"
        seen.setdefault(id_card_check_char(first17), first17)
    assert set(seen) == set("0123456789X")
    for check, first17 in seen.items():
        assert is_cn_id_card(first17 + check)


@pytest.mark.parametrize("position", range(17))
def test_changing_any_one_digit_breaks_the_checksum(position):
    number = id_card("110105", "19491231", "002")
    digit = number[position]
    for other in "0123456789":
        if other == digit:
            continue
        altered = number[:position] + other + number[position + 1:]
        assert is_cn_id_card(altered) is False, altered


def test_wrong_check_character_is_invalid():
    number = id_card("440304", "20000229", "123")
    for wrong in "0123456789X":
        if wrong != number[-1]:
            assert is_cn_id_card(number[:-1] + wrong) is False


@pytest.mark.parametrize("birth", ["19490230", "20230229", "19491301", "19490000", "17991231"])
def test_id_card_with_impossible_birth_date_is_invalid(birth):
    # The checksum is right, so only the date can make these fail.
    assert is_cn_id_card(id_card("110105", birth, "002")) is False


def test_id_card_born_tomorrow_is_invalid_and_born_today_is_valid():
    today = date.today()
    tomorrow = today + timedelta(days=1)
    assert is_cn_id_card(id_card("110105", today.strftime("%Y%m%d"), "002"))
    assert is_cn_id_card(id_card("110105", tomorrow.strftime("%Y%m%d"), "002")) is False


@pytest.mark.parametrize("value", [
    "11010519491231002",  # 17 characters
    "11010519491231002X1",
    "1101051949123100X2",  # X only as the last character
    "110105194912310",  # the old 15-digit numbers are not accepted
    "11010519491231002Y",
    "",
])
def test_id_card_of_wrong_shape_is_invalid(value):
    assert is_cn_id_card(value) is False
