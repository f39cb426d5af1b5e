"""The book as a test: a cold build executes every cell and fails naming chapter and cell."""

import ast
import importlib
import os
import re
import shutil
import textwrap
from pathlib import Path

import jupytext
import nbformat
import pytest

import bookbuild as book

ROOT = Path(__file__).resolve().parents[1]

HEADER = textwrap.dedent("""\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---
    """)


def make_book(tmp: Path, pages: dict[str, str]) -> Path:
    """A throw-away book with this book's configuration and the given pages."""
    shutil.copy(ROOT / "_config.yml", tmp / "_config.yml")
    (tmp / "book").mkdir()
    shutil.copytree(ROOT / "book" / "_ext", tmp / "book" / "_ext")
    shutil.copy(ROOT / "book" / "references.bib", tmp / "book" / "references.bib")
    for name, text in pages.items():
        (tmp / "book" / f"{name}.md").write_text(text)
    names = list(pages)
    toc = f"format: jb-book\nroot: book/{names[0]}\nchapters:\n"
    toc += "".join(f"  - file: book/{n}\n" for n in names[1:])
    (tmp / "_toc.yml").write_text(toc)
    return tmp


@pytest.mark.book
def test_the_book_builds_with_every_cell_executed(built_book):
    assert built_book.ok, "the book failed to build:\n" + "\n".join(built_book.failures)
    html = ROOT / "_build" / "html"
    for page in ("index", "book/intro", "book/notation", "book/execution", "book/bibliography"):
        assert (html / f"{page}.html").exists(), page
    # Every executable chapter ran successfully in this build (not taken from an old cache).
    times = book.execution_times(ROOT)
    executable = [str(c) for c in book.chapters(ROOT) if book.is_notebook(ROOT / c)]
    missing = sorted(set(executable) - set(times))
    assert not missing, f"chapters with no successful execution record: {missing}"


@pytest.mark.book
def test_the_api_pages_document_every_public_name(built_book):
    """Every public module of rlbook has an API page (book/api.md, sphinx-autoapi) with an
    entry for each name of its ``__all__``, and no entry for a name outside it."""
    import importlib
    import pkgutil
    import re

    import rlbook

    assert built_book.ok
    html = ROOT / "_build" / "html"
    assert (html / "book" / "api.html").exists()
    missing, extra, names = [], [], 0
    modules = [rlbook] + [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(rlbook.__path__, "rlbook.")
        if not any(part.startswith("_") for part in m.name.split("."))
    ]
    for module in modules:
        page = html / "autoapi" / Path(*module.__name__.split(".")) / "index.html"
        assert page.is_file(), f"{module.__name__} has no API page"
        ids = set(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))
        public = set(getattr(module, "__all__", []))
        names += len(public)
        missing += [f"{module.__name__}.{n}" for n in public if f"{module.__name__}.{n}" not in ids]
        own = {i for i in ids if re.fullmatch(re.escape(module.__name__) + r"\.\w+", i)}
        submodules = {
            f"{module.__name__}.{m.name}"
            for m in pkgutil.iter_modules(getattr(module, "__path__", []))
        }
        extra += sorted(own - {f"{module.__name__}.{n}" for n in public} - submodules)
    assert names > 250
    assert not missing, f"public names without an API entry: {missing}"
    assert not extra, f"API entries outside __all__: {extra}"


@pytest.mark.book
def test_a_failing_check_fails_the_build_and_names_chapter_and_cell(tmp_path):
    pages = {
        "intro": "# A throw-away book\n\nNothing to execute here.\n",
        "broken": HEADER
        + textwrap.dedent("""\
            # A chapter whose check fails

            ```{code-cell} ipython3
            x = 1 + 1
            ```

            ```{code-cell} ipython3
            assert x == 3, "a false claim"
            ```
            """),
        "noisy": HEADER
        + textwrap.dedent("""\
            # A chapter that writes to stderr

            ```{code-cell} ipython3
            import sys
            print("something went wrong", file=sys.stderr)
            ```
            """),
        "latefail": HEADER
        + textwrap.dedent("""\
            # A chapter whose figure fails to draw after its cell ran

            ```{code-cell} ipython3
            import matplotlib.pyplot as plt
            fig, ax = plt.subplots()
            ax.plot([0, 1], label=r"$\\frac12$")
            ax.legend();
            ```
            """),
    }
    result = book.build(make_book(tmp_path, pages), cold=True, quiet=True)
    assert not result.ok
    report = "\n".join(result.failures)
    assert "book/broken.md: code cell 2 (`assert x == 3" in report, report
    assert "AssertionError: a false claim" in report, report
    assert "noisy" in report and "stderr" in report, report
    # matplotlib raises while drawing, in a post-execute hook: the cell itself "succeeded".
    assert "book/latefail.md: code cell 1" in report and "error output" in report, report


