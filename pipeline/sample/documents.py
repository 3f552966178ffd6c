"""Non-TeX submissions: PDF-only papers, PostScript and HTML sources, withdrawal stubs.

PDF and PostScript are real documents made with matplotlib (a text page and a figure page), with the
date stamps fixed so the bytes only depend on the inputs.
"""

import html
import io
import logging
import re
import textwrap

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from pipeline.sample.figures import draw

_PS_DATE = re.compile(rb"%%CreationDate: [^\n]*\n")
WITHDRAWN_TEXT = b"This paper has been withdrawn by the author.\n"


def _text_page(title: str, authors: list[str], abstract: str) -> Figure:
    fig = Figure(figsize=(8.5, 11), dpi=72)
    fig.text(0.5, 0.92, "\n".join(textwrap.wrap(title, 60)), ha="center", va="top", fontsize=16, family="DejaVu Serif")
    fig.text(0.5, 0.85, ", ".join(authors), ha="center", va="top", fontsize=11, family="DejaVu Serif")
    fig.text(0.12, 0.78, "Abstract", fontsize=12, weight="bold", family="DejaVu Serif")
    fig.text(0.12, 0.76, "\n".join(textwrap.wrap(abstract, 85)), va="top", fontsize=10, family="DejaVu Serif")
    return fig


def pdf_paper(title: str, authors: list[str], abstract: str, category: str, rng, subkind: str) -> bytes:
    """A two-page PDF: title page, then a page with one figure (not gzipped in the chunk)."""
    buf = io.BytesIO()
    with PdfPages(buf, metadata={"CreationDate": None, "ModDate": None, "Title": title}) as pdf:
        pdf.savefig(_text_page(title, authors, abstract))
        fig = draw(subkind, category, rng)
        if isinstance(fig, Figure):
            pdf.savefig(fig)
    return buf.getvalue()


def ps_paper(title: str, authors: list[str], abstract: str) -> bytes:
    """A one-page PostScript document (an old-style `.ps` source)."""
    buf = io.BytesIO()
    fig = _text_page(title, authors, abstract)
    ps_log = logging.getLogger("matplotlib.backends.backend_ps")
    level = ps_log.level
    ps_log.setLevel(logging.ERROR)
    try:
        fig.savefig(buf, format="ps", metadata={"Creator": "dvips(k) 5.95a"})
    finally:
        ps_log.setLevel(level)
    return _PS_DATE.sub(b"%%CreationDate: Mon Jan  2 00:00:00 2006\n", buf.getvalue(), count=1)


def html_paper(title: str, authors: list[str], abstract: str) -> bytes:
    """An HTML submission (arXiv accepts a few; they carry no TeX)."""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title></head>\n"
        "<body><h1>" + html.escape(title) + "</h1>\n<p>" + html.escape(", ".join(authors)) + "</p>\n"
        "<h2>Abstract</h2>\n<p>" + html.escape(abstract) + "</p>\n"
        "<p><img src=\"fig1.gif\" alt=\"Figure 1\"></p>\n</body></html>\n"
    ).encode("utf-8")
