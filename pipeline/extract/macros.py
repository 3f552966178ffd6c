"""User macros: collect simple definitions, expand them textually where figures and captions need them.

Collected: `\\newcommand`, `\\renewcommand`, `\\providecommand`, `\\DeclareRobustCommand`,
`\\newrobustcmd` (starred or not; name braced or not; `[n]` arguments; `[default]` for an optional first
argument), `\\def`/`\\gdef`/`\\edef`/`\\xdef` with undelimited parameters `#1#2...` (delimited parameter
texts are skipped), `\\let\\a\\b` (as a zero-argument alias), `\\DeclareMathOperator`, and
`\\newenvironment`/`\\renewenvironment` (begin and end code, arguments go to the begin code).

Expansion is plain substitution with TeX's argument rules (an undelimited argument is a braced group or
one token; blanks after a control word are skipped), re-scanned so that macros using macros work, with a
cap on steps and output size (a self-referential definition cannot loop). A few names that the figure
scanner relies on (`\\caption`, `\\includegraphics`, `\\begin`, sectioning...) are never expanded even if
a paper redefines them, because their redefinitions wrap the same meaning in layout code.
"""

import re
from dataclasses import dataclass, field

from pipeline.extract.texscan import match_brace, read_group, read_optional, skip_ws

PROTECTED = frozenset({
    "begin", "end", "caption", "captionof", "label", "includegraphics", "subfloat", "subfigure",
    "subcaption", "subcaptionbox", "part", "chapter", "section", "subsection", "subsubsection", "paragraph",
    "subparagraph", "appendix", "input", "include", "subfile", "import", "subimport", "ref", "eqref",
    "autoref", "cref", "Cref", "cite", "citep", "citet", "item", "par", "graphicspath",
    "DeclareGraphicsExtensions", "plotone", "plottwo", "plotfiddle", "epsfig", "psfig", "epsfbox",
    "epsffile", "figcaption", "newcommand", "renewcommand", "providecommand", "def", "let", "gdef",
    "edef", "xdef", "newenvironment", "renewenvironment", "documentclass", "usepackage", "title",
    "AFdirpush", "AFdirpop", "relax", "protect", "xspace", "maketitle", "bibliography", "footnote",
    "thanks", "author", "date", "centering", "textwidth", "linewidth", "columnwidth",
})

# Bodies that make a macro "figure-relevant": expanding these in the whole body is what lets the scanner
# see figures produced by user macros (\fig{file}{caption}) and sections produced by wrappers.
_FIGURE_CUE_RE = re.compile(
    r"\\(?:begin|end)\s*\{(?:figure|wrapfigure|sidewaysfigure|SCfigure|subfigure|teaserfigure|"
    r"marginfigure|floatingfigure|tikzpicture|pgfpicture)"
    r"|\\(?:includegraphics|caption|captionof|subfloat|subfigure|plotone|plottwo|plotfiddle|epsfig|psfig|"
    r"epsfbox|epsffile|figcaption|includesvg|includestandalone|section|subsection|chapter|appendix|"
    r"graphicspath)(?![a-zA-Z])"
)

_NEWCOMMAND_RE = re.compile(
    r"\\(newcommand|renewcommand|providecommand|DeclareRobustCommand|newrobustcmd|renewrobustcmd"
    r"|DeclareMathOperator|DeclareSIUnit)\*?"
)
_DEF_RE = re.compile(r"\\(?:long\s*\\|global\s*\\|protected\s*\\)*(g|e|x)?def\s*\\([a-zA-Z@]+|[^a-zA-Z@\s])")
_LET_RE = re.compile(r"\\(?:global\s*\\)?let\s*\\([a-zA-Z@]+)\s*=?\s*(\\(?:[a-zA-Z@]+|.))")
_NEWENV_RE = re.compile(r"\\(newenvironment|renewenvironment)\*?\s*\{\s*([a-zA-Z@*]+)\s*\}")
_PARAMS_RE = re.compile(r"(?:#[1-9])*")
_NAME_RE = re.compile(r"\s*(?:\{\s*\\([a-zA-Z@]+|[^a-zA-Z@\s])\s*\}|\\([a-zA-Z@]+|[^a-zA-Z@\s]))")
_ARGSUB_RE = re.compile(r"#(#|[1-9])")
_LETTERS_RE = re.compile(r"[a-zA-Z]+")
_INTERNAL_RE = re.compile(r"\\[a-zA-Z]+@|\\@[a-zA-Z]|\\(?:expandafter|csname|futurelet|afterassignment|ifnextchar)(?![a-zA-Z])")


