"""What the pages show: highlighted text segments, times in the SLA zone, confidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from labeling._intake import locate_quote


@dataclass(frozen=True)
class Segment:
    """A run of text with the same highlights (classes) and tooltip."""

    text: str
    classes: tuple[str, ...] = ()
    title: str = ""


@dataclass(frozen=True)
class Mark:
    start: int
    end: int
    css: str
    title: str


def marks_for(
    text: str, prediction: dict[str, Any] | None, label_name: Any
) -> tuple[list[Mark], list[str]]:
    """Evidence and entity spans that still match the redacted text, and those that do not.

    Offsets in a prediction refer to the original text; the store keeps only the redacted
    text, so a span is shown where its own text still stands (at its offsets, or the nearest
    occurrence); spans whose text was redacted away are listed as hidden.
    """
    if not prediction:
        return [], []
    marks: list[Mark] = []
    hidden: list[str] = []
    for flag in (prediction.get("urgency") or {}).get("flags") or []:
        name = str(flag.get("label", ""))
        for span in flag.get("evidence") or []:
            where = locate_quote(text, span)
            if where:
                marks.append(Mark(where[0], where[1], f"ev ev-{_css(name)}", label_name(name)))
            else:
                hidden.append(label_name(name))
    for entity in prediction.get("entities") or []:
        name = str(entity.get("label", ""))
        where = locate_quote(text, entity)
        if where:
            value = entity.get("value")
            title = f"{label_name(name)}: {value}" if value not in (None, "") else label_name(name)
            marks.append(Mark(where[0], where[1], f"ent ent-{_css(name)}", title))
    return marks, hidden


def _css(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def segments(text: str, marks: list[Mark]) -> list[Segment]:
    """Split ``text`` where the set of covering marks changes (overlaps nest naturally)."""
    if not marks:
        return [Segment(text)]
    cover: list[list[Mark]] = [[] for _ in text]
    for mark in marks:
        for i in range(max(mark.start, 0), min(mark.end, len(text))):
            cover[i].append(mark)
    out: list[Segment] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or cover[i] != cover[start]:
            active = cover[start]
            classes = tuple(dict.fromkeys(c for m in active for c in m.css.split()))
            title = " · ".join(dict.fromkeys(m.title for m in active))
            out.append(Segment(text[start:i], classes, title))
            start = i
    return out


def local_time(value: datetime | None, tz: timezone) -> str:
    if value is None:
        return "-"
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def time_left(value: datetime | None, now: datetime) -> tuple[str, int | None]:
    """A short 'due in' text (e.g. '3h 20m', '-2d 4h' when overdue) and minutes left."""
    if value is None:
        return "-", None
    minutes = int((value - now).total_seconds() // 60)
    sign = "-" if minutes < 0 else ""
    left = abs(minutes)
    days, rest = divmod(left, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {mins}m"
    else:
        text = f"{mins}m"
    return sign + text, minutes
