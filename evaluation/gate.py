"""The promotion gate: a candidate becomes champion only if it is not worse beyond noise.

Criteria (candidate vs the current champion, same records):

1. category macro-F1: the upper end of the paired-bootstrap 95% interval of
   (candidate - champion) must not be below 0;
2. ``fund_safety`` recall (at each model's own threshold) must not be lower;
3. expected calibration error must not be worse by more than ``ece_tolerance`` (0.03).

Every decision (promoted, refused, forced, rolled back) is appended to ``promotions.jsonl``
under the state folder and written as tags on the model versions concerned. Only this module
moves the ``champion`` alias; serving picks the new champion up on its next start.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluation.metrics_report import KnownRows, calibration_metrics, flag_metrics
from evaluation.predictions import PredictionSet
from evaluation.report import plain_table
from triage import InputError, LabelledRecord, ModelNotFoundError, Settings, Taxonomy, get_settings
from triage._metrics import macro_f1, paired_bootstrap_macro_f1_difference
from triage._registry import CHALLENGER, CHAMPION, mlflow_client, registry_version

LOG_FILE = "promotions.jsonl"
PROMOTED, REFUSED, FORCED, ROLLED_BACK = "promoted", "refused", "forced", "rolled_back"
CHAMPION_CHANGES = (PROMOTED, FORCED)


@dataclass(frozen=True)
class GatePolicy:
    """How strict the gate is."""

    ece_tolerance: float = 0.03
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass
class Criterion:
    """One comparison: the two values, whether it passed and why, in a line."""

    name: str
    passed: bool
    candidate: float | None
    champion: float | None
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateReport:
    criteria: list[Criterion]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.criteria if not c.passed]

    def summary(self) -> str:
        return "; ".join(f"{c.name} {'ok' if c.passed else 'FAILED'} ({c.detail})" for c in self.criteria)


def who_decides() -> str:
    """The person recorded in the log: $TRIAGE_USER, else the login name."""
    return os.environ.get("TRIAGE_USER") or getpass.getuser()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- the criteria --------------------------------------------------------------------------------
def gate_check(
    records: Sequence[LabelledRecord], candidate: PredictionSet, champion: PredictionSet,
    taxonomy: Taxonomy, policy: GatePolicy | None = None,
) -> GateReport:
    """Compare two systems' answers on the same records by the three criteria."""
    policy = policy or GatePolicy()
    known = KnownRows.of(records, taxonomy.category_names)
    return GateReport([
        macro_f1_criterion(records, candidate, champion, known.category, taxonomy, policy),
        fund_safety_criterion(records, candidate, champion, known.flags),
        calibration_criterion(records, candidate, champion, known.category, policy),
    ])


def macro_f1_criterion(
    records: Sequence[LabelledRecord], candidate: PredictionSet, champion: PredictionSet,
    rows: Any, taxonomy: Taxonomy, policy: GatePolicy,
) -> Criterion:
    labels = taxonomy.category_names
    gold = [str(records[i].category) for i in rows]
    cand = [candidate.category[i] for i in rows]
    champ = [champion.category[i] for i in rows]
    if not gold:
        return Criterion("category_macro_f1", False, None, None, "no records with a known category")
    diff, low, high = paired_bootstrap_macro_f1_difference(
        gold, cand, champ, labels, resamples=policy.resamples, confidence=policy.confidence,
        seed=policy.seed,
    )
    passed = high >= 0
    pct = round(policy.confidence * 100)
    detail = (
        f"{macro_f1(gold, cand, labels):.3f} vs {macro_f1(gold, champ, labels):.3f}, "
        f"difference {diff:+.3f}, paired {pct}% CI [{low:+.3f}, {high:+.3f}]"
        + ("" if passed else ": worse beyond noise")
    )
    return Criterion(
        "category_macro_f1", passed, macro_f1(gold, cand, labels), macro_f1(gold, champ, labels),
        detail, {"difference": diff, "ci_low": low, "ci_high": high, "records": len(gold)},
    )


