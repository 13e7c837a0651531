"""Does the built book read from a sub-path and offline? Served as a project page is (``http://host/REPO/``), on
127.0.0.1, every page's links and assets are checked and every page is opened in headless Chromium that can reach
no other host: math typeset, figures present, nothing loaded from elsewhere.

``python -m focal.book check`` runs :func:`check_book` on ``_build/html``; ``make test`` runs it on the smoke build.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

__all__ = ["CHROMIUM_FLAGS", "CDN_MATHJAX", "SUBPATH", "find_chromium", "chromium", "serve", "page_refs",
           "link_problems", "page_report", "check_book"]

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")  # no host but this machine
#: Where :func:`check_book` serves the book: a project page's path (``https://OWNER.github.io/REPO/``).
SUBPATH = "/focal/"
_MATH_SOURCE = re.compile(r'class="math notranslate')
_MATH_TYPESET = re.compile(r"<mjx-container[^>]*>\s*<svg")
_MATH_ERROR = re.compile(r"data-mjx-error|<mjx-merror")
_IMG = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"")
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")
CDN_MATHJAX = re.compile(r"<script[^>]*src=\"(?:https?:)?//[^\"]*mathjax[^\"]*\"", re.IGNORECASE)
#: (tag, attribute) pairs that make the browser load something; ``<a href>`` only links.
_LOADS = {("script", "src"), ("link", "href"), ("img", "src"), ("source", "src"), ("iframe", "src"),
          ("video", "src"), ("audio", "src"), ("object", "data"), ("embed", "src")}


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on PATH (Debian: ``/usr/bin/chromium``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def chromium(page: str | os.PathLike, *args: str, timeout: float = 180) -> str:
    """Run headless Chromium on a page (an ``http://`` URL or a local file) with ``args`` and return its stdout.

    The browser resolves no host but 127.0.0.1, so a page that needs another host shows it.

    Raises:
        FileNotFoundError: no Chromium on PATH, or a local ``page`` missing. RuntimeError: Chromium failed.
    """
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found on PATH (Debian: apt-get install chromium)")
    target = str(page)
    if not target.startswith(("http://", "https://")):
        path = Path(page).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"page must be an existing HTML file or an http URL, got {page}")
        target = path.as_uri()
    with tempfile.TemporaryDirectory(prefix="focal-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, target]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed on {target} (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the book under one path prefix only; records what was asked for and what it answered."""

    prefix: str = SUBPATH
    served: list[tuple[str, int]]

    def translate_path(self, path: str) -> str:
        path = urlsplit(path).path
        if not path.startswith(self.prefix):
            return os.path.join(self.directory, ".outside-the-sub-path", "404")  # no such file: 404
        return super().translate_path("/" + path[len(self.prefix):])

    def list_directory(self, path):  # GitHub Pages lists no folders: a link to one without index.html is broken
        self.send_error(404, "no index.html in this folder")
        return None

    def log_request(self, code="-", size="-") -> None:
        self.served.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format, *args) -> None:  # quiet
        pass


@contextmanager
def serve(html: str | os.PathLike, prefix: str = SUBPATH) -> Iterator[tuple[str, list]]:
    """Serve the folder ``html`` at ``http://127.0.0.1:PORT{prefix}`` while the block runs.

    Yields:
        ``(base URL, log)``: the log collects ``(request path, status)`` of every request, in order.
    """
    if not (prefix.startswith("/") and prefix.endswith("/")):
        raise ValueError(f"prefix must start and end with '/', got {prefix!r}")
    log: list[tuple[str, int]] = []
    handler = type("Handler", (_Handler,), {"prefix": prefix, "served": log})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(handler, directory=str(Path(html).resolve())))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{prefix}", log
    finally:
        server.shutdown()
        server.server_close()


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.loads, self.links, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for attr, value in attrs.items():
            if value and (tag, attr) in _LOADS and not (tag == "link" and attrs.get("rel") == "canonical"):
                self.loads.append(value)
            elif value and tag == "a" and attr == "href":
                self.links.append(value)


