"""Flatten a LaTeX document: `\\input`, `\\include`, `\\subfile`, `\\import`/`\\subimport`, in memory.

Names resolve as TeX does on arXiv, relative to the main file's directory (the compile's working
directory), not to the including file: `\\input{x}` tries `x.tex` then `x`; `\\include{x}` only `x.tex`
(and honours `\\includeonly`). `\\import{dir}{file}` and `\\subimport{dir}{file}` read `dir/file`, and
inputs and graphics inside it resolve under `dir` first; the flattened text marks such stretches with
`\\AFdirpush{dir/}` ... `\\AFdirpop{}` so that graphics resolution knows the directory. A case-insensitive
match is accepted as a fallback (and recorded in warnings), as is the including file's own directory.

Every inserted file is cleaned first (`texclean.clean_tex`), a `\\subfile` or full-document input
contributes only its document body, and `\\endinput` ends a file. Inputs of TikZ/PGF drawings
(`.tikz`, `.pgf`, `.pgf_tex`, `.pdf_tex`) are not inserted: they stay as `\\input{path}` for the figure
scanner, which records them as `tikz` graphics. A depth limit, a cycle guard and a size cap keep hostile
sources bounded.
"""

import posixpath
import re
from dataclasses import dataclass, field

from pipeline.extract.figures import DRAWING_INPUT_EXTS
from pipeline.extract.macros import MacroTable, collect_macros, expand_macros
from pipeline.extract.mainfile import TexSources, is_junk_path
from pipeline.extract.texclean import BEGIN_DOCUMENT_RE, END_DOCUMENT_RE, clean_tex, comment_env_names

# \input files kept as written, not expanded into the document: the drawings the figure scanner takes as a
# figure's graphic, and TikZiT style files (definitions that pictures use, not text).
UNEXPANDED_INPUT_EXTS = (*DRAWING_INPUT_EXTS, ".tikzstyles")
DIR_PUSH = "\\AFdirpush"
DIR_POP = "\\AFdirpop{}"

_INPUT_RE = re.compile(
    r"\\(input|include|subfile|subfileinclude)\s*\{\s*([^{}]*?)\s*\}"
    r"|\\(input)[ \t]+([^\s{}\\%]+)"
    r"|\\(import|subimport|inputfrom|subinputfrom|includefrom|subincludefrom)\*?\s*\{\s*([^{}]*?)\s*\}\s*\{\s*([^{}]*?)\s*\}"
)
_INCLUDEONLY_RE = re.compile(r"\\includeonly\s*\{([^{}]*)\}")
_USEPACKAGE_RE = re.compile(r"\\(?:usepackage|RequirePackage)\s*(?:\[[^\]]*\])?\s*\{([^{}]*)\}")


@dataclass
class ExpandedDoc:
    text: str  # cleaned main file with every resolvable input inserted
    main: str  # bundle path of the main file
    root: str  # its directory ("" for the bundle root)
    included: list[str] = field(default_factory=list)  # bundle paths inserted, in order
    missing: list[str] = field(default_factory=list)  # names that could not be resolved
    styles: list[str] = field(default_factory=list)  # bundle paths of local .sty packages used
    warnings: list[str] = field(default_factory=list)


