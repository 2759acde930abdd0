"""The character GPT in μnit Scaling's parametrization (Narayan et al. 2025).

Same shapes as ``hasten.models.gpt.CharGPT`` (it takes the same ``GPTConfig``), different
scaling, so that every tensor has unit variance at initialisation and FP8 can use static scales:

- every weight is drawn from N(0, 1);
- static output multipliers: 1 for the input layer (embeddings), 1/sqrt(fan_in) for hidden
  linears, 1/fan_in for the output head (untied from the embedding: their multipliers differ);
- Res-Post-LayerNorm: each branch is normalised at its end, before it joins the residual stream;
- the fixed residual rule ``x <- sqrt(1 - tau) x + sqrt(tau) branch(x)``, tau chosen by depth;
- attention keeps the standard 1/sqrt(d_head) softmax temperature (μS changes no attention scale).

With ``fp8_backend`` set, hidden linears (QKV, attention output, MLP up and down) run in FP8
(``hasten.numerics.fp8``); the embeddings and the head stay in fp32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hasten.errors import ConfigError
from hasten.models.gpt import GPTConfig
from hasten.numerics.fp8 import FP8Linear


def tau_for_depth(layers: int) -> float:
    """Residual branch weight for a model of ``layers`` blocks.

    The paper's optimum falls with depth: 0.4 at 4 layers (its proxies) and 0.1 for a deep model
    (its Fig. 5). This rule, ``min(0.4, 1.6 / layers)``, passes through 0.4 at 4 layers and 0.1 at 16;
    the 16 is our reading, not the paper's (its Table 4 tau column is not in the text we read).
    """
    if layers < 1:
        raise ConfigError(f"a model needs at least one layer, got {layers}")
    return min(0.4, 1.6 / layers)


def check_tau(tau: float) -> float:
    if not 0.0 < tau < 1.0:
        raise ConfigError(
            f"tau must lie strictly between 0 and 1, got {tau}",
            "tau weighs the residual branch: sqrt(1-tau) x + sqrt(tau) f(x); 0.4 suits 4 layers",
        )
    return tau


def unit_linear(
    in_features: int, out_features: int, multiplier: float, fp8_backend: str | None, grad_scale: float = 1.0
) -> FP8Linear:
    """A bias-free linear with N(0, 1) weights and a static output multiplier (FP8 when a backend is given)."""
    weight = nn.Parameter(torch.randn(out_features, in_features))
    return FP8Linear(weight, multiplier, fp8_backend, grad_scale)


def fixed_residual(x: torch.Tensor, branch: torch.Tensor, tau: float) -> torch.Tensor:
    """``sqrt(1 - tau) x + sqrt(tau) branch``: unit-variance inputs give a unit-variance sum."""
    return math.sqrt(1.0 - tau) * x + math.sqrt(tau) * branch


class UnitSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, fp8_backend: str | None) -> None:
        super().__init__()
        if config.width % config.heads:
            raise ConfigError(f"width {config.width} is not divisible by {config.heads} heads")
        self.heads = config.heads
        self.qkv = unit_linear(config.width, 3 * config.width, config.width**-0.5, fp8_backend)
        self.proj = unit_linear(config.width, config.width, config.width**-0.5, fp8_backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class UnitMLP(nn.Module):
    def __init__(self, config: GPTConfig, fp8_backend: str | None) -> None:
        super().__init__()
        hidden = 4 * config.width
        self.fc = unit_linear(config.width, hidden, config.width**-0.5, fp8_backend)
        self.proj = unit_linear(hidden, config.width, hidden**-0.5, fp8_backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class UnitBlock(nn.Module):
    """Res-Post-LN block: ``x <- mix(x, ln_1(attn(x)))``, then ``x <- mix(x, ln_2(mlp(x)))``."""

    def __init__(self, config: GPTConfig, tau: float, fp8_backend: str | None) -> None:
        super().__init__()
        self.tau = tau
        self.attn = UnitSelfAttention(config, fp8_backend)
        self.ln_1 = nn.LayerNorm(config.width, bias=False)
        self.mlp = UnitMLP(config, fp8_backend)
        self.ln_2 = nn.LayerNorm(config.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = fixed_residual(x, self.ln_1(self.attn(x)), self.tau)
        return fixed_residual(x, self.ln_2(self.mlp(x)), self.tau)


class UnitGPT(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab), unit-scaled (see the module docstring)."""

    def __init__(
        self,
        config: GPTConfig | None = None,
        tau: float | None = None,
        fp8_backend: str | None = None,
        fp8_grad_scale: float = 1.0,
    ) -> None:
        super().__init__()
        config = config or GPTConfig()
        if config.dropout:
            raise ConfigError(
                f"the unit-scaled GPT has no dropout, got dropout={config.dropout}",
                "set dropout=0 (μnit Scaling trains without it)",
            )
        self.config = config
        self.tau = check_tau(tau if tau is not None else tau_for_depth(config.layers))
        self.fp8_backend = fp8_backend
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.position_embedding = nn.Embedding(config.context, config.width)
        nn.init.normal_(self.token_embedding.weight)
        nn.init.normal_(self.position_embedding.weight)
        self.blocks = nn.ModuleList(UnitBlock(config, self.tau, fp8_backend) for _ in range(config.layers))
        self.ln_f = nn.LayerNorm(config.width, bias=False)
        self.lm_head = unit_linear(config.width, config.vocab_size, 1.0 / config.width, None)  # higher precision
        if fp8_grad_scale <= 0:
            raise ConfigError(f"fp8 grad_scale must be > 0, got {fp8_grad_scale}")
        for module in self.blocks.modules():
            if isinstance(module, FP8Linear):
                module.grad_scale = fp8_grad_scale

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        if t > self.config.context:
            raise ValueError(f"sequence of {t} tokens is longer than the context {self.config.context}")
        positions = torch.arange(t, device=ids.device)
        # two unit-variance embeddings summed: divide by sqrt(2) so the stream starts at unit variance
        x = (self.token_embedding(ids) + self.position_embedding(positions)) * math.sqrt(0.5)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))
