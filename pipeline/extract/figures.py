"""Find figure environments and what is inside them with a cheap scanner (regex + brace matching).

No whole-document parse: figure environments are located by `\\begin{...}`/`\\end{...}` matching, and
inside each one only the commands that matter are read with TeX's argument rules (texscan).

Figures: `figure`, `figure*`, `wrapfigure`, `wrapfloat{figure}`, `sidewaysfigure(*)`, `SCfigure(*)`,
`teaserfigure`, `marginfigure`, `floatingfigure`; a `\\captionof{figure}` outside them (its enclosing
environment, e.g. a minipage, is the figure); AASTeX `\\figcaption[file]{...}` outside them.
Graphics: `\\includegraphics` (up to two optional arguments, spread over lines), `\\epsfig`/`\\psfig`
(`file=`/`figure=`), `\\epsfbox`/`\\epsffile`, `\\plotone`/`\\plottwo`/`\\plotfiddle`, `\\includesvg`,
`\\special{psfile=...}`,
and drawings without a file: outermost `tikzpicture`/`pgfpicture`/`pspicture`/`picture` environments
(unless they wrap an `\\includegraphics`), `\\input{x.tikz|x.pgf}` and `\\includestandalone`.
Sub-figures: `subfigure` environments (subcaption), `\\subfloat[list][caption]{body}` (subfig),
`\\subfigure[list][caption]{body}` (subfigure), `\\subcaptionbox{caption}{body}`; their captions and
labels go to the graphics inside them. Main caption: the long form of the first `\\caption[short]{long}`
outside sub-figures, before or after the graphics; label: the first `\\label` outside sub-figures,
including one inside the caption. A float with several main captions is split into one figure per
caption (LaTeX numbers each) when every caption sits in its own minipage, or when cutting after each
caption leaves every piece with a graphic; otherwise the first caption wins and a warning is recorded.
(AASTeX `\\gridline{\\fig{file}{width}{caption}}` is rewritten to `\\subfloat` by paper.py first.)
Sections: the enclosing `\\chapter`/`\\section` title, and
`\\appendix` (or an appendix environment) turning every later figure into the appendix.
"""

import bisect
import re
from dataclasses import dataclass, field

from pipeline.extract.texscan import (
    find_env_end,
    match_brace,
    read_group,
    read_optional,
    read_star,
    skip_ws,
)

FIGURE_ENVS = ("figure", "figure*", "wrapfigure", "wrapfigure*", "wrapfloat", "sidewaysfigure",
               "sidewaysfigure*", "SCfigure", "SCfigure*", "teaserfigure", "marginfigure", "floatingfigure",
               "figwindow")
DRAWING_ENVS = ("tikzpicture", "pgfpicture", "pspicture", "picture", "circuitikz", "dependency", "feynman", "overpic")
_FIG_BEGIN_RE = re.compile(r"\\begin\s*\{(" + "|".join(re.escape(e) for e in FIGURE_ENVS) + r")\}")
_SUB_RE = re.compile(r"\\begin\s*\{(subfigure)\}|\\(subfloat|subfigure|sidesubfloat|subcaptionbox|subbottom|subtop)"
                     r"(?![a-zA-Z])")
_TOKEN_RE = re.compile(
    r"\\(includegraphics|epsfig|psfig|epsfbox|epsffile|plotone|plottwo|plotfiddle|includesvg|includestandalone"
    r"|caption|captionof|subcaption|figcaption|label|input|special|feynmandiagram)(?![a-zA-Z])"
    r"|\\begin\s*\{(" + "|".join(DRAWING_ENVS) + r")\}"
)
_EPSFIG_FILE_RE = re.compile(r"(?:^|,)\s*(?:file|figure)\s*=\s*([^,]+)")
_PSFILE_RE = re.compile(r"^\s*psfile\s*=\s*\"?([^\s\"}]+)")
_SECTION_RE = re.compile(
    r"\\(chapter|section|subsection|subsubsection)(?![a-zA-Z])|\\appendix(?![a-zA-Z])"
    r"|\\begin\s*\{(?:appendix|appendices|subappendices)\}"
)
_GPATH_RE = re.compile(r"\\graphicspath(?![a-zA-Z])")
_GEXT_RE = re.compile(r"\\DeclareGraphicsExtensions(?![a-zA-Z])")
_DIR_RE = re.compile(r"\\AFdirpush\{([^{}]*)\}|\\AFdirpop\{\}")
_ANY_ENV_RE = re.compile(r"\\(begin|end)\s*\{([^{}]+)\}")
_FIGCAPTION_RE = re.compile(r"\\(captionof)\s*\{\s*figure\s*\}|\\(figcaption)(?![a-zA-Z])")
# `\input{x.tikz}` in a figure is a drawing: the figure's graphic (TikZ/PGF, Inkscape's .pdf_tex export).
DRAWING_INPUT_EXTS = (".tikz", ".pgf", ".pgf_tex", ".pdf_tex")


