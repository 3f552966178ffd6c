"""Read the papers in a chunk tar (`src/arXiv_src_YYMM_NNN.tar`) without extracting it.

A chunk holds one member per paper: `YYMM/<id>.gz` (a gzipped tar, or a gzipped single file: TeX, PS,
HTML or a withdrawal stub) or `YYMM/<id>.pdf` (PDF-only, not gzipped). Old ids drop the slash:
`0601/math0601001.gz` is `math/0601001`.

    for paper in iter_chunk("var/chunks/arXiv_src_2301_004.tar"):
        paper.paper_id, paper.format, paper.data

The tar is read in stream mode (`r|`), so the input may be a path, an open file or an S3 streaming body,
and is read once front to back. Nothing is written to disk. Formats come from magic bytes, never from
names or `file(1)`. Decompression is bounded by a cap: a gzip bomb stops at the cap and is recorded with a
reason; corrupt gzip data is recorded too; the chunk goes on either way. Each member is read whole
(its compressed size is at most the cap, else it is an error unread), then decompressed in memory.
"""

import dataclasses
import logging
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import UserError

log = logging.getLogger(__name__)

FORMATS = ("tar", "tex", "pdf", "ps", "html", "withdrawn", "unknown", "error")
DEFAULT_MAX_PAPER_BYTES = 256 << 20
HEAD_BYTES = 4096  # what format detection looks at
WITHDRAWN_MAX_BYTES = 4096  # a withdrawal notice is a few lines; a real paper mentioning one is not
_BLOCK = 1 << 20
_TAR_BUFSIZE = 64 << 10  # tarfile's stream buffer: big ones cost a copy of the rest after every header read
_STEP = 4 << 20  # decompression step when the data is not kept
_GZIP_MAGIC = b"\x1f\x8b"
_YYMM_RE = re.compile(r"^\d{4}$")
# Old-style id without its slash: archive (letters, '-', optional .XX subject class) + 7 digits.
_OLD_ID_RE = re.compile(r"^([a-zA-Z][a-zA-Z-]*)(?:\.[A-Za-z]{1,3})?(\d{7}(?:v\d+)?)$")
_KIND = {tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hard link", tarfile.CHRTYPE: "character device",
         tarfile.BLKTYPE: "block device", tarfile.FIFOTYPE: "fifo"}
# Longest first: `2301.00001.tar.gz` is 2301.00001. The last ones never occur in a chunk, only on a disk
# (`arxiv-forge extract paper.tex`), where the same function names the paper.
_KNOWN_EXT = (".tar.gz", ".gz", ".pdf", ".tgz", ".tar", ".ps", ".html", ".htm", ".tex")
_TEX_HINTS = re.compile(
    rb"\\(documentclass|documentstyle|begin\s*\{|input\b|include\b|section|chapter|title\b|author\b|"
    rb"def\\|newcommand|renewcommand|usepackage|magnification|relax|font\\|catcode|baselineskip|"
    rb"hsize|vsize|parindent|centerline|bye\b|maketitle|abstract|textbf|bf\b|it\b|rm\b|hfill|vskip)"
)
# Withdrawal notices: "This paper has been withdrawn by the author due to ...", "This submission has been
# withdrawn by arXiv administrators ...". Only tiny payloads are checked (WITHDRAWN_MAX_BYTES).
_WITHDRAWN_TEXT = re.compile(
    rb"(paper|article|manuscript|submission|preprint|version|e-?print|work)\s+(has\s+been|is\s+being|is|was)\s+withdrawn"
    rb"|withdrawn\s+by\s+(the\s+)?(authors?|submitter|arxiv)",
    re.IGNORECASE,
)


class ChunkError(UserError):
    """The chunk tar itself is unreadable (not a tar, truncated): nothing after this point can be read."""


@dataclasses.dataclass
class PaperSource:
    paper_id: str  # "2301.00001", or an old id restored: "math/0601001"
    member: str  # tar member name, e.g. "2301/2301.00001.gz"
    yymm: str | None  # the chunk folder (YYMM); None for a file read on its own (read_paper_file)
    format: str  # one of FORMATS
    compressed_bytes: int  # the member's size in the chunk
    uncompressed_bytes: int | None  # payload size after gunzip (= compressed for raw members); None if unknown
    data: bytes | None  # the payload (tar bytes, TeX bytes, PDF bytes ...); None on error or with_data=False
    error: str | None = None  # why format is "error"
    gzip_name: str | None = None  # FNAME from the gzip header, e.g. "withdrawn" or "9901011.tar"


