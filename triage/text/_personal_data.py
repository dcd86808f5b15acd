"""Personal data in complaint text: find it, validate it, replace it with typed placeholders.

Detectors run on the normalised text (full-width digits already half-width), so offsets are
offsets into the original. Every digit run is bounded by non-digits, numbers are validated
(GB 11643 check digit and birth date for ID cards, Luhn for bank cards), and a number that
reads as money or as an order/reference number is left alone. A four-digit card tail
(尾号8812) is never personal data here: every detector needs seven digits or more.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from triage.text._language import read_language
from triage.text._normalize import normalize_text

ID_CARD = "id_card"
BANK_CARD = "bank_card"
MOBILE_PHONE = "mobile_phone"
LANDLINE_PHONE = "landline_phone"
EMAIL = "email"
ACCOUNT_NUMBER = "account_number"

PLACEHOLDERS: dict[str, dict[str, str]] = {
    ID_CARD: {"zh": "[身份证]", "en": "[ID_CARD]"},
    BANK_CARD: {"zh": "[银行卡号]", "en": "[CARD_NUMBER]"},
    MOBILE_PHONE: {"zh": "[手机号]", "en": "[PHONE]"},
    LANDLINE_PHONE: {"zh": "[电话]", "en": "[PHONE]"},
    EMAIL: {"zh": "[邮箱]", "en": "[EMAIL]"},
    ACCOUNT_NUMBER: {"zh": "[账号]", "en": "[ACCOUNT]"},
}


@dataclass(frozen=True)
class Redaction:
    """One piece of personal data: where it is and what replaces it (its text is not kept)."""

    label: str
    start: int
    end: int
    placeholder: str


class _Candidate(NamedTuple):
    label: str
    start: int
    end: int


_FLAGS = re.IGNORECASE | re.ASCII

_ID_CARD = re.compile(r"(?<!\d)[1-9]\d{16}[\dX](?!\d)", _FLAGS)
# First-generation 15-digit numbers carry no check digit: only trusted after the word 身份证.
_OLD_ID_CARD = re.compile(
    r"身份证(?:号码|号)?\s*(?:是|为)?\s*:?\s*(?P<number>[1-9]\d{14})(?!\d)", re.ASCII
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_PROVINCE_CODES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83", "91",
})  # fmt: skip

# Not followed by X: 18 digits then X is a malformed ID number, not a card.
_CARD_CONTIGUOUS = re.compile(r"(?<!\d)[1-9]\d{12,18}(?![\dXx])", re.ASCII)
# Printed groups of four (6222 0212 3456 7894); a trailing short group covers 18-19 digits.
_CARD_GROUPED = re.compile(
    r"(?<!\d)(?<!\d[ -])(?P<body>[1-9]\d{3}(?:[ -]\d{4}){2,3})(?P<tail>[ -]\d{1,3})?(?!\d)",
    re.ASCII,
)

_MOBILE = re.compile(
    r"(?<![\d+])(?:\(?(?:\+|00)86\)?[ -]?|86[ -]?)?1[3-9]\d(?:\d{8}|-\d{4}-\d{4}| \d{4} \d{4})(?!\d)",
    re.ASCII,
)
_LANDLINE = re.compile(
    r"(?<!\d)(?:\(0(?:10|2\d|[3-9]\d{2})\)|0(?:10|2\d|[3-9]\d{2}))[ -]?[1-9]\d{6,7}(?!\d)",
    re.ASCII,
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    r"\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
_ACCOUNT = re.compile(
    r"(?<![A-Za-z])(?:银行账号|收款账号|账号|帐号|账户|帐户|卡号|户号|account|acct\.?|a/c|card)"
    r"\s*(?:号码|号|no\.?|number|num|#)?\s*(?:是|为|is)?\s*:?\s*"
    r"(?P<number>\d{8,30}|\d{4}(?:[ -]\d{4})+(?:[ -]\d{1,4})?)(?!\d)",
    _FLAGS,
)

_MONEY_AFTER = re.compile(
    r"\s?(?:\.\d|元|块|圆|万|千|百|亿|美元|美金|港币|港元|人民币|欧元|yuan|rmb|cny|usd|dollars?|bucks)",
    _FLAGS,
)
_MONEY_BEFORE = re.compile(r"(?:¥|\$|€|£|rmb|cny|usd|hkd)\s?$", re.IGNORECASE)
_REFERENCE_BEFORE = re.compile(
    r"(?:订单|单号|流水|交易号|编号|工单|受理号|合同|保单|凭证|"
    r"order|reference|ref|transaction|txn|tracking|ticket|case|policy|invoice)"
    r"\s*(?:号码|号|编号|no\.?|number|num|id|#)?\s*(?:是|为|is)?\s*:?\s*$",
    re.IGNORECASE,
)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check that every payment card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - ord("0")
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def is_valid_id_card(number: str, *, today: date | None = None) -> bool:
    """An 18-character mainland ID number: region, a real past birth date, GB 11643 check digit."""
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        return False
    if number[:2] not in _PROVINCE_CODES or not _is_past_date(number[6:14], today):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11] == number[17].upper()


def _is_past_date(yyyymmdd: str, today: date | None) -> bool:
    try:
        birth = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return birth.year >= 1900 and birth <= (today or date.today())


# 17 digits is left out: cards that long are rare, while a 17-digit run is usually an ID
# number missing its check digit or a reference number.
_CARD_LENGTHS = frozenset({13, 14, 15, 16, 18, 19})


def _is_card_number(digits: str) -> bool:
    return len(digits) in _CARD_LENGTHS and len(set(digits)) > 1 and luhn_valid(digits)


def _reads_as_money(text: str, start: int, end: int) -> bool:
    return bool(_MONEY_AFTER.match(text, end)) or bool(
        _MONEY_BEFORE.search(text, max(0, start - 4), start)
    )


def _reads_as_reference(text: str, start: int) -> bool:
    """Numbers the writer labels as an order, transaction or case number are not card numbers."""
    return bool(_REFERENCE_BEFORE.search(text, max(0, start - 24), start))


def _reads_as_timestamp(digits: str) -> bool:
    """20261103134500: a date and a time of day run together, as statements print them."""
    if len(digits) != 14 or not _is_past_date(digits[:8], None):
        return False
    return int(digits[8:10]) < 24 and int(digits[10:12]) < 60 and int(digits[12:14]) < 60


def _is_plain_number(text: str, start: int, end: int) -> bool:
    return not _reads_as_money(text, start, end) and not _reads_as_reference(text, start)


def _id_cards(text: str) -> Iterator[_Candidate]:
    for match in _ID_CARD.finditer(text):
        if is_valid_id_card(match.group()):
            yield _Candidate(ID_CARD, match.start(), match.end())
    for match in _OLD_ID_CARD.finditer(text):
        number = match.group("number")
        if number[:2] in _PROVINCE_CODES and _is_past_date("19" + number[6:12], None):
            yield _Candidate(ID_CARD, match.start("number"), match.end("number"))


def _bank_cards(text: str) -> Iterator[_Candidate]:
    for match in _CARD_CONTIGUOUS.finditer(text):
        digits = match.group()
        if (
            _is_card_number(digits)
            and not _reads_as_timestamp(digits)
            and _is_plain_number(text, match.start(), match.end())
        ):
            yield _Candidate(BANK_CARD, match.start(), match.end())
    for match in _CARD_GROUPED.finditer(text):
        # With a trailing short group the number is 17-19 digits; without it, 12 or 16.
        ends = [match.end(), match.end("body")] if match.group("tail") else [match.end()]
        for end in ends:
            digits = re.sub(r"[ -]", "", text[match.start() : end])
            if _is_card_number(digits) and _is_plain_number(text, match.start(), end):
                yield _Candidate(BANK_CARD, match.start(), end)
                break


def _phones(text: str) -> Iterator[_Candidate]:
    for pattern, label in ((_MOBILE, MOBILE_PHONE), (_LANDLINE, LANDLINE_PHONE)):
        for match in pattern.finditer(text):
            if _is_plain_number(text, match.start(), match.end()):
                yield _Candidate(label, match.start(), match.end())


def _emails(text: str) -> Iterator[_Candidate]:
    for match in _EMAIL.finditer(text):
        yield _Candidate(EMAIL, match.start(), match.end())


def _account_numbers(text: str) -> Iterator[_Candidate]:
    for match in _ACCOUNT.finditer(text):
        start, end = match.start("number"), match.end("number")
        if not _reads_as_money(text, start, end):
            yield _Candidate(ACCOUNT_NUMBER, start, end)


def find_personal_data(text: str, language: str) -> tuple[Redaction, ...]:
    """Personal data in normalised ``text``, as redactions with placeholders in ``language``.

    Detectors run from the most specific (a checksummed ID number) to the least (digits after
    账号); a later finding that overlaps an earlier one is dropped.
    """
    accepted: list[_Candidate] = []
    for finder in (_id_cards, _bank_cards, _phones, _emails, _account_numbers):
        for candidate in finder(text):
            if not any(_overlaps(candidate, kept) for kept in accepted):
                accepted.append(candidate)
    accepted.sort(key=lambda c: c.start)
    return tuple(
        Redaction(
            label=c.label, start=c.start, end=c.end, placeholder=placeholder(c.label, language)
        )
        for c in accepted
    )


def placeholder(label: str, language: str) -> str:
    """The typed placeholder for a kind of personal data: Chinese for zh text, English otherwise."""
    names = PLACEHOLDERS[label]
    return names["zh"] if language == "zh" else names["en"]


def redact_text(text: str, language: str | None = None) -> str:
    """``text`` with its personal data replaced, without building the spaCy pipeline.

    For log lines and stored fields; ``language`` (zh/en) picks the placeholders and is read
    from the text when not given.
    """
    normalized = normalize_text(text)
    chosen = language or read_language(normalized).language
    return redact(text, find_personal_data(normalized, chosen))


def redact(text: str, redactions: Sequence[Redaction]) -> str:
    """``text`` with every redacted stretch replaced by its placeholder."""
    parts: list[str] = []
    cursor = 0
    for redaction in sorted(redactions, key=lambda r: r.start):
        parts.append(text[cursor : redaction.start])
        parts.append(redaction.placeholder)
        cursor = redaction.end
    parts.append(text[cursor:])
    return "".join(parts)


def _overlaps(a: _Candidate, b: _Candidate) -> bool:
    return a.start < b.end and b.start < a.end
