"""The build driver behind ``make book``, ``make bench`` and ``make notebooks``.

It lives beside the package, not in it: ``rlbook`` is what the chapters import, and a change
here re-executes no chapter.

``python -m bookbuild``          build ``_build/html`` with every cell executed.
``python -m bookbuild --cold``   the same from an empty execution cache.
``python -m bookbuild --bench``  after a cold build, each chapter's execution time and
                                 the figures of ``bench/*.py`` in ``_build/bench.json``.
``python -m bookbuild --notebooks``  every chapter as ``_build/notebooks/*.ipynb``.
``python -m bookbuild --chapter book/x.md``  execute one chapter, no HTML (fast check).

Locally the execution cache (jupyter-cache) skips chapters whose code cells did
not change. jupyter-cache keys a notebook on its code cells only, so the driver
also keys each chapter on what else its execution depends on (:func:`chapter_key`:
the modules of ``rlbook`` it imports, directly or through other modules, the data
they read, the lock and ``RLBOOK_SEED``): a change to one agent re-executes only the
chapters that import it, and no stale chapter passes. With ``CI=true`` every build
is cold, unless ``RLBOOK_REUSE_CACHE=1`` (see :func:`reuse_cache`).

``python -m bookbuild --calibrate``  the learning claims on 20 seed sets (``make calibrate``).

A failed build prints, for each failing chapter, the cell that raised (its
index among the chapter's code cells and its first line) and the exception.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "chapters",
    "chapter_key",
    "chapter_modules",
    "build",
    "BuildResult",
    "execute_chapter",
    "execute_into_cache",
    "jobs",
    "last_times",
    "notebooks",
    "bench",
    "main",
    "reuse_cache",
    "calibrate",
    "claim_chapters",
]

CACHE_DIR = Path("_build") / ".jupyter_cache"
KEYS_FILE = Path("_build") / ".rlbook-chapter-keys.json"
JB_ARGS = ["-W", "-n", "--keep-going"]
# The kernels that execute chapters draw figures inline, as in Jupyter: with any other
# backend (Agg, which `make` exports for the unit tests) a figure is never displayed,
# and the page shows none.
KERNEL_MPLBACKEND = "module://matplotlib_inline.backend_inline"


def chapters(root: Path | str = ".") -> list[Path]:
    """Every page of ``_toc.yml`` in reading order, as paths relative to ``root``."""
    import yaml

    root = Path(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k != "root"})
    out = []
    for f in files:
        p = Path(f)
        if not p.suffix:
            p = p.with_suffix(".md")
        if not (root / p).exists():
            raise ValueError(f"_toc.yml names {f}, which does not exist under {root}")
        out.append(p)
    return out


MATTER = ("Front matter", "Back matter")


def derivation_chapters(root: Path | str = ".") -> list[Path]:
    """The chapters of the book's parts, in reading order: every page of ``_toc.yml`` but the
    root page and the parts captioned as front or back matter (:data:`MATTER`)."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    return [
        Path(c["file"]).with_suffix(".md")
        for part in toc.get("parts", [])
        if part.get("caption") not in MATTER
        for c in part.get("chapters", [])
    ]


def is_notebook(path: Path) -> bool:
    """A MyST page with a jupytext header is executed; plain pages are not."""
    head = Path(path).read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and "jupytext:" in head and "kernelspec:" in head


def _strip_magics(src: str) -> str:
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines()
    )


