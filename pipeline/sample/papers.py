"""Building one sample paper from its plan: the chunk member's bytes, its ground truth and its metadata.

`build_paper(plan)` is a pure function of the plan (its seed included), so papers can be built in worker
processes in any order. The truth lists what a correct extractor must find: every live figure
environment of the main document in order, its caption as plain text, and each graphic resolved to the
bundle member pdfTeX would use (or `missing` / `tikz` / `error`). Decoy figures (comments, `\\iffalse`,
`comment` environments, after `\\end{document}`, unused drafts) are listed separately and must not be found.

Truth record (one line of truth/papers.jsonl):
  paper_id, chunk, member, yymm, title, primary_category, categories, features (planted scenario flags),
  source_format   tar | tex | pdf | ps | html | withdrawn   (what the magic bytes say; the gzip bomb is "tar")
  status          ok (>= 1 live figure environment) | no_figures | pdf_only | no_source (ps/html) |
                  withdrawn | error (the gzip bomb)
  main_tex        normalised member path of the main file (no "./"), None for single-file sources
  n_figures, n_graphics, decoys [{where, graphic}], hostile [{kind, member, ...}]
  figures [{figure_index (1-based, document order after \\input expansion), env (figure, figure*,
            wrapfigure, sidewaysfigure, captionof), written_as (env, or "macro" / "tikz"), label,
            caption_latex, caption_text, short_caption, section_title, section_kind, figure_kind
            (plot|diagram|photo|table|tikz), subkind (line|scatter|bar|heatmap|block|network|photo|table|tikz),
            sub_style (subcaption|subfloat|subfigure|plottwo|None),
            graphics [{as_written, path, format, status ok|missing|tikz|error, subcaption_text,
                       subcaption_latex, subkind, encoding, note}]}]
"""

import dataclasses
import gzip
import io
import tarfile
from datetime import date, timedelta

import numpy as np

from pipeline.sample import documents, figures, hostile, latex, text
from pipeline.sample.latex import Document, FigureSpec, GraphicRef, Section
from pipeline.sample.plan import PaperPlan
from pipeline.sample.resolve import resolve
from pipeline.sample.styles import RASTER_SUBKINDS, SECTION_BIAS, STYLES, SUBKIND_TO_KIND
from pipeline.sample.text import Seg, plain
from pipeline.source.oai import MetadataRecord, default_sets

STATUS_BY_FORMAT = {"pdf": "pdf_only", "withdrawn": "withdrawn", "ps": "no_source", "html": "no_source",
                    "bomb": "error"}
SOURCE_FORMAT = {"bomb": "tar"}  # what the magic bytes say; the bomb is a gzipped tar

DOCCLASS = {
    "cs.CV": "[10pt,twocolumn,letterpaper]{article}", "cs.LG": "{article}", "cs.CL": "[11pt]{article}",
    "math.PR": "[11pt]{amsart}", "math.AP": "{amsart}", "astro-ph.GA": "[twocolumn]{aastex631}",
    "cond-mat.mtrl-sci": "[aps,prb,twocolumn,superscriptaddress]{revtex4-2}", "q-bio.NC": "[11pt]{article}",
    "stat.ML": "{article}", "hep-th": "[a4paper,11pt]{article}",
}
_BASENAME = {"line": "curve", "scatter": "scatter", "bar": "bars", "heatmap": "map", "block": "overview",
             "network": "graph", "photo": "examples", "table": "table"}
_IMAGE_EXT = {"png": "png", "png-rgba": "png", "png16": "png", "png-palette": "png", "jpg": "jpg",
              "jpg-cmyk": "jpg", "jpg-exif": "jpg", "pdf": "pdf", "eps": "eps"}
# Graphic-level oddities a feature plants on one graphic each.
_FEATURE_MODS = {
    "missing_graphic": ["missing"], "pdfpng": ["pdfpng"], "case_mismatch": ["case"],
    "odd_names": ["dots", "space", "upper"], "rgba": ["rgba"],
    "exotic_images": ["rgba", "png16", "cmyk", "exif", "palette"],
    "hostile_links": ["symlink"], "hostile_images": ["truncated", "huge"], "split_options": ["split"],
}
_VECTOR_MODS = {"pdfpng", "space", "rgba"}  # need a matplotlib drawing, not a photo raster


