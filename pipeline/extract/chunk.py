"""Extract one chunk tar (`arXiv_src_YYMM_NNN.tar`) into the papers / figures / text tables.

`extract_chunk` streams the chunk with `pipeline.source.chunk.iter_chunk`, runs `process_paper` for each
paper in the worker pool (`process_papers`, over `pipeline.extract.worker.run_pool`: wall-clock limit, memory
cap, crash recovery), and streams the rows into a `ChunkWriter` (atomic, idempotent). Every paper of the chunk
ends in exactly one papers row, in chunk order, whatever happened to it. `arxiv-forge extract` runs papers
on a disk through the same `process_papers`, so one paper there gives the rows it would give in a chunk.
"""

import hashlib
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from forge_common import ProgressLog
from pipeline.dataset.lake import Lake
from pipeline.dataset.schemas import EXTRACTOR_VERSION, UNKNOWN_CATEGORY
from pipeline.dataset.writer import ChunkWriter
from pipeline.errors import UserError
from pipeline.extract.bundle import Bundle, read_bundle
from pipeline.extract.limits import DEFAULT_LIMITS, Limits
from pipeline.extract.raster import (
    RasterResult,
    cpu_clock,
    rasterize,
    rasterize_postscript_batch,
    sniff_image_format,
)
from pipeline.source.chunk import PaperSource
from pipeline.source.licenses import normalise_license
from pipeline.source.manifest import chunk_name

log = logging.getLogger(__name__)
_VERSION_RE = re.compile(r"(?:\d{4}\.\d{4,5}|\d{7})v(\d+)(?![0-9])")  # 2301.00001v2, math0601001v3


@dataclass
class PaperTask:
    """What a worker needs for one paper (a picklable slice of PaperSource plus its metadata)."""

    paper_id: str
    yymm: str | None
    format: str
    source_bytes: int | None
    data: bytes | None
    error: str | None = None
    gzip_name: str | None = None
    meta: dict | None = None
    limits: Limits = DEFAULT_LIMITS


@dataclass
class PaperResult:
    paper: dict
    figures: list[dict]
    text: list[dict]
    timings: dict[str, float] = field(default_factory=dict)  # read, analysis, raster, encode (CPU seconds)
    # figure_id -> {"as_written", "sublabel"}: how the source named each row's graphic. Not a table column;
    # `arxiv-forge extract` shows it (a missing graphic is found by the name the author wrote).
    graphic_refs: dict[str, dict] = field(default_factory=dict)


@dataclass
class ChunkSummary:
    chunk: str
    papers: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    figures: int = 0  # figure environments
    graphics: int = 0  # rows of the figures table (one per graphic)
    images: int = 0  # rows with a stored PNG
    text_rows: int = 0
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # CPU seconds by stage, summed over papers
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    def errors_total(self) -> int:
        return self.by_status.get("error", 0)

    def to_json(self) -> dict:
        return asdict(self)


def _meta_fields(meta: dict | None) -> tuple[str, list[str], str | None]:
    """(primary_category, categories, field) from a metadata row; field via the taxonomy."""
    meta = meta or {}
    cats = [c for c in (meta.get("categories") or []) if c]
    primary = meta.get("primary_category") or (cats[0] if cats else None) or UNKNOWN_CATEGORY
    fld = meta.get("field")
    if not fld and primary != UNKNOWN_CATEGORY:
        try:
            from pipeline.source.taxonomy import field_of

            fld = field_of(primary)
        except (ImportError, KeyError):
            fld = None
    return primary, cats, fld


def paper_version(task: PaperTask) -> int | None:
    """The e-print's version: from its file name in the chunk when it carries one (that is the version
    extracted), else the latest version the metadata lists (arXivRaw), else None."""
    for name in (task.paper_id, task.gzip_name or ""):
        m = _VERSION_RE.search(name)
        if m:
            return int(m.group(1))
    version = (task.meta or {}).get("version")
    return int(version) if version else None


def _paper_row(task: PaperTask, status: str, error: str | None = None, **extra: Any) -> dict:
    row = {
        "paper_id": task.paper_id,
        "version": paper_version(task),
        "license": normalise_license((task.meta or {}).get("license")),
        "yymm": task.yymm,
        "source_format": task.format,
        "source_bytes": task.source_bytes,
        "main_tex": None,
        "status": status,
        "error": error,
        "n_figures": 0,
        "n_graphics": 0,
        "n_images": 0,
        "n_skipped_members": 0,
        "extractor_version": EXTRACTOR_VERSION,
    }
    row.update(extra)
    return row


