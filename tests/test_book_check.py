"""focal.book.check: the book served under a sub-path on 127.0.0.1, its links and assets, a browser that reaches
no other host. The built book itself is checked in test_book_build.py; here, small sites with known faults."""
from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from focal.book import check

IN_CI = os.environ.get("CI", "").lower() in ("true", "1")

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{css}"></head><body><h1 id="top">{title}</h1>{body}</body></html>
"""


def _site(root, **pages):
    """Pages ``name -> body`` under ``root`` sharing ``_static/site.css``; returns ``root``."""
    (root / "_static").mkdir(parents=True)
    (root / "_static" / "site.css").write_text("body { background: url(bg.png); }\n")
    (root / "_static" / "bg.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "index.html").write_text(PAGE.format(title="index", css="_static/site.css", body=""))
    for name, body in pages.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        css = "../" * name.count("/") + "_static/site.css"
        path.write_text(PAGE.format(title=name, css=css, body=body))
    return root


def _require_chromium():
    if check.find_chromium() is None:
        if IN_CI:
            pytest.fail("chromium is required in CI (Debian: apt-get install chromium)")
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")


def test_serve_answers_only_under_the_sub_path(tmp_path):
    _site(tmp_path, **{"a/page.html": "hi"})
    with check.serve(tmp_path, "/repo/") as (base, log):
        assert base.startswith("http://127.0.0.1:") and base.endswith("/repo/")
        with urllib.request.urlopen(base + "a/page.html") as response:
            assert response.status == 200 and b"hi" in response.read()
        root = base.removesuffix("repo/")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(root + "a/page.html")
        assert err.value.code == 404, "the site must not be reachable at the server's root"
    assert ("/repo/a/page.html", 200) in log and ("/a/page.html", 404) in log
    with pytest.raises(ValueError, match="prefix"):
        with check.serve(tmp_path, "repo"):
            pass


def test_serve_lists_no_folder(tmp_path):
    _site(tmp_path, **{"a/page.html": "hi"})
    with check.serve(tmp_path) as (base, _):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "a/")
    assert err.value.code == 404, "GitHub Pages shows no folder listing"


def test_page_refs_tell_loads_from_links_and_collect_ids():
    loads, links, ids = check.page_refs('<link rel="canonical" href="https://x.org/"><img src="a.png">'
                                        '<a name="old">x</a><a href="https://x.org/">x</a><p id="p1">')
    assert loads == ["a.png"] and links == ["https://x.org/"] and ids == {"old", "p1"}


def test_link_problems_pass_a_relative_site(tmp_path):
    _site(tmp_path, **{"book/a.html": '<a href="b.html#top">b</a> <a href="../index.html">up</a>'
                                      ' <a href="https://arxiv.org/abs/1708.02002">paper</a>',
                       "book/b.html": '<img src="../_static/bg.png"><a href="#top">top</a>'})
    with check.serve(tmp_path) as (base, _):
        assert check.link_problems(tmp_path, base) == []


@pytest.mark.parametrize("body, expected", [
    ('<script src="https://cdn.example.org/x.js"></script>', "loads https://cdn.example.org/x.js from another host"),
    ('<link rel="stylesheet" href="//fonts.example.org/f.css">', "from another host"),
    ('<img src="/_static/bg.png">', "site-absolute /_static/bg.png breaks"),
    ('<img src="../_static/missing.png">', "../_static/missing.png -> HTTP 404"),
    ('<a href="../book/nope.html">x</a>', "../book/nope.html -> HTTP 404"),
    ('<a href="b.html#nowhere">x</a>', "b.html#nowhere names no element"),
])
def test_link_problems_name_each_fault(tmp_path, body, expected):
    _site(tmp_path, **{"book/a.html": body, "book/b.html": ""})
    with check.serve(tmp_path) as (base, _):
        problems = check.link_problems(tmp_path, base)
    assert len(problems) == 1 and problems[0].startswith("book/a.html: ") and expected in problems[0], problems


def test_link_problems_read_fonts_in_stylesheets(tmp_path):
    _site(tmp_path)
    (tmp_path / "_static" / "site.css").write_text("@font-face { src: url('https://fonts.example.org/a.woff2'); }"
                                                   " p { background: url(gone.png); }")
    with check.serve(tmp_path) as (base, _):
        problems = check.link_problems(tmp_path, base)
    assert any("_static/site.css: loads https://fonts.example.org/a.woff2" in p for p in problems), problems
    assert any("_static/site.css: gone.png -> HTTP 404" in p for p in problems), problems


@pytest.mark.slow
def test_check_book_reports_a_page_that_asks_another_host_and_a_missing_script(tmp_path):
    _require_chromium()
    body = ('<script>var i = new Image(); i.src = "http://example.org/pixel.png"; document.body.appendChild(i);'
            ' var s = document.createElement("script"); s.src = "gone.js"; document.head.appendChild(s);</script>')
    _site(tmp_path, **{"book/a.html": body})
    with pytest.raises(RuntimeError) as err:
        check.check_book(tmp_path)
    text = str(err.value)
    assert "a.html: asks another host for ['http://example.org/pixel.png']" in text, text
    assert "/focal/book/gone.js -> HTTP 404" in text, text


@pytest.mark.slow
def test_check_book_counts_math_typeset_by_the_bundled_mathjax(tmp_path):
    _require_chromium()
    built = tmp_path / "html"
    _site(built, **{"book/a.html": '<span class="math notranslate nohighlight">\\(x^2\\)</span>'})
    with pytest.raises(RuntimeError, match=r"a.html: 0 of 1 math elements typeset"):
        check.check_book(built)  # no MathJax on the page: the math stays TeX
    mathjax = check.Path(__file__).resolve().parents[1] / "book" / "_extra" / "mathjax" / "tex-svg.js"
    if not mathjax.is_file():
        pytest.skip("MathJax not bundled yet (make setup)")
    (built / "mathjax").mkdir()
    (built / "mathjax" / "tex-svg.js").write_bytes(mathjax.read_bytes())
    page = built / "book" / "a.html"
    page.write_text(page.read_text().replace("</head>", '<script defer src="../mathjax/tex-svg.js"></script></head>'))
    report = check.check_book(built)
    (math_page,) = [r for r in report["pages"] if r["page"] == "a.html"]
    assert math_page["math"] == 1 and math_page["typeset"] == 1 and report["requests"] > 0
