"""Atomic, idempotent, hive-partitioned Parquet output of one chunk's extraction.

Layout under the data root (a `Lake`: a local directory or `s3://bucket/prefix`):

    papers/chunk=<C>/part-0.parquet
    text/chunk=<C>/part-0.parquet
    figures/primary_category=<cat>/chunk=<C>/part-0.parquet
    figure_hashes/chunk=<C>/part-0.parquet   first figure of each distinct image (for lake-wide duplicate_of)
    _manifests/<C>.json          the files the chunk's last completed run wrote, with row counts

How a run stays invisible until it is complete, and a rerun replaces the old output:
1. Rows stream into Parquet files in a staging folder (`<root>/_staging/...` locally, a local temp dir for
   S3). Names starting with `_` or `.` are ignored by `pyarrow.dataset`, so readers never see them.
2. `commit()` moves every file to its final name (`os.replace` on the same filesystem: atomic per file; on
   S3 an upload, which becomes visible only when complete), writes the manifest, then deletes files the
   previous run of the same chunk wrote that this run did not (e.g. a category that lost its figures).
A run killed before commit leaves only staging junk, which the next run of that chunk removes.
"""

import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.dataset.lake import Lake, as_lake
from pipeline.dataset.schemas import (
    EXTRACTOR_VERSION,
    PARTITIONS,
    ROWS_PER_GROUP,
    SCHEMAS,
    UNKNOWN_CATEGORY,
    file_schema,
    parquet_options,
)
from pipeline.errors import UserError

log = logging.getLogger(__name__)
STAGING_DIR = "_staging"
MANIFEST_DIR = "_manifests"
_STALE_STAGING_S = 24 * 3600


def partition_dir(table: str, values: dict[str, str]) -> str:
    """Relative folder of a partition, e.g. figures/primary_category=cs.CV/chunk=arXiv_src_2301_001."""
    parts = [table]
    for key in PARTITIONS[table]:
        value = str(values[key])
        if not value or "/" in value or value.startswith((".", "_")):
            raise ValueError(f"bad partition value {key}={value!r}")
        parts.append(f"{key}={value}")
    return "/".join(parts)


class _Stream:
    """Rows of one output file: buffered as dicts, flushed one row group at a time."""

    def __init__(self, table: str, path: Path):
        self.table = table
        self.path = path
        self.schema = file_schema(table)
        self.rows: list[dict] = []
        self.count = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= ROWS_PER_GROUP[self.table]:
            self.flush()

    def flush(self) -> None:
        if not self.rows and self.writer is not None:
            return
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(str(self.path), self.schema, **parquet_options(self.table))
        if self.rows:
            batch = pa.Table.from_pylist(self.rows, schema=self.schema)
            self.writer.write_table(batch, row_group_size=ROWS_PER_GROUP[self.table])
            self.count += len(self.rows)
            self.rows = []

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


