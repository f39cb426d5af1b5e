"""Two fixes to what the theme stack emits, so that pages load with a clean console.

- Sphinx < 8.2 can list a script twice when an extension registers it after the
  builder started (sphinx-doc/sphinx#13402; sphinx-thebe's inline configuration),
  and the second copy fails to redeclare its ``const``. Duplicates are dropped.
- pydata-sphinx-theme logs an invalid theme mode on a first visit unless
  ``html_context["default_mode"]`` is set; it is set to ``auto``.
"""

from __future__ import annotations


def _script_key(script):
    return (
        getattr(script, "filename", None) or "",
        tuple(sorted(getattr(script, "attributes", {}).items())),
    )


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts, seen = context.get("script_files"), set()
    if not scripts:
        return
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    context["script_files"] = unique


def _default_mode(app, config):
    config.html_context = {**(config.html_context or {}), "default_mode": "auto"}


def setup(app):
    app.connect("config-inited", _default_mode)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
