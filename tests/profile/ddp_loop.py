"""A data-parallel loop whose bottleneck is communication, run under ``torchrun`` by the validation suite.

Many parameters and almost no compute per step: wide linear layers fed a batch of one sample
per rank, so each step's arithmetic is tiny next to all-reducing every gradient. The fix the
report recommends (a larger per-rank batch, or gradient accumulation) is the same loop with
``--accumulate K``: K micro-batches under ``no_sync`` and one all-reduce per step.

    torchrun --nproc_per_node 2 -m tests.profile.ddp_loop OUT.json [--accumulate K]
"""

from __future__ import annotations

import argparse
import contextlib
import json

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hasten.profile import Profiler

WIDTH, LAYERS = 1024, 6  # about 6.3 M parameters: 25 MB of gradients to all-reduce per step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--accumulate", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS)))
    ddp = DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(dist.get_rank())
    batches = [
        (torch.randn(args.accumulate, WIDTH, generator=g), torch.randn(args.accumulate, WIDTH, generator=g))
    ] * 24
    prof = Profiler("cpu", skip=2, steps=6, record=3, min_time=0.3) if dist.get_rank() == 0 else None
    for x, y in prof.wrap(batches) if prof else batches:
        with prof.step() if prof else contextlib.nullcontext():
            opt.zero_grad(set_to_none=True)
            for i in range(args.accumulate):
                last = i == args.accumulate - 1
                with contextlib.nullcontext() if last else ddp.no_sync():
                    F.mse_loss(ddp(x[i : i + 1]), y[i : i + 1]).backward()
            opt.step()
    if prof is not None:
        report = prof.report()
        with open(args.out, "w") as f:
            json.dump(report.to_dict(), f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
