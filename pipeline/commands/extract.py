"""`arxiv-forge extract` (one paper's figures) and `arxiv-forge extract-chunk` (a chunk into the tables)."""

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

from pipeline.commands import example
from pipeline.errors import UserError

log = logging.getLogger(__name__)
_SOURCE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".gz", ".pdf", ".tex")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="figures and captions of paper bundles (.gz, .tar, .tar.gz, .pdf, .tex or a folder)",
        description="Find every figure environment of one or more papers, resolve and rasterise its graphics,\n"
        "and print a summary, or with --json one JSON object per figure environment in document order.",
        epilog=example("arxiv-forge extract 2301.00001.gz --json\n"
                       "arxiv-forge extract paper/ --images out/png"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="a paper bundle, a .tex file or a directory")
    p.add_argument("--json", action="store_true", help="one JSON object per figure environment on stdout")
    p.add_argument("--images", metavar="DIR", help="write the rasterised PNGs to DIR/<paper_id>/f<k>[_<j>].png")
    p.add_argument("--max-side", type=int, default=512, help="long side of the PNGs in pixels (default 512)")
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


def paper_id_for(source: Path) -> str:
    """A paper id from a file or folder name: 2301.00001.gz -> 2301.00001, math0601001.gz -> math/0601001."""
    name = source.name
    for suffix in _SOURCE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    m = re.fullmatch(r"([a-z][a-z-]*(?:\.[A-Z]{2})?)(\d{7}(?:v\d+)?)", name)
    return f"{m.group(1)}/{m.group(2)}" if m else (name or source.name)


def _figure_json(paper_id: str, fig, rasters: list) -> dict:
    out = fig.to_json(paper_id)
    graphics = out.get("graphics") or []
    for item, res in zip(graphics, rasters, strict=False):
        item.setdefault("width", None)
        item.setdefault("height", None)
        if res is None:
            continue
        if res.status == "ok":
            item["width"], item["height"] = res.width, res.height
        else:
            item["status"], item["reason"] = "error", res.reason
    return out


def _extract_one(source: Path, args) -> bool:
    from pipeline.extract.bundle import read_bundle
    from pipeline.extract.limits import Limits
    from pipeline.extract.raster import rasterize

    limits = Limits(max_side=args.max_side)
    paper_id = paper_id_for(source)
    bundle = _tex_file_bundle(source, limits) if source.suffix.lower() == ".tex" else read_bundle(source, limits=limits)
    if bundle.error and not bundle.files:
        print(f"arxiv-forge: error: {source}: cannot read the bundle: {bundle.error}", file=sys.stderr)
        return False
    for name, reason in bundle.skipped:
        log.debug("%s: skipped member %s: %s", source, name, reason)
    if bundle.source_format == "pdf":
        if not args.json:
            print(f"{paper_id}: PDF-only submission, no LaTeX source: no figures")
        return True
    from pipeline.extract.paper import analyse_latex

    analysis = analyse_latex(bundle, paper_id)
    if not analysis.main_tex:
        from pipeline.extract.chunk import no_tex_status

        status, reason = no_tex_status(bundle)
        if status == "pdf_only":
            if not args.json:
                print(f"{paper_id}: PDF-only submission ({reason}): no figures")
            return True
        print(f"arxiv-forge: error: {source}: no LaTeX source: {reason}", file=sys.stderr)
        return False
    cache: dict[str, object] = {}
    n_graphics = n_images = 0
    for fig in analysis.figures:
        rasters = []
        for j, g in enumerate(fig.graphics, 1):
            n_graphics += 1
            res = None
            if g.status == "ok" and g.path in bundle.files:
                if g.path not in cache:
                    cache[g.path] = rasterize(bundle.files[g.path], g.format or "", max_side=args.max_side,
                                              limits=limits)
                res = cache[g.path]
                if res.status == "ok":
                    n_images += 1
                    if args.images:
                        _write_png(Path(args.images), paper_id, fig.figure_index, j, len(fig.graphics), res.png)
            rasters.append(res)
        if args.json:
            print(json.dumps(_figure_json(paper_id, fig, rasters), ensure_ascii=False))
        else:
            _print_figure(fig, rasters)
    if not args.json:
        print(f"{paper_id}: main {analysis.main_tex}, {len(analysis.figures)} figures, {n_graphics} graphics, "
              f"{n_images} images, {len(bundle.skipped)} members skipped")
    return True


def _tex_file_bundle(tex: Path, limits):
    """A lone .tex names its folder as the bundle root (where LaTeX finds its graphics and \\input files);
    other main documents in that folder are left out so the given file is the one analysed."""
    from pipeline.extract.bundle import read_bundle

    bundle = read_bundle(tex.resolve().parent, limits=limits)
    for path in [p for p in bundle.files if p.lower().endswith(".tex") and p != tex.name]:
        if b"\\documentclass" in bundle.files[path] or b"\\documentstyle" in bundle.files[path]:
            del bundle.files[path]
    bundle.source_format = "tex"
    return bundle


def _write_png(root: Path, paper_id: str, k: int, j: int, n: int, png: bytes) -> None:
    folder = root / paper_id.replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (f"f{k}.png" if n == 1 else f"f{k}_{j}.png")).write_bytes(png)


def _print_figure(fig, rasters) -> None:
    cap = (fig.caption_text or "").replace("\n", " ")
    print(f"  f{fig.figure_index} {fig.env} [{fig.figure_kind}] {fig.label or '-'} "
          f"({fig.section_kind}): {cap[:100]}{'…' if len(cap) > 100 else ''}")
    for g, res in zip(fig.graphics, rasters, strict=False):
        size = f"{res.width}x{res.height}" if res is not None and res.status == "ok" else "-"
        status = res.status if res is not None and res.status != "ok" else g.status
        reason = (res.reason if res is not None and res.status != "ok" else g.reason) or ""
        print(f"    {g.as_written} -> {g.path or '-'} {status} {size} {reason}".rstrip())


def _cmd_extract(args) -> int:
    ok = True
    for src in args.sources:
        path = Path(src)
        if not path.exists():
            raise UserError(f"source {path} does not exist; pass a paper bundle (.gz/.tar/.tar.gz/.pdf/.tex) or folder")
        ok = _extract_one(path, args) and ok
    return 0 if ok else 1


def _cmd_extract_chunk(args) -> int:
    from pipeline.extract.chunk import chunk_months, chunk_name, extract_chunk, load_metadata_for_chunk
    from pipeline.extract.limits import Limits

    tar = Path(args.tar)
    if not tar.is_file():
        raise UserError(f"chunk tar {tar} not found; download one with `arxiv-forge download` or make a sample bucket")
    chunk = chunk_name(tar)
    metadata = None
    if args.metadata:
        metadata = load_metadata_for_chunk(args.metadata, chunk_months(chunk))
        log.info("metadata: %d records for %s", len(metadata), chunk)
    limits = Limits(max_side=args.max_side, paper_timeout_s=args.paper_timeout)
    start = time.perf_counter()
    last = [start]

    def progress(done: int, summary) -> None:
        now = time.perf_counter()
        if now - last[0] >= 2:
            last[0] = now
            log.info("%s: %d papers, %.1f papers/s, %d figures, %d errors", chunk, done,
                     done / (now - start), summary.figures, summary.errors_total())

    summary = extract_chunk(tar, args.out, workers=args.workers, limits=limits, metadata=metadata,
                            progress=progress)
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
