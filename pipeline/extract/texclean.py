"""Remove LaTeX source that never reaches the typeset paper, before any scanning.

Order matters and is the one `clean_tex` applies: `%` comments (not `\\%`, not inside `\\url`/`\\verb`/
verbatim environments), `comment`-like environments (also those declared with `\\excludecomment`),
`\\iffalse ... \\fi` blocks (nested conditionals counted, `\\else` branches of `\\iftrue` dropped), and, for
the main file, everything after `\\end{document}`. Dead figures in any of these must not be extracted.
Everything here is regex plus a linear scan: a 100 KB file costs about a millisecond.
"""

import re

# One alternation, so that escapes and verbatim spans are consumed before a `%` can be taken as a comment.
# A comment eats its end of line and the next line's leading blanks (as TeX does), unless the next line is
# blank: then the newline stays so that the paragraph break survives.
# Group 1 is what is kept; a comment leaves group 1 unmatched, and `\1` then substitutes "" (no callback).
_COMMENT_RE = re.compile(
    r"("
    r"\\begin\{verbatim\*?\}.*?\\end\{verbatim\*?\}|\\begin\{Verbatim\}.*?\\end\{Verbatim\}"
    r"|\\begin\{lstlisting\}.*?\\end\{lstlisting\}|\\begin\{minted\}.*?\\end\{minted\}"  # verbatim
    r"|\\(?:url|path)\{[^}\n]*\}"  # URLs keep their % signs
    r"|\\verb\*?([^a-zA-Z\s*])[^\n]*?\2"
    r"|\\[\\%]"  # \\ and \% are escapes, not comment starts
    r")|%[^\n]*(?:\n[ \t]*+(?!\n))?",
    re.DOTALL,
)


def strip_comments(text: str) -> str:
    """Remove `%` comments the way TeX reads them; `\\%`, URLs and verbatim text keep their percent signs."""
    if "%" not in text:
        return text
    return _COMMENT_RE.sub(r"\1", text)


_EXCLUDE_DECL_RE = re.compile(r"\\excludecomment\s*\{\s*([A-Za-z@*]+)\s*\}")


def comment_env_names(text: str) -> list[str]:
    """`comment` plus every environment declared with `\\excludecomment{name}` (comment package)."""
    names = ["comment"]
    names += [n for n in _EXCLUDE_DECL_RE.findall(text) if n not in names]
    return names


def remove_comment_envs(text: str, names: list[str] | None = None) -> str:
    """Drop `\\begin{comment}...\\end{comment}` (and declared look-alikes); their bodies are never typeset.

    The comment package reads the body verbatim, so nesting is impossible and the first `\\end` closes it.
    An unclosed `\\begin{comment}` runs to the end of the file, as in LaTeX.
    """
    names = names or comment_env_names(text)
    for name in names:
        if "\\begin" not in text:
            break
        esc = re.escape(name)
        pat = re.compile(r"\\begin\s*\{" + esc + r"\}.*?(?:\\end\s*\{" + esc + r"\}|\Z)", re.DOTALL)
        text = pat.sub("", text)
    return text


# Conditionals: every control word starting with "if" opens one, except macros that merely look like it
# (etoolbox, ifthen, xifthen ...) and take their branches as arguments. `\newif\iffoo` defines, not opens.
_IF_TOKEN_RE = re.compile(r"\\(newif\s*\\)?(if[a-zA-Z@]*|else|fi|or)(?![a-zA-Z@])")
_NOT_CONDITIONALS = frozenset({
    "ifthenelse", "ifdef", "ifndef", "ifcsdef", "ifcsundef", "ifdefmacro", "ifdefempty", "ifcsempty",
    "ifstrequal", "ifstrempty", "ifblank", "ifnumcomp", "ifnumequal", "ifnumless", "ifnumgreater",
    "ifdimcomp", "ifboolexpr", "ifboolexpe", "ifbool", "ifnotbool", "iftoggle", "ifnottoggle",
    "ifdefstring", "ifcsstring", "ifdefequal", "ifdefvoid", "ifcsvoid", "ifundef", "ifltxcounter",
    "ifdefltxprotect", "ifdefparam", "ifdefprotected", "ifpatchable", "ifinlist", "ifdefstrequal",
    "ifnumodd", "ifrmnum", "ifdimequal", "ifdimless", "ifdimgreater", "ifcsmacro", "ifcsltxprotect",
    "ifstrmatch", "ifcase@", "ifpackageloaded", "ifclassloaded", "iffileexists",
})


