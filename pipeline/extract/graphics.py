"""Resolve a graphics name to a bundle member the way pdfTeX's graphicx does.

Search (graphics.dtx `\\Gin@setfile`, pdftex.def's extension list):
1. the name as written, if it has an extension: under the root, then under each `\\graphicspath` prefix;
2. the name with each extension appended, extensions in the outer loop and prefixes in the inner one:
   `.pdf .png .jpg .mps .jpeg .jbig2 .jb2 .PDF .PNG .JPG .JPEG .JBIG2 .JB2`, then `.eps .ps` (what
   epstopdf adds at `\\begin{document}`; also what a DVI-mode arXiv build finds), then the non-TeX
   formats `.gif .tif .tiff .svg` as a last resort. `\\DeclareGraphicsExtensions` replaces the list.
   A name with an unknown "extension" (`fig.v2`, `plot_1.5`) goes through step 2 as well, so both
   `f1.pdf` and `f1.png` present means `f1.pdf`, as in pdfTeX.
3. For an `.eps` name, `<name>-eps-converted-to.pdf` (epstopdf's output, often shipped instead of or
   beside the EPS) is preferred: same figure, and PDFs rasterise much faster.
4. Failing all that, a case-insensitive match (arXiv builds on case-sensitive Linux, authors on macOS)
   flagged `case_fallback`, then a unique file with the same base name anywhere in the bundle (reason
   `basename_fallback`), else status `missing`.
Inside `\\import`ed files the import directory is searched before the root. Prefixes may lack the
trailing slash (`\\graphicspath{{figs}}`); that is accepted too. Formats come from magic bytes, not names.
"""

import posixpath
from dataclasses import dataclass, field

from pipeline.extract.mainfile import is_junk_path

PDFTEX_EXTENSIONS = (".pdf", ".png", ".jpg", ".mps", ".jpeg", ".jbig2", ".jb2",
                     ".PDF", ".PNG", ".JPG", ".JPEG", ".JBIG2", ".JB2")
EPS_EXTENSIONS = (".eps", ".ps", ".EPS", ".PS")
LAST_RESORT_EXTENSIONS = (".gif", ".tif", ".tiff", ".svg", ".GIF", ".TIF", ".TIFF", ".SVG")
DEFAULT_EXTENSIONS = PDFTEX_EXTENSIONS + EPS_EXTENSIONS + LAST_RESORT_EXTENSIONS
GRAPHIC_SUFFIXES = frozenset(e.lower() for e in DEFAULT_EXTENSIONS) | {".eps.gz", ".ps.gz", ".bmp", ".webp"}

_EXT_FORMAT = {
    ".pdf": "pdf", ".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".mps": "eps", ".eps": "eps", ".ps": "ps",
    ".gif": "gif", ".tif": "tiff", ".tiff": "tiff", ".svg": "svg", ".jbig2": "jbig2", ".jb2": "jbig2",
    ".bmp": "bmp", ".webp": "webp",
}


@dataclass
class Resolution:
    path: str | None
    format: str | None
    status: str  # ok | missing
    reason: str | None = None
    case_fallback: bool = False


@dataclass
class GraphicsIndex:
    """Per-bundle lookup tables, built once per paper."""

    files: dict[str, bytes]
    _lower: dict[str, str] | None = None
    _by_base: dict[str, list[str]] | None = None
    formats: dict[str, str | None] = field(default_factory=dict)

    def lower(self) -> dict[str, str]:
        if self._lower is None:
            self._lower = {}
            for p in sorted(self.files):
                if not is_junk_path(p):
                    self._lower.setdefault(p.lower(), p)
        return self._lower

    def by_base(self) -> dict[str, list[str]]:
        if self._by_base is None:
            self._by_base = {}
            for p in sorted(self.files):
                if is_junk_path(p):
                    continue
                base = posixpath.basename(p)
                stem, ext = posixpath.splitext(base)
                if ext.lower() in GRAPHIC_SUFFIXES:
                    self._by_base.setdefault(base.lower(), []).append(p)
                    self._by_base.setdefault(stem.lower(), []).append(p)
        return self._by_base