@pytest.mark.book
def test_chapters_execute_side_by_side_and_sphinx_reads_them_from_the_cache(tmp_path, monkeypatch):
    # Three chapters that each sleep 3 s, on two workers; Sphinx executes none again.
    sleep = "import time\nprint(time.time())\ntime.sleep(3)\nprint(time.time())\n"
    pages = {"intro": "# Intro\n"}
    for name in "abc":
        code = f"page = {name!r}\n{sleep}"  # distinct code: jupyter-cache keys on it
        pages[name] = HEADER + f"# {name}\n\n```{{code-cell}} ipython3\n{code}```\n"
    root = make_book(tmp_path, pages)
    monkeypatch.setenv("RLBOOK_JOBS", "2")
    lines: list[str] = []
    book.prepare_cache(root, cold=True)
    done = book.execute_into_cache(root, write=lines.append)
    assert done == {"book/a": None, "book/b": None, "book/c": None}
    assert lines[0].startswith("bookbuild: executing 3 chapter(s), 2 at a time"), lines
    assert len(lines) == 4 and all(": executed in " in x for x in lines[1:]), lines
    from jupyter_cache import get_cache

    cache = get_cache(root / book.CACHE_DIR)
    spans = []
    for rec in cache.list_cache_records():
        out = cache.get_cache_bundle(rec.pk).nb.cells[-1].outputs
        spans.append([float(t) for t in "".join(o["text"] for o in out).split()])
    assert len(spans) == 3, spans
    # Two workers: some two chapters' sleeps overlapped in time, and no three did.
    overlaps = [(a, b) for a in spans for b in spans if a < b and a[0] < b[1] and b[0] < a[1]]
    assert overlaps, spans
    assert not all(a[0] < b[1] for a in spans for b in spans), spans
    assert book.execute_into_cache(root) == {}  # nothing left to execute
    result = book.build(root, quiet=True)
    assert result.ok, result.failures
    assert result.log.count("Using cached notebook") == 3, result.log
    assert "Executing notebook using" not in result.log, result.log
    # myst-nb writes a chapter it took from the cache without outputs; the book's
    # extension writes it again from the cache, so the downloadable notebook has them.
    for name in "abc":
        nb = nbformat.read(root / "_build" / "jupyter_execute" / "book" / f"{name}.ipynb", 4)
        assert len(nb.cells[-1].outputs) >= 1, (name, nb.cells[-1])


