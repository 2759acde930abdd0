"""A small BERT-style encoder for masked-language modelling at character level.

The same pre-LayerNorm block shapes as ``hasten.models.gpt`` (so surgery methods that know those
parts find them here too), but attention is bidirectional: every position sees the whole window.
Learned positions, no biases, the output layer tied to the token embedding, GPT-2 initialisation.
The vocabulary has one extra id past the characters, the mask token, which is an input only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hasten.models.gpt import MLP, GPTConfig


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 66  # characters + the mask token
    context: int = 64
    layers: int = 4
    heads: int = 4
    width: int = 128
    dropout: float = 0.0

    @property
    def mask_id(self) -> int:
        """The last id is the mask token."""
        return self.vocab_size - 1


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        if config.width % config.heads:
            raise ValueError(f"width {config.width} is not divisible by {config.heads} heads")
        self.heads = config.heads
        self.qkv = nn.Linear(config.width, 3 * config.width, bias=False)
        self.proj = nn.Linear(config.width, config.width, bias=False)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class EncoderBlock(nn.Module):
    """Pre-LayerNorm block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.width, bias=False)
        self.attn = SelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.width, bias=False)
        self.mlp = MLP(GPTConfig(width=config.width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CharBert(nn.Module):
    """Token ids (B, T), some of them the mask token -> logits (B, T, vocab) for every position."""

    def __init__(self, config: BertConfig = BertConfig()) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.position_embedding = nn.Embedding(config.context, config.width)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.layers))
        self.ln_f = nn.LayerNorm(config.width, bias=False)
        self.lm_head = nn.Linear(config.width, config.vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        if t > self.config.context:
            raise ValueError(f"sequence of {t} tokens is longer than the context {self.config.context}")
        positions = torch.arange(t, device=ids.device)
        x = self.drop(self.token_embedding(ids) + self.position_embedding(positions))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))
