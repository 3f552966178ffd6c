"""Assembling the sample bucket: chunk tars, the manifest, OAI-PMH pages and the ground truth.

Layout of `out_dir` (the same keys as s3://arxiv, plus what only a generator knows):

    src/arXiv_src_manifest.xml          manifest: one <file> per chunk tar, trailing <timestamp>
    src/arXiv_src_YYMM_NNN.tar          chunk tars: members YYMM/<id>.gz or YYMM/<id>.pdf, sorted by name
    metadata/ListRecords-00001.xml ...  OAI-PMH ListRecords pages (arXiv format), 100 records each,
                                        linked by resumption tokens; the last page has an empty token
    truth/papers.jsonl                  one JSON object per paper: what a correct extractor must produce
    truth/summary.json                  counts (papers by category/format/status, figures by kind)

Same `papers` and `seed` give byte-identical files. Papers are built in worker processes (each paper is a
pure function of its plan), then written in chunk order by the parent.
"""

import dataclasses
import hashlib
import io
import json
import logging
import multiprocessing
import os
import tarfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from forge_common import ProgressLog, atomic_write
from pipeline.errors import UserError
from pipeline.sample.papers import BuiltPaper, build_paper, submission_date
from pipeline.sample.plan import PaperPlan, plan_papers
from pipeline.source.manifest import MANIFEST_KEY, ManifestEntry, md5_file, render_manifest
from pipeline.source.oai import MetadataRecord, render_list_records
from pipeline.source.taxonomy import field_of

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # records per ListRecords page (arXiv serves 2500; small pages exercise the paging)
METADATA_DIR = "metadata"
TRUTH_FILE = "truth/papers.jsonl"
SUMMARY_FILE = "truth/summary.json"
RESPONSE_DATE = "2023-03-08T05:13:57Z"
MANIFEST_TIMESTAMP = datetime(2023, 3, 8, 5, 13, 57).ctime()  # ctime format, as arXiv writes it

Progress = Callable[[int, int], None]


@dataclasses.dataclass
class SampleSummary:
    out_dir: Path
    papers: int
    chunks: list[str]
    months: list[str]
    metadata_pages: int
    by_category: dict[str, int]
    by_field: dict[str, int]
    by_format: dict[str, int]
    by_status: dict[str, int]
    figures_by_kind: dict[str, int]
    graphics_by_format: dict[str, int]
    graphics_by_status: dict[str, int]
    n_figures: int
    n_graphics: int
    hostile: dict[str, int]
    bytes: int
    seconds: float = 0.0

    def to_json(self, timing: bool = True) -> dict:
        data = dataclasses.asdict(self)
        data["out_dir"] = str(self.out_dir)
        if not timing:
            for key in ("seconds", "out_dir", "bytes"):  # vary with the run, not with the content
                data.pop(key)
        return data

    def format(self) -> str:
        def counts(d: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))

        return "\n".join([
            f"sample bucket: {self.out_dir}",
            f"  papers      {self.papers} in {len(self.chunks)} chunks over months {', '.join(self.months)}",
            f"  categories  {counts(self.by_category)}",
            f"  fields      {counts(self.by_field)}",
            f"  formats     {counts(self.by_format)}",
            f"  status      {counts(self.by_status)}",
            f"  figures     {self.n_figures} ({counts(self.figures_by_kind)})",
            f"  graphics    {self.n_graphics} ({counts(self.graphics_by_format)}; {counts(self.graphics_by_status)})",
            f"  hostile     {counts(self.hostile)}",
            f"  metadata    {self.metadata_pages} ListRecords pages",
            f"  size        {self.bytes / 1e6:.1f} MB on disk",
            f"  time        {self.seconds:.1f} s ({self.papers / max(self.seconds, 1e-9):.1f} papers/s)",
        ])


