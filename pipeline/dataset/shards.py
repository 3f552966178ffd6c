"""Training shards for the image models: one arXiv category's figures as a uint8 array plus labels.

A shard directory (the hand-over to `models/`, which reads it memory-mapped):

    images.npy    uint8, N x C x H x W (C = 1 or 3, H = W = resolution)
    labels.npy    int64, N x K (one column per label: figure_kind, section_kind, ...)
    classes.json  {"names": [[...], ...], "columns": [...]}: class names per label column
    meta.parquet  one row per image: figure_id, paper_id, chunk, labels, caption_text

Figures are trimmed of their white border and letterboxed on white (never stretched), so a wide plot stays
a wide plot. Class vocabularies are fixed (not data-dependent), so index 2 means "photo" in every
category's shard and one model can be conditioned the same way everywhere. The shard is written to a
temporary directory and renamed into place, so readers never see half a shard.
"""

import io
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

log = logging.getLogger(__name__)

# Fixed vocabularies (pipeline/extract/kind.py produces these values).
LABEL_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "figure_kind": ("plot", "diagram", "photo", "table", "tikz", "other"),
    "section_kind": ("introduction", "related", "method", "experiments", "results", "discussion",
                     "conclusion", "appendix", "other"),
}
WHITE_THRESHOLD = 245  # pixels at or above this on every channel count as background when trimming


@dataclass
class ShardSummary:
    path: str
    category: str
    images: int
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
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


def build_category_shard(
    data_root: str | Path,
    category: str,
    out_dir: str | Path,
    *,
    resolution: int = 64,
    channels: int = 3,
    label_columns: tuple[str, ...] = ("figure_kind", "section_kind"),
    max_images: int | None = None,
) -> ShardSummary:
    """Read the figures of one primary category (only its own partition) and write a training shard."""
    from pipeline.dataset.reader import dataset

    for col in label_columns:
        if col not in LABEL_VOCABULARIES:
            raise ValueError(f"unknown label column {col!r}; choose from {', '.join(LABEL_VOCABULARIES)}")
    t0 = time.perf_counter()
    ds = dataset(data_root, "figures", category=category)
    files = list(getattr(ds, "files", []) or [])
    columns = ["figure_id", "paper_id", "chunk", "caption_text", "image", *label_columns]
    table = ds.to_table(columns=columns, filter=ds_is_valid_image())
    table = table.sort_by("figure_id")  # deterministic order whatever the file listing order
    if max_images is not None:
        table = table.slice(0, max_images)
    mode = "RGB" if channels == 3 else "L"
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n = table.num_rows
    images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                       shape=(n, channels, resolution, resolution))
    labels = np.zeros((n, len(label_columns)), dtype=np.int64)
    keep: list[int] = []
    skipped: dict[str, int] = {}
    image_col = table.column("image").combine_chunks()
    blobs = image_col.field("bytes")
    label_values = {c: table.column(c).to_pylist() for c in label_columns}
    for i in range(n):
        try:
            with Image.open(io.BytesIO(blobs[i].as_py())) as im:
                arr = np.asarray(trim_and_letterbox(im, resolution, mode))
        except Exception as exc:  # a stored image that does not decode is skipped, not fatal
            key = type(exc).__name__
            skipped[key] = skipped.get(key, 0) + 1
            continue
        j = len(keep)
        images[j] = arr.transpose(2, 0, 1) if channels == 3 else arr[None]
        labels[j] = [_label_index(c, label_values[c][i]) for c in label_columns]
        keep.append(i)
    images.flush()
    del images
    m = len(keep)
    if m < n:  # rewrite compactly without the skipped rows
        full = np.load(tmp / "images.npy", mmap_mode="r")[:m].copy()
        np.save(tmp / "images.npy", full)
    np.save(tmp / "labels.npy", labels[:m])
    (tmp / "classes.json").write_text(json.dumps({
        "names": [list(LABEL_VOCABULARIES[c]) for c in label_columns], "columns": list(label_columns),
        "category": category, "resolution": resolution,
    }, indent=1))
    meta = table.drop_columns(["image"]).take(pa.array(keep, type=pa.int64()))
    pq.write_table(meta, tmp / "meta.parquet")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    counts = {c: {} for c in label_columns}
    for k, c in enumerate(label_columns):
        vocab = LABEL_VOCABULARIES[c]
        for idx, cnt in zip(*np.unique(labels[:m, k], return_counts=True), strict=True):
            counts[c][vocab[int(idx)]] = int(cnt)
    summary = ShardSummary(
        path=str(out_dir), category=category, images=m, skipped=skipped, class_counts=counts,
        files_read=len(files), bytes_read=sum(_size(f) for f in files), seconds=time.perf_counter() - t0,
    )
    log.info("%s: shard of %d images at %d px in %.1f s (%d files read)", category, m, resolution,
             summary.seconds, summary.files_read)
    return summary


def ds_is_valid_image():
    import pyarrow.dataset as pads

    return pads.field("image").is_valid()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
