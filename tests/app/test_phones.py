"""Phone numbers as people write them: one stored form (E.164), extensions apart, clear refusals."""
from __future__ import annotations

import pytest

from app import phones
from app.text import clean_text

# (as typed, stored E.164, extension, display, masked)
ACCEPTED = [
    ("13940512234", "+8613940512234", None, "139 4051 2234", "139****2234"),
    ("１３９４０５１２２３４", "+8613940512234", None, "139 4051 2234", "139****2234"),   # full-width (IME)
    ("139-4051-2234", "+8613940512234", None, "139 4051 2234", "139****2234"),
    (" 139 4051 2234\u3000", "+8613940512234", None, "139 4051 2234", "139****2234"),
    ("+8613940512234", "+8613940512234", None, "139 4051 2234", "139****2234"),
    ("+86 139 4051 2234", "+8613940512234", None, "139 4051 2234", "139****2234"),
    ("008613940512234", "+8613940512234", None, "139 4051 2234", "139****2234"),
    ("0086 139 4051 2234", "+8613940512234", None, "139 4051 2234", "139****2234"),
    ("8613940512234", "+8613940512234", None, "139 4051 2234", "139****2234"),
    ("86-13940512234", "+8613940512234", None, "139 4051 2234", "139****2234"),
    ("17951 13940512234", "+8613940512234", None, "139 4051 2234", "139****2234"),   # IP-dial prefix
    ("1791113940512234", "+8613940512234", None, "139 4051 2234", "139****2234"),
    ("024-23456789", "+862423456789", None, "024-2345 6789", "024-****6789"),
    ("02423456789", "+862423456789", None, "024-2345 6789", "024-****6789"),
    ("(024)23456789", "+862423456789", None, "024-2345 6789", "024-****6789"),
    ("（０２４）２３４５６７８９", "+862423456789", None, "024-2345 6789", "024-****6789"),
    ("+86 24 2345 6789", "+862423456789", None, "024-2345 6789", "024-****6789"),
    ("+86 (0)24 2345 6789", "+862423456789", None, "024-2345 6789", "024-****6789"),
    ("0086-24-23456789", "+862423456789", None, "024-2345 6789", "024-****6789"),
    ("86 024 23456789", "+862423456789", None, "024-2345 6789", "024-****6789"),
    ("12593 024 23456789", "+862423456789", None, "024-2345 6789", "024-****6789"),
    ("+86 451 8234 5678", "+8645182345678", None, "0451-8234 5678", "0451-****5678"),
    ("0451-82345678", "+8645182345678", None, "0451-8234 5678", "0451-****5678"),
    ("010-12345678", "+861012345678", None, "010-1234 5678", "010-****5678"),
    ("024-23456789转8001", "+862423456789", "8001", "024-2345 6789 转8001", "024-****6789"),
    ("024-23456789 转 8001", "+862423456789", "8001", "024-2345 6789 转8001", "024-****6789"),
    ("0451-82345678分机12", "+8645182345678", "12", "0451-8234 5678 转12", "0451-****5678"),
    ("022-23456789 ext. 8001", "+862223456789", "8001", "022-2345 6789 转8001", "022-****6789"),
    ("022-23456789 x8001", "+862223456789", "8001", "022-2345 6789 转8001", "022-****6789"),
    ("010-12345678#5", "+861012345678", "5", "010-1234 5678 转5", "010-****5678"),
    ("022-23456789-8001", "+862223456789", "8001", "022-2345 6789 转8001", "022-****6789"),
    ("4008123123", "+864008123123", None, "400 812 3123", "400****3123"),
    ("+852 9123 4567", "+85291234567", None, "+852 9123 4567", "+852 ****4567"),
]

REFUSED = ["", "   ", "1234", "1380013800", "139405122345", "23456789", "024-2345", "95598", "abc",
           "139405１２２３４x", "12345678901", "电话13940512234", "024-23456789转", "+86 1394051223"]


@pytest.mark.parametrize("typed, e164, extension, display, masked", ACCEPTED)
def test_accepted_forms_have_one_stored_form(typed, e164, extension, display, masked):
    phone = phones.parse(typed)

    assert (phone.e164, phone.extension, phone.display, phone.masked) == (e164, extension, display, masked)
    assert phones.normalise(typed) == e164
    assert phones.parse(phone.e164).e164 == e164          # the stored form parses to itself
    assert phones.parse(phone.display).e164 == e164       # so does the display form (exports import back)


@pytest.mark.parametrize("typed", REFUSED)
def test_invalid_numbers_are_refused_with_a_chinese_message(typed):
    with pytest.raises(phones.PhoneError) as exc:
        phones.parse(typed)

    assert exc.value.message in (phones.INVALID_MESSAGE, phones.EMPTY_MESSAGE)
    assert "电话号码" in exc.value.message and exc.value.fields == {"phone": [exc.value.message]}
    assert phones.try_normalise(typed) is None


def test_kinds_are_told_apart():
    assert phones.parse("13940512234").kind == "mobile"
    assert phones.parse("024-23456789").kind == "landline"
    assert phones.parse("13940512234").last4 == "2234"


def test_stored_helpers_show_legacy_text_as_it_is():
    assert phones.display("+862423456789", "8001") == "024-2345 6789 转8001"
    assert phones.display("分机待补") == "分机待补" and phones.display(None) == ""
    assert phones.masked("+8613940512234") == "139****2234"
    assert phones.masked("不详12") == "****"


@pytest.mark.parametrize("query, fragment", [
    ("024-23456789", "+862423456789"),      # a whole number: its stored form
    ("１３９４０５１２２３４", "+8613940512234"),
    ("4051 22", "405122"),                  # digits of a fragment
    ("024-2345", "242345"),                 # a landline fragment loses its trunk 0, as stored
    ("２２３４", "2234"),
    ("张伟", None),
])
def test_search_fragment_matches_stored_numbers(query, fragment):
    assert phones.search_fragment(query) == fragment
    if fragment and not fragment.startswith("+"):
        assert fragment in phones.normalise("024-23456789") + phones.normalise("13940512234")


def test_mobile_fast_path_agrees_with_the_library_for_every_block():
    # The fast path decides mobiles by their 7-digit block; the library must agree number by number.
    for block in ("1394051", "1700000", "1400000", "1990000", "1230000", "1450000", "1920000"):
        for tail in ("0000", "1234", "9999"):
            number = block + tail
            fast = phones.try_normalise(number)
            slow = phones._valid(number)
            assert fast == (slow.e164 if slow else None), number


@pytest.mark.parametrize("typed, cleaned", [
    ("５０１", "501"), ("　幸福小区  3号楼 ", "幸福小区 3号楼"), ("Ａ座", "A座"), ("a\u200bb", "ab"), (None, ""), (3.0, "3"),
])
def test_clean_text_folds_full_width_and_whitespace(typed, cleaned):
    assert clean_text(typed) == cleaned


def test_clean_text_multiline_keeps_line_breaks():
    assert clean_text(" 第一行  \r\n　第二行 ", multiline=True) == "第一行\n第二行"


def test_api_binding_fields_fold_full_width_input():
    from mobile_api.schemas import BindArgs
    assert BindArgs().load({"account_no": " １０１００００１ ", "owner_name": "郑\u3000淑华", "phone_last4": "３９４０"}) == {
        "account_no": "10100001", "owner_name": "郑 淑华", "phone_last4": "3940"}


def test_prose_keeps_chinese_punctuation_and_folds_full_width_digits():
    assert clean_text("暖气不热，屋里只有１４度（卧室）！", multiline=True) == "暖气不热，屋里只有14度（卧室）！"
