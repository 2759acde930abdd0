"""Plain text at character level, and Tiny Shakespeare.

The vocabulary is the sorted set of characters in the whole text (nanoGPT's
``shakespeare_char``): 65 symbols for Tiny Shakespeare. The first 90% is the training
split, the rest validation. Training batches are windows at random offsets, as in nanoGPT,
but each batch's offsets come from a generator seeded by (seed, epoch, batch index), so a
resumed run sees exactly the batches it would have seen. Validation uses every
non-overlapping window, so its loss is one deterministic number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from hasten.data import files
from hasten.data.files import DataFile
from hasten.errors import DataError

TINY_SHAKESPEARE = DataFile(
    "tinyshakespeare/input.txt",
    size=1_115_394,
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    urls=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
    bundled="tinyshakespeare.txt.gz",
)


@dataclass(frozen=True)
class CharVocab:
    """Characters <-> ids; ids follow the sorted order of ``symbols``."""

    symbols: str

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> torch.Tensor:
        """Text -> int64 ids. Unknown characters raise a DataError naming the first one."""
        if text.isascii() and self.symbols.isascii():
            table = np.full(128, -1, dtype=np.int64)
            table[np.frombuffer(self.symbols.encode(), dtype=np.uint8)] = np.arange(len(self.symbols))
            ids = table[np.frombuffer(text.encode(), dtype=np.uint8)]
            if len(ids) and ids.min() < 0:
                unknown = text[int(np.argmin(ids))]
                raise DataError(
                    f"character {unknown!r} is not in the vocabulary", "build the vocabulary from this text"
                )
            return torch.from_numpy(ids)
        index = {c: i for i, c in enumerate(self.symbols)}
        try:
            return torch.tensor([index[c] for c in text], dtype=torch.int64)
        except KeyError as exc:
            raise DataError(
                f"character {exc.args[0]!r} is not in the vocabulary", "build the vocabulary from this text"
            ) from exc

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return "".join(self.symbols[int(i)] for i in ids)


@dataclass(frozen=True)
class CharCorpus:
    """A text split for language modelling: ``train`` and ``val`` as int64 ids, and the vocabulary."""

    train: torch.Tensor
    val: torch.Tensor
    vocab: CharVocab
    source: str = ""


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file; a binary or empty file is a DataError, not a 3-symbol vocabulary."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})", "pass a plain text file"
        ) from exc
    if not text:
        raise DataError(f"{path} is empty", "pass a text file with content")
    return text


def char_corpus(text: str, train_fraction: float = 0.9, source: str = "") -> CharCorpus:
    """Split ``text`` at ``train_fraction`` (first part trains) over one shared vocabulary."""
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    cut = int(len(ids) * train_fraction)
    return CharCorpus(ids[:cut], ids[cut:], vocab, source)


def load_text(path: str | os.PathLike, train_fraction: float = 0.9) -> CharCorpus:
    return char_corpus(read_text(path), train_fraction, source=str(path))


def load_tiny_shakespeare(data_dir: str | os.PathLike | None = None) -> CharCorpus:
    """Tiny Shakespeare, 90/10: 1,003,854 training and 111,540 validation characters, 65 symbols."""
    path = files.fetch(TINY_SHAKESPEARE, data_dir, dataset="Tiny Shakespeare")
    return char_corpus(read_text(path), 0.9, source=f"tinyshakespeare:{path}")


def windows(tokens: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every non-overlapping (input, next-token target) window of length ``context``."""
    n = (len(tokens) - 1) // context
    if n < 1:
        raise DataError(f"{len(tokens)} tokens are too few for one window of {context}", "use a shorter context")
    return tokens[: n * context].view(n, context), tokens[1 : n * context + 1].view(n, context)


class RandomWindows:
    """Batch source of ``batch_size`` windows at random offsets (nanoGPT's ``get_batch``).

    An "epoch" is ``steps_per_epoch`` batches, by default as many as hold the split's tokens
    once. Batch ``index`` of ``epoch`` is drawn from its own generator, so it is the same
    whether the run got there directly or by resuming.
    """

    def __init__(
        self,
        tokens: torch.Tensor,
        context: int,
        batch_size: int,
        *,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if len(tokens) <= context:
            raise DataError(f"{len(tokens)} tokens are too few for windows of {context}", "use a shorter context")
        self.tokens = tokens.to(device) if device is not None else tokens
        self.context = context
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = steps_per_epoch or max(1, len(tokens) // (context * batch_size))
        self.tokens_per_batch = context * batch_size
        self._span = torch.arange(context + 1, device=self.tokens.device)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def offsets(self, epoch: int, index: int) -> torch.Tensor:
        key = ((self.seed * 1_000_003 + epoch) * 1_000_033 + index) % (2**63 - 1)
        generator = torch.Generator().manual_seed(key)
        return torch.randint(len(self.tokens) - self.context, (self.batch_size,), generator=generator)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in range(start, len(self)):
            chunk = self.tokens[self.offsets(epoch, index).to(self.tokens.device)[:, None] + self._span]
            yield chunk[:, :-1], chunk[:, 1:]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches(0)
