"""Training loops with a deliberately built bottleneck, and the fix for each (validation suite).

Each ``*_loop`` runs a real training loop (forward, backward, optimizer step) under a
Profiler and returns its report. The bottleneck is built in by construction:

- data: a loader that sleeps per sample, or decodes and augments real JPEGs one by one;
- host: an ensemble of many tiny heads run one by one in Python (hundreds of tiny ops);
- memory: long chains of elementwise operations on big tensors (hard-swish written out by hand);
- compute: large matrix products.

The fixes are the ones the report recommends: data echoing and batch-level augmentation,
fewer and bigger operations (the heads batched into one matmul), a fused kernel, fewer FLOPs.
"""

from __future__ import annotations

import io
import itertools
import tarfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hasten.profile import Profiler, Report

FAST = dict(skip=2, steps=6, record=3, min_time=0.3)  # small windows: tests stay fast


def run_loop(
    model: nn.Module,
    batches: Iterable,
    loss_fn: Callable,
    *,
    device: str = "cpu",
    peaks: Any = None,
    autocast: bool = False,
    **windows: Any,
) -> Report:
    """The plain PyTorch loop of the issue's example, profiled (``autocast``: bf16).

    One CPU thread: on a small shared machine, intra-op threads fighting other processes
    would measure the machine's load, not the loop's bottleneck (the suite's fixture restores
    the thread count after each test)."""
    torch.set_num_threads(1)
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    prof = Profiler(device, peaks=peaks, **{**FAST, **windows})
    for x, y in prof.wrap(batches):
        x, y = x.to(device), y.to(device)
        with prof.step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            loss.item()
        if prof.done:
            break
    return prof.report()


# ------------------------------------------------------------------- data
class SleepySamples(torch.utils.data.Dataset):
    """Each sample costs ``seconds`` of waiting, like a slow disk or remote store."""

    def __init__(self, seconds: float = 0.004, features: int = 1024) -> None:
        self.seconds, self.features = seconds, features

    def __len__(self) -> int:
        return 10_000

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        time.sleep(self.seconds)
        return torch.full((self.features,), float(i % 7)), i % 4


def data_model() -> nn.Module:
    return nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 4))


def sleepy_loader(batch_size: int = 8) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(SleepySamples(), batch_size=batch_size)


def echo(batches: Iterable, factor: int) -> Iterable:
    """Data echoing (Choi et al. 2019) in its plain-loop form: each batch used ``factor`` times."""
    for batch in batches:
        for _ in range(factor):
            yield batch


