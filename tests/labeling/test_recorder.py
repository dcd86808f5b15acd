"""Recording predictions: the configured selection, and never an error into the prediction path."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import pytest

from labeling.recorder import PredictionRecorder
from labeling.store import open_store
from tests.labeling.conftest import make_prediction, sample_predictions
from triage._schema import Prediction
from triage._settings import Settings


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        review_db_url=f"sqlite:///{tmp_path / 'review.db'}",
        **overrides,
    )


def test_records_all_in_the_background(tmp_path: Path) -> None:
    predictions = sample_predictions()
    with PredictionRecorder(_settings(tmp_path, record_mode="all")) as recorder:
        assert recorder.record(predictions) == 4
        assert (
            recorder.record(Prediction.model_validate(predictions[0])) == 1
        )  # same complaint again
        assert recorder.flush(5)
        assert (
            recorder.stats.recorded == 4
            and recorder.stats.duplicates == 1
            and recorder.stats.failed == 0
        )
    store = open_store(f"sqlite:///{tmp_path / 'review.db'}")
    assert store.count_cases() == 4
    store.close()


def test_modes_select_what_is_recorded(tmp_path: Path) -> None:
    predictions = sample_predictions()  # one of four needs review
    off = PredictionRecorder(_settings(tmp_path), background=False)
    assert off.record(predictions) == 0 and off.stats.seen == 0
    review = PredictionRecorder(_settings(tmp_path, record_mode="needs_review"), background=False)
    assert review.record(predictions) == 1 and review.stats.recorded == 1
    review.close()
    sample = PredictionRecorder(
        _settings(tmp_path, record_mode="sample", record_sample_rate=0.25),
        background=False,
        rng=random.Random(7),
    )
    many = [make_prediction(f"s-{i}", f"第{i}条投诉") for i in range(400)]
    chosen = sample.record(many)
    assert 60 <= chosen <= 140 and sample.stats.recorded == chosen
    sample.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://nobody:secret@127.0.0.1:1/review",  # nothing listens there
        "nosuchdialect://store",
        "sqlite:////proc/no-such-place/review.db",
    ],
)
def test_store_down_never_raises_and_counts_the_failure(
    tmp_path: Path, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    predictions = sample_predictions()
    caplog.set_level(logging.WARNING, logger="labeling.recorder")
    recorder = PredictionRecorder(_settings(tmp_path, record_mode="all"), url=url, background=False)
    started = time.perf_counter()
    assert recorder.record(predictions) == 4
    assert recorder.record(predictions[:2]) == 2  # within the back-off: counted without waiting
    assert time.perf_counter() - started < 5
    assert recorder.stats.failed == 6 and recorder.stats.recorded == 0
    assert "review store unavailable" in caplog.text


def test_background_recorder_with_the_store_down(tmp_path: Path) -> None:
    recorder = PredictionRecorder(
        _settings(tmp_path, record_mode="all"), url="nosuchdialect://store"
    )
    started = time.perf_counter()
    for prediction in sample_predictions():
        recorder.record(prediction)
    assert time.perf_counter() - started < 0.5  # the caller never waits on the store
    assert recorder.flush(5)
    assert recorder.stats.failed == 4
    recorder.close()


def test_garbage_in_does_not_raise(tmp_path: Path) -> None:
    recorder = PredictionRecorder(_settings(tmp_path, record_mode="all"), background=False)
    assert recorder.record([{"not": "a prediction"}, sample_predictions()[0]]) == 2
    assert recorder.stats.failed == 1 and recorder.stats.recorded == 1
    assert recorder.record(sample_predictions()[1]) == 1  # a bad prediction does not stop recording
    assert recorder.stats.recorded == 2
    recorder.close()
