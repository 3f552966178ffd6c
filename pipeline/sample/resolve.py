"""pdfTeX's graphics lookup, emulated to check the sample bucket's ground truth.

The generator writes `\\includegraphics{...}` arguments meant to hit particular files; resolving them the
way pdfTeX would (name as written, then graphicx's extension list, outer loop over extensions and inner
loop over `\\graphicspath` prefixes) catches a scenario that accidentally points somewhere else.
"""

import posixpath

# pdftex.def's list, then .eps/.ps (epstopdf), as in extraction.md section 2.
PDFTEX_EXTS = (".pdf", ".png", ".jpg", ".mps", ".jpeg", ".jbig2", ".jb2",
               ".PDF", ".PNG", ".JPG", ".JPEG", ".JBIG2", ".JB2", ".eps", ".ps")


def _norm(path: str) -> str:
    path = posixpath.normpath(path)
    return path[2:] if path.startswith("./") else path


def resolve(name: str, prefixes: list[str], files: set[str]) -> tuple[str | None, bool]:
    """(member path, matched only case-insensitively) for an \\includegraphics argument, or (None, False)."""
    name = name.strip().strip('"')
    roots = [""] + list(prefixes)
    ext = posixpath.splitext(name)[1]
    if ext in PDFTEX_EXTS or ext.lower() in (".eps", ".ps"):
        candidates = [_norm(p + name) for p in roots]
    else:  # no extension, or an unknown one (`plot_v1.5`): the name itself, then the extension list
        candidates = [_norm(p + name) for p in roots]
        candidates += [_norm(p + name + e) for e in PDFTEX_EXTS for p in roots]
    for c in candidates:
        if c in files:
            return c, False
    lower = {f.lower(): f for f in sorted(files)}
    for c in candidates:
        if c.lower() in lower:
            return lower[c.lower()], True
    return None, False
