"""The BentoML prediction service: HTTP in, the core inference object, contract JSON out.

Two services, one process each: ``TriageModel`` holds the model and batches concurrent
single requests adaptively; ``ComplaintTriage`` is the public API (validation, auth, logs).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
import uuid
from typing import Annotated, Any

import bentoml
from pydantic import AfterValidator, Field, field_validator

from triage import go_offline
from triage._schema import Complaint, Prediction
from triage._settings import get_settings

go_offline()
log = logging.getLogger("triage.service")

# Chosen with serving/benchmark.py on 2 cores (see serving/README.md for the measurements).
MAX_BATCH_SIZE = int(os.environ.get("TRIAGE_MAX_BATCH_SIZE_ADAPTIVE", "32"))
MAX_LATENCY_MS = int(os.environ.get("TRIAGE_MAX_LATENCY_MS", "5000"))
EXAMPLE = "我的信用卡尾号8812昨天被盗刷了5000元，我根本没有操作过，请尽快处理！"


class TriageRequest(Complaint):
    """One complaint; ``text`` is required and limited to the configured length."""

    text: str = Field(description="The complaint text (Chinese or English).", examples=[EXAMPLE])

    @field_validator("text")
    @classmethod
    def _within_limit(cls, v: str) -> str:
        limit = get_settings().max_text_chars
        if len(v) > limit:
            raise ValueError(f"text is {len(v)} characters, over the limit of {limit}")
        return v


def _check_batch(v: list[TriageRequest]) -> list[TriageRequest]:
    limit = get_settings().max_batch_size
    if not v:
        raise ValueError(f"complaints is empty: send 1 to {limit} complaints")
    if len(v) > limit:
        raise ValueError(f"complaints has {len(v)} items, over the batch limit of {limit}")
    return v


def _load_triager() -> Any:
    """Load the BentoML model the launcher selected (its labels carry the registry version)."""
    from triage._inference import InferenceOptions, Triager
    from triage._loading import configured_taxonomy
    from triage._registry import find_model_folder

    settings = get_settings()
    tag = os.environ.get("TRIAGE_BENTO_MODEL", f"{settings.registered_model_name}:latest")
    bento_model = bentoml.models.get(tag)
    folder = find_model_folder(bento_model.path)
    if folder is None:
        raise RuntimeError(f"BentoML model {tag} holds no triage model")
    version = bento_model.info.labels.get("model_version", f"bentoml:{bento_model.tag}")
    options = InferenceOptions(
        batch_size=MAX_BATCH_SIZE, num_threads=settings.num_threads, quantize=settings.quantize,
        evidence_fallback=settings.evidence_fallback,
    )
    return Triager.from_folder(
        folder, model_version=version, taxonomy=configured_taxonomy(settings), options=options
    )


BatchOfComplaints = Annotated[list[TriageRequest], AfterValidator(_check_batch)]


@bentoml.service(name="triage-model", workers=1, traffic={"timeout": 120})
class TriageModel:
    """Holds the model once; concurrent requests are batched adaptively."""

    def __init__(self) -> None:
        _configure_request_log()
        self.triager = _load_triager()

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def triage_many(self, complaints: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._run("adaptive", complaints)

    @bentoml.api
    def triage_list(self, complaints: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A whole client batch in one call (no adaptive batching needed)."""
        return self._run("client", complaints)

    def _run(self, batching: str, complaints: list[dict[str, Any]]) -> list[dict[str, Any]]:
        start = time.perf_counter()
        parsed = [Complaint.model_validate(c) for c in complaints]
        out = [p.model_dump(mode="json") for p in self.triager.triage(parsed)]
        log.info(json.dumps({
            "event": "model_batch", "batching": batching, "batch_size": len(out),
            "inference_ms": round((time.perf_counter() - start) * 1000, 1),
        }))
        return out

    @bentoml.api
    def model_version(self) -> str:
        return str(self.triager.model_version)


