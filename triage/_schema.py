"""The contract: what a complaint looks like coming in and what a prediction looks like going out.

Field names and meanings follow the interface contract; extra fields are additive.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TEXT_CHARS = 5000


class Complaint(BaseModel):
    """One complaint as an intake system sends it; only ``text`` is required."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    text: str = Field(description="The complaint text, Chinese or English.", examples=[
        "我的信用卡尾号8812昨天被盗刷了5000元，我根本没有操作过，请尽快处理！"
    ])
    id: str | None = Field(default=None, max_length=200, description="Caller's id, echoed back.")
    channel: str | None = Field(default=None, max_length=50, description="hotline, app, email, ...")
    received_at: datetime | None = Field(
        default=None, description="ISO 8601 time the complaint was received; SLA runs from it."
    )

    @field_validator("text")
    @classmethod
    def _text_present(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is empty or only whitespace")
        return v


class Span(BaseModel):
    """A stretch of the original text, by character offsets (``text[start:end]``)."""

    start: int
    end: int
    text: str


class CategoryResult(BaseModel):
    label: str
    confidence: float
    scores: dict[str, float]


class UrgencyFlagResult(BaseModel):
    label: str
    score: float
    evidence: list[Span] = Field(default_factory=list)


class UrgencyResult(BaseModel):
    level: str
    flags: list[UrgencyFlagResult] = Field(default_factory=list)
    scores: dict[str, float]


class DepartmentScore(BaseModel):
    label: str
    score: float


class SlaResult(BaseModel):
    level: str
    respond_by: datetime
    resolve_by: datetime


class Entity(BaseModel):
    label: str
    start: int
    end: int
    text: str
    value: float | str | None = None


class Prediction(BaseModel):
    """One triaged complaint: the JSON object of the contract."""

    id: str | None = None
    language: str
    category: CategoryResult
    urgency: UrgencyResult
    departments: list[DepartmentScore]
    sla: SlaResult
    needs_review: bool
    review_reasons: list[str] = Field(default_factory=list)
    entities: list[Entity] = Field(default_factory=list)
    redacted_text: str
    model_version: str
    channel: str | None = None
    received_at: datetime | None = None
