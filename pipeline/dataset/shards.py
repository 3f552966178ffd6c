"""Training shards for the image models: one arXiv category's figures as uint8 arrays plus labels.

On the lake a category's shard is built from parts, one per extracted chunk, so it grows with the archive
and a new chunk costs only its own figures:

    shards/<category>/index.json                         settings, and per chunk: part key, source stamp, counts
    shards/<category>/parts/<R>px-<C>ch/<chunk>-<stamp>.npz   images (N x C x R x R uint8) and labels (N x K)
    shards/<category>/parts/<R>px-<C>ch/<chunk>-<stamp>.parquet   one row per image: figure_id, paper_id, ...
    shards/<category>/preview.png                        the first 64 images, as the models see them

`update_category_shard` lists the category's figures files (one per chunk), builds parts only for chunks
that are new or were extracted again since (their file's size/mtime stamp changed), drops parts of chunks
that are gone, and writes the index last: readers see the old shard or the new one. Figures are read one
Parquet row group at a time and written to a memory-mapped scratch array, so memory does not grow with the
chunk or the category.

A licence filter (`licenses=("cc-by", "cc0")`: prefixes of the figures' normalised `license`, case-insensitive)
keeps only figures whose paper's licence matches; figures without a known licence are left out then. Without
a filter every figure is kept and the index is exactly what it was before filters existed.

`fetch_category_shard` is the trainers' side: it downloads the parts it has not cached yet and assembles the
hand-over directory that `models.shard.load_shard` reads (images.npy memory-mapped, labels.npy, classes.json,
meta.parquet), in chunk order, then in the order of the chunk's figures file (deterministic: the extractor
writes papers in tar order). An unchanged index reuses the assembled directory.

Figures are trimmed of their white border and letterboxed on white (never stretched), so a wide plot stays
a wide plot. Class vocabularies are fixed (not data-dependent), so index 2 means "photo" in every
category's shard and one model can be conditioned the same way everywhere.
"""

import hashlib
import io
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.dataset.lake import Lake, LakeFile, as_lake
from pipeline.dataset.reader import chunk_files
from pipeline.errors import UserError
from pipeline.source.licenses import license_matches, parse_license_filter

log = logging.getLogger(__name__)

# Fixed vocabularies (pipeline/extract/kind.py produces these values).
LABEL_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "figure_kind": ("plot", "diagram", "photo", "table", "tikz", "other"),
    "section_kind": ("introduction", "related", "method", "experiments", "results", "discussion",
                     "conclusion", "appendix", "other"),
}
LABEL_COLUMNS = tuple(LABEL_VOCABULARIES)
WHITE_THRESHOLD = 245  # pixels at or above this on every channel count as background when trimming
META_COLUMNS = ["figure_id", "paper_id", "chunk", "caption_text"]
SHARDS_DIR = "shards"
SHARD_FORMAT = 2  # parts per chunk on the lake (format 1: one local directory per category)


@dataclass
class ShardSummary:
    category: str
    index: str  # the index's location (s3://... or a path)
    images: int = 0
    parts: int = 0
    parts_built: int = 0
    parts_reused: int = 0
    parts_removed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    excluded_by_license: int = 0  # figures with images that the licence filter left out
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    files_read: int = 0
    bytes_read: int = 0
    seconds: float = 0.0


