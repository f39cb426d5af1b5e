"""Serve MathJax 3 from the built book itself, so that its mathematics renders offline.

The MathJax release comes from the ``django-static-mathjax`` wheel (static files
only; Django is not needed). Its ``es5`` bundle is copied under
``_static/mathjax/`` and Sphinx's ``mathjax_path`` points at it, in place of a CDN.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

BUNDLE = "tex-chtml.js"


def _es5() -> Path:
    return Path(str(files("mathjax"))) / "static" / "mathjax" / "es5"


def _configure(app, config):
    config.mathjax_path = f"mathjax/{BUNDLE}"


def _copy(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    source, target = _es5(), Path(app.outdir) / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    # The CommonHTML bundle, and what it loads on demand: TeX extensions, fonts, the
    # menu, and the accessibility tools the menu offers (with their speech rules).
    for name in (BUNDLE, "output/chtml.js"):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target / name)
    for name in ("input", "output/chtml", "ui", "a11y", "sre", "adaptors"):
        shutil.copytree(source / name, target / name, dirs_exist_ok=True)


def setup(app):
    if not (_es5() / BUNDLE).exists():
        raise RuntimeError("MathJax not found: install the lock (django-static-mathjax)")
    app.connect("config-inited", _configure)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
