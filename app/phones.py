"""Phone numbers (电话号码): one parser and one stored form for every channel.

Built on Google's ``phonenumbers`` (libphonenumber's metadata) with China (CN) as the home
region. Everything that stores or compares a phone number — the household import, the
phone-system bridge, the chat, the mini-program API, the console and staff profiles — goes
through this module, so a caller written ``024-23456789`` finds the household written
``+86 24 2345 6789``.

Stored form (canonical): E.164 — ``+8613940512234`` (mobile), ``+862423456789`` (Shenyang
landline 024-23456789), ``+8645182345678`` (Harbin 0451-82345678). The extension (分机) is
kept apart, in its own column (``owner_phone_ext``, ``phone_ext``, ``caller_phone_ext``).

Understood on input: full-width characters (NFKC: ``１３９４０５１２２３４``), spaces, ``-``,
``.``, brackets (``(024)23456789``), ``+86`` / ``0086`` / ``86`` / ``86-`` / ``+86 0…``, the trunk
prefix 0 of landlines, IP-dial prefixes in front (17951, 17911, 12593 …), and extensions
written ``转8001``, ``分机8001``, ``分机号8001``, ``ext 8001``, ``x8001``, ``#8001`` or a
trailing ``-8001`` after a complete landline. Other countries' numbers written with ``+``
or ``00`` are kept in their own E.164 form.

Refused (``PhoneError``, Chinese message): anything that is not a valid number by the
metadata — wrong length, a landline without its area code, service short codes (95598).

Shown: ``display`` gives ``139 4051 2234`` / ``024-2345 6789`` (``转8001``); ``masked`` gives
``139****2234`` / ``024-****6789`` for lists seen by people who need not see the number.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from app.errors import ValidationError
from app.text import clean_text

REGION = "CN"
COUNTRY_CODE = 86
# Carrier IP-dial prefixes (IP长途前缀) people leave in front of numbers they copy from a phone.
IP_PREFIXES = ("17951", "17911", "17901", "17909", "17908", "17969", "12593", "10193", "11808")
MAX_EXTENSION = 8  # digits; the stored extension columns are String(10)

HINT = "（手机号为11位；固定电话需带区号，如 024-23456789）"
INVALID_MESSAGE = "电话号码格式不正确" + HINT
EMPTY_MESSAGE = "电话号码不能为空"

# 转 / 分机 / 分机号 / ext / ext. / extension / x / # then the extension's digits, at the end.
_EXTENSION = re.compile(r"^(?P<main>.+?)\s*(?:转|分机号?|extension|ext\.?|x|#)\s*[:：]?\s*(?P<ext>\d{1,%d})\s*$"
                        % MAX_EXTENSION, re.IGNORECASE)
_TRAILING_DASH_EXTENSION = re.compile(r"^(?P<main>.+)-(?P<ext>\d{1,%d})$" % MAX_EXTENSION)
_ALLOWED = re.compile(r"^\+?[\d\s\-().]+$")
_SEPARATORS = re.compile(r"[\s\-().]")

_KINDS = {
    PhoneNumberType.MOBILE: "mobile", PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "landline",
}


class PhoneError(ValidationError):
    """Not a phone number we can store or dial (Chinese message, ``fields={"phone": [...]}``)."""

    code = "invalid_phone"

    def __init__(self, message: str = INVALID_MESSAGE):
        super().__init__(message, fields={"phone": [message]})


@dataclass(frozen=True)
class Phone:
    """A parsed phone number: ``e164`` is what is stored and compared."""

    e164: str                 # +8613940512234
    extension: str | None     # 8001, or None
    kind: str                 # mobile | landline | other
    _number: phonenumbers.PhoneNumber

    @property
    def is_domestic(self) -> bool:
        return self._number.country_code == COUNTRY_CODE

    @property
    def national(self) -> str:
        """As dialled inside China: ``13940512234``, ``02423456789`` (digits only)."""
        digits = phonenumbers.national_significant_number(self._number)
        if self.is_domestic and self.kind == "landline":
            return "0" + digits
        return digits

    @property
    def display(self) -> str:
        """``139 4051 2234``, ``024-2345 6789``, ``0451-8234 5678 转8001``, ``+852 9123 4567``."""
        if self.is_domestic:
            text = phonenumbers.format_number(self._number_without_extension(), PhoneNumberFormat.NATIONAL)
            if self.kind == "landline":
                text = text.replace(" ", "-", 1)  # 024 2345 6789 -> 024-2345 6789
        else:
            text = phonenumbers.format_number(self._number_without_extension(), PhoneNumberFormat.INTERNATIONAL)
        return f"{text} 转{self.extension}" if self.extension else text

    @property
    def masked(self) -> str:
        """The middle hidden: ``139****2234``, ``024-****6789``, ``+852 ****4567``."""
        national = self.national
        if not self.is_domestic:
            return f"+{self._number.country_code} ****{national[-4:]}"
        if self.kind == "landline":
            area = phonenumbers.length_of_geographical_area_code(self._number)
            return f"{national[:area + 1]}-****{national[-4:]}" if area else f"****{national[-4:]}"
        return f"{national[:3]}****{national[-4:]}"

    @property
    def last4(self) -> str:
        return self.e164[-4:]

    def _number_without_extension(self) -> phonenumbers.PhoneNumber:
        return phonenumbers.PhoneNumber(country_code=self._number.country_code,
                                        national_number=self._number.national_number)


def parse(value: object) -> Phone:
    """Parse what someone typed (or a stored E.164) into a ``Phone``; ``PhoneError`` if it is none."""
    text = clean_text(value)
    if not text:
        raise PhoneError(EMPTY_MESSAGE)
    extension = None
    match = _EXTENSION.match(text)
    if match:
        text, extension = match["main"], match["ext"]
    if not _ALLOWED.match(text):
        raise PhoneError()
    phone = _parse_main(text)
    if phone is None and extension is None:
        match = _TRAILING_DASH_EXTENSION.match(text.strip())
        if match:  # 022-23456789-8001: a complete landline, then its extension
            phone = _parse_main(match["main"])
            extension = match["ext"] if phone is not None and phone.kind == "landline" else None
            phone = phone if extension else None
    if phone is None:
        raise PhoneError()
    if extension:
        return Phone(phone.e164, extension, phone.kind, phone._number)
    return phone


def normalise(value: object) -> str:
    """The stored form (E.164) of what was typed; the extension, if any, is dropped — use
    ``parse`` to keep it. Raises ``PhoneError``."""
    return parse(value).e164


def try_normalise(value: object) -> str | None:
    """``normalise``, or None when ``value`` is blank or not a phone number (for look-ups)."""
    try:
        return normalise(value)
    except PhoneError:
        return None


def display(stored: str | None, extension: str | None = None) -> str:
    """A stored number as people read it; what cannot be parsed (legacy rows) is shown as is."""
    if not stored:
        return ""
    try:
        phone = parse(stored)
    except PhoneError:
        return stored + (f" 转{extension}" if extension else "")
    if extension:
        phone = Phone(phone.e164, extension, phone.kind, phone._number)
    return phone.display


def masked(stored: str | None) -> str:
    """A stored number with its middle hidden (``139****2234``); legacy text keeps its last 4."""
    if not stored:
        return ""
    try:
        return parse(stored).masked
    except PhoneError:
        return "****" + stored[-4:] if len(stored) > 4 else "****"


def search_fragment(query: object) -> str | None:
    """What to look for inside stored numbers for a search box entry.

    A whole number (``024-23456789``) gives its E.164; a fragment of digits (``4051 22``,
    ``２２３４``) gives those digits, a landline fragment without its trunk 0 (``024-2345`` →
    ``242345``). None when the entry has no digits or letters other than a phone's.
    """
    whole = try_normalise(query)
    if whole is not None:
        return whole
    text = clean_text(query)
    if not text or not _ALLOWED.match(text):
        return None
    digits = _SEPARATORS.sub("", text).lstrip("+")
    if not digits:
        return None
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("0") and len(digits) > 1:
        digits = digits[1:]
    return digits or None


def _parse_main(text: str) -> Phone | None:
    digits = _SEPARATORS.sub("", text)
    if not digits or not digits.lstrip("+").isdigit():
        return None
    mobile = _MOBILE.fullmatch(digits)
    if mobile:  # the common case, ~100x faster than phonenumbers.parse (imports of 100k rows)
        phone = _domestic_mobile(mobile["number"])
        if phone is not None:
            return phone
    candidates = [digits]
    for prefix in IP_PREFIXES:
        if digits.startswith(prefix) and len(digits) > len(prefix) + 6:
            candidates.insert(0, digits[len(prefix):])
    for candidate in candidates:
        phone = _valid(candidate)
        if phone is not None:
            return phone
    return None


# An 11-digit mobile, maybe behind +86 / 0086 / 86.
_MOBILE = re.compile(r"(?:\+86|0086|86)?(?P<number>1\d{10})")


def _domestic_mobile(number: str) -> Phone | None:
    """A CN mobile by its 7-digit block (libphonenumber's CN mobile ranges are decided by at
    most the first 7 digits), or None to take the general path."""
    kind = _mobile_block_kind(number[:7])
    if kind is None:
        return None
    e164 = "+86" + number
    return Phone(e164, None, kind, phonenumbers.PhoneNumber(country_code=COUNTRY_CODE, national_number=int(number)))


@functools.lru_cache(maxsize=4096)
def _mobile_block_kind(block: str) -> str | None:
    """The kind of every number of this 7-digit block when the whole block is valid, else None."""
    kinds = set()
    for tail in ("0000", "5555", "9999"):
        phone = _valid(block + tail)
        kinds.add(phone.kind if phone is not None else None)
    return kinds.pop() if len(kinds) == 1 else None


def _valid(digits: str) -> Phone | None:
    try:
        number = phonenumbers.parse(digits, REGION)
    except NumberParseException:
        return None
    if number.country_code == COUNTRY_CODE and not phonenumbers.is_valid_number(number):
        # +86 0 24 …: the trunk 0 written after the country code.
        national = str(number.national_number)
        if digits.lstrip("+").startswith(("860", "00860")):
            return _valid("0" + national) if not national.startswith("0") else None
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    number.extension = None
    kind = _KINDS.get(phonenumbers.number_type(number), "other")
    return Phone(phonenumbers.format_number(number, PhoneNumberFormat.E164), None, kind, number)