@dataclass
class Macro:
    name: str  # without the backslash
    nargs: int
    default: str | None  # default of an optional first argument, or None when all are mandatory
    body: str


@dataclass
class EnvMacro:
    name: str
    nargs: int
    default: str | None
    begin: str
    end: str


@dataclass
class MacroTable:
    macros: dict[str, Macro] = field(default_factory=dict)
    envs: dict[str, EnvMacro] = field(default_factory=dict)
    spans: list[tuple[int, int]] = field(default_factory=list)  # definition spans in the scanned text
    acronyms: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (short, long): glossaries, acro
    _expandable: set[str] | None = None

    def expandable(self) -> set[str]:
        """Names safe to expand textually: letters only, not protected, and not internal code (a body
        using `@` control sequences is package programming, e.g. a local .sty redefining \\thanks)."""
        if self._expandable is None:
            self._expandable = {n for n, m in self.macros.items() if n not in PROTECTED
                                and _LETTERS_RE.fullmatch(n) and not _INTERNAL_RE.search(m.body)}
        return self._expandable


def _nargs_default(text: str, i: int) -> tuple[int, str | None, int]:
    nargs, default = 0, None
    opt = read_optional(text, i)
    if opt is not None and opt[0].strip().isdigit():
        nargs, i = min(int(opt[0].strip()), 9), opt[1]
        opt = read_optional(text, i)
        if opt is not None:
            default, i = opt[0], opt[1]
    return nargs, default, i


def _add(table: MacroTable, m: Macro, kind: str) -> None:
    table._expandable = None
    if kind == "providecommand" and m.name in table.macros:
        return
    table.macros[m.name] = m


def collect_macros(text: str, table: MacroTable | None = None, *, record_spans: bool = True) -> MacroTable:
    """All simple macro and environment definitions in `text`, later definitions winning; acronyms too."""
    table = table or MacroTable()
    if "\\" not in text:
        return table
    if "cro" in text or "glossaryentry" in text:
        _collect_acronyms(text, table)
    events: list[tuple[int, str, re.Match]] = []
    for rx, kind in ((_NEWCOMMAND_RE, "new"), (_DEF_RE, "def"), (_LET_RE, "let"), (_NEWENV_RE, "env")):
        if kind == "def" and "def" not in text:
            continue
        events += [(m.start(), kind, m) for m in rx.finditer(text)]
    events.sort(key=lambda e: e[0])
    last_end = 0
    for start, kind, m in events:
        if start < last_end:  # inside a definition body we already consumed
            continue
        end = _parse_definition(text, kind, m, table)
        if end is not None:
            if record_spans:
                table.spans.append((start, end))
            last_end = end
    return table