@dataclasses.dataclass
class BuiltPaper:
    index: int
    chunk: str
    member: str  # "2301/2301.00001.gz"
    data: bytes  # the member's bytes as stored in the chunk tar
    truth: dict
    record: MetadataRecord


@dataclasses.dataclass
class _Intent:
    """A figure before it is drawn: where it goes and what is odd about it."""

    section: int
    subkind: str
    env: str = "figure"
    sub_style: str | None = None
    mods: list[str | None] = dataclasses.field(default_factory=lambda: [None])
    caption_mods: set[str] = dataclasses.field(default_factory=set)
    wide: bool = False


# ---------------------------------------------------------------------------------------------- entry point


def build_paper(plan: PaperPlan) -> BuiltPaper:
    rng = np.random.default_rng(plan.seed)
    title = text.title(plan.primary, rng)
    authors = text.authors(rng)
    abstract = text.abstract(plan.primary, rng)
    fmt = plan.source_format
    truth = {
        "paper_id": plan.paper_id, "chunk": plan.chunk, "member": plan.member, "yymm": plan.yymm,
        "source_format": SOURCE_FORMAT.get(fmt, fmt), "status": STATUS_BY_FORMAT.get(fmt, "ok"),
        "main_tex": None, "primary_category": plan.primary, "categories": list(plan.categories),
        "title": title, "features": list(plan.features), "figures": [], "decoys": [], "hostile": [],
    }
    if fmt == "withdrawn":
        data = _gzip(documents.WITHDRAWN_TEXT, "withdrawn")
    elif fmt == "pdf":
        data = documents.pdf_paper(title, authors, abstract, plan.primary, rng, "line")
    elif fmt == "ps":
        data = _gzip(documents.ps_paper(title, authors, abstract), plan.stem)
    elif fmt == "html":
        data = _gzip(documents.html_paper(title, authors, abstract), plan.stem)
    elif fmt == "bomb":
        tex = _minimal_tex(title, abstract).encode()
        prefix, suffix = hostile.tar_bomb_parts(tex, mtime=_epoch(plan))
        data = hostile.gzip_bomb(prefix, suffix, fname=f"{plan.stem}.tar".encode())
        truth["main_tex"] = "main.tex"
        truth["hostile"].append({"kind": "gzip_bomb", "member": "data/zeros.bin",
                                 "decompressed_bytes": len(prefix) + hostile.BOMB_BYTES + len(suffix)})
    else:
        builder = _Builder(plan, rng, title, authors, abstract)
        data = builder.build_tex() if fmt == "tex" else builder.build_tar()
        truth.update(builder.truth())
    if truth["status"] == "ok" and not truth["figures"]:
        truth["status"] = "no_figures"
    truth["n_figures"] = len(truth["figures"])
    truth["n_graphics"] = sum(len(f["graphics"]) for f in truth["figures"])
    record = _record(plan, rng, title, authors, abstract, truth["n_figures"])
    return BuiltPaper(plan.index, plan.chunk, plan.member, data, truth, record)


# ---------------------------------------------------------------------------------------------- metadata