def jpeg_samples(data_dir: str | Path, n: int = 256) -> list[tuple[bytes, int]]:
    """Raw JPEG bytes and labels of ``n`` real CIFAR-10 test images."""
    with tarfile.open(Path(data_dir) / "cifar10-jpeg" / "test.tar") as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name)
        classes = sorted({m.name.split("/")[1] for m in members})
        picked = members[:: max(1, len(members) // n)][:n]
        return [(archive.extractfile(m).read(), classes.index(m.name.split("/")[1])) for m in picked]  # type: ignore[union-attr]


class DecodePerSample(torch.utils.data.Dataset):
    """The slow pipeline: decode each JPEG and augment it (pad-crop, flip, jitter) on the CPU,
    one image at a time, every time it is read."""

    def __init__(self, samples: list[tuple[bytes, int]]) -> None:
        self.samples = samples
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image, ImageEnhance, ImageOps

        data, label = self.samples[i]
        image = Image.open(io.BytesIO(data)).convert("RGB").resize((64, 64))
        image = ImageOps.expand(image, border=8, fill=0)
        dx, dy = self.rng.integers(0, 17, size=2)
        image = image.crop((dx, dy, dx + 64, dy + 64))
        if self.rng.random() < 0.5:
            image = ImageOps.mirror(image)
        image = ImageEnhance.Brightness(image).enhance(0.8 + 0.4 * self.rng.random())
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return x, label


def decoded_tensor(samples: list[tuple[bytes, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every image once, up front (uint8), for batch-level augmentation."""
    from PIL import Image

    images = [np.asarray(Image.open(io.BytesIO(d)).convert("RGB").resize((64, 64))) for d, _ in samples]
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor([label for _, label in samples])


def batch_augmented(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0) -> Iterable:
    """The fix: the same augmentations applied to whole batches of pre-decoded tensors."""
    g = torch.Generator().manual_seed(seed)
    for start in itertools.cycle(range(0, len(x) - batch_size + 1, batch_size)):
        xb = F.pad(x[start : start + batch_size].float() / 255.0, (8, 8, 8, 8))
        dx, dy = (int(v) for v in torch.randint(0, 17, (2,), generator=g))
        xb = xb[:, :, dy : dy + 64, dx : dx + 64]
        flip = torch.rand(len(xb), generator=g) < 0.5
        xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
        xb = xb * (0.8 + 0.4 * torch.rand(len(xb), 1, 1, 1, generator=g))
        yield xb, y[start : start + batch_size]


def image_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 10))


# ------------------------------------------------------------------- host
class LoopedHeads(nn.Module):
    """``heads`` tiny two-layer MLPs run one after another in Python: hundreds of tiny ops."""

    def __init__(self, heads: int = 48, width: int = 16) -> None:
        super().__init__()
        self.first = nn.ModuleList(nn.Linear(width, width) for _ in range(heads))
        self.second = nn.ModuleList(nn.Linear(width, width) for _ in range(heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: heads x batch x width
        return torch.stack([b(torch.tanh(a(x[i]))) for i, (a, b) in enumerate(zip(self.first, self.second))])


class BatchedHeads(nn.Module):
    """The same heads and the same math in four batched operations (fewer, bigger ops)."""

    def __init__(self, looped: LoopedHeads) -> None:
        super().__init__()
        stack = lambda layers, attr: torch.stack([getattr(l, attr) for l in layers]).detach().clone()  # noqa: E731
        self.w1 = nn.Parameter(stack(looped.first, "weight").transpose(1, 2).contiguous())
        self.b1 = nn.Parameter(stack(looped.first, "bias").unsqueeze(1))
        self.w2 = nn.Parameter(stack(looped.second, "weight").transpose(1, 2).contiguous())
        self.b2 = nn.Parameter(stack(looped.second, "bias").unsqueeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.b2, torch.tanh(torch.baddbmm(self.b1, x, self.w1)), self.w2)


def _pairs(shape: tuple[int, ...], n: int, device: str) -> list:
    """``n`` distinct (input, target) pairs on ``device``, repeated to make a long epoch."""
    g = torch.Generator().manual_seed(0)
    return [
        (torch.randn(shape, generator=g).to(device), torch.randn(shape, generator=g).to(device)) for _ in range(n)
    ] * 50


def head_batches(heads: int = 48, batch: int = 64, width: int = 16, n: int = 4, device: str = "cpu") -> list:
    return _pairs((heads, batch, width), n, device)


# ----------------------------------------------------------------- memory
class ElementwiseChain(nn.Module):
    """Blocks of scale-shift then hard-swish, written as a chain of elementwise ops (six passes
    over the tensor forward, more backward), or, with ``fused``, as two fused built-ins doing
    the same arithmetic (``torch.addcmul``, ``F.hardswish``). No transcendental functions, so
    the work per byte is tiny and bandwidth sets the speed."""

    def __init__(self, width: int = 4096, blocks: int = 3, fused: bool = False) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(blocks, width))
        self.shift = nn.Parameter(torch.zeros(blocks, width))
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for scale, shift in zip(self.scale, self.shift):
            if self.fused:
                x = F.hardswish(torch.addcmul(shift, x, scale))
            else:
                x = x * scale + shift
                x = x * (x + 3.0).clamp(0.0, 6.0) / 6.0
        return x


def wide_batches(rows: int = 512, width: int = 4096, n: int = 4, device: str = "cpu") -> list:
    return _pairs((rows, width), n, device)


def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (out - target).square().mean()


# ---------------------------------------------------------------- compute
def matmul_model(width: int = 512, rank: int | None = None) -> nn.Module:
    """Three wide linear layers; ``rank`` factorizes each into two thin ones (fewer FLOPs)."""

    def layer() -> nn.Module:
        if rank is None:
            return nn.Linear(width, width)
        return nn.Sequential(nn.Linear(width, rank, bias=False), nn.Linear(rank, width))

    return nn.Sequential(layer(), nn.ReLU(), layer(), nn.ReLU(), layer())


def square_batches(rows: int = 512, width: int = 512, n: int = 4, device: str = "cpu") -> list:
    return _pairs((rows, width), n, device)
