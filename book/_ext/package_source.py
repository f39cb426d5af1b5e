"""``rlbook-source``: a function of the package shown as highlighted source from its file.

    ```{rlbook-source} rlbook.mdp.return_second_moment
    ```

    ```{rlbook-source} rlbook.agents.reinforce.update_loop
    :start-at: env, env_params
    :docstring:
    ```

The argument is a dotted name: a module of ``rlbook`` under ``code/`` and an object in it
(a function, a class, or ``Class.method``). The block shows the object's lines from its
file, read with ``ast`` at build time (nothing is imported or executed), without the
docstring unless ``:docstring:`` is given (the chapter's prose says what the docstring
would); ``:start-at:`` drops the lines before the first one that contains the text. The
caption names the file and the lines, and the page is rebuilt when the file changes. A
name that does not resolve, or a ``:start-at:`` text that is not there, fails the build.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.directives.code import container_wrapper
from sphinx.util.docutils import SphinxDirective

CODE = Path(__file__).resolve().parents[2] / "code"


def _locate(name: str) -> tuple[Path, list[str]]:
    """The file of the longest module prefix of ``name`` and the object's path in it."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        base = CODE.joinpath(*parts[:cut])
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path, parts[cut:]
    raise ValueError(f"rlbook-source: no module of {name!r} under {CODE}")


def _find(tree: ast.AST, path: list[str], name: str):
    node = tree
    for part in path:
        found = [
            child
            for child in getattr(node, "body", [])
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and child.name == part
        ]
        if not found:
            raise ValueError(f"rlbook-source: {name!r} has no {part!r}")
        node = found[0]
    return node


def source_lines(name: str, *, docstring: bool = False, start_at: str | None = None):
    """(file, first and last line numbers, code) of the object ``name``, as shown."""
    path, obj = _locate(name)
    text = path.read_text()
    node = _find(ast.parse(text), obj, name)
    lines = text.splitlines()
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    numbered = list(enumerate(lines[first - 1 : node.end_lineno], start=first))
    body = node.body
    if (
        not docstring
        and body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        drop = range(body[0].lineno, body[0].end_lineno + 1)
        numbered = [(i, line) for i, line in numbered if i not in drop]
    if start_at is not None:
        hits = [k for k, (_, line) in enumerate(numbered) if start_at in line]
        if not hits:
            raise ValueError(f"rlbook-source: {start_at!r} is not in {name!r}")
        numbered = numbered[hits[0] :]
    return (
        path,
        numbered[0][0],
        numbered[-1][0],
        textwrap.dedent("\n".join(line for _, line in numbered)),
    )


class PackageSource(SphinxDirective):
    required_arguments = 1
    option_spec = {"docstring": directives.flag, "start-at": directives.unchanged_required}

    def run(self):
        name = self.arguments[0]
        try:
            path, first, last, code = source_lines(
                name, docstring="docstring" in self.options, start_at=self.options.get("start-at")
            )
        except (ValueError, SyntaxError) as err:
            raise self.error(str(err)) from err
        self.env.note_dependency(str(path))
        block = nodes.literal_block(code, code, language="python")
        block["classes"].append("rlbook-source")
        self.set_source_info(block)
        rel = path.relative_to(CODE.parent).as_posix()
        caption = f"{name} — {rel}, lines {first}–{last}"
        return [container_wrapper(self, block, caption)]


def setup(app):
    app.add_directive("rlbook-source", PackageSource)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
