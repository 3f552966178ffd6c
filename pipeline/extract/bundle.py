"""Read one paper's source bundle into memory, safely.

A bundle is what arXiv stores for a paper: a gzipped tar, a gzipped single file (TeX, PostScript, HTML, a
withdrawal stub), a PDF, or, on a developer's disk, a plain tar, a .tex file or a directory. `read_bundle`
turns any of these into `Bundle.files`, a dict of normalised relative POSIX paths to bytes.

Nothing is ever written to disk: tar members are read straight from the (capped) decompression stream.
Only regular files are kept. Links, devices, fifos, absolute names, `..` components, macOS metadata
(`._*`, `__MACOSX/`, `.DS_Store`) are skipped, and so is everything past the caps on member count, member
size and total decompressed size; every skip is recorded in `Bundle.skipped` with a reason. A gzip bomb
costs at most 2 x `max_total_bytes` of decompression before it stops.
"""

import io
import os
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import UserError
from pipeline.extract.limits import DEFAULT_LIMITS, Limits
from pipeline.source.chunk import detect_format, gzip_fname

GZIP_MAGIC = b"\x1f\x8b"
_HEAD = 4096  # bytes sniffed to detect the format of (decompressed) content
_READ = 1 << 16  # decompression step


@dataclass
class Bundle:
    files: dict[str, bytes]  # normalised relative POSIX paths -> content; only safe regular files
    skipped: list[tuple[str, str]]  # (member name as in archive, reason)
    source_format: str  # tar | tex | pdf | ps | html | dir | withdrawn | empty | unknown
    error: str | None = None  # set when nothing usable could be read (the whole bundle failed)
    total_bytes: int = field(default=0)  # decompressed bytes kept in `files`


class _CapExceeded(Exception):
    """The decompressed stream went past the bundle's total-size cap."""


class _GunzipReader(io.RawIOBase):
    """Streaming gunzip with a hard cap on output bytes; handles concatenated gzip members."""

    def __init__(self, src: BinaryIO, cap: int):
        self._src = src
        self._cap = cap
        self._out = 0
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""  # compressed input not yet consumed
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        while not self._done:
            if self._d.eof:  # one gzip member ended: another may follow (concatenated gzip)
                rest = self._d.unused_data or self._src.read(_READ)
                if len(rest) < 2:
                    rest += self._src.read(_READ)
                if not rest.startswith(GZIP_MAGIC):  # end of data; trailing padding is ignored
                    self._done = True
                    break
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._pending = rest
            if not self._pending:
                self._pending = self._src.read(_READ)
                if not self._pending:
                    raise EOFError("gzip data is truncated")
            chunk = self._d.decompress(self._pending, len(b))
            self._pending = self._d.unconsumed_tail
            if chunk:
                self._out += len(chunk)
                if self._out > self._cap:
                    raise _CapExceeded(f"decompressed size exceeds the cap of {self._cap} bytes")
                b[: len(chunk)] = chunk
                return len(chunk)
        return 0


class _Prefixed(io.RawIOBase):
    """A reader that yields `head` first, then the rest of `rest` (lets us sniff, then stream)."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def sniff_format(head: bytes, gzip_name: str | None = None) -> str:
    """Format of decompressed content by magic bytes, as the chunk reader decides it, plus `empty`."""
    if len(head) < _HEAD and not head.strip(b"\0 \t\r\n"):
        return "empty"
    return detect_format(head, gzip_name, size=len(head) if len(head) < _HEAD else _HEAD + 1)


def _skip_reason(parts: list[str]) -> str | None:
    """Why a (split) member name is not kept as a file, or None when it is fine."""
    base = parts[-1]
    if "__MACOSX" in parts:
        return "macOS metadata folder __MACOSX"
    if base.startswith("._"):
        return "AppleDouble metadata file"
    if base == ".DS_Store":
        return "macOS .DS_Store file"
    return None


def normalise_member_name(name: str) -> tuple[str | None, str | None]:
    """(normalised relative POSIX path, None) or (None, reason the name is refused)."""
    if "\0" in name:
        return None, "NUL byte in member name"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        return None, "absolute path"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, "path traversal ('..' in member name)"
    if not parts:
        return None, "empty member name"
    reason = _skip_reason(parts)
    if reason:
        return None, reason
    return "/".join(parts), None


def _fix_name(name: str) -> str:
    """tarfile decodes names with surrogateescape; turn undecodable bytes into latin-1 text."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("latin-1")


