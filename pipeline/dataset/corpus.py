"""Text corpora for the language models: one field's titles, abstracts, captions and paragraphs.

On the lake a field's corpus is built from parts, one per extracted chunk (like the image shards):

    corpora/<field>/index.json                      settings, and per chunk: part key, source stamp, counts
    corpora/<field>/parts/<chunk>-<stamp>.parquet   columns split ("train" | "valid") and text, one line each

`update_field_corpus` reads only the text files of chunks that are new or extracted again since the last
build (one record batch at a time), and writes the index last. `fetch_field_corpus` gives the trainers
`train.txt` and `valid.txt` (UTF-8, one text per line) in a local folder, assembled from the cached parts.

A licence filter (`licenses=("cc-by", "cc0")`) keeps the text of papers whose normalised licence (the papers
table's `license`, from the metadata) starts with one of the prefixes, case-insensitively; papers without a
known licence are left out then. Without a filter the corpus is exactly what it was before filters existed.

The split is by paper (a stable hash of the paper id), so no paper's sentences sit on both sides and
re-running gives the same split.
"""

import hashlib
import io
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dataset.lake import Lake, LakeFile, as_lake
from pipeline.dataset.reader import chunk_files, read_papers
from pipeline.dataset.schemas import TEXT_KINDS
from pipeline.errors import UserError
from pipeline.source.licenses import license_matches, parse_license_filter

log = logging.getLogger(__name__)
DEFAULT_KINDS = TEXT_KINDS
CORPORA_DIR = "corpora"
CORPUS_FORMAT = 2


@dataclass
class CorpusSummary:
    field: str
    index: str
    train_lines: int = 0
    valid_lines: int = 0
    train_chars: int = 0
    valid_chars: int = 0
    papers: int = 0
    parts: int = 0
    parts_built: int = 0
    parts_reused: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def is_validation(paper_id: str, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha1(paper_id.encode()).digest()[:8], "big")
    return h / 2**64 < fraction


def index_key(field_name: str) -> str:
    if not field_name or "/" in field_name or field_name.startswith((".", "_")):
        raise UserError(f"bad field {field_name!r}: expected a field such as cs or math")
    return f"{CORPORA_DIR}/{field_name}/index.json"


def _build_part(lake: Lake, source: LakeFile, field_name: str, kinds: tuple[str, ...], valid_fraction: float,
                part_key: str, chunk: str, licenses: tuple[str, ...] | None = None) -> dict:
    splits, texts = [], []
    allowed = None  # paper ids whose licence passes the filter (the text table does not repeat the licence)
    if licenses is not None:
        papers_t = read_papers(lake, chunk=chunk, columns=["paper_id", "license"]).to_pydict()
        allowed = {p for p, lic in zip(papers_t["paper_id"], papers_t["license"], strict=True)
                   if license_matches(lic, licenses)}
    stats = {"train_lines": 0, "valid_lines": 0, "train_chars": 0, "valid_chars": 0, "by_kind": {}}
    papers = set()
    pf = pq.ParquetFile(lake.fs.open_input_file(lake.path(source.key)))
    for batch in pf.iter_batches(batch_size=4096, columns=["paper_id", "field", "kind", "text"]):
        cols = batch.to_pydict()
        for pid, fld, kind, text in zip(cols["paper_id"], cols["field"], cols["kind"], cols["text"], strict=True):
            if fld != field_name or kind not in kinds or allowed is not None and pid not in allowed:
                continue
            line = " ".join((text or "").split())  # one text per line: newlines inside a text become spaces
            if not line:
                continue
            split = "valid" if is_validation(pid, valid_fraction) else "train"
            splits.append(split)
            texts.append(line)
            papers.add(pid)
            stats[f"{split}_lines"] += 1
            stats[f"{split}_chars"] += len(line) + 1
            stats["by_kind"][kind] = stats["by_kind"].get(kind, 0) + 1
    sink = io.BytesIO()
    pq.write_table(pa.table({"split": pa.array(splits, pa.string()), "text": pa.array(texts, pa.string())}),
                   sink, compression="zstd")
    lake.write_bytes(f"{part_key}.parquet", sink.getvalue())
    return {"key": part_key, "source": source.stamp, "papers": len(papers), **stats}