def _kernels_of_this_process() -> list[int]:
    """PIDs of the ipykernel processes this test process started and left running."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and b"ipykernel" in cmd:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_an_executed_chapter_leaves_no_kernel_running(tmp_path):
    make_book(
        tmp_path, {"intro": "# Intro\n", "a": HEADER + "```{code-cell} ipython3\nx = 1\n```\n"}
    )
    before = set(_kernels_of_this_process())
    book.execute_chapter(tmp_path / "book" / "a.md")
    assert set(_kernels_of_this_process()) <= before


def test_jobs_reads_rlbook_jobs_and_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("RLBOOK_JOBS", "3")
    assert book.jobs() == 3
    monkeypatch.delenv("RLBOOK_JOBS")
    assert 1 <= book.jobs() <= 4
    for bad in ("0", "-1", "two"):
        monkeypatch.setenv("RLBOOK_JOBS", bad)
        with pytest.raises(ValueError, match="RLBOOK_JOBS"):
            book.jobs()


@pytest.mark.book
def test_the_downloaded_notebook_holds_each_line_once(tmp_path):
    """Streams are merged on the page, and the notebook keeps exactly what the kernel sent."""
    pages = {
        "intro": "# A throw-away book\n\nNothing to execute here.\n",
        "streams": HEADER
        + textwrap.dedent("""\
            # A chapter that prints in chunks

            ```{code-cell} ipython3
            import sys, time
            print("first line")
            sys.stdout.flush()
            time.sleep(0.5)
            print("second line\\n")
            ```
            """),
    }
    root = make_book(tmp_path, pages)
    result = book.build(root, cold=True, quiet=True)
    assert result.ok, "\n".join(result.failures)
    nb = nbformat.read(root / "_build/html/_sources/book/streams.ipynb", as_version=4)
    outputs = [c for c in nb.cells if c.cell_type == "code"][0].outputs
    # The kernel sent two chunks: that is what makes the merge (and its bug) matter.
    assert len(outputs) == 2, outputs
    assert "".join(o.text for o in outputs) == "first line\nsecond line\n\n", outputs
    page = (root / "_build/html/book/streams.html").read_text()
    # ... and the page shows them as one block (the source holds each line once more).
    assert page.count("first line\nsecond line") == 1, page


def test_chapter_modules_follow_imports_through_the_package(tmp_path):
    pkg = tmp_path / "code" / "rlbook"
    (pkg / "agents").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text("import numpy\n")
    (pkg / "mdp.py").write_text("x = 1\n")
    (pkg / "unused.py").write_text("from rlbook import mdp\n")
    (pkg / "agents" / "__init__.py").write_text("")
    (pkg / "agents" / "base.py").write_text("from .. import nets\n")
    (pkg / "agents" / "ppo.py").write_text("from .base import thing\nfrom rlbook.mdp import x\n")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "c.md").write_text(
        HEADER + "\n```{code-cell} ipython3\n%matplotlib "
        "inline\nfrom rlbook.agents import ppo\n```\n"
    )
    got = {p.relative_to(pkg).as_posix() for p in book.chapter_modules(tmp_path, "book/c.md")}
    assert got == {
        "__init__.py",
        "agents/__init__.py",
        "agents/ppo.py",
        "agents/base.py",
        "nets.py",
        "mdp.py",
    }


def test_the_cache_is_keyed_per_chapter_on_what_it_imports(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)  # in CI every build is cold by design
    monkeypatch.delenv("RLBOOK_REUSE_CACHE", raising=False)
    monkeypatch.delenv("RLBOOK_SEED", raising=False)
    pkg = tmp_path / "code" / "rlbook"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "m.py").write_text("x = 1\n")
    (pkg / "n.py").write_text("y = 1\n")
    (tmp_path / "requirements.txt").write_text("numpy==2.0\n")
    make_book(
        tmp_path,
        {
            "intro": "# Intro\n",
            "a": HEADER + "# A\n\n```{code-cell} ipython3\nfrom rlbook import m\n```\n",
            "b": HEADER + "# B\n\n```{code-cell} ipython3\nfrom rlbook.n import y\n```\n",
        },
    )
    assert book.prepare_cache(tmp_path, cold=False) == "no cache yet"
    assert book.prepare_cache(tmp_path, cold=False) == ""
    (pkg / "m.py").write_text("x = 2\n")
    assert book.prepare_cache(tmp_path, cold=False).endswith(": book/a.md")
    assert book.prepare_cache(tmp_path, cold=False) == ""
    (tmp_path / "code" / "tools.py").write_text("# not imported by any chapter\n")
    assert book.prepare_cache(tmp_path, cold=False) == ""
    (tmp_path / "requirements.txt").write_text("numpy==2.1\n")
    assert book.prepare_cache(tmp_path, cold=False).endswith(": book/a.md, book/b.md")
    monkeypatch.setenv("RLBOOK_SEED", "3")
    assert book.prepare_cache(tmp_path, cold=False).endswith(": book/a.md, book/b.md")
    assert book.prepare_cache(tmp_path, cold=True) == "cold build"


def test_every_chapter_file_is_in_the_table_of_contents():
    listed = {ROOT / c for c in book.chapters(ROOT)}
    pages = {
        p
        for p in (ROOT / "book").rglob("*.md")
        if not any(x.startswith("_") for x in p.relative_to(ROOT).parts)
    }
    assert pages == listed, f"not in _toc.yml: {sorted(map(str, pages - listed))}"


def test_notebooks_are_plain_ipynb_with_the_chapters_code(tmp_path):
    written = book.notebooks(ROOT, tmp_path)
    executable = [c for c in book.chapters(ROOT) if book.is_notebook(ROOT / c)]
    assert len(written) == len(executable) > 0
    for chapter, path in zip(executable, written, strict=True):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        source = [c.source for c in jupytext.read(ROOT / chapter).cells if c.cell_type == "code"]
        assert [c.source for c in nb.cells if c.cell_type == "code"] == source


def test_chapters_run_with_a_one_thread_xla_pool(monkeypatch):
    """The cure for the batched-LAPACK deadlock reaches every chapter kernel, whatever the
    caller set, and leaves the caller's own XLA flags alone."""
    monkeypatch.setenv("PJRT_NPROC", "2")
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    env = book.kernel_env()
    assert env["PJRT_NPROC"] == "1" and env["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"


def test_progress_prints_one_line_per_chapter_with_what_remains(tmp_path):
    make_book(
        tmp_path,
        {
            "intro": "# Intro\n",
            "a": HEADER + "# A\n\n```{code-cell} ipython3\nx = 1\n```\n",
            "b": HEADER + "# B\n\n```{code-cell} ipython3\nx = 2\n```\n",
        },
    )
    (tmp_path / "_build").mkdir()
    (tmp_path / book.TIMES_FILE).write_text('{"book/a": 10.0, "book/b": 32.0}')
    lines: list[str] = []
    progress = book.Progress(tmp_path, write=lines.append)
    for line in [
        "reading sources... [ 33%] book/intro\n",
        "reading sources... [ 66%] book/a\n",
        "/x/book/a.md: Executing notebook using local CWD [mystnb]\n",
        "/x/book/a.md: Executed notebook in 9.50 seconds [mystnb]\n",
        "reading sources... [100%] book/b\n",
        "/x/book/b.md: Using cached notebook: ID=2 [mystnb]\n",
    ]:
        progress.feed(line)
    assert lines == [
        "[ 1/2] book/a: executing (last build: 10 s)",
        "[ 1/2] book/a: executed in 9.5 s; about 32 s of chapters left",
        "[ 2/2] book/b: unchanged, taken from the execution cache",
    ]


def _package_source():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "package_source", ROOT / "book" / "_ext" / "package_source.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_package_source_shows_the_function_from_its_file():
    import ast
    import inspect
    import re

    from rlbook import mdp, returns
    from rlbook.agents import reinforce

    ps = _package_source()
    # Without the docstring: exactly the function's lines less the docstring's.
    path, first, last, code = ps.source_lines("rlbook.mdp.return_second_moment")
    lines, start = inspect.getsourcelines(mdp.return_second_moment)
    assert path == ROOT / "code" / "rlbook" / "mdp.py"
    assert (first, last) == (start, start + len(lines) - 1)
    doc = ast.get_docstring(ast.parse("".join(lines)).body[0], clean=False)
    assert doc and doc.splitlines()[0] not in code
    assert code.startswith("def return_second_moment(")
    assert code.splitlines()[-1] == lines[-1].rstrip("\n")
    # With it: the source as inspect reads it.
    _, _, _, full = ps.source_lines("rlbook.returns.gae", docstring=True)
    assert full == inspect.getsource(returns.gae).rstrip("\n")
    # From a line on, dedented.
    _, first_at, _, tail = ps.source_lines(
        "rlbook.agents.reinforce.update_loop", start_at="env, env_params"
    )
    assert tail.startswith("env, env_params")
    body, start = inspect.getsourcelines(reinforce.update_loop)
    assert "env, env_params" in body[first_at - start]
    # A method of a class.
    _, _, _, method = ps.source_lines("rlbook.envs.CartPole.step", docstring=True)
    assert re.match(r"def step\(self", method)
    for bad, kw in [
        ("rlbook.nomodule.f", {}),
        ("rlbook.mdp.no_such_function", {}),
        ("rlbook.mdp.return_second_moment", {"start_at": "no such text"}),
    ]:
        with pytest.raises(ValueError, match="rlbook-source"):
            ps.source_lines(bad, **kw)


def test_every_shown_function_resolves():
    """Each ``rlbook-source`` directive of a chapter names an object and a line that exist."""
    import re

    ps = _package_source()
    pattern = re.compile(r"```\{rlbook-source\} (\S+)\n((?::[\w-]+:.*\n)*)```")
    found = 0
    for chapter in sorted((ROOT / "book").glob("*.md")):
        for name, opts in pattern.findall(chapter.read_text()):
            options = dict(re.findall(r":([\w-]+):\s*(.*)", opts))
            ps.source_lines(
                name, docstring="docstring" in options, start_at=options.get("start-at")
            )
            found += 1
        assert "inspect.getsource" not in chapter.read_text(), chapter.name
    assert found >= 25


# The chapters' plumbing (random streams, learning claims, glued numbers, figures, devices):
# the introduction links these modules once; every other public name a chapter's code uses is
# linked in the chapter's prose at or before its first use.
PLUMBING = (
    "rlbook.seeds",
    "rlbook.claims",
    "rlbook.text",
    "rlbook.plotting",
    "rlbook.parallel",
    "rlbook.timing",
)
_PY_ROLE = re.compile(r"\{py:(func|class|data|obj|mod|attr|meth|exc)\}`([^`]+)`")


def _role_target(text: str) -> str:
    """The target of a role's content: ``~a.b`` and ``title <a.b>`` both name ``a.b``."""
    m = re.search(r"<([^>]+)>\s*$", text)
    return (m.group(1) if m else text).strip().lstrip("~")


def _public(module: str) -> set[str] | None:
    """``module``'s ``__all__``, or None where ``module`` is not a module of the package."""
    try:
        return set(importlib.import_module(module).__all__)
    except (ImportError, AttributeError, ValueError):
        return None


def package_names_used(cells: list[str]) -> list[tuple[int, str]]:
    """(cell index, ``rlbook.module.name``) for every public name of the package that each code
    cell uses, by attribute of an imported module or by a name imported from one."""
    bound: dict[str, str] = {}  # local name -> dotted module or dotted public name
    used = []
    for i, src in enumerate(cells):
        tree = ast.parse(re.sub(r"^\s*[%!].*$", "", src, flags=re.M))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("rlbook"):
                        # `import rlbook.x as y` binds y to rlbook.x; `import rlbook.x`, rlbook
                        bound[a.asname or "rlbook"] = a.name if a.asname else "rlbook"
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlbook"):
                for a in node.names:
                    bound[a.asname or a.name] = f"{node.module}.{a.name}"

        def dotted(node):
            if isinstance(node, ast.Name):
                return bound.get(node.id)
            if isinstance(node, ast.Attribute):
                base = dotted(node.value)
                return base and f"{base}.{node.attr}"
            return None

        loads = [
            n
            for n in ast.walk(tree)
            if isinstance(n, (ast.Name, ast.Attribute)) and isinstance(n.ctx, ast.Load)
        ]
        for node in sorted(loads, key=lambda n: (n.lineno, n.col_offset)):
            name = _canonical(dotted(node))
            if name is not None:
                used.append((i, name))
    return used


def _canonical(name: str | None) -> str | None:
    """``name`` as the public name of the module that defines it, or None where it names no
    public name: ``rlbook.agents.offpolicy.nets.mlp_init`` (a module reached through another
    module's import) is ``rlbook.nets.mlp_init``."""
    if name is None or not name.startswith("rlbook"):
        return None
    parts = name.split(".")
    module = importlib.import_module(parts[0])
    for k, part in enumerate(parts[1:], start=1):
        sub = getattr(module, part, None)
        if sub is None:
            try:
                sub = importlib.import_module(f"{module.__name__}.{part}")
            except ImportError:
                return None
        if isinstance(sub, type(module)):
            module = sub
        elif k == len(parts) - 1 and part in getattr(module, "__all__", ()):
            return f"{module.__name__}.{part}"
        else:
            return None
    return None


def test_every_api_link_in_the_book_has_a_target():
    wrong = []
    for chapter in book.chapters(ROOT):
        for role, content in _PY_ROLE.findall((ROOT / chapter).read_text(encoding="utf-8")):
            target = _role_target(content)
            module, _, attr = target.rpartition(".")
            ok = _public(target) is not None if role == "mod" else attr in (_public(module) or ())
            if not ok:
                wrong.append(f"{chapter}: {{py:{role}}}`{content}`")
    assert not wrong, "links to no public name of rlbook:\n" + "\n".join(wrong)


def test_package_names_used_follows_imports_and_attributes():
    cells = [
        "import rlbook.agents.sac as sac\nfrom rlbook import mdp, seeds\n"
        "from rlbook.nets import mlp_init as init",
        "sac.Config(); mdp.garnet(seeds.key(0)); init(1)\nx = mdp.not_public",
        "import rlbook\nrlbook.mdp.evaluate_v(1)",
        "from rlbook.agents import offpolicy\noffpolicy.nets.mlp_init(1)",
    ]
    assert package_names_used(cells) == [
        (1, "rlbook.agents.sac.Config"),
        (1, "rlbook.mdp.garnet"),
        (1, "rlbook.seeds.key"),
        (1, "rlbook.nets.mlp_init"),
        (2, "rlbook.mdp.evaluate_v"),
        (3, "rlbook.nets.mlp_init"),
    ]


@pytest.mark.parametrize("chapter", [str(c) for c in book.chapters(ROOT)])
def test_chapters_link_the_package_names_they_use(chapter):
    """Every public name of ``rlbook`` (the plumbing modules aside) that a chapter's code uses
    is linked to its API entry in the chapter's text before the first cell that uses it."""
    cells = jupytext.read(ROOT / chapter).cells
    code = [c.source for c in cells if c.cell_type == "code"]
    linked_before, seen = [], set()
    for c in cells:  # the links in the text before each code cell, cumulatively
        if c.cell_type == "code":
            linked_before.append(set(seen))
        else:
            seen |= {_role_target(t) for _, t in _PY_ROLE.findall(c.source)}
    missing = {}
    for i, name in package_names_used(code):
        if not name.startswith(PLUMBING) and name not in linked_before[i]:
            missing.setdefault(name, i + 1)
    assert not missing, f"{chapter}: used before its API link (name: code cell):\n" + "\n".join(
        f"  {n}: {i}" for n, i in missing.items()
    )


def test_xla_slow_compile_alarms_on_stderr_are_no_failure_anything_else_is():
    """On a loaded machine XLA logs "Very slow compile?" to stderr; the build reads stderr
    as a failure, except these alarms (as XLA writes them: slow_operation_alarm.cc)."""
    alarm = (
        "2026-12-07 16:20:02.045318: E external/xla/xla/service/slow_operation_alarm.cc:73] \n"
        "********************************\n"
        "[Compiling module jit_train] Very slow compile? If you want to file a bug, run with "
        "envvar XLA_FLAGS=--xla_dump_to=/tmp/foo and attach the results.\n"
        "********************************\n"
        "2026-12-07 16:20:14.895694: E external/xla/xla/service/slow_operation_alarm.cc:140] "
        "The operation took 2m12.850942799s\n"
        "\n"
        "********************************\n"
        "[Compiling module jit_train] Very slow compile? If you want to file a bug, run with "
        "envvar XLA_FLAGS=--xla_dump_to=/tmp/foo and attach the results.\n"
        "********************************\n"
    )
    nb = nbformat.v4.new_notebook()
    outputs = [
        [nbformat.v4.new_output("stream", name="stderr", text=alarm)],
        [nbformat.v4.new_output("stream", name="stderr", text=alarm + "UserWarning: nan\n")],
        [nbformat.v4.new_output("stream", name="stderr", text="RuntimeWarning: overflow\n")],
        [nbformat.v4.new_output("stream", name="stdout", text=alarm)],
    ]
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=o) for o in outputs]
    found = book.output_problems(nb)
    assert [i for i, _ in found] == [2, 3]
    assert found[0][1] == "wrote to stderr: UserWarning: nan\n"


