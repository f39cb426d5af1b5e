"""The rendered book, read in a real browser.

A build that passes `-W -n` can still show a reader raw TeX where MathJax failed,
a broken image, an empty algorithm block or a dead notebook link. These tests serve
``_build/html`` on a loopback port from a thread and open every page of ``_toc.yml``
in one headless Chromium (Debian's ``chromium`` package, driven by Playwright's
Python package; never a downloaded browser build). For each page they check that

- it loads with no console error, no uncaught exception and no failed request;
- MathJax rendered every equation: each of Sphinx's math nodes holds MathJax output,
  no equation is a MathJax error or shows an undefined macro, and no raw ``$$``,
  ``\\begin{...}``, ``\\(`` or ``\\[`` is left in the visible text (code excluded);
- every image loaded (natural width > 0);
- every ``{prf:...}`` block shows its kind and number (a proof its "Proof") and
  has a body;
- every link in the article resolves to an existing page and anchor;
- an executed chapter's download menu offers its ``.ipynb``, and the link returns
  that chapter's notebook, executed (valid nbformat, the chapter's code cells);

and they save a full-page screenshot of each page under ``_build/screenshots/``.
The search page must find each chapter by a word of it, and every internal link of
the whole built site must resolve (external links are listed in
``_build/external-links.txt``, never fetched).

The book is self-contained (MathJax is served from its ``_static``): every request
off the loopback server is refused and reported, so a page that needs the network
to render fails here as it would for a reader offline.

``tests/fixtures/broken_book`` is a small book whose pages are each broken in one of
those ways, and which the `-W -n` build accepts; ``test_the_checks_fail_on_broken_pages``
shows that the same checks fail on each of them and pass on a correct page.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import threading
from collections import Counter
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import jupytext
import nbformat
import pytest

import bookbuild as book

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
EXTERNAL_LINKS = ROOT / "_build" / "external-links.txt"
FIXTURE_BOOK = Path(__file__).resolve().parent / "fixtures" / "broken_book"

PAGES = [str(p.with_suffix("")) for p in book.chapters(ROOT)]

pytestmark = pytest.mark.browser


# --------------------------------------------------------------------------- serving


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no access log on the test's output
        pass


class Site:
    """A built book served on 127.0.0.1 from a daemon thread, and one browser context on it."""

    def __init__(self, root: Path):
        self.root = Path(root)
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.ids = AnchorIndex(self.root)
        self.external: list[str] = []  # requests off the site that were refused
        self._context = None

    def context(self, browser):
        """The browser context that reads this site; nothing off the site is fetched."""
        if self._context is None:
            self._context = browser.new_context(viewport={"width": 1280, "height": 900})
            # Only requests off the loopback site reach Python (a pattern the driver evaluates).
            off_site = re.compile("^(?!" + re.escape(self.url) + ")")
            self._context.route(off_site, _route(self.external))
            # Every page is read as on a first visit (the theme keeps settings there).
            self._context.add_init_script("try { localStorage.clear(); } catch (e) {}")
        return self._context

    def close(self):
        if self._context is not None:
            self._context.close()
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- static HTML


class _Links(HTMLParser):
    """The ids and the link targets of one HTML file."""

    ATTRS = {
        "a": "href",
        "link": "href",
        "img": "src",
        "script": "src",
        "source": "src",
        "iframe": "src",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        target = attrs.get(self.ATTRS.get(tag, ""))
        if target and not (tag == "link" and "preconnect" in (attrs.get("rel") or "")):
            self.links.append(target)


class AnchorIndex:
    """Ids of every HTML file of a built site, parsed once per file on demand."""

    def __init__(self, root: Path):
        self.root = root
        self._cache: dict[Path, _Links] = {}

    def parse(self, path: Path) -> _Links:
        if path not in self._cache:
            parser = _Links()
            parser.feed(path.read_text(encoding="utf-8", errors="replace"))
            self._cache[path] = parser
        return self._cache[path]

    def resolve(self, source: Path, link: str) -> str | None:
        """None when ``link`` (found in ``source``) resolves inside the site, else why not."""
        parts = urlsplit(link)
        if parts.path:
            target = (source.parent / unquote(parts.path)).resolve()
            if link.startswith("/"):
                target = (self.root / unquote(parts.path).lstrip("/")).resolve()
        else:
            target = source.resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(self.root.resolve()):
            return "points outside the site"
        if not target.is_file():
            return "no such file"
        fragment = unquote(parts.fragment)
        if fragment and target.suffix == ".html" and fragment not in self.parse(target).ids:
            return f"no anchor #{fragment} in {target.relative_to(self.root.resolve())}"
        return None


def is_external(link: str) -> bool:
    return bool(urlsplit(link).scheme or link.startswith("//"))


# --------------------------------------------------------------------------- the browser

CHROMIUM = Path(os.environ.get("RLBOOK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    # as root in a container, without a GPU, and quiet on a machine with no network
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
INSTALL = (
    "install Debian's Chromium (`sudo apt-get update && sudo apt-get install -y "
    "chromium`, which puts it at /usr/bin/chromium; or set RLBOOK_CHROMIUM to its path)"
)


def missing_requirements() -> str | None:
    """Why the browser test cannot run here, with what to do about it; None if it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is missing from .venv: run `make venv`"
    if not CHROMIUM.is_file():
        return f"Chromium was not found at {CHROMIUM}: {INSTALL}"
    return None


