"""The API pages (book/api.md) that sphinx-autoapi writes for rlbook, adjusted.

- A module's page documents exactly the names of its ``__all__``. autoapi reads only
  the first assignment to ``__all__``; rlbook's modules extend it with ``__all__ +=``
  next to the code they export, so the whole list is read here from each module's
  source (``ast``, no import) and decides ``autoapi-skip-member`` for the module's
  own members.
- The Google-style sections of the docstrings (``Args:``, ``Returns:``,
  ``Attributes:``) become field lists, by napoleon's ``GoogleDocstring``, for
  modules, classes and functions. A field's own docstring (a dataclass or NamedTuple
  attribute) is prose and is left alone: napoleon would read ``words (aside): more``
  in it as ``type: description``. ``Attributes:`` become ``:ivar:`` fields, so that no
  field is described twice (autoapi documents each one).
- A book without the package (the tests' throw-away books, which copy _config.yml
  and book/_ext) gets no API pages, where autoapi would stop the build.
"""

from __future__ import annotations

import ast
from pathlib import Path

import autoapi.extension
from sphinx.ext.napoleon import Config, GoogleDocstring

NAPOLEON = Config(napoleon_use_ivar=True, napoleon_numpy_docstring=False)
PROSE = ("attribute", "data", "property")
MEMBERS = ("class", "exception", "function", "data")


def module_all(path: Path) -> list[str] | None:
    """The names a module's top-level ``__all__ = [...]`` and ``__all__ += [...]`` list."""
    names = None
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            names = list(ast.literal_eval(node.value))
        elif (
            isinstance(node, ast.AugAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "__all__"
            and names is not None
        ):
            names += list(ast.literal_eval(node.value))
    return names


def package_all(app) -> dict[str, set[str]]:
    """``{dotted module name: its __all__}`` for every module under ``autoapi_dirs``."""
    found = {}
    for d in app.config.autoapi_dirs:
        root = (Path(app.srcdir) / d).resolve()
        for path in root.rglob("*.py"):
            parts = [root.name, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            names = module_all(path)
            if names is not None:
                found[".".join(parts)] = set(names)
    return found


def skip_member(app, what, name, obj, skip, options):
    module, _, member = name.rpartition(".")
    names = app.env.rlbook_all.get(module) if what in MEMBERS else None
    return None if names is None else member not in names


def process_docstring(app, what, name, obj, options, lines):
    if what not in PROSE:
        lines[:] = GoogleDocstring(lines, NAPOLEON, app, what, name, obj, options).lines()


def read_all(app):
    app.env.rlbook_all = package_all(app)


def without_package(app, config):
    if all((Path(app.srcdir) / d).is_dir() for d in config.autoapi_dirs):
        return
    for listener in list(app.events.listeners["builder-inited"]):
        if listener.handler is autoapi.extension.run_autoapi:
            app.disconnect(listener.id)
    config.autoapi_generate_api_docs = False


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")  # defines the event that autoapi emits
    app.setup_extension("autoapi.extension")
    app.connect("config-inited", without_package)
    # before autoapi's own builder-inited handler (priority 500), which renders the pages
    app.connect("builder-inited", read_all, priority=400)
    app.connect("autoapi-skip-member", skip_member)
    app.connect("autodoc-process-docstring", process_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