def _derivation_chapters() -> list[str]:
    return [str(c) for c in book.derivation_chapters(ROOT)]


_EXERCISE = re.compile(r"^(`{3,})\{exercise\} *(.*)\n:label: *(\S+)", re.M)
_SOLUTION = re.compile(r"^(`{3,})\{solution-start\} *(\S+)\n:class: *dropdown\n", re.M)


@pytest.mark.parametrize("chapter", _derivation_chapters())
def test_every_chapter_has_three_exercises_of_both_kinds_each_with_a_solution(chapter):
    """At least three exercises, at least one "Break a step" and one "Derive, then verify",
    each answered by a collapsed solution with code the build executes."""
    text = (ROOT / chapter).read_text(encoding="utf-8")
    exercises = {label: title for _, title, label in _EXERCISE.findall(text)}
    assert len(exercises) >= 3, f"{chapter}: {len(exercises)} exercises"
    kinds = {title.split(":")[0] for title in exercises.values()}
    assert {"Break a step", "Derive, then verify"} <= kinds, f"{chapter}: kinds {kinds}"
    solved = {label for _, label in _SOLUTION.findall(text)}
    assert solved == set(exercises), f"{chapter}: unanswered {set(exercises) - solved}"
    for label in exercises:
        start = text.index(f"{{solution-start}} {label}")
        body = text[start : text.index("{solution-end}", start)]
        assert "```{code-cell}" in body, f"{chapter}: the solution of {label} has no code cell"


def test_the_derivation_chapters_are_the_nine_of_the_parts():
    assert len(_derivation_chapters()) == 9
    assert "book/estimators.md" in _derivation_chapters()
    assert "book/intro.md" not in _derivation_chapters()