@pytest.fixture(scope="session")
def browser(browser_unavailable):
    """One headless Chromium for the whole session."""
    reason = missing_requirements()
    if reason:
        browser_unavailable(reason)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    pw.stop()


@pytest.fixture(scope="session")
def site(built_book, browser):
    s = Site(HTML)
    yield s
    s.close()


def _route(external: list[str]):
    """Requests off the site are refused (the machine has no network) and recorded."""

    def handle(route):
        url = route.request.url
        if url.startswith(("data:", "blob:")):
            return route.continue_()
        external.append(url)
        return route.abort()

    return handle


# The page's visible text outside code and MathJax output, as (text, enclosing tag) pairs.
_VISIBLE_TEXT = """() => {
  const skip = 'PRE, CODE, SCRIPT, STYLE, TEXTAREA, MJX-CONTAINER, NOSCRIPT, TEMPLATE';
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !el || el.closest(skip)) continue;
    if (el.checkVisibility && !el.checkVisibility()) continue;
    out.push(node.textContent);
  }
  return out.join('\\n');
}"""

_MATH = """async () => {
  const nodes = [...document.querySelectorAll('span.math, div.math')];
  const tex = el => el.textContent.trim().slice(0, 80);
  const result = {count: nodes.length, unrendered: [], errors: []};
  if (!nodes.length) return result;
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
    result.unrendered = nodes.map(tex);
    result.noMathJax = true;
    return result;
  }
  await MathJax.startup.promise;
  result.unrendered = nodes.filter(el => !el.querySelector('mjx-container')).map(tex);
  for (const item of MathJax.startup.document.math) {
    const mml = MathJax.startup.toMML(item.root);
    const undefinedMacro = mml.match(/<mtext[^>]*mathcolor="red"[^>]*>([^<]*)</);
    if (/<merror/.test(mml)) {
      const message = (mml.match(/<mtext>([^<]*)<\\/mtext>/) || [])[1] || 'MathJax error';
      result.errors.push(message + ' in ' + item.math.trim().slice(0, 80));
    } else if (undefinedMacro) {
      result.errors.push('undefined macro ' + undefinedMacro[1] + ' in '
                         + item.math.trim().slice(0, 80));
    }
  }
  return result;
}"""

_IMAGES = """async () => {
  const imgs = [...document.images];
  imgs.forEach(img => { img.loading = 'eager'; });
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener('load', done); img.addEventListener('error', done);
    setTimeout(done, 15000);
  })));
  return {count: imgs.length,
          broken: imgs.filter(img => !(img.naturalWidth > 0)).map(img => img.getAttribute('src'))};
}"""

