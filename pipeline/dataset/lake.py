"""The Lake: the one way any module reads or writes lake data (tables, metadata, shards, corpora, models).

A Lake is built once from the data root's URL, the S3 endpoint and the credentials:

    Lake("var/data")                                          a local directory (or file://DIR)
    Lake("s3://lake/arxiv", endpoint_url="http://minio:9000")  any S3-compatible store (MinIO, AWS, moto)

Both behave the same: every object is addressed by a relative key ("figures/primary_category=cs.CV/..."),
every write is atomic (a local temp file then `os.replace`; on S3 one PUT of a complete file, which S3
makes visible only once complete), and readers never see half an object. Keys whose last part starts with
`.` or `_`, and everything under `_tmp/`, are invisible to `pyarrow.dataset` readers.

Local disk is only a cache (`scratch`): every run may start on a fresh machine with an empty disk, next to
other runs, so nothing a later run needs is kept there. Files fetched from the lake are cached under
`scratch/<root hash>/` with the remote size and modification time beside them, so a second fetch of an
unchanged object costs one metadata request and no transfer.
"""

import contextlib
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from forge_common import atomic_write
from pipeline.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_SCRATCH = "var/scratch"


@dataclass(frozen=True)
class LakeFile:
    key: str  # relative to the root, '/'-separated
    size: int
    mtime: float  # seconds since the epoch (S3: LastModified)

    @property
    def stamp(self) -> str:
        """Changes whenever the object is rewritten (size and modification time)."""
        return f"{self.size}-{int(self.mtime * 1000)}"


