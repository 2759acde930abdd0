"""Character-level text: Tiny Shakespeare's vocabulary and splits, random training windows that
are reproducible from (seed, epoch, batch index), and whole-split evaluation windows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hasten.data.text import CharVocab, RandomWindows, char_corpus, load_text, load_tiny_shakespeare, windows
from hasten.errors import DataError


@pytest.fixture(scope="module")
def corpus(data_dir: Path):  # type: ignore[no-untyped-def]
    return load_tiny_shakespeare(data_dir)


def test_tiny_shakespeare_vocabulary_and_split_sizes(corpus) -> None:  # type: ignore[no-untyped-def]
    assert len(corpus.vocab) == 65
    assert corpus.vocab.symbols[:3] == "\n !" and corpus.vocab.symbols[-1] == "z"
    assert len(corpus.train) == 1_003_854 and len(corpus.val) == 111_540
    assert corpus.train.dtype == torch.int64
    assert corpus.vocab.decode(corpus.train[:14]) == "First Citizen:"
    assert corpus.source.startswith("tinyshakespeare:")


def test_encode_decode_round_trip_and_unknown_characters() -> None:
    vocab = CharVocab.from_text("hello world")
    assert vocab.symbols == " dehlorw"
    ids = vocab.encode("low")
    assert ids.tolist() == [4, 5, 7] and vocab.decode(ids) == "low"
    with pytest.raises(DataError, match="character 'a' is not in the vocabulary"):
        vocab.encode("lazy")
    accented = CharVocab.from_text("café ü")
    assert accented.decode(accented.encode("üé")) == "üé"


def test_split_is_at_the_fraction() -> None:
    split = char_corpus("abcdefghij" * 10, 0.9)
    assert len(split.train) == 90 and len(split.val) == 10
    assert split.vocab.decode(split.val) == "abcdefghij"


def test_binary_and_empty_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00binary")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="is not UTF-8 text"):
        load_text(tmp_path / "binary.txt")
    with pytest.raises(DataError, match="is empty"):
        load_text(tmp_path / "empty.txt")


def test_random_windows_targets_are_the_next_characters(corpus) -> None:  # type: ignore[no-untyped-def]
    source = RandomWindows(corpus.train, 64, 12, seed=0)
    assert len(source) == 1_003_854 // (64 * 12) and source.tokens_per_batch == 768
    x, y = next(iter(source))
    assert x.shape == y.shape == (12, 64)
    assert torch.equal(x[:, 1:], y[:, :-1])
    offsets = source.offsets(0, 0)
    for row, offset in enumerate(offsets.tolist()):
        assert torch.equal(x[row], corpus.train[offset : offset + 64])
        assert torch.equal(y[row], corpus.train[offset + 1 : offset + 65])


def test_random_windows_are_reproducible_from_seed_epoch_and_index(corpus) -> None:  # type: ignore[no-untyped-def]
    source = RandomWindows(corpus.train, 64, 12, seed=5, steps_per_epoch=6)
    epoch1 = list(source.batches(1))
    assert len(epoch1) == 6
    resumed = list(RandomWindows(corpus.train, 64, 12, seed=5, steps_per_epoch=6).batches(1, start=4))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(resumed, epoch1[4:], strict=True))
    epoch0 = list(source.batches(0))
    other_seed = list(RandomWindows(corpus.train, 64, 12, seed=6, steps_per_epoch=6).batches(1))
    assert not torch.equal(epoch0[0][0], epoch1[0][0])
    assert not torch.equal(other_seed[0][0], epoch1[0][0])
    starts = torch.cat([source.offsets(e, i) for e in range(20) for i in range(6)])
    assert starts.min() >= 0 and starts.max() <= len(corpus.train) - 65


def test_validation_windows_cover_the_split_without_overlap(corpus) -> None:  # type: ignore[no-untyped-def]
    x, y = windows(corpus.val, 64)
    assert x.shape == (111_539 // 64, 64)
    assert torch.equal(x.reshape(-1), corpus.val[: x.numel()])
    assert torch.equal(y.reshape(-1), corpus.val[1 : x.numel() + 1])
    with pytest.raises(DataError, match="too few"):
        windows(corpus.val[:10], 64)