_PROOFS = """() => [...document.querySelectorAll('div.proof')].map(div => {
  const title = div.querySelector(':scope > .admonition-title');
  const body = div.querySelector(':scope > section');
  const kind = [...div.classList].find(c => c !== 'proof' && c !== 'admonition') || 'proof';
  return {id: div.id, kind,
          title: title ? title.innerText.trim() : '',
          titleVisible: title ? title.checkVisibility() : false,
          body: body ? body.innerText.trim() : '',
          text: div.innerText.trim(), visible: div.checkVisibility()};
})"""

# Every solution (sphinx-exercise) as the page first shows it: a dropdown, collapsed, and
# how many of its code cells show an output; and every exercise on the page.
_SOLUTIONS = """() => ({
  exercises: [...document.querySelectorAll('div.exercise.admonition')].map(d => d.id),
  solutions: [...document.querySelectorAll('div.solution.admonition')].map(div => {
    const body = div.querySelector(':scope > section');
    const link = div.querySelector(':scope > .admonition-title a[href^="#"]');
    return {id: div.id, dropdown: div.classList.contains('dropdown'),
            shown: body ? body.checkVisibility({visibilityProperty: true})
                          && body.getBoundingClientRect().height > 0 : false,
            cells: div.querySelectorAll('.cell').length,
            outputs: [...div.querySelectorAll('.cell_output')].filter(
              o => o.textContent.trim() || o.querySelector('img')).length,
            exercise: link ? link.getAttribute('href').slice(1) : null};
  })
})"""

# sphinx-togglebutton hides a collapsed admonition's body with `visibility: hidden` and
# zero height, and opens it with a transition.
_SHOWN = """(id) => {
  const body = document.getElementById(id).querySelector(':scope > section');
  return body ? body.checkVisibility({visibilityProperty: true})
                && body.getBoundingClientRect().height > 0 : false;
}"""

# A reference to another part of the book written as plain text ("the chapter on …",
# "the next chapter") instead of a link: prose only, outside links and code.
_PLAIN_REFS = r"""() => {
  const main = document.querySelector('article') || document.body;
  const pattern = new RegExp('\\b(?:' + [
    'chapters? on', 'sections? on', 'chapters? that follows?',
    '(?:next|previous|following|preceding) (?:chapter|section)',
  ].join('|') + ')\\b', 'i');
  const found = [];
  const walk = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  for (let node = walk.nextNode(); node; node = walk.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest('a, pre, code, .cell_output, .MathJax, mjx-container')) continue;
    const text = node.textContent, m = text.match(pattern);
    if (m) found.push(text.slice(Math.max(0, m.index - 30), m.index + 50).replace(/\s+/g, ' '));
  }
  return found;
}"""

_ARTICLE_LINKS = """() => {
  const main = document.querySelector('article') || document.body;
  return [...main.querySelectorAll('a[href]')].map(a => ({href: a.getAttribute('href'),
    url: a.href, text: a.innerText.trim(), internal: a.classList.contains('internal')}));
}"""

# An API entry (autoapi's <dt id="rlbook.m.name">): on the page, visible, and followed by its
# description with the docstring's text (its first paragraph, not only the signature's).
_API_ENTRIES = """(ids) => ids.map(id => {
  const dt = document.getElementById(id);
  if (!dt) return {id, missing: true};
  const dd = dt.nextElementSibling;
  const para = dd && dd.tagName === 'DD' ? dd.querySelector(':scope > p') : null;
  return {id, missing: false, visible: dt.checkVisibility(),
          doc: para ? para.innerText.trim().length > 0 && para.checkVisibility() : false};
})"""

# Console errors of the page templates that every page shows, with why they are let through.
# Console messages that are not the book's fault and cannot be fixed here. Empty: the two
# the theme stack used to emit are fixed by book/_ext/theme_fixes.py.
KNOWN_CONSOLE_ERRORS: set[str] = set()

