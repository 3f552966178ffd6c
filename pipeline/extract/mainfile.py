"""Find the top-level .tex file of a bundle and decode TeX sources.

Main file, in order (arXiv's own rules, info.arxiv.org/help/00README):
1. a `00README` directive: `00README.XXX`/`00README` lines `file.tex toplevelfile` (and `file ignore`),
   or the JSON/YAML `00README(.json|.yaml)` with `sources: [{filename, usage: toplevel}]`;
2. otherwise the .tex files that have `\\documentclass` (or LaTeX 2.09 `\\documentstyle`) and
   `\\begin{document}` outside comments; ties broken by: not `\\input` by another candidate, how many
   bundle files it uses (inputs, recursively, and graphics: a review copy or a side document uses few), shallower
   directory, a conventional name (main, ms, paper...), no draft-ish name (old, backup, copy...), larger
   size, then name (so the choice is deterministic);
3. failing that, any .tex with `\\begin{document}`, then any with `\\documentclass`.
AppleDouble `._*` files and anything under `__MACOSX/` are never candidates.

Decoding: strict UTF-8 (BOM dropped), then the encoding declared with `\\usepackage[...]{inputenc}`, then
charset-normalizer's guess, then Latin-1 (which cannot fail).
"""

import json
import posixpath
import re
from dataclasses import dataclass, field

from pipeline.extract.texclean import BEGIN_DOCUMENT_RE, normalise_newlines, strip_comments

TEX_EXTENSIONS = (".tex", ".ltx", ".latex")
_INPUTENC_RE = re.compile(rb"\\usepackage\s*\[([^\]]*)\]\s*\{\s*inputenc\s*\}")
# inputenc option -> Python codec
INPUTENC_CODECS = {
    "latin1": "latin-1", "latin9": "iso8859-15", "latin2": "iso8859-2", "latin3": "iso8859-3",
    "latin4": "iso8859-4", "latin5": "iso8859-9", "latin10": "iso8859-16", "l7x": "iso8859-13",
    "ansinew": "cp1252", "cp1252": "cp1252", "cp1250": "cp1250", "cp1251": "cp1251", "cp1257": "cp1257",
    "applemac": "mac_roman", "macce": "mac_latin2", "cp850": "cp850", "cp437": "cp437", "cp437de": "cp437",
    "cp852": "cp852", "cp858": "cp858", "cp865": "cp865", "decmulti": "latin-1", "next": "latin-1",
    "koi8-r": "koi8_r", "koi8-u": "koi8_u", "cp866": "cp866", "utf8": "utf-8", "utf8x": "utf-8",
}


def is_junk_path(path: str) -> bool:
    """macOS metadata that is never part of a paper: AppleDouble `._x` files and `__MACOSX/` trees."""
    parts = path.split("/")
    return "__MACOSX" in parts or parts[-1].startswith("._") or parts[-1] == ".DS_Store"


def decode_tex(data: bytes) -> tuple[str, str]:
    """Bytes of a TeX file -> (text with \\n newlines, encoding used)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return normalise_newlines(data.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    for m in _INPUTENC_RE.finditer(data[:200_000]):
        for opt in m.group(1).decode("latin-1").split(","):
            codec = INPUTENC_CODECS.get(opt.strip().lower())
            if codec and codec != "utf-8":
                try:
                    return normalise_newlines(data.decode(codec)), codec
                except UnicodeDecodeError:
                    pass
    for guess in _guess_encodings(data):
        try:
            text = data.decode(guess)
        except (UnicodeDecodeError, LookupError):
            continue
        # TeX's syntax is ASCII: an encoding that turns backslashes into yen signs (Shift-JIS, guessed for
        # a file with a few GBK comments) would hide every command.
        if all(text.count(c) == data.count(c.encode()) for c in "\\{}%$"):
            return normalise_newlines(text), guess
    return normalise_newlines(data.decode("latin-1")), "latin-1"


def _guess_encodings(data: bytes) -> list[str]:
    # Imported here: only non-UTF-8 files without an inputenc declaration pay for it.
    from charset_normalizer import from_bytes

    return [m.encoding for m in from_bytes(data[:200_000])]


@dataclass
class TexSources:
    """Decoded-text cache over a bundle's files, so each .tex is decoded once per paper."""

    files: dict[str, bytes]
    texts: dict[str, str] = field(default_factory=dict)
    encodings: dict[str, str] = field(default_factory=dict)

    def text(self, path: str) -> str:
        if path not in self.texts:
            self.texts[path], self.encodings[path] = decode_tex(self.files[path])
        return self.texts[path]