@dataclass
class RawGraphic:
    command: str
    as_written: str
    pos: int
    kind: str = "file"  # file | drawing
    sub: int | None = None


@dataclass
class RawSub:
    start: int
    end: int
    caption_latex: str | None = None
    label: str | None = None


@dataclass
class RawFigure:
    env: str
    start: int
    end: int
    caption_latex: str | None = None
    short_caption_latex: str | None = None
    label: str | None = None
    graphics: list[RawGraphic] = field(default_factory=list)
    subs: list[RawSub] = field(default_factory=list)
    has_tabular: bool = False
    warnings: list[str] = field(default_factory=list)
    caption_positions: list[int] = field(default_factory=list)  # of main captions
    caption_ends: list[int] = field(default_factory=list)


@dataclass
class Section:
    pos: int
    level: str  # chapter | section | subsection | subsubsection | appendix
    title_latex: str


# ---------------------------------------------------------------------------------------------------------
# Document-level context: sections, graphics settings and \import directories by position


@dataclass
class DocContext:
    sections: list[Section]
    appendix_at: int | None
    gpaths: list[tuple[int, str]]  # (position, raw argument of \graphicspath)
    gexts: list[tuple[int, str]]  # (position, raw argument of \DeclareGraphicsExtensions)
    dirs: list[tuple[int, str | None]]  # (position, import dir in force from there on)

    def section_at(self, pos: int) -> Section | None:
        best = None
        for s in self.sections:
            if s.pos > pos:
                break
            if s.level in ("chapter", "section"):
                best = s
        return best

    def in_appendix(self, pos: int) -> bool:
        return self.appendix_at is not None and pos >= self.appendix_at

    def _last(self, events: list, pos: int):
        k = bisect.bisect_right([e[0] for e in events], pos)
        return events[k - 1][1] if k else None

    def graphicspath_at(self, pos: int) -> str | None:
        return self._last(self.gpaths, pos)

    def extensions_at(self, pos: int) -> str | None:
        return self._last(self.gexts, pos)

    def dir_at(self, pos: int) -> str | None:
        return self._last(self.dirs, pos)


def scan_context(text: str, body_start: int) -> DocContext:
    sections: list[Section] = []
    appendix_at = None
    for m in _SECTION_RE.finditer(text, body_start):
        if m.group(1) is None:
            if appendix_at is None:
                appendix_at = m.start()
            continue
        i = read_star(text, m.end())
        opt = read_optional(text, i)
        if opt is not None:
            i = opt[1]
        g = read_group(text, i)
        sections.append(Section(m.start(), m.group(1), g[0] if g else ""))
    gpaths = []
    for m in _GPATH_RE.finditer(text):
        g = read_group(text, m.end())
        if g is not None:
            gpaths.append((m.start(), g[0]))
    gexts = []
    for m in _GEXT_RE.finditer(text):
        g = read_group(text, m.end())
        if g is not None:
            gexts.append((m.start(), g[0]))
    dirs: list[tuple[int, str | None]] = []
    stack: list[str] = []
    for m in _DIR_RE.finditer(text) if "\\AFdir" in text else ():
        if m.group(1) is not None:
            stack.append(m.group(1).rstrip("/"))
        elif stack:
            stack.pop()
        dirs.append((m.start(), stack[-1] if stack else None))
    return DocContext(sections, appendix_at, gpaths, gexts, dirs)


def parse_graphicspath(arg: str) -> list[str]:
    """`{a/}{b/}` -> ["a/", "b/"]; a bare `figs/` (no inner braces) is taken as one prefix."""
    inner = re.findall(r"\{([^{}]*)\}", arg)
    if not inner and arg.strip():
        inner = [arg]
    return [p.strip() for p in inner if p.strip()]


