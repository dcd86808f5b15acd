"""Reading numbers as people write them in complaints: 1,280.50, 3千, 1.5万, 五千, 两万五."""

from __future__ import annotations

_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CN_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_LARGE_UNITS = {"万": 10_000, "亿": 100_000_000}
MAGNITUDES = {**_CN_SMALL_UNITS, **_CN_LARGE_UNITS}
# Latin shorthands: 3k, 5m, and 3w (万, from its pinyin wan) in Chinese complaints.
ENGLISH_MAGNITUDES = {
    "k": 1_000, "thousand": 1_000, "w": 10_000, "m": 1_000_000, "million": 1_000_000,
}  # fmt: skip


def parse_decimal(text: str) -> float:
    """'1,280.50' -> 1280.5."""
    return float(text.replace(",", ""))


def parse_magnitude(text: str) -> float:
    """'千' -> 1000, '千万' -> 1e7, 'million' -> 1e6; an empty string is 1."""
    lowered = text.strip().lower()
    if lowered in ENGLISH_MAGNITUDES:
        return float(ENGLISH_MAGNITUDES[lowered])
    factor = 1.0
    for char in lowered:
        factor *= MAGNITUDES[char]
    return factor


def parse_chinese_number(text: str) -> float | None:
    """A Chinese numeral as a number: 五千 -> 5000, 一千零五十 -> 1050, 两万五 -> 25000.

    A digit right after a unit is the colloquial next place (三千五 = 3500, 两万五 = 25000);
    after 零 it is the literal ones digit. Returns None for text that is not a numeral.
    """
    total = 0
    section = 0
    digit: int | None = None
    last_unit = 0
    previous = ""
    for char in text:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
        elif char in _CN_SMALL_UNITS:
            last_unit = _CN_SMALL_UNITS[char]
            section += (1 if digit is None else digit) * last_unit
            digit = None
        elif char in _CN_LARGE_UNITS:
            last_unit = _CN_LARGE_UNITS[char]
            section += digit or 0
            total = total * last_unit if section == 0 and total else total + section * last_unit
            section, digit = 0, None
        else:
            return None
        previous = char
    if digit is not None:
        # 三千五: the trailing digit counts in the place below the last unit.
        colloquial = previous in _CN_DIGITS and len(text) > 1 and text[-2] in MAGNITUDES
        section += digit * last_unit // 10 if colloquial and last_unit >= 10 else digit
    return float(total + section)
