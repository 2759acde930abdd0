"""``python -m hasten``: the same command as ``hasten`` (what ``torchrun -m hasten`` starts)."""

from hasten.cli.main import main

main()
