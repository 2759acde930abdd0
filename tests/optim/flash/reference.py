"""Plain fp32 reference optimizers for the rules torch does not ship (Lion, SGD with decoupled decay)."""

from __future__ import annotations

import torch


class ReferenceLion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023) written directly from its update rule, fp32 state."""

    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(torch.sign(beta1 * m + (1 - beta1) * p.grad), alpha=-group["lr"])
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)


class ReferenceSGDW(torch.optim.SGD):
    """torch SGD with weight decay applied to the weights instead of the gradient."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, **kwargs) -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=0.0, **kwargs)
        self.decoupled_decay = weight_decay

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.mul_(1 - group["lr"] * self.decoupled_decay)
        return super().step()