def _metadata_text(task: PaperTask, fld: str | None) -> list[dict]:
    meta = task.meta or {}
    rows = []
    for kind in ("title", "abstract"):
        value = meta.get(kind)
        if isinstance(value, str) and value.strip():
            rows.append({"paper_id": task.paper_id, "field": fld, "kind": kind, "text": " ".join(value.split())})
    return rows


_NO_SOURCE_REASONS = {
    "ps": "PostScript-only submission (no LaTeX source)",
    "html": "HTML-only submission (no LaTeX source)",
    "unknown": "unrecognised source format",
    "empty": "empty source",
}


def no_tex_status(bundle: Bundle) -> tuple[str, str]:
    """Status of a bundle with no usable main .tex: pdf_only when it only ships a PDF, else no_source."""
    names = [p.lower() for p in bundle.files]
    if names and any(n.endswith(".pdf") for n in names) and not any(n.endswith(".tex") for n in names):
        return "pdf_only", "bundle holds a PDF and no .tex file"
    if any(n.endswith((".html", ".htm")) for n in names) and not any(n.endswith(".tex") for n in names):
        return "no_source", "HTML submission (no LaTeX source)"
    if not names:
        reason = bundle.error or (bundle.skipped[0][1] if bundle.skipped else "bundle is empty")
        return "error", reason
    return "no_source", "no main .tex file found"


def _g(obj: Any, name: str, default: Any = None) -> Any:
    return getattr(obj, name, default) if not isinstance(obj, dict) else obj.get(name, default)


def process_paper(task: PaperTask) -> PaperResult:
    """One paper -> its papers row, figure rows (with PNGs) and text rows. Never raises for bad input."""
    t_start = time.perf_counter()
    timings = {"read": 0.0, "analysis": 0.0, "raster": 0.0, "encode": 0.0, "kind": 0.0}
    primary, cats, fld = _meta_fields(task.meta)
    text = _metadata_text(task, fld)

    refs: dict[str, dict] = {}

    def done(row: dict, figures: list[dict] | None = None, more_text: list[dict] | None = None) -> PaperResult:
        row["seconds"] = time.perf_counter() - t_start
        return PaperResult(row, figures or [], text + (more_text or []), timings, refs)

    if task.format == "error" or task.data is None:
        return done(_paper_row(task, "error", task.error or "no data in the chunk for this paper"))
    if task.format == "withdrawn":
        return done(_paper_row(task, "withdrawn"))
    if task.format == "pdf":
        return done(_paper_row(task, "pdf_only"))
    if task.format in _NO_SOURCE_REASONS:
        return done(_paper_row(task, "no_source", _NO_SOURCE_REASONS[task.format]))

    t0 = cpu_clock()
    bundle = read_bundle(task.data, task.format, task.limits, name=task.gzip_name)
    timings["read"] = cpu_clock() - t0
    skipped = len(bundle.skipped)
    if bundle.source_format == "withdrawn":
        return done(_paper_row(task, "withdrawn", n_skipped_members=skipped))

    from pipeline.extract.paper import analyse_latex  # E1's LaTeX analysis; imported lazily for workers

    t0 = cpu_clock()
    analysis = analyse_latex(bundle, task.paper_id)
    timings["analysis"] = cpu_clock() - t0
    main_tex = _g(analysis, "main_tex")
    if not main_tex:
        status, reason = no_tex_status(bundle)
        return done(_paper_row(task, status, reason, n_skipped_members=skipped))

    figures = list(_g(analysis, "figures") or [])
    rows, caption_text = [], []
    cache = _prerender_postscript(bundle, figures, task.limits, timings)
    n_images = 0
    for fig in figures:
        k = _g(fig, "figure_index")
        graphics = list(_g(fig, "graphics") or []) or [None]
        cap = _g(fig, "caption_text")
        if cap:
            caption_text.append({"paper_id": task.paper_id, "field": fld, "kind": "caption", "text": cap})
        fig_rows, features = [], []
        for j, g in enumerate(graphics, 1):
            fid = f"{task.paper_id}/f{k}" if len(graphics) == 1 else f"{task.paper_id}/f{k}/{j}"
            row = _figure_row(task, fig, g, fid, primary, cats)
            if g is not None:
                refs[fid] = {"as_written": _g(g, "as_written"), "sublabel": _g(g, "sublabel")}
            if g is not None and _g(g, "status") == "ok" and _g(g, "path") in bundle.files:
                res = _raster_cached(bundle, g, cache, task.limits, timings)
                _apply_raster(row, res, fid)
                n_images += row["image"] is not None
                if row["image"] is not None and res.kind_features is not None:
                    features.append(res.kind_features)
            fig_rows.append(row)
        t0 = cpu_clock()
        kind = figure_kind_of(fig, features)
        timings["kind"] += cpu_clock() - t0
        for row in fig_rows:
            row["figure_kind"] = kind
        rows.extend(fig_rows)
    # Title and abstract from the LaTeX when the metadata did not provide them.
    have = {r["kind"] for r in text}
    for kind in ("title", "abstract"):
        value = _g(analysis, kind)
        if kind not in have and isinstance(value, str) and value.strip():
            text.append({"paper_id": task.paper_id, "field": fld, "kind": kind, "text": " ".join(value.split())})
    paragraphs = [{"paper_id": task.paper_id, "field": fld, "kind": "paragraph", "text": p}
                  for p in (_g(analysis, "paragraphs") or []) if p and p.strip()]
    status = "ok" if figures else "no_figures"
    paper = _paper_row(task, status, main_tex=main_tex, n_figures=len(figures), n_graphics=len(rows),
                       n_images=n_images, n_skipped_members=skipped)
    return done(paper, rows, caption_text + paragraphs)