def _parse_definition(text: str, kind: str, m: re.Match, table: MacroTable) -> int | None:
    if kind == "new":
        cmd = m.group(1)
        nm = _NAME_RE.match(text, m.end())
        if not nm:
            return None
        name = nm.group(1) or nm.group(2)
        if cmd == "DeclareMathOperator":
            body = read_group(text, nm.end())
            if body is None:
                return None
            _add(table, Macro(name, 0, None, "\\operatorname{" + body[0] + "}"), cmd)
            return body[1]
        nargs, default, i = _nargs_default(text, nm.end())
        body = _read_body(text, i)
        if body is None:
            return None
        _add(table, Macro(name, nargs, default, body[0]), cmd)
        return body[1]
    if kind == "def":
        name = m.group(2)
        pm = _PARAMS_RE.match(text, m.end())
        j = skip_ws(text, pm.end())
        if j >= len(text) or text[j] != "{":
            # delimited parameters (\def\a#1.{...}): not a simple macro; skip its body if we can see it
            return None
        body = _read_body(text, j)
        if body is None:
            return None
        _add(table, Macro(name, pm.group(0).count("#"), None, body[0]), "def")
        return body[1]
    if kind == "let":
        target = m.group(2)
        if target[1:] != m.group(1):
            _add(table, Macro(m.group(1), 0, None, target), "let")
        return m.end()
    # environments
    name = m.group(2)
    nargs, default, i = _nargs_default(text, m.end())
    begin = _read_body(text, i)
    if begin is None:
        return None
    end = _read_body(text, begin[1])
    if end is None:
        return None
    table.envs[name] = EnvMacro(name, nargs, default, begin[0], end[0])
    return end[1]


def _read_body(text: str, i: int) -> tuple[str, int] | None:
    j = skip_ws(text, i)
    if j < len(text) and text[j] == "{":
        end = match_brace(text, j)
        if end is not None:
            return text[j + 1:end - 1], end
        return None
    return read_group(text, j)


def blank_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """Remove definition spans (so that expanding never rewrites a definition's own name)."""
    if not spans:
        return text
    out, pos = [], 0
    for a, b in sorted(spans):
        if a < pos:
            continue
        out.append(text[pos:a])
        pos = b
    out.append(text[pos:])
    return "".join(out)


def figure_relevant(table: MacroTable) -> set[str]:
    """Names of macros whose expansion (transitively) contains figure, graphics, caption or sectioning code."""
    names = table.expandable()
    # A macro that throws its argument away (\newcommand{\cut}[1]{}) hides whatever it is given, figures
    # included, so it is expanded (removed) too.
    relevant = {n for n in names if _FIGURE_CUE_RE.search(table.macros[n].body)
                or table.macros[n].nargs and not table.macros[n].body.strip()}
    while relevant:
        more = {n for n in names - relevant if _uses(table.macros[n].body, relevant)}
        if not more:
            break
        relevant |= more
    return relevant


def label_macros(table: MacroTable) -> set[str]:
    """User macros that set a label (\\newcommand{\\figlabel}[1]{\\label{fig:#1}})."""
    return {n for n in table.expandable() if "\\label" in table.macros[n].body}


def figure_relevant_envs(table: MacroTable) -> set[str]:
    return {n for n, e in table.envs.items() if _FIGURE_CUE_RE.search(e.begin + e.end)}


# Control words are found with one cheap regex and looked up in a set: much faster than an alternation of
# a paper's hundreds of macro names, which Python's re tries one by one at every backslash.
_CW_RE = re.compile(r"\\([a-zA-Z]+)")


def _uses(text: str, names: set[str]) -> bool:
    return "\\" in text and any(n in names for n in _CW_RE.findall(text))


def _substitute(body: str, args: list[str]) -> str:
    if "#" not in body:
        return body

    def repl(m: re.Match) -> str:
        g = m.group(1)
        if g == "#":
            return "#"
        k = int(g) - 1
        return args[k] if k < len(args) else ""

    return _ARGSUB_RE.sub(repl, body)


def _read_args(text: str, i: int, mac: Macro) -> tuple[list[str], int] | None:
    args: list[str] = []
    need = mac.nargs
    if mac.default is not None and need > 0:
        opt = read_optional(text, i)
        if opt is not None:
            args.append(opt[0])
            i = opt[1]
        else:
            args.append(mac.default)
        need -= 1
    for _ in range(need):
        g = read_group(text, i)
        if g is None:
            return None
        args.append(g[0])
        i = g[1]
    return args, i


