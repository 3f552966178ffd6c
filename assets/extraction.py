"""Extraction: one chunk tar -> its rows of the papers, figures and text tables (one multi-asset)."""

import dagster as dg

from assets.checks import EXTRACTION_CHECKS, extraction_checks
from assets.metadata_values import md_table
from assets.partitions import chunk_partitions
from assets.resources import Compute, DataLake, SourceBucket
from forge_common import ProgressLog

_LATEST_METADATA = dg.AssetDep("arxiv_metadata", partition_mapping=dg.LastPartitionMapping())


class ExtractConfig(dg.Config):
    max_side: int = 512  # stored image long side in pixels
    paper_timeout_s: float = 120.0
    delete_local_copy: bool = False  # remove the downloaded chunk tar once its tables are written


@dg.multi_asset(
    name="chunk_extract",
    partitions_def=chunk_partitions,
    specs=[
        dg.AssetSpec("papers", deps=["source_chunk", _LATEST_METADATA], kinds={"parquet"}, group_name="extraction",
                     description="One row per paper of the chunk: status (ok, no_figures, pdf_only, ...) and reason."),
        dg.AssetSpec("figures", deps=["source_chunk", _LATEST_METADATA], kinds={"parquet"}, group_name="extraction",
                     description="One row per graphic: caption, labels, section, PNG image (HF-style struct)."),
        dg.AssetSpec("text", deps=["source_chunk", _LATEST_METADATA], kinds={"parquet"}, group_name="extraction",
                     description="Titles, abstracts, captions and body paragraphs as plain text, by field."),
    ],
    check_specs=EXTRACTION_CHECKS,
)
def chunk_extract(
    context: dg.AssetExecutionContext, config: ExtractConfig, bucket: SourceBucket, lake: DataLake,
    compute: Compute,
):
    """Extract every paper of one chunk in a process pool (per-paper time and memory limits)."""
    import dataclasses

    from pipeline.extract.chunk import extract_chunk, load_metadata_for_chunk
    from pipeline.extract.limits import DEFAULT_LIMITS
    from pipeline.source.download import open_chunk

    chunk = context.partition_key
    store = lake.lake()
    b = bucket.open()
    entry = b.load_manifest().by_chunk().get(chunk)
    if entry is None:
        raise dg.Failure(f"chunk {chunk} is not in the manifest of {b.url}; the manifest may have changed")
    tar = b.local_path(entry.filename)  # a local mirror is read where it lies
    copy = store.scratch("chunks") / f"{chunk}.tar"  # source_chunk's copy, when this machine still has it
    if tar is None and copy.exists():
        tar = copy
    metadata = load_metadata_for_chunk(store, [entry.yymm])  # only this month's ids are read
    context.log.info(f"{chunk}: metadata for {len(metadata)} papers of {entry.yymm}")
    if not metadata:
        context.log.warning(f"no metadata for {chunk}: papers go to primary_category=unknown; "
                            "materialise arxiv_metadata first")
    limits = dataclasses.replace(DEFAULT_LIMITS, max_side=config.max_side, paper_timeout_s=config.paper_timeout_s)
    line = ProgressLog(chunk, entry.num_items, unit="papers", emit=context.log.info)

    def progress(done: int, summary) -> None:
        line.update(done, figures=summary.figures, errors=summary.errors_total())

    kwargs = dict(workers=compute.extract_workers(), limits=limits, metadata=metadata, progress=progress,
                  chunk=chunk)
    if tar is not None:
        s = extract_chunk(tar, store, **kwargs)
    else:  # no copy on this machine (a new pod, or read_in_place): stream the tar, md5-checked as it is read
        context.log.info(f"{chunk}: no local copy; streaming {b.key_url(entry.filename)}")
        with open_chunk(b, entry) as stream:
            s = extract_chunk(stream, store, **kwargs)
    if config.delete_local_copy and copy.exists():
        copy.unlink()  # the whole archive (4.8 TB) does not fit on a worker's disk
        context.log.info(f"{chunk}: deleted the local copy {copy}")
    error_rate = s.by_status.get("error", 0) / max(s.papers, 1)
    timing = {k: round(v, 2) for k, v in s.timings.items()}
    common = {"chunk": chunk, "seconds": round(s.seconds, 1)}
    yield dg.MaterializeResult(asset_key="papers", metadata={
        **common, "papers": s.papers, "error_rate": round(error_rate, 4),
        "papers_per_s": round(s.papers / max(s.seconds, 1e-6), 2),
        "by_status": dg.MetadataValue.md(md_table([{"status": k, "papers": v} for k, v in s.by_status.items()])),
        "errors_by_reason": dg.MetadataValue.md(md_table(
            [{"reason": k, "papers": v} for k, v in s.errors_by_reason.items()])),
        "cpu_seconds_by_stage": dg.MetadataValue.json(timing),
    })
    yield dg.MaterializeResult(asset_key="figures", metadata={
        **common, "figures": s.figures, "graphics": s.graphics, "images": s.images,
        "image_rate": round(s.images / max(s.graphics, 1), 4),
    })
    yield dg.MaterializeResult(asset_key="text", metadata={**common, "rows": s.text_rows})
    yield from extraction_checks(store, chunk, expected_papers=entry.num_items)
