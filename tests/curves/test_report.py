"""Reports render: valid PNGs, escaped user text, a self-contained page that a real browser shows."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from hasten.curves.compare import compare_runs
from hasten.curves.report import write_report
from tests.curves.synthetic import run

EVIL = "<script>alert(1)</script>"
BUDGETS = {"1ep": (10, 0.60), "2ep": (20, 0.75), "4ep": (40, 0.85)}


def _runs():
    runs = []
    for recipe, speed, lift in (("baseline", 1.0, 0.0), ("fast", 1.5, 0.0), (EVIL, 1.0, -0.1)):
        for seed in range(3):
            noise = 0.01 * (seed - 1)
            for duration, (steps, quality) in BUDGETS.items():
                t = steps / 10 / speed * (1 + noise)
                runs.append(
                    run(
                        recipe,
                        seed,
                        [(t / 2, steps // 2, quality - 0.2), (t, steps, quality + lift + noise)],
                        duration=duration,
                    )
                )
    return runs


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    comparison = compare_runs(_runs(), target=0.7)
    out = tmp_path_factory.mktemp("report")
    return comparison, write_report(comparison, out, notes=["user note with <b>tags</b> & ampersands"])


def test_comparison_finds_the_speedup(written):
    comparison, _ = written
    fast = comparison.speedups["fast"]
    assert comparison.readout == "budgets"
    assert fast.status == "speedup" and fast.speedup == pytest.approx(1.5, rel=0.02)
    assert fast.time_per_step_factor == pytest.approx(1.5, rel=0.02) and fast.steps_factor == pytest.approx(1.0)
    assert comparison.speedups[EVIL].status == "slower"


def test_figures_are_valid_pngs(written):
    _, files = written
    assert set(files.images) == {"tradeoff", "speedup", "factors"}
    for path in files.images.values():
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 100
            pixels = np.asarray(image.convert("RGB"))
            assert pixels.std() > 10  # something was drawn


def test_markdown_summary(written):
    comparison, files = written
    text = files.markdown.read_text()
    assert "| fast |" in text and "speedup" in text
    assert "![" in text and "tradeoff.png" in text
    assert EVIL not in text and "&lt;script&gt;" in text


def test_html_is_self_contained_and_escaped(written):
    _, files = written
    page = files.html.read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;tags&lt;/b&gt; &amp; ampersands" in page
    assert page.count('src="data:image/png;base64,') == 3
    assert not re.search(r'(src|href)="(?!data:)', page)  # no file or network references


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        self.text.append(data)


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def test_html_renders_in_a_headless_browser(written, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no headless browser found: install Debian's 'chromium' (apt-get install -y chromium)")
    _, files = written
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = files.html.resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    parsed = _Collector()
    parsed.feed(dom)
    text = "".join(parsed.text)
    assert "script" not in parsed.tags  # the recipe name stayed text
    assert EVIL in text and "hasten report: synthetic" in text
    assert len(parsed.images) == 3 and all(src.startswith("data:image/png;base64,") for src in parsed.images)

    shot = tmp_path / "page.png"
    subprocess.run(
        [*flags, "--window-size=1200,2400", f"--screenshot={shot}", url], capture_output=True, timeout=120, cwd=tmp_path
    )
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    # matplotlib's first line colour (#1f77b4) appears only if the embedded figures were decoded and drawn
    blue = (np.abs(pixels - np.array([31, 119, 180])).sum(axis=-1) < 40).sum()
    assert blue > 200


LINKS = [
    "[click](javascript:alert(1))",
    "![x](javascript:alert(2))",
    "<javascript:alert(3)>",
    "[ref]\n\n[ref]: javascript:alert(4)",
    "a | b \\[c](javascript:alert(5))",
]


@pytest.mark.parametrize("text", LINKS)
def test_markdown_turns_no_user_text_into_a_link_or_image(text):
    from markdown_it import MarkdownIt

    from hasten.curves.report import render_markdown

    parser = MarkdownIt("commonmark").enable("table")
    parser.validateLink = lambda url: True  # a viewer that does not filter schemes itself
    rendered = parser.render(
        render_markdown([("h1", text), ("p", text), ("ul", [text]), ("table", ("recipe",), [(text,)])])
    )
    assert "<a " not in rendered and "<img" not in rendered and "javascript:alert" in rendered
    assert "href" not in rendered and "src=" not in rendered
