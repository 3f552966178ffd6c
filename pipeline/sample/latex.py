"""Writing the LaTeX of a sample paper: preamble, sections, figure environments and the traps around them.

`FigureSpec` says what a figure looks like in the source (environment, graphics commands, caption form);
`render_figure` writes it. `render_tree` lays a whole document out over files (main file, `\\input`/
`\\include`d section files, dead code, text after `\\end{document}`). What the extractor must find is
recorded separately by pipeline.sample.papers; this module only writes TeX.
"""

import dataclasses

from pipeline.sample.text import Seg, join_latex


@dataclasses.dataclass
class GraphicRef:
    as_written: str  # the argument exactly as written (may hold a macro: `\figdir plot`)
    command: str = "includegraphics"  # includegraphics | plotone | epsfig
    options: str = "width=\\linewidth"
    subcaption: list[Seg] | None = None
    split_options: bool = False  # `[...]` and `{file}` on separate lines


@dataclasses.dataclass
class FigureSpec:
    env: str  # figure | figure* | wrapfigure | sidewaysfigure | captionof | macro | tikz
    graphics: list[GraphicRef]
    caption: list[Seg]
    label: str | None = None
    short_caption: str | None = None
    label_in_caption: bool = False
    caption_first: bool = False
    sub_style: str | None = None  # subcaption | subfloat | subfigure (old package) | plottwo
    placement: str = "t"


@dataclasses.dataclass
class Section:
    title: str
    kind: str  # the generator's slot: intro, background, method, results, discussion, appendix
    label: str
    blocks: list  # str paragraphs and FigureSpec, in order
    file: str | None = None  # section lives in this file (\input/\include), else in the main file
    include_style: str = "input"  # input | input-nobrace | input-ext | include
    appendix: bool = False
    section_kind: str = "other"  # what the title says, in the extractor's vocabulary


@dataclasses.dataclass
class Document:
    main: str
    docclass: str
    packages: list[str]
    preamble: list[str]  # macro definitions, \graphicspath, ...
    title: str
    authors: list[str]
    abstract: str
    sections: list[Section]
    bib: list[tuple[str, str]]  # (key, entry)
    after_end: str = ""  # text after \end{document}
    dead_before: list[str] = dataclasses.field(default_factory=list)  # dead code after the abstract


# ---------------------------------------------------------------------------------------------- figures


def includegraphics(g: GraphicRef) -> str:
    if g.command == "plotone":
        return f"\\plotone{{{g.as_written}}}"
    if g.command == "epsfig":
        return f"\\epsfig{{file={g.as_written},width=0.9\\linewidth}}"
    opts = f"[{g.options}]" if g.options else ""
    if g.split_options:
        return f"\\includegraphics{opts}\n  {{{g.as_written}}}"
    return f"\\includegraphics{opts}{{{g.as_written}}}"


def caption_cmd(fig: FigureSpec, command: str = "caption") -> str:
    body = join_latex(fig.caption)
    if fig.label and fig.label_in_caption:
        body += f"\\label{{{fig.label}}}"
    short = f"[{fig.short_caption}]" if fig.short_caption else ""
    out = f"\\{command}{short}{{{body}}}"
    if fig.label and not fig.label_in_caption:
        out += f"\n\\label{{{fig.label}}}"
    return out


def _subfigures(fig: FigureSpec) -> list[str]:
    n = len(fig.graphics)
    width = f"{0.95 / n:.2f}\\linewidth"
    lines = []
    if fig.sub_style == "plottwo":
        return [f"\\plottwo{{{fig.graphics[0].as_written}}}{{{fig.graphics[1].as_written}}}"]
    for i, g in enumerate(fig.graphics):
        sub = join_latex(g.subcaption or [])
        g = dataclasses.replace(g, options=f"width={width}" if fig.sub_style != "subcaption" else "width=\\linewidth")
        if fig.sub_style == "subcaption":
            lines += [f"\\begin{{subfigure}}[b]{{{width}}}", "\\centering", includegraphics(g),
                      f"\\caption{{{sub}}}\\label{{{fig.label or 'fig:x'}-{'abcdef'[i]}}}", "\\end{subfigure}"]
        else:  # \subfloat[cap]{...} (subfig) or \subfigure[cap]{...} (the old subfigure package)
            cmd = "subfloat" if fig.sub_style == "subfloat" else "subfigure"
            lines.append(f"\\{cmd}[{sub}]{{{includegraphics(g)}}}")
        if i < n - 1:
            lines.append("\\hfill" if fig.sub_style == "subcaption" else "\\quad")
    return lines


