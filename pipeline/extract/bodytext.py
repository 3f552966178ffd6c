"""Body paragraphs of a paper as plain text for the LSTM corpora, by cheap regex passes (no parser).

What comes out: one string per paragraph (blank line, `\\par`, sectioning command, or environment
boundary), whitespace normalised, paragraphs of fewer than `min_words` words dropped. On the way:
- dropped with their content: floats and tables (`figure`, `table`, `wrapfigure`...), display math
  (`equation`, `align`, `eqnarray`, `gather`, `multline`, `$$...$$`, `\\[...\\]`), code and verbatim,
  `tikzpicture`, `algorithm`, the bibliography, `abstract` (the abstract is a text row of its own);
- dropped with their arguments: `\\label`, `\\footnote`, `\\thanks`, spacing, `\\includegraphics`,
  title/author block commands, bibliography commands ...;
- inline math is kept verbatim as `$...$` (`\\(...\\)` becomes `$...$`); `\\cite...` -> "<cit.>",
  `\\ref`-like -> "<ref>" (the caption placeholders); accents and TeX specials become Unicode; any other command disappears and
  its braced arguments stay as text (`\\textbf{x}` -> x, `\\emph{x}` -> x).
`paragraphs_with_refs` also says which labels each paragraph `\\ref`s (for the figures' `mentions`): each
ref becomes a marker character during the reduction and "<ref>" after it, so the text is exactly what
`paragraphs` gives. User macros should be expanded by the caller first (paper.py does). Cost: a few ms
for a 50 KB body, against 0.4-0.6 s for a full pylatexenc conversion (bench/extract_latex.py measures both).
"""

import re
import unicodedata

from pipeline.extract.captions import CITE_PLACEHOLDER, REF_PLACEHOLDER
from pipeline.extract.texscan import match_brace, read_optional

_BLOCK_ENVS = (
    "figure", "figure*", "table", "table*", "wrapfigure", "wraptable", "sidewaysfigure", "sidewaysfigure*",
    "sidewaystable", "sidewaystable*", "SCfigure", "SCtable", "teaserfigure", "marginfigure", "margintable",
    "equation", "equation*", "align", "align*", "alignat", "alignat*", "eqnarray", "eqnarray*", "gather",
    "gather*", "multline", "multline*", "flalign", "flalign*", "displaymath", "math", "subequations",
    "dmath", "dmath*", "tabular", "tabular*", "tabularx", "longtable", "longtable*", "deluxetable",
    "deluxetable*", "verbatim", "verbatim*", "Verbatim", "lstlisting", "minted", "algorithm", "algorithm*",
    "algorithmic", "algorithmic*", "tikzpicture", "pgfpicture", "pspicture", "picture", "thebibliography",
    "abstract", "comment", "filecontents", "filecontents*", "titlepage", "acks", "CCSXML",
)
_BLOCK_BEGIN_RE = re.compile(r"\\begin\s*\{(" + "|".join(re.escape(e) for e in _BLOCK_ENVS) + r")\}")
_BLOCK_END_RES = {e: re.compile(r"\\end\s*\{" + re.escape(e) + r"\}") for e in _BLOCK_ENVS}
# No look-behind for escaped dollars (it disables re's fast scan, 7x slower): `\\$` is swapped out first.
_MATH_SPLIT_RE = re.compile(r"(\$\$[^$]*\$\$|\\\[.*?\\\]|\$[^$]+\$|\\\(.*?\\\))", re.DOTALL)
_DOLLAR = "\x04"
_PUA = 0xF0000  # Supplementary Private Use Area-A: not in real sources
_MAX_FORMULAS = 0xFFFD
_PUA_RE = re.compile("[\U000F0000-\U000FFFFD]")
_CITE_RE = re.compile(r"\\(?:[cC]ite[a-zA-Z]*|[pP]arencite|[tT]extcite|autocite|footcite|supercite)\*?\s*"
                      r"(?:\[[^\]]*\]\s*){0,2}\{[^{}]*\}")
_REF_RE = re.compile(r"\\(?:ref|eqref|autoref|Autoref|cref|Cref|pageref|vref|nameref|subref|labelcref)\*?\s*"
                     r"\{([^{}]*)\}")
