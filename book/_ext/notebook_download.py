"""Offer each executed chapter as a Jupyter notebook from the page's download menu.

myst-nb writes every executed chapter to ``_build/jupyter_execute/<page>.ipynb``.
This extension copies it next to the page's source under ``_sources/`` and adds an
``.ipynb`` entry to sphinx-book-theme's download menu, so a reader can open the
chapter, outputs included, in Jupyter.
"""

from __future__ import annotations

import shutil
from pathlib import Path


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
            button["buttons"].insert(0, {
                "type": "link",
                "url": f"{context['pathto']('_sources', 1)}/{pagename}.ipynb",
                "text": ".ipynb",
                "icon": "fas fa-code",
                "tooltip": "Download the executed notebook",
                "label": "download-notebook-button",
            })


def setup(app):
    # After sphinx-book-theme has assembled its header buttons (priority 501).
    app.connect("html-page-context", _add_notebook, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