def write_sample_bucket(out_dir: Path, *, papers: int = 300, seed: int = 0, progress: Progress | None = None,
                        workers: int | None = None, page_size: int = PAGE_SIZE) -> SampleSummary:
    """Write a synthetic bucket laid out like s3://arxiv into `out_dir` (created; old sample files replaced).

    `progress(done, total)` is called after each paper; `workers` processes draw figures (default: 2 for
    60+ papers, else 1); `page_size` records go on one OAI-PMH ListRecords page.
    """
    if page_size < 1:
        raise UserError(f"page size must be at least 1, got {page_size}")
    start = time.monotonic()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} exists and is not a directory; choose another output directory")
    try:
        plans = plan_papers(papers, seed)
    except ValueError as exc:
        raise UserError(f"--papers: {exc}") from None
    try:
        for sub in ("src", METADATA_DIR, "truth"):
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the sample bucket in {out_dir} ({exc.strerror}); "
                        "choose a writable directory") from None

    truths: list[dict] = []
    records: list[MetadataRecord] = []
    entries: list[ManifestEntry] = []
    current: _ChunkWriter | None = None
    done = 0
    report = ProgressLog("sample bucket", len(plans), unit="papers", emit=log.info)
    for built in _build_all(plans, workers):
        if current is None or current.chunk != built.chunk:
            if current is not None:
                entries.append(current.close())
            current = _ChunkWriter(out_dir, plans[built.index])
        current.add(built, plans[built.index])
        truths.append(built.truth)
        records.append(built.record)
        done += 1
        report.update(done)
        if progress is not None:
            progress(done, len(plans))
    if current is not None:
        entries.append(current.close())

    atomic_write(out_dir / MANIFEST_KEY, render_manifest(entries, MANIFEST_TIMESTAMP))
    pages = _write_metadata(out_dir / METADATA_DIR, records, page_size)
    _remove_stale(out_dir, {e.filename.rsplit("/", 1)[1] for e in entries}, pages)
    atomic_write(out_dir / TRUTH_FILE, b"".join(
        json.dumps(t, ensure_ascii=False).encode("utf-8") + b"\n" for t in truths))
    summary = _summarise(out_dir, truths, entries, pages)
    atomic_write(out_dir / SUMMARY_FILE, json.dumps(summary.to_json(timing=False), indent=1).encode() + b"\n")
    summary.bytes = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    summary.seconds = time.monotonic() - start
    return summary


# ---------------------------------------------------------------------------------------------- building


def _build_all(plans: list[PaperPlan], workers: int | None) -> Iterator[BuiltPaper]:
    """Built papers in plan order, from `workers` processes (1: in this process)."""
    if workers is None:
        workers = 1 if len(plans) < 60 else min(2, os.cpu_count() or 1)
    if workers <= 1:
        yield from map(build_paper, plans)
        return
    # fork is cheapest (workers share the loaded matplotlib) but unsafe in a threaded process (a moto server,
    # Dagster): there, forkserver starts workers from a clean single-threaded server instead.
    ctx = multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(build_paper, plans, chunksize=4)


# ---------------------------------------------------------------------------------------------- chunk tars


def chunk_timestamp(plan: PaperPlan) -> datetime:
    """When the chunk tar was (re)packed: old months were repacked on 2010-12-23, as arXiv's were."""
    if plan.old_style:
        return datetime(2010, 12, 23, 0, 13, 59) + timedelta(minutes=plan.seq_num)
    first = submission_date(plan).replace(day=1)
    next_month = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(next_month, datetime.min.time()) + timedelta(hours=3, minutes=plan.seq_num)


