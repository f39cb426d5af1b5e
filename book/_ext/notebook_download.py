"""Offer each executed chapter as a Jupyter notebook from the page's download menu.

myst-nb writes every executed chapter to ``_build/jupyter_execute/<page>.ipynb``.
This extension copies it next to the page's source under ``_sources/`` and adds an
``.ipynb`` entry to sphinx-book-theme's download menu, so a reader can open the
chapter, outputs included, in Jupyter.

myst-nb 1.x merges a cell's stream outputs for display (``nb_merge_streams``) by
appending to the first stream output *in place*, so the notebook it then writes
holds the merged text followed by the later chunks a second time (and loses a
trailing blank line). The merge is made to work on a copy: the page shows merged
streams and the notebook keeps the outputs exactly as the kernel sent them.

myst-nb 1.4 writes a chapter it takes from the execution cache to ``jupyter_execute``
*without* its outputs (it writes the notebook it read, not the one it merged with the
cache). ``bookbuild`` executes chapters into the cache before Sphinx runs, so every
chapter is taken from it; after each page is read, its executed notebook is written
again from the cache, outputs included.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from myst_nb.core import render as _render


def _merge_on_a_copy() -> None:
    merge = getattr(_render.coalesce_streams, "__wrapped__", _render.coalesce_streams)

    def coalesce_copies(outputs):
        return merge(copy.deepcopy(outputs))

    coalesce_copies.__wrapped__ = merge
    _render.coalesce_streams = coalesce_copies


def _write_from_cache(app, doctree):
    if app.config.nb_execution_mode != "cache" or not app.config.nb_execution_cache_path:
        return
    source = Path(app.env.doc2path(app.env.docname))
    if source.suffix != ".md":
        return
    import nbformat
    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook

    text = source.read_text(encoding="utf-8")
    if "code-cell" not in text:
        return
    nb = read_myst_markdown_notebook(text, path=source)
    if (nb.metadata.get("mystnb") or {}).get("execution_mode", "cache") != "cache":
        return  # the page set its own mode: myst-nb did not look in the cache
    cache = get_cache(app.config.nb_execution_cache_path)
    try:
        _, merged = cache.merge_match_into_notebook(nb)
    except KeyError:  # not cached: myst-nb executed it (or failed to) and wrote it itself
        return
    target = (
        Path(app.outdir).parent / "jupyter_execute" / Path(app.env.docname).with_suffix(".ipynb")
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(nbformat.writes(merged), encoding="utf-8")


def _add_notebook(app, pagename, templatename, context, doctree):
    if doctree is None or app.builder.format != "html":
        return
    source = Path(app.env.doc2path(pagename))
    executed = Path(app.outdir).parent / "jupyter_execute" / Path(pagename).with_suffix(".ipynb")
    if source.suffix != ".md" or not executed.exists():
        return
    target = Path(app.outdir) / "_sources" / Path(pagename).with_suffix(".ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    for button in context.get("header_buttons", []):
        if button.get("label") == "download-buttons":
            button["buttons"].insert(
                0,
                {
                    "type": "link",
                    "url": f"{context['pathto']('_sources', 1)}/{pagename}.ipynb",
                    "text": ".ipynb",
                    "icon": "fas fa-code",
                    "tooltip": "Download the executed notebook",
                    "label": "download-notebook-button",
                },
            )


def setup(app):
    _merge_on_a_copy()
    app.connect("doctree-read", _write_from_cache)
    # After sphinx-book-theme has assembled its header buttons (priority 501).
    app.connect("html-page-context", _add_notebook, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
