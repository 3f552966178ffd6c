"""LaTeX analysis of one paper: from the in-memory bundle to figure records, title, abstract and paragraphs.

    analysis = analyse_latex(bundle, "2401.00001v1")   # Bundle or plain dict path -> bytes
    for fig in analysis.figures: print(fig.to_json(analysis.paper_id))

Steps (DESIGN.md "Extraction" 2-5 and 7): main file (mainfile) -> cleaned and flattened document (texclean,
expand) -> user macros collected from the document and local .sty files, figure-producing macros and
environments expanded (macros) -> figure environments, sections, \\graphicspath/extension settings
(figures) -> graphics resolved like pdfTeX (graphics) -> captions to text (captions) -> weak kinds (kind)
-> drawn figures' code with the definitions it uses (tikzsource) -> body paragraphs (bodytext), and each
figure's `mentions`: the paragraphs that \\ref its label or a sub-figure's. Never raises on bad input:
problems end up in `warnings` (and in the graphic's `status`/`reason`). Rasterising is not done here.
"""

import re
from typing import Any

from pipeline.extract.bodytext import paragraphs_with_refs, reduce_to_text
from pipeline.extract.captions import latex_to_text, normalise_space
from pipeline.extract.expand import expand_document
from pipeline.extract.figures import (
    DocContext,
    RawFigure,
    find_figures,
    parse_extensions,
    parse_graphicspath,
    scan_context,
)
from pipeline.extract.graphics import GraphicsIndex, resolve_graphic
from pipeline.extract.kind import figure_kind, section_kind, source_kind
from pipeline.extract.macros import (
    MacroTable,
    blank_spans,
    collect_macros,
    expand_environments,
    expand_macros,
    figure_relevant,
    figure_relevant_envs,
    label_macros,
)
from pipeline.extract.mainfile import TexSources, find_main_tex
from pipeline.extract.records import FigureRecord, GraphicRef, LatexAnalysis
from pipeline.extract.texclean import BEGIN_DOCUMENT_RE, END_DOCUMENT_RE, strip_comments
from pipeline.extract.texscan import find_env_end, read_group, read_optional, read_star
from pipeline.extract.tikzsource import document_definitions, tikz_source

__all__ = ["analyse_latex", "FigureRecord", "GraphicRef", "LatexAnalysis"]

_TITLE_RE = re.compile(r"\\(?:title|icmltitle|Title)(?![a-zA-Z])")
_ABSTRACT_RE = re.compile(r"\\begin\s*\{abstract\}(.*?)\\end\s*\{abstract\}", re.DOTALL)
_MAX_STY_BYTES = 48_000  # authors' macro files are small; bigger ones are shipped packages (code, not text)
_AASTEX_RE = re.compile(r"\\documentclass\s*(?:\[[^\]]*\])?\s*\{\s*aastex")
_AAS_FIG_RE = re.compile(r"\\fig(?![a-zA-Z])")
_PGFPLOTS_RE = re.compile(r"\\begin\s*\{(?:axis|semilogxaxis|semilogyaxis|loglogaxis|groupplot)\}")


def _files_of(bundle: Any) -> dict[str, bytes]:
    return bundle if isinstance(bundle, dict) else bundle.files


