"""Small real models and real-data batches shared by the FlashOptim tests."""

from __future__ import annotations

import copy
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from tests.harness import cifar_slice, normalize_images, shakespeare_tokens, text_windows


class TinyCharLM(nn.Module):
    """A two-block causal transformer over characters: embeddings, attention, MLPs, LayerNorms."""

    def __init__(self, vocab: int, width: int = 32, context: int = 32, blocks: int = 2) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Parameter(torch.randn(context, width) * 0.02)
        self.blocks = nn.ModuleList(_Block(width) for _ in range(blocks))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tokens(ids) + self.positions[: ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


class _Block(nn.Module):
    def __init__(self, width: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.norm2(x))


def char_batches(
    data_dir, batch_size: int = 16, context: int = 32, n_chars: int = 40_000
) -> tuple[Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]], int]:
    """A function yielding the same real Tiny Shakespeare batches every call, and the vocabulary size."""
    tokens, vocab = shakespeare_tokens(str(data_dir), n_chars)
    x, y = text_windows(tokens, context)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            yield x[idx], y[idx]

    return batches, vocab


def image_batches(data_dir, batch_size: int = 32, n: int = 256):
    """Real CIFAR-10 images, normalized, in fixed shuffled batches (the slice is sorted by class)."""
    images, labels = cifar_slice(str(data_dir), n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    images, labels = normalize_images(images)[order], labels[order]

    def batches():
        for start in range(0, n - batch_size + 1, batch_size):
            yield images[start : start + batch_size], labels[start : start + batch_size]

    return batches


def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    logits = model(batch[0])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch[1].reshape(-1))


def seeded_char_lm(vocab: int, seed: int = 0) -> TinyCharLM:
    torch.manual_seed(seed)
    return TinyCharLM(vocab)


def twin(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)
