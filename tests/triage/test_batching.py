"""Inference batches: rows of similar length together, never more than the batch size."""

from __future__ import annotations

from triage._inference import length_chunks


def test_long_rows_are_not_padded_with_short_ones() -> None:
    lengths = [10, 12, 14, 15, 40, 200, 210, 250]
    chunks = length_chunks(lengths, list(range(8)), batch_size=32)
    assert chunks == [[0, 1, 2, 3], [4], [5, 6, 7]]


def test_batches_keep_every_row_once_and_respect_the_size() -> None:
    lengths = sorted([5 + (i * 7) % 300 for i in range(500)])
    order = list(range(500))[::-1]  # any row ids, in the order of ``lengths``
    chunks = length_chunks(lengths, order, batch_size=16)
    assert sorted(r for c in chunks for r in c) == sorted(order)
    assert max(len(c) for c in chunks) == 16
    assert length_chunks([], [], batch_size=8) == []
