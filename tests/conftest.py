"""Shared fixtures: isolated state folders and tiny randomly initialised models.

No test downloads anything or needs the real base model (except those marked ``slow``).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from triage import go_offline
from triage._settings import get_settings

go_offline()

TINY_TEXTS = {
    "zh": [
        ("我的信用卡尾号8812昨天被盗刷了5000元，我根本没有操作过！", "product_quality", ["fund_safety"], ["risk_control"]),
        ("客服态度太差了，电话打了三次都没人回。", "service_attitude", [], ["customer_service"]),
        ("年费说好免的，结果还是扣了200元，要求退还。", "contract_performance", [], ["business"]),
        ("转账显示成功但对方一直没到账，已经三天了。", "contract_performance", ["transaction_risk"], ["business"]),
        ("手机银行APP一直闪退，报错代码E102，转账失败。", "product_quality", ["transaction_risk"], ["technology"]),
        ("催收人员天天打电话给我家人和同事，还威胁我。", "service_attitude", ["privacy_breach"], ["compliance"]),
        ("再不解决我就投诉到金融监管总局12378。", "contract_performance", ["regulatory_escalation"], ["business", "compliance"]),
        ("理财经理把存款说成保本理财卖给我，现在取不出来。", "product_quality", [], ["compliance"]),
    ],
    "en": [
        ("Someone used my card ending 4421 without my permission, 800 dollars gone.", "product_quality", ["fund_safety"], ["risk_control"]),
        ("The agent was rude and hung up on me twice.", "service_attitude", [], ["customer_service"]),
        ("You charged me an annual fee that was supposed to be waived.", "contract_performance", [], ["business"]),
        ("I was charged twice for the same payment yesterday.", "contract_performance", ["transaction_risk"], ["business"]),
        ("The mobile app crashes with error 503 every time I log in.", "product_quality", [], ["technology"]),
        ("Your collector called my employer and told them about my debt.", "service_attitude", ["privacy_breach"], ["compliance"]),
        ("If this is not fixed I will file a complaint with the CFPB.", "contract_performance", ["regulatory_escalation"], ["business", "compliance"]),
        ("My refund has been pending for three weeks, please process it.", "contract_performance", [], ["business"]),
    ],
}


def tiny_records() -> list[dict[str, object]]:
    records = []
    for lang, rows in TINY_TEXTS.items():
        for i, (text, cat, flags, depts) in enumerate(rows):
            records.append({
                "id": f"tiny-{lang}-{i}", "text": text, "lang": lang, "category": cat,
                "urgency_flags": flags, "departments": depts, "source": "tiny",
                "known": ["category", "urgency_flags", "departments"],
            })
    return records


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def build_tiny_base(folder: Path, layers: int = 2) -> Path:
    """A randomly initialised BERT-shaped encoder with a character WordPiece tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    chars = sorted({c for rows in TINY_TEXTS.values() for r in rows for c in r[0] if not c.isspace()}
                   | set(string.ascii_letters + string.digits + "：:，。！？,.!?%¥$-"))
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault("##" + c, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab, unk_token="<unk>", max_input_chars_per_word=100))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", mask_token="<mask>", model_max_length=128,
    )
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=130, type_vocab_size=1, pad_token_id=1,
    )
    folder.mkdir(parents=True, exist_ok=True)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_base(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture()
def tiny_data(tmp_path: Path) -> dict[str, Path]:
    rows = tiny_records()
    return {
        "train": write_jsonl(tmp_path / "data" / "train.jsonl", rows),
        "dev": write_jsonl(tmp_path / "data" / "dev.jsonl", rows),
        "test": write_jsonl(tmp_path / "data" / "test.jsonl", rows[::2]),
    }


@pytest.fixture()
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point every store (MLflow, BentoML, review DB, model cache) into a temporary folder."""
    state = tmp_path / "state"
    monkeypatch.setenv("TRIAGE_STATE_DIR", str(state))
    monkeypatch.setenv("TRIAGE_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BENTOML_HOME", str(state / "bentoml"))
    get_settings.cache_clear()
    yield state
    get_settings.cache_clear()
