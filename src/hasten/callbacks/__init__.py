"""Callbacks that observe training: progress display and the like."""

from hasten.callbacks.progress import ProgressBar

__all__ = ["ProgressBar"]