def analyse_latex(bundle: Any, paper_id: str, *, with_paragraphs: bool = True) -> LatexAnalysis:
    """Figures (document order), title, abstract and body paragraphs of the paper in `bundle`."""
    files = _files_of(bundle)
    sources = TexSources(files)
    choice = find_main_tex(files, sources)
    result = LatexAnalysis(paper_id, choice.path)
    if choice.path is None:
        result.warnings.append("no_main_tex")
        return result
    doc = expand_document(choice.path, sources)
    result.included = doc.included
    result.encoding = sources.encodings.get(choice.path)
    result.warnings += doc.warnings + [f"input_missing:{n}" for n in doc.missing]

    table = MacroTable()
    for sty in doc.styles:  # the author's own macro packages; big ones are real packages, not macros
        if len(files[sty]) <= _MAX_STY_BYTES:
            collect_macros(strip_comments(sources.text(sty)), table, record_spans=False)
    collect_macros(doc.text, table)
    text = blank_spans(doc.text, table.spans)
    rel, rel_envs = figure_relevant(table), figure_relevant_envs(table)
    if rel_envs:
        text = expand_environments(text, table, rel_envs)
    if rel:
        text = expand_macros(text, table, rel)

    b = BEGIN_DOCUMENT_RE.search(text)
    body_start = b.end() if b else 0
    if "fig" not in table.macros and _AASTEX_RE.search(text, 0, body_start) and "\\fig" in text:
        text = _aas_fig_to_subfloat(text, body_start)
    e = END_DOCUMENT_RE.search(text, body_start)
    body_end = e.start() if e else len(text)
    if b is None:
        result.warnings.append("no_begin_document")

    ctx = scan_context(text, body_start)
    index = GraphicsIndex(files)
    raw = find_figures(text, body_start, body_end)
    kinds = _section_kinds(ctx, table) if raw else {}
    for k, rf in enumerate(raw, start=1):
        result.figures.append(_record(k, rf, text, ctx, table, index, doc.root, kinds, sources))
    drawn = [g for f in result.figures for g in f.graphics if g.tikz_source]
    if drawn:  # the pictures' code, preceded by the definitions it uses
        defs = document_definitions(doc.text, table.spans)
        for g in drawn:
            g.tikz_source = tikz_source(g.tikz_source, defs)

    result.title = _title(text, table)
    abstract = _ABSTRACT_RE.search(text, body_start, body_end) or _ABSTRACT_RE.search(text, 0, body_end)
    if abstract:
        result.abstract = normalise_space(reduce_to_text(expand_macros(abstract.group(1), table))) or None
    if with_paragraphs:
        pars = paragraphs_with_refs(expand_macros(text[body_start:body_end], table))
        result.paragraphs = [p for p, _ in pars]
        for f in result.figures:  # linked by label here: in the text, a \ref is only "<ref>"
            labels = {lab for lab in (f.label, *f.sublabels) if lab}
            f.mentions = [p for p, refs in pars if refs & labels] if labels else []
    return result


def _drawing_code(command: str, pos: int, path: str | None, text: str, sources: TexSources) -> str | None:
    """A drawing's code: the environment (or \\feynmandiagram) as it stands in the document, or the file an
    \\input / \\includestandalone reads."""
    if command in ("input", "includestandalone"):
        return strip_comments(sources.text(path)) if path else None
    if command == "feynmandiagram":
        opt = read_optional(text, pos + len("\\feynmandiagram"))
        g = read_group(text, opt[1] if opt else pos + len("\\feynmandiagram"))
        return text[pos:g[1]] if g else None
    end = find_env_end(text, command, text.index("}", pos) + 1)
    return text[pos:end[1]] if end else None


def caption_text(latex: str, table: MacroTable) -> str:
    """Plain text of a caption or title: user macros expanded in the text, math kept exactly as written
    (a macro that expands to \\ensuremath{X} outside math gives $X$, X as written). Macros are expanded one
    level at a time so that what a level puts into math is not expanded further."""
    for _ in range(12):
        parts, pos = [], 0
        for a, b in _math_spans(latex):
            parts += [expand_macros(latex[pos:a], table, max_depth=1), latex[a:b]]
            pos = b
        parts.append(expand_macros(latex[pos:], table, max_depth=1))
        new = "".join(parts)
        if new == latex:
            break
        latex = new
    return latex_to_text(latex)


def _math_spans(latex: str) -> list[tuple[int, int]]:
    spans = [(m.start(), m.end()) for m in _MATH_SPAN_RE.finditer(latex)]
    for m in _ENSUREMATH_RE.finditer(latex):
        g = read_group(latex, m.end())
        if g is not None and not any(a <= m.start() < b for a, b in spans):
            spans.append((m.start(), g[1]))
    return sorted(spans)


_ENSUREMATH_RE = re.compile(r"\\ensuremath(?![a-zA-Z])")
_MATH_SPAN_RE = re.compile(r"\$\$.+?\$\$|(?<!\\)\$(?:[^$\\]|\\.)+\$|\\\(.+?\\\)", re.DOTALL)
_LABEL_RE = re.compile(r"\\label\s*\{([^{}]*)\}")