@dataclass
class MainChoice:
    path: str | None
    how: str  # 00readme | single | documentclass | begin_document | none
    candidates: list[str]


_DOCCLASS_RE = re.compile(r"\\document(?:class|style)\b")
_INPUT_NAME_RE = re.compile(
    r"\\(?:input|include|subfile|subfileinclude)\s*\{\s*([^{}]+?)\s*\}|\\input\s+([^\s{}\\%]+)"
    r"|\\(?:sub)?(?:import|inputfrom|includefrom)\*?\s*\{([^{}]*)\}\s*\{\s*([^{}]+?)\s*\}"
)
_PREFERRED_NAMES = ("main", "ms", "paper", "article", "manuscript", "arxiv", "root", "master")
_DRAFTY_RE = re.compile(r"(old|backup|bak|copy|orig|supp|response|reply|rebuttal|cover|letter|template)",
                        re.IGNORECASE)


def tex_candidates(files: dict[str, bytes]) -> list[str]:
    return sorted(p for p in files if p.lower().endswith(TEX_EXTENSIONS) and not is_junk_path(p))


def readme_toplevel(files: dict[str, bytes]) -> tuple[str | None, set[str]]:
    """(top-level file named by a 00README, files it says to ignore). Paths are matched case-sensitively."""
    ignore: set[str] = set()
    for name in sorted(files):
        base = posixpath.basename(name)
        if not base.startswith("00README") or is_junk_path(name):
            continue
        folder = posixpath.dirname(name)
        text = files[name][:100_000].decode("utf-8", "replace")
        top = _readme_json_or_yaml(text) if base.endswith((".json", ".yaml", ".yml")) else None
        if top is None:
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[-1].lower() in ("toplevelfile", "toplevel"):
                    top = parts[0]
                elif len(parts) >= 2 and parts[-1].lower() == "ignore":
                    ignore.add(posixpath.normpath(posixpath.join(folder, parts[0])))
        if top:
            path = posixpath.normpath(posixpath.join(folder, top))
            if path in files:
                return path, ignore
    return None, ignore


def _readme_json_or_yaml(text: str) -> str | None:
    try:
        data = json.loads(text)
        for src in data.get("sources", []) if isinstance(data, dict) else []:
            if isinstance(src, dict) and str(src.get("usage", "")).lower() in ("toplevel", "toplevelfile"):
                return str(src.get("filename"))
    except (ValueError, AttributeError):
        pass
    # YAML without a YAML parser: list items `- filename: x` followed by `usage: toplevel`.
    current = None
    for line in text.splitlines():
        m = re.match(r"\s*-?\s*filename\s*:\s*['\"]?([^'\"#]+?)['\"]?\s*$", line)
        if m:
            current = m.group(1)
        elif current and re.match(r"\s*usage\s*:\s*['\"]?toplevel", line):
            return current
    return None


def _referenced_names(text: str) -> set[str]:
    names = set()
    for m in _INPUT_NAME_RE.finditer(text):
        if m.group(4):
            names.add(posixpath.normpath(posixpath.join(m.group(3).strip(), m.group(4))))
        else:
            names.add(posixpath.normpath((m.group(1) or m.group(2)).strip()))
    return names


