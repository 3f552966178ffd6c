"""Caption (and title) LaTeX -> plain text, with pylatexenc's LatexNodes2Text and a small custom context.

Rules (what a caption-LSTM and a reader of the dataset see):
- user macros are expanded first (`\\newcommand{\\ours}{SciFact}` gives "SciFact", not ""), by the
  caller via `macros.expand_macros`, and `\\xspace` becomes a space where TeX would put one;
- math is kept verbatim as `$...$` (`\\(...\\)` becomes `$...$`, display math `$$...$$`);
- `\\ref`, `\\eqref`, `\\autoref`, `\\cref`... become REF_PLACEHOLDER ("<ref>"); every `\\cite`
  variant becomes CITE_PLACEHOLDER ("<cit.>"): pylatexenc's own conventions, which the sample bucket's
  ground truth (pipeline/sample/text.py) also uses;
- changes package: `\\replaced{new}{old}` -> new, `\\added{x}` -> x, `\\deleted{x}` -> "";
- `\\label`, `\\footnote`, `\\index`, spacing and size commands vanish; `\\textcolor{c}{x}` -> x;
  `\\url{u}` -> u, `\\href{u}{t}` -> t; unknown macros vanish and their braced arguments stay as text;
- accents and special characters become Unicode (`\\"o` -> ö, `--` -> –, `~` -> space);
- whitespace is normalised to single spaces (no-break spaces included), and the text is stripped.
A caption without any markup skips the parser (most of the cost is pylatexenc's tokenizer: about
0.5-1 ms for a typical caption, see bench/extract_latex.py).
"""

import re
import unicodedata
from functools import lru_cache

MAX_CAPTION_CHARS = 20_000
REF_PLACEHOLDER = "<ref>"
CITE_PLACEHOLDER = "<cit.>"
_REF_MACROS = ("ref", "eqref", "autoref", "cref", "Cref", "pageref", "vref", "nameref", "subref", "Autoref",
               "cpageref", "Cpageref", "labelcref", "hyperref")
_CITE_MACROS = ("cite", "citep", "citet", "citealp", "citealt", "citeauthor", "citeyear", "citeyearpar",
                "Citep", "Citet", "parencite", "textcite", "autocite", "footcite", "nocite", "citenum",
                "Cite", "Parencite", "Textcite", "smartcite", "supercite", "citeal", "citetalias", "citepalias",
                "citealias", "citeauthoryear", "shortcite", "cites", "citealtp")
_DROP_MACROS = (("label", "{"), ("footnote", "[{"), ("thanks", "{"), ("footnotemark", "["), ("index", "{"), ("vspace", "*{"),
                ("phantom", "{"), ("hphantom", "{"), ("vphantom", "{"),
                ("protect", ""), ("centering", ""), ("xspace", ""), ("linewidth", ""), ("textwidth", ""),
                ("newline", ""), ("linebreak", "["), ("nolinebreak", "["), ("noindent", ""),
                ("setlength", "{{"), ("rule", "[{{"), ("raisebox", "{[[{"), ("color", "[{"),
                ("fontsize", "{{"), ("selectfont", ""), ("AFdirpush", "{"), ("AFdirpop", "{"),
                ("includegraphics", "*[[{"), ("deleted", "[{"))
_TEXT_STYLE_MACROS = ("mbox", "text", "textsc", "textsf", "textup", "texttt", "textbf", "textit", "textsl", "textmd",
                      "textrm", "textnormal", "emph", "underline", "uline", "highlight", "hl", "fbox", "makebox",
                      "textsuperscript", "textsubscript")