def _macro_label(region: str, table: MacroTable, rf: RawFigure) -> str | None:
    """A figure label set through a user macro (\\figlabel{x} -> \\label{fig:x}); the caption source stays as
    written, so only this lookup sees the expansion. Labels of sub-figures are not the figure's."""
    names = label_macros(table)
    if not names or not any(f"\\{n}" in region for n in names):
        return None
    subs = [(s.start - rf.start, s.end - rf.start) for s in rf.subs]
    for n in names:
        for m in re.finditer(rf"\\{n}(?![a-zA-Z])", region):
            if any(a <= m.start() < b for a, b in subs):
                continue
            lab = _LABEL_RE.search(expand_macros(region[m.start():], table, {n}))
            if lab:
                return lab.group(1).strip()
    return None


def _section_kinds(ctx: DocContext, table: MacroTable) -> dict[int, str]:
    """Kind of every top-level section (by position). A title with no keyword takes its place in the paper's
    arc: after the introduction and before any experiments or results it describes the work (method); after
    the experiments or results and before the discussion or conclusion, it reports results."""
    tops = [s for s in ctx.sections if s.level in ("chapter", "section")]
    kinds = [section_kind(caption_text(s.title_latex, table), ctx.in_appendix(s.pos)) for s in tops]
    seen: set[str] = set()
    out = {}
    for s, kind in zip(tops, kinds, strict=True):
        if kind == "other" and seen & {"introduction", "related"} and not seen & {"discussion", "conclusion"}:
            kind = "results" if seen & {"experiments", "results"} else "method"
        seen.add(kind)
        out[s.pos] = kind
    return out


def _record(k: int, rf: RawFigure, text: str, ctx: DocContext, table: MacroTable, index: GraphicsIndex,
            root: str, kinds: dict[int, str], sources: TexSources) -> FigureRecord:
    sec = ctx.section_at(rf.start)
    sublabels = [s.label for s in rf.subs if s.label]
    sec_title = caption_text(sec.title_latex, table) if sec else None
    label = rf.label if rf.label is not None else _macro_label(text[rf.start:rf.end], table, rf)
    rec = FigureRecord(
        figure_index=k, env=rf.env, label=label, caption_latex=rf.caption_latex,
        short_caption_latex=rf.short_caption_latex,
        caption_text=caption_text(rf.caption_latex, table) if rf.caption_latex else None,
        section_title=sec_title or None,
        section_kind="appendix" if ctx.in_appendix(rf.start) else kinds.get(sec.pos, "other") if sec else "other",
        warnings=list(rf.warnings), start=rf.start, end=rf.end, sublabels=sublabels,
    )
    sub_text = [caption_text(s.caption_latex, table) if s.caption_latex else None
                for s in rf.subs]
    for g in rf.graphics:
        sub = rf.subs[g.sub] if g.sub is not None else None
        ref = GraphicRef(as_written=g.as_written, command=g.command)
        if sub is not None:
            ref.subcaption_latex = sub.caption_latex
            ref.subcaption_text = sub_text[g.sub] or None
            ref.sublabel = sub.label
        if g.kind == "drawing":
            _resolve_drawing(ref, g.as_written, index, root)
            if ref.status == "tikz":
                ref.tikz_source = _drawing_code(g.command, g.pos, ref.path, text, sources)
        else:
            _resolve_file(ref, g.as_written, g.pos, ctx, table, index, root)
        rec.graphics.append(ref)
    rec.graphics = _drop_format_twins(rec.graphics)
    formats = [g.format for g in rec.graphics if g.status == "ok"]
    n_draw = sum(1 for g in rec.graphics if g.status == "tikz")
    pgfplots = bool(_PGFPLOTS_RE.search(text, rf.start, rf.end))
    rec.figure_kind = figure_kind(rec.caption_text, formats, n_draw, len(rec.graphics) - n_draw,
                                  rf.has_tabular, pgfplots)
    rec.kind_rule = source_kind(n_draw, len(rec.graphics) - n_draw, rf.has_tabular, pgfplots)
    rec.has_tabular = rf.has_tabular
    return rec


_FORMAT_EXT_RE = re.compile(r"^(.*)\.(pdf|png|jpe?g|eps|ps|gif|tiff?)$", re.IGNORECASE)