def _rlbook_imports(src: str, module: str | None = None) -> set[str]:
    """Dotted names of the ``rlbook`` modules (or names in them) that ``src`` imports.

    ``module`` is the dotted name of the module ``src`` belongs to, for its relative
    imports; ``None`` for a chapter's code.
    """
    import ast

    tree = ast.parse(_strip_magics(src))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "rlbook"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue
                parts = module.split(".")[: -node.level]  # the package the import is from
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "rlbook":
                continue
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _module_file(root: Path, name: str) -> Path | None:
    base = root / "code" / Path(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def chapter_modules(root: Path | str, chapter: Path | str) -> list[Path]:
    """The files of ``rlbook`` a chapter imports, directly or through other modules of it.

    Every package ``__init__`` on the way is included (importing ``rlbook.agents.ppo``
    runs ``rlbook/__init__.py`` and ``rlbook/agents/__init__.py``).
    """
    root = Path(root)
    todo = {n for src in _code_cells(root / chapter) for n in _rlbook_imports(src)}
    seen: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            sub = ".".join(parts[:i])
            if sub in seen:
                continue
            f = _module_file(root, sub)
            if f is None:  # a function or class imported from a module
                continue
            seen[sub] = f
            own = sub if f.name != "__init__.py" else sub + ".__init__"
            todo |= _rlbook_imports(f.read_text(encoding="utf-8"), own) - set(seen)
    return sorted(set(seen.values()))


# Files a chapter's outputs depend on besides its code and the modules it imports.
DATA_DEPENDENCIES = {
    "rlbook/claims.py": ["book/calibration.json"],  # claims.check reads the calibration
}
PAGE_DEPENDENCIES = {
    "book/calibration.md": ["book/*.md", "book/calibration.json"],  # reads every chapter
}


def chapter_key(root: Path | str, chapter: Path | str) -> str:
    """What a chapter's execution depends on besides its own cells (which jupyter-cache
    keys itself): the ``rlbook`` files it imports, transitively, the data they read,
    the lock, the build seed and the kernel's XLA flags. A SHA-256."""
    from rlbook import seeds

    root, chapter = Path(root), Path(chapter)
    files = chapter_modules(root, chapter)
    for f in list(files):
        rel = f.relative_to(root / "code").as_posix()
        files += [root / d for d in DATA_DEPENDENCIES.get(rel, [])]
    for pattern in PAGE_DEPENDENCIES.get(chapter.as_posix(), []):
        files += sorted(p for p in root.glob(pattern) if p != root / chapter)
    files.append(root / "requirements.txt")
    h = hashlib.sha256()
    for p in sorted(set(files)):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes() if p.exists() else b"(missing)")
    h.update(f"RLBOOK_SEED={seeds.build_seed()} THREADS={KERNEL_THREADS}".encode())
    return h.hexdigest()


def reuse_cache() -> bool:
    """``RLBOOK_REUSE_CACHE=1`` lets CI and the build test reuse a restored execution cache.

    The cache stays keyed on ``code/`` and on each chapter's code cells, so what is
    reused is exactly what a cold build would compute; the GitHub workflow for forks
    sets it to keep the jupyter-cache between runs.
    """
    return os.environ.get("RLBOOK_REUSE_CACHE", "") == "1"


def prepare_cache(root: Path, cold: bool) -> str:
    """Drop from the execution cache what must execute again; say what and why.

    Everything goes when asked (``cold``) and in CI. Otherwise a chapter's cached
    execution is dropped when :func:`chapter_key` changed since it was cached (a module
    of ``rlbook`` it imports, the lock, the seed); jupyter-cache itself re-executes a
    chapter whose code cells changed. A change to a module a chapter does not import,
    or to this driver, re-executes nothing.
    """
    import json as _json

    from jupyter_cache import get_cache

    root = Path(root)
    cache_dir, stamp = root / CACHE_DIR, root / KEYS_FILE
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    pages = [c for c in chapters(root) if is_notebook(root / c)]
    keys = {str(c): chapter_key(root, c) for c in pages}
    previous = _json.loads(stamp.read_text()) if stamp.exists() else {}
    if cold or (in_ci and not reuse_cache()):
        reason = "cold build"
        shutil.rmtree(cache_dir, ignore_errors=True)
        shutil.rmtree(root / "_build" / "html", ignore_errors=True)
        shutil.rmtree(root / "_build" / "jupyter_execute", ignore_errors=True)
    else:
        stale = [c for c in keys if previous.get(c) != keys[c]]
        reason = ""
        if stale and cache_dir.exists():
            cache = get_cache(cache_dir)
            for rec in cache.list_cache_records():
                try:
                    rel = str(Path(rec.uri).resolve().relative_to(root.resolve()))
                except ValueError:
                    continue
                if rel in stale:
                    cache.remove_cache(rec.pk)
        if not previous:
            reason = "no cache yet"
        elif stale:
            reason = "what these chapters import, the lock or RLBOOK_SEED changed: " + ", ".join(
                stale
            )
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(_json.dumps(keys, indent=1) + "\n")
    return reason


# XLA:CPU runs jaxlib's batched LAPACK kernels (solve, triangular solve, eigh, ...) on its
# intra-op thread pool, and each splits its batch into tasks on that same pool and blocks
# until they finish. When two such kernels run at once on a two-thread pool, both threads
# wait for tasks queued behind themselves: the process hangs with every XLA thread on a
# futex (seen in vmapped MDP solves here, and reproduced by tests/test_runtime.py on the
# first call; with 3 or 4 threads the same program also hung, after a few calls, on a busy
# machine). With a one-thread pool, jaxlib runs every batch inline and nothing can wait.
# `import rlbook` sets the same default (rlbook/__init__.py); the build sets it outright.
# Measured on this 2-core machine with a warm compilation cache: reinforce 18.4 s wall /
# 24.1 s CPU with the default pool, 18.8 / 18.8 with one thread; trust_regions 28.9 / 34.6
# against 28.3 / 28.3.
KERNEL_THREADS = {"PJRT_NPROC": "1"}