def parse_extensions(arg: str) -> list[str]:
    return [e.strip() for e in arg.split(",") if e.strip()]


# ---------------------------------------------------------------------------------------------------------
# Figure regions


def find_figures(text: str, body_start: int, body_end: int | None = None) -> list[RawFigure]:
    """All figures of the document body, in document order."""
    body_end = len(text) if body_end is None else body_end
    figs: list[RawFigure] = []
    pos = body_start
    never_closed: dict[str, int] = {}  # env -> position after which no \end{env} exists (hostile input)
    while True:
        m = _FIG_BEGIN_RE.search(text, pos, body_end)
        if m is None:
            break
        env = m.group(1)
        inner_start = _skip_env_args(text, m.end(), env)
        end = None if m.end() >= never_closed.get(env, len(text) + 1) else find_env_end(text, env, m.end())
        if end is None:
            never_closed[env] = min(never_closed.get(env, len(text) + 1), m.end())
        warnings = []
        if end is None:  # unclosed: up to the next figure or the end of the body
            nxt = _FIG_BEGIN_RE.search(text, m.end(), body_end)
            end = (nxt.start() if nxt else body_end, nxt.start() if nxt else body_end)
            warnings.append("unclosed_environment")
        fig = RawFigure(env, m.start(), end[1], warnings=warnings)
        _fill(fig, text, inner_start, end[0])
        figs += _split_side_by_side(fig, text, inner_start, end[0])
        pos = end[1]
    figs += _loose_captions(text, body_start, body_end, figs)
    figs.sort(key=lambda f: f.start)
    return figs


def _split_side_by_side(fig: RawFigure, text: str, a: int, b: int) -> list[RawFigure]:
    """One float with several main captions, each in its own minipage, is several numbered figures
    (LaTeX numbers every \\caption): split it so that each graphic keeps its own caption."""
    if len(fig.caption_positions) < 2:
        return [fig]
    all_boxes = _minipages(text, a, b)
    boxes = [s for s in all_boxes if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in all_boxes)]
    owner = []
    for p in fig.caption_positions:
        inside = [k for k, (s, e) in enumerate(boxes) if s <= p < e]
        owner.append(inside[0] if inside else None)
    if None in owner or len(set(owner)) != len(owner):
        return _split_stacked(fig, text, a, b)
    parts = []
    for k in sorted(set(owner)):
        s, e = boxes[k]
        part = RawFigure(fig.env, s, e, warnings=["split_from_multi_caption_float"])
        _fill(part, text, s, e)
        parts.append(part)
    return parts


_AFTER_CAPTION_RE = re.compile(r"(?:\s|\\label\s*\{[^{}]*\}|\\(?:vspace|vskip)\*?\s*\{[^{}]*\})*")


def _split_stacked(fig: RawFigure, text: str, a: int, b: int) -> list[RawFigure]:
    """`\\includegraphics{a}\\caption{A}\\includegraphics{b}\\caption{B}` in one float: cut after each
    caption (and the labels that follow it), if every piece then has its own graphic; else keep one figure."""
    cuts = [a]
    for end in fig.caption_ends[:-1]:
        cuts.append(_AFTER_CAPTION_RE.match(text, end).end())
    cuts.append(b)
    parts = []
    for s, e in zip(cuts, cuts[1:], strict=False):
        part = RawFigure(fig.env, s, e, warnings=["split_from_multi_caption_float"])
        _fill(part, text, s, e)
        if not part.graphics or part.caption_latex is None:
            return [fig]
        parts.append(part)
    parts[0].start, parts[-1].end = fig.start, fig.end
    return parts


def _minipages(text: str, a: int, b: int) -> list[tuple[int, int]]:
    out = []
    for m in re.finditer(r"\\begin\s*\{minipage\}", text[a:b]):
        s = a + m.start()
        end = find_env_end(text, "minipage", a + m.end())
        if end is not None and end[1] <= b:
            out.append((s, end[1]))
    return out


