import json
import os
import time
from pathlib import Path

import jax
import pytest

# What `import rlbook` sets, before JAX starts its CPU client (rlbook/__init__.py): the
# one-thread pool and XLA's optimization level 1, so the tests compile the programs the
# chapters compile, and share their compilation cache.
import rlbook  # noqa: F401  (imported for its environment defaults)

# Unit tests check exact identities to tight tolerances: double precision throughout.
jax.config.update("jax_enable_x64", True)

ROOT = Path(__file__).resolve().parents[1]
# The persistent compilation cache the chapter kernels share (bookbuild.JAX_CACHE):
# a second run of the tests reads its programs back instead of compiling them.
jax.config.update("jax_compilation_cache_dir", str(ROOT / "_build" / "jax-cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
# Written when the browser test could not run, so that `make test` says so at its end.
BROWSER_SKIPPED = ROOT / "_build" / "browser-skipped.txt"


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


@pytest.fixture(scope="session")
def built_book():
    """A cold build of the whole book into _build/html, shared by every test that reads it.

    ``RLBOOK_TEST_BUILT=1`` takes the ``_build/html`` already there (from
    ``python -m bookbuild``) instead: for working on the tests that read the built book.
    """
    import bookbuild as book

    if os.environ.get("RLBOOK_TEST_BUILT") == "1" and (ROOT / "_build/html/index.html").exists():
        return book.BuildResult(0, "", 0.0)
    result = book.build(ROOT, cold=not book.reuse_cache(), quiet=True)
    return result


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def browser_unavailable():
    """Call with the reason the browser test cannot run: a skip locally, a failure in CI."""

    def give_up(reason: str):
        if _in_ci():
            pytest.fail(f"the browser test cannot run in CI: {reason}", pytrace=False)
        BROWSER_SKIPPED.parent.mkdir(parents=True, exist_ok=True)
        BROWSER_SKIPPED.write_text(
            "The browser test of the rendered book was SKIPPED:\n"
            f"  {reason}\n"
            "  Then run `make test` again (CI installs Chromium itself: see .ci/run).\n"
        )
        pytest.skip(reason)

    return give_up


EXTERNAL_LINKS = ROOT / "_build" / "external-links.txt"  # written by tests/test_browser.py


def pytest_sessionstart(session):
    BROWSER_SKIPPED.unlink(missing_ok=True)
    EXTERNAL_LINKS.unlink(missing_ok=True)
    session.config._rlbook_t0 = time.time()


def pytest_sessionfinish(session, exitstatus):
    """After a session that built the book (``make test``), its wall time and outcome go
    to ``_build/test-seconds.json``, which ``make bench`` reports."""
    import bookbuild as book

    ran_book = any(item.get_closest_marker("book") for item in session.items)
    if not ran_book or not hasattr(session.config, "_rlbook_t0"):
        return
    out = ROOT / book.TEST_SECONDS_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "seconds": round(time.time() - session.config._rlbook_t0, 1),
        "tests": len(session.items),
        "failed": session.testsfailed,
        "jobs": book.jobs(),
    }
    out.write_text(json.dumps(record) + "\n")


def pytest_terminal_summary(terminalreporter):
    if EXTERNAL_LINKS.exists():
        n = len(EXTERNAL_LINKS.read_text().splitlines())
        terminalreporter.write_line(
            f"external links of the built book (listed, not fetched): {n}, "
            f"in {EXTERNAL_LINKS.relative_to(ROOT)}"
        )