def _if_tokens(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) for each conditional token; kind is 'if:<name>', 'else', 'fi' or 'or'."""
    out = []
    for m in _IF_TOKEN_RE.finditer(text):
        if m.group(1):  # `\newif\iffoo` defines a conditional, it does not open one
            continue
        word = m.group(2)
        if word in ("else", "fi", "or"):
            out.append((word, m.start(), m.end()))
        elif word not in _NOT_CONDITIONALS:
            if _in_definition_body(text, m.end()):
                continue
            out.append(("if:" + word, m.start(), m.end()))
    return out


def _in_definition_body(text: str, end: int) -> bool:
    """`\\def\\skipon{\\iffalse}`: a conditional that is the whole body of a definition is not opened here."""
    rest = text[end:end + 8].lstrip()
    return rest.startswith("}")


def _static_value(name: str, text: str, end: int) -> bool | None:
    """True/False for conditionals whose value is known without running TeX; None otherwise."""
    if name == "iffalse":
        return False
    if name == "iftrue":
        return True
    if name == "if":  # `\if0` / `\if 0 1`: false unless two equal characters follow
        rest = text[end:end + 4].lstrip(" ")
        if len(rest) >= 2 and rest[0] in "01" and rest[1] in "01":
            return rest[0] == rest[1]
        if rest[:1] in ("0", "1") and (len(rest) < 2 or not rest[1].isdigit()):
            return False
    return None


def remove_false_conditionals(text: str) -> str:
    """Resolve `\\iffalse`/`\\iftrue`/`\\if0` blocks (with their `\\else`), counting nested conditionals.

    Unknown conditionals (`\\ifpdf`, `\\ifx`...) keep both branches. A block whose `\\fi` never comes is
    left alone rather than guessing where it ends.
    """
    if "\\if" not in text:
        return text
    cuts: list[tuple[int, int]] = []
    stack: list[list] = []  # [value, start, end, else_start, else_end]
    for kind, start, end in _if_tokens(text):
        if kind.startswith("if:"):
            stack.append([_static_value(kind[3:], text, end), start, end, None, None])
        elif kind == "else":
            if stack and stack[-1][3] is None:
                stack[-1][3], stack[-1][4] = start, end
        elif kind == "fi" and stack:
            value, s0, e0, es, ee = stack.pop()
            if value is None:
                continue
            if value:  # keep the then-branch
                cuts.append((s0, e0))
                cuts.append((es, end) if es is not None else (start, end))
            elif es is None:  # nothing survives
                cuts.append((s0, end))
            else:  # keep the else-branch
                cuts += [(s0, ee), (start, end)]
    if not cuts:
        return text
    cuts.sort()
    parts, pos = [], 0
    for a, b in cuts:
        if b <= pos:
            continue
        parts.append(text[pos:max(a, pos)])
        pos = b
    parts.append(text[pos:])
    return "".join(parts)


# The document's bounds, for every module that looks for them (main file choice, input expansion, analysis).
BEGIN_DOCUMENT_RE = re.compile(r"\\begin\s*\{document\}")
END_DOCUMENT_RE = re.compile(r"\\end\s*\{document\}")


def cut_after_end_document(text: str) -> str:
    """Drop everything after the first `\\end{document}` (TeX stops reading there)."""
    m = END_DOCUMENT_RE.search(text)
    return text[: m.end()] if m else text


_ENDINPUT_RE = re.compile(r"\\endinput(?![a-zA-Z@])")


def cut_at_endinput(text: str) -> str:
    """An `\\input` file stops at `\\endinput` (the rest of that line is still read, which we ignore)."""
    m = _ENDINPUT_RE.search(text)
    return text[: m.start()] if m else text


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def clean_tex(text: str, *, main: bool = False, comment_envs: list[str] | None = None) -> str:
    """Everything above, in order. `main=True` also cuts after `\\end{document}`; others stop at `\\endinput`."""
    text = strip_comments(normalise_newlines(text))
    text = remove_comment_envs(text, comment_envs)
    text = remove_false_conditionals(text)
    return cut_after_end_document(text) if main else cut_at_endinput(text)
