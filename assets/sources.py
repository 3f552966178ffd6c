"""Source assets: the manifest, chunk tars (one partition per chunk) and the metadata table (one per day)."""

import time

import dagster as dg

from assets.metadata_values import md_table
from assets.partitions import chunk_partitions, metadata_days
from assets.resources import DataLake, MetadataSource, SourceBucket
from forge_common import ProgressLog
from pipeline.source.download import download_chunk
from pipeline.source.manifest import Manifest

MANIFEST_PREVIEW_ROWS = 12


def manifest_metadata(manifest: Manifest) -> dict:
    s = manifest.summary()
    rows = [
        {"chunk": e.chunk, "month": e.month, "items": e.num_items, "MB": round(e.size / 1e6, 1), "md5": e.md5sum[:10]}
        for e in manifest.sorted()[-MANIFEST_PREVIEW_ROWS:]
    ]
    return {
        "chunks": s["chunks"],
        "items": s["items"],
        "bytes": s["bytes"],
        "first_month": s["first_month"] or "",
        "last_month": s["last_month"] or "",
        "manifest_timestamp": s["timestamp"] or "",
        "newest_chunks": dg.MetadataValue.md(md_table(rows)),
    }


@dg.asset(group_name="sources", kinds={"s3", "xml"})
def arxiv_manifest(context: dg.AssetExecutionContext, bucket: SourceBucket) -> dg.MaterializeResult:
    """The bulk-source manifest (`src/arXiv_src_manifest.xml`): one entry per chunk tar, with md5 and size."""
    manifest = bucket.open().load_manifest()
    meta = manifest_metadata(manifest)
    context.log.info(f"manifest: {meta['chunks']} chunks, {meta['items']} papers, {meta['bytes'] / 1e9:.2f} GB")
    return dg.MaterializeResult(metadata=meta)


class SourceChunkConfig(dg.Config):
    read_in_place: bool = False  # a local mirror is read where it lies; True also skips the copy for S3


@dg.asset(
    group_name="sources",
    partitions_def=chunk_partitions,
    deps=[arxiv_manifest],
    kinds={"s3", "tar"},
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL),
)
def source_chunk(
    context: dg.AssetExecutionContext, config: SourceChunkConfig, bucket: SourceBucket, lake: DataLake
) -> dg.MaterializeResult:
    """One chunk tar, md5-verified against the manifest: copied to this machine's scratch (a cache; resumable),
    or read in place."""
    chunk = context.partition_key
    b = bucket.open()
    entry = b.load_manifest().by_chunk().get(chunk)
    if entry is None:
        raise dg.Failure(f"chunk {chunk} is not in the manifest of {b.url}; the manifest may have changed")
    local = b.local_path(entry.filename)
    if local is not None or config.read_in_place:
        where = str(local) if local is not None else b.key_url(entry.filename)
        context.log.info(f"{chunk}: read in place from {where}")
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(where), "bytes": entry.size,
                                              "papers": entry.num_items, "copied": False})
    t0 = time.perf_counter()
    progress = ProgressLog(chunk, unit="MB", scale=1e6, start=None, emit=context.log.info)

    # A copy on this machine's scratch only (a cache): chunk_extract streams from the bucket when it is gone.
    path = download_chunk(b, entry, lake.lake().scratch("chunks"), progress=progress)
    seconds = time.perf_counter() - t0
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)), "bytes": entry.size, "papers": entry.num_items,
        "md5": entry.md5sum, "copied": True, "MB_per_s": round(entry.size / 1e6 / max(seconds, 1e-6), 1),
    })


class MetadataConfig(dg.Config):
    compact_after: int = 64  # merge the metadata files into one once there are this many (0 = never)


@dg.asset(group_name="sources", partitions_def=metadata_days, kinds={"xml", "parquet"})
def arxiv_metadata(
    context: dg.AssetExecutionContext, config: MetadataConfig, bucket: SourceBucket, lake: DataLake,
    metadata_source: MetadataSource,
) -> dg.MaterializeResult:
    """Per-paper metadata (OAI-PMH `arXiv` format), one file per day partition on the lake.

    Each day writes only `metadata/harvest/<day>.parquet`, so day runs side by side (a backfill) never
    overwrite each other; readers take the latest record per id. With `ARXIV_FORGE_OAI=bucket` (the sample
    bucket) the day's file holds the XML pages the bucket ships under `metadata/` (a snapshot); otherwise the
    day is harvested from the OAI-PMH endpoint.
    """
    from pipeline.dataset.metadata import compact_metadata, metadata_files, records_from_xml, write_metadata
    from pipeline.source.harvest import harvest, page_files

    day = context.partition_key
    store = lake.lake()
    if metadata_source.from_bucket:
        xml_dir = bucket.local_metadata_dir()
        if xml_dir is None:
            raise dg.Failure(
                f"ARXIV_FORGE_OAI=bucket but {bucket.url} has no metadata/ directory; "
                "set ARXIV_FORGE_OAI to an OAI-PMH endpoint such as https://oaipmh.arxiv.org/oai"
            )
        pages = [xml_dir]
        source = str(xml_dir)
    else:
        out = store.scratch("harvest", day)  # pages and resumption state: needed only within this run
        summary = harvest(metadata_source.endpoint, out, from_date=day, until_date=day,
                          min_interval=metadata_source.min_interval)
        context.log.info(f"harvested {day}: {summary.pages} pages, {summary.records} records, "
                         f"{summary.requests} requests")
        pages = page_files(out)
        source = metadata_source.endpoint
    records, problems = records_from_xml(pages)
    for file, reason in problems:
        context.log.warning(f"unreadable metadata file {file}: {reason}")
    rows = write_metadata(store, day, records)
    compacted = 0
    if config.compact_after and len(metadata_files(store)) >= config.compact_after:
        compacted = compact_metadata(store)
        context.log.info(f"compacted {compacted} metadata files")
    cols = ["id", "primary_category", "title", "datestamp", "deleted"]
    preview = records.select(cols).slice(0, 5).to_pylist() if records.num_rows else []
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(store.uri(f"metadata/harvest/{day}.parquet")), "rows": rows,
        "deleted_records": sum(records.column("deleted").to_pylist()), "source": source,
        "unreadable_files": len(problems), "files_compacted": compacted, "preview": dg.MetadataValue.md(md_table(preview)),
    })
