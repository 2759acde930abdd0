"""hasten: make neural-network training faster, and prove it."""

__version__ = "0.1.0"
