"""Resources: where the sources are, where the lake is, what hardware to use.

Each is a `ConfigurableResource`. `default_resources()` sets a field from `dg.EnvVar(NAME)` when NAME is set
where the code location loads (so the value is read when a run starts, in the run's own process or pod, and
secrets are not shown in the UI), else from the default below; every field can also be set in the
launchpad's resource config.

| variable                   | default              | meaning                                            |
|----------------------------|----------------------|----------------------------------------------------|
| ARXIV_FORGE_BUCKET         | var/sample-bucket    | source bucket: a directory, file://DIR, s3://arxiv |
| ARXIV_FORGE_ENDPOINT_URL   | (none)               | S3-compatible endpoint for the bucket (MinIO)      |
| ARXIV_FORGE_DATA           | var/data             | data root (a directory, or s3://bucket/prefix)     |
| ARXIV_FORGE_DATA_ENDPOINT  | (none)               | S3-compatible endpoint for the data root           |
| ARXIV_FORGE_DATA_KEY       | (AWS chain)          | access key / secret for the data root, when it     |
| ARXIV_FORGE_DATA_SECRET    |                      | needs other credentials than the source bucket     |
| ARXIV_FORGE_SCRATCH        | var/scratch          | local cache (disposable between runs)              |
| ARXIV_FORGE_OAI            | bucket               | OAI-PMH endpoint URL, or `bucket` to read the      |
|                            |                      | bucket's own metadata/ XML (sample bucket)         |
| ARXIV_FORGE_DEVICE         | auto                 | auto (CUDA if present, else CPU), cpu, cuda        |
| ARXIV_FORGE_WORKERS        | 0                    | extraction processes per chunk (0 = all cores)     |
"""

import os
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from pipeline.dataset.lake import Lake
from pipeline.source.bucket import Bucket, open_bucket


def _setting(name: str, default=None):
    """dg.EnvVar(name) when the variable is set (read at run start, hidden in the UI), else the default."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else default


class SourceBucket(dg.ConfigurableResource):
    """The arXiv source bucket (s3://arxiv requester-pays, a MinIO mirror, or a local directory)."""

    url: str = "var/sample-bucket"
    endpoint_url: str | None = None
    requester_pays: bool | None = None  # None: on for the `arxiv` bucket, off elsewhere

    def open(self) -> Bucket:
        return open_bucket(self.url, endpoint_url=self.endpoint_url, requester_pays=self.requester_pays)

    def local_metadata_dir(self) -> Path | None:
        """`metadata/` of a local bucket (the sample bucket ships its OAI-PMH pages there)."""
        path = self.open().local_path("metadata")
        return path if path is not None and path.is_dir() else None


class DataLake(dg.ConfigurableResource):
    """The data root: every table, metadata file, shard, corpus, checkpoint and sample grid lives here."""

    root: str = "var/data"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    scratch: str | None = None  # local cache; None: ARXIV_FORGE_SCRATCH or var/scratch
    _lake: Lake | None = PrivateAttr(default=None)

    def lake(self) -> Lake:
        """The one Lake object of this run (built once, with the endpoint and credentials)."""
        if self._lake is None:
            self._lake = Lake(self.root, endpoint_url=self.endpoint_url, access_key=self.access_key_id,
                              secret_key=self.secret_access_key, scratch=self.scratch)
        return self._lake


class MetadataSource(dg.ConfigurableResource):
    """Where per-paper metadata comes from: arXiv's OAI-PMH endpoint, or the bucket's own XML pages."""

    endpoint: str = "bucket"
    min_interval: float = 3.0  # arXiv asks for at most one request every 3 s

    @property
    def from_bucket(self) -> bool:
        return self.endpoint == "bucket"


class Compute(dg.ConfigurableResource):
    """Hardware choices: training device and extraction parallelism."""

    device: str = "auto"
    workers: int = 0

    def extract_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


def default_resources() -> dict:
    return {
        "bucket": SourceBucket(url=_setting("ARXIV_FORGE_BUCKET", "var/sample-bucket"),
                               endpoint_url=_setting("ARXIV_FORGE_ENDPOINT_URL")),
        "lake": DataLake(root=_setting("ARXIV_FORGE_DATA", "var/data"),
                         endpoint_url=_setting("ARXIV_FORGE_DATA_ENDPOINT"),
                         access_key_id=_setting("ARXIV_FORGE_DATA_KEY"),
                         secret_access_key=_setting("ARXIV_FORGE_DATA_SECRET"),
                         scratch=_setting("ARXIV_FORGE_SCRATCH")),
        "metadata_source": MetadataSource(endpoint=_setting("ARXIV_FORGE_OAI", "bucket")),
        "compute": Compute(device=_setting("ARXIV_FORGE_DEVICE", "auto"),
                           workers=dg.EnvVar.int("ARXIV_FORGE_WORKERS") if os.environ.get("ARXIV_FORGE_WORKERS")
                           else 0),
    }
