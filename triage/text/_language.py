"""Which language a complaint is written in, by the share of Han and Latin script."""

from __future__ import annotations

import re
from dataclasses import dataclass

LANGUAGES = ("zh", "en")

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f\uff21-\uff3a\uff41-\uff5a]+")
# A Latin word carries about as much as one and a half Han characters (a translation is about
# that much longer in characters). Acronyms (APP, ATM, POS) are loanwords in Chinese text and
# count for less, so "我的ATM卡在ATM机上被吞了" reads as Chinese, not mixed.
_LATIN_WORD_WEIGHT = 1.5
_ACRONYM_WEIGHT = 0.5


@dataclass(frozen=True)
class LanguageReading:
    """The dominant language, the share of each, and whether the minority share is substantial."""

    language: str
    shares: dict[str, float]
    is_mixed: bool


def read_language(
    text: str, *, mixed_threshold: float = 0.25, default: str = "zh"
) -> LanguageReading:
    """Read the language of ``text`` from its script shares; ``default`` wins ties and empty text."""
    han = len(_HAN.findall(text))
    latin = sum(_latin_weight(word) for word in _LATIN_WORD.findall(text))
    total = han + latin
    if total == 0:
        return LanguageReading(language=default, shares={"zh": 0.0, "en": 0.0}, is_mixed=False)
    shares = {"zh": round(han / total, 4), "en": round(latin / total, 4)}
    if shares["zh"] == shares["en"]:
        language = default
    else:
        language = "zh" if shares["zh"] > shares["en"] else "en"
    return LanguageReading(
        language=language,
        shares=shares,
        is_mixed=min(shares.values()) >= mixed_threshold,
    )


def _latin_weight(word: str) -> float:
    return _ACRONYM_WEIGHT if 2 <= len(word) <= 5 and word.isupper() else _LATIN_WORD_WEIGHT