def submission_date(plan: PaperPlan) -> date:
    year = int(plan.yymm[:2])
    first = date(1900 + year if year >= 91 else 2000 + year, int(plan.yymm[2:]), 1)
    return first + timedelta(days=(plan.number * 27) // max(1, plan.month_size))


def _epoch(plan: PaperPlan) -> int:
    d = submission_date(plan)
    return int((d - date(1970, 1, 1)).total_seconds()) + 43200


def _record(plan: PaperPlan, rng, title: str, authors: list[str], abstract: str, n_figures: int) -> MetadataRecord:
    created = submission_date(plan)
    updated = created + timedelta(days=int(rng.integers(5, 200))) if rng.random() < 0.25 else None
    pages = int(rng.integers(6, 40))
    comments = f"{pages} pages, {n_figures} figures" if n_figures else f"{pages} pages"
    if plan.source_format == "withdrawn":
        comments = "This paper has been withdrawn by the author due to an error in the main lemma"
        updated = updated or created + timedelta(days=30)
    elif rng.random() < 0.2:
        comments += "; accepted for publication"
    archive = plan.primary.split(".")[0]
    msc = "60J10; 60F10" if archive == "math" and rng.random() < 0.6 else None
    acm = "I.2.6; I.4.8" if archive == "cs" and rng.random() < 0.3 else None
    doi = f"10.1000/sample.{plan.yymm}.{plan.number:05d}" if rng.random() < 0.2 else None
    jref = f"J. Sample Res. {int(rng.integers(1, 90))} ({created.year + 1}) {int(rng.integers(1, 999))}" if doi else None
    license_ = None if plan.old_style else ("http://creativecommons.org/licenses/by/4.0/" if rng.random() < 0.5
                                           else "http://arxiv.org/licenses/nonexclusive-distrib/1.0/")
    stamp = (updated or created) + timedelta(days=int(rng.integers(1, 4)))
    return MetadataRecord(
        id=plan.paper_id, created=created.isoformat(), updated=updated.isoformat() if updated else None,
        title=title, authors=list(authors), categories=list(plan.categories), primary_category=plan.primary,
        abstract=abstract, comments=comments, journal_ref=jref, doi=doi, license=license_, msc_class=msc,
        acm_class=acm, datestamp=stamp.isoformat(), sets=default_sets(list(plan.categories)),
    )


# ---------------------------------------------------------------------------------------------- helpers


def _gzip(data: bytes, fname: str) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename=fname, mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def _minimal_tex(title: str, abstract: str) -> str:
    return ("\\documentclass{article}\n\\begin{document}\n\\title{" + title + "}\\maketitle\n"
            "\\begin{abstract}\n" + abstract + "\n\\end{abstract}\n\\section{Introduction}\nSee the data.\n"
            "\\end{document}\n")


def _bib(rng, n: int = 6) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        last = text.pick(rng, text._LAST).replace(" ", "")
        year = int(rng.integers(1995, 2023))
        out.append((f"{last.lower()}{year}{'abcdefgh'[i]}", f"{last}, A. ({year}). A study. J. Sample Res. {i + 1}."))
    return out


# ---------------------------------------------------------------------------------------------- the builder


class _Builder:
    """Lays out one TeX paper: files, figure environments, their truth."""

    def __init__(self, plan: PaperPlan, rng, title: str, authors: list[str], abstract: str):
        self.plan, self.rng = plan, rng
        self.f = set(plan.features)
        self.style = STYLES[plan.primary]
        self.title, self.authors, self.abstract = title, authors, abstract
        self.files: dict[str, bytes] = {}
        self.specials: list[tuple[tarfile.TarInfo, bytes | None]] = []  # links, devices, hostile names
        self.hostile: list[dict] = []
        self.decoys: list[dict] = []
        self.figs: list[dict] = []
        self.checks: list[tuple[str, str, str, bool]] = []  # (as_written expanded, expected path, fig, case)
        self.counter = 0
        self.main = "main.tex"
        self.prefixes: list[str] = []  # \graphicspath
        self.figdir = ""
        self.encoding = "utf-8"
        self.old = plan.old_style
        self.macro_dir = self.figdir
        self.bib = _bib(rng)
        self.cites = [k for k, _ in self.bib]

    # -------------------------------------------------------------------------------- public

    def truth(self) -> dict:
        return {"main_tex": self.main, "figures": self.figs, "decoys": self.decoys, "hostile": self.hostile}

    def build_tex(self) -> bytes:
        """A single gzipped .tex file: figures are TikZ or name graphics that are not there."""
        self.main = None  # single-file source: no member name
        secs = self._sections()
        intents = []
        if "tikz" in self.f:
            intents.append(_Intent(section=len(secs) - 2, subkind="tikz", env="tikz", mods=[]))
        if "missing_graphic" in self.f or not intents:
            intents.append(_Intent(section=1, subkind="line", mods=["missing"]))
        doc = self._document(secs, intents, packages=["{graphicx}", "{amsmath}", "{tikz}"])
        tex = latex.render_tree(doc)["main.tex"]
        return _gzip(tex.encode("utf-8"), self.plan.stem)

    def build_tar(self) -> bytes:
        self._layout()
        secs = self._sections()
        intents = self._intents(secs)
        doc = self._document(secs, intents, packages=self._packages(intents))
        for name, body in latex.render_tree(doc).items():
            self.files[name] = body.encode(self.encoding)
        self._extras()
        self._verify()
        return _gzip(self._tar(), f"{self.plan.stem}.tar")

    # -------------------------------------------------------------------------------- layout

    def _layout(self) -> None:
        rng, f = self.rng, self.f
        if "readme00" in f:
            self.main = "ms.tex"
        else:
            self.main = text.pick(rng, ["main.tex", "main.tex", "main.tex", "ms.tex", "paper.tex", "arxiv.tex"])
        if "graphicspath_nowhere" in f:
            self.prefixes = ["img/"]  # declared, but the figures sit beside the .tex
        elif "graphicspath" in f:
            self.prefixes = ["figures/", "plots/"]
        elif "input_tree" in f:
            self.figdir = "figs/"
        else:
            self.figdir = text.pick(rng, ["", "figures/", "figures/", "figs/", "images/"])
        if "latin1" in f:
            self.encoding = "latin-1"

    def _sections(self) -> list[Section]:
        rng = self.rng
        kinds = ["intro"] + (["background"] if rng.random() < 0.5 else []) + ["method", "results"]
        kinds += (["discussion"] if rng.random() < 0.6 else []) + (["appendix"] if rng.random() < 0.3 else [])
        secs = []
        tree = "input_tree" in self.f
        styles = ["input", "input-nobrace", "input-ext", "input"]
        for i, kind in enumerate(kinds):
            title, section_kind = text.pick(rng, text.SECTION_TITLES[kind])
            sec = Section(title=title, kind=kind, label=f"sec:{kind}", blocks=[], appendix=kind == "appendix",
                          section_kind=section_kind)
            if tree and i > 0:
                if kind == "appendix":
                    sec.file, sec.include_style = "appendix/extra.tex", "include"
                else:
                    sec.file, sec.include_style = f"sections/{kind}.tex", styles[i % len(styles)]
            secs.append(sec)
        return secs

    def _pick_subkind(self, kind: str) -> str:
        weights = {k: w * SECTION_BIAS.get(kind, {}).get(k, 1.0) for k, w in self.style.kinds.items()}
        if self.old or {"epsfig", "aastex"} & self.f:
            weights.pop("photo", None)  # EPS-only papers: no photo rasters
        keys = sorted(weights)
        p = np.array([weights[k] for k in keys])
        return keys[int(self.rng.choice(len(keys), p=p / p.sum()))]

    def _intents(self, secs: list[Section]) -> list[_Intent]:
        rng, f = self.rng, self.f
        if "no_figures" in f:
            return []
        by_kind = {s.kind: i for i, s in enumerate(secs)}
        intents: list[_Intent] = []
        for i, s in enumerate(secs):
            # about 2.5 figures a paper: enough variety, and the default bucket builds in well under a minute
            n = {"intro": rng.random() < 0.3, "method": rng.random() < 0.6, "results": int(rng.integers(1, 3)),
                 "appendix": rng.random() < 0.5}.get(s.kind, 0)
            intents += [_Intent(section=i, subkind=self._pick_subkind(s.kind)) for _ in range(int(n))]

        def take(pred=lambda it: True, kind="results") -> _Intent:
            for it in intents:
                if it.env == "figure" and not it.sub_style and all(m is None for m in it.mods) and pred(it):
                    return it
            it = _Intent(section=by_kind[kind], subkind=self._pick_subkind(kind))
            intents.append(it)
            return it

        if "tikz" in f:
            it = take(kind="method")
            it.env, it.subkind, it.mods = "tikz", "tikz", []
        for feat, style in (("subcaption", "subcaption"), ("subfloat", "subfloat"), ("subfigure_old", "subfigure")):
            if feat in f:
                it = take()
                it.sub_style, it.mods = style, [None] * int(rng.integers(2, 4))
        if "aastex" in f:
            it = take()
            it.sub_style, it.mods = "plottwo", [None, None]
        for feat, env in (("figure_star", "figure*"), ("wrapfigure", "wrapfigure"), ("sideways", "sidewaysfigure"),
                          ("captionof", "captionof"), ("figmacro", "macro")):
            if feat in f:
                it = take()
                it.env = env
                it.wide = env == "figure*"
        for feat in ("caption_short", "caption_first", "label_in_caption", "changes", "latin1"):
            if feat in f:
                take(lambda it, feat=feat: feat not in it.caption_mods).caption_mods.add(feat)
        mods = [m for feat, ms in _FEATURE_MODS.items() if feat in f for m in ms]
        if "macros" in f:
            mods.append("figdir")
        for mod in mods:
            it = take(lambda it, mod=mod: it.env != "macro" and it.subkind not in RASTER_SUBKINDS
                      if mod in _VECTOR_MODS else it.env != "macro")
            if mod in _VECTOR_MODS and it.subkind in RASTER_SUBKINDS:
                it.subkind = "line"
            it.mods = [mod]
        intents.sort(key=lambda it: it.section)  # stable: document order within a section is list order
        return intents

    # -------------------------------------------------------------------------------- figures

    def _graphic_format(self, subkind: str) -> str:
        r = self.rng.random()
        if {"epsfig", "aastex"} & self.f or (self.old and r < 0.75):
            return "eps"
        if subkind in RASTER_SUBKINDS:
            return "png" if r < 0.5 else "jpg"
        if "rgba" in self.f and r < 0.3:
            return "png-rgba"
        return "pdf" if r < 0.45 else "png" if r < 0.8 else "eps" if r < 0.92 else "jpg"

    def _name(self, subkind: str) -> str:
        self.counter += 1
        return f"{_BASENAME.get(subkind, 'fig')}{self.counter}"

    def _dir_for_new_file(self) -> str:
        if self.prefixes and self.prefixes != ["img/"]:
            return self.prefixes[self.counter % len(self.prefixes)]
        return self.figdir

    def _written(self, path: str, *, noext: bool) -> str:
        """The \\includegraphics argument for a member path: relative to its graphicspath prefix, if any."""
        arg = path
        for p in self.prefixes:
            if path.startswith(p):
                arg = path[len(p):]
        if noext:
            arg = arg.rsplit(".", 1)[0]
        return arg

    def _make_graphic(self, it: _Intent, mod: str | None, sub: list[Seg] | None) -> tuple[GraphicRef, dict]:
        """Draw one graphic (or plant its trap: `mod`), add its file(s) to the bundle, and return the
        \\includegraphics reference with the graphic's truth. Every written name is checked later by `_verify`."""
        rng = self.rng
        subkind = it.subkind
        fmt = self._graphic_format(subkind)
        noext = "noext" in self.f and rng.random() < 0.6
        command = "epsfig" if "epsfig" in self.f else "plotone" if "aastex" in self.f and not it.sub_style else "includegraphics"
        base = self._name(subkind)
        folder = self._dir_for_new_file()
        note = None
        status = "ok"
        encoding = fmt
        expected: str | None = None
        case = False

        if mod == "missing":
            path = None
            written = f"{folder}{base}.eps" if self.old or rng.random() < 0.5 else f"{folder}{base}"
            status, fmt, note = "missing", None, "file not in the bundle"
        elif mod == "symlink":
            path = f"{folder}{base}.png"
            info = tarfile.TarInfo(path)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            self.specials.append((info, None))
            self.hostile.append({"kind": "symlink", "member": path, "target": "/etc/passwd"})
            written, status, fmt, path = self._written(path, noext=False), "missing", None, None
            note = "the member is a symlink to /etc/passwd: a safe reader drops it"
        elif mod == "huge":
            path = f"{folder}{base}.png"
            self.files[path] = hostile.pixel_bomb_png()
            self.hostile.append({"kind": "pixel_bomb", "member": path, "declared_size": [30000, 30000]})
            written, status, fmt, encoding = self._written(path, noext=noext), "error", "png", "png"
            expected = path
            note = "PNG header declares 30000x30000 px"
        else:
            drawing = figures.draw(subkind, self.plan.primary, rng, wide=it.wide)
            if mod in ("rgba", "png16", "palette"):
                fmt = {"rgba": "png-rgba", "png16": "png16", "palette": "png-palette"}[mod]
            elif mod in ("cmyk", "exif"):
                fmt = {"cmyk": "jpg-cmyk", "exif": "jpg-exif"}[mod]
            elif mod in ("pdfpng", "space"):
                fmt = "pdf"
            elif mod in ("truncated", "dots"):
                fmt = "png"
            elif mod == "upper":
                fmt = "jpg"
            elif mod == "case":
                fmt = "png" if fmt in ("pdf", "eps") else fmt
            ext = _IMAGE_EXT[fmt]
            encoding = fmt
            if mod == "dots":
                base = f"{base}_v1.5"
                noext = True
            elif mod == "space":
                base = base.replace(_BASENAME.get(subkind, "fig"), "loss curve ")
            elif mod == "upper":
                ext, noext = "JPG", True
            elif mod == "pdfpng":
                noext = True
            elif mod == "case":
                base = base.capitalize()
            path = f"{folder}{base}.{ext}"
            data = figures.encode(drawing, fmt)
            if mod == "pdfpng":
                self.files[f"{folder}{base}.png"] = figures.encode(drawing, "png")
                note = f"{base}.pdf and {base}.png both present: pdfTeX takes the .pdf"
            figures.close(drawing)
            if mod == "truncated":
                data = hostile.truncated(data)
                self.hostile.append({"kind": "truncated_image", "member": path})
                status, note = "error", "PNG cut short"
            self.files[path] = data
            written = self._written(path, noext=noext)
            if mod == "case":
                written = written.replace(base, base.lower())
                case, note = True, "file name differs in case: found only by a case-insensitive match"
            if mod == "figdir":  # \def\figdir{<folder>} in the preamble; TeX eats the space after \figdir
                written = "\\figdir " + path[len(folder):]
                self.macro_dir = folder
            if mod == "upper":
                note = "upper-case extension .JPG, written without extension"
            fmt = ext.lower()
            expected = path
        self.checks.append((written.replace("\\figdir ", folder), expected, base, case))
        ref = GraphicRef(as_written=written, command=command, subcaption=sub, split_options=mod == "split")
        if command == "plotone" or command == "epsfig":
            ref.options = ""
        truth = {
            "as_written": written, "path": expected if status != "missing" else None,
            "format": fmt if status != "missing" else None, "status": status,
            "subcaption_text": text.join_text(sub) if sub else None,
            "subcaption_latex": text.join_latex(sub) if sub else None,
            "subkind": subkind, "encoding": encoding if status != "missing" else None, "note": note,
        }
        return ref, truth

    def _caption(self, it: _Intent, refs: list[tuple[str, str]]) -> list[Seg]:
        ours = "SciFact" if "macros" in self.f else None
        segs = text.caption(it.subkind, self.plan.primary, self.rng, ours=ours, refs=refs, cites=self.cites)
        if "changes" in it.caption_mods:
            segs = [Seg("\\replaced{Revised}{Draft} ", "Revised "), *segs,
                    Seg(" \\added{Shaded bands show one standard deviation.}",
                        " Shaded bands show one standard deviation."),
                    Seg("\\deleted{ Outliers were removed.}", "")]
        if "latin1" in it.caption_mods:
            segs = [*segs, plain(" Données de Schrödinger à Zürich.")]
        elif self.plan.primary.startswith("math") and self.rng.random() < 0.2:
            segs = [*segs, Seg(" After Poincar\\'e.", " After Poincaré.")]
        return segs

    def _figure(self, it: _Intent, index: int, refs: list[tuple[str, str]], section: Section) -> FigureSpec:
        rng = self.rng
        caption = self._caption(it, refs)
        label = f"fig:{it.subkind}{index}" if rng.random() < 0.9 or "label_in_caption" in it.caption_mods else None
        refs_out, graphics_truth = [], []
        if it.env != "tikz":
            for j, mod in enumerate(it.mods):
                sub = text.subcaption(rng, j) if it.sub_style and it.sub_style != "plottwo" else None
                ref, g = self._make_graphic(it, mod, sub)
                refs_out.append(ref)
                graphics_truth.append(g)
        else:
            graphics_truth.append({"as_written": None, "path": None, "format": None, "status": "tikz",
                                   "subcaption_text": None, "subcaption_latex": None, "subkind": "tikz",
                                   "encoding": None, "note": "tikzpicture: no image file"})
        short = text.join_text(caption[:1]) if "caption_short" in it.caption_mods else None
        spec = FigureSpec(
            env=it.env, graphics=refs_out, caption=caption, label=label, short_caption=short,
            label_in_caption="label_in_caption" in it.caption_mods, caption_first="caption_first" in it.caption_mods,
            sub_style=it.sub_style, placement=text.pick(rng, ["t", "htbp", "h", "tb"]),
        )
        if it.env == "macro":
            spec.label_in_caption = True
        self.figs.append({
            "figure_index": index, "env": "figure" if it.env in ("macro", "tikz") else it.env,
            "label": label, "caption_latex": text.join_latex(caption), "caption_text": text.join_text(caption),
            "short_caption": short, "section_title": section.title, "section_kind": section.section_kind,
            "figure_kind": "tikz" if it.env == "tikz" else SUBKIND_TO_KIND[it.subkind], "subkind": it.subkind,
            "sub_style": it.sub_style, "written_as": it.env, "graphics": graphics_truth,
        })
        return spec

    # -------------------------------------------------------------------------------- document

    def _packages(self, intents: list[_Intent]) -> list[str]:
        f = self.f
        pk = ["{epsfig}" if "epsfig" in f else "{graphicx}", "{amsmath,amssymb}"]
        if self.encoding == "latin-1":
            pk.insert(0, "[latin1]{inputenc}")
        styles = {it.sub_style for it in intents}
        pk += [p for s, p in (("subcaption", "{subcaption}"), ("subfloat", "{subfig}"), ("subfigure", "{subfigure}"))
               if s in styles]
        envs = {it.env for it in intents}
        pk += [p for e, p in (("wrapfigure", "{wrapfig}"), ("sidewaysfigure", "{rotating}"), ("captionof", "{capt-of}"),
                              ("tikz", "{tikz}")) if e in envs]
        if "changes" in f:
            pk.append("{changes}")
        if "deadcode" in f:
            pk.append("{comment}")
        if "macros" in f:
            pk.append("{xspace}")
        return pk + ["{hyperref}"]

    def _document(self, secs: list[Section], intents: list[_Intent], packages: list[str]) -> Document:
        rng, f = self.rng, self.f
        refs: list[tuple[str, str]] = [("Section", s.label) for s in secs]
        by_section: dict[int, list[_Intent]] = {}
        for it in intents:
            by_section.setdefault(it.section, []).append(it)
        index = 0
        for i, sec in enumerate(secs):
            blocks: list = [text.paragraph(self.plan.primary, rng, self.cites, refs)]
            for it in by_section.get(i, []):
                index += 1
                spec = self._figure(it, index, refs, sec)
                blocks.append(spec)
                if spec.label:
                    refs.append(("Fig.", spec.label))
                if rng.random() < 0.6:
                    blocks.append(text.paragraph(self.plan.primary, rng, self.cites, refs))
            sec.blocks = blocks
        preamble = []
        if "graphicspath" in f or "graphicspath_nowhere" in f:
            preamble.append("\\graphicspath{" + "".join("{" + p + "}" for p in self.prefixes) + "}")
        if "macros" in f:
            preamble += ["\\newcommand{\\ours}{SciFact\\xspace}", "\\newcommand{\\R}{\\mathbb{R}}"]
            preamble.append(f"\\def\\figdir{{{self.macro_dir}}}")
        if "figmacro" in f:
            preamble.append(latex.FIGURE_MACRO)
        if "aastex" in f:
            preamble.append("\\shorttitle{Sample}\\shortauthors{" + self.authors[0].split()[-1] + " et al.}")
        doc = Document(
            main=self.main or "main.tex", docclass="[12pt]{article}" if self.old else DOCCLASS[self.plan.primary],
            packages=packages, preamble=preamble, title=self.title, authors=self.authors,
            abstract=self.abstract, sections=secs, bib=self.bib,
        )
        if "deadcode" in f:
            self._plant_dead_code(doc)
        return doc

    def _decoy_figure(self, where: str) -> str:
        """A figure that must NOT be extracted; its graphic exists in the bundle to tempt a naive reader."""
        path = f"{self.figdir}unused_{where}.png"
        self.files[path] = figures.sketch_png(self.rng, f"old figure ({where})")
        self.decoys.append({"where": where, "graphic": path})
        spec = FigureSpec(env="figure", graphics=[GraphicRef(as_written=path)],
                          caption=[plain(f"Old figure ({where}).")], label=f"fig:old-{where}")
        return latex.render_figure(spec)

    def _plant_dead_code(self, doc: Document) -> None:
        doc.dead_before = [latex.commented(self._decoy_figure("percent")), latex.iffalse(self._decoy_figure("iffalse")),
                           latex.comment_env(self._decoy_figure("comment_env"))]
        doc.after_end = "\n" + self._decoy_figure("after_end") + "\n"

    # -------------------------------------------------------------------------------- extra members

    def _extras(self) -> None:
        rng, f = self.rng, self.f
        if "readme00" in f:
            self.files["00README.XXX"] = f"{self.main} toplevelfile\nresponse_letter.tex ignore\n".encode()
            self.files["response_letter.tex"] = (
                "\\documentclass{letter}\n\\usepackage{graphicx}\n\\begin{document}\nDear editor,\n"
                + self._decoy_figure("response_letter") + "\n\\end{document}\n").encode()
        if "draft_tex" in f:
            self.files["_old-results.tex"] = ("\\section{Old results}\n" + self._decoy_figure("draft_tex") + "\n").encode()
        if "junk_images" in f:
            self.files[f"{self.figdir}unused_supplement.png"] = figures.sketch_png(rng, "supplement")
        if "bib_file" in f:
            self.files["refs.bib"] = "".join(
                f"@article{{{k},\n  title={{{v}}},\n  year={{2020}}\n}}\n" for k, v in self.bib).encode()
        if "hostile_paths" in f:
            drawing = figures.draw("photo", "cs.CV", rng)
            self.specials.append((_reg("../../evil.png"), figures.encode(drawing, "png")))
            self.specials.append((_reg("/abs/path.tex"), b"% written outside the bundle if extracted naively\n"))
            dev = tarfile.TarInfo("dev/tty0")
            dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 4, 0
            self.specials.append((dev, None))
            self.hostile += [{"kind": "path_traversal", "member": "../../evil.png"},
                             {"kind": "absolute_path", "member": "/abs/path.tex"},
                             {"kind": "device", "member": "dev/tty0"}]
        if "hostile_links" in f:
            target = next((p for p in self.files if p.endswith(".png")), self.main)
            link = tarfile.TarInfo("figures/hardlink.png")
            link.type, link.linkname = tarfile.LNKTYPE, target
            self.specials.append((link, None))
            self.hostile.append({"kind": "hardlink", "member": "figures/hardlink.png", "target": target})
        if "appledouble" in f:
            for path in [self.main] + [p for p in self.files if not p.endswith(".tex")][:3]:
                head, _, name = path.rpartition("/")
                self.files[f"{head}/._{name}" if head else f"._{name}"] = hostile.APPLEDOUBLE
        if "dotslash" in f:
            self.files[".DS_Store"] = b"\x00\x00\x00\x01Bud1" + bytes(32)
            self.files[f"__MACOSX/._{self.main}"] = hostile.APPLEDOUBLE

    def _verify(self) -> None:
        """Resolve every written graphic like pdfTeX: the truth must name the file TeX would use."""
        files = set(self.files)
        for written, expected, base, case in self.checks:
            got, insensitive = resolve(written, self.prefixes, files)
            if got != expected or insensitive != case:
                raise AssertionError(f"{self.plan.paper_id}: {written!r} resolves to {got!r} "
                                     f"(case-insensitive={insensitive}), truth says {expected!r} ({base})")

    def _tar(self) -> bytes:
        mtime = _epoch(self.plan)
        prefix = "./" if "dotslash" in self.f else ""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            dirs = sorted({p.rsplit("/", 1)[0] + "/" for p in self.files if "/" in p})
            for d in dirs:
                info = tarfile.TarInfo(prefix + d.rstrip("/"))
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(_fix(info, mtime))
            for path, data in self.files.items():
                info = _reg(prefix + path)
                info.size = len(data)
                tar.addfile(_fix(info, mtime), io.BytesIO(data))
            for info, data in self.specials:
                if data is not None:
                    info.size = len(data)
                tar.addfile(_fix(info, mtime), io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def _reg(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info


def _fix(info: tarfile.TarInfo, mtime: int) -> tarfile.TarInfo:
    """Fixed owner and time: identical bytes on every run."""
    info.mtime = mtime
    info.uid = info.gid = 1000
    info.uname = info.gname = "author"
    return info

