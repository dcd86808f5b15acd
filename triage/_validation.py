"""Checks of labelled files against the taxonomy, and plain-text summaries of them."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from triage._records import LABEL_FIELDS, iter_raw
from triage._taxonomy import Taxonomy, load_taxonomy

_LANGS = {"zh", "en"}
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"


@dataclass
class ValidationReport:
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _dominant_script(text: str) -> str | None:
    han, latin = len(_HAN.findall(text)), len(_LATIN.findall(text))
    if han + latin == 0:
        return None
    # A Chinese character carries about as much as a short English word.
    return "zh" if han * 3 >= latin else "en"


def check_record(obj: dict[str, object], taxonomy: Taxonomy) -> list[tuple[str, str]]:
    """(field, message) for each problem of one parsed record."""
    issues: list[tuple[str, str]] = []
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        issues.append(("text", "empty or missing text"))
    if not str(obj.get("id") or "").strip():
        issues.append(("id", "missing id"))
    known = obj.get("known")
    if known is not None and (
        not isinstance(known, list) or any(k not in LABEL_FIELDS for k in known)
    ):
        issues.append(("known", f"must be a list drawn from {list(LABEL_FIELDS)}"))
        known = None
    known_set = set(known) if isinstance(known, list) else {
        f for f in LABEL_FIELDS if obj.get(f) not in (None, "", [])
    }
    lang = obj.get("lang")
    if lang not in (None, "") and lang not in _LANGS:
        issues.append(("lang", f"unknown language {lang!r} (use zh or en)"))
    elif isinstance(text, str) and lang in _LANGS:
        script = _dominant_script(text)
        if script is not None and script != lang and len(text) > 12:
            issues.append(("lang", f"says {lang} but the text is mostly {script}"))
    if "category" in known_set:
        cat = obj.get("category")
        if cat not in taxonomy.category_names:
            issues.append(("category", f"unknown category {cat!r}"))
    flags = obj.get("urgency_flags") or []
    if not isinstance(flags, list):
        issues.append(("urgency_flags", "must be a list"))
        flags = []
    for f in flags:
        if f not in taxonomy.flag_names:
            issues.append(("urgency_flags", f"unknown urgency flag {f!r}"))
    if len(set(map(str, flags))) != len(flags):
        issues.append(("urgency_flags", "repeated flag"))
    depts = obj.get("departments") or []
    if not isinstance(depts, list):
        issues.append(("departments", "must be a list"))
        depts = []
    for d in depts:
        if d not in taxonomy.department_names:
            issues.append(("departments", f"unknown department {d!r}"))
    if "departments" in known_set and not 1 <= len(depts) <= 3:
        issues.append(("departments", f"needs 1 to 3 departments, has {len(depts)}"))
    if len(set(map(str, depts))) != len(depts):
        issues.append(("departments", "repeated department"))
    level = obj.get("urgency_level")
    if level is not None and "urgency_flags" in known_set:
        valid = [f for f in flags if f in taxonomy.flag_names]
        expected = taxonomy.urgency_level(valid)
        if level != expected:
            issues.append(("urgency_level", f"{level!r} is inconsistent with flags {valid}: policy says {expected!r}"))
    return issues


def _shingles(text: str, n: int = 3) -> set[str]:
    squashed = re.sub(r"\s+", "", text.lower())
    return {squashed[i : i + n] for i in range(max(1, len(squashed) - n + 1))}


def near_duplicates(
    a: list[tuple[str, str]], b: list[tuple[str, str]], threshold: float = 0.85
) -> list[tuple[str, str, float]]:
    """Pairs (id in a, id in b, Jaccard) of near-identical texts across two splits."""
    index: dict[str, list[int]] = {}
    b_sh = [_shingles(t) for _, t in b]
    for j, sh in enumerate(b_sh):
        for s in sh:
            index.setdefault(s, []).append(j)
    pairs = []
    for id_a, text in a:
        sh = _shingles(text)
        counts: Counter[int] = Counter()
        for s in sh:
            counts.update(index.get(s, ()))
        for j, common in counts.most_common(3):
            jac = common / max(1, len(sh | b_sh[j]))
            if jac >= threshold:
                pairs.append((id_a, b[j][0], round(jac, 3)))
    return pairs


def validate_files(paths: list[Path], taxonomy_path: Path | None = None) -> ValidationReport:
    """Validate every record of every file; also report ids repeated across files and leakage."""
    taxonomy = load_taxonomy(taxonomy_path)
    report = ValidationReport()
    seen: dict[str, tuple[Path, int]] = {}
    texts: dict[Path, list[tuple[str, str]]] = {}
    for path in paths:
        texts[path] = []
        for raw in iter_raw(path):
            report.records += 1
            if raw.obj is None:
                report.problems.append(Problem(raw.path, raw.line, "record", raw.error or "unreadable"))
                continue
            for fld, msg in check_record(raw.obj, taxonomy):
                report.problems.append(Problem(raw.path, raw.line, fld, msg))
            rid = str(raw.obj.get("id") or "")
            if rid:
                if rid in seen:
                    first = seen[rid]
                    report.problems.append(Problem(raw.path, raw.line, "id", f"duplicate id {rid!r} (first at {first[0]}:{first[1]})"))
                else:
                    seen[rid] = (raw.path, raw.line)
            if isinstance(raw.obj.get("text"), str):
                texts[path].append((rid, raw.obj["text"]))
    train = [p for p in paths if "train" in p.name]
    held_out = [p for p in paths if "test" in p.name or "dev" in p.name]
    for tr in train:
        for ho in held_out:
            for a, b, jac in near_duplicates(texts[ho], texts[tr]):
                report.warnings.append(f"leakage: {ho.name} {a!r} is a near-duplicate of {tr.name} {b!r} (Jaccard {jac})")
    return report


def _table(title: str, counts: Counter[str], total: int) -> str:
    width = max([len(title)] + [len(k) for k in counts]) + 2
    lines = [f"{title:<{width}}{'count':>7}{'share':>8}", "-" * (width + 15)]
    for key, n in counts.most_common():
        lines.append(f"{key:<{width}}{n:>7}{n / max(total, 1):>8.1%}")
    return "\n".join(lines)


def stats_table(paths: list[Path]) -> str:
    """Counts per category, flag, owner department, language, source, channel and length."""
    per: dict[str, Counter[str]] = {k: Counter() for k in (
        "file", "category", "urgency flag", "owner department", "language", "source", "channel", "length (chars)"
    )}
    total = 0
    for path in paths:
        for raw in iter_raw(path):
            if raw.obj is None:
                continue
            o = raw.obj
            total += 1
            per["file"][path.name] += 1
            per["category"][str(o.get("category") or "(unknown)")] += 1
            flags = o.get("urgency_flags") or []
            for f in flags if isinstance(flags, list) else []:
                per["urgency flag"][str(f)] += 1
            if isinstance(flags, list) and not flags:
                per["urgency flag"]["(none)"] += 1
            depts = o.get("departments") or []
            per["owner department"][str(depts[0]) if isinstance(depts, list) and depts else "(unknown)"] += 1
            per["language"][str(o.get("lang") or "?")] += 1
            per["source"][str(o.get("source") or "?")] += 1
            per["channel"][str(o.get("channel") or "(none)")] += 1
            n = len(str(o.get("text") or ""))
            bucket = "<20" if n < 20 else "20-49" if n < 50 else "50-99" if n < 100 else "100-199" if n < 200 else "200-399" if n < 400 else "400+"
            per["length (chars)"][bucket] += 1
    parts = [f"{total} records"] + [_table(k, v, total) for k, v in per.items() if v]
    return "\n\n".join(parts)