# Ref markers: Supplementary Private Use Area-B (formulas use plane 15), one character per \ref.
_REF_MARK = 0x100000
_MAX_REFS = 0xFFFD
_REF_MARK_RE = re.compile("[\U00100000-\U0010FFFD]")
# Headings end a paragraph and are not body text (section titles are metadata of the figures instead).
_BREAK_CMDS = ("part", "chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph")
_DROP_ARG_CMDS = (
    "label", "footnote", "footnotetext", "thanks", "vspace", "hspace", "vskip", "hskip", "includegraphics",
    "bibliography", "bibliographystyle", "title", "author", "affiliation", "address", "email", "date",
    "institute", "keywords", "icmltitle", "icmlauthor", "icmlaffiliation", "icmlcorrespondingauthor",
    "icmlkeywords", "markboth", "pagestyle", "thispagestyle", "setlength", "addtolength", "setcounter",
    "addtocounter", "newtheorem", "usepackage", "input", "include", "index", "caption", "captionof",
    "phantom", "hphantom", "vphantom", "color", "definecolor", "pgfplotsset", "tikzset", "AFdirpush",
    "AFdirpop", "graphicspath", "DeclareGraphicsExtensions", "orcid", "ead", "corref", "fntext",
    "runningtitle", "runningauthor", "shorttitle", "shortauthors", "acmConference", "acmYear", "copyrightyear",
    "acmDOI", "acmISBN", "setcopyright", "received", "accepted", "journal", "volume", "ccsdesc", "doi",
) + _BREAK_CMDS
_DROP_ARG_RE = re.compile(r"\\(" + "|".join(_DROP_ARG_CMDS) + r")(?![a-zA-Z])\*?")
_SECTION_RE = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection|paragraph|subparagraph)\*?"
                         r"(?![a-zA-Z])\s*(?:\[[^\]]*\])?\s*")
_ENV_RE = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}(?:\s*\[[^\]\n]{0,80}\])?")
_ITEM_RE = re.compile(r"\\item(?![a-zA-Z])\s*(?:\[[^\]]*\])?")
_PAR_RE = re.compile(r"\\par(?![a-zA-Z])")
_ACCENT_SYM_RE = re.compile(r"\\(['`^\"~=.])\s*(?:\{\s*(\\?[a-zA-Z])\s*\}|(\\?[a-zA-Z]))")
_ACCENT_LET_RE = re.compile(r"\\([uvHckbdr])(?:\s*\{\s*(\\?[a-zA-Z])\s*\}|\s+([a-zA-Z]))")
_COMBINING = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
              ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
              "b": "\u0331", "d": "\u0323", "r": "\u030a"}
_SYMBOLS = {
    "ss": "ß", "o": "ø", "O": "Ø", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å", "AA": "Å",
    "l": "ł", "L": "Ł", "i": "i", "j": "j", "ldots": "…", "dots": "…", "textellipsis": "…", "LaTeX": "LaTeX",
    "TeX": "TeX", "textendash": "–", "textemdash": "—", "textquoteright": "’", "textquoteleft": "‘",
    "textasciitilde": "~", "textbackslash": "\\", "textbar": "|", "textless": "<", "textgreater": ">",
    "S": "§", "P": "¶", "copyright": "©", "textregistered": "®", "texttrademark": "™", "dag": "†",
    "ddag": "‡", "pounds": "£", "euro": "€", "textdegree": "°", "etal": "et al.", "eg": "e.g.", "ie": "i.e.",
}
_SYMBOL_RE = re.compile(r"\\(" + "|".join(sorted(_SYMBOLS, key=len, reverse=True)) + r")(?![a-zA-Z])(?:\{\})?\s?")
_SPECIAL_RE = re.compile(r"\\([&%$#_{}])")
_ESCAPED = {"{": "\x02", "}": "\x03"}
_BRACES = {ord("{"): None, ord("}"): None, 2: "{", 3: "}"}  # grouping braces go, escaped ones come back
_SPACING_CMD_RE = re.compile(r"\\[,;:!> @/]|\\\\\*?(?:\[[^\]]*\])?|\\(?:newline|linebreak|noindent|"
                             r"centering|raggedright|raggedleft|clearpage|newpage|pagebreak|smallskip|"
                             r"medskip|bigskip|maketitle|tableofcontents|appendix|FloatBarrier|"
                             r"indent|protect|relax|xspace|hfill|vfill|null)(?![a-zA-Z])")
_CMD_RE = re.compile(r"\\[a-zA-Z@]+\*?(?:\[[^\]\n]{0,80}\])?")
_PARSPLIT_RE = re.compile(r"\n\s*\n")


def _drop_with_args(text: str) -> str:
    """Remove `\\cmd[opt]{arg}` for commands whose argument is not running text (brace-matched)."""
    if not _DROP_ARG_RE.search(text):
        return text
    out, pos = [], 0
    for m in _DROP_ARG_RE.finditer(text):
        if m.start() < pos:
            continue
        i = m.end()
        opt = read_optional(text, i)
        if opt is not None:
            i = opt[1]
        j = i
        while j < len(text) and text[j] in " \t\n":
            j += 1
        end = m.end()
        if j < len(text) and text[j] == "{":
            e = match_brace(text, j)
            end = e if e is not None else m.end()
            if m.group(1) in ("setlength", "addtolength", "setcounter", "addtocounter", "definecolor",
                              "markboth", "newtheorem") and e is not None:
                k = e
                while k < len(text) and text[k] in " \t\n":
                    k += 1
                if k < len(text) and text[k] == "{":
                    e2 = match_brace(text, k)
                    end = e2 if e2 is not None else end
        out.append(text[pos:m.start()])
        if m.group(1) in _BREAK_CMDS:
            out.append("\n\n")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _accent(m: re.Match) -> str:
    base = (m.group(2) or m.group(3) or "").lstrip("\\")
    return unicodedata.normalize("NFC", base + _COMBINING[m.group(1)])