def fund_safety_criterion(
    records: Sequence[LabelledRecord], candidate: PredictionSet, champion: PredictionSet, rows: Any
) -> Criterion:
    cand = flag_metrics(records, candidate, rows, detail=False)
    champ = flag_metrics(records, champion, rows, detail=False)
    support = int(cand["fund_safety_support"] or 0)
    if support == 0:
        return Criterion("fund_safety_recall", True, None, None,
                         "no fund_safety cases in the data: not compared")
    c, p = float(cand["fund_safety_recall"]), float(champ["fund_safety_recall"])
    passed = c >= p - 1e-12
    detail = f"{c:.3f} vs {p:.3f} on {support} cases" + ("" if passed else ": lower")
    return Criterion("fund_safety_recall", passed, c, p, detail, {"support": support})


def calibration_criterion(
    records: Sequence[LabelledRecord], candidate: PredictionSet, champion: PredictionSet,
    rows: Any, policy: GatePolicy,
) -> Criterion:
    cand = calibration_metrics(records, candidate, rows, 10, detail=False)["ece"]
    champ = calibration_metrics(records, champion, rows, 10, detail=False)["ece"]
    if cand is None or champ is None:
        return Criterion("ece", False, cand, champ, "no records with a known category")
    passed = cand - champ <= policy.ece_tolerance + 1e-12
    detail = f"{cand:.3f} vs {champ:.3f}, allowed +{policy.ece_tolerance:.2f}" + (
        "" if passed else ": calibration much worse"
    )
    return Criterion("ece", passed, cand, champ, detail, {"tolerance": policy.ece_tolerance})


def decide(report: GateReport | None, *, force: bool) -> str:
    """promoted when the gate passes (or there is nothing to compare with); forced or refused otherwise."""
    if report is None or report.passed:
        return PROMOTED
    return FORCED if force else REFUSED


