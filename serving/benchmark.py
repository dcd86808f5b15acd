"""Serving benchmark: latency and throughput of the real service on localhost, beside the raw
inference object, so the service's overhead is a ratio. Prints figures; asserts nothing.

    python -m serving.benchmark [--model champion] [--compare REF ...] [--requests 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from triage import go_offline


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def starter_mix(n: int, seed: int = 7) -> list[str]:
    """Complaint texts with the length distribution of the starter set."""
    texts = []
    for split in ("train", "dev", "test"):
        path = Path("datasets/starter") / f"{split}.jsonl"
        if path.is_file():
            texts += [json.loads(line)["text"] for line in path.open(encoding="utf-8") if line.strip()]
    rng = random.Random(seed)
    return [rng.choice(texts) for _ in range(n)]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def raw_figures(ref: str, texts: list[str], quantize: str) -> dict[str, float]:
    """The inference object alone: single-call latency and batched throughput."""
    from triage._loading import load_triager
    from triage._schema import Complaint

    triager = load_triager(ref, batch_size=32, quantize=quantize)
    complaints = [Complaint(text=t) for t in texts]
    triager.triage(complaints[:8])  # warm-up
    singles = []
    for c in complaints[:60]:
        t0 = time.perf_counter()
        triager.triage([c])
        singles.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    triager.triage(complaints)
    batch_s = time.perf_counter() - t0
    analyses_t0 = time.perf_counter()
    long_texts = [(t * 4)[:200] for t in texts[:200]]
    triager.text.analyse_many(long_texts)
    pipeline_ms = (time.perf_counter() - analyses_t0) * 1000 / len(long_texts)
    return {
        "single_p50_ms": statistics.median(singles),
        "single_p95_ms": _pct(singles, 0.95),
        "batch_per_s": len(complaints) / batch_s,
        "text_pipeline_ms_per_200_chars": pipeline_ms,
    }


def fast_path_figures(refs: list[str], texts: list[str]) -> list[dict[str, object]]:
    """Each model, fp32 and dynamic int8: starter-test category macro-F1 and raw speed."""
    from triage import read_records
    from triage._loading import load_triager
    from triage._metrics import macro_f1
    from triage._schema import Complaint

    records = read_records("datasets/starter/test.jsonl")
    gold = [r.category or "" for r in records]
    rows: list[dict[str, object]] = []
    for ref in refs:
        for quantize in ("none", "dynamic_int8"):
            triager = load_triager(ref, batch_size=32, quantize=quantize)
            preds = triager.triage([Complaint(text=r.text) for r in records])
            singles = []
            for text in texts[:40]:
                t0 = time.perf_counter()
                triager.triage([Complaint(text=text)])
                singles.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            triager.triage([Complaint(text=t) for t in texts[:128]])
            rows.append({
                "model": triager.model_version, "layers": triager.model.num_layers, "quantize": quantize,
                "macro_f1": macro_f1(gold, [p.category.label for p in preds], triager.spec.categories),
                "single_p50_ms": statistics.median(singles[5:]),
                "batch_per_s": 128 / (time.perf_counter() - t0),
            })
    return rows


def service_figures(url: str, texts: list[str], requests: int) -> dict[str, float]:
    client = httpx.Client(timeout=120)

    def one(text: str) -> float:
        t0 = time.perf_counter()
        r = client.post(f"{url}/triage", json={"text": text})
        r.raise_for_status()
        return (time.perf_counter() - t0) * 1000

    for t in texts[:10]:
        one(t)
    out: dict[str, float] = {}
    for concurrency in (1, 8):
        with ThreadPoolExecutor(concurrency) as pool:
            t0 = time.perf_counter()
            lat = list(pool.map(one, texts[:requests]))
            took = time.perf_counter() - t0
        out[f"c{concurrency}_p50_ms"] = statistics.median(lat)
        out[f"c{concurrency}_p95_ms"] = _pct(lat, 0.95)
        out[f"c{concurrency}_p99_ms"] = _pct(lat, 0.99)
        out[f"c{concurrency}_per_s"] = len(lat) / took
    batch = [{"text": t} for t in texts[:64]]
    client.post(f"{url}/triage_batch", json={"complaints": batch}).raise_for_status()
    t0 = time.perf_counter()
    n = 0
    for start in range(0, len(texts), 64):
        chunk = [{"text": t} for t in texts[start : start + 64]]
        client.post(f"{url}/triage_batch", json={"complaints": chunk}).raise_for_status()
        n += len(chunk)
    out["batch_per_s"] = n / (time.perf_counter() - t0)
    return out


def main() -> None:
    go_offline()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="champion")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="fewer requests, skip the fast-path comparison")
    parser.add_argument("--compare", action="append", default=[], metavar="REF",
                        help="another model (e.g. a folder or models:/complaint-triage/N) for the fast-path table")
    args = parser.parse_args()
    from serving.launch import bento_model_for, start_service, stop_service, wait_until_ready
    from triage import get_settings

    settings = get_settings()
    quantize = settings.quantize
    n = 100 if args.quick else max(args.requests, 256)
    texts = starter_mix(n)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; model {args.model}; quantize {quantize}", flush=True)
    raw = raw_figures(args.model, texts, quantize)
    print("raw inference object: " + ", ".join(f"{k} {v:.1f}" for k, v in raw.items()), flush=True)
    if not args.quick:
        print("fast path (in-process, starter test split; 128-complaint batch):", flush=True)
        print("| model | layers | quantize | category macro-F1 | single p50 ms | batch complaints/s |", flush=True)
        print("|---|---|---|---|---|---|", flush=True)
        for row in fast_path_figures([args.model, *args.compare], texts):
            print(f"| {row['model']} | {row['layers']} | {row['quantize']} | {row['macro_f1']:.3f} | "
                  f"{row['single_p50_ms']:.0f} | {row['batch_per_s']:.1f} |", flush=True)
    tag = bento_model_for(args.model, settings)
    port = _free_port()
    log = settings.state_dir / "benchmark-service.log"
    proc = start_service(tag, "127.0.0.1", port, settings, log=log)
    print(f"service log: {log}", flush=True)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_ready(url, proc):
            sys.exit(f"the service did not become ready (see {log})")
        svc = service_figures(url, texts, min(args.requests, len(texts)))
    finally:
        stop_service(proc)
    print("service /triage: " + ", ".join(f"{k} {v:.1f}" for k, v in svc.items() if k.startswith("c")))
    print(f"service /triage_batch: {svc['batch_per_s']:.1f} complaints/s")
    overhead = 1 - svc["batch_per_s"] / raw["batch_per_s"]
    print(f"service overhead vs raw batched throughput: {100 * overhead:.0f}%")
    print(
        f"summary: single p50 {svc['c1_p50_ms']:.0f} ms (target <= 30), p95 {svc['c1_p95_ms']:.0f} ms (<= 80), "
        f"batch {svc['batch_per_s']:.0f}/s (>= 100), overhead {100 * overhead:.0f}% (<= 20%), "
        f"text pipeline {raw['text_pipeline_ms_per_200_chars']:.2f} ms per 200 chars (<= 2)"
    )


if __name__ == "__main__":
    main()