# siunitx unit macros and prefixes, as they print (\\SI{3}{\\milli\\metre} -> 3 mm)
_SI_UNITS = {
    "percent": "%", "metre": "m", "meter": "m", "second": "s", "gram": "g", "kilogram": "kg", "hertz": "Hz",
    "decibel": "dB", "degree": "°", "degreeCelsius": "°C", "kelvin": "K", "volt": "V", "watt": "W", "joule": "J",
    "newton": "N", "pascal": "Pa", "ampere": "A", "ohm": "Ω", "litre": "l", "liter": "l", "mole": "mol",
    "electronvolt": "eV", "arcsecond": "″", "arcminute": "′", "tesla": "T", "byte": "B", "bit": "bit",
    "minute": "min", "hour": "h", "day": "d", "year": "yr", "parsec": "pc", "astronomicalunit": "au",
    "kilo": "k", "mega": "M", "giga": "G", "tera": "T", "milli": "m", "micro": "µ", "nano": "n", "pico": "p",
    "centi": "c", "femto": "f", "per": "/", "squared": "²", "cubed": "³", "square": "", "cubic": "",
}
_SPACE_RE = re.compile(r"\s+")
_QUOTE_RE = re.compile(r"(?<![`'])(`|')(?![`'])")
_ENSUREMATH_RE = re.compile(r"\\ensuremath\s*\{")
_XSPACE_RE = re.compile(r"\\xspace(?![a-zA-Z])\s*(?=(.?))")
_MARKUP_RE = re.compile(r"[\\{}$~`'&%^_#]|--")
_MATH_RE = re.compile(r"\$\$.+?\$\$|(?<!\\)\$(?:[^$\\]|\\.)+\$|\\\(.+?\\\)|\\\[.+?\\\]", re.DOTALL)
_PLAIN_RE = re.compile(
    r"\\(?:begin|end)\s*\{[^{}]*\}"  # environment names
    r"|\\[uvHckbdrt](?![a-zA-Z])\s*[a-zA-Z]"  # letter accents with an undelimited argument (\\c c)
    r"|\\['`^\"~=.]\s*[a-zA-Z]"  # symbol accents (\\'e)
    r"|\\[a-zA-Z@]+\s?|\\."  # other control sequences, with the blank TeX skips after a word
    r"|([A-Za-z0-9,.;:()!?/=+<>*@| \n]{3,})"  # a plain run: no TeX specials, no ligature characters
)
_URL_RE = re.compile(r"\\url\s*\{([^{}]*)\}")
_PUA = 0xF0000  # Supplementary Private Use Area-A: never in real captions
_PUA_RE = re.compile("[\U000F0000-\U000FFFFD]")


@lru_cache(maxsize=1)
def _converter():
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec
    from pylatexenc.latex2text import get_default_latex_context_db as l2t_db
    from pylatexenc.latexwalker import get_default_latex_context_db
    from pylatexenc.macrospec import MacroSpec

    specs = [MacroSpec(n, "*[[{") for n in _CITE_MACROS] + [MacroSpec(n, "*{") for n in _REF_MACROS]
    specs += [MacroSpec(n, a) for n, a in _DROP_MACROS]
    specs += [MacroSpec("hspace", "*{"), MacroSpec("SI", "[{{"), MacroSpec("qty", "[{{"), MacroSpec("si", "[{"),
              MacroSpec("unit", "[{"), MacroSpec("num", "[{"), MacroSpec("SIrange", "[{{{")]
    specs += [
        MacroSpec("replaced", "[{{"), MacroSpec("added", "[{"), MacroSpec("url", "{"), MacroSpec("href", "[{{"),
        MacroSpec("textcolor", "[{{"), MacroSpec("colorbox", "[{{"), MacroSpec("caption", "*[{"),
        *(MacroSpec(n, "{") for n in _TEXT_STYLE_MACROS), MacroSpec("sout", "{"),
        MacroSpec("resizebox", "*{{{"), MacroSpec("scalebox", "{[{"), MacroSpec("texorpdfstring", "{{"),
    ]
    wdb = get_default_latex_context_db()
    wdb.add_context_category("arxiv-forge", prepend=True, macros=specs)

    tspecs = [MacroTextSpec(n, REF_PLACEHOLDER) for n in _REF_MACROS]
    tspecs += [MacroTextSpec(n, CITE_PLACEHOLDER) for n in _CITE_MACROS]
    tspecs += [MacroTextSpec(n, "") for n, _ in _DROP_MACROS]
    tspecs += [
        MacroTextSpec("replaced", "%(2)s"), MacroTextSpec("added", "%(2)s"), MacroTextSpec("url", "%(1)s"),
        MacroTextSpec("href", "%(3)s"), MacroTextSpec("textcolor", "%(3)s"), MacroTextSpec("colorbox", "%(3)s"),
        MacroTextSpec("caption", "%(3)s"), MacroTextSpec("resizebox", "%(4)s"), MacroTextSpec("scalebox", "%(3)s"),
        MacroTextSpec("sout", ""), MacroTextSpec("LaTeX", "LaTeX"), MacroTextSpec("TeX", "TeX"),
        MacroTextSpec("texorpdfstring", "%(1)s"),
        MacroTextSpec("hspace", " "), MacroTextSpec("S", "§"), MacroTextSpec("P", "¶"), MacroTextSpec("dag", "†"),
        MacroTextSpec("ddag", "‡"), MacroTextSpec("textdegree", "°"), MacroTextSpec("textbackslash", "\\"),
        # siunitx: a number and its unit as they print
        MacroTextSpec("SI", "%(2)s\N{NO-BREAK SPACE}%(3)s"), MacroTextSpec("qty", "%(2)s\N{NO-BREAK SPACE}%(3)s"),
        MacroTextSpec("si", "%(2)s"), MacroTextSpec("unit", "%(2)s"), MacroTextSpec("num", "%(2)s"),
MacroTextSpec("SIrange", "%(2)s–%(3)s %(4)s"),
        *(MacroTextSpec(n, v) for n, v in _SI_UNITS.items()),
    ]
    # Text-style commands keep their content as plain text. pylatexenc's defaults turn some of them into
    # Unicode "mathematical" letters (\texttt, \textsf) or drop them, which loses words from captions.
    tspecs += [MacroTextSpec(n, "%(1)s") for n in _TEXT_STYLE_MACROS]
    tdb = l2t_db()
    tdb.add_context_category("arxiv-forge", prepend=True, macros=tspecs)
    return wdb, LatexNodes2Text(latex_context=tdb, math_mode="verbatim", strict_latex_spaces=True)


