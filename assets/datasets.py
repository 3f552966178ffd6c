"""Datasets for training: a figure shard per arXiv category, a text corpus per field."""

import dagster as dg

from assets.metadata_values import md_image, md_table
from assets.partitions import category_partitions, field_partitions
from assets.resources import DataLake

_ALL_CHUNKS = dg.AllPartitionMapping()


class ShardConfig(dg.Config):
    resolution: int = 64  # 64 for CPU demos, 128/256 on GPU
    channels: int = 3
    label_columns: list[str] = ["figure_kind", "section_kind"]
    max_images: int | None = None


@dg.asset(
    group_name="datasets",
    partitions_def=category_partitions,
    deps=[dg.AssetDep("figures", partition_mapping=_ALL_CHUNKS)],
    kinds={"numpy"},
)
def category_figures(context: dg.AssetExecutionContext, config: ShardConfig, lake: DataLake) -> dg.MaterializeResult:
    """Training shard for one category: its figures trimmed, letterboxed on white, resized, with labels.

    Reads only `figures/primary_category=<category>/`: the read cost is in the metadata.
    """
    from pipeline.dataset.shards import build_category_shard
    from pipeline.dataset.writer import resolve_root

    category = context.partition_key
    out = lake.local("shards", category)
    s = build_category_shard(lake.root, category, out, resolution=config.resolution, channels=config.channels,
                             label_columns=tuple(config.label_columns), max_images=config.max_images)
    if s.images == 0:
        context.log.warning(f"{category}: no figures with images yet (extract chunks first)")
    fs, base, _ = resolve_root(lake.root, lake.endpoint_url)
    lake_bytes = _tree_bytes(fs, f"{base}/figures")
    meta = {
        "path": dg.MetadataValue.path(s.path), "images": s.images, "resolution": config.resolution,
        "files_read": s.files_read, "bytes_read": s.bytes_read,
        "share_of_figures_table_read": round(s.bytes_read / max(lake_bytes, 1), 4),
        "seconds": round(s.seconds, 2),
        "skipped": dg.MetadataValue.json(s.skipped),
    }
    for col, counts in s.class_counts.items():
        meta[f"{col}_counts"] = dg.MetadataValue.md(md_table([{col: k, "images": v} for k, v in counts.items()]))
    if s.images:
        grid = _preview_grid(s.path)
        meta["preview"] = md_image(grid, f"{category} training images")
    return dg.MaterializeResult(metadata=meta)


class CorpusConfig(dg.Config):
    valid_fraction: float = 0.1
    kinds: list[str] = ["title", "abstract", "caption", "paragraph"]


@dg.asset(
    group_name="datasets",
    partitions_def=field_partitions,
    deps=[dg.AssetDep("text", partition_mapping=_ALL_CHUNKS)],
    kinds={"text"},
)
def field_corpus(context: dg.AssetExecutionContext, config: CorpusConfig, lake: DataLake) -> dg.MaterializeResult:
    """Plain-text corpus of one field (train.txt / valid.txt, split by paper) for the LSTM."""
    from pipeline.dataset.corpus import build_field_corpus

    fld = context.partition_key
    s = build_field_corpus(lake.root, fld, lake.local("corpora", fld), valid_fraction=config.valid_fraction,
                           kinds=tuple(config.kinds))
    if s.train_lines == 0:
        context.log.warning(f"{fld}: no text rows yet (extract chunks first)")
    sample = []
    train = lake.local("corpora", fld) / "train.txt"
    with open(train, encoding="utf-8") as fh:
        for _, line in zip(range(3), fh, strict=False):
            sample.append({"line": line.strip()})
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(s.path), "papers": s.papers, "train_lines": s.train_lines,
        "valid_lines": s.valid_lines, "train_chars": s.train_chars, "valid_chars": s.valid_chars,
        "by_kind": dg.MetadataValue.json(s.by_kind), "sample": dg.MetadataValue.md(md_table(sample, 200)),
    })


def _tree_bytes(fs, path: str) -> int:
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return sum(i.size or 0 for i in infos if i.type == pafs.FileType.File)


def _preview_grid(shard_dir: str, n: int = 64):
    """A PNG grid of the first n shard images (what the models will see)."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    images = np.load(Path(shard_dir) / "images.npy", mmap_mode="r")[:n]
    k, c, h, w = images.shape
    cols = 8
    rows = (k + cols - 1) // cols
    canvas = np.full((rows * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    for i in range(k):
        img = images[i].transpose(1, 2, 0)
        if c == 1:
            img = np.repeat(img, 3, axis=2)
        r, q = divmod(i, cols)
        canvas[r * (h + 2): r * (h + 2) + h, q * (w + 2): q * (w + 2) + w] = img
    path = Path(shard_dir) / "preview.png"
    Image.fromarray(canvas).save(path)
    return path
