"""Sensors: new chunks in the manifest become chunk partitions and extraction runs."""

import dagster as dg

from assets.jobs import chunk_job
from assets.partitions import chunk_partitions
from assets.resources import SourceBucket


def new_chunk_requests(existing: set[str], manifest) -> tuple[list[str], list[dg.RunRequest]]:
    """Chunks in the manifest that are not partitions yet (oldest first) and one run request each."""
    new = [e.chunk for e in manifest.sorted() if e.chunk not in existing]
    return new, [dg.RunRequest(partition_key=c, run_key=f"{c}:{manifest.by_chunk()[c].md5sum}") for c in new]


@dg.sensor(job=chunk_job, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.STOPPED)
def new_chunks_sensor(context: dg.SensorEvaluationContext, bucket: SourceBucket) -> dg.SensorResult:
    """Reads the manifest (one small request); adds new chunks as partitions and requests their extraction."""
    manifest = bucket.open().load_manifest()
    existing = set(context.instance.get_dynamic_partitions(chunk_partitions.name))
    new, requests = new_chunk_requests(existing, manifest)
    if not new:
        return dg.SensorResult(skip_reason=f"no new chunks ({len(existing)} known, manifest {manifest.timestamp})")
    context.log.info(f"{len(new)} new chunks: {', '.join(new[:5])}{' ...' if len(new) > 5 else ''}")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[chunk_partitions.build_add_request(new)],
        cursor=manifest.timestamp,
    )
