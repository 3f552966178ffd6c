"""What the LaTeX analysis of one paper produces: figure records with their graphics, and the paper summary.

`FigureRecord.to_json(paper_id)` gives the per-figure object printed by `arxiv-forge extract --json`;
`width`/`height` are filled in by the rasteriser (None until then).
"""

from dataclasses import dataclass, field


@dataclass
class GraphicRef:
    as_written: str  # the name in the source (`figs/a`), or the drawing environment for TikZ
    path: str | None = None  # resolved bundle member path (relative to the bundle root)
    format: str | None = None  # pdf | png | jpg | eps | ps | gif | tiff | svg | tikz ... (magic bytes first)
    status: str = "missing"  # ok | missing | tikz | error
    reason: str | None = None  # why missing/error, or how found (case_fallback, basename_fallback, ...)
    case_fallback: bool = False
    subcaption_latex: str | None = None
    subcaption_text: str | None = None
    sublabel: str | None = None
    command: str = "includegraphics"  # the LaTeX command or environment that produced it
    width: int | None = None
    height: int | None = None
    tikz_source: str | None = None  # drawings: the picture's code with the definitions it uses (tikzsource.py)

    def to_json(self) -> dict:
        return {
            "as_written": self.as_written, "path": self.path, "format": self.format, "status": self.status,
            "reason": self.reason, "width": self.width, "height": self.height,
            "subcaption_text": self.subcaption_text, "sublabel": self.sublabel,
        }


@dataclass
class FigureRecord:
    figure_index: int  # 1-based, document order
    env: str  # figure, figure*, wrapfigure, sidewaysfigure, SCfigure, teaserfigure, captionof, figcaption ...
    label: str | None = None
    sublabels: list[str] = field(default_factory=list)  # labels of its sub-figures
    mentions: list[str] = field(default_factory=list)  # body paragraphs that \ref the label or a sub-label
    caption_latex: str | None = None  # source of the long caption, as written (comments removed)
    caption_text: str | None = None
    short_caption_latex: str | None = None  # the [short] form, when given
    section_title: str | None = None
    section_kind: str = "other"
    figure_kind: str = "other"  # from the source alone; process_paper refines it with the rendered images
    kind_rule: str | None = None  # tikz / table when the source alone decides the kind
    has_tabular: bool = False
    graphics: list[GraphicRef] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    start: int = 0  # offsets in the flattened document (for debugging and ordering)
    end: int = 0

    def to_json(self, paper_id: str) -> dict:
        return {
            "paper_id": paper_id, "figure_index": self.figure_index, "env": self.env, "label": self.label,
            "caption_latex": self.caption_latex, "caption_text": self.caption_text,
            "section_title": self.section_title, "section_kind": self.section_kind,
            "figure_kind": self.figure_kind, "graphics": [g.to_json() for g in self.graphics],
        }


@dataclass
class LatexAnalysis:
    paper_id: str
    main_tex: str | None
    title: str | None = None
    abstract: str | None = None
    figures: list[FigureRecord] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    included: list[str] = field(default_factory=list)  # .tex files inserted into the main document
    encoding: str | None = None  # of the main file

    @property
    def n_graphics(self) -> int:
        return sum(len(f.graphics) for f in self.figures)