def trim_and_letterbox(img: Image.Image, size: int, mode: str = "RGB") -> Image.Image:
    """Trim the white border, then fit the figure into a size x size white square, centred."""
    img = img.convert(mode)
    gray = np.asarray(img.convert("L"))
    ink = gray < WHITE_THRESHOLD
    if ink.any():
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        img = img.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    # reducing_gap makes large downscales fast (a box pre-shrink) at no visible cost at 64-256 px.
    img = img.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new(mode, (size, size), "white")
    canvas.paste(img, ((size - new[0]) // 2, (size - new[1]) // 2))
    return canvas


def _label_index(column: str, value: str | None) -> int:
    vocab = LABEL_VOCABULARIES[column]
    return vocab.index(value) if value in vocab else vocab.index("other")


def check_label_columns(columns: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    bad = [c for c in columns if c not in LABEL_VOCABULARIES]
    if bad or not columns:
        raise UserError(f"unknown label column(s) {', '.join(map(repr, bad)) or '(none given)'}; "
                        f"choose from {', '.join(LABEL_VOCABULARIES)}")
    return tuple(columns)


def index_key(category: str) -> str:
    if not category or "/" in category or category.startswith((".", "_")):
        raise UserError(f"bad category {category!r}: expected an arXiv category such as cs.CV")
    return f"{SHARDS_DIR}/{category}/index.json"


def read_index(lake: Lake | str | Path, category: str) -> dict | None:
    return as_lake(lake).read_json(index_key(category))


# ---------------------------------------------------------------------------------------------------------
# Building parts (the dataset side)
# ---------------------------------------------------------------------------------------------------------

def _build_part(lake: Lake, source: LakeFile, chunk: str, resolution: int, channels: int, part_key: str,
                summary: ShardSummary, licenses: tuple[str, ...] | None = None) -> dict:
    """One chunk's figures -> a part on the lake (npz + parquet). Reads one row group at a time."""
    mode = "RGB" if channels == 3 else "L"
    scratch = lake.scratch("build")
    tmp = scratch / f"{uuid.uuid4().hex}.npy"
    columns = [*META_COLUMNS, *LABEL_COLUMNS, "image", *(["license"] if licenses else [])]
    pf = pq.ParquetFile(lake.fs.open_input_file(lake.path(source.key)))
    capacity = max(pf.metadata.num_rows, 1)
    images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(capacity, channels, resolution,
                                                                                resolution))
    labels = np.zeros((capacity, len(LABEL_COLUMNS)), dtype=np.int64)
    meta: dict[str, list] = {c: [] for c in META_COLUMNS}
    n = excluded = 0
    buf = scratch / f"{uuid.uuid4().hex}.npz"
    try:
        for g in range(pf.num_row_groups):
            batch = pf.read_row_group(g, columns=[c for c in columns if c in pf.schema_arrow.names])
            rows = batch.to_pydict() if batch.num_rows else {}
            for i in range(batch.num_rows):
                img = rows["image"][i]
                if not img or not img.get("bytes"):
                    continue
                if not license_matches(rows.get("license", [None] * batch.num_rows)[i], licenses):
                    excluded += 1  # files from before the license column count as unknown licence
                    continue
                try:
                    with Image.open(io.BytesIO(img["bytes"])) as im:
                        arr = np.asarray(trim_and_letterbox(im, resolution, mode))
                except Exception as exc:  # noqa: BLE001 - a stored image that does not decode is skipped
                    key = type(exc).__name__
                    summary.skipped[key] = summary.skipped.get(key, 0) + 1
                    continue
                images[n] = arr.transpose(2, 0, 1) if channels == 3 else arr[None]
                labels[n] = [_label_index(c, rows.get(c, [None] * batch.num_rows)[i]) for c in LABEL_COLUMNS]
                for c in META_COLUMNS:
                    meta[c].append(rows[c][i] if c in rows else chunk)
                n += 1
            del batch, rows
        np.savez_compressed(buf, images=images[:n], labels=labels[:n])  # numpy writes a memmap in slices
        lake.upload(buf, f"{part_key}.npz")
        table = pa.table({c: pa.array(meta[c], pa.string()) for c in META_COLUMNS})
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        lake.write_bytes(f"{part_key}.parquet", sink.getvalue())
    finally:
        del images
        # only this call's files: other shard builds (other categories, other runs) share the scratch folder
        tmp.unlink(missing_ok=True)
        buf.unlink(missing_ok=True)
    summary.files_read += 1
    summary.bytes_read += source.size
    counts = {c: np.bincount(labels[:n, k], minlength=len(LABEL_VOCABULARIES[c])).tolist()
              for k, c in enumerate(LABEL_COLUMNS)}
    part = {"key": part_key, "source": source.stamp, "images": n, "counts": counts}
    if licenses is not None:
        part["excluded_by_license"] = excluded
    return part


def update_category_shard(
    lake: Lake | str | Path,
    category: str,
    *,
    resolution: int = 64,
    channels: int = 3,
    label_columns: tuple[str, ...] = LABEL_COLUMNS,
    max_images: int | None = None,
    progress=None,
    licenses: str | list[str] | tuple[str, ...] | None = None,
) -> ShardSummary:
    """Bring the category's shard on the lake up to date with its figures (incremental, see module doc).

    `label_columns` and `max_images` are recorded in the index for `fetch_category_shard`. `licenses`: licence
    prefixes to keep ("cc-by,cc0" or a list); None keeps every figure."""
    lake = as_lake(lake)
    licenses = parse_license_filter(licenses)
    label_columns = check_label_columns(label_columns)
    if resolution not in (16, 32, 64, 128, 256, 512) or channels not in (1, 3):
        raise UserError(f"shard resolution must be one of 16, 32, 64, 128, 256, 512 and channels 1 or 3; got "
                        f"{resolution} px, {channels} channels")
    t0 = time.perf_counter()
    key = index_key(category)
    summary = ShardSummary(category=category, index=lake.uri(key))
    variant = f"{resolution}px-{channels}ch"
    old = lake.read_json(key) or {}
    same = old.get("variant") == variant and old.get("format") == SHARD_FORMAT and \
        old.get("licenses") == (list(licenses) if licenses else None)
    old_parts = old.get("parts", {}) if same else {}
    sources = chunk_files(lake, f"figures/primary_category={category}")
    parts: dict[str, dict] = {}
    for k, (chunk, source) in enumerate(sorted(sources.items()), 1):
        prev = old_parts.get(chunk)
        if prev and prev.get("source") == source.stamp:
            parts[chunk] = prev
            summary.parts_reused += 1
            continue
        stamp = source.stamp + (f"|{','.join(licenses)}" if licenses else "")  # a filtered part is another part
        part_key = f"{SHARDS_DIR}/{category}/parts/{variant}/{chunk}-{hashlib.sha1(stamp.encode()).hexdigest()[:10]}"
        parts[chunk] = _build_part(lake, source, chunk, resolution, channels, part_key, summary, licenses)
        summary.parts_built += 1
        if progress is not None:
            progress(k, len(sources), summary)
    index = {"format": SHARD_FORMAT, "category": category, "variant": variant, "resolution": resolution,
             "channels": channels, "label_columns": list(label_columns), "max_images": max_images,
             "names": {c: list(v) for c, v in LABEL_VOCABULARIES.items()},
             "images": sum(p["images"] for p in parts.values()), "parts": parts,
             "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if licenses:
        index["licenses"] = list(licenses)
    lake.write_json(key, index)
    keep = {p["key"] for p in parts.values()}
    for f in lake.files(f"{SHARDS_DIR}/{category}/parts"):
        if f.key.rsplit(".", 1)[0] not in keep:
            lake.delete(f.key)
            summary.parts_removed += f.key.endswith(".npz")
    summary.images = index["images"]
    summary.parts = len(parts)
    summary.excluded_by_license = sum(p.get("excluded_by_license", 0) for p in parts.values())
    for c in label_columns:
        totals = np.sum([p["counts"][c] for p in parts.values()], axis=0) if parts else []
        summary.class_counts[c] = {name: int(v) for name, v in zip(LABEL_VOCABULARIES[c], totals, strict=False)
                                   if v}
    summary.seconds = time.perf_counter() - t0
    log.info("%s: shard of %d images in %d parts (%d built, %d reused, %d removed) in %.1f s", category,
             summary.images, summary.parts, summary.parts_built, summary.parts_reused, summary.parts_removed,
             summary.seconds)
    return summary


def shard_report(lake: Lake | str | Path, category: str) -> dict:
    """The category's shard against its figures, both read back from the lake (not from the builder's counts):
    per chunk, the figures with a stored image in its figures file (the index's licence filter applied) and the
    rows of the shard part the index lists for it (its Parquet footer). `complete` is False when the shard holds
    fewer images than the figures, counting both up to the index's `max_images` (what the trainers get), or
    when there is no index. `short_chunks` names the chunks whose part holds fewer images than their figures."""
    lake = as_lake(lake)
    index = read_index(lake, category) or {}
    licenses = tuple(index.get("licenses") or ()) or None
    parts = index.get("parts", {})
    figures, shard, short = 0, 0, {}
    for chunk, source in sorted(chunk_files(lake, f"figures/primary_category={category}").items()):
        want = _figures_with_images(pq.ParquetFile(lake.fs.open_input_file(lake.path(source.key))), licenses)
        part = parts.get(chunk)
        have = 0
        if part is not None and lake.exists(part["key"] + ".parquet"):
            have = pq.ParquetFile(lake.fs.open_input_file(lake.path(part["key"] + ".parquet"))).metadata.num_rows
        figures += want
        shard += have
        if have < want:
            short[chunk] = {"figures_with_images": want, "shard_images": have}
    max_images = index.get("max_images")
    cap = (lambda n: min(n, int(max_images))) if max_images is not None else (lambda n: n)
    return {"category": category, "indexed": bool(index), "figures_with_images": figures, "shard_images": shard,
            "max_images": max_images, "licenses": list(licenses) if licenses else None,
            "expected": cap(figures), "usable": cap(shard), "short_chunks": short,
            "complete": bool(index) and cap(shard) >= cap(figures)}


def _figures_with_images(pf: pq.ParquetFile, licenses: tuple[str, ...] | None) -> int:
    """Rows of a figures file with a stored image (and a licence the filter takes). Without a licence filter the
    footer's null counts of `image_sha256` answer it, so the check reads no column data; otherwise, or when a
    file has no statistics, the columns are read."""
    names = pf.schema_arrow.names
    column = "image_sha256" if "image_sha256" in names else "image"  # set together with the image
    if not licenses and column == "image_sha256":
        meta = pf.metadata
        leaf = next(i for i in range(meta.num_columns) if meta.schema.column(i).path == column)
        stats = [meta.row_group(g).column(leaf).statistics for g in range(meta.num_row_groups)]
        if all(st is not None and st.has_null_count for st in stats):
            return meta.num_rows - sum(st.null_count for st in stats)
    table = pf.read(columns=[column, *(["license"] if licenses and "license" in names else [])])
    has_image = table.column(column).is_valid().to_pylist()
    lic = table.column("license").to_pylist() if "license" in table.column_names else [None] * len(has_image)
    return sum(1 for ok, li in zip(has_image, lic, strict=True) if ok and license_matches(li, licenses))


def preview_images(lake: Lake | str | Path, category: str, n: int = 64) -> np.ndarray:
    """The first n images of the shard (N x C x H x W uint8), read from the first parts only."""
    lake = as_lake(lake)
    index = read_index(lake, category) or {}
    out = []
    for chunk in sorted(index.get("parts", {})):
        if sum(len(a) for a in out) >= n:
            break
        with np.load(lake.fetch(index["parts"][chunk]["key"] + ".npz")) as part:
            out.append(part["images"][: n - sum(len(a) for a in out)])
    return np.concatenate(out) if out else np.zeros((0, 3, 1, 1), np.uint8)


# ---------------------------------------------------------------------------------------------------------
# Assembling the hand-over directory (the trainers' side)
# ---------------------------------------------------------------------------------------------------------

def fetch_category_shard(lake: Lake | str | Path, category: str, dest: str | Path | None = None) -> Path:
    """The category's shard as a local directory for `models.shard.load_shard` (see module doc)."""
    lake = as_lake(lake)
    index = read_index(lake, category)
    if not index or index.get("format") != SHARD_FORMAT:
        raise UserError(f"{category}: no training shard at {lake.uri(index_key(category))}; "
                        f"materialise category_figures[{category}] first")
    dest = Path(dest) if dest is not None else lake.scratch("shards") / category
    digest = hashlib.sha1(json.dumps(index, sort_keys=True).encode()).hexdigest()
    if (dest / ".index-digest").is_file() and (dest / ".index-digest").read_text() == digest:
        return dest
    columns = index["label_columns"]
    col_idx = [LABEL_COLUMNS.index(c) for c in columns]
    chunks = sorted(index["parts"])
    total = sum(index["parts"][c]["images"] for c in chunks)
    if index.get("max_images") is not None:
        total = min(total, int(index["max_images"]))
    res, ch = index["resolution"], index["channels"]
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(total, ch, res, res))
        labels = np.zeros((total, len(columns)), np.int64)
        metas, n = [], 0
        for chunk in chunks:
            if n >= total:
                break
            part = index["parts"][chunk]
            if not part["images"]:
                continue
            take = min(part["images"], total - n)
            with np.load(lake.fetch(part["key"] + ".npz")) as arrays:
                images[n:n + take] = arrays["images"][:take]
                labels[n:n + take] = arrays["labels"][:take][:, col_idx]
            metas.append(pq.read_table(lake.fetch(part["key"] + ".parquet")).slice(0, take))
            n += take
        images.flush()
        del images
        np.save(tmp / "labels.npy", labels)
        (tmp / "classes.json").write_text(json.dumps({
            "names": [index["names"][c] for c in columns], "columns": columns, "category": category,
            "resolution": res}, indent=1))
        meta = pa.concat_tables(metas) if metas else pa.table({c: pa.array([], pa.string()) for c in META_COLUMNS})
        pq.write_table(meta, tmp / "meta.parquet")
        (tmp / ".index-digest").write_text(digest)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("%s: assembled %d images from %d parts in %s", category, total, len(chunks), dest)
    return dest
