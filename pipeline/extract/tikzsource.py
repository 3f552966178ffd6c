"""The source of a drawn figure (TikZ/PGF and friends) with the document's definitions it needs.

    defs = document_definitions(doc_text, macro_spans)     # once per paper
    tikz_source(code, defs)  ->  "\\definecolor{ours}{RGB}{0,90,200}\\n\\tikzset{box/.style=...}\\n\\begin{tikzpicture}..."

A picture rarely stands alone: it uses the paper's colours, styles and macros. Definitions are taken from the
flattened document (preamble and body, comments removed), in document order, when the picture uses them,
directly or through another definition it uses:
- `\\newcommand`/`\\def`/`\\let`/... (the spans `collect_macros` recorded): when `\\name` appears;
  `\\newenvironment{name}`: when `\\begin{name}` appears;
- `\\tikzstyle{name}`, `\\definecolor{name}`, `\\colorlet{name}`: when `name` appears;
- `\\tikzset`/`\\pgfplotsset`/`\\pgfkeys`: when a style it defines (`name/.style`) appears, always when it only
  sets options (`compat=1.18`) or `every ...` styles, which apply to every picture;
- `\\usetikzlibrary`/`\\usepgfplotslibrary`: always (small, and needed to compile anything).
A definition the code already holds (a Dia or matplotlib export defines its colours inside the picture) is
not repeated, and a standalone file (`\\includestandalone`, with its own `\\documentclass`) gets none.
The result is capped at MAX_BYTES of UTF-8; a cut result ends with a `% [arxiv-forge: truncated ...]` line.
"""

import re
from dataclasses import dataclass

from pipeline.extract.texscan import match_bracket, read_group, read_optional, skip_ws

MAX_BYTES = 64 * 1024
_SETTING_RE = re.compile(r"\\(tikzset|pgfplotsset|pgfkeys|tikzstyle|definecolor|colorlet|usetikzlibrary"
                         r"|usepgfplotslibrary)(?![a-zA-Z])")
_DEFINED_RE = re.compile(
    r"\\(?:newcommand|renewcommand|providecommand|DeclareRobustCommand|newrobustcmd|renewrobustcmd"
    r"|DeclareMathOperator|DeclareSIUnit|[gex]?def|let)\*?\s*\{?\s*\\([a-zA-Z@]+|[^a-zA-Z@\s])"
    r"|\\(?:re)?newenvironment\*?\s*\{\s*([a-zA-Z@*]+)\s*\}")
_STYLE_KEY_RE = re.compile(r"([^,{}=\[\]]+?)\s*/\.(?:style|append style|prefix style|code|pic|estyle)")


@dataclass
class Definition:
    pos: int
    code: str
    uses: re.Pattern | None  # matches text that uses it; None: always included


def _name_pattern(name: str) -> re.Pattern:
    """`name` as a whole word (style and colour names), so `red` does not match `reddish`."""
    return re.compile(r"(?<![A-Za-z])" + re.escape(name.strip()) + r"(?![A-Za-z])")


def _macro_definition(doc: str, a: int, b: int) -> Definition | None:
    m = _DEFINED_RE.search(doc, a, min(b, a + 200))
    if m is None:
        return None
    if m.group(1):
        use = re.compile(re.escape("\\" + m.group(1)) + (r"(?![a-zA-Z@])" if m.group(1)[0].isalpha() else ""))
    else:
        use = re.compile(r"\\begin\s*\{" + re.escape(m.group(2)) + r"\}")
    return Definition(a, doc[a:b], use)


def _setting(doc: str, m: re.Match) -> Definition | None:
    cmd, i = m.group(1), m.end()
    if cmd == "tikzstyle":  # \tikzstyle{name}=[options] (or +=)
        g = read_group(doc, i)
        j = skip_ws(doc, g[1]) if g else i
        j = skip_ws(doc, j + (2 if doc.startswith("+=", j) else 1 if doc.startswith("=", j) else 0))
        end = match_bracket(doc, j) if j < len(doc) and doc[j] == "[" else None
        if g is None or end is None:
            return None
        return Definition(m.start(), doc[m.start():end], _name_pattern(g[0]))
    opt = read_optional(doc, i) if cmd == "definecolor" else None  # \definecolor[named]{..}{..}{..}
    groups = []
    i = opt[1] if opt else i
    for k in range({"definecolor": 3, "colorlet": 2}.get(cmd, 1)):
        if cmd == "colorlet" and k == 1 and (o := read_optional(doc, i)):
            i = o[1]
        g = read_group(doc, i)
        if g is None:
            return None
        groups.append(g[0])
        i = g[1]
    code = doc[m.start():i]
    if cmd in ("definecolor", "colorlet"):
        return Definition(m.start(), code, _name_pattern(groups[0]))
    if cmd in ("usetikzlibrary", "usepgfplotslibrary"):
        return Definition(m.start(), code, None)
    names = [n.strip() for n in _STYLE_KEY_RE.findall(groups[0]) if n.strip()]
    if not names or any(n.startswith("every ") for n in names):
        return Definition(m.start(), code, None)
    return Definition(m.start(), code, re.compile("|".join(_name_pattern(n).pattern for n in names)))


def document_definitions(doc: str, macro_spans: list[tuple[int, int]]) -> list[Definition]:
    """Every definition a picture of this document might use, in document order."""
    defs = [d for a, b in macro_spans if (d := _macro_definition(doc, a, b))]
    inside = sorted(macro_spans)
    for m in _SETTING_RE.finditer(doc):
        if any(a <= m.start() < b for a, b in inside):
            continue  # part of a macro body: comes with that macro
        d = _setting(doc, m)
        if d is not None:
            defs.append(d)
    return sorted(defs, key=lambda d: d.pos)


def tikz_source(code: str, defs: list[Definition], max_bytes: int = MAX_BYTES) -> str:
    """The picture's code preceded by the definitions it uses (transitively), capped at max_bytes."""
    if "\\documentclass" in code:
        defs = []  # a complete document: nothing may come before \documentclass
    defs = [d for d in defs if d.code not in code]
    chosen = {k for k, d in enumerate(defs) if d.uses is None}
    seen = "\n".join([code, *(defs[k].code for k in chosen)])  # text not yet searched for uses
    while True:
        more = {k for k, d in enumerate(defs) if k not in chosen and d.uses.search(seen)}
        if not more:
            break
        chosen |= more
        seen = "\n".join(defs[k].code for k in more)
    out = "\n".join([*(defs[k].code.strip() for k in sorted(chosen)), code.strip()])
    data = out.encode("utf-8")
    if len(data) <= max_bytes:
        return out
    kept = data[:max_bytes].decode("utf-8", errors="ignore")
    return f"{kept}\n% [arxiv-forge: truncated to {max_bytes} of {len(data)} bytes]"
