"""Recording predictions into the review store without ever slowing or breaking a prediction.

The service (and ``triage predict --record``) hands every answered prediction to
:meth:`PredictionRecorder.record`. It picks the ones the configured mode asks for, and a
background thread writes them; a full queue drops the surplus, a store that is down costs
a counted, logged failure, and nothing raises back into the caller.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from triage._schema import Prediction
from triage._settings import Settings, get_settings

log = logging.getLogger("labeling.recorder")

_STOP = object()


@dataclass
class RecorderStats:
    """Counters since the recorder started (exposed for logs and metrics)."""

    seen: int = 0
    selected: int = 0
    recorded: int = 0
    duplicates: int = 0
    failed: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class PredictionRecorder:
    """Records predictions as review cases according to ``record_mode``.

    ``record_mode``: ``off`` (nothing), ``all``, ``needs_review`` (only those the model is
    unsure of) or ``sample`` (a random ``record_sample_rate`` share, for quality control).
    With ``background=True`` (the default) :meth:`record` only enqueues and returns at once;
    call :meth:`close` (or :meth:`flush`) before a batch job exits.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        mode: str | None = None,
        url: str | None = None,
        background: bool = True,
        max_queue: int = 10_000,
        retry_after_s: float = 30.0,
        origin: str = "service",
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.mode = mode or self.settings.record_mode
        self.url = url or self.settings.review_db_url
        self.sample_rate = self.settings.record_sample_rate
        self.origin = origin
        self.stats = RecorderStats()
        self._background = background
        self._retry_after_s = retry_after_s
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._store: Any = None
        self._tax: Any = None
        self._down_until = 0.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._last_log = 0.0

    # -- public ------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def record(
        self, predictions: Prediction | dict[str, Any] | Iterable[Prediction | dict[str, Any]]
    ) -> int:
        """Hand predictions over for recording; returns how many were selected. Never raises."""
        try:
            if not self.enabled:
                return 0
            items = (
                [predictions] if isinstance(predictions, Prediction | dict) else list(predictions)
            )
            chosen = [p for p in items if self._wanted(p)]
            with self._lock:
                self.stats.seen += len(items)
                self.stats.selected += len(chosen)
            if not chosen:
                return 0
            if not self._background:
                self._write(chosen)
                return len(chosen)
            self._ensure_thread()
            try:
                self._queue.put_nowait(chosen)
            except queue.Full:
                with self._lock:
                    self.stats.dropped += len(chosen)
                self._warn(f"review recording queue full: dropped {len(chosen)} prediction(s)")
            return len(chosen)
        except Exception as exc:  # the prediction path must never see a recording problem
            self._warn(f"review recording failed before the store: {type(exc).__name__}: {exc}")
            return 0

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything handed over so far is written (or failed); True if done."""
        if self._thread is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush, stop the writer thread and close the store connection."""
        self.flush(timeout)
        thread, self._thread = self._thread, None
        if thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_STOP)
            thread.join(timeout=timeout)
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    def __enter__(self) -> PredictionRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------
    def _wanted(self, prediction: Prediction | dict[str, Any]) -> bool:
        if self.mode == "all":
            return True
        if self.mode == "needs_review":
            flag = (
                prediction.needs_review
                if isinstance(prediction, Prediction)
                else prediction.get("needs_review")
            )
            return bool(flag)
        if self.mode == "sample":
            return self._rng.random() < self.sample_rate
        return False

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="review-recorder", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is _STOP:
                    return
                # Gather what queued up meanwhile into one transaction.
                while len(batch) < 256:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        self._queue.task_done()
                        self._safe_write(batch)
                        return
                    batch = batch + more
                    self._queue.task_done()
                self._safe_write(batch)
            finally:
                self._queue.task_done()

    def _taxonomy(self) -> Any:
        if self._tax is None:
            from triage._taxonomy import load_taxonomy

            self._tax = load_taxonomy(self.settings.taxonomy_path)
        return self._tax

    def _open(self) -> Any:
        if self._store is None:
            from labeling.store import open_store

            self._store = open_store(self.url, taxonomy=self._taxonomy())
        return self._store

    def _safe_write(self, predictions: list[Prediction | dict[str, Any]]) -> None:
        try:
            self._write(predictions)
        except Exception as exc:  # pragma: no cover - _write already catches what it expects
            with self._lock:
                self.stats.failed += len(predictions)
            self._warn(f"review recording failed: {type(exc).__name__}: {exc}")

    def _write(self, predictions: list[Prediction | dict[str, Any]]) -> None:
        if time.monotonic() < self._down_until:
            # The store failed a moment ago: count, don't wait on it again yet.
            with self._lock:
                self.stats.failed += len(predictions)
            self._warn(f"review store unavailable: {len(predictions)} prediction(s) not recorded")
            return
        from labeling._intake import case_from_prediction

        cases = []
        invalid = 0
        for prediction in predictions:
            try:
                cases.append(case_from_prediction(prediction, self._taxonomy(), origin=self.origin))
            except Exception as exc:  # one malformed prediction must not cost the others
                invalid += 1
                self._warn(
                    f"review recording skipped an invalid prediction: {type(exc).__name__}: {exc}"
                )
        if invalid:
            with self._lock:
                self.stats.failed += invalid
        if not cases:
            return
        try:
            result = self._open().add_cases(cases)
        except Exception as exc:
            self._down_until = time.monotonic() + self._retry_after_s
            self._reset_store()
            with self._lock:
                self.stats.failed += len(cases)
            self._warn(
                f"review store unavailable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                f"{len(cases)} prediction(s) not recorded; {self.stats.failed} failed so far"
            )
            return
        with self._lock:
            self.stats.recorded += result.added
            self.stats.duplicates += result.duplicates

    def _reset_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        # At most one line every few seconds: a store outage must not flood the service log.
        if now - self._last_log >= 5.0:
            self._last_log = now
            log.warning(message)
        else:
            log.debug(message)
