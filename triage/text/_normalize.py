"""Length-preserving normalisation: the model sees the same text in training and serving.

Every character maps to exactly one character, so an offset into the normalised text is
the same offset into the original; reviewers always see spans of what the customer wrote.
"""

from __future__ import annotations

from functools import cache

_FULLWIDTH_FIRST = 0xFF01  # ！
_FULLWIDTH_LAST = 0xFF5E  # ～
_FULLWIDTH_SHIFT = 0xFEE0  # ！(U+FF01) - !(U+0021)

# Whitespace the str.isspace() way, plus invisible separators and direction marks (pasted
# phone numbers arrive wrapped in U+202D ... U+202C) that split words the same way.
_WHITESPACE = (
    "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
    "\u200b\u2060\ufeff"
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Variants of one ASCII mark; Chinese-only marks (。、《》【】) already mean one thing and stay.
_PUNCTUATION_VARIANTS = {
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u201f": '"',  # ‟
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u201a": "'",  # ‚
    "\u201b": "'",  # ‛
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2212": "-",  # minus sign
    "\ufe63": "-",  # small hyphen-minus
    "\uffe0": "\u00a2",  # ￠ -> ¢
    "\uffe1": "\u00a3",  # ￡ -> £
    "\uffe5": "\u00a5",  # ￥ -> ¥
    "\uffe6": "\u20a9",  # ￦ -> ₩
}


@cache
def _translation_table() -> dict[int, str]:
    table = {cp: chr(cp - _FULLWIDTH_SHIFT) for cp in range(_FULLWIDTH_FIRST, _FULLWIDTH_LAST + 1)}
    for cp in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
        table[cp] = " "
    for char in _WHITESPACE:
        table[ord(char)] = " "
    for char, replacement in _PUNCTUATION_VARIANTS.items():
        table[ord(char)] = replacement
    return table


def normalize_text(text: str) -> str:
    """Normalise a complaint without moving any character.

    Full-width ASCII (digits, letters, punctuation) becomes half-width, every whitespace
    variant and control character becomes one space, curly quotes and dash variants become
    their ASCII mark. Runs are not collapsed: ``len(normalize_text(t)) == len(t)`` always.
    """
    return text.translate(_translation_table())