class _ChunkWriter:
    """Streams one chunk tar to a temporary name; `close` renames it and returns its manifest entry."""

    def __init__(self, out_dir: Path, plan: PaperPlan):
        self.chunk = plan.chunk
        self.plan = plan
        self.path = out_dir / "src" / f"{plan.chunk}.tar"
        self.tmp = self.path.with_name(f".{self.path.name}.part")
        self.tar = tarfile.open(self.tmp, mode="w", format=tarfile.GNU_FORMAT)
        self.content_md5 = hashlib.md5()
        self.items: list[str] = []

    def add(self, built: BuiltPaper, plan: PaperPlan) -> None:
        info = tarfile.TarInfo(built.member)
        info.size = len(built.data)
        info.mode = 0o644
        info.mtime = int((submission_date(plan) - date(1970, 1, 1)).total_seconds()) + 86400
        info.uid = info.gid = 0
        info.uname = info.gname = "arxiv"
        self.tar.addfile(info, io.BytesIO(built.data))
        self.content_md5.update(built.data)
        self.items.append(plan.stem)

    def close(self) -> ManifestEntry:
        self.tar.close()
        os.replace(self.tmp, self.path)
        return ManifestEntry(
            content_md5sum=self.content_md5.hexdigest(), filename=f"src/{self.path.name}",
            first_item=self.items[0], last_item=self.items[-1], md5sum=md5_file(self.path),
            num_items=len(self.items), seq_num=self.plan.seq_num, size=self.path.stat().st_size,
            timestamp=chunk_timestamp(self.plan).strftime("%Y-%m-%d %H:%M:%S"), yymm=self.plan.yymm,
        )


# ---------------------------------------------------------------------------------------------- metadata


def resumption_token(skip: int) -> str:
    """The 2025 server's token style: the URL-quoted query plus `skip`."""
    return urllib.parse.quote(f"verb=ListRecords&metadataPrefix=arXiv&skip={skip}", safe="")


def _write_metadata(meta_dir: Path, records: list[MetadataRecord], page_size: int) -> list[str]:
    names = []
    prev_token = None
    expires = (date.fromisoformat(RESPONSE_DATE[:10]) + timedelta(days=1)).isoformat() + "T00:00:00Z"
    for page, start in enumerate(range(0, len(records), page_size), 1):
        batch = records[start:start + page_size]
        last = start + page_size >= len(records)
        token = None if last else resumption_token(start + page_size)
        params = ({"verb": "ListRecords", "resumptionToken": prev_token} if prev_token
                  else {"verb": "ListRecords", "metadataPrefix": "arXiv"})
        xml = render_list_records(batch, resumption_token=token, response_date=RESPONSE_DATE,
                                  request_params=params, expiration_date=None if last else expires)
        name = f"ListRecords-{page:05d}.xml"
        atomic_write(meta_dir / name, xml)
        names.append(name)
        prev_token = token
    return names


# ---------------------------------------------------------------------------------------------- files


def _remove_stale(out_dir: Path, chunk_files: set[str], pages: list[str]) -> None:
    """A smaller re-run into the same directory must not leave chunks or pages the manifest doesn't list."""
    for p in (out_dir / "src").glob("arXiv_src_*.tar"):
        if p.name not in chunk_files:
            p.unlink()
    for p in (out_dir / METADATA_DIR).glob("ListRecords-*.xml"):
        if p.name not in pages:
            p.unlink()


def _summarise(out_dir: Path, truths: list[dict], entries: list[ManifestEntry], pages: list[str]) -> SampleSummary:
    figs = [f for t in truths for f in t["figures"]]
    graphics = [g for f in figs for g in f["graphics"]]
    return SampleSummary(
        out_dir=out_dir, papers=len(truths), chunks=sorted(e.chunk for e in entries),
        months=sorted({e.month for e in entries}), metadata_pages=len(pages),
        by_category=dict(Counter(t["primary_category"] for t in truths)),
        by_field=dict(Counter(field_of(t["primary_category"]) for t in truths)),
        by_format=dict(Counter(t["source_format"] for t in truths)),
        by_status=dict(Counter(t["status"] for t in truths)),
        figures_by_kind=dict(Counter(f["figure_kind"] for f in figs)),
        graphics_by_format=dict(Counter(g["format"] or g["status"] for g in graphics)),
        graphics_by_status=dict(Counter(g["status"] for g in graphics)),
        n_figures=len(figs), n_graphics=len(graphics),
        hostile=dict(Counter(h["kind"] for t in truths for h in t["hostile"])),
        bytes=0,
    )