def _skip_env_args(text: str, i: int, env: str) -> int:
    """Past the placement/size arguments of a figure environment."""
    if env.startswith("wrapfigure") or env in ("wrapfloat", "floatingfigure", "figwindow"):
        opt = read_optional(text, i)
        if opt:
            i = opt[1]
        n = {"wrapfloat": 3, "floatingfigure": 1, "figwindow": 1}.get(env, 2)
        if env == "figwindow":  # \begin{figwindow}[lines,side,{body},{caption}]
            return i
        for _ in range(n):
            g = read_group(text, i)
            if g is None:
                break
            i = g[1]
            opt = read_optional(text, i)
            if opt:
                i = opt[1]
        return i
    opt = read_optional(text, i)
    return opt[1] if opt else i


_FOREIGN_FLOAT_RE = re.compile(r"\\begin\s*\{(algorithm\*?|algorithm2e|table\*?|listing|lstlisting|program)\}")


_GLYPH_CHARS = 300  # a drawing whose source is shorter than this, beside image files, is a legend swatch
_EQUATION_RE = re.compile(r"\\begin\s*\{(equation\*?|align\*?|gather\*?|multline\*?|eqnarray\*?)\}")


def _env_spans(rx: re.Pattern, text: str, a: int, b: int) -> list[tuple[int, int]]:
    """Spans of the environments `rx` finds in text[a:b]: non-figure floats nested in a figure (an
    `algorithm[H]` boxed by `figure`), equations; their captions and labels are not the figure's."""
    spans = []
    for m in rx.finditer(text, a, b):
        end = find_env_end(text, m.group(1), m.end())
        spans.append((m.start(), min(end[1], b) if end else b))
    return spans


def _fill(fig: RawFigure, text: str, a: int, b: int) -> None:
    """Read subfigures, graphics, captions and labels of the region text[a:b] into `fig`."""
    fig.subs = _find_subs(text, a, b)
    sub_starts = [s.start for s in fig.subs]

    def sub_of(p: int) -> int | None:
        k = bisect.bisect_right(sub_starts, p) - 1
        for j in range(k, max(-1, k - 8), -1):  # innermost (latest-starting) box containing p; boxes are
            if fig.subs[j].start <= p < fig.subs[j].end:  # rarely nested, so a short walk back suffices
                return j
        return None

    skip_until = a  # graphics inside a caption argument are not the figure's graphics
    drawing_until = a  # inside an outer drawing environment
    main_caps: list[tuple[str, str | None, bool, int, int]] = []  # long, short, starred, start, end
    foreign = _env_spans(_FOREIGN_FLOAT_RE, text, a, b)
    maths = _env_spans(_EQUATION_RE, text, a, b)
    glyphs: set[int] = set()  # small inline drawings (legend swatches), dropped when the figure has pictures
    for m in _TOKEN_RE.finditer(text, a, b):
        p = m.start()
        cmd = m.group(1)
        if cmd in ("caption", "captionof", "label") and any(s <= p < e for s, e in foreign):
            continue  # the caption or label of an algorithm or table set inside the figure is not the figure's
        if cmd == "label" and (p < drawing_until or any(s <= p < e for s, e in maths)):
            continue  # an equation's label inside the figure, or one inside a drawing's text
        sub = sub_of(p)
        if m.group(2) == "overpic":  # \begin{overpic}[opts]{file}: an image with text put over it
            opt = read_optional(text, m.end())
            g = read_group(text, opt[1] if opt else m.end())
            if g is not None and p >= skip_until:
                fig.graphics.append(RawGraphic("overpic", g[0].strip(), p, "file", sub))
            continue
        if m.group(2) or cmd == "feynmandiagram":  # drawing environment (or tikz-feynman's one-line diagram)
            if p < drawing_until:
                continue
            if cmd == "feynmandiagram":
                fig.graphics.append(RawGraphic(cmd, cmd, p, "drawing", sub))
                continue
            end = find_env_end(text, m.group(2), m.end())
            stop = min(end[1], b) if end else b
            drawing_until = stop
            if re.search(r"\\includegraphics(?![a-zA-Z])", text[m.end():stop]):
                continue  # an annotated image: the included graphic is the figure
            fig.graphics.append(RawGraphic(m.group(2), m.group(2), p, "drawing", sub))
            if stop - m.end() < _GLYPH_CHARS:
                glyphs.add(id(fig.graphics[-1]))
            continue
        if cmd in ("caption", "captionof", "figcaption", "subcaption"):
            i = m.end()
            if cmd == "subcaption" and sub is None:
                continue  # a \subcaption outside any sub-figure box has nothing to caption
            if cmd == "captionof":
                g = read_group(text, i)
                if g is None or g[0].strip() not in ("figure", "subfigure"):
                    continue
                i = g[1]
            starred = read_star(text, i) > i
            i = read_star(text, i)
            short = read_optional(text, i)
            if short is not None:
                i = short[1]
            g = read_group(text, i)
            if g is None:
                fig.warnings.append("unreadable_caption")
                continue
            skip_until = max(skip_until, g[1])
            if sub is not None and fig.subs[sub].caption_latex is None:
                fig.subs[sub].caption_latex = g[0].strip()
            elif sub is None:
                main_caps.append((g[0].strip(), short[0].strip() if short else None, starred, p, g[1]))
            continue
        if cmd == "label":
            g = read_group(text, m.end())
            if g is None:
                continue
            if sub is not None:
                if fig.subs[sub].label is None:
                    fig.subs[sub].label = g[0].strip()
            elif fig.label is None:
                fig.label = g[0].strip()
            continue
        if p < skip_until or p < drawing_until and cmd != "includegraphics":
            continue
        for name, kind in _graphic_names(text, m, cmd):
            fig.graphics.append(RawGraphic(cmd, name, p, kind, sub))
    if glyphs and any(g.kind == "file" for g in fig.graphics):  # a legend swatch beside the pictures
        fig.graphics = [g for g in fig.graphics if id(g) not in glyphs]
    if any(not c[2] for c in main_caps):  # unnumbered \caption*{a)} beside a numbered caption: panel names
        main_caps = [c for c in main_caps if not c[2]]
    fig.caption_positions = [c[3] for c in main_caps]
    fig.caption_ends = [c[4] for c in main_caps]
    if main_caps:
        fig.caption_latex, fig.short_caption_latex = main_caps[0][:2]
        if len(main_caps) > 1:
            fig.warnings.append(f"multiple_captions:{len(main_caps)}")
    fig.has_tabular = bool(re.search(r"\\begin\s*\{(?:tabular|tabularx|tabular\*|array)\}", text[a:b]))