def page_refs(text: str) -> tuple[list[str], list[str], set[str]]:
    """``(loads, links, ids)`` of an HTML page: what it makes the browser fetch, its ``<a href>`` targets and the
    element ids a ``#fragment`` can point at.

    Example:
        >>> page_refs('<script src="a.js"></script><a href="b.html#x">b</a><h2 id="y">')
        (['a.js'], ['b.html#x'], {'y'})
    """
    parser = _Refs()
    parser.feed(text)
    return parser.loads, parser.links, parser.ids


def _pages(html: Path) -> list[str]:
    """The book's pages, relative to ``html`` (Sphinx's ``_static``, ``_sources`` and ``_images`` left out)."""
    return sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                  if not p.relative_to(html).parts[0].startswith("_"))


def _local(ref: str) -> bool:
    return not (urlsplit(ref).scheme or ref.startswith("//"))


def link_problems(html: str | os.PathLike, base: str) -> list[str]:
    """Every broken reference of the book served at ``base``: assets or pages that do not load (fetched over HTTP),
    ``#fragments`` that name no element of their page, site-absolute paths (``/...``, which break under a
    sub-path), and scripts, stylesheets, images or fonts (``url()`` in CSS) from another host."""
    html, problems, status, ids = Path(html), [], {}, {}

    def fetch(url: str) -> tuple[int, bytes]:
        if url not in status:
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    status[url] = (response.status, response.read())
            except urllib.error.HTTPError as err:
                status[url] = (err.code, b"")
        return status[url]

    def check(page: str, ref: str, url: str, load: bool) -> None:
        if ref.startswith(("data:", "mailto:", "javascript:", "blob:")):
            return
        if not _local(ref):
            if load:
                problems.append(f"{page}: loads {ref} from another host")
            return
        if ref.startswith("/"):
            problems.append(f"{page}: site-absolute {ref} breaks when the book lives at a sub-path")
            return
        target = urljoin(url, ref)
        code, body = fetch(target.split("#")[0])
        if code != 200:
            problems.append(f"{page}: {ref} -> HTTP {code}")
        elif "#" in ref and (fragment := unquote(ref.split("#", 1)[1])) and target.split("#")[0].endswith(".html"):
            if target.split("#")[0] not in ids:
                ids[target.split("#")[0]] = page_refs(body.decode("utf-8", "replace"))[2]
            if fragment not in ids[target.split("#")[0]]:
                problems.append(f"{page}: {ref} names no element of its page")

    for page in _pages(html):
        url = urljoin(base, page)
        code, body = fetch(url)
        loads, links, _ = page_refs(body.decode("utf-8", "replace"))
        for ref in loads:
            check(page, ref, url, load=True)
        for ref in links:
            check(page, ref, url, load=False)
    for css in sorted(html.rglob("*.css")):
        rel = css.relative_to(html).as_posix()
        for url_ref, imported in _CSS_URL.findall(css.read_text(encoding="utf-8", errors="replace")):
            ref = (url_ref or imported).strip()
            if ref.startswith("#"):
                continue
            check(rel, ref.split("?")[0].split("#")[0] if _local(ref) else ref, urljoin(base, rel), load=True)
    return problems


def _netlog_requests(path: Path) -> list[tuple[str, str]]:
    """``(url, initiator)`` of every request a Chromium net log (``--log-net-log``) recorded.

    Raises:
        RuntimeError: no net log was written, or it cannot be read (then nothing could be checked).
    """
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no net log at {path}: cannot tell which hosts the page asked")
    text = path.read_text()
    try:
        data = json.loads(text)
    except ValueError:  # a log cut off when the browser exited lacks its closing brackets
        try:
            data = json.loads(text.rstrip().rstrip(",") + "]}")
        except ValueError as err:
            raise RuntimeError(f"chromium's net log {path} is unreadable: {err}") from err
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [(e["params"]["url"], str(e["params"].get("initiator", ""))) for e in data["events"]
            if e.get("type") == start and "url" in e.get("params", {})]