def reduce_to_text(latex: str, refs: list[list[str]] | None = None) -> str:
    """LaTeX fragment -> plain text with paragraph breaks as blank lines (rules in the module docstring).
    With `refs`, each \\ref becomes a marker character and its labels are appended to `refs`."""
    t = _drop_blocks(latex)
    if "\\$" in t:
        t = t.replace("\\$", _DOLLAR)
    # Split once into text and math pieces (C speed, no per-formula callbacks). Each formula becomes one
    # private-use character, which no pass can split: a pass that drops it (a footnote with math) drops
    # the formula with it, as it should. Then the formulas are put back.
    pieces = _MATH_SPLIT_RE.split(t)
    if len(pieces) == 1:
        return _reduce_plain(t, refs).replace(_DOLLAR, "$")
    maths = [_inline_math(m) for m in pieces[1::2]][:_MAX_FORMULAS]
    out = []
    for k, text in enumerate(pieces[0::2]):
        if k:
            out.append(chr(_PUA + k - 1) if k - 1 < _MAX_FORMULAS else " ")
        out.append(text)
    reduced = _reduce_plain("".join(out), refs)
    return _PUA_RE.sub(lambda m: maths[ord(m.group(0)) - _PUA], reduced).replace(_DOLLAR, "$")


def _drop_blocks(text: str) -> str:
    """Remove floats, display math, code... with their bodies; an unclosed one runs to the end."""
    out, pos = [], 0
    for m in _BLOCK_BEGIN_RE.finditer(text):
        if m.start() < pos:
            continue
        end = _BLOCK_END_RES[m.group(1)].search(text, m.end())
        out.append(text[pos:m.start()])
        out.append("\n\n")
        pos = end.end() if end else len(text)
    out.append(text[pos:])
    return "".join(out)


def _inline_math(src: str) -> str:
    if src.startswith("$$") or src.startswith("\\["):
        return " "  # display math leaves the sentence
    if src.startswith("\\("):
        return "$" + src[2:-2].strip().replace(_DOLLAR, "\\$") + "$"
    return "$" + src[1:-1].strip().replace(_DOLLAR, "\\$") + "$"


def _ref_marker(m: re.Match, refs: list[list[str]]) -> str:
    if len(refs) >= _MAX_REFS:
        return REF_PLACEHOLDER
    refs.append([lab.strip() for lab in m.group(1).split(",") if lab.strip()])  # \cref{a,b} names two
    return chr(_REF_MARK + len(refs) - 1)


def _reduce_plain(t: str, refs: list[list[str]] | None = None) -> str:
    t = _CITE_RE.sub(CITE_PLACEHOLDER, t)
    if refs is None:
        t = _REF_RE.sub(REF_PLACEHOLDER, t)
    else:
        t = _REF_RE.sub(lambda m: _ref_marker(m, refs), t)
    t = _drop_with_args(t)
    t = _SECTION_RE.sub("\n\n", t)
    t = _PAR_RE.sub("\n\n", t)
    t = _ENV_RE.sub("\n\n", t)
    t = _ITEM_RE.sub(" ", t)
    t = _ACCENT_SYM_RE.sub(_accent, t)
    t = _ACCENT_LET_RE.sub(_accent, t)
    t = _SYMBOL_RE.sub(lambda m: _SYMBOLS[m.group(1)], t)
    t = _SPACING_CMD_RE.sub(" ", t)
    t = _SPECIAL_RE.sub(lambda m: _ESCAPED.get(m.group(1), m.group(1)), t)  # escaped braces survive below
    t = _CMD_RE.sub("", t)
    t = t.translate(_BRACES)
    return t.replace("---", "—").replace("--", "–").replace("``", "“").replace("''", "”").replace("~", " ")


def paragraphs(body_latex: str, *, min_words: int = 5) -> list[str]:
    """The body's paragraphs as plain text, in order."""
    out = []
    for par in _PARSPLIT_RE.split(reduce_to_text(body_latex)):
        par = " ".join(par.split())
        if len(par.split()) >= min_words:
            out.append(par)
    return out


def paragraphs_with_refs(body_latex: str, *, min_words: int = 5) -> list[tuple[str, set[str]]]:
    """The same paragraphs as `paragraphs`, each with the labels it refers to (\\ref, \\cref, ...)."""
    refs: list[list[str]] = []
    out = []
    for par in _PARSPLIT_RE.split(reduce_to_text(body_latex, refs)):
        labels = {lab for m in _REF_MARK_RE.finditer(par) for lab in refs[ord(m.group(0)) - _REF_MARK]}
        par = " ".join(_REF_MARK_RE.sub(REF_PLACEHOLDER, par).split())
        if len(par.split()) >= min_words:
            out.append((par, labels))
    return out