def _graphic_names(text: str, m: re.Match, cmd: str) -> list[tuple[str, str]]:
    i = m.end()
    if cmd in ("includegraphics", "includesvg", "includestandalone", "epsfbox", "epsffile"):
        i = read_star(text, i)
        for _ in range(2):
            opt = read_optional(text, i)
            if opt is None:
                break
            i = opt[1]
        g = read_group(text, i)
        if g is None:
            return []
        kind = "drawing" if cmd == "includestandalone" else "file"
        return [(g[0].strip(), kind)]
    if cmd in ("epsfig", "psfig"):
        g = read_group(text, i)
        if g is None:
            return []
        fm = _EPSFIG_FILE_RE.search(g[0])
        return [(fm.group(1).strip(), "file")] if fm else []
    if cmd == "plotone" or cmd == "plotfiddle":
        g = read_group(text, i)
        return [(g[0].strip(), "file")] if g else []
    if cmd == "plottwo":
        out = []
        for _ in range(2):
            g = read_group(text, i)
            if g is None:
                break
            out.append((g[0].strip(), "file"))
            i = g[1]
        return out
    if cmd == "special":  # \special{psfile=fig.ps hoffset=...}: old DVI-era figures
        g = read_group(text, i)
        fm = _PSFILE_RE.match(g[0]) if g else None
        return [(fm.group(1), "file")] if fm else []
    if cmd == "input":
        g = read_group(text, i)
        if g and g[0].strip().lower().endswith(DRAWING_INPUT_EXTS):
            return [(g[0].strip(), "drawing")]
        return []
    return []


