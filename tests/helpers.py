"""Builders the tests share: tar archives in memory (a paper's source bundle) and chunk tars on disk (laid out
like arXiv's `src/arXiv_src_YYMM_NNN.tar`). Imported as `helpers` (tests/ is on sys.path, as for s3server)."""

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path


def _add_files(tf: tarfile.TarFile, files: Iterable[tuple[str, bytes]]) -> None:
    for name, data in files:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def tar_bytes(files: dict[str, bytes], *, gzip: bool = False, extra: Iterable[tarfile.TarInfo] = ()) -> bytes:
    """A tar archive of `files` (name -> bytes), gzipped when asked, then any `extra` members (links, dirs)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gzip else "w") as tf:
        _add_files(tf, files.items())
        for info in extra:
            tf.addfile(info)
    return buf.getvalue()


def write_chunk(path: Path, members: dict[str, bytes] | list[tuple[str, bytes]], dirs: tuple[str, ...] = ()) -> Path:
    """A chunk tar at `path`: directory entries `dirs` first, then the members (name -> bytes, in order)."""
    with tarfile.open(path, "w") as tf:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            tf.addfile(info)
        _add_files(tf, members.items() if isinstance(members, dict) else members)
    return path


def targz(files: dict[str, bytes], extra: Iterable[tarfile.TarInfo] = ()) -> bytes:
    """A gzipped tar of `files`: a paper's source bundle as a chunk holds it (`YYMM/<id>.gz`)."""
    return tar_bytes(files, gzip=True, extra=extra)
