"""Chunk download: stream a chunk tar from the bucket to a local directory, md5-verified and resumable.

    path = download_chunk(bucket, entry, Path("var/chunks"))     # -> var/chunks/arXiv_src_2301_004.tar

Files next to the final `<chunk>.tar`:
  <chunk>.tar.part   the download in progress; a later call resumes it with a range request
  <chunk>.tar.md5    sidecar "md5 size mtime_ns" written after verification, so a complete file is
                     recognised without re-hashing 500 MB; stale if the tar's size or mtime changed
  <chunk>.tar.lock   flock'ed while downloading, so two processes never write the same .part

The final name appears only via os.replace from a .part whose md5 matched the manifest: a partial file is
never mistaken for a complete one. Throttling, 5xx and dropped connections are retried with exponential
backoff; an md5 mismatch deletes the .part and downloads again, up to `retries` times.

`open_chunk(bucket, entry)` reads a chunk in place instead: the local file itself for a local bucket, or
an S3 streaming body (usable by `tarfile` in stream mode `r|`) that is md5-checked when fully read.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from forge_common import atomic_write
from pipeline.errors import UserError
from pipeline.source.bucket import Bucket, MissingKeyError, TransientBucketError
from pipeline.source.manifest import ManifestEntry, md5_file

log = logging.getLogger(__name__)

BLOCK = 1 << 20
MAX_BACKOFF = 60.0
# (bytes done, bytes total); the first call is the starting point. A forge_common.ProgressLog(start=None,
# unit="MB", scale=1e6) logs it with rate and ETA counting only this run's bytes.
Progress = Callable[[int, int], object]


class ChunkIntegrityError(UserError):
    """A chunk's bytes do not match the manifest md5, after retries."""


def download_chunk(
    bucket: Bucket,
    entry: ManifestEntry,
    dest_dir: str | Path,
    *,
    retries: int = 5,
    backoff: float = 1.0,
    progress: Progress | None = None,
) -> Path:
    """Download `entry.filename` to `dest_dir/<chunk>.tar` (or return it at once if already complete)."""
    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the download directory {dest_dir}: {exc.strerror or exc}") from None
    if not os.access(dest_dir, os.W_OK):
        raise UserError(f"cannot write to the download directory {dest_dir}: choose another with --dest")
    final = dest_dir / f"{entry.chunk}.tar"
    part = final.with_name(final.name + ".part")
    with _locked(final.with_name(final.name + ".lock")):
        if _is_complete(final, entry):
            log.info("%s: already complete (%d bytes, md5 ok) at %s", entry.chunk, entry.size, final)
            return final
        _check_space(dest_dir, entry.size - (part.stat().st_size if part.exists() else 0), final)
        failures = mismatches = 0
        while True:
            try:
                digest = _fetch(bucket, entry, part, progress)
            except TransientBucketError as exc:
                failures += 1
                if failures > retries:
                    raise UserError(
                        f"giving up on {bucket.key_url(entry.filename)} after {retries + 1} attempts ({exc}); "
                        f"the partial download {part} is kept and the next run resumes it"
                    ) from None
                delay = min(backoff * 2 ** (failures - 1), MAX_BACKOFF)
                log.warning("%s: %s; retry %d/%d in %.1f s", entry.chunk, exc, failures, retries, delay)
                time.sleep(delay)
                continue
            if digest == entry.md5sum:
                break
            mismatches += 1
            got = part.stat().st_size if part.exists() else 0
            part.unlink(missing_ok=True)
            if mismatches > retries:
                raise ChunkIntegrityError(
                    f"{bucket.key_url(entry.filename)}: md5 {digest} ({got} bytes) does not match the manifest's "
                    f"{entry.md5sum} ({entry.size} bytes) after {mismatches} downloads; the object or the manifest "
                    f"changed (arXiv repacks chunks): re-read the manifest and try again"
                )
            log.warning("%s: md5 mismatch (got %s, want %s); downloading again (%d/%d)",
                        entry.chunk, digest, entry.md5sum, mismatches, retries)
        _fsync(part)
        os.replace(part, final)
        _write_sidecar(final, entry.md5sum)
        _fsync_dir(dest_dir)
        log.info("%s: %d bytes, md5 ok -> %s", entry.chunk, entry.size, final)
        return final


