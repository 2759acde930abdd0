"""A character-level GPT with nanoGPT's shapes: pre-LayerNorm blocks, causal self-attention
through ``F.scaled_dot_product_attention``, a 4x GELU MLP, learned positions, no biases,
and the output layer tied to the token embedding.

Attention, MLP and block are separate modules (``CausalSelfAttention``, ``MLP``, ``Block``)
so methods can find and replace them (gated MLPs, stochastic depth, low-precision norms).
The initialisation is GPT-2's: normal(0, 0.02), with the residual output projections
scaled by 1/sqrt(2 * layers).

The speedrun records' architecture changes are options of the same model, off by default,
so the baseline stays nanoGPT's: rotary position embeddings instead of learned positions,
RMS-normalised queries and keys (QK-norm), ReLU² instead of GELU, an untied output head,
and zero-initialised residual output projections (each block starts as the identity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("gelu", "relu2")
POSITIONS = ("learned", "rotary")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 65
    context: int = 64
    layers: int = 4
    heads: int = 4
    width: int = 128
    dropout: float = 0.0
    position: str = "learned"  # "rotary": rotate queries and keys by position instead of adding a table
    qk_norm: bool = False  # RMS-normalise queries and keys per head before attention
    activation: str = "gelu"  # "relu2": relu(x)**2
    tied_head: bool = True  # False: the output layer has its own matrix
    zero_init_proj: bool = False  # residual output projections start at zero

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by {self.heads} heads")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {', '.join(POSITIONS)}, got {self.position!r}")
        if self.position == "rotary" and (self.width // self.heads) % 2:
            raise ValueError(f"rotary embeddings need an even head size, got {self.width // self.heads}")


def rotary_tables(
    length: int, head_size: int, base: float = 10000.0, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (length, head_size / 2) for rotary position embeddings (Su et al. 2021)."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_size, 2, device=device, dtype=torch.float32) / head_size)
    angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the last dimension of x (B, H, T, D) by position."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.qkv = nn.Linear(config.width, 3 * config.width, bias=False)
        self.proj = nn.Linear(config.width, config.width, bias=False)
        self.dropout = config.dropout
        self.rotary = config.position == "rotary"
        self.qk_norm = config.qk_norm
        if self.rotary:
            cos, sin = rotary_tables(config.context, config.width // config.heads)
            self.register_buffer("cos", cos, persistent=False)
            self.register_buffer("sin", sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        if self.qk_norm:
            q, k = F.rms_norm(q, (q.shape[-1],)), F.rms_norm(k, (k.shape[-1],))
        if self.rotary:
            cos, sin = self.get_buffer("cos")[:t], self.get_buffer("sin")[:t]
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class ReLU2(nn.Module):
    """relu(x)**2: the modded-nanogpt MLP activation, cheaper than GELU and sparse."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


class MLP(nn.Module):
    """width -> 4 width -> GELU (or ReLU²) -> width."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.width, 4 * config.width, bias=False)
        self.act = ReLU2() if config.activation == "relu2" else nn.GELU()
        self.proj = nn.Linear(4 * config.width, config.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.act(self.fc(x)))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.width, bias=False)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.width, bias=False)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CharGPT(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab)."""

    def __init__(self, config: GPTConfig = GPTConfig()) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.position_embedding = nn.Embedding(config.context, config.width) if config.position == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.ln_f = nn.LayerNorm(config.width, bias=False)
        self.lm_head = nn.Linear(config.width, config.vocab_size, bias=False)
        if config.tied_head:
            self.lm_head.weight = self.token_embedding.weight  # one matrix reads and writes tokens
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():
            if name.endswith("proj.weight"):  # residual outputs: keep the stream's variance flat with depth
                if config.zero_init_proj:
                    nn.init.zeros_(parameter)
                else:
                    nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        if t > self.config.context:
            raise ValueError(f"sequence of {t} tokens is longer than the context {self.config.context}")
        x = self.token_embedding(ids)
        if self.position_embedding is not None:
            x = x + self.position_embedding(torch.arange(t, device=ids.device))
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def parameters_without_positions(self) -> int:
        """Parameter count as nanoGPT reports it (position embeddings left out)."""
        positions = self.position_embedding.weight.numel() if self.position_embedding is not None else 0
        return sum(p.numel() for p in self.parameters()) - positions


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """nanoGPT's rule: decay every parameter with 2+ dimensions (matmul weights, embeddings),
    not gains and biases."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
