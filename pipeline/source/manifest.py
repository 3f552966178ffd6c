"""The bulk-source manifest `src/arXiv_src_manifest.xml`: parse, sort, write.

Root `<arXivSRC>` holds one `<file>` per chunk tar with ten children, then a trailing top-level
`<timestamp>` (ctime format). Entries are sorted by filename, so 9108..9912 (the 1990s) come last:
order by `month_key`, never by position.
"""

import dataclasses
import hashlib
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import UserError

MANIFEST_KEY = "src/arXiv_src_manifest.xml"
FIELDS = (
    "content_md5sum", "filename", "first_item", "last_item", "md5sum",
    "num_items", "seq_num", "size", "timestamp", "yymm",
)
INT_FIELDS = ("num_items", "seq_num", "size")
_YYMM_RE = re.compile(r"^\d{4}$")
_CHUNK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a chunk name is a partition value on the lake


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    """One `<file>` of the manifest: a chunk tar of about 500 MB (up to 1.9 GB)."""

    content_md5sum: str
    filename: str  # bucket key, e.g. src/arXiv_src_2301_004.tar
    first_item: str  # old ids without slash: astro-ph0001001
    last_item: str
    md5sum: str  # md5 of the tar itself: verify downloads with it
    num_items: int
    seq_num: int
    size: int
    timestamp: str
    yymm: str

    @property
    def chunk(self) -> str:
        """Partition name: `arXiv_src_2301_004`."""
        return chunk_name(self.filename)

    @property
    def month(self) -> str:
        """`YYYY-MM` with 19xx for yymm 91..99."""
        return month_of(self.yymm)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Manifest:
    entries: list[ManifestEntry]
    timestamp: str | None  # the trailing top-level <timestamp>

    def by_chunk(self) -> dict[str, ManifestEntry]:
        return {e.chunk: e for e in self.entries}

    def sorted(self) -> list[ManifestEntry]:
        """Chronological order: (month, seq_num)."""
        return sorted(self.entries, key=lambda e: (month_of(e.yymm), e.seq_num))

    def summary(self) -> dict:
        months = sorted(month_of(e.yymm) for e in self.entries)
        return {
            "chunks": len(self.entries),
            "items": sum(e.num_items for e in self.entries),
            "bytes": sum(e.size for e in self.entries),
            "first_month": months[0] if months else None,
            "last_month": months[-1] if months else None,
            "timestamp": self.timestamp,
        }


def month_of(yymm: str) -> str:
    """`9108` -> `1991-08`, `0001` -> `2000-01`, `2410` -> `2024-10`."""
    yy, mm = int(yymm[:2]), yymm[2:]
    return f"{1900 + yy if yy >= 91 else 2000 + yy}-{mm}"


def chunk_name(filename: str | Path) -> str:
    """The chunk's name from its tar's key, path or URL: `src/arXiv_src_2301_004.tar` -> `arXiv_src_2301_004`
    (also the bare name, `.tar.gz`, `.tgz`). The one place chunk names are made: they are partition values
    on the lake, so a name with other characters than letters, digits, `_`, `.` and `-` is a UserError."""
    name = str(filename).replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if not _CHUNK_NAME_RE.match(name):
        raise UserError(f"cannot derive a chunk name from {str(filename)!r}; expected a file like arXiv_src_2301_001.tar")
    return name


def parse_manifest(source: bytes | str | Path) -> Manifest:
    """Parse manifest XML from bytes or a file path. Raises UserError on malformed XML."""
    if isinstance(source, (str, Path)):
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read manifest {source}: {exc.strerror or exc}") from None
    else:
        data = source
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise UserError(f"manifest is not valid XML ({exc}); is it really arXiv_src_manifest.xml?") from exc
    if root.tag not in ("arXivSRC", "arXivPDF"):
        raise UserError(f"manifest root is <{root.tag}>, expected <arXivSRC>")
    entries = []
    for f in root.findall("file"):
        values = {c.tag: (c.text or "").strip() for c in f}
        missing = [k for k in FIELDS if k not in values]
        if missing:
            raise UserError(f"manifest <file> {values.get('filename', '?')} lacks {', '.join(missing)}")
        try:
            for k in INT_FIELDS:
                values[k] = int(values[k])
        except ValueError:
            raise UserError(f"manifest <file> {values['filename']}: {k} is {values[k]!r}, not an integer") from None
        if not _YYMM_RE.match(values["yymm"]):
            raise UserError(f"manifest <file> {values['filename']}: yymm is {values['yymm']!r}, expected 4 digits")
        entries.append(ManifestEntry(**{k: values[k] for k in FIELDS}))
    ts = root.find("timestamp")
    return Manifest(entries=entries, timestamp=ts.text.strip() if ts is not None and ts.text else None)


def render_manifest(entries: Iterable[ManifestEntry], timestamp: str) -> bytes:
    """Manifest XML as arXiv writes it: files sorted by filename, then the trailing <timestamp>."""
    root = ET.Element("arXivSRC")
    for e in sorted(entries, key=lambda e: e.filename):
        f = ET.SubElement(root, "file")
        for k in FIELDS:
            ET.SubElement(f, k).text = str(getattr(e, k))
    ET.SubElement(root, "timestamp").text = timestamp
    ET.indent(root)
    buf = io.BytesIO()
    ET.ElementTree(root).write(buf, encoding="utf-8", xml_declaration=True)
    return buf.getvalue() + b"\n"


def md5_file(path: str | Path, block: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()
