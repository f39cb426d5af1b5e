"""The package's shape: what its modules may take from each other."""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "code" / "rlbook"


def _rlbook_aliases(tree: ast.AST) -> dict[str, str]:
    """The names a module binds to rlbook modules or their members."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlbook"):
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("rlbook"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name
    return aliases


def test_no_module_reaches_into_another_modules_private_names():
    """Only rlbook._checks is shared private code; nothing else crosses a module boundary
    by a leading underscore (`from rlbook.x import _y` or `x._y`)."""
    crossings = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        aliases = _rlbook_aliases(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("rlbook")
            ):
                crossings += [
                    f"{path.name}: from {node.module} import {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and a.name != "_checks"
                ]
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and not aliases[node.value.id].endswith("_checks")
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                crossings.append(f"{path.name}: {aliases[node.value.id]}.{node.attr}")
    assert not crossings, crossings
    # the scan sees what it should: a known public cross-module call is found
    tree = ast.parse((PACKAGE / "agents" / "dqn.py").read_text())
    assert "nets" in _rlbook_aliases(tree)


def test_readme_python_is_lint_clean():
    """`make lint` reads no Markdown: the README's Python blocks get ruff's two checks here,
    with the project's settings, so what a reader copies is what the package's code looks like."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", readme, flags=re.S | re.M)
    assert blocks, "README.md has no ```python block"
    ruff = Path(sys.executable).parent / "ruff"
    for block in blocks:
        for args in (["check"], ["format", "--check"]):
            done = subprocess.run(
                [ruff, *args, "--stdin-filename", "README_block.py", "-"],
                input=block,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            assert done.returncode == 0, f"ruff {' '.join(args)} on README.md:\n{done.stdout}"