def _find_subs(text: str, a: int, b: int) -> list[RawSub]:
    subs: list[RawSub] = []
    pos = a
    while True:
        m = _SUB_RE.search(text, pos, b)
        if m is None:
            break
        if m.group(1):  # \begin{subfigure}[pos]{width} ... \end{subfigure}
            end = find_env_end(text, "subfigure", m.end())
            stop = min(end[1], b) if end else b
            subs.append(RawSub(m.start(), stop))
            pos = stop
            continue
        cmd = m.group(2)
        i = m.end()
        if cmd == "subcaptionbox":  # \subcaptionbox[list]{caption}[width][pos]{body}
            i = read_star(text, i)
            opt = read_optional(text, i)
            if opt:
                i = opt[1]
            cap = read_group(text, i)
            if cap is None:
                pos = m.end()
                continue
            i = cap[1]
            for _ in range(2):
                opt = read_optional(text, i)
                if opt:
                    i = opt[1]
            body = read_group(text, i)
            stop = body[1] if body else cap[1]
            subs.append(RawSub(m.start(), stop, cap[0].strip()))
            pos = stop
            continue
        # \subfloat[list][caption]{body}, \subfigure[list][caption]{body}: one optional = the caption
        opts = []
        for _ in range(2):
            opt = read_optional(text, i)
            if opt is None:
                break
            opts.append(opt[0])
            i = opt[1]
        j = skip_ws(text, i)
        if j >= b or text[j] != "{":
            pos = m.end()
            continue
        end = match_brace(text, j)
        stop = end if end is not None else b
        caption = opts[-1].strip() if opts else None
        subs.append(RawSub(m.start(), stop, caption if caption else None))
        pos = stop
    # subcaption's \subcaption{...} / \captionof{subfigure}{...} inside minipages: each minipage is a sub-figure
    for m in re.finditer(r"\\subcaption(?![a-zA-Z])|\\captionof\s*\{\s*subfigure\s*\}", text[a:b]):
        p = a + m.start()
        if any(s.start <= p < s.end for s in subs):
            continue
        boxes = [(s, e) for s, e in _minipages(text, a, b) if s <= p < e]
        if boxes:
            s, e = min(boxes, key=lambda se: se[1] - se[0])
            subs.append(RawSub(s, e))
    subs.sort(key=lambda s: s.start)
    return subs


# ---------------------------------------------------------------------------------------------------------
# Captions of figures that are not figure environments


def _loose_captions(text: str, a: int, b: int, figs: list[RawFigure]) -> list[RawFigure]:
    """`\\captionof{figure}` outside figure environments (its enclosing environment is the figure) and
    AASTeX `\\figcaption[file]{caption}` (the graphic is the optional argument)."""
    spans = [(f.start, f.end) for f in figs]
    starts = [s for s, _ in spans]
    out: list[RawFigure] = []
    taken_until = a
    for m in _FIGCAPTION_RE.finditer(text, a, b):
        p = m.start()
        k = bisect.bisect_right(starts, p) - 1
        if k >= 0 and spans[k][0] <= p < spans[k][1]:
            continue  # inside a figure environment: handled there
        if p < taken_until:
            continue
        if m.group(1):  # \captionof{figure}
            env, start, end = _enclosing_env(text, a, p, b)
            fig = RawFigure("captionof", start, end)
            _fill(fig, text, start, end)
            taken_until = end
            out.append(fig)
            continue
        i = read_star(text, m.end())  # \figcaption[file]{caption}
        opt = read_optional(text, i)
        if opt is not None:
            i = opt[1]
        g = read_group(text, i)
        if g is None:
            continue
        fig = RawFigure("figcaption", p, g[1], caption_latex=g[0].strip())
        lab = re.search(r"\\label\s*\{([^{}]*)\}", g[0])
        fig.label = lab.group(1).strip() if lab else None
        if opt is not None and opt[0].strip():
            fig.graphics.append(RawGraphic("figcaption", opt[0].strip(), p))
        out.append(fig)
    return out


def _enclosing_env(text: str, a: int, p: int, b: int) -> tuple[str, int, int]:
    """Innermost environment around position p (minipage, center ...): (name, start, end)."""
    stack: list[tuple[str, int]] = []
    for m in _ANY_ENV_RE.finditer(text, a, p):
        name = m.group(2).strip()
        if m.group(1) == "begin":
            stack.append((name, m.start()))
        else:
            for k in range(len(stack) - 1, -1, -1):
                if stack[k][0] == name:
                    del stack[k:]
                    break
    while stack:
        name, start = stack.pop()
        if name in ("document",):
            break
        end = find_env_end(text, name, text.index("}", start) + 1)
        if end is not None and end[1] > p:
            return name, start, min(end[1], b)
    # no environment: the paragraph around the caption
    par_a = text.rfind("\n\n", a, p)
    par_b = text.find("\n\n", p, b)
    return "", par_a + 2 if par_a >= 0 else a, par_b if par_b >= 0 else b