_ACRO_DEF_RE = re.compile(r"\\(newacronym|acrodef|newacro|DeclareAcronym|newglossaryentry)(?![a-zA-Z])")
_KEYVAL_RE = r"(?:^|,)\s*{}\s*=\s*"
_ACRO_USE_RE = re.compile(
    r"\\(gls|Gls|GLS|glspl|Glspl|glstext|Glstext|glsentryshort|glsentrytext|acrshort|Acrshort|acrshortpl|acrlong|"
    r"Acrlong|acrfull|Acrfull|ac|Ac|acs|acl|Acl|acf|Acf|acp|Acp|acsp|aclp|acfp|glsxtrshort)\*?(?![a-zA-Z])\s*(?:\[[^\]]*\])?\s*\{([^{}]+)\}")


def _keyval(body: str, key: str) -> str | None:
    m = re.search(_KEYVAL_RE.format(key), body)
    if not m:
        return None
    g = read_group(body, m.end())
    if g is not None and body[skip_ws(body, m.end())] == "{":
        return g[0]
    return body[m.end():].split(",", 1)[0].strip() or None


def _collect_acronyms(text: str, table: MacroTable) -> None:
    """\\newacronym{key}{short}{long} (glossaries), \\acrodef/\\newacro{key}[short]{long} (acronym, acro),
    \\DeclareAcronym{key}{short=..., long=...}, \\newglossaryentry{key}{name=...}."""
    for m in _ACRO_DEF_RE.finditer(text):
        i = m.end()
        if m.group(1) == "newacronym":
            opt = read_optional(text, i)
            i = opt[1] if opt else i
        args = []
        for _ in range(3):
            opt = read_optional(text, i) if args and m.group(1) in ("acrodef", "newacro") else None
            if opt is not None:
                args.append(opt[0])
                i = opt[1]
                continue
            g = read_group(text, i)
            if g is None or (m.group(1) in ("DeclareAcronym", "newglossaryentry") and len(args) == 2):
                break
            args.append(g[0])
            i = g[1]
        kind = m.group(1)
        if kind == "newacronym" and len(args) == 3:
            table.acronyms[args[0].strip()] = (args[1], args[2])
        elif kind in ("acrodef", "newacro") and len(args) >= 2:
            short, long = (args[1], args[2]) if len(args) == 3 else (args[0], args[1])
            table.acronyms[args[0].strip()] = (short, long)
        elif kind == "DeclareAcronym" and len(args) == 2:
            short = _keyval(args[1], "short")
            table.acronyms[args[0].strip()] = (short or args[0], _keyval(args[1], "long") or short or args[0])
        elif kind == "newglossaryentry" and len(args) == 2:
            name = _keyval(args[1], "name") or _keyval(args[1], "text")
            if name:
                table.acronyms[args[0].strip()] = (name, name)


def expand_acronyms(text: str, table: MacroTable) -> str:
    """Glossary and acronym references as the text they print: the short form (a caption is typeset once to
    measure it, which uses up `\\gls`'s first-use flag), plural with an s, the long form for \\acl/\\acrlong."""
    if not table.acronyms or "\\" not in text:
        return text

    def repl(m: re.Match) -> str:
        entry = table.acronyms.get(m.group(2).strip())
        if entry is None:
            return m.group(0)
        cmd = m.group(1).lower()
        short, long = entry
        if cmd in ("acl", "acrlong", "aclp"):
            word = long
        elif cmd in ("acf", "acrfull", "acfp"):
            word = f"{long} ({short})"
        else:
            word = short
        if cmd.endswith("pl") or cmd in ("acp", "acsp", "aclp", "acfp", "acrshortpl"):
            word += "s"
        return word[:1].upper() + word[1:] if m.group(1)[0].isupper() else word

    return _ACRO_USE_RE.sub(repl, text)


class _Budget:
    def __init__(self, steps: int, chars: int):
        self.steps = steps
        self.chars = chars


