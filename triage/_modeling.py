"""The multi-task triage model: one encoder, three heads (category, urgency flags, departments).

The encoder's layers can be run from any depth, so training can cache the frozen lower
layers' output once and fine-tune only the top layers (see training/README.md for why).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from triage._ngrams import NgramHeads

HEADS_FILE = "heads.safetensors"
MODEL_FILE = "triage_model.json"
ENCODER_DIR = "encoder"


@dataclass
class Calibration:
    """Per-head temperatures and per-label decision thresholds, fitted on the dev split."""

    category_temperature: float = 1.0
    flag_temperature: float = 1.0
    department_temperature: float = 1.0
    flag_thresholds: dict[str, float] = field(default_factory=dict)
    department_thresholds: dict[str, float] = field(default_factory=dict)
    review_confidence: float = 0.0
    review_flag_margin: float = 0.0  # in log-odds around each flag threshold
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelSpec:
    """Everything needed to rebuild a trained model besides its weights."""

    categories: list[str]
    flags: list[str]
    departments: list[str]
    max_length: int = 256
    query_prefix: str = "query: "
    pooling: str = "mean"
    calibration: Calibration = field(default_factory=Calibration)
    # Extra inputs beside the text vector: 1.0 where the (negation-aware) evidence lexicon of
    # that flag fires. The model learns how far to trust each phrase list.
    feature_names: list[str] = field(default_factory=list)
    base_model: str = ""
    taxonomy: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ModelSpec:
        data = dict(obj)
        data["calibration"] = Calibration(**data.get("calibration", {}))
        return cls(**data)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors that the attention mask keeps."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-6)


@dataclass
class HeadLogits:
    category: torch.Tensor
    flags: torch.Tensor
    departments: torch.Tensor


class TriageModel(nn.Module):
    """A transformer encoder with a softmax category head and two sigmoid heads."""

    def __init__(self, encoder: nn.Module, spec: ModelSpec, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.spec = spec
        config: Any = encoder.config
        hidden = int(config.hidden_size) + len(spec.feature_names)
        self.dropout = nn.Dropout(dropout)
        self.category_head = nn.Linear(hidden, len(spec.categories))
        self.flag_head = nn.Linear(hidden, len(spec.flags))
        self.department_head = nn.Linear(hidden, len(spec.departments))
        # the n-gram branch, fitted after the encoder (None: encoder logits alone)
        self.ngrams: NgramHeads | None = None

    # -- the encoder, split by depth -------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self._layers())

    def _layers(self) -> nn.ModuleList:
        layers = getattr(getattr(self.encoder, "encoder", None), "layer", None)
        if layers is None:
            raise TypeError(
                "this encoder architecture cannot be split by layer; use trainable_top_layers: all"
            )
        return layers  # type: ignore[no-any-return]

    def _layer_mask(self, hidden: torch.Tensor, mask: torch.Tensor) -> Any:
        create = getattr(self.encoder, "_create_attention_masks", None)
        if create is None:
            return self.encoder.get_extended_attention_mask(mask, mask.shape)  # type: ignore[operator]
        made = create(
            attention_mask=mask,
            encoder_attention_mask=None,
            embedding_output=hidden,
            encoder_hidden_states=None,
            past_key_values=None,
        )
        return made[0] if isinstance(made, tuple) else made

    def hidden_at(self, input_ids: torch.Tensor, mask: torch.Tensor, depth: int) -> torch.Tensor:
        """Token states after the first ``depth`` layers (0 = the embeddings)."""
        hidden = self.encoder.embeddings(  # type: ignore[operator]
            input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids)
        )
        return self.run_layers(hidden, mask, 0, depth)

    def run_layers(self, hidden: torch.Tensor, mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        if start >= stop:
            return hidden
        layer_mask = self._layer_mask(hidden, mask)
        for layer in self._layers()[start:stop]:
            out = layer(hidden, attention_mask=layer_mask)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    # -- heads -----------------------------------------------------------------------------
    def heads(self, pooled: torch.Tensor, features: torch.Tensor | None = None) -> HeadLogits:
        pooled = self.dropout(pooled)
        if self.spec.feature_names:
            if features is None:
                features = torch.zeros(
                    (pooled.shape[0], len(self.spec.feature_names)), device=pooled.device
                )
            pooled = torch.cat([pooled, features.to(pooled.dtype)], dim=-1)
        return HeadLogits(
            category=self.category_head(pooled),
            flags=self.flag_head(pooled),
            departments=self.department_head(pooled),
        )

    def embed(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled sentence vectors from the full encoder."""
        out = self.encoder(input_ids=input_ids, attention_mask=mask)
        return mean_pool(out.last_hidden_state, mask)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
        features: torch.Tensor | None = None,
    ) -> HeadLogits:
        return self.heads(self.embed(input_ids, attention_mask), features)

    def forward_from(
        self, hidden: torch.Tensor, mask: torch.Tensor, depth: int,
        features: torch.Tensor | None = None,
    ) -> HeadLogits:
        """Heads on top of cached states taken after ``depth`` layers."""
        top = self.run_layers(hidden, mask, depth, self.num_layers)
        return self.heads(mean_pool(top, mask), features)

    # -- persistence -----------------------------------------------------------------------
    def head_state(self) -> dict[str, torch.Tensor]:
        return {
            k: v.detach().cpu().contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith("encoder.")
        }

    def save(self, folder: Path, tokenizer: Any) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(folder / ENCODER_DIR)  # type: ignore[operator]
        tokenizer.save_pretrained(folder / ENCODER_DIR)
        save_file(self.head_state(), str(folder / HEADS_FILE))
        if self.ngrams is not None:
            self.ngrams.save(folder)
        (folder / MODEL_FILE).write_text(
            json.dumps(self.spec.to_json(), ensure_ascii=False, indent=2), encoding="utf-8"
        )


def load_triage_model(folder: Path) -> tuple[TriageModel, Any]:
    """Load a saved model folder: (model in eval mode, tokenizer)."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    spec = ModelSpec.from_json(json.loads((folder / MODEL_FILE).read_text(encoding="utf-8")))
    encoder = AutoModel.from_pretrained(folder / ENCODER_DIR, add_pooling_layer=False)
    tokenizer = AutoTokenizer.from_pretrained(folder / ENCODER_DIR)
    model = TriageModel(encoder, spec)
    missing, unexpected = model.load_state_dict(load_file(str(folder / HEADS_FILE)), strict=False)
    missing = [m for m in missing if not m.startswith("encoder.")]
    if missing or unexpected:
        raise ValueError(f"head weights do not match: missing {missing}, unexpected {unexpected}")
    model.ngrams = NgramHeads.load(folder)
    model.eval()
    return model, tokenizer
