"""Label Studio interop: tasks with predictions out, annotations back in as decisions."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from labeling.labelstudio import export_tasks, import_annotations, label_config
from labeling.store import ReviewStore, UserInfo


def _annotate(task: dict, result: list[dict], annotation_id: int) -> dict:
    return {
        **task,
        "annotations": [
            {
                "id": annotation_id,
                "result": result,
                "lead_time": 14.2,
                "was_cancelled": False,
                "completed_by": 3,
                "updated_at": "2026-11-24T10:00:00Z",
            }
        ],
    }


def test_round_trip(seeded: ReviewStore, people: dict[str, UserInfo], tmp_path: Path) -> None:
    out = tmp_path / "ls" / "tasks.json"
    assert export_tasks(seeded, people["lead"], out) == 4
    tasks = json.loads(out.read_text(encoding="utf-8"))
    first = next(t for t in tasks if t["data"]["case_id"] == 1)
    assert first["data"]["text"].startswith("我的卡（尾号8812）")
    prediction = first["predictions"][0]
    assert prediction["model_version"] == "complaint-triage/7" and prediction["score"] == 0.9
    results = {r["from_name"]: r["value"]["choices"] for r in prediction["result"]}
    assert results == {
        "category": ["product_quality"],
        "urgency_flags": ["fund_safety"],
        "owner": ["risk_control"],
        "departments": ["business"],
    }
    assert all(r["to_name"] == "text" and r["type"] == "choices" for r in prediction["result"])

    config = ET.fromstring(out.with_name("tasks.label_config.xml").read_text(encoding="utf-8"))
    names = {c.get("name") for c in config.iter("Choices")}
    assert names == {"category", "urgency_flags", "owner", "departments"}
    assert ET.fromstring(label_config(seeded.taxonomy)).find("Text").get("value") == "$text"

    # The annotator accepts task 1 as predicted and corrects task 2 (by display name, as LS
    # returns the choice value when no alias is set); task 3 is skipped; a foreign task arrives.
    second = next(t for t in tasks if t["data"]["case_id"] == 2)
    corrected = [
        {
            "from_name": "category",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["合同履行"]},
        },
        {
            "from_name": "urgency_flags",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["regulatory_escalation"]},
        },
        {
            "from_name": "owner",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["business"]},
        },
        {
            "from_name": "departments",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["compliance", "business"]},
        },
    ]
    foreign = {"id": 99, "data": {"text": "Card skimmed at an ATM, 300 dollars gone."}}
    annotated = [
        _annotate(first, prediction["result"], 501),
        _annotate(second, corrected, 502),
        next(t for t in tasks if t["data"]["case_id"] == 3),
        _annotate(
            foreign,
            [
                r | {"value": {"choices": v}}
                for r, v in zip(
                    corrected[:3],
                    (["product_quality"], ["fund_safety"], ["risk_control"]),
                    strict=True,
                )
            ],
            503,
        ),
    ]
    export = tmp_path / "ls" / "export.json"
    export.write_text(json.dumps(annotated, ensure_ascii=False), encoding="utf-8")

    summary = import_annotations(seeded, export, people["bob"])
    assert (
        summary.decisions,
        summary.accepted,
        summary.changed,
        summary.new_cases,
        summary.skipped,
    ) == (3, 1, 2, 1, 1)
    one, two = seeded.history(1)[-1], seeded.history(2)[-1]
    assert one.action == "accept" and one.username == "bob" and one.origin == "labelstudio"
    assert one.seconds_spent == 14.2 and one.external_ref == "labelstudio:1:501"
    state = seeded.get_case(2)
    assert two.action == "change" and state.status == "decided"
    assert state.current.category == "contract_performance"
    assert state.current.departments == ("business", "compliance")
    assert state.current.flags == ("regulatory_escalation",)

    again = import_annotations(seeded, export, people["bob"])
    assert again.decisions == 0 and again.already == 3 and again.new_cases == 0
    assert len(seeded.history(2)) == 1
