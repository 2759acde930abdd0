"""Small, readable models for the workloads: a CIFAR ResNet, an MNIST CNN and a character GPT.

Their parts are standard ``torch.nn`` layers and named block classes (``ResidualBlock``,
``Block``, ``MLP``, ``CausalSelfAttention``) so that surgery methods can find them by type.
"""

from hasten.models.gpt import MLP, Block, CausalSelfAttention, CharGPT, GPTConfig, decay_groups
from hasten.models.mnist import MnistCNN
from hasten.models.resnet import CifarResNet, ConvBN, ResidualBlock, Stage

__all__ = [
    "MLP",
    "Block",
    "CausalSelfAttention",
    "CharGPT",
    "CifarResNet",
    "ConvBN",
    "GPTConfig",
    "MnistCNN",
    "ResidualBlock",
    "Stage",
    "decay_groups",
]