def _fetch(bucket: Bucket, entry: ManifestEntry, part: Path, progress: Progress | None) -> str:
    """Bring `part` up to `entry.size` bytes (resuming what is there); return the md5 of the whole file."""
    have = part.stat().st_size if part.exists() else 0
    if have > entry.size:  # not ours, or the object shrank: start over
        log.warning("%s is larger than the manifest size; starting over", part)
        part.unlink()
        have = 0
    md5 = hashlib.md5()
    if have:
        # Hash what is already on disk once; the rest is hashed as it streams in.
        with open(part, "rb") as fh:
            while block := fh.read(BLOCK):
                md5.update(block)
        log.info("%s: resuming at %d of %d bytes", entry.chunk, have, entry.size)
    if progress:
        progress(have, entry.size)  # the baseline: a resumed download's rate counts only new bytes
    if have < entry.size:
        with bucket.open(entry.filename, start=have) as src, open(part, "ab") as out:
            done = have
            while block := src.read(BLOCK):
                out.write(block)
                md5.update(block)
                done += len(block)
                if progress:
                    progress(done, entry.size)
                if done > entry.size:
                    break  # longer than the manifest says: the md5 check rejects it
        if done < entry.size:
            raise TransientBucketError(f"stream ended at {done} of {entry.size} bytes")
    return md5.hexdigest()


def _is_complete(final: Path, entry: ManifestEntry) -> bool:
    """True if `final` is the manifest's bytes; uses the sidecar when it is fresh, else hashes once."""
    if not final.exists():
        return False
    st = final.stat()
    if st.st_size != entry.size:
        log.warning("%s has %d bytes, manifest says %d: downloading again", final, st.st_size, entry.size)
        _discard(final)
        return False
    side = _read_sidecar(final)
    if side == (entry.md5sum, st.st_size, st.st_mtime_ns):
        return True
    digest = md5_file(final)
    if digest == entry.md5sum:
        _write_sidecar(final, digest)
        return True
    log.warning("%s md5 %s differs from the manifest's %s: downloading again", final, digest, entry.md5sum)
    _discard(final)
    return False


def _discard(final: Path) -> None:
    final.unlink(missing_ok=True)
    final.with_name(final.name + ".md5").unlink(missing_ok=True)


def _read_sidecar(final: Path) -> tuple[str, int, int] | None:
    try:
        md5, size, mtime = final.with_name(final.name + ".md5").read_text().split()
        return md5, int(size), int(mtime)
    except (OSError, ValueError):
        return None


def _write_sidecar(final: Path, md5: str) -> None:
    st = final.stat()
    side = final.with_name(final.name + ".md5")
    atomic_write(side, f"{md5} {st.st_size} {st.st_mtime_ns}\n")


def _check_space(dest_dir: Path, need: int, final: Path) -> None:
    free = _free_bytes(dest_dir)
    if free is not None and need > free:
        raise UserError(f"not enough disk space for {final}: need {need} bytes, {free} free in {dest_dir}")


def _free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is downloading %s; waiting for it", lock_path.stem)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)


# --------------------------------------------------------------------------------------------------
# Reading a chunk in place


class HashingReader:
    """Read-through wrapper that md5s every byte read; `drain()` reads the rest (tar padding) too."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._md5 = hashlib.md5()
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._md5.update(data)
        self.bytes_read += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(BLOCK):
            pass

    def hexdigest(self) -> str:
        return self._md5.hexdigest()

    def close(self) -> None:
        self._raw.close()


@contextlib.contextmanager
def open_chunk(bucket: Bucket, entry: ManifestEntry, *, verify: bool = True) -> Iterator[Path | BinaryIO]:
    """A chunk to read without a local copy: the file itself (local bucket), else a streaming body.

    Give the result to `pipeline.source.chunk.iter_chunk`. For a stream with `verify`, the bytes are
    md5-hashed as they are read; on a clean exit the rest is drained and a mismatch raises
    ChunkIntegrityError (results already consumed came from a corrupt or changed object).
    A local file is not re-hashed here (the manifest md5 of a local mirror is checked by download).
    """
    path = bucket.local_path(entry.filename)
    if path is not None:
        if not path.is_file():
            raise MissingKeyError(f"{bucket.key_url(entry.filename)} does not exist")
        yield path
        return
    reader = HashingReader(bucket.open(entry.filename))
    try:
        yield reader
        if verify:
            reader.drain()
            if reader.bytes_read != entry.size or reader.hexdigest() != entry.md5sum:
                raise ChunkIntegrityError(
                    f"{bucket.key_url(entry.filename)} read in place: {reader.bytes_read} bytes with md5 "
                    f"{reader.hexdigest()}, the manifest says {entry.size} bytes with md5 {entry.md5sum}"
                )
    finally:
        reader.close()

