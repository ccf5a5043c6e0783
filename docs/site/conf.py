"""Sphinx configuration of the course website: ``make site`` builds it into build/site/.

The site is the README (the front page, index.html) and one page per notebook, in course
order, showing the outputs stored in the notebooks: nothing is executed (myst-nb with
execution off), so the site shows exactly what the repository holds, in seconds, on a
machine with nothing but Python. Each build first copies the course's notebooks into
docs/site/notebooks/ (generated, ignored by git), so the links between notebooks and
from the README (``notebooks/NN-slug.ipynb``) work unchanged.

Each notebook page opens with a "Run this notebook" link to Binder. Binder needs the
repository's public address: set ``POETRYLAB_REPOSITORY`` (``OWNER/NAME`` on GitHub,
as for the README's Binder link) when building the site for a fork.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes  # type: ignore[import-untyped]  # docutils ships no types
from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parent.parent.parent
REPOSITORY = os.environ.get("POETRYLAB_REPOSITORY", "OWNER/poetrylab")
BINDER = f"https://mybinder.org/v2/gh/{REPOSITORY}/HEAD?urlpath=lab/tree/"

project = "poetrylab"
author = "the poetrylab maintainers"
copyright = "the poetrylab maintainers"
extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# Stored outputs only: a notebook is shown as committed, never re-executed.
nb_execution_mode = "off"
# A figure shows as its PNG (drawn at 2x; the page shows it at its display size), even
# where an SVG copy or a live widget's view is stored beside it.
nb_mime_priority_overrides = [
    ("html", "image/png", 5),
    ("html", "image/svg+xml", 6),
    ("html", "application/vnd.jupyter.widget-view+json", None),
]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["poetrylab.css"]  # figures narrower than their display size keep their shape
html_title = "poetrylab: Twisted, live"
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = True  # the theme's download button offers the notebook itself
html_theme_options = {
    "repository_url": f"https://github.com/{REPOSITORY}",
    "repository_branch": "HEAD",
    "path_to_docs": "",
    "launch_buttons": {"binderhub_url": "https://mybinder.org", "notebook_interface": "jupyterlab"},
    "show_toc_level": 2,
    "home_page_in_toc": True,
}


def copy_notebooks(app: Sphinx, config: Any) -> None:
    """Bring the course's notebooks into the site's sources; drop any no longer there."""
    source, copies = ROOT / "notebooks", Path(app.srcdir) / "notebooks"
    copies.mkdir(exist_ok=True)
    wanted = {path.name: path for path in source.glob("[0-9][0-9]-*.ipynb")}
    for stale in set(p.name for p in copies.glob("*.ipynb")) - set(wanted):
        (copies / stale).unlink()
    for name, path in wanted.items():
        if not (copies / name).exists() or not filecmp.cmp(path, copies / name, shallow=False):
            shutil.copy2(path, copies / name)


def add_binder_link(app: Sphinx, doctree: nodes.document) -> None:
    """Open every notebook page with a visible "Run this notebook" link to Binder."""
    docname = app.env.docname
    if Path(app.env.doc2path(docname)).suffix != ".ipynb":
        return
    link = nodes.reference(
        "", "▶ Run this notebook on Binder", refuri=f"{BINDER}{docname}.ipynb"
    )
    paragraph = nodes.paragraph("", "", link, classes=["run-on-binder"])
    sections = list(doctree.findall(nodes.section))
    if sections:  # under the notebook's title
        title = sections[0].next_node(nodes.title)
        title.parent.insert(title.parent.index(title) + 1, paragraph)
    else:
        doctree.insert(0, paragraph)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", copy_notebooks)
    app.connect("doctree-read", add_binder_link)
    return {"parallel_read_safe": True}
