"""Training and inference speed of the e5-small shape on this machine (CPU or GPU).

Random weights of the real architecture, so only speed is meaningful; use it for capacity
planning and to compare recipes (cached lower layers vs full fine-tuning).

    python -m training.benchmark_speed [--device auto] [--tokens 64] [--seconds 20]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from triage._inference import resolve_device
from triage._modeling import ModelSpec, TriageModel


def e5_small_shaped(layers: int = 12) -> TriageModel:
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=250037, hidden_size=384, num_hidden_layers=layers, num_attention_heads=12,
        intermediate_size=1536, max_position_embeddings=514, type_vocab_size=2, pad_token_id=1,
    )
    spec = ModelSpec(categories=["a", "b", "c"], flags=["w", "x", "y", "z"], departments=list("123456"))
    return TriageModel(BertModel(config, add_pooling_layer=False), spec)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def training_rate(model: TriageModel, device: torch.device, batch: int, tokens: int, top: int | None, seconds: float) -> float:
    """Samples per second of a training step: full fine-tune (top=None) or the top layers only."""
    model.train()
    for p in model.parameters():
        p.requires_grad = top is None
    model.encoder.embeddings.word_embeddings.weight.requires_grad = False
    depth = 0 if top is None else model.num_layers - top
    if top is not None:
        for layer in list(model._layers())[depth:]:
            for p in layer.parameters():
                p.requires_grad = True
    for head in (model.category_head, model.flag_head, model.department_head):
        for p in head.parameters():
            p.requires_grad = True
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(5, 250000, (batch, tokens), device=device)
    mask = torch.ones_like(ids)
    hidden = None
    if top is not None:
        with torch.no_grad():
            hidden = model.hidden_at(ids, mask, depth)
    autocast = device.type == "cuda"
    done, start = 0, None
    while True:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            out = model(ids, mask) if hidden is None else model.forward_from(hidden, mask, depth)
            loss = out.category.float().logsumexp(-1).mean() + out.flags.float().sigmoid().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(device)
        if start is None:
            start = time.perf_counter()  # first step is warm-up
            continue
        done += batch
        if time.perf_counter() - start > seconds:
            return done / (time.perf_counter() - start)


def inference_rate(model: TriageModel, device: torch.device, batch: int, tokens: int, seconds: float) -> float:
    model.eval()
    ids = torch.randint(5, 250000, (batch, tokens), device=device)
    mask = torch.ones_like(ids)
    autocast = device.type == "cuda"
    done, start = 0, None
    with torch.inference_mode():
        while True:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                model(ids, mask)
            _sync(device)
            if start is None:
                start = time.perf_counter()
                continue
            done += batch
            if time.perf_counter() - start > seconds:
                return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    torch.manual_seed(0)
    model = e5_small_shaped().to(device)
    gpu = device.type == "cuda"
    print(f"device: {name}; torch {torch.__version__}; {args.tokens} tokens; {'bf16 autocast' if gpu else 'fp32'}")
    for label, top in (("full fine-tune (word embeddings frozen)", None), ("top 2 layers on cached states", 2)):
        rate = training_rate(model, device, 64 if gpu else 16, args.tokens, top, args.seconds)
        print(f"training, {label}: {rate:,.0f} samples/s")
    for batch in ((256, 1024) if gpu else (1, 32)):
        rate = inference_rate(model, device, batch, args.tokens, args.seconds)
        print(f"inference, batch {batch}: {rate:,.0f} complaints/s")


if __name__ == "__main__":
    main()