def figure_kind_of(fig: Any, feats: list) -> str:
    """The figure's kind: the source's rule when it decides (TikZ, a bare tabular), else the model over the
    rendered images' features (computed by the rasteriser) and source cues (pipeline/extract/kind_image.py),
    else the source-only label."""
    if _g(fig, "kind_rule"):
        return _g(fig, "kind_rule")
    import numpy as np

    from pipeline.extract.kind_image import IMAGE_FEATURES, predict, source_features

    graphics = _g(fig, "graphics") or []
    ok = [g for g in graphics if _g(g, "status") == "ok"]
    src = source_features([_g(g, "format") for g in ok], _g(fig, "has_tabular", False), len(graphics),
                          _g(fig, "caption_text"), [_g(g, "path") or "" for g in ok])
    img = np.mean(feats, axis=0) if feats else np.full(len(IMAGE_FEATURES), np.nan)
    kind = predict(np.concatenate([img, src])) if feats else None
    return kind or _g(fig, "figure_kind")


def _figure_row(task: PaperTask, fig: Any, g: Any, fid: str, primary: str, cats: list[str]) -> dict:
    return {
        "figure_id": fid,
        "paper_id": task.paper_id,
        "primary_category": primary,
        "categories": cats,
        "figure_index": _g(fig, "figure_index"),
        "figure_env": _g(fig, "env"),
        "label": _g(fig, "label"),
        "caption_latex": _g(fig, "caption_latex"),
        "caption_text": _g(fig, "caption_text"),
        "subcaption_text": _g(g, "subcaption_text") if g is not None else None,
        "section_title": _g(fig, "section_title"),
        "section_kind": _g(fig, "section_kind"),
        "graphic_path": _g(g, "path") if g is not None else None,
        "graphic_format": _g(g, "format") if g is not None else None,
        "graphic_status": _g(g, "status") if g is not None else "none",
        "graphic_reason": _g(g, "reason") if g is not None else "figure has no graphic",
        "figure_kind": _g(fig, "figure_kind"),
        "width": None,
        "height": None,
        "image": None,
        "image_sha256": None,
        "license": normalise_license((task.meta or {}).get("license")),
        "arxiv_version": paper_version(task),
        "mentions": list(_g(fig, "mentions") or []),
        "tikz_source": _g(g, "tikz_source") if g is not None else None,
        "duplicate_of": None,  # set by the ChunkWriter, which sees the chunk's rows in order
    }