def find_main_tex(files: dict[str, bytes], sources: TexSources | None = None) -> MainChoice:
    """Pick the top-level .tex file of a bundle (see module docstring for the rules)."""
    sources = sources or TexSources(files)
    top, ignore = readme_toplevel(files)
    cands = [p for p in tex_candidates(files) if p not in ignore]
    if top:
        return MainChoice(top, "00readme", cands)
    if not cands:
        return MainChoice(None, "none", [])
    if len(cands) == 1:  # the common case: no need to strip comments to break ties
        raw = sources.text(cands[0])
        if _DOCCLASS_RE.search(raw) and BEGIN_DOCUMENT_RE.search(raw):
            return MainChoice(cands[0], "single", cands)
    cleaned = {p: strip_comments(sources.text(p)[:2_000_000]) for p in cands}
    full = [p for p in cands if _DOCCLASS_RE.search(cleaned[p]) and BEGIN_DOCUMENT_RE.search(cleaned[p])]
    how = "documentclass"
    if not full:
        full, how = [p for p in cands if BEGIN_DOCUMENT_RE.search(cleaned[p])], "begin_document"
    if not full:
        full, how = [p for p in cands if _DOCCLASS_RE.search(cleaned[p])], "documentclass_only"
    if not full:
        return MainChoice(None, "none", cands)
    if len(full) == 1:
        return MainChoice(full[0], "single" if len(cands) == 1 else how, cands)
    refs = {p: _relative_refs(p, cleaned[p]) for p in full}
    reach = {p: _reach(p, cleaned[p], files, sources) for p in full}
    return MainChoice(sorted(full, key=lambda p: _rank(p, full, refs, reach, files))[0], how, cands)


def _rank(path: str, full: list[str], refs: dict[str, set[str]], reach: dict[str, int],
          files: dict[str, bytes]) -> tuple:
    stem = posixpath.splitext(path)[0]
    included = any(stem in refs[other] or path in refs[other] for other in full if other != path)
    base = posixpath.basename(stem).lower()
    return (
        included,  # a file \input by another candidate is not the top
        -reach[path],  # the paper uses most of the bundle; a review copy or side document uses little
        path.count("/"),
        base not in _PREFERRED_NAMES,
        bool(_DRAFTY_RE.search(base)),
        -len(files[path]),
        path,
    )


_GRAPHIC_NAME_RE = re.compile(r"\\includegraphics\*?\s*(?:\[[^\]]*\]\s*)*\{\s*([^{}]+?)\s*\}")


def _reach(path: str, text: str, files: dict[str, bytes], sources: TexSources, depth: int = 0,
           seen: set[str] | None = None) -> int:
    """How many bundle files a candidate uses: the .tex files it inputs (recursively) and the graphics it
    names. Decides between two complete documents (a paper and its review copy, a book and its exercise
    sheet): the paper is the one that uses the bundle."""
    seen = seen if seen is not None else {path}
    stems = {posixpath.splitext(posixpath.basename(f))[0].lower() for f in files}
    used = sum(1 for m in _GRAPHIC_NAME_RE.finditer(text)
               if posixpath.splitext(posixpath.basename(m.group(1)))[0].lower() in stems)
    if depth >= 8:
        return used
    folder = posixpath.dirname(path)
    for name in _referenced_names(text):
        for base in (folder, ""):
            p = posixpath.normpath(posixpath.join(base, name))
            p = p if p in files else p + ".tex"
            if p in files and p not in seen:
                seen.add(p)
                used += 1
                if p.lower().endswith(TEX_EXTENSIONS):
                    used += _reach(p, strip_comments(sources.text(p)[:2_000_000]), files, sources, depth + 1, seen)
                break
    return used


def _relative_refs(including: str, text: str) -> set[str]:
    folder = posixpath.dirname(including)
    out = set()
    for name in _referenced_names(text):
        p = posixpath.normpath(posixpath.join(folder, name))
        out.add(p)
        out.add(posixpath.splitext(p)[0])
    return out