def _drop_format_twins(graphics: list[GraphicRef]) -> list[GraphicRef]:
    """`\\ifpdf \\includegraphics{f.pdf} \\else \\includegraphics{f.eps} \\fi` keeps both branches (the
    conditional is unknown without running TeX): one figure written in two formats. Keep one of the
    pair, preferring the one that resolved. The same name used twice (two crops) is not a twin."""
    out: list[GraphicRef] = []
    for g in graphics:
        m = _FORMAT_EXT_RE.match(g.as_written.strip())
        twin = None
        if m and g.status != "tikz":
            for k, o in enumerate(out):
                om = _FORMAT_EXT_RE.match(o.as_written.strip())
                if (om and om.group(1) == m.group(1) and om.group(2).lower() != m.group(2).lower()
                        and (o.subcaption_latex, o.sublabel) == (g.subcaption_latex, g.sublabel)):
                    twin = k
                    break
        if twin is None:
            out.append(g)
        elif out[twin].status != "ok" and g.status == "ok":
            out[twin] = g
    return out


def _resolve_file(ref: GraphicRef, name: str, pos: int, ctx: DocContext, table: MacroTable,
                  index: GraphicsIndex, root: str) -> None:
    if "\\" in name:
        name = expand_macros(name, table)
        name = re.sub(r"\\(?:detokenize|protect|string|relax)(?![a-zA-Z])", "", name)
    if "{" in name:  # grouping braces protect dots: {{c.d}.pdf} is c.d.pdf
        name = name.replace("{", "").replace("}", "")
    gp_arg = ctx.graphicspath_at(pos)
    gpaths = parse_graphicspath(expand_macros(gp_arg, table)) if gp_arg else []
    ext_arg = ctx.extensions_at(pos)
    exts = parse_extensions(expand_macros(ext_arg, table)) if ext_arg else None
    import_dir = ctx.dir_at(pos)
    abs_import = (f"{root}/{import_dir}" if root else import_dir) if import_dir else None
    if "\\" in name:
        ref.status, ref.reason = "missing", "unexpanded_macro"
        return
    res = resolve_graphic(name, index, root=root, graphicspath=gpaths, extensions=exts, import_dir=abs_import)
    ref.path, ref.format, ref.status, ref.reason, ref.case_fallback = (
        res.path, res.format, res.status, res.reason, res.case_fallback)


def _resolve_drawing(ref: GraphicRef, as_written: str, index: GraphicsIndex, root: str) -> None:
    ref.status, ref.format = "tikz", "tikz"
    if as_written.lower().endswith(".pdf_tex"):  # Inkscape export: the picture is the PDF beside it
        pdf = as_written[: -len(".pdf_tex")] + ".pdf"
        pdf = f"{root}/{pdf}" if root else pdf
        if pdf in index.files:
            ref.status, ref.format, ref.path, ref.reason = "ok", "pdf", pdf, "pdf_tex"
            return
    if ref.command in ("input", "includestandalone"):
        name = as_written.strip()
        cands = [name] if ref.command == "input" else [name + ".tex", name]
        for c in cands:
            p = f"{root}/{c}" if root else c
            if p in index.files:
                ref.path = p
                return
        ref.reason = "drawing_source_missing"


def _aas_fig_to_subfloat(text: str, start: int) -> str:
    """AASTeX 6 `\\gridline{\\fig{file}{width}{(a) caption} ...}`: each `\\fig` is a sub-figure. Rewritten as
    `\\subfloat[caption]{\\includegraphics{file}}` so the scanner treats it like any other sub-figure."""
    out, pos = [], start
    for m in _AAS_FIG_RE.finditer(text, start):
        if m.start() < pos:
            continue
        args, i = [], m.end()
        for _ in range(3):
            g = read_group(text, i)
            if g is None:
                break
            args.append(g[0])
            i = g[1]
        if len(args) < 3:
            continue
        out.append(text[pos:m.start()])
        out.append(f"\\subfloat[{args[2]}]{{\\includegraphics{{{args[0]}}}}}")
        pos = i
    return text[:start] + "".join(out) + text[pos:] if out else text


def _title(text: str, table: MacroTable) -> str | None:
    m = _TITLE_RE.search(text)
    if not m:
        return None
    i = read_star(text, m.end())
    opt = read_optional(text, i)
    if opt is not None:
        i = opt[1]
    g = read_group(text, i)
    if g is None:
        return None
    return latex_to_text(expand_macros(g[0], table)) or None
