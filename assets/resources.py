"""Resources: where the sources are, where the lake is, what hardware to use.

Each is a `ConfigurableResource` whose defaults come from environment variables, so the same code runs
on the embedded sample bucket (the default), a local mirror, or s3://arxiv with a MinIO/S3 data root.

| variable                   | default              | meaning                                            |
|----------------------------|----------------------|----------------------------------------------------|
| ARXIV_FORGE_BUCKET         | var/sample-bucket    | source bucket: a directory, file://DIR, s3://arxiv |
| ARXIV_FORGE_ENDPOINT_URL   | (none)               | S3-compatible endpoint for the bucket (MinIO)      |
| ARXIV_FORGE_DATA           | var/data             | data root (a directory, or s3://bucket/prefix)     |
| ARXIV_FORGE_DATA_ENDPOINT  | (none)               | S3-compatible endpoint for the data root           |
| ARXIV_FORGE_OAI            | bucket               | OAI-PMH endpoint URL, or `bucket` to read the      |
|                            |                      | bucket's own metadata/ XML (sample bucket)         |
| ARXIV_FORGE_DEVICE         | auto                 | auto (CUDA if present, else CPU), cpu, cuda        |
| ARXIV_FORGE_WORKERS        | 0                    | extraction processes per chunk (0 = all cores)     |
"""

import os
from pathlib import Path

import dagster as dg

from pipeline.source.bucket import Bucket, open_bucket


def _env(name: str, default: str | None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


class SourceBucket(dg.ConfigurableResource):
    """The arXiv source bucket (s3://arxiv requester-pays, a MinIO mirror, or a local directory)."""

    url: str = _env("ARXIV_FORGE_BUCKET", "var/sample-bucket")
    endpoint_url: str | None = _env("ARXIV_FORGE_ENDPOINT_URL", None)
    requester_pays: bool | None = None  # None: on for the `arxiv` bucket, off elsewhere

    def open(self) -> Bucket:
        return open_bucket(self.url, endpoint_url=self.endpoint_url, requester_pays=self.requester_pays)

    def local_metadata_dir(self) -> Path | None:
        """`metadata/` of a local bucket (the sample bucket ships its OAI-PMH pages there)."""
        path = self.open().local_path("metadata")
        return path if path is not None and path.is_dir() else None


class DataLake(dg.ConfigurableResource):
    """The data root that holds chunks, tables, shards, corpora and models."""

    root: str = _env("ARXIV_FORGE_DATA", "var/data")
    endpoint_url: str | None = _env("ARXIV_FORGE_DATA_ENDPOINT", None)

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    def local(self, *parts: str) -> Path:
        """A local working path under the root (chunks, shards, checkpoints live on local disk)."""
        root = self.root.removeprefix("file://") if self.is_local else _env("ARXIV_FORGE_SCRATCH", "var/scratch")
        path = Path(root).joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


class MetadataSource(dg.ConfigurableResource):
    """Where per-paper metadata comes from: arXiv's OAI-PMH endpoint, or the bucket's own XML pages."""

    endpoint: str = _env("ARXIV_FORGE_OAI", "bucket")
    min_interval: float = 3.0  # arXiv asks for at most one request every 3 s

    @property
    def from_bucket(self) -> bool:
        return self.endpoint == "bucket"


class Compute(dg.ConfigurableResource):
    """Hardware choices: training device and extraction parallelism."""

    device: str = _env("ARXIV_FORGE_DEVICE", "auto")
    workers: int = int(_env("ARXIV_FORGE_WORKERS", "0"))

    def extract_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


def default_resources() -> dict:
    return {
        "bucket": SourceBucket(),
        "lake": DataLake(),
        "metadata_source": MetadataSource(),
        "compute": Compute(),
    }
