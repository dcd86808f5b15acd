"""Numbers for the dashboard and `triage review disagreement`: workload, throughput, agreement."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from labeling._models import utcnow
from labeling.store import CaseView, ReviewStore

DUE_BUCKETS = ("overdue", "24h", "3d", "later", "none")


def due_bucket(resolve_by: datetime | None, now: datetime) -> str:
    if resolve_by is None:
        return "none"
    left = resolve_by - now
    if left < timedelta(0):
        return "overdue"
    if left <= timedelta(hours=24):
        return "24h"
    if left <= timedelta(days=3):
        return "3d"
    return "later"


@dataclass(frozen=True)
class LabelAgreement:
    """How one label fares: model said it, reviewers said it, both did."""

    kind: str  # category | flag | owner
    label: str
    model: int
    reviewers: int
    both: int

    @property
    def model_only(self) -> int:
        return self.model - self.both

    @property
    def reviewer_only(self) -> int:
        return self.reviewers - self.both

    @property
    def agreement(self) -> float | None:
        union = self.model + self.reviewers - self.both
        return self.both / union if union else None

    @property
    def precision(self) -> float | None:
        return self.both / self.model if self.model else None

    @property
    def recall(self) -> float | None:
        return self.both / self.reviewers if self.reviewers else None


@dataclass(frozen=True)
class Disagreement:
    cases: int
    category_agreement: float | None
    flags_exact: float | None
    owner_agreement: float | None
    labels: list[LabelAgreement]


def disagreement(store: ReviewStore) -> Disagreement:
    """Per label: the model's suggestion against the reviewers' final decision."""
    tax = store.taxonomy
    cases: list[CaseView] = store.model_suggested_decided()
    rows: list[LabelAgreement] = []

    def _count(kind: str, label: str, said_model: list[bool], said_reviewer: list[bool]) -> None:
        rows.append(
            LabelAgreement(
                kind,
                label,
                sum(said_model),
                sum(said_reviewer),
                sum(1 for m, r in zip(said_model, said_reviewer, strict=True) if m and r),
            )
        )

    for name in tax.category_names:
        _count(
            "category",
            name,
            [c.suggestion.category == name for c in cases],
            [c.current.category == name for c in cases],
        )
    for name in tax.flag_names:
        _count(
            "flag",
            name,
            [name in c.suggestion.flags for c in cases],
            [name in c.current.flags for c in cases],
        )
    for name in tax.department_names:
        _count(
            "owner",
            name,
            [c.suggestion.departments[:1] == (name,) for c in cases],
            [c.current.departments[:1] == (name,) for c in cases],
        )
    n = len(cases)

    def share(hits: int) -> float | None:
        return hits / n if n else None

    return Disagreement(
        cases=n,
        category_agreement=share(sum(c.suggestion.category == c.current.category for c in cases)),
        flags_exact=share(sum(set(c.suggestion.flags) == set(c.current.flags) for c in cases)),
        owner_agreement=share(
            sum(c.suggestion.departments[:1] == c.current.departments[:1] for c in cases)
        ),
        labels=rows,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def disagreement_table(result: Disagreement) -> str:
    """A plain-text table, worst agreement first within each kind."""
    header = f"{'kind':<9} {'label':<24} {'model':>6} {'review':>6} {'both':>5} {'model only':>10} {'review only':>11} {'agree':>6}"
    lines = [
        f"{result.cases} decided case(s) with a model suggestion; category agreement "
        f"{_pct(result.category_agreement)}, flags exact {_pct(result.flags_exact)}, "
        f"owner agreement {_pct(result.owner_agreement)}",
        "",
        header,
        "-" * len(header),
    ]
    for row in result.labels:
        lines.append(
            f"{row.kind:<9} {row.label:<24} {row.model:>6} {row.reviewers:>6} {row.both:>5} "
            f"{row.model_only:>10} {row.reviewer_only:>11} {_pct(row.agreement):>6}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class ReviewerLoad:
    username: str
    total: int
    by_action: dict[str, int]
    median_seconds: float | None


@dataclass(frozen=True)
class Dashboard:
    open_by_level: dict[str, dict[str, int]]  # level -> due bucket -> count
    open_total: int
    escalated: int
    reviewers: list[ReviewerLoad]
    agreement: Disagreement


def dashboard(store: ReviewStore, now: datetime | None = None) -> Dashboard:
    now = now or utcnow()
    grid: dict[str, dict[str, int]] = {
        level: dict.fromkeys(DUE_BUCKETS, 0) for level in store.taxonomy.level_names
    }
    open_cases = store.open_cases()
    for case in open_cases:
        row = grid.setdefault(case.urgency_level, dict.fromkeys(DUE_BUCKETS, 0))
        row[due_bucket(case.resolve_by, now)] += 1
    by_user: dict[str, Counter[str]] = defaultdict(Counter)
    seconds: dict[str, list[float]] = defaultdict(list)
    for d in store.decisions():
        by_user[d.username][d.action] += 1
        if d.seconds_spent is not None and d.action != "reassign":
            seconds[d.username].append(d.seconds_spent)
    reviewers = [
        ReviewerLoad(
            name,
            sum(counts.values()),
            dict(counts),
            statistics.median(seconds[name]) if seconds[name] else None,
        )
        for name, counts in sorted(by_user.items(), key=lambda kv: -sum(kv[1].values()))
    ]
    return Dashboard(
        open_by_level=grid,
        open_total=len(open_cases),
        escalated=sum(1 for c in open_cases if c.status == "escalated"),
        reviewers=reviewers,
        agreement=disagreement(store),
    )