def page_report(url: str, *, budget_ms: int = 10000) -> dict:
    """Open one served page in headless Chromium and count what a reader would see.

    Returns:
        ``{"page", "math", "typeset", "math_errors", "images", "foreign"}``: math elements in the HTML, MathJax
        SVG containers in the rendered DOM, TeX errors, ``<img>`` sources, and requests the page itself made
        to another host than the one serving it.
    """
    with urllib.request.urlopen(url, timeout=30) as response:
        raw = response.read().decode("utf-8", "replace")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    with tempfile.TemporaryDirectory(prefix="focal-netlog-") as tmp:
        netlog = Path(tmp) / "net.json"
        dom = chromium(url, "--dump-dom", f"--virtual-time-budget={budget_ms}", f"--log-net-log={netlog}")
        requests = _netlog_requests(netlog)
    if not any(u.split("#")[0] == url.split("#")[0] for u, _ in requests):
        raise RuntimeError(f"chromium's net log does not show the page itself ({url}): nothing was checked")
    foreign = sorted({u for u, initiator in requests if initiator.startswith(origin) and not u.startswith(origin)})
    return {"page": posixpath.basename(urlsplit(url).path), "math": len(_MATH_SOURCE.findall(raw)),
            "typeset": len(_MATH_TYPESET.findall(dom)), "math_errors": len(_MATH_ERROR.findall(dom)),
            "images": [src for src in _IMG.findall(dom) if not src.startswith("data:")], "foreign": foreign}


def check_book(html: str | os.PathLike, *, screenshot: str | os.PathLike | None = None,
               prefix: str = SUBPATH) -> dict:
    """Check a built book as a project page reads it: served under ``prefix`` on 127.0.0.1, every link and asset
    loads (:func:`link_problems`), and every page opened in a Chromium that reaches no other host typesets all its
    math (MathJax SVG, no TeX errors), asks nothing of another host, and no request to the server fails.
    Optionally saves a 1280x2000 screenshot of chapter 4.

    Returns:
        ``{"pages": [page_report, ...], "requests": n, "screenshot": path or None}``.

    Raises:
        RuntimeError: listing every problem found.
    """
    html = Path(html)
    if not (html / "index.html").is_file():
        raise FileNotFoundError(f"html must be a built book folder with index.html, got {html}")
    pages = _pages(html)
    with serve(html, prefix) as (base, log):
        problems = link_problems(html, base)
        del log[:]  # from here on: what the browser asked for
        reports = [page_report(base + page) for page in pages]
        failed = sorted({f"{path} -> HTTP {code}" for path, code in log if code >= 400 and
                         not path.endswith("/favicon.ico")})
        shot = None
        chapter4 = [p for p in pages if re.fullmatch(r"notebooks/04_.*\.html", p)]
        if screenshot is not None and chapter4:
            shot = Path(screenshot)
            shot.parent.mkdir(parents=True, exist_ok=True)
            chromium(base + chapter4[0], f"--screenshot={shot.resolve()}", "--window-size=1280,2000",
                     "--hide-scrollbars", "--virtual-time-budget=10000")
    problems += [f"{r['page']}: {r['typeset']} of {r['math']} math elements typeset, {r['math_errors']} TeX errors"
                 for r in reports if r["typeset"] < r["math"] or r["math_errors"]]
    problems += [f"{r['page']}: asks another host for {r['foreign']}" for r in reports if r["foreign"]]
    problems += [f"the browser asked for {f}" for f in failed]
    if problems:
        raise RuntimeError(f"the built book does not read offline at {prefix}:\n" + "\n".join(problems))
    return {"pages": reports, "requests": len(log), "screenshot": str(shot) if shot else None}