def expand_macros(text: str, table: MacroTable, names: set[str] | None = None, *,
                  max_steps: int = 20_000, max_chars: int = 5_000_000, max_depth: int = 12) -> str:
    """Expand uses of `names` (default: every expandable user macro) in `text`."""
    full = names is None
    names = table.expandable() if names is None else names & table.expandable()
    if not names or not text or "\\" not in text:
        return expand_acronyms(text, table) if full else text
    out = _expand(text, table, names, _Budget(max_steps, max_chars), 0, max_depth)
    return expand_acronyms(out, table) if full else out


def _finder(names: set[str]) -> re.Pattern:
    """A few names: one alternation, scanned in C. Many: every control word, looked up in the set."""
    if len(names) > _ALTERNATION_MAX:
        return _CW_RE
    key = frozenset(names)
    rx = _ALT_CACHE.get(key)
    if rx is None:
        alt = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
        rx = _ALT_CACHE[key] = re.compile(r"\\(" + alt + r")(?![a-zA-Z])")
        if len(_ALT_CACHE) > 512:
            _ALT_CACHE.clear()
            _ALT_CACHE[key] = rx
    return rx


_ALTERNATION_MAX = 24
_ALT_CACHE: dict[frozenset, re.Pattern] = {}


def _expand(text: str, table: MacroTable, names: set[str], budget: _Budget, depth: int, max_depth: int) -> str:
    out: list[str] = []
    pos = 0
    for m in _finder(names).finditer(text):
        if m.start() < pos or m.group(1) not in names:
            continue
        mac = table.macros[m.group(1)]
        if mac.nargs == 0:
            after = skip_ws(text, m.end())  # TeX skips blanks after a control word
            args: list[str] = []
        else:
            got = _read_args(text, m.end(), mac)
            if got is None:
                continue
            args, after = got
        budget.steps -= 1
        if budget.steps < 0 or depth >= max_depth:
            break
        rep = _substitute(mac.body, args)
        if _uses(rep, names):
            rep = _expand(rep, table, names, budget, depth + 1, max_depth)
        rep = _fix_join(rep, text[after:after + 1])
        budget.chars -= len(rep)
        if budget.chars < 0:
            break
        out.append(text[pos:m.start()])
        out.append(rep)
        pos = after
    out.append(text[pos:])
    return "".join(out)


_TRAILING_CS_RE = re.compile(r"\\[a-zA-Z@]+$")


def _fix_join(rep: str, nxt: str) -> str:
    """Keep tokens apart where textual substitution would glue them. `\\ours is` prints "SciFactis" in
    TeX too, but `\\xspace` adds the space, and a body ending in a control word must not swallow letters."""
    if rep.endswith("\\xspace"):
        rep = rep[: -len("\\xspace")]
        return rep + " " if nxt and (nxt.isalnum() or nxt in "\\$(`") else rep
    if nxt.isalpha() and _TRAILING_CS_RE.search(rep):
        return rep + " "
    return rep


def expand_environments(text: str, table: MacroTable, names: set[str] | None = None) -> str:
    """Replace `\\begin{env}args ... \\end{env}` of user environments by their begin/end code."""
    names = set(table.envs) if names is None else names & set(table.envs)
    if not names or "\\begin" not in text:
        return text
    alt = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    rx = re.compile(r"\\(begin|end)\s*\{(" + alt + r")\}")
    out: list[str] = []
    pos = 0
    while True:
        m = rx.search(text, pos)
        if m is None:
            break
        env = table.envs[m.group(2)]
        out.append(text[pos:m.start()])
        if m.group(1) == "end":
            out.append(env.end)
            pos = m.end()
            continue
        got = _read_args(text, m.end(), Macro(env.name, env.nargs, env.default, env.begin))
        if got is None:
            out.append(m.group(0))
            pos = m.end()
            continue
        out.append(_substitute(env.begin, got[0]))
        pos = got[1]
    out.append(text[pos:])
    return "".join(out)