@bentoml.service(name="complaint-triage", workers=1, traffic={"timeout": 120, "max_concurrency": 64})
class ComplaintTriage:
    """The public API of the contract: /triage and /triage_batch."""

    model = bentoml.depends(TriageModel)

    def __init__(self) -> None:
        settings = get_settings()
        _configure_request_log()
        self.recorder: Any = None
        if settings.record_mode != "off":
            # the review store's intake never blocks or breaks a prediction (it queues)
            from labeling.recorder import PredictionRecorder

            self.recorder = PredictionRecorder(settings, origin="service")

    @bentoml.on_shutdown
    def _close_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.close()

    def _record(self, predictions: list[Prediction]) -> None:
        if self.recorder is not None:
            self.recorder.record(predictions)

    @bentoml.api(route="/triage", input_spec=TriageRequest, output_spec=Prediction)
    async def triage(self, **fields: Any) -> Prediction:
        start = time.perf_counter()
        complaint = Complaint.model_validate(fields)
        called = time.perf_counter()
        out = await _with_retry(
            lambda: self.model.to_async.triage_many([complaint.model_dump(mode="json")])
        )
        model_ms = (time.perf_counter() - called) * 1000
        prediction = Prediction.model_validate(out[0])
        self._record([prediction])
        _log_request("/triage", start, [prediction], model_ms)
        return prediction

    @bentoml.api(route="/triage_batch")
    async def triage_batch(
        self, complaints: BatchOfComplaints = Field(description="1 to the batch limit (default 256) complaints.")  # noqa: B008
    ) -> dict[str, list[Prediction]]:
        start = time.perf_counter()
        payload = [Complaint.model_validate(c.model_dump()).model_dump(mode="json") for c in complaints]
        called = time.perf_counter()
        out = await _with_retry(lambda: self.model.to_async.triage_list(payload))
        model_ms = (time.perf_counter() - called) * 1000
        predictions = [Prediction.model_validate(o) for o in out]
        self._record(predictions)
        _log_request("/triage_batch", start, predictions, model_ms)
        return {"results": predictions}


async def _with_retry(call: Any, attempts: int = 3) -> Any:
    """Call the model service, retrying when a pooled keep-alive connection was dropped.

    Under concurrent load the internal client can pick a connection that the model service
    has just closed (aiohttp's ServerDisconnectedError): the request never reached the model,
    so sending it again is safe.
    """
    import aiohttp

    for attempt in range(attempts):
        try:
            return await call()
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            if attempt == attempts - 1:
                raise
    raise RuntimeError("unreachable")


def _configure_request_log() -> None:
    """Request lines go to stderr as JSON, one per request, whatever BentoML's log setup is."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _log_request(route: str, start: float, predictions: list[Prediction], model_ms: float) -> None:
    """One structured line per request; never the complaint text or personal data.

    ``model_ms`` is the time spent waiting on the model service (queueing, adaptive
    batching and inference); the rest of ``latency_ms`` is this service's own cost.
    """
    log.info(
        json.dumps({
            "event": "request",
            "request_id": uuid.uuid4().hex[:12],
            "route": route,
            "latency_ms": round((time.perf_counter() - start) * 1000, 1),
            "model_ms": round(model_ms, 1),
            "batch_size": len(predictions),
            "model_version": predictions[0].model_version if predictions else None,
            "categories": [p.category.label for p in predictions][:8],
            "urgency_levels": [p.urgency.level for p in predictions][:8],
        })
    )


class BearerAuth:
    """Bearer-token check for the prediction routes; health and docs routes stay open."""

    PROTECTED = ("/triage", "/triage_batch")

    def __init__(self, app: Any) -> None:
        self.app = app
        self.tokens = [t.encode() for t in get_settings().api_tokens]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.tokens and scope["type"] == "http" and scope["path"] in self.PROTECTED:
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            token = header[7:] if header[:7].lower() == b"bearer " else b""
            # compare against every token so timing does not reveal which one matched
            matched = [hmac.compare_digest(token, t) for t in self.tokens]
            if not any(matched):
                body = json.dumps({"error": "missing or invalid bearer token", "field": "Authorization"}).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


ComplaintTriage.add_asgi_middleware(BearerAuth)
