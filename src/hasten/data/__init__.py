"""Data: official file formats, located and verified, and fast in-memory batching.

Where files are looked for, and in which order, is in ``hasten.data.files``; docs/data.md
says the same for users.
"""

from hasten.data.augment import ImageAugment, Normalize, normalize, random_crop, random_flip
from hasten.data.cifar import load_cifar10, read_python_batch
from hasten.data.files import DataFile, cache_root, fetch, search_roots
from hasten.data.images import ImageSet, decode_image_folder, index_image_folder
from hasten.data.memory import TensorBatches, epoch_order
from hasten.data.mnist import load_mnist, read_idx
from hasten.data.streaming import ImageFileDataset, LoaderBatches
from hasten.data.text import CharCorpus, CharVocab, RandomWindows, load_text, load_tiny_shakespeare, windows

__all__ = [
    "CharCorpus",
    "CharVocab",
    "DataFile",
    "ImageAugment",
    "ImageFileDataset",
    "ImageSet",
    "LoaderBatches",
    "Normalize",
    "RandomWindows",
    "TensorBatches",
    "cache_root",
    "decode_image_folder",
    "epoch_order",
    "fetch",
    "index_image_folder",
    "load_cifar10",
    "load_mnist",
    "load_text",
    "load_tiny_shakespeare",
    "normalize",
    "random_crop",
    "random_flip",
    "read_idx",
    "read_python_batch",
    "search_roots",
    "windows",
]