def _ang(m: re.Match) -> str:
    """siunitx \\ang{d;m;s}: 11°, or ;;11 -> 11″."""
    parts = [p.strip() for p in m.group(1).split(";")]
    return "".join(f"{p}{u}" for p, u in zip(parts, "°′″", strict=False) if p)


_ANG_RE = re.compile(r"\\ang\s*(?:\[[^\]]*\])?\s*\{([^{}]*)\}")


def _xspace(text: str) -> str:
    def repl(m: re.Match) -> str:
        nxt = m.group(1)
        return " " if nxt and (nxt.isalnum() or nxt in "\\$(`") else ""

    return _XSPACE_RE.sub(repl, text)


def normalise_space(text: str) -> str:
    return _SPACE_RE.sub(" ", text.replace("\u00a0", " ")).strip()


@lru_cache(maxsize=4096)
def latex_to_text(latex: str) -> str:
    """Plain text of a caption-sized LaTeX fragment (macros already expanded by the caller)."""
    if not latex or not latex.strip():
        return ""
    if len(latex) > MAX_CAPTION_CHARS:  # a runaway (unclosed or macro-bombed) caption: bound the cost
        latex = latex[:MAX_CAPTION_CHARS]
    if not _MARKUP_RE.search(latex):
        return normalise_space(latex)
    from pylatexenc.latexwalker import LatexWalker

    if "\\xspace" in latex:
        latex = _xspace(latex)
    if "\\ang" in latex:
        latex = _ANG_RE.sub(_ang, latex)
    # Math is kept verbatim, so it need not go through pylatexenc's per-character tokenizer (its main
    # cost): each formula is swapped for a private-use character and put back afterwards.
    maths: list[str] = []

    def hide_text(src: str) -> str:
        maths.append(src)
        return chr(_PUA + len(maths) - 1)

    def hide(m: re.Match) -> str:
        return hide_text(m.group(0))

    if "\\url" in latex:  # URLs are verbatim: a % in them is not a comment
        latex = _URL_RE.sub(lambda m: hide_text(m.group(1)), latex)
    if "$" in latex or "\\(" in latex or "\\[" in latex:
        latex = _MATH_RE.sub(hide, latex)
    if "\\ensuremath" in latex:  # outside math (math is hidden by now): \ensuremath{X} is the formula $X$
        latex = _ensuremath(latex, hide_text)
    # Plain-text runs are passed through the same way: only markup is tokenized by pylatexenc. Control
    # words, accents and environment names are matched first so that their letters stay with them.
    latex = _PLAIN_RE.sub(lambda m: hide(m) if m.group(1) else m.group(0), latex)
    wdb, l2t = _converter()
    try:
        nodes, _, _ = LatexWalker(latex, latex_context=wdb, tolerant_parsing=True).get_latex_nodes()
        text = l2t.nodelist_to_text(nodes)
    except Exception:  # pylatexenc has odd corners (IndexError on some \def); never lose the caption
        text = re.sub(r"\\[a-zA-Z@]+\*?|[{}]", " ", latex)
    if "'" in text or "`" in text:  # TeX prints single quotes in text as ’ and ‘ (math is still hidden here)
        text = _QUOTE_RE.sub(lambda m: "’" if m.group(1) == "'" else "‘", text)
    if maths:
        text = _PUA_RE.sub(lambda m: _math_out(maths[ord(m.group(0)) - _PUA]), text)
    return normalise_space(unicodedata.normalize("NFC", text))


def _ensuremath(latex: str, hide_text) -> str:
    from pipeline.extract.texscan import read_group

    out, i = [], 0
    for m in _ENSUREMATH_RE.finditer(latex):
        if m.start() < i:
            continue
        g = read_group(latex, m.end() - 1)
        if g is None:
            continue
        out.append(latex[i:m.start()])
        out.append(hide_text(f"${g[0]}$"))
        i = g[1]
    return "".join(out) + latex[i:]


def _math_out(src: str) -> str:
    if src.startswith("\\("):
        return "$" + src[2:-2] + "$"
    if src.startswith("\\["):
        return "$$" + src[2:-2] + "$$"
    return src
