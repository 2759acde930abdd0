"""Write docs/methods-<component>.md from the registered method cards, so the docs are never
written twice. ``python docs/generate_method_docs.py`` writes them; ``--check`` only reports
stale pages (exit 1). The same page prints with ``hasten methods --markdown COMPONENT``."""

from __future__ import annotations

import sys
from pathlib import Path

from hasten.methods.catalogue import docs_pages

DOCS = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, content in docs_pages(DOCS).items():
        if path.exists() and path.read_text() == content:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(content)
    if check and stale:
        print(f"stale: {', '.join(stale)} (run: python docs/generate_method_docs.py)", file=sys.stderr)
        return 1
    print(("wrote " if not check else "up to date: ") + (", ".join(stale) if stale and not check else "all pages"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