# XLA's persistent compilation cache: a program compiled once (by the build, the second
# execution of `make test`, calibration or a reader's kernel) is read back, not compiled
# again. Same program, same executable: it never changes a result, only the time.
JAX_CACHE = Path(__file__).resolve().parents[1] / "_build" / "jax-cache"


def kernel_env(**extra: str) -> dict[str, str]:
    """The environment chapters execute in, in the build and on their own."""
    env = dict(
        os.environ, MPLBACKEND=KERNEL_MPLBACKEND, PYTHONHASHSEED="0", NO_COLOR="1", **KERNEL_THREADS
    )
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(JAX_CACHE))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
    env.update(extra)
    return env


@dataclass
class BuildResult:
    returncode: int
    log: str
    seconds: float
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failures


def _code_cells(path: Path) -> list[str]:
    import jupytext

    nb = jupytext.read(path)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def locate_cell(path: Path, source: str) -> int | None:
    """Index (from 1) of the code cell of ``path`` whose source is ``source``."""
    target = source.strip()
    for i, cell in enumerate(_code_cells(path), start=1):
        if cell.strip() == target:
            return i
    for i, cell in enumerate(_code_cells(path), start=1):  # partial match as a fallback
        if target and target.splitlines()[0] in cell:
            return i
    return None


_FAIL = re.compile(
    r"^(?P<doc>\S+?)(?::\d+)?: WARNING: Executing notebook failed: (?P<err>\w+)", re.M
)
_CELL = re.compile(
    r"An error occurred while executing the following cell:\n-+\n(?P<src>.*?)\n-+\n", re.S
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WARN = re.compile(r"^(?P<loc>\S+?): (?P<kind>WARNING|ERROR|CRITICAL): (?P<msg>.*)$", re.M)


def summarize(root: Path, log: str) -> list[str]:
    """One line per problem the build log reports, naming chapter and cell."""
    log = _ANSI.sub("", log)
    out = []
    starts = [m for m in _FAIL.finditer(log)]
    for j, m in enumerate(starts):
        end = starts[j + 1].start() if j + 1 < len(starts) else len(log)
        chunk = log[m.end() : end]
        doc = Path(m["doc"])
        try:
            doc = doc.resolve().relative_to(root.resolve())
        except ValueError:
            pass
        cell = _CELL.search(chunk)
        where = "a cell"
        if cell:
            idx = locate_cell(root / doc, cell["src"]) if (root / doc).exists() else None
            first = cell["src"].strip().splitlines()[0] if cell["src"].strip() else ""
            where = f"code cell {idx}" if idx else "a cell"
            where += f" (`{first[:70]}`)"
        errors = re.findall(r"^(\w*(?:Error|Exception)\b.*)$", chunk, re.M)
        err = errors[-1] if errors else m["err"]
        out.append(f"{doc}: {where} raised {err.strip()[:300]}")
    for w in _WARN.finditer(log):
        if "Executing notebook failed" in w["msg"]:
            continue
        out.append(f"{w['loc']}: {w['kind']}: {w['msg'][:300]}")
    return out


TIMES_FILE = Path("_build") / ".rlbook-last-times.json"
LOG_FILE = Path("_build") / "build.log"
_READING = re.compile(r"reading sources\.\.\. \[\s*\d+%\] (?P<doc>\S+)")
_EXECUTED = re.compile(r"Executed notebook in (?P<sec>[\d.]+) seconds")
# The kernel's transport notice, printed once per chapter: the kernel listens on loopback.
_KERNEL_NOTICE = re.compile(r"Kernel is running over TCP without encryption")


class Progress:
    """One line per chapter from Sphinx's log: its place, its time, and what remains
    (estimated from the last build's per-chapter times)."""

    def __init__(self, root: Path, write=None, executed: set[str] = frozenset()):
        self.order = [c.with_suffix("").as_posix() for c in chapters(root) if is_notebook(root / c)]
        path = root / TIMES_FILE
        self.last = json.loads(path.read_text()) if path.exists() else {}
        self.write = write or (lambda text: print(text, flush=True))
        self.doc = None
        self.done: set[str] = set()
        self.executed = executed  # executed by execute_into_cache, already reported

    def _left(self) -> str:
        todo = [d for d in self.order if d not in self.done and d != self.doc]
        known = [self.last[d] for d in todo if d in self.last]
        if not self.last:
            return ""
        return f"; about {sum(known):.0f} s of chapters left" if todo else ""

    def feed(self, line: str) -> None:
        m = _READING.search(line)
        if m:
            self.doc = m["doc"]
            return
        if self.doc not in self.order:
            return
        i = self.order.index(self.doc) + 1
        tag = f"[{i:>2}/{len(self.order)}] {self.doc}"
        if "Executing notebook using" in line:
            last = self.last.get(self.doc)
            self.write(f"{tag}: executing" + (f" (last build: {last:.0f} s)" if last else ""))
        elif m := _EXECUTED.search(line):
            self.done.add(self.doc)
            self.write(f"{tag}: executed in {float(m['sec']):.1f} s{self._left()}")
        elif "Using cached notebook" in line:
            self.done.add(self.doc)
            if self.doc in self.executed:
                return
            self.write(f"{tag}: unchanged, taken from the execution cache")
        elif "Executing notebook failed" in line:
            self.done.add(self.doc)
            self.write(f"{tag}: FAILED ({line.split('failed:')[-1].strip()})")


# An IPython startup file for `make bench`'s kernels: it adds up the seconds JAX reports
# for each stage of making a program (tracing, lowering to MLIR, XLA's backend compile,
# reading the persistent cache) and for the cache's hits and misses, and rewrites the
# totals to $RLBOOK_COMPILE_LOG after each (a few hundred per chapter). Build and test
# kernels do not load it.
COMPILE_LOG_STARTUP = """\
import collections as _c, json as _j, os as _o
from jax import monitoring as _m

_totals = _c.Counter()
_path = _o.environ.get("RLBOOK_COMPILE_LOG")


def _write():
    with open(_path, "w") as f:
        _j.dump(dict(_totals), f)


def _duration(event, secs, **kw):
    _totals[event] += secs
    _write()


def _count(event, **kw):
    _totals[event + " (count)"] += 1
    _write()


if _path:
    _m.register_event_duration_secs_listener(_duration)
    _m.register_event_listener(_count)
"""


@contextmanager
def _kernel(nb, cwd: Path, timeout: int):
    """A client for ``nb`` whose kernel starts in ``cwd`` and talks over Unix sockets.

    Over IPC the kernel has no TCP port to warn about (its "Kernel is running over TCP
    without encryption" notice, once per chapter), and what it does write to stderr
    still reaches the terminal. The kernel is shut down on the way out.
    """
    import tempfile

    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="rlbook-kernel-") as sockets:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "k"))
        try:
            yield NotebookClient(
                nb,
                km=km,
                timeout=timeout,
                kernel_name="python3",
                allow_errors=False,
                record_timing=False,  # as myst-nb: cell metadata is part of jupyter-cache's key
                resources={"metadata": {"path": str(cwd)}},
            )
        finally:
            # nbclient shuts down only the kernels of managers it made itself.
            if km.has_kernel:
                km.shutdown_kernel(now=True)