def _member_type_reason(m: tarfile.TarInfo) -> str | None:
    if m.isreg():
        return "sparse file" if m.issparse() else None
    if m.issym():
        return f"symbolic link (to {m.linkname!r})"
    if m.islnk():
        return f"hard link (to {m.linkname!r})"
    if m.ischr() or m.isblk():
        return "device file"
    if m.isfifo():
        return "fifo"
    return f"unsupported member type {m.type!r}"


def _read_tar(stream: BinaryIO, limits: Limits, bundle: Bundle) -> None:
    """Fill `bundle` from a tar stream (read sequentially; nothing seeks or touches the disk)."""
    seen = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape") as tf:
            for m in tf:
                seen += 1
                raw_name = _fix_name(m.name)
                if seen > limits.max_members:
                    bundle.skipped.append((raw_name, f"member count cap of {limits.max_members} reached; rest of archive not read"))
                    break
                if m.isdir():
                    continue
                type_reason = _member_type_reason(m)
                if type_reason:
                    bundle.skipped.append((raw_name, type_reason))
                    continue
                path, reason = normalise_member_name(raw_name)
                if reason:
                    bundle.skipped.append((raw_name, reason))
                    continue
                if m.size > limits.max_member_bytes:
                    bundle.skipped.append((raw_name, f"member of {m.size} bytes exceeds the cap of {limits.max_member_bytes}"))
                    continue
                if bundle.total_bytes + m.size > limits.max_total_bytes:
                    bundle.skipped.append((raw_name, f"bundle total size cap of {limits.max_total_bytes} bytes reached; rest not read"))
                    break
                fobj = tf.extractfile(m)
                content = fobj.read(m.size) if fobj is not None else b""
                if path in bundle.files:
                    bundle.skipped.append((raw_name, "duplicate member name; the later copy is kept"))
                    bundle.total_bytes -= len(bundle.files[path])
                bundle.files[path] = content
                bundle.total_bytes += len(content)
    except _CapExceeded as exc:
        bundle.skipped.append(("<archive>", f"{exc}; rest of archive not read"))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        bundle.skipped.append(("<archive>", f"truncated or corrupt archive: {exc}"))
        if not bundle.files and seen == 0:
            bundle.error = f"unreadable tar archive: {exc}"


def _single_name(fmt: str, name: str | None) -> str:
    default = {"tex": "main.tex", "pdf": "main.pdf", "ps": "main.ps", "html": "index.html"}.get(fmt, "main")
    if not name:
        return default
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".GZ"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    path, reason = normalise_member_name(base)
    if reason or not path:
        return default
    if fmt == "tex" and not path.lower().endswith(".tex"):
        path += ".tex"  # arXiv's gzipped single TeX files often carry the bare paper id as FNAME
    return path


def _from_stream(stream: BinaryIO, fmt_hint: str | None, limits: Limits, name: str | None) -> Bundle:
    head = _read_exactly(stream, _HEAD)
    fmt = sniff_format(head, name)
    if fmt_hint == "withdrawn":
        fmt = "withdrawn"
    bundle = Bundle(files={}, skipped=[], source_format=fmt)
    rest = _Prefixed(head, stream)
    if fmt == "tar":
        _read_tar(io.BufferedReader(rest, _READ), limits, bundle)
        return bundle
    if fmt == "empty":
        bundle.error = "empty source file"
        return bundle
    cap = min(limits.max_member_bytes, limits.max_total_bytes)
    try:
        content = _read_exactly(io.BufferedReader(rest, _READ), cap + 1)
    except _CapExceeded as exc:
        content, err = b"", str(exc)
    except (EOFError, OSError, zlib.error) as exc:
        content, err = b"", f"corrupt gzip data: {exc}"
    else:
        err = f"single file exceeds the cap of {cap} bytes" if len(content) > cap else None
    member = _single_name(fmt, name)
    if err:
        bundle.skipped.append((member, err))
        bundle.error = err
        return bundle
    bundle.files[member] = content
    bundle.total_bytes = len(content)
    return bundle