# A cell that makes a matplotlib figure (and does not close it) must show an image.
# rlbook.plotting's drawing functions (mean_and_band only computes the band, draws nothing)
MAKES_FIGURE = re.compile(
    r"\bplt\.(?:subplots|subplot|figure)\s*\("
    r"|\bplotting\.(?:axes|learning_curve|violin)\s*\("
)

RAW_TEX = [
    (re.compile(r"\$\$"), "raw $$"),
    (re.compile(r"\\(begin|end)\{[a-zA-Z*]+\}"), "raw \\begin/\\end"),
    (re.compile(r"\\[(\[]|\\[)\]]"), "raw \\( \\) or \\[ \\]"),
    (re.compile(r"(?<![\w$])\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$"), "raw $...$ TeX"),
]


def check_page(
    browser,
    site: Site,
    page: str,
    *,
    source: Path | None,
    screenshot: Path | None = None,
    seen: Counter | None = None,
    api_names: list[str] | None = None,
) -> list[str]:
    """Everything wrong with ``page`` (a TOC entry, e.g. ``book/intro``) as a reader sees it.

    ``source`` is the chapter's MyST file; when it is an executable notebook, its page
    must offer the executed notebook for download. ``api_names`` are the dotted names an
    API page must show, each with its docstring. ``seen`` counts what was checked.
    """
    seen = Counter() if seen is None else seen
    problems: list[str] = []
    html_file = site.root / f"{page}.html"
    if not html_file.is_file():
        return [f"{page}.html was not built"]
    context = site.context(browser)
    del site.external[:]
    tab = context.new_page()
    tab.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    tab.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
    tab.on(
        "requestfailed",
        lambda r: (
            r.url.startswith(site.url)
            and problems.append(f"request failed: {r.url[len(site.url) :]} ({r.failure})")
        ),
    )
    tab.on(
        "response",
        lambda r: (
            r.status >= 400
            and problems.append(f"HTTP {r.status} for {r.url.removeprefix(site.url)}")
        ),
    )
    try:
        tab.goto(site.url + f"{page}.html", wait_until="load")

        math = tab.evaluate(_MATH)
        seen["equations"] += math["count"]
        if math.get("noMathJax"):
            problems.append(f"MathJax never loaded: {math['count']} equations left as TeX")
        elif math["unrendered"]:
            problems.append(
                f"{len(math['unrendered'])} of {math['count']} equations not rendered "
                f"by MathJax, first: {math['unrendered'][0]!r}"
            )
        problems += [f"math error: {e}" for e in math["errors"]]
        text = tab.evaluate(_VISIBLE_TEXT)
        for pattern, what in RAW_TEX:
            for m in list(pattern.finditer(text))[:1]:
                context_text = text[max(0, m.start() - 40) : m.end() + 40].replace("\n", " ")
                problems.append(f"{what} left in the visible text: …{context_text}…")

        images = tab.evaluate(_IMAGES)
        seen["images"] += images["count"]
        problems += [f"image did not load: {src}" for src in images["broken"]]

        for block in tab.evaluate(_PROOFS):
            seen["prf blocks"] += 1
            where = f"{{prf:{block['kind']}}} #{block['id']}"
            if block["kind"] == "proof":
                if not block["text"].startswith("Proof") or len(block["text"]) <= len("Proof."):
                    problems.append(f"{where}: not rendered as a proof with a body")
                continue
            kind = block["kind"].capitalize()
            if not re.match(rf"{kind} \d+(\.\d+)*\b", block["title"]):
                problems.append(f"{where}: its title {block['title']!r} is not '{kind} <number>'")
            elif not block["titleVisible"]:
                problems.append(f"{where}: its title is not visible")
            if not block["body"]:
                problems.append(f"{where} ({block['title']}): the block is empty")

        exercises = tab.evaluate(_SOLUTIONS)
        seen["exercises"] += len(exercises["exercises"])
        answered = {sol["exercise"] for sol in exercises["solutions"]}
        problems += [
            f"exercise #{e} has no solution on its page"
            for e in exercises["exercises"]
            if e not in answered
        ]
        for sol in exercises["solutions"]:
            seen["solutions"] += 1
            where = f"solution #{sol['id']}"
            if not sol["dropdown"] or sol["shown"]:
                problems.append(f"{where} is open before the reader asks (not collapsed)")
            else:
                tab.locator(f'[id="{sol["id"]}"] > .admonition-title').click()
                try:
                    tab.wait_for_function(_SHOWN, arg=sol["id"], timeout=5000)
                except Exception:  # playwright's TimeoutError
                    problems.append(f"{where} does not open when its title is clicked")
            if sol["cells"] and not sol["outputs"]:
                problems.append(f"{where}: its {sol['cells']} code cell(s) show no executed output")
            seen["solution outputs"] += sol["outputs"]

        problems += [
            f"a reference to another part of the book in plain text, not a link: …{t}…"
            for t in tab.evaluate(_PLAIN_REFS)
        ]

        for link in tab.evaluate(_ARTICLE_LINKS):
            if not link["url"].startswith(site.url):
                continue
            seen["links"] += 1
            why = site.ids.resolve(html_file, link["href"])
            if why:
                problems.append(f"link {link['href']!r} ({link['text'][:40]!r}): {why}")
            elif link["internal"] and not link["text"]:
                problems.append(f"cross-reference {link['href']!r} has no text")

        for entry in tab.evaluate(_API_ENTRIES, api_names or []):
            seen["api entries"] += 1
            if entry["missing"]:
                problems.append(f"API entry {entry['id']} is not on the page")
            elif not entry["visible"]:
                problems.append(f"API entry {entry['id']} is not visible")
            elif not entry["doc"]:
                problems.append(f"API entry {entry['id']} shows no docstring")

        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=screenshot, full_page=True)

        if source is not None and book.is_notebook(source):
            problems += _check_download(tab, context, source)
            seen["notebooks"] += 1
    finally:
        tab.close()
    problems += [f"request off the site refused: {url}" for url in sorted(set(site.external))]
    return [p for p in problems if p not in KNOWN_CONSOLE_ERRORS]


