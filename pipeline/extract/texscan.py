"""Small, fast LaTeX scanning primitives: brace/bracket matching and argument reading.

These work on comment-free text (see texclean) and never raise: a group that never closes gives None.
They follow TeX's reading rules where it matters: `\\{` and `\\}` are not group delimiters, an optional
argument ends at the first `]` outside braces (LaTeX does not count nested brackets), and an undelimited
argument is one token (a character or a control sequence).
"""

import re

_BRACE_TOK = re.compile(r"\\[\\{}]|[{}]")
_BRACKET_TOK = re.compile(r"\\[\\{}\]]|[{}\]]")
_CS_RE = re.compile(r"\\(?:[a-zA-Z@]+|.)", re.DOTALL)
_WS = " \t\n"


def skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


# No argument we read is longer than this: an unclosed brace costs a bounded scan, not one to the end of
# a hostile multi-megabyte file for every token that opens one.
MAX_ARG_CHARS = 200_000


def match_brace(text: str, i: int, limit: int = MAX_ARG_CHARS) -> int | None:
    """`text[i]` is `{`: index just past its matching `}`, or None if it never closes (within `limit`)."""
    depth = 0
    for m in _BRACE_TOK.finditer(text, i, i + limit):
        t = m.group(0)
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
            if depth == 0:
                return m.end()
    return None


def match_bracket(text: str, i: int, limit: int = 20_000) -> int | None:
    """`text[i]` is `[`: index just past the `]` that ends this optional argument, or None."""
    depth = 0
    for m in _BRACKET_TOK.finditer(text, i + 1, i + limit):
        t = m.group(0)
        if t == "{":
            depth += 1
        elif t == "}":
            depth = max(0, depth - 1)
        elif t == "]" and depth == 0:
            return m.end()
    return None


def read_group(text: str, i: int) -> tuple[str, int] | None:
    """A mandatory argument at or after `i` (blanks skipped): (content without braces, end) or None."""
    i = skip_ws(text, i)
    if i >= len(text):
        return None
    c = text[i]
    if c == "{":
        end = match_brace(text, i)
        return (text[i + 1:end - 1], end) if end is not None else None
    if c in "}]":
        return None
    if c == "\\":
        m = _CS_RE.match(text, i)
        return (m.group(0), m.end()) if m else None
    return c, i + 1


def read_optional(text: str, i: int) -> tuple[str, int] | None:
    """An optional `[...]` argument at or after `i` (blanks skipped): (content, end) or None if absent."""
    j = skip_ws(text, i)
    if j < len(text) and text[j] == "[":
        end = match_bracket(text, j)
        if end is not None:
            return text[j + 1:end - 1], end
    return None


def read_star(text: str, i: int) -> int:
    """Index past an optional `*` (after blanks), else `i`."""
    j = skip_ws(text, i)
    return j + 1 if j < len(text) and text[j] == "*" else i


def find_env_end(text: str, name: str, start: int) -> tuple[int, int] | None:
    """(start, end) of the `\\end{name}` closing an environment whose body starts at `start`.

    Nested environments of the same name are counted; None when it never closes.
    """
    esc = re.escape(name)
    pat = re.compile(r"\\(begin|end)\s*\{" + esc + r"\}")
    depth = 1
    for m in pat.finditer(text, start):
        depth += 1 if m.group(1) == "begin" else -1
        if depth == 0:
            return m.start(), m.end()
    return None