def _prerender_postscript(bundle: Bundle, figures: list, limits: Limits, timings: dict) -> dict:
    """All of a paper's EPS/PS graphics in shared Ghostscript runs (start-up dominates a single EPS)."""
    paths = []
    for fig in figures:
        for g in _g(fig, "graphics") or []:
            path = _g(g, "path")
            if _g(g, "status") == "ok" and path in bundle.files and path not in paths \
                    and sniff_image_format(bundle.files[path]) == "eps":
                paths.append(path)
    if len(paths) < 2:
        return {}
    results = rasterize_postscript_batch([bundle.files[p] for p in paths], max_side=limits.max_side, limits=limits)
    for res in results:
        timings["raster"] += res.render_s
        timings["encode"] += res.encode_s
    return dict(zip(paths, results, strict=True))


def _raster_cached(bundle: Bundle, g: Any, cache: dict, limits: Limits, timings: dict) -> RasterResult:
    path = _g(g, "path")
    if path not in cache:
        fmt = _g(g, "format") or path.rsplit(".", 1)[-1]
        res = rasterize(bundle.files[path], fmt, max_side=limits.max_side, limits=limits)
        timings["raster"] += res.render_s
        timings["encode"] += res.encode_s
        cache[path] = res
    return cache[path]


def _apply_raster(row: dict, res: RasterResult, fid: str) -> None:
    if res.status != "ok" or res.png is None:
        row["graphic_status"] = "error" if res.status == "error" else res.status
        row["graphic_reason"] = res.reason
        return
    row["width"], row["height"] = res.width, res.height
    row["image"] = {"bytes": res.png, "path": f"{fid}.png"}
    row["image_sha256"] = hashlib.sha256(res.png).hexdigest()


def _reason_key(reason: str | None) -> str:
    """Group error reasons for the summary: numbers and quoted names replaced, first clause only."""
    text = (reason or "unknown").split(";")[0]
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    return re.sub(r"\d+(\.\d+)?", "N", text)[:120]


def load_metadata_for_chunk(source: str | Path | Lake, yymm: list[str] | None = None) -> dict[str, dict]:
    """{paper_id: metadata row} for the ids of the given months (new ids `YYMM.NNNNN`, old `archive/YYMMNNN`)
    from a data root (a Lake, or a folder holding metadata/), a metadata Parquet file, or saved OAI-PMH XML
    (a file or folder, e.g. a sample bucket's metadata/). Deleted papers are left out."""
    from pipeline.dataset.metadata import METADATA_DIR, read_metadata, read_metadata_file, records_from_xml

    if isinstance(source, Lake):
        table = read_metadata(source, yymm=yymm)
    else:
        p = Path(source)
        if not p.exists():
            raise UserError(f"metadata {p} not found; pass a data root, the metadata.parquet written by "
                            "`arxiv-forge harvest`, or a folder of OAI-PMH XML")
        if p.is_dir() and (p / METADATA_DIR).is_dir():
            table = read_metadata(Lake(p), yymm=yymm)
        elif p.suffix.lower() == ".parquet" or (p / "metadata.parquet").is_file():
            table = read_metadata_file(p if p.is_file() else p / "metadata.parquet", yymm=yymm)
        else:
            from pipeline.dataset.metadata import latest_per_id, select_months

            records, _ = records_from_xml([p])
            table = select_months(latest_per_id(records), yymm)
    return {row["id"]: row for row in table.to_pylist()}


def chunk_months(chunk: str) -> list[str] | None:
    m = re.search(r"_(\d{4})_", chunk + "_")
    return [m.group(1)] if m else None


def paper_task(src: PaperSource, metadata: dict[str, dict] | None = None,
               limits: Limits = DEFAULT_LIMITS) -> PaperTask:
    """The worker's task for a paper read by the chunk reader (`iter_chunk`, `read_paper_file`), with its
    metadata row (looked up by id, then by id without a version suffix)."""
    metadata = metadata or {}
    return PaperTask(
        paper_id=src.paper_id, yymm=src.yymm, format=src.format, source_bytes=src.compressed_bytes,
        data=src.data, error=src.error, gzip_name=src.gzip_name,
        meta=metadata.get(src.paper_id) or metadata.get(re.sub(r"v\d+$", "", src.paper_id)), limits=limits,
    )