class _Expander:
    def __init__(self, sources: TexSources, root: str, max_depth: int, max_chars: int):
        self.sources = sources
        self.files = sources.files
        self.root = root
        self.max_depth = max_depth
        self.max_chars = max_chars
        self.total = 0
        self.doc = ExpandedDoc("", "", root)
        self.includeonly: set[str] | None = None
        self.comment_envs = ["comment"]
        self._lower: dict[str, str] | None = None
        self.macros: MacroTable | None = None  # preamble macros, collected only if an input name needs them
        self.preamble = ""
        self.cleaned: dict[str, str] = {}
        self.n_inputs = 0
        self.max_inputs = 5000

    def lower_map(self) -> dict[str, str]:
        if self._lower is None:
            self._lower = {}
            for p in sorted(self.files):
                if not is_junk_path(p):
                    self._lower.setdefault(p.lower(), p)
        return self._lower

    def find(self, name: str, dirs: list[str], *, include: bool, including_dir: str) -> str | None:
        name = name.strip().strip('"')
        if not name:
            return None
        if include or not name.lower().endswith(".tex"):
            tries = [name + ".tex"] if include else [name + ".tex", name]
        else:
            tries = [name]
        for d in dirs:
            for t in tries:
                p = posixpath.normpath(posixpath.join(d, t))
                if p in self.files and not p.startswith("../"):
                    return p
        for d in dirs:  # case-insensitive fallback (authors on macOS)
            for t in tries:
                p = self.lower_map().get(posixpath.normpath(posixpath.join(d, t)).lower())
                if p:
                    self.doc.warnings.append(f"input_case_fallback:{name}")
                    return p
        if including_dir not in dirs:  # lenient: relative to the including file (not what TeX does)
            for t in tries:
                p = posixpath.normpath(posixpath.join(including_dir, t))
                if p in self.files:
                    self.doc.warnings.append(f"input_relative_to_includer:{name}")
                    return p
        return None

    def expand(self, path: str, text: str, depth: int, stack: tuple[str, ...], import_dir: str | None) -> str:
        out: list[str] = []
        pos = 0
        for m in _INPUT_RE.finditer(text):
            out.append(text[pos:m.start()])
            pos = m.end()
            out.append(self._replacement(m, path, depth, stack, import_dir))
            if self.total > self.max_chars:
                self.doc.warnings.append("expansion_size_cap")
                out.append(text[pos:])
                return "".join(out)
        out.append(text[pos:])
        return "".join(out)

    def _replacement(self, m: re.Match, path: str, depth: int, stack: tuple[str, ...],
                     import_dir: str | None) -> str:
        if m.group(1):
            cmd, name, sub_dir = m.group(1), m.group(2), None
        elif m.group(3):
            cmd, name, sub_dir = "input", m.group(4), None
        else:
            cmd, name = m.group(5), m.group(7)
            sub_dir = m.group(6).strip().strip('"')
        if "\\" in name or (sub_dir and "\\" in sub_dir):  # \input{\secdir/intro}: preamble macros
            if self.macros is None:
                self.macros = collect_macros(self.preamble, record_spans=False)
            name = _plain_name(expand_macros(name, self.macros))
            sub_dir = _plain_name(expand_macros(sub_dir, self.macros)) if sub_dir is not None else None
        self.n_inputs += 1
        if self.n_inputs > self.max_inputs:
            if self.n_inputs == self.max_inputs + 1:
                self.doc.warnings.append("input_count_cap")
            return ""
        including_dir = posixpath.dirname(path)
        if sub_dir is not None:
            # \import paths are relative to the root; \subimport's to the current import directory
            base = (import_dir or self.root) if cmd.startswith("sub") else self.root
            new_dir = posixpath.normpath(posixpath.join(base, sub_dir))
            dirs = [new_dir]
        else:
            new_dir = import_dir
            dirs = [import_dir, self.root] if import_dir is not None else [self.root]
        if name.lower().endswith(UNEXPANDED_INPUT_EXTS):
            found = self.find(name, dirs, include=False, including_dir=including_dir)
            rel = found if found else posixpath.normpath(posixpath.join(dirs[0], name))
            return "\\input{" + _rel_to_root(rel, self.root) + "}"
        if cmd in ("include", "includefrom", "subincludefrom") and self.includeonly is not None:
            if name.strip() not in self.includeonly:
                return ""
        found = self.find(name, dirs, include=cmd in ("include", "includefrom", "subincludefrom"),
                          including_dir=including_dir)
        if found is None:
            self.doc.missing.append(name)
            return ""  # like a missing system file (\input epsf): nothing of the paper's own is lost
        if found in stack:
            self.doc.warnings.append(f"input_cycle:{found}")
            return ""
        if depth >= self.max_depth:
            self.doc.warnings.append(f"input_depth_limit:{found}")
            return ""
        if found.lower().endswith((".sty", ".cls", ".bst", ".bib")) or is_junk_path(found):
            return ""
        body = self.cleaned.get(found)
        if body is None:
            body = self.cleaned[found] = clean_tex(self.sources.text(found), comment_envs=self.comment_envs)
        b = BEGIN_DOCUMENT_RE.search(body)
        if b:  # \subfile / standalone document: only its body is typeset in the main document
            e = END_DOCUMENT_RE.search(body, b.end())
            body = body[b.end(): e.start() if e else len(body)]
        self.total += len(body)
        self.doc.included.append(found)
        inner = self.expand(found, body, depth + 1, stack + (found,), new_dir)
        if sub_dir is not None and new_dir != self.root:
            return f"{DIR_PUSH}{{{_rel_to_root(new_dir, self.root)}/}}" + inner + DIR_POP
        return inner


def _plain_name(name: str) -> str:
    return name.replace("{", "").replace("}", "").strip()


def _rel_to_root(path: str, root: str) -> str:
    return posixpath.relpath(path, root) if root else path


def expand_document(main: str, sources: TexSources, *, max_depth: int = 20,
                    max_chars: int = 20_000_000) -> ExpandedDoc:
    """Clean the main file and insert every input it (transitively) reads. Never raises on bad input."""
    root = posixpath.dirname(main)
    ex = _Expander(sources, root, max_depth, max_chars)
    raw = sources.text(main)
    ex.comment_envs = comment_env_names(raw)
    text = clean_tex(raw, main=True, comment_envs=ex.comment_envs)
    preamble = text[: _first_begin_document(text)]
    ex.preamble = preamble
    only = _INCLUDEONLY_RE.search(preamble)
    if only:
        ex.includeonly = {n.strip() for n in only.group(1).split(",") if n.strip()}
    ex.total = len(text)
    ex.doc.text = ex.expand(main, text, 0, (main,), None)
    ex.doc.main = main
    ex.doc.styles = local_styles(ex.doc.text, sources.files, root)
    return ex.doc


def _first_begin_document(text: str) -> int:
    m = BEGIN_DOCUMENT_RE.search(text)
    return m.start() if m else len(text)


def local_styles(text: str, files: dict[str, bytes], root: str) -> list[str]:
    """Bundle paths of `\\usepackage{x}` packages shipped in the bundle (their macros count too)."""
    out = []
    preamble = text[: _first_begin_document(text)]
    for m in _USEPACKAGE_RE.finditer(preamble):
        for name in m.group(1).split(","):
            p = posixpath.normpath(posixpath.join(root, name.strip() + ".sty"))
            if p in files and p not in out:
                out.append(p)
    return out