def _from_bytes(data: bytes, fmt: str | None, limits: Limits, name: str | None) -> Bundle:
    if data.startswith(GZIP_MAGIC):
        name = gzip_fname(data) or name
        # Work bound: skipped oversized members are decompressed too (to reach the next header), so the
        # stream may run to twice the kept-bytes cap before it stops.
        cap = 2 * limits.max_total_bytes
        stream: BinaryIO = io.BufferedReader(_GunzipReader(io.BytesIO(data), cap), _READ)
    else:
        stream = io.BytesIO(data)
    try:
        return _from_stream(stream, fmt, limits, name)
    except _CapExceeded as exc:
        return Bundle(files={}, skipped=[("<archive>", str(exc))], source_format=fmt or "unknown", error=str(exc))
    except (EOFError, OSError, zlib.error) as exc:
        reason = f"corrupt gzip data: {exc}"
        return Bundle(files={}, skipped=[("<archive>", reason)], source_format=fmt or "unknown", error=reason)


def _from_directory(root: Path, limits: Limits) -> Bundle:
    """Walk a directory without following links; same rules as tar members."""
    bundle = Bundle(files={}, skipped=[], source_format="dir")
    seen = 0
    stack = [root]
    while stack:
        here = stack.pop()
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError as exc:
            bundle.skipped.append((str(here.relative_to(root)), f"unreadable folder: {exc.strerror}"))
            continue
        for entry in entries:
            rel = Path(entry.path).relative_to(root).as_posix()
            seen += 1
            if seen > limits.max_members:
                bundle.skipped.append((rel, f"member count cap of {limits.max_members} reached; rest not read"))
                return bundle
            if entry.is_symlink():
                bundle.skipped.append((rel, "symbolic link"))
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name == "__MACOSX":
                    bundle.skipped.append((rel, "macOS metadata folder __MACOSX"))
                else:
                    stack.append(Path(entry.path))
                continue
            if not entry.is_file(follow_symlinks=False):
                bundle.skipped.append((rel, "not a regular file (device, fifo or socket)"))
                continue
            path, reason = normalise_member_name(rel)
            if reason:
                bundle.skipped.append((rel, reason))
                continue
            size = entry.stat(follow_symlinks=False).st_size
            if size > limits.max_member_bytes:
                bundle.skipped.append((rel, f"member of {size} bytes exceeds the cap of {limits.max_member_bytes}"))
                continue
            if bundle.total_bytes + size > limits.max_total_bytes:
                bundle.skipped.append((rel, f"bundle total size cap of {limits.max_total_bytes} bytes reached; rest not read"))
                return bundle
            try:
                with open(entry.path, "rb") as fh:
                    content = fh.read(limits.max_member_bytes + 1)
            except OSError as exc:
                bundle.skipped.append((rel, f"unreadable: {exc.strerror}"))
                continue
            bundle.files[path] = content[: limits.max_member_bytes]
            bundle.total_bytes += len(bundle.files[path])
    return bundle


def read_bundle(
    data: bytes | Path,
    fmt: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    *,
    name: str | None = None,
) -> Bundle:
    """Read a paper bundle (bytes or a path to a file or directory) into memory.

    `fmt` is the chunk reader's detected format when known (only `withdrawn` overrides sniffing, since a
    withdrawal stub is TeX-looking text). `name` is the original file name for single-file sources. Raises
    UserError only for a path that does not exist; bad content ends in `Bundle.error` / `Bundle.skipped`.
    """
    if isinstance(data, (str, Path)):
        path = Path(data)
        if path.is_dir():
            return _from_directory(path, limits)
        if not path.is_file():
            raise UserError(f"source {path} does not exist or is not a regular file; pass a bundle, .tex, .pdf or directory")
        size = path.stat().st_size
        if size > limits.max_total_bytes:
            reason = f"file of {size} bytes exceeds the bundle cap of {limits.max_total_bytes}"
            return Bundle(files={}, skipped=[(path.name, reason)], source_format="unknown", error=reason)
        return _from_bytes(path.read_bytes(), fmt, limits, name or path.name)
    return _from_bytes(bytes(data), fmt, limits, name)
