"""The course as a website (``make site``): every page there, every figure shown, no broken link.

The site is built here exactly as ``make site`` builds it (Sphinx with myst-nb, stored
outputs only, warnings as errors), into a temporary folder. Then: index.html is the
README and lists the notebooks in course order; each notebook has a page showing as many
figures as the notebook stores, and a link that runs it on Binder; no relative link or
anchor on any page leads nowhere. When Debian's Chromium is installed, every notebook
page is opened in it, each figure must have loaded, and a screenshot of each page is
saved to build/site-screenshots/ for a person to look at.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
FIGURE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page(HTMLParser):
    """What a test needs from one HTML page: links, ids, and the images inside cell outputs."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.output_images: list[str] = []
        self.text: list[str] = []
        self._div_depth = 0
        self._output_depths: list[int] = []
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "div":
            self._div_depth += 1
            if "cell_output" in attributes.get("class", "").split():
                self._output_depths.append(self._div_depth)
        for name in ("href", "src"):
            if name in attributes:
                self.links.append(attributes[name])
        if tag in ("img", "svg") and self._output_depths:
            self.output_images.append(attributes.get("src", "inline svg"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            if self._output_depths and self._output_depths[-1] == self._div_depth:
                self._output_depths.pop()
            self._div_depth -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def stored_figures(notebook: Path) -> int:
    """How many outputs of ``notebook`` are figures (each shown as one image)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return sum(
        any(kind in output.get("data", {}) for kind in FIGURE_TYPES)
        for cell in nb["cells"]
        for output in cell.get("outputs", [])
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        # The command `make site` runs, into another folder.
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-W", "--keep-going",
         str(ROOT / "docs" / "site"), str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, f"the site did not build:\n{build.stderr[-4000:]}"
    return out


def test_the_makefile_builds_the_site_with_the_same_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "-m sphinx -b html -q -E -W --keep-going docs/site build/site" in makefile


def test_index_is_the_readme_and_lists_every_notebook_in_course_order(site: Path) -> None:
    index = Page(site / "index.html")
    assert "Learn asynchronous programming with Twisted" in "".join(index.text)
    listed = [link for link in index.links if link.startswith("notebooks/")]
    order = list(dict.fromkeys(link.split("#")[0] for link in listed))
    assert order == [f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS]
    shown = [src for src in index.links if src.startswith("_images/")]
    in_readme = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (ROOT / "README.md").read_text())
    assert len(shown) == len(in_readme), (shown, in_readme)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_each_notebook_page_shows_every_stored_figure_and_runs_on_binder(
    site: Path, notebook: Path
) -> None:
    page = Page(site / "notebooks" / f"{notebook.stem}.html")
    assert len(page.output_images) == stored_figures(notebook), page.output_images
    binder = [link for link in page.links if link.startswith("https://mybinder.org/v2/gh/")]
    assert any(
        link.endswith(f"?urlpath=lab/tree/notebooks/{notebook.name}") for link in binder
    ), binder
    assert "Run this notebook on Binder" in "".join(page.text)


def test_no_relative_link_or_anchor_is_broken(site: Path) -> None:
    # The theme's _static/ holds Jinja templates with .html names: not pages.
    pages = {p: Page(p) for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts}
    broken = []
    for path, page in pages.items():
        for link in page.links:
            parts = urllib.parse.urlsplit(link)
            if parts.scheme or link.startswith("//") or not (parts.path or parts.fragment):
                continue
            target = (path.parent / urllib.parse.unquote(parts.path)).resolve()
            if parts.path and not target.exists():
                broken.append(f"{path.relative_to(site)}: {link}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else Page(target).ids
                if urllib.parse.unquote(parts.fragment) not in ids:
                    broken.append(f"{path.relative_to(site)}: {link} (no such anchor)")
    assert not broken, "\n".join(broken[:20])


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_every_figure_loads_in_chromium(site: Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = ROOT / "build" / "site-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    not_shown = {}
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", "--disable-component-update", "--disable-sync"]  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            for notebook in [Path("index"), *NOTEBOOKS]:
                html = site / ("index.html" if notebook.name == "index" else
                               f"notebooks/{notebook.stem}.html")  # fmt: skip
                page.goto(html.as_uri(), wait_until="load", timeout=60_000)
                missing = page.evaluate(
                    "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
                    ".map(i => i.getAttribute('src'))"
                )
                # A figure scaled down to the column must keep its proportions.
                squashed = page.evaluate(
                    "() => [...document.images].filter(i => i.naturalWidth > 0 && i.width > 0"
                    " && Math.abs(i.width / i.height / (i.naturalWidth / i.naturalHeight) - 1)"
                    " > 0.02).map(i => `${i.getAttribute('src')} shown ${i.width}x${i.height}`)"
                )
                if missing or squashed:
                    not_shown[notebook.stem] = missing + squashed
                page.screenshot(path=str(shots / f"{notebook.stem}.png"), full_page=False)
        finally:
            browser.close()
    assert not not_shown, f"images that did not load or lost their proportions: {not_shown}"


def test_site_sources_hold_no_stale_copy_of_a_removed_notebook(site: Path) -> None:
    copies = {p.name for p in (ROOT / "docs" / "site" / "notebooks").glob("*.ipynb")}
    assert copies == {nb.name for nb in NOTEBOOKS}
