"""Atomic file writes: readers see the old file or the new one, never a part of either."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, content: bytes | str | Callable[[Path], Any], *, fsync: bool = True,
                 mode: int = 0o644) -> Path:
    """Replace `path` atomically with `content`: bytes, a str (written as UTF-8), or a function that writes the
    temporary file it is given (`torch.save`, `fig.savefig`, `img.save`, `shutil.copyfile`, ...; note that
    `np.save` appends `.npy` to a path without it, so give it an open file: `open(tmp, "wb")`).

    The temporary file is a hidden sibling (`.<name>.<random>.tmp`, same filesystem, so `os.replace` is atomic),
    is flushed to the disk before the rename unless `fsync=False` (a cache that may be lost), gets `mode`
    (mkstemp makes 0600 files; 0644 because what we write is data to share, e.g. served by a web server),
    and is removed when writing fails. Parent folders are created. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content.encode("utf-8") if isinstance(content, str) else content)
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
