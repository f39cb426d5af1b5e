"""The package's shape: what its modules may take from each other."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "code" / "rlbook"


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
