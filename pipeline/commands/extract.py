"""`arxiv-forge extract` (one paper's figures) and `arxiv-forge extract-chunk` (a chunk into the tables)."""

import argparse
import io
import json
import logging
import os
import sys
import tarfile
from pathlib import Path

from forge_common import atomic_write
from pipeline.commands import example
from pipeline.errors import UserError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="figures and captions of paper bundles (.gz, .tar, .tar.gz, .pdf, .tex or a folder)",
        description="Find every figure environment of one or more papers, resolve and rasterise its graphics,\n"
        "and print a summary, or with --json one JSON object per figure environment in document order.\n"
        "Each paper runs as in `extract-chunk`: the same code, in a worker process with a time limit and a\n"
        "memory cap, giving the rows a chunk would get (figure_kind from the rendered images too). A paper\n"
        "file is named as in a chunk: math0601001.gz is math/0601001; a .tex file is read with its folder.\n"
        "Exit status 1 when a source has no LaTeX or cannot be read (one line on stderr each); PDF-only and\n"
        "withdrawn papers print that they have no figures.",
        epilog=example("arxiv-forge extract 2301.00001.gz --json\n"
                       "arxiv-forge extract paper/ --images out/png\n"
                       "arxiv-forge extract src/*.gz --workers 4 --paper-timeout 60"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="a paper bundle, a .tex file or a directory")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per figure environment on stdout; each graphic carries its figure_id")
    p.add_argument("--images", metavar="DIR", help="write the rasterised PNGs to DIR/<paper_id>/f<k>[_<j>].png")
    p.add_argument("--max-side", type=int, default=512, help="long side of the PNGs in pixels (default 512)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: CPU count, at most one per source)")
    p.add_argument("--paper-timeout", type=float, default=120, help="seconds per paper before it is killed")
    p.set_defaults(func=_cmd_extract)

    c = sub.add_parser(
        "extract-chunk",
        help="extract every paper of a chunk tar into the papers/figures/text tables",
        description="Process every paper of a chunk tar in a process pool (per-paper time limit and memory cap)\n"
        "and write the papers, figures and text tables under DATA_ROOT, hive-partitioned and atomically.\n"
        "Re-running a chunk replaces its output.",
        epilog=example("arxiv-forge extract-chunk var/sample/src/arXiv_src_2301_001.tar --out var/data --workers 2\n"
                       "arxiv-forge extract-chunk CHUNK.tar --out var/data --metadata var/data   # the lake's metadata\n"
                       "arxiv-forge extract-chunk CHUNK.tar --out var/data --metadata var/harvest/2024-01-01/metadata.parquet"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("tar", metavar="TAR", help="a chunk tar, e.g. arXiv_src_2301_001.tar")
    c.add_argument("--out", required=True, metavar="DATA_ROOT", help="data root: a folder or s3://bucket/prefix")
    c.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    c.add_argument("--metadata", metavar="PATH",
                   help="a data root with metadata/ (only the chunk's month is read), a metadata.parquet (arxiv-forge "
                        "harvest), or OAI-PMH XML files/folder: titles, abstracts, categories")
    c.add_argument("--max-side", type=int, default=512, help="long side of stored images (default 512)")
    c.add_argument("--paper-timeout", type=float, default=120, help="seconds per paper before it is killed")
    c.add_argument("--json", action="store_true", help="print the summary as JSON")
    c.set_defaults(func=_cmd_extract_chunk)


def _paper_task(source: Path, limits) -> tuple:
    """(the worker's task for a file or folder on a disk, members the folder walk skipped). A paper file is read
    as a chunk member is (pipeline.source.chunk.read_paper_file); a folder, or a .tex file's folder, is read with
    the bundle rules (same caps, no links) and handed to the worker as a tar of what was kept."""
    from pipeline.extract.chunk import PaperTask, paper_task
    from pipeline.source.chunk import paper_id_from_member, read_paper_file

    paper_id = paper_id_from_member(source.name)
    try:
        if source.is_dir() or source.suffix.lower() == ".tex":
            return _folder_task(source, paper_id, limits)
        return paper_task(read_paper_file(source, max_paper_bytes=limits.max_total_bytes), limits=limits), 0
    except OSError as exc:
        return PaperTask(paper_id=paper_id, yymm=None, format="error", source_bytes=None, data=None,
                         error=f"cannot read {source}: {exc.strerror or exc}", limits=limits), 0


def _folder_task(source: Path, paper_id: str, limits) -> tuple:
    from pipeline.extract.bundle import read_bundle
    from pipeline.extract.chunk import PaperTask

    bundle = _tex_file_bundle(source, limits) if source.is_file() else read_bundle(source, limits=limits)
    for name, reason in bundle.skipped:
        log.debug("%s: skipped member %s: %s", source, name, reason)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in bundle.files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    task = PaperTask(paper_id=paper_id, yymm=None, format="tar" if bundle.files else "empty",
                     source_bytes=bundle.total_bytes, data=buf.getvalue() if bundle.files else b"", limits=limits)
    return task, len(bundle.skipped)


def _tex_file_bundle(tex: Path, limits):
    """A lone .tex names its folder as the bundle root (where LaTeX finds its graphics and \\input files);
    other main documents in that folder are left out so the given file is the one analysed."""
    from pipeline.extract.bundle import read_bundle

    bundle = read_bundle(tex.resolve().parent, limits=limits)
    for path in [p for p in bundle.files if p.lower().endswith(".tex") and p != tex.name]:
        if b"\\documentclass" in bundle.files[path] or b"\\documentstyle" in bundle.files[path]:
            del bundle.files[path]
    return bundle


def _figures(result) -> list[dict]:
    """The paper's figure environments in document order, as JSON objects, from its figures-table rows."""
    figures: dict[int, dict] = {}
    for row in result.figures:
        fig = figures.setdefault(row["figure_index"], {
            "paper_id": row["paper_id"], "figure_index": row["figure_index"], "env": row["figure_env"],
            "label": row["label"], "caption_latex": row["caption_latex"], "caption_text": row["caption_text"],
            "section_title": row["section_title"], "section_kind": row["section_kind"],
            "figure_kind": row["figure_kind"], "graphics": []})
        if row["graphic_status"] == "none":  # a figure without a graphic has one row, with no graphic
            continue
        ref = result.graphic_refs.get(row["figure_id"], {})
        fig["graphics"].append({
            "figure_id": row["figure_id"], "as_written": ref.get("as_written"), "path": row["graphic_path"],
            "format": row["graphic_format"], "status": row["graphic_status"], "reason": row["graphic_reason"],
            "width": row["width"], "height": row["height"], "subcaption_text": row["subcaption_text"],
            "sublabel": ref.get("sublabel")})
    return list(figures.values())


_NOT_EXTRACTED = {"pdf_only": "PDF-only submission, no LaTeX source", "withdrawn": "withdrawn by its authors"}


def _report(source: Path, result, args) -> bool:
    """Print one paper's result; False (after one line on stderr) when its source could not be extracted."""
    paper = result.paper
    status, paper_id = paper["status"], paper["paper_id"]
    if status in ("error", "no_source"):
        what = "no LaTeX source" if status == "no_source" else "cannot extract"
        reason = " ".join(str(paper["error"] or "unknown").split())
        print(f"arxiv-forge: error: {source}: {what}: {reason}", file=sys.stderr)
        return False
    if status in _NOT_EXTRACTED:
        if not args.json:
            print(f"{paper_id}: {_NOT_EXTRACTED[status]}: no figures")
        return True
    figures = _figures(result)
    for fig in figures:
        if args.images:
            _write_pngs(Path(args.images), paper_id, result, fig)
        if args.json:
            print(json.dumps(fig, ensure_ascii=False))
        else:
            _print_figure(fig)
    if not args.json:
        n_graphics = sum(len(f["graphics"]) for f in figures)
        print(f"{paper_id}: main {paper['main_tex']}, {len(figures)} figures, {n_graphics} graphics, "
              f"{paper['n_images']} images, {paper['n_skipped_members']} members skipped")
    return True


def _write_pngs(root: Path, paper_id: str, result, fig: dict) -> None:
    """DIR/<paper_id with / as _>/f<k>.png, or f<k>_<j>.png for the j-th graphic of a figure with several."""
    images = {row["figure_id"]: row["image"] for row in result.figures if row["image"] is not None}
    folder = root / paper_id.replace("/", "_")
    for g in fig["graphics"]:
        image = images.get(g["figure_id"])
        if image is None:
            continue
        name = g["figure_id"][len(paper_id) + 1:].replace("/", "_")  # f2 or f2/1 -> f2_1
        atomic_write(folder / f"{name}.png", image["bytes"], fsync=False)


def _print_figure(fig: dict) -> None:
    cap = (fig["caption_text"] or "").replace("\n", " ")
    print(f"  f{fig['figure_index']} {fig['env']} [{fig['figure_kind']}] {fig['label'] or '-'} "
          f"({fig['section_kind']}): {cap[:100]}{'…' if len(cap) > 100 else ''}")
    for g in fig["graphics"]:
        size = f"{g['width']}x{g['height']}" if g["width"] else "-"
        print(f"    {g['as_written']} -> {g['path'] or '-'} {g['status']} {size} {g['reason'] or ''}".rstrip())


def _cmd_extract(args) -> int:
    from pipeline.extract.chunk import process_papers
    from pipeline.extract.limits import Limits

    sources = [Path(src) for src in args.sources]
    for path in sources:
        if not path.exists():
            raise UserError(f"source {path} does not exist; pass a paper bundle (.gz/.tar/.tar.gz/.pdf/.tex) or folder")
    limits = Limits(max_side=args.max_side, paper_timeout_s=args.paper_timeout)
    skipped: dict[int, int] = {}

    def tasks():
        for i, path in enumerate(sources):
            task, skipped[i] = _paper_task(path, limits)
            yield task

    workers = min(args.workers or os.cpu_count() or 1, len(sources))
    ok = True
    for i, result in enumerate(process_papers(tasks(), workers=workers, limits=limits)):
        result.paper["n_skipped_members"] = (result.paper.get("n_skipped_members") or 0) + skipped.pop(i, 0)
        ok = _report(sources[i], result, args) and ok
        sys.stdout.flush()
    return 0 if ok else 1


def _cmd_extract_chunk(args) -> int:
    from pipeline.extract.chunk import chunk_months, extract_chunk, load_metadata_for_chunk
    from pipeline.extract.limits import Limits
    from pipeline.source.manifest import chunk_name

    tar = Path(args.tar)
    if not tar.is_file():
        raise UserError(f"chunk tar {tar} not found; download one with `arxiv-forge download` or make a sample bucket")
    chunk = chunk_name(tar)
    metadata = None
    if args.metadata:
        metadata = load_metadata_for_chunk(args.metadata, chunk_months(chunk))
        log.info("metadata: %d records for %s", len(metadata), chunk)
    limits = Limits(max_side=args.max_side, paper_timeout_s=args.paper_timeout)
    summary = extract_chunk(tar, args.out, workers=args.workers, limits=limits, metadata=metadata)
    if args.json:
        print(json.dumps(summary.to_json(), indent=1))
        return 0
    rate = summary.papers / summary.seconds if summary.seconds else 0.0
    print(f"{chunk}: {summary.papers} papers in {summary.seconds:.1f} s ({rate:.1f} papers/s) -> {args.out}")
    print("  status: " + ", ".join(f"{k} {v}" for k, v in summary.by_status.items()))
    print(f"  figures {summary.figures}, graphics {summary.graphics}, images {summary.images}, "
          f"text rows {summary.text_rows}")
    if summary.errors_by_reason:
        print("  errors by reason:")
        for reason, n in summary.errors_by_reason.items():
            print(f"    {n:5d}  {reason}")
    return 0