def _check_download(tab, context, source: Path) -> list[str]:
    link = tab.locator("a.btn-download-notebook-button")
    if link.count() != 1:
        return [f"the download menu offers no .ipynb (found {link.count()} links)"]
    tab.locator(".dropdown-download-buttons button.dropdown-toggle").click()
    try:
        link.wait_for(state="visible", timeout=5000)
    except Exception:
        return ["the download menu does not show its .ipynb entry when opened"]
    url = urljoin(tab.url, link.get_attribute("href"))
    response = context.request.get(url)
    if response.status != 200:
        return [f"the notebook link {link.get_attribute('href')} returns HTTP {response.status}"]
    try:
        nb = nbformat.reads(response.text(), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # anything that is not a valid notebook
        return [f"the notebook link returns no valid notebook: {type(exc).__name__}: {exc}"[:300]]
    cells = [c for c in nb.cells if c.cell_type == "code"]
    expected = [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]
    if [c.source for c in cells] != expected:
        return ["the downloaded notebook's code cells are not the chapter's"]
    unexecuted = [i for i, c in enumerate(cells, 1) if c.get("execution_count") is None]
    if unexecuted:
        return [
            f"the downloaded notebook was not executed (code cells {unexecuted[:5]} "
            "have no execution count)"
        ]
    return [
        f"code cell {i} makes a figure but shows none (`{c.source.splitlines()[0][:60]}`)"
        for i, c in enumerate(cells, 1)
        if MAKES_FIGURE.search(c.source)
        and "plt.close" not in c.source
        and not any(k.startswith("image/") for o in c.outputs for k in o.get("data", {}))
    ]


# --------------------------------------------------------------------------- the book


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_the_browser(browser, site, page):
    problems = check_page(
        browser,
        site,
        page,
        source=ROOT / f"{page}.md",
        screenshot=SCREENSHOTS / f"{page.replace('/', '_')}.png",
    )
    assert not problems, f"{page}.html:\n  " + "\n  ".join(problems)


def _api_pages() -> list[tuple[str, list[str]]]:
    """(API page, the dotted names it must show) for every public module of rlbook."""
    import importlib
    import pkgutil

    import rlbook

    modules = [rlbook] + [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(rlbook.__path__, "rlbook.")
        if not any(part.startswith("_") for part in m.name.split("."))
    ]
    return [
        (
            "autoapi/" + "/".join(m.__name__.split(".")) + "/index",
            [f"{m.__name__}.{n}" for n in getattr(m, "__all__", [])],
        )
        for m in modules
    ]


@pytest.mark.parametrize("page, names", _api_pages(), ids=lambda x: x if isinstance(x, str) else "")
def test_api_page_renders_every_public_name_with_its_docstring(browser, site, page, names):
    """Each module's API page, as a reader opens it from the navigation: the generic checks
    (console, math, links, images) and an entry with a visible docstring for every public name."""
    seen = Counter()
    problems = check_page(
        browser,
        site,
        page,
        source=None,
        seen=seen,
        api_names=names,
    )
    assert not problems, f"{page}.html:\n  " + "\n  ".join(problems)
    assert seen["api entries"] == len(names)


# A chapter's frame as a reader sees it: the opening (what comes between the title and the
# first section), the Summary and the Further reading sections.
_FRAME = """() => {
  const h1 = document.querySelector('article h1');
  if (!h1) return null;
  const opening = [];
  for (const el of h1.closest('section').children) {
    if (el.tagName === 'SECTION') break;
    if (el !== h1) opening.push(el);
  }
  const links = opening.flatMap(el => [...el.querySelectorAll('a[href]')]).map(a => a.href);
  const text = opening.map(el => el.innerText).join(' ').trim();
  const sec = id => document.getElementById(id);
  const body = el => el ? [...el.children].filter(c => !/^H[1-6]$/.test(c.tagName))
                                          .map(c => c.innerText).join(' ').trim() : '';
  const further = sec('further-reading');
  return {opening: text.length, links, summary: body(sec('summary')).length,
          further: further ? further.querySelectorAll('a[href*="bibliography.html"]').length : 0,
          visible: [h1, sec('summary'), further].every(e => e && e.checkVisibility())};
}"""

DERIVATION_CHAPTERS = [str(c.with_suffix("")) for c in book.derivation_chapters(ROOT)]


@pytest.mark.parametrize("page", DERIVATION_CHAPTERS)
def test_each_chapter_opens_with_what_it_uses_and_closes_with_a_summary(browser, site, page):
    """Each chapter of the book's parts opens (before its first section) with what it shows
    and links to the chapters it stands on or that stand on it (the book's first chapter
    needs none), and closes with a Summary and a Further reading that cites the
    bibliography."""
    tab = site.context(browser).new_page()
    try:
        tab.goto(site.url + f"{page}.html", wait_until="load")
        frame = tab.evaluate(_FRAME)
    finally:
        tab.close()
    assert frame is not None, f"{page}: no title"
    problems = []
    if frame["opening"] < 300:
        problems.append(f"the opening is {frame['opening']} characters, not a paragraph")
    # where it stands among the others: the chapters it uses, or (the first chapter of a
    # part, which uses none) the ones that build on it; the book's first chapter may link none
    others = {site.url + f"{p}.html" for p in DERIVATION_CHAPTERS if p != page}
    linked = {link.split("#")[0] for link in frame["links"]}
    if page != DERIVATION_CHAPTERS[0] and not linked & others:
        problems.append("the opening links no other chapter of the book")
    if frame["summary"] < 200:
        problems.append(f"the Summary has {frame['summary']} characters of text")
    if frame["further"] < 2:
        problems.append(f"Further reading cites {frame['further']} works of the bibliography")
    if not frame["visible"]:
        problems.append("the title, the Summary or the Further reading is not visible")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def _article_words(path: Path) -> list[str]:
    """The words of a page's prose (paragraphs and list items of its article)."""

    class Prose(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.depth = {"article": 0, "p": 0, "li": 0, "skip": 0}
            self.words: list[str] = []

        def handle_starttag(self, tag, attrs):
            classes = (dict(attrs).get("class") or "").split()
            if tag in ("article", "p", "li"):
                self.depth[tag] += 1
            if tag in ("pre", "code", "script", "style") or "math" in classes or self.depth["skip"]:
                self.depth["skip"] += 1

        def handle_endtag(self, tag):
            if tag in ("article", "p", "li"):
                self.depth[tag] = max(0, self.depth[tag] - 1)
            if self.depth["skip"] and (tag in ("pre", "code", "script", "style", "span", "div")):
                self.depth["skip"] -= 1

        def handle_data(self, data):
            if (
                self.depth["article"]
                and (self.depth["p"] or self.depth["li"])
                and not self.depth["skip"]
            ):
                self.words += re.findall(r"\b[A-Za-z]{6,}\b", data)

    parser = Prose()
    parser.feed(path.read_text(encoding="utf-8"))
    return [w.lower() for w in parser.words]


@pytest.mark.parametrize("page", PAGES)
def test_search_finds_the_chapter_by_a_word_in_it(browser, site, page):
    words = {
        p: set(_article_words(HTML / f"{p}.html")) for p in PAGES if (HTML / f"{p}.html").is_file()
    }
    assert words.get(page), f"{page}.html has no prose to search for"
    frequency = Counter(w for ws in words.values() for w in ws)
    word = min(words[page], key=lambda w: (frequency[w], -len(w), w))  # rarest, longest
    tab = site.context(browser).new_page()
    try:
        tab.goto(site.url + f"search.html?q={word}", wait_until="load")
        summary = tab.locator("#search-results p.search-summary")
        tab.wait_for_function(
            "() => document.querySelector('#search-results p.search-summary')?.innerText",
            timeout=20000,
        )
        hrefs = tab.eval_on_selector_all("#search-results ul.search a", "as => as.map(a => a.href)")
        found = [urlsplit(h).path.lstrip("/") for h in hrefs]
        assert f"{page}.html" in found, (
            f"searching for {word!r} (a word of {page}) found "
            f"{found or 'nothing'}: {summary.inner_text()!r}"
        )
    finally:
        tab.close()


def test_every_internal_link_of_the_site_resolves(built_book):
    """Every href/src of every built HTML page points to an existing file and anchor."""
    index = AnchorIndex(HTML)
    broken, external = [], set()
    pages = sorted(p for p in HTML.rglob("*.html") if "_static" not in p.relative_to(HTML).parts)
    assert pages, "no HTML was built"
    for path in pages:
        for link in index.parse(path).links:
            if link.startswith(("javascript:", "data:")) or link == "#":
                continue
            if is_external(link):
                external.add(link)
                continue
            why = index.resolve(path, link)
            if why:
                broken.append(f"{path.relative_to(HTML)}: {link}: {why}")
    EXTERNAL_LINKS.write_text("".join(f"{u}\n" for u in sorted(external)))
    assert not broken, f"{len(broken)} broken internal links:\n  " + "\n  ".join(broken[:50])


# --------------------------------------------------------------------------- the fixtures

EXPECTED = {  # page of the fixture book -> what the checks must report
    "book/good": None,
    "book/broken_math": ["undefined macro \\Expect", "raw $$ left in the visible text"],
    "book/broken_image": [
        "image did not load: ../_images/broken.png",
        "code cell 1 makes a figure but shows none",
    ],
    "book/broken_algorithm": ["{prf:algorithm} #broken-alg-empty", "the block is empty"],
    "book/broken_exercise": [
        "exercise #broken-ex-unanswered has no solution on its page",
        "is open before the reader asks",
        "code cell(s) show no executed output",
    ],
    "book/broken_reference": [
        "a reference to another part of the book in plain text, not a link: …",
        "next chapter, however",
    ],
    "book/unexecuted_download": ["the downloaded notebook was not executed"],
    "book/dead_download": [
        "the notebook link ../_sources/book/dead_download.ipynb returns HTTP 404"
    ],
}


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory, browser):
    """The fixture book, built with this book's configuration and `-W -n`."""
    tmp = tmp_path_factory.mktemp("broken_book")
    shutil.copytree(FIXTURE_BOOK, tmp, dirs_exist_ok=True)
    shutil.copy(ROOT / "_config.yml", tmp / "_config.yml")
    shutil.copytree(ROOT / "book" / "_ext", tmp / "book" / "_ext")
    shutil.copy(ROOT / "book" / "references.bib", tmp / "book" / "references.bib")
    result = book.build(tmp, cold=True, quiet=True)
    # The build accepts every one of these pages: only the browser sees what is wrong.
    assert result.ok, "the fixture book failed to build:\n" + "\n".join(result.failures)
    # As a publishing step that dropped the notebooks would leave it: a dead download link.
    (tmp / "_build" / "html" / "_sources" / "book" / "dead_download.ipynb").unlink()
    s = Site(tmp / "_build" / "html")
    yield tmp, s
    s.close()


def test_the_fixture_book_lists_every_page_checked():
    assert [str(p.with_suffix("")) for p in book.chapters(FIXTURE_BOOK)] == list(EXPECTED)


@pytest.mark.book
@pytest.mark.parametrize("page", list(EXPECTED))
def test_the_checks_fail_on_broken_pages(browser, broken_site, page):
    root, s = broken_site
    seen = Counter()
    problems = check_page(browser, s, page, source=root / f"{page}.md", seen=seen)
    if EXPECTED[page] is None:
        assert not problems, "false alarms on a correct page:\n  " + "\n  ".join(problems)
        # and the checks had something to check there
        assert seen["equations"] >= 5 and seen["images"] >= 1 and seen["notebooks"] == 1, seen
        assert seen["prf blocks"] == 4 and seen["links"] >= 4, seen
        assert seen["exercises"] == seen["solutions"] == 1 and seen["solution outputs"] == 1, seen
        return
    for expected in EXPECTED[page]:
        assert any(expected in p for p in problems), (
            f"{page}: expected a problem containing {expected!r}, got:\n  " + "\n  ".join(problems)
        )


@pytest.mark.book
def test_the_api_check_fails_on_a_missing_entry_and_on_one_without_a_docstring(
    browser, broken_site
):
    """An API page's check, run on a page that has one of the names (a block that is no
    documented entry) and not the other."""
    root, s = broken_site
    problems = check_page(
        browser, s, "book/good", source=None, api_names=["rlbook.nowhere", "good-def-contraction"]
    )
    assert problems == [
        "API entry rlbook.nowhere is not on the page",
        "API entry good-def-contraction shows no docstring",
    ]


def test_the_figure_pattern_knows_every_drawing_helper():
    """A new helper in rlbook.plotting that draws must be added to MAKES_FIGURE."""
    import inspect

    from rlbook import plotting

    computes_only = {"mean_and_band"}
    drawing = [
        n
        for n, f in inspect.getmembers(plotting, inspect.isfunction)
        if f.__module__ == plotting.__name__ and not n.startswith("_") and n not in computes_only
    ]
    assert drawing, "rlbook.plotting has no drawing helpers?"
    for name in drawing:
        assert MAKES_FIGURE.search(f"fig, ax = plotting.{name}(x, y)"), name
    assert not MAKES_FIGURE.search("lo, hi = plotting.mean_and_band(y)")