def _s3_filesystem(endpoint_url: str | None, access_key: str | None, secret_key: str | None,
                   region: str | None) -> pafs.S3FileSystem:
    kwargs: dict = {"region": region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
                    or "us-east-1"}
    if endpoint_url:  # MinIO, a moto server in tests
        scheme, _, host = endpoint_url.rpartition("://")
        kwargs.update(endpoint_override=host, scheme=scheme or "https")
    if access_key and secret_key:
        kwargs.update(access_key=access_key, secret_key=secret_key)
    # Fail fast on an unreachable endpoint instead of retrying for minutes.
    kwargs["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=5)
    return pafs.S3FileSystem(**kwargs)


class Lake:
    """A data root (local directory or S3 prefix) with atomic object I/O and a local read cache."""

    def __init__(self, root: str | os.PathLike, *, endpoint_url: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, region: str | None = None,
                 scratch: str | os.PathLike | None = None):
        root = str(root).strip()
        if not root:
            raise UserError("the data root is empty; set ARXIV_FORGE_DATA to a directory or s3://bucket/prefix")
        self.endpoint_url = endpoint_url or None
        if root.startswith("s3://"):
            bucket_prefix = root[len("s3://"):].strip("/")
            if not bucket_prefix:
                raise UserError(f"data root {root!r} names no bucket; use s3://bucket/prefix")
            try:
                self.fs: pafs.FileSystem = _s3_filesystem(self.endpoint_url, access_key, secret_key, region)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises OSError/ArrowInvalid for bad settings
                raise UserError(f"cannot open data root {root}: {exc}; check the URL, endpoint and credentials") \
                    from exc
            self.base = bucket_prefix
            self.url = f"s3://{bucket_prefix}"
            self.is_local = False
        else:
            path = Path(root.removeprefix("file://")).expanduser().resolve()
            self.fs = pafs.LocalFileSystem()
            self.base = str(path)
            self.url = str(path)
            self.is_local = True
        scratch_root = Path(scratch or os.environ.get("ARXIV_FORGE_SCRATCH") or DEFAULT_SCRATCH).expanduser()
        tag = hashlib.sha1(f"{self.url}|{self.endpoint_url}".encode()).hexdigest()[:10]
        self.scratch_root = scratch_root.resolve() / tag

    def __repr__(self) -> str:
        where = f" via {self.endpoint_url}" if self.endpoint_url else ""
        return f"Lake({self.url}{where})"

    # --- addressing ----------------------------------------------------------------------------------------

    def path(self, key: str) -> str:
        """The object's path inside `self.fs` (for pyarrow.dataset and pyarrow.parquet)."""
        key = key.strip("/")
        if not key:
            return self.base
        if ".." in key.split("/"):
            raise ValueError(f"bad lake key {key!r}")
        return f"{self.base}/{key}"

    def uri(self, key: str = "") -> str:
        """What to show a person: s3://bucket/prefix/key or the local path."""
        return f"{self.url}/{key.strip('/')}" if key else self.url

    def key_of(self, path: str) -> str:
        return path[len(self.base):].strip("/")

    # --- reading -------------------------------------------------------------------------------------------

    def stat(self, key: str) -> LakeFile | None:
        info = self.fs.get_file_info(self.path(key))
        if info.type != pafs.FileType.File:
            return None
        return LakeFile(key.strip("/"), int(info.size or 0), _mtime(info))

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def files(self, prefix: str, *, recursive: bool = True) -> list[LakeFile]:
        """Files under a key prefix (a folder), sorted by key; hidden names (`.x`, `_x`) left out."""
        selector = pafs.FileSelector(self.path(prefix), allow_not_found=True, recursive=recursive)
        out = []
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            key = self.key_of(info.path)
            if any(part.startswith((".", "_")) for part in key[len(prefix.strip("/")):].split("/") if part):
                continue
            out.append(LakeFile(key, int(info.size or 0), _mtime(info)))
        return sorted(out, key=lambda f: f.key)

    def read_bytes(self, key: str) -> bytes:
        try:
            with self.fs.open_input_stream(self.path(key)) as fh:
                return fh.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.uri(key)} not found") from None

    def read_json(self, key: str, default=None):
        try:
            return json.loads(self.read_bytes(key).decode("utf-8"))
        except FileNotFoundError:
            return default

    # --- writing (atomic) ----------------------------------------------------------------------------------

    def write_bytes(self, key: str, data: bytes) -> None:
        """Replace the object atomically: readers see the old one or the new one, never a part."""
        dest = self.path(key)
        if self.is_local:
            # 0644 (not mkstemp's 0600): lake files are data to share (a web server serves the gallery). No
            # fsync per object: the gallery writes thousands of thumbnails; the rename keeps readers safe.
            atomic_write(dest, data, fsync=False, mode=0o644)
        else:  # one complete PUT: S3 shows the object only once the upload has completed
            with self.fs.open_output_stream(dest) as fh:
                fh.write(data)

    def write_json(self, key: str, value) -> None:
        self.write_bytes(key, json.dumps(value, indent=1, sort_keys=True, default=str).encode("utf-8"))

    def upload(self, local: str | os.PathLike, key: str) -> None:
        """Copy a complete local file to the lake atomically (a temp name then rename, or one upload)."""
        local = Path(local)
        dest = self.path(key)
        if self.is_local:
            target = Path(dest)
            if target.resolve() == local.resolve():
                return
            atomic_write(target, lambda tmp: shutil.copyfile(local, tmp), fsync=False)
        else:
            pafs.copy_files(str(local), dest, source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=self.fs)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.path(key))
        if self.is_local:  # S3 has no folders; locally, drop the folders a delete emptied
            folder, root = Path(self.path(key)).parent, Path(self.base)
            while folder != root and root in folder.parents:
                try:
                    folder.rmdir()
                except OSError:
                    break
                folder = folder.parent

    # --- the local cache -----------------------------------------------------------------------------------

    def scratch(self, *parts: str) -> Path:
        """A local working folder for this lake (created); disposable between runs."""
        path = self.scratch_root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fetch(self, key: str, dest: str | os.PathLike | None = None) -> Path:
        """A local file with the object's current content. Local lakes hand out the file itself; S3 objects are
        downloaded to the cache (or `dest`) unless the cached copy has the object's size and mtime."""
        info = self.stat(key)
        if info is None:
            raise FileNotFoundError(f"{self.uri(key)} not found")
        if self.is_local and dest is None:
            return Path(self.path(key))
        target = Path(dest) if dest is not None else self.scratch("cache") / key
        stamp_file = target.with_name(f".{target.name}.stamp")
        if target.exists() and stamp_file.exists() and stamp_file.read_text() == info.stamp:
            return target

        def copy(tmp: Path) -> None:
            if self.is_local:
                shutil.copyfile(self.path(key), tmp)
            else:
                pafs.copy_files(self.path(key), str(tmp), source_filesystem=self.fs,
                                destination_filesystem=pafs.LocalFileSystem())

        atomic_write(target, copy, fsync=False)  # the local cache: it may vanish, it must never be half a file
        stamp_file.write_text(info.stamp)
        return target

    def fetch_dir(self, prefix: str, dest: str | os.PathLike) -> list[Path]:
        """Every file under `prefix` into `dest` (same relative names); unchanged cached files are not sent."""
        dest = Path(dest)
        out = []
        for f in self.files(prefix):
            rel = f.key[len(prefix.strip("/")):].strip("/")
            out.append(self.fetch(f.key, dest / rel))
        return out

    def upload_dir(self, local: str | os.PathLike, prefix: str, names: list[str] | None = None) -> list[str]:
        """Upload the files of a local folder (or only `names`) under `prefix`; returns the keys written."""
        local = Path(local)
        keys = []
        for path in sorted(local.iterdir()):
            if not path.is_file() or path.name.startswith(".") or (names is not None and path.name not in names):
                continue
            key = f"{prefix.strip('/')}/{path.name}"
            self.upload(path, key)
            keys.append(key)
        return keys


def lake_from_env(root: str | os.PathLike | None = None) -> Lake:
    """The Lake the environment describes (the CLI's way): ARXIV_FORGE_DATA (default var/data),
    ARXIV_FORGE_DATA_ENDPOINT, ARXIV_FORGE_DATA_KEY / ARXIV_FORGE_DATA_SECRET (else the AWS chain),
    ARXIV_FORGE_SCRATCH."""
    env = os.environ.get
    return Lake(root or env("ARXIV_FORGE_DATA") or "var/data",
                endpoint_url=env("ARXIV_FORGE_DATA_ENDPOINT") or env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL"),
                access_key=env("ARXIV_FORGE_DATA_KEY"), secret_key=env("ARXIV_FORGE_DATA_SECRET"))


def as_lake(lake_or_root: "Lake | str | os.PathLike") -> Lake:
    """A Lake as given, or the environment's Lake for that root path/URL (the CLI's and tests' shorthand)."""
    return lake_or_root if isinstance(lake_or_root, Lake) else lake_from_env(lake_or_root)


def _mtime(info: pafs.FileInfo) -> float:
    m = info.mtime
    if m is None:
        return 0.0
    return m.timestamp() if hasattr(m, "timestamp") else float(m)