def jobs() -> int:
    """How many chapters execute at once: ``RLBOOK_JOBS``, or one per CPU up to four.

    Each kernel runs XLA on one thread (:data:`KERNEL_THREADS`) and compiles on one, so a
    chapter keeps about one core busy. On this book's 2-core machine two at once do not
    halve the time: reinforce and baselines, each with an empty XLA cache, took 89 s and
    110 s one after the other (199 s) and 115 s and 150 s side by side (150 s), 1.3 times
    sooner. Four bounds the memory a build takes.
    """
    raw = os.environ.get("RLBOOK_JOBS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"RLBOOK_JOBS must be a positive integer, got {raw!r}")
        return int(raw)
    return max(1, min(4, os.cpu_count() or 1))


def _myst_notebook(path: Path):
    """The notebook myst-nb makes of a MyST chapter, so that jupyter-cache's key (its code
    cells and kernelspec) is the one the Sphinx build looks up."""
    from myst_nb.core.read import read_myst_markdown_notebook

    return read_myst_markdown_notebook(path.read_text(encoding="utf-8"), path=path)


def execute_into_cache(
    root: Path | str,
    *,
    n_jobs: int | None = None,
    timeout: int = 600,
    write=None,
    compile_log: Path | None = None,
) -> dict[str, str]:
    """Execute, ``n_jobs`` at a time, every chapter the execution cache lacks; cache each.

    The Sphinx build that follows finds every chapter executed here in the cache, exactly
    as if it had executed it itself (same notebook, same kernel environment), and
    executes only what failed here (to report it in its log). Longest chapters start
    first, by the last build's times, so that the last to finish is a short one. Prints
    one line per chapter as it ends. Returns {chapter without suffix: None, or the
    exception's name where it failed} for every chapter it executed. With
    ``compile_log``, each kernel writes there what JAX spent compiling
    (:data:`COMPILE_LOG_STARTUP`), one ``<chapter>.json`` each.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    root = Path(root).resolve()
    write = write or (lambda text: print(text, flush=True))
    cache = get_cache(root / CACHE_DIR)
    pages = [c for c in chapters(root) if is_notebook(root / c)]
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text()) or {}
    default_mode = (config.get("execute") or {}).get("execute_notebooks", "auto")
    todo = {}
    for c in pages:
        nb = _myst_notebook(root / c)
        # Only what Sphinx would take from the cache: a page may set its own mode
        # (`mystnb: execution_mode: "off"` in its front matter), which is left to Sphinx.
        if (nb.metadata.get("mystnb") or {}).get("execution_mode", default_mode) != "cache":
            continue
        try:
            cache.match_cache_notebook(nb)
        except KeyError:
            todo[c] = nb
    if not todo:
        return {}
    last = last_times(root)
    order = sorted(todo, key=lambda c: -last.get(c.with_suffix("").as_posix(), 0.0))
    n_jobs = n_jobs or jobs()
    env = kernel_env()
    expected = sum(last.get(c.with_suffix("").as_posix(), 0.0) for c in order)
    write(
        f"bookbuild: executing {len(order)} chapter(s), {n_jobs} at a time"
        + (f"; the last build took {expected:.0f} s of chapter time" if expected else "")
    )

    if compile_log is not None:
        startup = Path(compile_log) / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        (startup / "00-rlbook-compile-log.py").write_text(COMPILE_LOG_STARTUP)
        env["IPYTHONDIR"] = str(Path(compile_log) / "ipython")

    def run(c: Path):
        nb = todo[c]
        t0 = time.perf_counter()
        own = dict(env)
        if compile_log is not None:
            own["RLBOOK_COMPILE_LOG"] = str(Path(compile_log) / f"{c.stem}.json")
        try:
            with _kernel(nb, (root / c).parent, timeout) as client:
                client.execute(env=own)
        except (CellExecutionError, CellTimeoutError) as exc:
            return c, nb, time.perf_counter() - t0, f"{type(exc).__name__}"
        return c, nb, time.perf_counter() - t0, None

    def left(finished: set[Path]) -> str:
        rest = [last.get(c.with_suffix("").as_posix()) for c in order if c not in finished]
        known = [t for t in rest if t]
        if not rest or not known:
            return ""
        return f"; about {sum(known) / n_jobs:.0f} s left"

    results, finished, t_start = {}, set(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        futures = [pool.submit(run, c) for c in order]
        for fut in as_completed(futures):
            c, nb, seconds, err = fut.result()
            finished.add(c)
            tag = f"[{len(finished):>2}/{len(order)}] {c.with_suffix('').as_posix()}"
            doc = c.with_suffix("").as_posix()
            results[doc] = err
            if err:
                write(f"{tag}: FAILED after {seconds:.0f} s ({err}; the build log shows the cell)")
                continue
            cache.cache_notebook_bundle(
                CacheBundleIn(nb, str(root / c), data={"execution_seconds": seconds}),
                check_validity=False,
                overwrite=True,
            )
            write(
                f"{tag}: executed in {seconds:.1f} s "
                f"({time.perf_counter() - t_start:.0f} s since the first started{left(finished)})"
            )
    return results


def build(
    root: Path | str = ".",
    *,
    cold: bool = False,
    quiet: bool = False,
    compile_log: Path | None = None,
) -> BuildResult:
    """Run ``jupyter-book build`` with warnings as errors; return its log and the failures.

    Unless ``quiet``, it prints one line per chapter as it executes (``RLBOOK_VERBOSE=1``
    prints Sphinx's whole log instead); the whole log is written to ``_build/build.log``
    as it comes.
    """
    root = Path(root).resolve()
    reason = prepare_cache(root, cold)
    verbose = os.environ.get("RLBOOK_VERBOSE", "") == "1"
    if reason and not quiet:
        print(f"bookbuild: executing chapters ({reason}); Sphinx's log: {LOG_FILE}", flush=True)
    t0 = time.perf_counter()
    executed = execute_into_cache(
        root, write=(lambda text: None) if quiet else None, compile_log=compile_log
    )
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb), "build", str(root), "--all", *JB_ARGS]
    env = kernel_env()
    (root / "_build").mkdir(exist_ok=True)
    progress = Progress(root, executed={c for c, err in executed.items() if err is None})
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    with open(root / LOG_FILE, "w") as log_file:
        for line in proc.stdout:
            if _KERNEL_NOTICE.search(line):
                continue
            lines.append(line)
            log_file.write(line)
            log_file.flush()
            if quiet:
                continue
            if verbose:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                progress.feed(_ANSI.sub("", line))
    rc = proc.wait()
    log = _ANSI.sub("", "".join(lines))
    result = BuildResult(rc, log, time.perf_counter() - t0, summarize(root, log))
    result.failures.extend(executed_problems(root))
    if rc != 0 and not result.failures:
        result.failures.append(f"jupyter-book exited with status {rc}; see {LOG_FILE}")
    (root / LOG_FILE).write_text(log)
    times = {
        str(Path(k).with_suffix("").as_posix()): v
        for k, v in execution_times(root).items()
        if v == v
    }
    if times:
        (root / TIMES_FILE).write_text(json.dumps(times, indent=1) + "\n")
    return result


# XLA's slow-operation alarm: a log line from slow_operation_alarm.cc, with the message
# between two rules of asterisks when it has one ("Very slow compile?", "Constant folding
# an instruction is taking > 1s", "The operation took 2m12s"). It reports a slow or loaded
# machine, not a wrong result, and a build on a busy machine must not fail for it.
_XLA_ALARM = re.compile(
    r"^[^\n]*slow_operation_alarm\.cc:\d+\][^\n]*(?:\n(?:[ \t]*\n)*\*{8,}\n.*?\n\*{8,})?\n?",
    re.M | re.S,
)


def output_problems(nb) -> list[tuple[int, str]]:
    """(code-cell index from 1, description) of every error output and stderr stream.

    An exception raised in a post-execute hook (matplotlib drawing a figure after the
    cell ran, say) leaves an error output without failing the cell's execution, so the
    executed notebooks are read back and such outputs count as failures too. XLA's
    slow-compile alarm (``_XLA_ALARM``) is the one thing on stderr that is not a problem.
    """
    found = []
    for i, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), 1):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                found.append((i, f"{o.get('ename', 'Error')}: {o.get('evalue', '')}".strip()))
            elif o.get("output_type") == "stream" and o.get("name") == "stderr":
                text = _XLA_ALARM.sub("", o.get("text", ""))
                if text.strip():
                    found.append((i, "wrote to stderr: " + text[:300]))
    return found


def executed_problems(root: Path) -> list[str]:
    """Failures found in the executed notebooks of a build (see :func:`output_problems`).

    It reads ``_build/jupyter_execute``, where ``book/_ext/notebook_download.py`` writes a
    chapter taken from the execution cache with its outputs (myst-nb 1.4 writes it without).
    """
    import nbformat

    out = []
    for ch in chapters(root):
        executed = root / "_build" / "jupyter_execute" / ch.with_suffix(".ipynb")
        if not is_notebook(root / ch) or not executed.exists():
            continue
        nb = nbformat.read(executed, as_version=4)
        for i, what in output_problems(nb):
            first = [c for c in nb.cells if c.cell_type == "code"][i - 1].source.strip()
            first = first.splitlines()[0][:70] if first else ""
            out.append(f"{ch}: code cell {i} (`{first}`) left an error output: {what}")
    return out


def execute_chapter(
    path: Path | str,
    *,
    timeout: int = 600,
    out: Path | str | None = None,
    env: dict[str, str] | None = None,
) -> float:
    """Execute one chapter in a fresh kernel (no Sphinx); raise naming the failing cell.

    With ``out``, the executed notebook is written there; ``env`` adds variables to the
    kernel's environment (``RLBOOK_SEED``, say).
    """
    import jupytext
    import nbformat
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = jupytext.read(path)
    t0 = time.perf_counter()
    try:
        with _kernel(nb, path.parent.resolve(), timeout) as client:
            client.execute(env=kernel_env(**(env or {})))
    except CellExecutionError as exc:
        code = [c for c in nb.cells if c.cell_type == "code"]
        idx = next(
            (
                i
                for i, c in enumerate(code, 1)
                if any(o.get("output_type") == "error" for o in c.get("outputs", []))
            ),
            None,
        )
        raise RuntimeError(f"{path}: code cell {idx} raised\n{exc}") from None
    problems = output_problems(nb)
    if problems:
        raise RuntimeError("\n".join(f"{path}: code cell {i}: {what}" for i, what in problems))
    seconds = time.perf_counter() - t0
    if out is not None:
        nbformat.write(nb, out)
    return seconds


def notebooks(root: Path | str = ".", out: Path | str | None = None) -> list[Path]:
    """Write every executable chapter as a plain ``.ipynb`` (jupytext) under ``out``."""
    import jupytext

    root = Path(root)
    out = Path(out) if out else root / "_build" / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for ch in chapters(root):
        if not is_notebook(root / ch):
            continue
        nb = jupytext.read(root / ch)
        target = out / ch.with_suffix(".ipynb").name
        jupytext.write(nb, target, fmt="ipynb")
        written.append(target)
    return written


def execution_times(root: Path | str = ".") -> dict[str, float]:
    """Seconds each chapter took to execute, from the jupyter-cache records."""
    from jupyter_cache import get_cache

    root = Path(root).resolve()
    cache = get_cache(root / CACHE_DIR)
    times = {}
    for rec in cache.list_cache_records():
        uri = Path(rec.uri)
        try:
            uri = uri.relative_to(root)
        except ValueError:
            pass
        times[str(uri)] = float(rec.data.get("execution_seconds", float("nan")))
    return times


# Each chapter's execution time in the last `make bench`, kept in the repository: a fresh
# clone has no build of its own to order its first build by.
BENCH_TIMES_FILE = Path(__file__).resolve().parent / "chapter_seconds.json"


def last_times(root: Path) -> dict[str, float]:
    """{chapter without suffix: seconds}: this checkout's last build, else the last bench."""
    for path in (root / TIMES_FILE, BENCH_TIMES_FILE):
        if path.exists():
            return json.loads(path.read_text())
    return {}


TEST_SECONDS_FILE = Path("_build") / "test-seconds.json"  # written by tests/conftest.py
BENCH_TOUCHED = "code/rlbook/agents/sac.py"  # the module whose change bench prices


def bench(root: Path | str = ".", *, figures: bool = True) -> dict:
    """A cold build (empty execution cache, empty XLA cache), each chapter's execution
    time split into JAX's compile stages and the rest, what a change to one agent module
    re-executes, the last ``make test``'s wall time, and (with ``figures``) every
    ``bench/*.py``'s ``run()``; written to ``_build/bench.json``."""
    import tempfile

    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="rlbook-bench-") as tmp:
        saved = os.environ.get("JAX_COMPILATION_CACHE_DIR")
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(Path(tmp) / "jax-cache")
        try:
            result = build(root, cold=True, compile_log=Path(tmp) / "compile")
        finally:
            if saved is None:
                os.environ.pop("JAX_COMPILATION_CACHE_DIR")
            else:
                os.environ["JAX_COMPILATION_CACHE_DIR"] = saved
        if not result.ok:
            raise SystemExit("bench: the build failed:\n" + "\n".join(result.failures))
        logs = {p.stem: json.loads(p.read_text()) for p in (Path(tmp) / "compile").glob("*.json")}
    times = execution_times(root)
    chapters_report = {}
    for ch, sec in sorted(times.items()):
        log = logs.get(Path(ch).stem, {})
        backend = log.get("/jax/core/compile/backend_compile_duration", 0.0)
        front = log.get("/jax/core/compile/jaxpr_trace_duration", 0.0) + log.get(
            "/jax/core/compile/jaxpr_to_mlir_module_duration", 0.0
        )
        chapters_report[ch] = {
            "seconds": round(sec, 1),
            "xla_compile": round(backend, 1),
            "trace_and_lower": round(front, 1),
            "rest": round(sec - backend - front, 1),
            "programs_compiled": int(log.get("/jax/compilation_cache/cache_misses (count)", 0)),
        }
    touched = root / BENCH_TOUCHED
    again = [
        str(c)
        for c in chapters(root)
        if is_notebook(root / c) and touched in chapter_modules(root, c)
    ]
    test_file = root / TEST_SECONDS_FILE
    report = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "jobs": jobs()},
        "build_seconds": round(result.seconds, 1),
        "chapter_seconds_total": round(sum(times.values()), 1),
        "chapters": chapters_report,
        "after_touching": {
            "module": BENCH_TOUCHED,
            "re_executes": again,
            "their_seconds": round(sum(times.get(c, 0.0) for c in again), 1),
        },
        "make_test_seconds": json.loads(test_file.read_text()) if test_file.exists() else None,
        "figures": {},
    }
    for script in sorted((root / "bench").glob("*.py")) if figures else []:
        spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"bench: running {script.relative_to(root)}", flush=True)
        report["figures"][script.stem] = module.run()
    (root / "_build" / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    BENCH_TIMES_FILE.write_text(
        json.dumps({Path(c).with_suffix("").as_posix(): round(t, 1) for c, t in times.items()})
        + "\n"
    )
    print(format_bench(report))
    return report


CALIBRATION_SEED = 1000  # calibration draws its seed sets away from the seeds builds use


def claim_chapters(root: Path | str = ".") -> list[Path]:
    """The chapters that state learning claims (call ``claims.check``)."""
    root = Path(root)
    return [
        c
        for c in chapters(root)
        if is_notebook(root / c) and "claims.check(" in (root / c).read_text()
    ]


def calibrate(
    root: Path | str = ".", *, sets: int = 20, only: list[Path] | None = None, jobs: int = 2
) -> dict:
    """Execute every claim-stating chapter on ``sets`` seed sets; merge the records.

    Each chapter runs in a fresh kernel with ``RLBOOK_SEED_SETS=sets`` and
    ``RLBOOK_SEED=CALIBRATION_SEED``; :func:`rlbook.claims.check` writes one record per
    claim under ``_build/calibration/``. The records of the chapters run replace theirs
    in ``book/calibration.json``; the others are kept.
    """
    from concurrent.futures import ThreadPoolExecutor

    from rlbook import claims

    if sets < 20:
        raise ValueError(f"sets must be at least 20, got {sets}")
    root = Path(root).resolve()
    todo = [Path(c) for c in only] if only else claim_chapters(root)
    out_root = root / "_build" / "calibration"

    def run(ch: Path):
        out = out_root / ch.stem
        shutil.rmtree(out, ignore_errors=True)
        env = {
            "RLBOOK_SEED_SETS": str(sets),
            "RLBOOK_SEED": str(CALIBRATION_SEED),
            claims.OUT_ENV: str(out),
        }
        t0 = time.perf_counter()
        print(f"calibrate: {ch} on {sets} seed sets ...", flush=True)
        execute_chapter(root / ch, timeout=6000, env=env)
        print(f"calibrate: {ch} done in {time.perf_counter() - t0:.0f} s", flush=True)
        return ch, out

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = list(pool.map(run, todo))
    import fcntl

    lock = open(root / "_build" / "calibration.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # calibrations of other chapters may merge too
    records = claims.load()
    for ch, out in done:
        records = {k: v for k, v in records.items() if v.get("chapter") != str(ch)}
        for f in sorted(out.glob("*.json")):
            rec = json.loads(f.read_text())
            rec["chapter"] = str(ch)
            records[rec.pop("name")] = rec
    records = dict(sorted(records.items()))
    claims.CALIBRATION.write_text(json.dumps(records, indent=1) + "\n")
    lock.close()
    for name, rec in records.items():
        m, mean, sd = claims.margin(rec["values"], rec["threshold"], rec["above"])
        flag = "" if m >= claims.MIN_MARGIN else "   <-- below the required margin"
        print(
            f"{name:<50} mean {mean:10.4g}  sd {sd:9.3g}  threshold "
            f"{'≥' if rec['above'] else '≤'} {rec['threshold']:<9.4g} margin {m:6.2f}{flag}"
        )
    return records


def format_bench(report: dict) -> str:
    head = f"{'chapter':<30} {'seconds':>8} {'XLA':>7} {'trace':>7} {'rest':>7} {'programs':>9}"
    rows = [head, "-" * len(head)]
    for ch, r in report["chapters"].items():
        rows.append(
            f"{ch:<30} {r['seconds']:>8.1f} {r['xla_compile']:>7.1f} "
            f"{r['trace_and_lower']:>7.1f} {r['rest']:>7.1f} {r['programs_compiled']:>9d}"
        )
    rows.append("-" * len(head))
    rows.append(f"{'chapters, one after another':<30} {report['chapter_seconds_total']:>8.1f}")
    jobs_ = report["machine"]["jobs"]
    rows.append(f"{f'whole build ({jobs_} at a time, Sphinx)':<30} {report['build_seconds']:>8.1f}")
    t = report["after_touching"]
    rows.append(
        f"\nafter a change to {t['module']}: {len(t['re_executes'])} chapter(s) re-execute "
        f"({', '.join(t['re_executes'])}; {t['their_seconds']:.0f} s of chapter time)"
    )
    if report.get("make_test_seconds"):
        rows.append(f"last make test: {report['make_test_seconds']}")
    for name, figs in report["figures"].items():
        rows.append(f"\n{name}:")
        rows.extend(f"  {k}: {v}" for k, v in figs.items())
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bookbuild", description=__doc__.split("\n")[0])
    ap.add_argument("--cold", action="store_true", help="empty the execution cache first")
    ap.add_argument("--bench", action="store_true", help="cold build, then _build/bench.json")
    ap.add_argument("--notebooks", action="store_true", help="write _build/notebooks/*.ipynb")
    ap.add_argument(
        "--chapter",
        type=Path,
        action="append",
        help="execute one chapter only, no HTML (with --calibrate: calibrate it)",
    )
    ap.add_argument(
        "--calibrate",
        action="store_true",
        help="calibrate the learning claims (book/calibration.json)",
    )
    ap.add_argument("--sets", type=int, default=20, help="seed sets for --calibrate")
    args = ap.parse_args(argv)
    root = Path.cwd()
    if args.calibrate:
        calibrate(root, sets=args.sets, only=args.chapter)
        return 0
    if args.notebooks:
        for p in notebooks(root):
            print(p)
        return 0
    if args.chapter:
        for ch in args.chapter:
            print(
                f"{ch}: executed in {execute_chapter(ch):.1f} s (RLBOOK_SEED="
                f"{os.environ.get('RLBOOK_SEED', '0')})"
            )
        return 0
    if args.bench:
        bench(root)
        return 0
    result = build(root, cold=args.cold)
    if not result.ok:
        print(
            "\nThe build failed:",
            *result.failures,
            f"(Sphinx's whole log: {LOG_FILE})",
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    print(f"\nbookbuild: built _build/html in {result.seconds:.0f} s")
    return 0
