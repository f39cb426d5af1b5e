# The book's commands. Everything runs inside .venv, made from the lock.
#   make book       build _build/html, every cell executed (cached locally)
#   make test       unit tests, a cold build of the book as a test (RLBOOK_SEED, default 0),
#                   the built book in headless Chromium (Debian's `chromium` package), and
#                   every chapter executed once more at another seed (RLBOOK_SECOND_SEED,
#                   default RLBOOK_SEED + 1): every check must pass on both streams
#   make lint       ruff's lint and format check (code, bookbuild, tests, bench, book/_ext); make test runs it first
#   make unit       the tests that need no built book and no browser (make test's first part)
#   make reproduce  a cold build, then every chapter executed again at the same seed and
#                   compared with the build's outputs cell by cell; and the XLA:CPU deadlock
#                   that rlbook's one-thread pool avoids, still there in the locked jaxlib
#   make calibrate  every learning claim on 20 independent seed sets (book/calibration.json)
#   make bench      a cold build's execution time per chapter, split into compiling and the
#                   rest (_build/bench.json)
#   make notebooks  every chapter as a plain .ipynb in _build/notebooks
#   make lock       regenerate requirements.txt from pyproject.toml
# Chapters execute RLBOOK_JOBS at a time (default: one per CPU, at most four).

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
UV       := $(BIN)/uv
UV_VERSION := 0.13.9
STAMP    := $(VENV)/.installed
CHAPTERS := $(shell find book -name '*.md' -not -path '*/_*')
# Written by tests/conftest.py when the browser test was skipped (no Chromium).
SKIPPED  := _build/browser-skipped.txt

export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: book test lint unit bench notebooks lock clean venv reproduce calibrate

venv: $(STAMP)

$(UV):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): requirements.txt pyproject.toml | $(UV)
	$(UV) pip sync --python $(BIN)/python requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

book: $(STAMP)
	$(BIN)/python -m bookbuild

test: $(STAMP) lint
	@rm -f $(SKIPPED)
	$(BIN)/python -m pytest -m "not reproduce" || status=$$?; \
	if [ -f $(SKIPPED) ]; then echo; cat $(SKIPPED); fi; exit $${status:-0}

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not book and not browser and not reproduce"

lint: $(STAMP)
	$(BIN)/ruff check code bookbuild tests bench book/_ext
	$(BIN)/ruff format --check code bookbuild tests bench book/_ext

reproduce: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -m reproduce tests/test_reproducible.py tests/test_runtime.py

bench: $(STAMP)
	$(BIN)/python -m bookbuild --cold --bench

notebooks: $(STAMP)
	$(BIN)/python -m bookbuild --notebooks

lock: | $(UV)
	$(UV) pip compile pyproject.toml --all-extras --python-version 3.11 \
	    --output-file requirements.txt \
	    --custom-compile-command "make lock"
	echo "-e ." >> requirements.txt

clean:
	rm -rf _build

# The learning claims on 20 independent seed sets each (book/calibration.json); one
# chapter: make calibrate CHAPTER=book/trust_regions.md
calibrate: $(STAMP)
	$(BIN)/python -m bookbuild --calibrate $(if $(CHAPTER),--chapter $(CHAPTER))