class ChunkWriter:
    """Writes one chunk's papers/figures/text; nothing is visible until `commit()`.

    Use as a context manager: leaving the block with an exception aborts (staging removed, old output kept).
    """

    def __init__(self, lake: "Lake | str | Path", chunk: str):
        if not chunk or "/" in chunk or chunk.startswith((".", "_")):
            raise UserError(f"bad chunk name {chunk!r}: expected a tar stem like arXiv_src_2301_001")
        self.chunk = chunk
        self.lake = as_lake(lake)
        self.fs, self.base, self.local = self.lake.fs, self.lake.base, self.lake.is_local
        token = f"{chunk}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        if self.local:
            staging_parent = Path(self.base) / STAGING_DIR
            staging_parent.mkdir(parents=True, exist_ok=True)
            self._clean_stale_staging(staging_parent)
            self.staging = staging_parent / token
            self.staging.mkdir()
        else:
            self.staging = Path(tempfile.mkdtemp(prefix=f"{chunk}.", dir=self.lake.scratch("staging")))
        self.streams: dict[str, _Stream] = {}
        self.done = False
        self.first_of: dict[str, str] = {}  # image sha256 -> first figure id in this chunk
        self.figure_rows = 0

    def _clean_stale_staging(self, parent: Path) -> None:
        """Staging folders of killed runs of this chunk (or of any chunk, once a day old)."""
        now = time.time()
        for entry in parent.iterdir():
            same_chunk = entry.name.startswith(self.chunk + ".")
            try:
                old = now - entry.stat().st_mtime > _STALE_STAGING_S
            except OSError:
                continue
            if same_chunk and not _pid_alive(entry.name) or old:
                shutil.rmtree(entry, ignore_errors=True)

    def _stream(self, table: str, values: dict[str, str]) -> _Stream:
        rel = partition_dir(table, values) + "/part-0.parquet"
        stream = self.streams.get(rel)
        if stream is None:
            stream = self.streams[rel] = _Stream(table, self.staging / rel)
        return stream

    def add_paper(self, row: dict) -> None:
        row = {**row, "chunk": self.chunk}
        row.setdefault("extractor_version", EXTRACTOR_VERSION)
        self._stream("papers", row).add(row)

    def add_figure(self, row: dict) -> None:
        """Rows must come in the chunk's order (papers in tar order, figures in document order): the first
        row with an image is what later rows with the same image are a `duplicate_of`."""
        row = {**row, "chunk": self.chunk}
        row["primary_category"] = row.get("primary_category") or UNKNOWN_CATEGORY
        sha = row.get("image_sha256")
        row["duplicate_of"] = self.first_of.get(sha) if sha else None
        if sha and sha not in self.first_of:
            self.first_of[sha] = row["figure_id"]
            self._stream("figure_hashes", {"chunk": self.chunk}).add({
                "chunk": self.chunk, "image_sha256": sha, "figure_id": row["figure_id"],
                "position": self.figure_rows})
        self.figure_rows += 1
        self._stream("figures", row).add(row)

    def add_text(self, row: dict) -> None:
        row = {**row, "chunk": self.chunk}
        self._stream("text", row).add(row)

    def _ensure_tables(self) -> None:
        """Papers, text and figure_hashes always get a file (maybe empty), so the chunk's presence is visible."""
        for table in ("papers", "text", "figure_hashes"):
            self._stream(table, {"chunk": self.chunk})

    def commit(self) -> dict:
        """Publish the staged files, write the manifest, drop the previous run's leftovers. Returns the manifest."""
        self._ensure_tables()
        for stream in self.streams.values():
            stream.close()
        files = sorted(self.streams)
        rows = {t: sum(s.count for s in self.streams.values() if s.table == t) for t in SCHEMAS}
        old = self.read_manifest()
        for rel in files:
            self._publish(self.staging / rel, rel)
        manifest = {"chunk": self.chunk, "files": files, "rows": rows, "extractor_version": EXTRACTOR_VERSION,
                    "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self._write_manifest(manifest)
        stale = set(old.get("files", []) if old else []) - set(files)
        for rel in sorted(stale | self._unlisted_files(set(files))):
            with contextlib.suppress(OSError):
                self.lake.delete(rel)
        self._cleanup()
        self.done = True
        return manifest

    def _unlisted_files(self, keep: set[str]) -> set[str]:
        """Files of this chunk under papers/, text/ and figure_hashes/ not written now (e.g. from a run without a
        manifest)."""
        found = set()
        for table in ("papers", "text", "figure_hashes"):
            rel_dir = partition_dir(table, {"chunk": self.chunk})
            info = self.fs.get_file_info(pafs.FileSelector(f"{self.base}/{rel_dir}", allow_not_found=True))
            for fi in info:
                rel = fi.path[len(self.base) + 1:]
                if fi.type == pafs.FileType.File and rel not in keep and not Path(rel).name.startswith((".", "_")):
                    found.add(rel)
        return found

    def _publish(self, src: Path, rel: str) -> None:
        if self.local:  # same filesystem: a rename, atomic per file
            dest = Path(self.lake.path(rel))
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
        else:  # one upload of a complete file: the object appears only once complete
            self.lake.upload(src, rel)

    def manifest_key(self) -> str:
        return f"{MANIFEST_DIR}/{self.chunk}.json"

    def read_manifest(self) -> dict | None:
        try:
            return self.lake.read_json(self.manifest_key())
        except (OSError, ValueError):
            return None

    def _write_manifest(self, manifest: dict) -> None:
        self.lake.write_json(self.manifest_key(), manifest)

    def _cleanup(self) -> None:
        for stream in self.streams.values():
            if stream.writer is not None and not self.done:
                with contextlib.suppress(Exception):
                    stream.writer.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self) -> None:
        self._cleanup()

    def __enter__(self) -> "ChunkWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.done:
            self.abort()


def _pid_alive(staging_name: str) -> bool:
    """Staging folders are named <chunk>.<pid>.<token>; a live pid means a run may still be writing."""
    try:
        pid = int(staging_name.rsplit(".", 2)[-2])
        os.kill(pid, 0)
        return True
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
