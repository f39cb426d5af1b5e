"""Every chapter's checks hold on a second random stream.

The cold build (``built_book``) executes the book at the build seed (``RLBOOK_SEED``,
default 0). This test executes every chapter once more, in a fresh kernel, at another
build seed: ``RLBOOK_SECOND_SEED``, or the build seed plus one. Every key and generator
of a chapter derives from the build seed (:mod:`rlbook.seeds`), so this is a different
random stream for every check of the book, and every check must pass on it. Learning
claims must also keep their calibrated margin (:mod:`rlbook.claims`).

(The same-seed determinism comparison is ``make reproduce``: tests/test_reproducible.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import bookbuild as book
from rlbook import seeds

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [c for c in book.chapters(ROOT) if book.is_notebook(ROOT / c)]


def second_seed() -> int:
    raw = os.environ.get("RLBOOK_SECOND_SEED", "").strip()
    seed = int(raw) if raw else seeds.build_seed() + 1
    if seed == seeds.build_seed():
        raise ValueError("RLBOOK_SECOND_SEED must differ from RLBOOK_SEED")
    return seed


def test_the_second_seed_differs_from_the_build_seed(monkeypatch):
    monkeypatch.setenv("RLBOOK_SEED", "4")
    monkeypatch.delenv("RLBOOK_SECOND_SEED", raising=False)
    assert second_seed() == 5
    monkeypatch.setenv("RLBOOK_SECOND_SEED", "4")
    with pytest.raises(ValueError, match="RLBOOK_SECOND_SEED"):
        second_seed()


@pytest.fixture(scope="module")
def second_runs(built_book):
    """Every chapter executed at the second seed, ``bookbuild.jobs()`` at a time, longest
    first (by the build's times); {chapter: future}. After the cold build, so that the
    compilation cache it filled is reused."""
    from concurrent.futures import ThreadPoolExecutor

    times = book.last_times(ROOT)
    order = sorted(CHAPTERS, key=lambda c: -times.get(c.with_suffix("").as_posix(), 0.0))
    env = {"RLBOOK_SEED": str(second_seed())}
    pool = ThreadPoolExecutor(max_workers=book.jobs())
    futures = {str(c): pool.submit(book.execute_chapter, ROOT / c, env=env) for c in order}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.book
@pytest.mark.parametrize("chapter", [str(c) for c in CHAPTERS])
def test_every_check_holds_at_a_second_seed(second_runs, chapter):
    second_runs[chapter].result()