def update_field_corpus(
    lake: Lake | str | Path,
    field_name: str,
    *,
    valid_fraction: float = 0.1,
    kinds: tuple[str, ...] = DEFAULT_KINDS,
    licenses: str | list[str] | tuple[str, ...] | None = None,
) -> CorpusSummary:
    """Bring the field's corpus on the lake up to date with the text table (incremental, see module doc).
    `licenses`: licence prefixes to keep ("cc-by,cc0" or a list); None keeps every paper."""
    lake = as_lake(lake)
    licenses = parse_license_filter(licenses)
    bad = [k for k in kinds if k not in TEXT_KINDS]
    if bad or not kinds:
        raise UserError(f"unknown text kind(s) {', '.join(map(repr, bad)) or '(none given)'}; "
                        f"choose from {', '.join(TEXT_KINDS)}")
    if not 0 < valid_fraction < 1:
        raise UserError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    t0 = time.perf_counter()
    key = index_key(field_name)
    s = CorpusSummary(field=field_name, index=lake.uri(key))
    settings = {"valid_fraction": valid_fraction, "kinds": sorted(kinds)}
    if licenses:
        settings["licenses"] = list(licenses)
    old = lake.read_json(key) or {}
    same = old.get("format") == CORPUS_FORMAT and old.get("settings") == settings
    old_parts = old.get("parts", {}) if same else {}
    parts: dict[str, dict] = {}
    for chunk, source in sorted(chunk_files(lake, "text").items()):
        prev = old_parts.get(chunk)
        if prev and prev.get("source") == source.stamp:
            parts[chunk] = prev
            s.parts_reused += 1
            continue
        digest = hashlib.sha1(f"{source.stamp}|{json.dumps(settings)}".encode()).hexdigest()[:10]
        parts[chunk] = _build_part(lake, source, field_name, tuple(kinds), valid_fraction,
                                   f"{CORPORA_DIR}/{field_name}/parts/{chunk}-{digest}", chunk, licenses)
        s.parts_built += 1
    lake.write_json(key, {"format": CORPUS_FORMAT, "field": field_name, "settings": settings, "parts": parts,
                          "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    keep = {p["key"] for p in parts.values()}
    for f in lake.files(f"{CORPORA_DIR}/{field_name}/parts"):
        if f.key.removesuffix(".parquet") not in keep:
            lake.delete(f.key)
    for p in parts.values():
        for name in ("train_lines", "valid_lines", "train_chars", "valid_chars", "papers"):
            setattr(s, name, getattr(s, name) + p[name])
        for kind, n in p["by_kind"].items():
            s.by_kind[kind] = s.by_kind.get(kind, 0) + n
    s.parts = len(parts)
    s.seconds = time.perf_counter() - t0
    log.info("%s: corpus of %d papers, %d train / %d valid lines (%d parts built, %d reused)", field_name,
             s.papers, s.train_lines, s.valid_lines, s.parts_built, s.parts_reused)
    return s


def corpus_sample(lake: Lake | str | Path, field_name: str, n: int = 3) -> list[str]:
    """The first n training lines (from the first parts only: a preview, not a download of the corpus)."""
    lake = as_lake(lake)
    index = lake.read_json(index_key(field_name)) or {}
    lines: list[str] = []
    for chunk in sorted(index.get("parts", {})):
        part = index["parts"][chunk]
        if not part.get("train_lines"):
            continue
        table = pq.read_table(lake.fetch(part["key"] + ".parquet"))
        lines += [t for sp, t in zip(table.column("split").to_pylist(), table.column("text").to_pylist(), strict=True)
                  if sp == "train"][: n - len(lines)]
        if len(lines) >= n:
            break
    return lines


def fetch_field_corpus(lake: Lake | str | Path, field_name: str, dest: str | Path | None = None) -> Path:
    """A local folder with the field's train.txt and valid.txt (see module doc)."""
    lake = as_lake(lake)
    index = lake.read_json(index_key(field_name))
    if not index or index.get("format") != CORPUS_FORMAT:
        raise UserError(f"{field_name}: no corpus at {lake.uri(index_key(field_name))}; "
                        f"materialise field_corpus[{field_name}] first")
    dest = Path(dest) if dest is not None else lake.scratch("corpora") / field_name
    dest.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(json.dumps(index, sort_keys=True).encode()).hexdigest()
    stamp = dest / ".index-digest"
    if stamp.is_file() and stamp.read_text() == digest and (dest / "train.txt").is_file():
        return dest
    token = uuid.uuid4().hex[:8]
    tmp = {name: dest / f".{name}.txt.{token}" for name in ("train", "valid")}
    with open(tmp["train"], "w", encoding="utf-8") as tr, open(tmp["valid"], "w", encoding="utf-8") as va:
        for chunk in sorted(index["parts"]):
            table = pq.read_table(lake.fetch(index["parts"][chunk]["key"] + ".parquet"))
            for split, text in zip(table.column("split").to_pylist(), table.column("text").to_pylist(), strict=True):
                (va if split == "valid" else tr).write(text + "\n")
    for name, path in tmp.items():
        os.replace(path, dest / f"{name}.txt")
    stamp.write_text(digest)
    return dest
