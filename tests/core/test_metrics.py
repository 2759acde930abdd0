import math

import torch
import torch.nn.functional as F

from hasten.core.metrics import Accuracy, CrossEntropy


def test_accuracy_accumulates_exactly_over_batches():
    metric = Accuracy()
    metric.update(torch.tensor([[2.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    metric.update(torch.tensor([[0.0, 3.0]]), torch.tensor([1]))
    assert metric.compute() == 2 / 3
    metric.reset()
    assert math.isnan(metric.compute())


def test_cross_entropy_is_the_mean_over_all_tokens():
    torch.manual_seed(0)
    logits, targets = torch.randn(3, 5, 7), torch.randint(0, 7, (3, 5))
    metric = CrossEntropy()
    metric.update(logits[:1], targets[:1])
    metric.update(logits[1:], targets[1:])
    expected = F.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1)).item()
    assert abs(metric.compute() - expected) < 1e-6
    assert metric.higher_is_better is False