def sniff_format(data: bytes, path: str) -> str | None:
    """Graphic format from magic bytes, falling back to the file extension."""
    head = data[:1024]
    if head.startswith(b"%PDF") or b"%PDF-" in head:
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\xc5\xd0\xd3\xc6"):  # DOS EPS binary header
        return "eps"
    if head.startswith(b"%!"):
        return "eps" if b"EPSF" in head[:64] else "ps"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    low = head.lstrip().lower()
    if low.startswith(b"<?xml") and b"<svg" in low or low.startswith(b"<svg"):
        return "svg"
    return _EXT_FORMAT.get(posixpath.splitext(path)[1].lower())


def clean_name(name: str) -> str:
    """Strip blanks and grffile-style quotes; keep inner spaces and dots."""
    name = name.strip()
    if '"' in name:
        name = name.replace('"', "")
    return name.strip()


def _join(prefix: str, name: str) -> str | None:
    p = posixpath.normpath(posixpath.join(prefix, name)) if prefix else posixpath.normpath(name)
    if p.startswith("../") or p == ".." or p.startswith("/"):
        return None
    return p


def _prefixes(root: str, graphicspath: list[str], import_dir: str | None) -> list[str]:
    """Directories searched, in order, as bundle paths; a prefix without a trailing slash also works."""
    out: list[str] = []
    bases = ([import_dir] if import_dir is not None else []) + [root]
    for base in bases:
        if base not in out:
            out.append(base)
    for gp in graphicspath:
        gp = gp.strip().strip('"')
        if not gp or gp.startswith("/"):
            continue
        for base in bases:
            p = posixpath.join(base, gp) if base else gp
            if p not in out:
                out.append(p)
    return out


def resolve_graphic(name: str, index: GraphicsIndex, *, root: str = "", graphicspath: list[str] | None = None,
                    extensions: list[str] | None = None, import_dir: str | None = None) -> Resolution:
    """Find the bundle member `\\includegraphics{name}` reads (see module docstring)."""
    files = index.files
    name = clean_name(name)
    if not name:
        return Resolution(None, None, "missing", "empty_name")
    if name.startswith("/"):
        name = name.lstrip("/")  # an absolute path on the author's disk: only its tail can be in the bundle
    dirs = _prefixes(root, graphicspath or [], import_dir)
    exts = list(extensions) if extensions is not None else list(DEFAULT_EXTENSIONS)
    base = posixpath.basename(name)
    has_ext = "." in base.strip(".")
    tries: list[str] = []
    if has_ext:
        tries.append(name)
    tries += [name + e for e in exts]
    if extensions is not None:  # declared lists still fall back to EPS and the common formats
        tries += [name + e for e in DEFAULT_EXTENSIONS if e not in exts]
    if not has_ext:
        tries.append(name)

    def finish(path: str, reason: str | None = None, case: bool = False) -> Resolution:
        conv = _converted_pdf(path, files)
        if conv:
            path, reason = conv, reason or "eps_converted_pdf"
        fmt = index.formats.get(path)
        if path not in index.formats:
            fmt = index.formats[path] = sniff_format(files[path], path)
        return Resolution(path, fmt, "ok", reason, case)

    candidates = [(t, d) for t in tries for d in dirs]
    for t, d in candidates:
        p = _join(d, t)
        if p is not None and p in files and not is_junk_path(p):
            return finish(p)
    # epstopdf output shipped without the EPS: {fig.eps} -> fig-eps-converted-to.pdf
    if base.lower().endswith(".eps"):
        for d in dirs:
            p = _join(d, name[:-4] + "-eps-converted-to.pdf")
            if p is not None and p in files:
                return finish(p, "eps_converted_pdf")
    lower = index.lower()
    for t, d in candidates:
        p = _join(d, t)
        if p is not None and p.lower() in lower:
            return finish(lower[p.lower()], "case_fallback", True)
    # Last resort: one graphic of that name somewhere in the bundle (f.pdf and f.eps side by side count
    # as one: the extension order picks).
    matches = sorted(set(index.by_base().get(base.lower(), [])))
    stems = {posixpath.splitext(m)[0].lower() if not has_ext else m.lower() for m in matches}
    if matches and len(stems) == 1:
        order = {e.lower(): k for k, e in enumerate(reversed(exts))}
        best = max(matches, key=lambda m: order.get(posixpath.splitext(m)[1].lower(), -1))
        return finish(best, "basename_fallback")
    return Resolution(None, None, "missing", "ambiguous_basename" if matches else "not_in_bundle")


def _converted_pdf(path: str, files: dict[str, bytes]) -> str | None:
    if path.lower().endswith(".eps"):
        conv = path[:-4] + "-eps-converted-to.pdf"
        if conv in files:
            return conv
    return None