TIKZ_BODY = """\\begin{tikzpicture}[scale=1.2]
  \\draw[->] (-0.2,0) -- (3,0) node[right] {$x$};
  \\draw[->] (0,-0.2) -- (0,2) node[above] {$y$};
  \\draw[thick,blue] (0,0) .. controls (1,2) and (2,0) .. (3,1.5);
  \\node at (1.5,1.7) {$\\Omega$};
\\end{tikzpicture}"""


def render_figure(fig: FigureSpec) -> str:
    if fig.env == "macro":  # \fig{file}{caption} from the preamble's figure macro
        body = join_latex(fig.caption) + (f"\\label{{{fig.label}}}" if fig.label else "")
        return f"\\fig{{{fig.graphics[0].as_written}}}{{{body}}}"
    if fig.env == "tikz":
        inner = [TIKZ_BODY]
    elif fig.sub_style:
        inner = _subfigures(fig)
    else:
        inner = [includegraphics(g) for g in fig.graphics]
    cap = caption_cmd(fig, "captionof{figure}" if fig.env == "captionof" else "caption")
    body = [cap, *inner] if fig.caption_first else [*inner, cap]
    if fig.env == "captionof":
        return "\n".join(["\\begin{center}", "\\begin{minipage}{0.9\\linewidth}", "\\centering", *body,
                          "\\end{minipage}", "\\end{center}"])
    env = "figure" if fig.env == "tikz" else fig.env
    opener = {
        "wrapfigure": "\\begin{wrapfigure}{r}{0.45\\linewidth}",
        "sidewaysfigure": "\\begin{sidewaysfigure}",
    }.get(env, f"\\begin{{{env}}}[{fig.placement}]")
    return "\n".join([opener, "\\centering", *body, f"\\end{{{env}}}"])


FIGURE_MACRO = ("\\newcommand{\\fig}[2]{\\begin{figure}[t]\\centering"
                "\\includegraphics[width=0.9\\linewidth]{#1}\\caption{#2}\\end{figure}}")


# ---------------------------------------------------------------------------------------------- documents


def _section_text(sec: Section) -> str:
    cmd = f"\\section{{{sec.title}}}\\label{{{sec.label}}}"
    parts = [cmd]
    for block in sec.blocks:
        parts.append(render_figure(block) if isinstance(block, FigureSpec) else block)
    return "\n\n".join(parts) + "\n"


def _include(sec: Section) -> str:
    path = sec.file
    stem = path[:-4] if path.endswith(".tex") else path
    if sec.include_style == "include":
        return f"\\include{{{stem}}}"
    if sec.include_style == "input-nobrace":
        return f"\\input {stem}"
    if sec.include_style == "input-ext":
        return f"\\input{{{stem}.tex}}"
    return f"\\input{{{stem}}}"


def render_tree(doc: Document) -> dict[str, str]:
    """File name -> TeX text for the whole document (the main file and every \\input section file)."""
    files: dict[str, str] = {}
    pre = [f"\\documentclass{doc.docclass}"]
    pre += [f"\\usepackage{p}" for p in doc.packages]
    pre += doc.preamble
    head = [
        "\\begin{document}",
        f"\\title{{{doc.title}}}",
        "\\author{" + " \\and ".join(doc.authors) + "}",
        "\\maketitle",
        "\\begin{abstract}",
        doc.abstract,
        "\\end{abstract}",
        *doc.dead_before,
    ]
    body = []
    appendix_started = False
    for sec in doc.sections:
        if sec.appendix and not appendix_started:
            body.append("\\appendix")
            appendix_started = True
        if sec.file:
            files[sec.file] = _section_text(sec)
            body.append(_include(sec))
        else:
            body.append(_section_text(sec))
    bib = ["\\begin{thebibliography}{99}"] + [f"\\bibitem{{{k}}} {v}" for k, v in doc.bib] + ["\\end{thebibliography}"]
    tail = ["\\end{document}"]
    if doc.after_end:
        tail.append(doc.after_end)
    files[doc.main] = "\n".join(pre + [""] + head + [""] + body + bib + tail) + "\n"
    return files


# ---------------------------------------------------------------------------------------------- dead code


def commented(text: str) -> str:
    return "\n".join("% " + line for line in text.splitlines())


def iffalse(text: str) -> str:
    return f"\\iffalse\n{text}\n\\fi"


def comment_env(text: str) -> str:
    return f"\\begin{{comment}}\n{text}\n\\end{{comment}}"
