"""Two cold executions of the book give the same numbers.

Each executable chapter was executed from scratch by the build (its executed notebook
is ``_build/jupyter_execute/<page>.ipynb``); this test executes it once more, in a
fresh kernel with the same environment, and compares the text outputs of every code
cell: printed streams, ``text/plain`` (and other text) results, and errors. Only
timing lines may differ (a line that states a duration or a rate: ``1.3 s``,
``12 ms``, ``4.1e4 steps/s``, ``wall``/``CPU`` times; their numbers and the padding of
fixed-width numbers are masked), and memory addresses in object
reprs (``at 0x7f…``), which are not numbers of the book. Images are not compared.

A difference names the chapter, the cell (its number among the chapter's code cells
and first line) and the first differing line of each execution.

It runs in ``make test`` after the cold build that the other book tests share;
``make reproduce`` runs this file alone (a cold build, then the second execution).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

import bookbuild as book

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute"
CHAPTERS = [c for c in book.chapters(ROOT) if book.is_notebook(ROOT / c)]

_UNIT = r"(?:ns|us|µs|ms|s|sec|secs|seconds?|min|minutes?|h|hours?)"
TIMING = re.compile(
    rf"\d(?:[\d.,]*\d)?(?:e[+-]?\d+)?\s*{_UNIT}\b(?!\w)"  # 1.3 s, 12ms, 2 minutes
    r"|\b(?:steps?|it|iterations?|updates?|frames?|samples?|episodes?)\s*/\s*s\b"  # rates
    r"|\b(?:wall|cpu)\b|\belapsed\b|\btook\b|\btiming\b|\bseconds\b",
    re.I,
)
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d*)?(?:e[+-]?\d+)?", re.I)
ADDRESS = re.compile(r"\b0x[0-9a-f]{6,}\b", re.I)
TEXT_TYPES = ("text/plain", "text/markdown", "text/latex", "text/html", "application/json")


def normalize(line: str) -> str:
    """A line as compared: addresses masked; in a timing line, every number masked too,
    and runs of spaces folded (a number printed to a fixed width pads with spaces)."""
    line = ADDRESS.sub("0x…", line.rstrip())
    if TIMING.search(line):
        line = re.sub(r"\s+", " ", NUMBER.sub("#", line))
    return line


def cell_text(cell) -> list[str]:
    """The text a code cell showed, stream chunks joined, as normalized lines."""
    parts: list[str] = []
    stream = {"name": None, "text": ""}

    def flush():
        if stream["name"] is not None:
            parts.append(f"[{stream['name']}]\n{stream['text']}")
        stream.update(name=None, text="")

    for out in cell.get("outputs", []):
        kind = out["output_type"]
        if kind == "stream":
            if stream["name"] != out["name"]:
                flush()
                stream["name"] = out["name"]
            stream["text"] += out["text"]
            continue
        flush()
        if kind == "error":
            parts.append(f"[error]\n{out['ename']}: {out['evalue']}")
        else:
            for mime in TEXT_TYPES:
                if mime in out.get("data", {}):
                    data = out["data"][mime]
                    text = (
                        data
                        if isinstance(data, str)
                        else "".join(data)
                        if isinstance(data, list)
                        else repr(data)
                    )
                    parts.append(f"[{kind} {mime}]\n{text}")
    flush()
    return [normalize(line) for part in parts for line in part.splitlines()]


def compare(chapter: str, first, second) -> list[str]:
    """One line per code cell whose text outputs differ between two executed notebooks."""
    a = [c for c in first.cells if c.cell_type == "code"]
    b = [c for c in second.cells if c.cell_type == "code"]
    if [c.source for c in a] != [c.source for c in b]:
        return [f"{chapter}: the two executions are not of the same code cells"]
    diffs = []
    for i, (x, y) in enumerate(zip(a, b, strict=True), start=1):
        tx, ty = cell_text(x), cell_text(y)
        if tx == ty:
            continue
        first_line = x.source.strip().splitlines()[0][:70] if x.source.strip() else ""
        delta = [
            d
            for d in difflib.unified_diff(tx, ty, "first", "second", n=0, lineterm="")
            if d[:1] in "+-" and not d.startswith(("---", "+++"))
        ]
        diffs.append(
            f"{chapter}: code cell {i} (`{first_line}`) differs:\n      "
            + "\n      ".join(delta[:6])
        )
    return diffs


def test_timing_lines_are_masked_and_results_are_not():
    def same(a, b):
        return normalize(a) == normalize(b)

    def differ(a, b):
        return normalize(a) != normalize(b)

    assert same("trained in 12.3 s (4.1e4 steps/s)", "trained in 9.8 s (5e4 steps/s)")
    assert same("CPU times: user 1.2 s", "CPU times: user 3.4 s")
    assert same("<Figure at 0x7f3a2b1c0d90>", "<Figure at 0x7f00aa11bb22>")
    assert same("TRPO     :  45.2 s (compile)", "TRPO     :   5.2 s (compile)")
    assert differ("TRPO  return  45.2", "TRPO  return   5.2")
    assert differ("J(θ) = 0.1234", "J(θ) = 0.1235")
    assert differ("mean return 195.2 over 5 seeds", "mean return 180.0 over 5 seeds")
    assert differ("error 1.0e-12 after 60 iterations", "error 2.0e-12 after 60 iterations")


def _notebook(cells: list[tuple[str, list]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src, outputs=outs) for src, outs in cells]
    return nb


def test_a_difference_names_chapter_and_cell():
    stream = nbformat.v4.new_output
    first = _notebook(
        [
            ("import time", []),
            (
                "t0 = time.time()\nprint(...)",
                [stream("stream", name="stdout", text="done in 1.2 s\n")],
            ),
            ("print(j)", [stream("stream", name="stdout", text="J = 0.50\n")]),
        ]
    )
    second = _notebook(
        [
            ("import time", []),
            (
                "t0 = time.time()\nprint(...)",
                [stream("stream", name="stdout", text="done in 3.4 s\n")],
            ),
            ("print(j)", [stream("stream", name="stdout", text="J = 0.51\n")]),
        ]
    )
    diffs = compare("book/x.md", first, second)
    assert len(diffs) == 1, diffs
    assert "book/x.md: code cell 3 (`print(j)`)" in diffs[0], diffs
    assert "-J = 0.50" in diffs[0] and "+J = 0.51" in diffs[0], diffs
    # stream chunks split differently are the same text
    split = _notebook(
        [
            ("import time", []),
            (
                "t0 = time.time()\nprint(...)",
                [
                    stream("stream", name="stdout", text="done in "),
                    stream("stream", name="stdout", text="9 s\n"),
                ],
            ),
            ("print(j)", [stream("stream", name="stdout", text="J = 0.50\n")]),
        ]
    )
    assert compare("book/x.md", first, split) == []


@pytest.mark.book
@pytest.mark.reproduce
@pytest.mark.parametrize("chapter", [str(c) for c in CHAPTERS])
def test_a_second_cold_execution_gives_the_same_outputs(built_book, chapter, tmp_path):
    built = EXECUTED / Path(chapter).with_suffix(".ipynb")
    if not built.exists():
        pytest.fail(
            f"{chapter} has no executed notebook in {EXECUTED.relative_to(ROOT)}: "
            "the build did not execute it (see test_book.py)"
        )
    first = nbformat.read(built, as_version=4)
    second_path = tmp_path / built.name
    book.execute_chapter(ROOT / chapter, out=second_path)
    second = nbformat.read(second_path, as_version=4)
    source = [c.source for c in jupytext.read(ROOT / chapter).cells if c.cell_type == "code"]
    assert [c.source for c in first.cells if c.cell_type == "code"] == source, (
        f"{built.relative_to(ROOT)} is not of the current {chapter}: rebuild the book"
    )
    diffs = compare(chapter, first, second)
    assert not diffs, "two cold executions differ:\n  " + "\n  ".join(diffs)