def process_papers(tasks: Iterable[PaperTask], *, workers: int = 1,
                   limits: Limits = DEFAULT_LIMITS) -> Iterator[PaperResult]:
    """`process_paper` for each task in the worker pool, results in input order: `limits.paper_timeout_s` of
    wall clock per paper, `limits.paper_memory_bytes` per worker, crash recovery. A paper whose worker timed
    out, ran out of memory or died ends in an error row (with its metadata text), never in an exception."""
    from pipeline.extract.worker import run_pool

    light: dict[int, PaperTask] = {}  # per in-flight paper, without its bytes: fills the row if a worker dies

    def feed() -> Iterator[PaperTask]:
        for i, task in enumerate(tasks):
            light[i] = PaperTask(**{**task.__dict__, "data": None})
            yield task

    for outcome in run_pool(process_paper, feed(), workers=max(1, workers), timeout_s=limits.paper_timeout_s,
                            memory_bytes=limits.paper_memory_bytes):
        task = light.pop(outcome.index)
        if outcome.ok:
            yield outcome.value
            continue
        _, _, fld = _meta_fields(task.meta)
        row = _paper_row(task, "error", outcome.error)
        row["seconds"] = outcome.seconds
        yield PaperResult(row, [], _metadata_text(task, fld), {})


def extract_chunk(
    tar_path: str | Path | BinaryIO,
    lake: Lake | str | Path,
    *,
    workers: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    metadata: dict[str, dict] | None = None,
    progress: Any = None,
    chunk: str | None = None,
) -> ChunkSummary:
    """Extract every paper of a chunk tar into the lake's papers/figures/text tables (atomic, idempotent).
    `lake` is a Lake or a data root path/URL.

    `metadata` maps paper ids to metadata rows (title, abstract, categories, primary_category, field).
    `progress(done_papers, summary)` is called after each paper; None logs a progress line (rate, figures,
    errors) every 5 s instead.
    """
    from pipeline.source.chunk import iter_chunk

    if isinstance(tar_path, str) and not tar_path.startswith("s3://"):
        tar_path = Path(tar_path)
    if chunk is None:
        if not isinstance(tar_path, (str, Path)):
            raise UserError("extract_chunk on a stream needs chunk=<name>, e.g. arXiv_src_2301_001")
        chunk = chunk_name(tar_path)
    workers = max(1, workers or os.cpu_count() or 1)
    metadata = metadata or {}
    summary = ChunkSummary(chunk=chunk, timings={"read": 0.0, "analysis": 0.0, "raster": 0.0, "encode": 0.0, "kind": 0.0})
    t0 = time.perf_counter()
    if progress is None:
        line = ProgressLog(chunk, unit="papers", interval=5, emit=log.info)

        def progress(done: int, s: ChunkSummary) -> None:
            line.update(done, figures=s.figures, errors=s.errors_total())

    tasks = (paper_task(src, metadata, limits)
             for src in iter_chunk(tar_path, max_paper_bytes=limits.max_total_bytes))

    with ChunkWriter(lake, chunk) as writer:
        for result in process_papers(tasks, workers=workers, limits=limits):
            writer.add_paper(result.paper)
            for row in result.figures:
                writer.add_figure(row)
            for row in result.text:
                writer.add_text(row)
            _tally(summary, result)
            progress(summary.papers, summary)
        manifest = writer.commit()
    summary.by_status = dict(sorted(summary.by_status.items()))
    summary.errors_by_reason = dict(Counter(summary.errors_by_reason).most_common())
    summary.files = manifest["files"]
    summary.seconds = time.perf_counter() - t0
    if summary.papers == 0:
        log.warning("%s: the chunk held no papers", chunk)
    return summary


def _tally(summary: ChunkSummary, result: PaperResult) -> None:
    summary.papers += 1
    st = result.paper["status"]
    summary.by_status[st] = summary.by_status.get(st, 0) + 1
    if st == "error":
        key = _reason_key(result.paper.get("error"))
        summary.errors_by_reason[key] = summary.errors_by_reason.get(key, 0) + 1
    summary.figures += result.paper.get("n_figures") or 0
    summary.graphics += len(result.figures)
    summary.images += sum(1 for r in result.figures if r.get("image") is not None)
    summary.text_rows += len(result.text)
    for k, v in result.timings.items():
        summary.timings[k] = summary.timings.get(k, 0.0) + v
