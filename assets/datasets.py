"""Datasets for training: a figure shard per arXiv category, a text corpus per field."""

import dagster as dg

from assets.checks import SHARD_CHECK
from assets.metadata_values import md_image, md_table
from assets.partitions import category_partitions, field_partitions
from assets.resources import DataLake
from forge_common import ProgressLog

_ALL_CHUNKS = dg.AllPartitionMapping()


class ShardConfig(dg.Config):
    resolution: int = 64  # 64 for CPU demos, 128/256 on GPU
    channels: int = 3
    label_columns: list[str] = ["figure_kind", "section_kind"]
    max_images: int | None = None
    licenses: list[str] = []  # licence prefixes to keep, e.g. ["cc-by", "cc0"]; empty keeps every figure


@dg.asset(
    group_name="datasets",
    partitions_def=category_partitions,
    deps=[dg.AssetDep("figures", partition_mapping=_ALL_CHUNKS)],
    kinds={"numpy"},
    check_specs=[dg.AssetCheckSpec("figures_schema_uniform", asset="category_figures",
                                   description="The category's figures files share one schema (one extractor "
                                               "version); lists the chunks to extract again."),
                 SHARD_CHECK],
)
def category_figures(context: dg.AssetExecutionContext, config: ShardConfig, lake: DataLake) -> dg.MaterializeResult:
    """Training shard for one category on the lake: its figures trimmed, letterboxed on white, resized, with
    labels; one part per chunk, so a new chunk adds only its own figures (see pipeline/dataset/shards.py).

    Reads only `figures/primary_category=<category>/`, and of that only the chunks that changed.
    """
    from assets.checks import schema_uniform_check, shard_check
    from pipeline.dataset.shards import preview_images, update_category_shard
    from pipeline.errors import UserError

    category = context.partition_key
    store = lake.lake()

    line = ProgressLog(category, unit="chunks", emit=context.log.info)

    def progress(done: int, total: int, s) -> None:
        line.total = total
        line.update(done, parts_built=s.parts_built)

    try:
        s = update_category_shard(store, category, resolution=config.resolution, channels=config.channels,
                                  label_columns=tuple(config.label_columns), max_images=config.max_images,
                                  progress=progress, licenses=config.licenses or None)
    except UserError as exc:
        raise dg.Failure(str(exc)) from None
    if s.images == 0:
        context.log.warning(f"{category}: no figures with images yet (extract chunks first)")
    meta = {
        "index": dg.MetadataValue.path(s.index), "images": s.images, "resolution": config.resolution,
        "parts": s.parts, "parts_built": s.parts_built, "parts_reused": s.parts_reused,
        "parts_removed": s.parts_removed, "files_read": s.files_read, "bytes_read": s.bytes_read,
        "seconds": round(s.seconds, 2), "skipped": dg.MetadataValue.json(s.skipped),
    }
    if config.licenses:
        meta["excluded_by_license"] = s.excluded_by_license
    for col, counts in s.class_counts.items():
        meta[f"{col}_counts"] = dg.MetadataValue.md(md_table([{col: k, "images": v} for k, v in counts.items()]))
    if s.images:
        from models.images import save_grid

        path = save_grid(preview_images(store, category, 64), store.scratch("previews") / f"{category}.png", nrow=8)
        store.upload(path, f"shards/{category}/preview.png")
        meta["preview"] = md_image(path, f"{category} training images")
    checks = [schema_uniform_check(store, "figures", "category_figures", category=category),
              shard_check(store, category)]
    return dg.MaterializeResult(metadata=meta, check_results=checks)


class CorpusConfig(dg.Config):
    valid_fraction: float = 0.1
    kinds: list[str] = ["title", "abstract", "caption", "paragraph"]
    licenses: list[str] = []  # licence prefixes to keep, e.g. ["cc-by", "cc0"]; empty keeps every paper


@dg.asset(
    group_name="datasets",
    partitions_def=field_partitions,
    deps=[dg.AssetDep("text", partition_mapping=_ALL_CHUNKS)],
    kinds={"text"},
    check_specs=[dg.AssetCheckSpec("text_schema_uniform", asset="field_corpus",
                                   description="The text table's files share one schema (one extractor "
                                               "version); lists the chunks to extract again.")],
)
def field_corpus(context: dg.AssetExecutionContext, config: CorpusConfig, lake: DataLake) -> dg.MaterializeResult:
    """Plain-text corpus of one field on the lake (train / valid lines, split by paper) for the LSTM; one
    part per chunk, so a new chunk adds only its own text."""
    from assets.checks import schema_uniform_check
    from pipeline.dataset.corpus import corpus_sample, update_field_corpus
    from pipeline.errors import UserError

    fld = context.partition_key
    store = lake.lake()
    try:
        s = update_field_corpus(store, fld, valid_fraction=config.valid_fraction, kinds=tuple(config.kinds),
                                licenses=config.licenses or None)
    except UserError as exc:
        raise dg.Failure(str(exc)) from None
    sample = []
    if s.train_lines == 0:
        context.log.warning(f"{fld}: no text rows yet (extract chunks first)")
    else:
        sample = [{"line": line} for line in corpus_sample(store, fld, 3)]
    return dg.MaterializeResult(metadata={
        "index": dg.MetadataValue.path(s.index), "papers": s.papers, "train_lines": s.train_lines,
        "valid_lines": s.valid_lines, "train_chars": s.train_chars, "valid_chars": s.valid_chars,
        "parts": s.parts, "parts_built": s.parts_built, "parts_reused": s.parts_reused,
        "by_kind": dg.MetadataValue.json(s.by_kind), "sample": dg.MetadataValue.md(md_table(sample, 200)),
    }, check_results=[schema_uniform_check(store, "text", "field_corpus")])