def iter_chunk(
    tar: str | Path | BinaryIO,
    *,
    max_paper_bytes: int = DEFAULT_MAX_PAPER_BYTES,
    with_data: bool = True,
) -> Iterator[PaperSource]:
    """Yield one PaperSource per paper member of a chunk tar, in tar order.

    Directories and members not directly under `YYMM/` are skipped (logged). A member that cannot be
    decoded, or a link/device in a paper's place, is yielded with format "error" and a reason. Raises ChunkError if the tar itself breaks.
    """
    if isinstance(tar, (str, Path)):
        path = Path(tar)
        if not path.is_file():
            raise UserError(f"chunk tar {path} does not exist")
        with open(path, "rb") as fh:
            yield from _iter_stream(fh, str(path), max_paper_bytes, with_data)
    else:
        yield from _iter_stream(tar, getattr(tar, "name", "<stream>"), max_paper_bytes, with_data)


def read_paper_file(path: str | Path, *, max_paper_bytes: int = DEFAULT_MAX_PAPER_BYTES) -> PaperSource:
    """One paper's file on a disk (`2301.00001.gz`, `math0601001.gz`, a `.pdf`, a plain `.tar`), read exactly
    as a chunk member is: the same paper id, the same cap on (de)compressed size, the same format detection."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"paper file {path} does not exist or is not a regular file")
    with open(path, "rb") as fh:
        return _read_member(fh, path.name, None, path.stat().st_size, max_paper_bytes, True)


def _iter_stream(fh: BinaryIO, label: str, cap: int, with_data: bool) -> Iterator[PaperSource]:
    count = 0
    try:
        archive = tarfile.open(fileobj=fh, mode="r|", bufsize=_TAR_BUFSIZE)
    except tarfile.TarError as exc:
        raise ChunkError(f"{label} is not a readable tar ({exc}); is it a chunk tar (arXiv_src_YYMM_NNN.tar)?") from None
    with archive:
        members = iter(archive)
        while True:
            try:
                info = next(members)
            except StopIteration:
                break
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise ChunkError(f"{label}: tar broken after {count} papers ({exc}); re-download the chunk") from None
            name = _normalise(info.name)
            if info.isdir():
                continue
            parts = name.split("/")
            if len(parts) != 2 or not _YYMM_RE.match(parts[0]) or not parts[1]:
                log.warning("%s: skipping member %s (not YYMM/<id>)", label, info.name)
                continue
            if not info.isfile():
                # A link or device where a paper should be: record it, never follow it.
                count += 1
                yield PaperSource(
                    paper_id=paper_id_from_member(name), member=name, yymm=parts[0], format="error",
                    compressed_bytes=0, uncompressed_bytes=None, data=None,
                    error=f"member is a {_KIND.get(info.type, 'special file')}, not a regular file",
                )
                continue
            stream = archive.extractfile(info)
            try:
                paper = _read_member(stream, name, parts[0], info.size, cap, with_data)
            except (tarfile.TarError, EOFError) as exc:
                raise ChunkError(f"{label}: tar truncated inside {name} after {count} papers ({exc})") from None
            count += 1
            yield paper


def _normalise(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def paper_id_from_member(member: str) -> str:
    """`2301/2301.00001.gz` -> `2301.00001`; `0601/math0601001.gz` -> `math/0601001`;
    `9108/hep-th9108001.gz` -> `hep-th/9108001`. The one paper-id function: `arxiv-forge extract` names a
    file or folder on a disk with it too (`2301.00001.tar.gz`, `paper/`, `paper.tex` -> `paper`)."""
    stem = member.rsplit("/", 1)[-1]
    for ext in _KNOWN_EXT:  # not Path.stem: new ids contain a dot ("2301.00001")
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    m = _OLD_ID_RE.match(stem)
    if m:
        return f"{m.group(1)}/{m.group(2)}"
    return stem


def _read_member(stream, name: str, yymm: str | None, size: int, cap: int, with_data: bool) -> PaperSource:
    paper = PaperSource(
        paper_id=paper_id_from_member(name), member=name, yymm=yymm, format="unknown",
        compressed_bytes=size, uncompressed_bytes=None, data=None,
    )
    if size > cap:
        # Compressed bytes over the cap mean decompressed bytes over it too: do not even read it.
        paper.format, paper.error = "error", f"member size {size} exceeds cap of {cap} bytes"
        paper.gzip_name = gzip_fname(stream.read(HEAD_BYTES))
        return paper
    raw = stream.read()  # whole member (at most `cap` bytes): one read, one decompress call
    if raw[:2] == _GZIP_MAGIC:
        paper.gzip_name = gzip_fname(raw)
        head, total, data, error = _gunzip(raw, cap, with_data)
    else:
        head, total, data, error = raw[:HEAD_BYTES], len(raw), raw, None
    paper.uncompressed_bytes = total
    if error:
        paper.format, paper.error = "error", error
        return paper
    paper.format = detect_format(head, paper.gzip_name, size=total)
    paper.data = data if with_data else None
    return paper


def _gunzip(raw: bytes, cap: int, with_data: bool):
    """gunzip `raw` in memory, never producing more than `cap` + 1 bytes (a bomb stops there).

    Returns (head, uncompressed_bytes, data|None, error|None). Concatenated gzip members are joined (as
    gunzip does); zero padding after the data is ignored, other trailing bytes too (with a log).
    With data, each gzip member is one decompress call (as fast as gzip.decompress); without, output
    is made and dropped in steps, so memory stays small.
    """
    out: list[bytes] = []
    head = b""
    total = 0
    buf = raw
    try:
        while True:
            dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while True:
                limit = cap + 1 - total if with_data else min(_STEP, cap + 1 - total)
                piece = dec.decompress(buf, limit)
                total += len(piece)
                if total > cap:
                    return head, total, None, f"decompressed size exceeds cap of {cap} bytes (gzip bomb?)"
                if len(head) < HEAD_BYTES:
                    head += piece[: HEAD_BYTES - len(head)]
                if with_data and piece:
                    out.append(piece)
                if dec.eof:
                    break
                buf = dec.unconsumed_tail
                if not buf and len(piece) < limit:  # input used up, output not limited: no end marker
                    return head, total, None, f"truncated gzip data (input ended after {total} decompressed bytes)"
            rest = dec.unused_data.lstrip(b"\0")
            if not rest:
                break
            if rest[:2] != _GZIP_MAGIC:
                log.debug("ignoring %d trailing bytes after the gzip data", len(rest))
                break
            buf = rest
    except zlib.error as exc:
        return head, total, None, f"corrupt gzip data after {total} decompressed bytes ({exc})"
    data = (out[0] if len(out) == 1 else b"".join(out)) if with_data else None
    return head, total, data, None


def gzip_fname(data: bytes) -> str | None:
    """FNAME from a gzip header (RFC 1952), e.g. "withdrawn" or "9901011.tar"; None if absent."""
    if len(data) < 10 or data[:2] != _GZIP_MAGIC:
        return None
    flags = data[3]
    pos = 10
    if flags & 0x04:  # FEXTRA
        if len(data) < pos + 2:
            return None
        pos += 2 + int.from_bytes(data[pos:pos + 2], "little")
    if not flags & 0x08:  # FNAME
        return None
    end = data.find(b"\0", pos)
    if end < 0:
        return None
    return data[pos:end].decode("latin-1") or None


def detect_format(head: bytes, gzip_name: str | None = None, *, size: int | None = None) -> str:
    """Source format from the first bytes of the (decompressed) payload: tar, pdf, ps, html, withdrawn,
    tex or unknown. `size` is the payload's full size (defaults to len(head)); it keeps long papers that
    merely mention a withdrawal from being called stubs."""
    size = len(head) if size is None else size
    base = (gzip_name or "").replace("\\", "/").rsplit("/", 1)[-1].lower()
    if base == "withdrawn":
        return "withdrawn"
    if _is_tar(head):
        return "tar"
    stripped = head.lstrip(b"\xef\xbb\xbf").lstrip()
    # PDF readers accept junk before the header within the first KB; text that mentions %PDF- is not one.
    if head[:1024].lstrip().startswith(b"%PDF-") or (b"%PDF-" in head[:1024] and not _is_text(head[:1024])):
        return "pdf"
    if stripped.startswith(b"%!") or head[:4] == b"\xc5\xd0\xd3\xc6":  # PostScript, DOS EPS binary header
        return "ps"
    lower = stripped[:1024].lower()
    if lower.startswith((b"<html", b"<!doctype html", b"<head", b"<body")) or (
        lower.startswith((b"<!--", b"<?xml", b"<meta")) and b"<html" in lower
    ):
        return "html"
    if not head or not _is_text(head):
        return "unknown"
    if size <= WITHDRAWN_MAX_BYTES and _WITHDRAWN_TEXT.search(head):
        return "withdrawn"
    if _TEX_HINTS.search(head[:HEAD_BYTES]) or stripped.startswith(b"%"):
        return "tex"
    return "unknown"


def _is_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    # Pre-POSIX (v7) tar has no magic: trust a header whose checksum field matches its bytes.
    try:
        stored = int(head[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    block = head[:148] + b" " * 8 + head[156:512]
    return stored == sum(block) and head[0] != 0


def _is_text(data: bytes) -> bool:
    """Mostly printable bytes and no NULs: TeX in any 8-bit encoding passes, binaries do not."""
    if not data or b"\0" in data:
        return False
    controls = sum(1 for b in data if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls <= len(data) // 100