# -- the append-only log ---------------------------------------------------------------------------
class PromotionLog:
    """One JSON object per line; lines are only ever appended."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_settings(cls, settings: Settings | None = None) -> PromotionLog:
        settings = settings or get_settings()
        return cls(settings.state_dir / LOG_FILE)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{self.path}:{number}: not valid JSON ({exc.msg})") from exc
        return out

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"seq": len(self.entries()) + 1, **entry}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return entry


def champion_stack(entries: Sequence[dict[str, Any]], model_name: str) -> list[str]:
    """The champions in the order the log put them in place; the last is the current one."""
    stack: list[str] = []
    for entry in entries:
        if entry.get("model") != model_name:
            continue
        if entry.get("decision") in CHAMPION_CHANGES:
            if not stack and entry.get("previous"):
                stack.append(str(entry["previous"]))
            stack.append(str(entry["candidate"]))
        elif entry.get("decision") == ROLLED_BACK and stack:
            stack.pop()
            if not stack or stack[-1] != str(entry["candidate"]):
                stack.append(str(entry["candidate"]))
    return stack


# -- the registry side ---------------------------------------------------------------------------
def current_champion(name: str, settings: Settings) -> str | None:
    client = mlflow_client(settings)
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except Exception:  # no champion alias yet
        return None


def _set_champion(name: str, version: str, settings: Settings) -> None:
    client = mlflow_client(settings)
    client.set_registered_model_alias(name, CHAMPION, version)
    try:
        challenger = str(client.get_model_version_by_alias(name, CHALLENGER).version)
    except Exception:
        challenger = None
    if challenger == version:  # the champion is no longer a challenger
        client.delete_registered_model_alias(name, CHALLENGER)


def _tag_versions(entry: dict[str, Any], settings: Settings) -> None:
    """Record the decision on the candidate and, when it was replaced, on the previous champion."""
    client = mlflow_client(settings)
    name, seq = entry["model"], entry["seq"]
    line = (
        f"{entry['decision']} at {entry['at']} by {entry['who']}"
        + (f" (previous champion {entry['previous']})" if entry.get("previous") else "")
        + (f"; reason: {entry['reason']}" if entry.get("reason") else "")
        + (f"; {entry['summary']}" if entry.get("summary") else "")
    )
    tags = {
        "promotion.decision": entry["decision"],
        "promotion.at": entry["at"],
        "promotion.by": entry["who"],
        "promotion.against": str(entry.get("against_version") or ""),
        "promotion.reason": entry.get("reason") or "",
        "promotion.criteria": entry.get("summary") or "",
        f"promotion.{seq}": line[:4900],
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, entry["candidate"], key, value[:4900])
    if entry["decision"] in (*CHAMPION_CHANGES, ROLLED_BACK) and entry.get("previous"):
        client.set_model_version_tag(
            name, entry["previous"], f"promotion.{seq}",
            f"replaced as champion by version {entry['candidate']} ({entry['decision']}) at {entry['at']}",
        )


def _criteria_json(report: GateReport | None) -> list[dict[str, Any]]:
    return [asdict(c) for c in report.criteria] if report else []


def record_decision(
    *, name: str, candidate: str, previous: str | None, against_version: str | None,
    report: GateReport | None, force: bool, reason: str | None, data_path: str | None,
    data_digest: str | None, settings: Settings, note: str = "",
) -> dict[str, Any]:
    """Decide, move the alias when the decision says so, append to the log, tag the versions."""
    if force and not (reason and reason.strip()):
        raise InputError("--force needs --reason: say why the gate is overridden")
    decision = decide(report, force=force)
    if decision in CHAMPION_CHANGES:
        _set_champion(name, candidate, settings)
    entry = PromotionLog.for_settings(settings).append({
        "at": _now(),
        "who": who_decides(),
        "action": "promote",
        "decision": decision,
        "model": name,
        "candidate": candidate,
        "previous": previous,
        "against_version": against_version,
        "champion_after": candidate if decision in CHAMPION_CHANGES else previous,
        "forced": bool(force and decision == FORCED),
        "reason": (reason or "").strip() or None,
        "data": data_path,
        "data_digest": data_digest,
        "failed": report.failed if report else [],
        "summary": report.summary() if report else note,
        "criteria": _criteria_json(report),
    })
    _tag_versions(entry, settings)
    return entry


def gate_and_record(
    records: Sequence[LabelledRecord], candidate: PredictionSet, champion: PredictionSet,
    taxonomy: Taxonomy, *, name: str, candidate_version: str, champion_version: str,
    previous: str | None, force: bool = False, reason: str | None = None,
    data_path: str | None = None, data_digest: str | None = None,
    policy: GatePolicy | None = None, settings: Settings | None = None,
) -> dict[str, Any]:
    """The gate on answers already computed (what ``promote`` does after triaging both models)."""
    settings = settings or get_settings()
    if force and not (reason and reason.strip()):
        raise InputError("--force needs --reason: say why the gate is overridden")
    report = gate_check(records, candidate, champion, taxonomy, policy)
    return record_decision(
        name=name, candidate=candidate_version, previous=previous, against_version=champion_version,
        report=report, force=force, reason=reason, data_path=data_path, data_digest=data_digest,
        settings=settings,
    )


def promote(
    candidate_ref: str, data_path: str | Path, *, against: str = CHAMPION, force: bool = False,
    reason: str | None = None, batch_size: int = 32, quantize: str | None = None,
    policy: GatePolicy | None = None, progress: bool = True, settings: Settings | None = None,
) -> dict[str, Any]:
    """Evaluate candidate and champion on the same file and move ``champion`` if the gate passes."""
    from evaluation.runner import load_model, predict_records, read_labelled
    from triage._records import content_hash

    settings = settings or get_settings()
    if force and not (reason and reason.strip()):
        raise InputError("--force needs --reason: say why the gate is overridden")
    if Path(candidate_ref).expanduser().exists():
        raise ModelNotFoundError(
            f"{candidate_ref}: a local folder cannot be champion; register it first "
            "(`triage train`) and promote models:/NAME/VERSION"
        )
    name, candidate_version = registry_version(candidate_ref, settings)
    previous = current_champion(name, settings)
    try:
        against_name, against_version = registry_version(against, settings)
    except ModelNotFoundError:
        if against != CHAMPION:
            raise
        against_name, against_version = name, None
    if against_name != name:
        raise InputError(f"candidate is a {name!r} model but --against is a {against_name!r} model")
    if candidate_version == previous:
        raise InputError(f"{name} version {candidate_version} is already the champion")
    if against_version is None:  # an empty registry: nothing to compare against
        return record_decision(
            name=name, candidate=candidate_version, previous=None, against_version=None, report=None,
            force=force, reason=reason, data_path=str(data_path), data_digest=None,
            settings=settings, note="no champion to compare against",
        )
    if not Path(data_path).is_file():
        raise InputError(f"{data_path}: evaluation data file not found")
    cand_model = load_model(f"models:/{name}/{candidate_version}", batch_size=batch_size,
                            quantize=quantize, settings=settings)
    champ_model = load_model(f"models:/{name}/{against_version}", batch_size=batch_size,
                             quantize=quantize, settings=settings)
    taxonomy = cand_model.triager.taxonomy
    if champ_model.triager.taxonomy.category_names != taxonomy.category_names:
        raise InputError("candidate and champion predict different category sets: compare them by hand")
    records = read_labelled(data_path, taxonomy)
    cand = predict_records(cand_model, records, progress=progress)
    champ = predict_records(champ_model, records, progress=progress)
    return gate_and_record(
        records, cand, champ, taxonomy, name=name, candidate_version=candidate_version,
        champion_version=against_version, previous=previous, force=force, reason=reason,
        data_path=str(data_path), data_digest=content_hash(records), policy=policy, settings=settings,
    )


def rollback(*, reason: str | None = None, settings: Settings | None = None,
             model_name: str | None = None) -> dict[str, Any]:
    """Put the champion before the current one back in place (from the log), and record it."""
    settings = settings or get_settings()
    name = model_name or settings.registered_model_name
    log = PromotionLog.for_settings(settings)
    stack = champion_stack(log.entries(), name)
    current = current_champion(name, settings)
    if len(stack) < 2:
        raise InputError(f"nothing to roll back: the promotion log has no earlier champion of {name!r}")
    if current != stack[-1]:
        raise InputError(
            f"the champion alias points at version {current}, but the log's last champion is "
            f"{stack[-1]}: it was moved outside `triage promote`; fix the alias by hand first"
        )
    target = stack[-2]
    _set_champion(name, target, settings)
    entry = log.append({
        "at": _now(),
        "who": who_decides(),
        "action": "rollback",
        "decision": ROLLED_BACK,
        "model": name,
        "candidate": target,
        "previous": current,
        "against_version": current,
        "champion_after": target,
        "forced": False,
        "reason": (reason or "").strip() or None,
        "data": None,
        "data_digest": None,
        "failed": [],
        "summary": f"champion restored from version {current} to version {target}",
        "criteria": [],
    })
    _tag_versions(entry, settings)
    return entry


# -- reading it back -----------------------------------------------------------------------------
def history_table(entries: Sequence[dict[str, Any]]) -> str:
    """The log as a plain table, oldest first."""
    header = ["#", "when (UTC)", "who", "decision", "model", "candidate", "previous",
              "champion after", "macro-F1 diff [95% CI]", "fund_safety R", "ECE", "reason / failed"]
    rows = []
    for e in entries:
        crit = {c["name"]: c for c in e.get("criteria", [])}
        f1 = crit.get("category_macro_f1", {}).get("extra", {})
        fs, ece = crit.get("fund_safety_recall", {}), crit.get("ece", {})
        rows.append([
            str(e.get("seq", "")),
            str(e.get("at", "")).replace("+00:00", "").replace("T", " "),
            str(e.get("who", "")),
            str(e.get("decision", "")),
            str(e.get("model", "")),
            str(e.get("candidate", "")),
            str(e.get("previous") or "-"),
            str(e.get("champion_after") or "-"),
            f"{f1['difference']:+.3f} [{f1['ci_low']:+.3f}, {f1['ci_high']:+.3f}]" if f1 else "-",
            _pair(fs),
            _pair(ece),
            "; ".join(x for x in [e.get("reason") or "", ", ".join(e.get("failed") or [])] if x) or "-",
        ])
    return plain_table(header, rows)


def _pair(criterion: dict[str, Any]) -> str:
    c, p = criterion.get("candidate"), criterion.get("champion")
    if c is None or p is None:
        return "-"
    return f"{c:.3f} vs {p:.3f}"
