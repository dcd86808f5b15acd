"""Facts written with digits or Chinese numerals: amounts, dates, card tails, hotline numbers.

These run on characters, not tokens: jieba splits "¥1,280.50" or "尾号8812" unpredictably,
while a regular expression over the normalised text gives exact offsets into the original.
Phrase facts (products, channels) and English date words are matched by spaCy in
``_components``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date
from typing import NamedTuple

from triage.text._numbers import parse_chinese_number, parse_decimal, parse_magnitude

AMOUNT = "amount"
DATE = "date"
CARD_TAIL = "card_tail"
PRODUCT = "product"
CHANNEL = "channel"


class Fact(NamedTuple):
    """A fact found in the normalised text, before its original text is attached."""

    label: str
    start: int
    end: int
    value: float | str | None


_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_CN_MAGNITUDE = r"[百千万亿]{1,2}"
_CN_UNIT = r"块钱|元|圆|块|人民币|美元|美金|港元|港币|欧元|日元|英镑"
_EN_UNIT = r"(?:yuan|rmb|cny|usd|hkd|dollars?|bucks|euros?)(?![A-Za-z])"
_CURRENCY_PREFIX = r"US\$|HK\$|¥|\$|€|£|RMB|CNY|USD|HKD|EUR"
# Words after a number that make it a count, not money: 2万积分, 一万个, 3千公里.
_COUNTER = r"[个人次条件笔张份位名户家天年月日号岁倍米里斤分秒字步台期]|公里|积分|平方"
_CN_NUMERAL = r"[一二两三四五六七八九十][零〇一二两三四五六七八九十百千万亿]*+"

_AMOUNT_WITH_PREFIX = re.compile(
    rf"(?<![A-Za-z])(?:{_CURRENCY_PREFIX})\s?(?P<number>{_NUMBER})"
    rf"(?:\s?(?P<magnitude>{_CN_MAGNITUDE}|(?:k|thousand|million|m)(?![A-Za-z])))?"
    r"(?:\s?(?:元|块))?",
    re.IGNORECASE,
)
_AMOUNT_WITH_UNIT = re.compile(
    rf"(?<![\d.,])(?P<number>{_NUMBER})(?:\s?(?P<magnitude>{_CN_MAGNITUDE}|thousand|million))?"
    rf"(?:多|余)?\s?(?:{_CN_UNIT}|{_EN_UNIT})",
    re.IGNORECASE,
)
# 2万, 1.5万, 3k, 3w; 4万6 and 3万8千 are 46,000 and 38,000.
_AMOUNT_WITH_MAGNITUDE = re.compile(
    rf"(?<![\d.,])(?P<number>{_NUMBER})(?P<magnitude>[千万亿]{{1,2}}+|[kKwW](?![A-Za-z]))"
    r"(?:(?P<next_digit>\d)(?P<next_unit>[百千])?(?![\d.]))?"
    rf"(?:多|余)?+(?:\s?(?:{_CN_UNIT}))?(?!{_COUNTER})"
)
# 扣了3000, 余额少了1280.5: a bare number right after a money word is money.
_AMOUNT_AFTER_MONEY_WORD = re.compile(
    r"(?:扣了|扣款|扣费|转了|转账|付了|支付|收了|收取|退了|退款|赔了|赔偿|损失|金额|余额|欠款|"
    r"少了|多扣|刷了|盗刷|骗了|骗走|取了|存了|还了)"
    rf"\s?(?P<number>{_NUMBER})(?!\d|[.,]\d|\s?(?:{_COUNTER}|%))"
)
_AMOUNT_IN_CHINESE = re.compile(
    rf"(?<![零〇一二两三四五六七八九十百千万亿第几])(?P<numeral>{_CN_NUMERAL})(?:多|余)?+"
    rf"(?P<unit>块钱|元|圆|块|美元|美金)?+(?!{_COUNTER})"
)

_ISO_DATE = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?!\d|\.\d)"
)
_CN_FULL_DATE = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})\s?年\s?(?P<m>\d{1,2})\s?月\s?(?P<d>\d{1,2})\s?[日号]"
)
_COMPACT_DATE = re.compile(r"(?<!\d)(?P<y>(?:19|20)\d{2})(?P<m>\d{2})(?P<d>\d{2})(?!\d)")
_CN_YEAR_MONTH = re.compile(r"(?<!\d)(?P<y>(?:19|20)\d{2})\s?年\s?(?P<m>\d{1,2})\s?月")
_CN_MONTH_DAY = re.compile(r"(?<!\d)(?P<m>\d{1,2})\s?月\s?(?P<d>\d{1,2})\s?[日号]")
_ZH_WEEK = "(?:周|星期|礼拜)"
_ZH_WEEKDAY = "[一二三四五六日天1-7]"
_ZH_RELATIVE_DATE = re.compile(
    "大前天|前天|昨天|昨日|昨晚|昨夜|今天|今日|今早|今晚|明天"
    f"|上上?个?{_ZH_WEEK}{_ZH_WEEKDAY}?"
    f"|(?:本|这)个?{_ZH_WEEK}{_ZH_WEEKDAY}"
    # 等了一周一直: a count before 周 makes it a duration, not a weekday.
    f"|(?<![\\d一二两三四五六七八九十几半个每上本这下]){_ZH_WEEK}{_ZH_WEEKDAY}"
    "|上上?个?月|本月|这个月|上个?季度|去年|前年"
    "|(?:(?<![一二两三四五六七八九十半几])[一二两三四五六七八九十半几]+|(?<!\\d)\\d+)"
    "(?:天|日|周|个星期|个礼拜|个多?月|年)(?:之前|以前|前)"
    "|前几天|这几天|最近几天|前段时间|刚才|刚刚"
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}  # fmt: skip

_CARD_TAIL_ZH = re.compile(
    r"(?:尾号|尾数|末四位|后四位|末4位|后4位)\s?(?:是|为)?\s?:?\s?(?P<digits>\d{4})(?!\d)"
)
_CARD_TAIL_EN = re.compile(
    r"(?<![A-Za-z])(?:end(?:ing|s)\s+(?:in|with)|last\s+(?:four|4)(?:\s+digits)?"
    r"(?:\s+of\s+(?:my|the)\s+card)?(?:\s+(?:is|are|being))?|tail\s+number)\s?:?\s?"
    r"(?P<digits>\d{4})(?!\d)",
    re.IGNORECASE,
)
_AFTER_ID_WORD = re.compile(
    r"(?:身份证|证件|(?<![A-Za-z])ID)(?:号码|号)?\s?(?:是|为)?\s?:?\s?$", re.IGNORECASE
)
_MASKED_CARD = re.compile(r"(?<!\d)\d{4,6}[ -]?(?:[*xX•·]{2,}[ -]?)+(?P<digits>\d{4})(?!\d)")

# Institutions' service numbers (95588, 400-820-8888): a channel, never personal data.
_SERVICE_NUMBER = re.compile(r"(?<!\d)(?:95\d{3}|[48]00[ -]?\d{3}[ -]?\d{4})(?!\d)")
_MONEY_AFTER = re.compile(rf"\s?(?:\.\d|{_CN_UNIT}|{_CN_MAGNITUDE}|{_EN_UNIT})", re.IGNORECASE)


def find_amounts(text: str) -> Iterator[Fact]:
    """Money amounts with their numeric value: ¥1,280.50, 1280.5元, 3千元, 2万, 五千块, $200, 扣了3000."""
    for pattern in (_AMOUNT_WITH_PREFIX, _AMOUNT_WITH_UNIT, _AMOUNT_WITH_MAGNITUDE):
        for match in pattern.finditer(text):
            magnitude = parse_magnitude(match.group("magnitude") or "")
            value = parse_decimal(match.group("number")) * magnitude
            if pattern is _AMOUNT_WITH_MAGNITUDE and match.group("next_digit"):
                next_unit = match.group("next_unit")
                place = parse_magnitude(next_unit) if next_unit else magnitude / 10
                value += int(match.group("next_digit")) * place
            yield Fact(AMOUNT, match.start(), match.end(), value)
    for match in _AMOUNT_AFTER_MONEY_WORD.finditer(text):
        number = match.group("number")
        yield Fact(AMOUNT, match.start("number"), match.end("number"), parse_decimal(number))
    for match in _AMOUNT_IN_CHINESE.finditer(text):
        amount = _chinese_amount(match.group("numeral"), match.group("unit"))
        if amount is not None:
            yield Fact(AMOUNT, match.start(), match.end(), amount)


def _chinese_amount(numeral: str, unit: str | None) -> float | None:
    if unit is None and not re.search("[百千万亿]", numeral):
        return None  # 三十, 十一: a bare numeral without a magnitude is rarely money
    if unit == "块" and numeral == "一":
        return None  # 一块去: "together"
    return parse_chinese_number(numeral)


def find_dates(text: str) -> Iterator[Fact]:
    """Absolute dates (ISO value) and partial or relative ones (their text as value)."""
    for pattern in (_ISO_DATE, _CN_FULL_DATE, _COMPACT_DATE):
        for match in pattern.finditer(text):
            iso = _iso_date(match.group("y"), match.group("m"), match.group("d"))
            if iso is not None and not (
                pattern is _COMPACT_DATE and _MONEY_AFTER.match(text, match.end())
            ):
                yield Fact(DATE, match.start(), match.end(), iso)
    for match in _CN_YEAR_MONTH.finditer(text):
        month = int(match.group("m"))
        if 1 <= month <= 12:
            yield Fact(DATE, match.start(), match.end(), f"{match.group('y')}-{month:02d}")
    for match in _CN_MONTH_DAY.finditer(text):
        if 1 <= int(match.group("m")) <= 12 and 1 <= int(match.group("d")) <= 31:
            yield Fact(DATE, match.start(), match.end(), match.group())
    for match in _ZH_RELATIVE_DATE.finditer(text):
        yield Fact(DATE, match.start(), match.end(), match.group())


def english_date_value(text: str) -> str:
    """ISO date for 'Nov 3, 2026' or '3rd of November 2026'; otherwise the text itself."""
    words = re.findall(r"[A-Za-z]+|\d+", text.lower())
    month = next((_MONTHS[w] for w in words if w in _MONTHS), None)
    numbers = [w for w in words if w.isdigit()]
    years = [n for n in numbers if len(n) == 4]
    days = [n for n in numbers if len(n) <= 2]
    if month is not None and years and days:
        iso = _iso_date(years[0], str(month), days[0])
        if iso is not None:
            return iso
    return text


def _iso_date(year: str, month: str, day: str) -> str | None:
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


def find_card_tails(text: str) -> Iterator[Fact]:
    """Card tails people give to identify a card (尾号8812, ending in 8812, 6222****8812)."""
    for pattern in (_CARD_TAIL_ZH, _CARD_TAIL_EN, _MASKED_CARD):
        for match in pattern.finditer(text):
            if pattern is _MASKED_CARD and _AFTER_ID_WORD.search(text, 0, match.start()):
                continue  # 身份证号 37022*********0046 is a masked ID number, not a card
            yield Fact(CARD_TAIL, match.start(), match.end(), match.group("digits"))


def find_service_numbers(text: str) -> Iterator[Fact]:
    """Hotline numbers (95xxx, 400/800) as the hotline channel; amounts like 95000元 excluded."""
    for match in _SERVICE_NUMBER.finditer(text):
        if not _MONEY_AFTER.match(text, match.end()):
            yield Fact(CHANNEL, match.start(), match.end(), "hotline")


def leftmost_longest(facts: Iterable[Fact]) -> list[Fact]:
    """Per label, keep the leftmost-longest of overlapping facts; sorted by position."""
    kept: list[Fact] = []
    end_of_last: dict[str, int] = {}  # sorted by start: only the last kept fact can overlap
    for fact in sorted(facts, key=lambda f: (f.start, f.start - f.end)):
        if fact.start >= end_of_last.get(fact.label, 0):
            kept.append(fact)
            end_of_last[fact.label] = fact.end
    return sorted(kept, key=lambda f: (f.start, f.end))
