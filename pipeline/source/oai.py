"""OAI-PMH metadata: parse arXiv's responses and render them.

Reads the `arXiv` format (ns http://arxiv.org/OAI/arXiv/) and `arXivRaw` (ns
http://arxiv.org/OAI/arXivRaw/) inside ListRecords pages, GetRecord responses, bare `<record>` files and
per-paper `<arXiv>` files. Elements are matched by local name, so records whose `<arXiv>` element lacks
its xmlns declaration (copied test fixtures do this: their children fall into the OAI namespace) parse
the same as real ones. Deleted records (`<header status="deleted">`, no metadata) come back with
`deleted=True`. OAI errors: `noRecordsMatch` is an empty page; any other code raises `OAIError`.

Ids stay strings everywhere ("0704.0010", "math/0601001"): a float would turn 1501.00010 into 1501.0001.
XML with a DTD or entity declarations is refused before parsing (billion-laughs guard).

`render_list_records` writes the inverse: a ListRecords page exactly as arXiv serves it, used by the
sample bucket and by the test OAI-PMH server.
"""

import dataclasses
import email.utils
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
ARXIV_NS = "http://arxiv.org/OAI/arXiv/"
ARXIV_RAW_NS = "http://arxiv.org/OAI/arXivRaw/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
OAI_ID_PREFIX = "oai:arXiv.org:"
DEFAULT_ENDPOINT = "https://oaipmh.arxiv.org/oai"

# The fields `arxiv-forge metadata --json` prints, in this order (the list).
JSON_FIELDS = (
    "id", "created", "updated", "title", "authors", "categories", "primary_category", "abstract",
    "comments", "journal_ref", "doi", "license", "msc_class", "acm_class", "datestamp", "sets",
)
_NAME_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "v", "vi"}


class OAIError(Exception):
    """An OAI-PMH `<error code=...>` other than noRecordsMatch (badResumptionToken, badArgument, ...)."""

    def __init__(self, code: str, message: str = ""):
        self.code = code
        self.message = message
        super().__init__(f"OAI-PMH error {code}: {message}".rstrip(": "))


class OAIParseError(ValueError):
    """The bytes are not an OAI-PMH response or arXiv record we can read (reason in the message)."""


@dataclass
class MetadataRecord:
    """One paper's metadata (latest version), as the `arXiv` format gives it."""

    id: str
    created: str | None  # YYYY-MM-DD, date of v1
    updated: str | None  # YYYY-MM-DD, date of the latest version when there is more than one
    title: str
    authors: list[str]  # "forenames keyname suffix"
    categories: list[str]  # primary first
    primary_category: str | None
    abstract: str
    comments: str | None
    journal_ref: str | None
    doi: str | None
    license: str | None
    msc_class: str | None
    acm_class: str | None
    datestamp: str | None  # OAI header datestamp: last change of the record, not submission date
    sets: list[str]
    deleted: bool = False
    version: int | None = None  # latest version number (arXivRaw lists them; the arXiv format does not)

    def to_json(self) -> dict:
        """Exactly the JSON_FIELDS, for `arxiv-forge metadata --json`."""
        data = dataclasses.asdict(self)
        return {k: data[k] for k in JSON_FIELDS}

    @classmethod
    def deleted_record(cls, id: str, datestamp: str | None, sets: list[str] | None = None) -> "MetadataRecord":
        return cls(
            id=id, created=None, updated=None, title="", authors=[], categories=[], primary_category=None,
            abstract="", comments=None, journal_ref=None, doi=None, license=None, msc_class=None,
            acm_class=None, datestamp=datestamp, sets=list(sets or []), deleted=True,
        )


@dataclass
class OAIPage:
    """One parsed response: its records and paging information."""

    records: list[MetadataRecord] = field(default_factory=list)
    resumption_token: str | None = None  # None when the list is complete
    cursor: int | None = None
    complete_list_size: int | None = None
    expiration_date: str | None = None
    verb: str | None = None


# ---------------------------------------------------------------- parsing


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if _local(c.tag) == name]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _text(elem: ET.Element | None) -> str | None:
    """Element text with whitespace runs collapsed; None for a missing or empty element."""
    if elem is None:
        return None
    text = " ".join("".join(elem.itertext()).split())
    return text or None


def normalise_space(text: str | None) -> str:
    return " ".join((text or "").split())


def strip_oai_prefix(identifier: str) -> str:
    ident = identifier.strip()
    return ident[len(OAI_ID_PREFIX):] if ident.startswith(OAI_ID_PREFIX) else ident


def _check_safe(xml: bytes) -> None:
    # ElementTree never fetches external entities, but it does expand internal ones: a billion-laughs
    # document would eat memory. arXiv never sends a DTD, so refuse any.
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise OAIParseError("XML with a DTD or entity declarations refused (arXiv responses have none)")


MAX_XML_BYTES = 1 << 30  # a 2,500-record page is ~10 MB; anything near 1 GB is not a response


def _gunzip_capped(data: bytes) -> bytes:
    d = zlib.decompressobj(wbits=31)
    out = d.decompress(data, MAX_XML_BYTES)
    if d.unconsumed_tail:
        raise OAIParseError(f"gzipped XML expands beyond {MAX_XML_BYTES} bytes (refused)")
    return out


def _parse_xml(xml: bytes) -> ET.Element:
    if xml[:2] == b"\x1f\x8b":  # saved pages may be gzipped
        xml = _gunzip_capped(xml)
    _check_safe(xml)
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise OAIParseError(f"not well-formed XML: {exc}") from None


def _join_author(forenames: str | None, keyname: str | None, suffix: str | None) -> str:
    return " ".join(p for p in (forenames, keyname, suffix) if p)


def _parse_arxiv(meta: ET.Element) -> dict:
    """Fields of an `<arXiv>` element (namespace-agnostic)."""
    authors = []
    authors_el = _child(meta, "authors")
    if authors_el is not None:
        for a in _children(authors_el, "author"):
            name = _join_author(_text(_child(a, "forenames")), _text(_child(a, "keyname")), _text(_child(a, "suffix")))
            if name:
                authors.append(name)
    return {
        "id": _text(_child(meta, "id")),
        "created": _text(_child(meta, "created")),
        "updated": _text(_child(meta, "updated")),
        "title": _text(_child(meta, "title")) or "",
        "authors": authors,
        "categories": (_text(_child(meta, "categories")) or "").split(),
        "abstract": _text(_child(meta, "abstract")) or "",
        "comments": _text(_child(meta, "comments")),
        "journal_ref": _text(_child(meta, "journal-ref")),
        "doi": _text(_child(meta, "doi")),
        "license": _text(_child(meta, "license")),
        "msc_class": _text(_child(meta, "msc-class")),
        "acm_class": _text(_child(meta, "acm-class")),
    }


def _rfc822_to_date(value: str | None) -> str | None:
    """'Wed, 25 Jun 2008 15:29:38 GMT' -> '2008-06-25' (arXivRaw version dates)."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).date().isoformat()
    except (TypeError, ValueError):
        m = re.match(r"\d{4}-\d{2}-\d{2}", value.strip())
        return m.group(0) if m else None


def split_raw_authors(text: str | None) -> list[str]:
    """arXivRaw's one-string author list -> names, affiliations in parentheses dropped.

    'A. Smith (MIT, USA), B. Jones and C. Wu' -> ['A. Smith', 'B. Jones', 'C. Wu'].
    """
    if not text:
        return []
    parts, depth, buf = [], 0, []
    for ch in " ".join(text.split()):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            if ch == ",":
                parts.append("".join(buf))
                buf = []
            else:
                buf.append(ch)
    parts.append("".join(buf))
    names = []
    for part in parts:
        for name in re.split(r"\s+and\s+|^and\s+", part.strip()):
            name = " ".join(name.split())
            if name:
                names.append(name)
    return names


def _parse_arxiv_raw(meta: ET.Element) -> dict:
    versions = []
    for v in _children(meta, "version"):
        num = v.get("version", "")
        date = _rfc822_to_date(_text(_child(v, "date")))
        versions.append((int(num[1:]) if num[1:].isdigit() else len(versions) + 1, date))
    versions.sort()
    created = versions[0][1] if versions else None
    updated = versions[-1][1] if len(versions) > 1 else None
    return {
        "id": _text(_child(meta, "id")),
        "created": created,
        "updated": updated,
        "version": versions[-1][0] if versions else None,
        "title": _text(_child(meta, "title")) or "",
        "authors": split_raw_authors(_text(_child(meta, "authors"))),
        "categories": (_text(_child(meta, "categories")) or "").split(),
        "abstract": _text(_child(meta, "abstract")) or "",
        "comments": _text(_child(meta, "comments")),
        "journal_ref": _text(_child(meta, "journal-ref")),
        "doi": _text(_child(meta, "doi")),
        "license": _text(_child(meta, "license")),
        "msc_class": _text(_child(meta, "msc-class")),
        "acm_class": _text(_child(meta, "acm-class")),
    }


_METADATA_PARSERS = {"arXiv": _parse_arxiv, "arXivRaw": _parse_arxiv_raw}


def _record_from_metadata(meta: ET.Element, header_id: str | None, datestamp: str | None,
                          sets: list[str]) -> MetadataRecord:
    parser = _METADATA_PARSERS.get(_local(meta.tag))
    if parser is None:
        raise OAIParseError(f"unsupported metadata format <{_local(meta.tag)}> (use metadataPrefix arXiv or arXivRaw)")
    fields = parser(meta)
    rid = fields.pop("id") or header_id
    if not rid:
        raise OAIParseError("record without an id")
    cats = fields["categories"]
    return MetadataRecord(id=rid, primary_category=cats[0] if cats else None, datestamp=datestamp, sets=sets, **fields)


def _parse_record(rec: ET.Element) -> MetadataRecord:
    header = _child(rec, "header")
    if header is None:
        raise OAIParseError("<record> without <header>")
    ident = _text(_child(header, "identifier"))
    header_id = strip_oai_prefix(ident) if ident else None
    datestamp = _text(_child(header, "datestamp"))
    sets = [s for s in (_text(e) for e in _children(header, "setSpec")) if s]
    if header.get("status") == "deleted":
        if not header_id:
            raise OAIParseError("deleted record without an identifier")
        return MetadataRecord.deleted_record(header_id, datestamp, sets)
    metadata = _child(rec, "metadata")
    payload = [c for c in metadata] if metadata is not None else []
    if not payload:
        raise OAIParseError(f"record {header_id} has no metadata and is not marked deleted")
    return _record_from_metadata(payload[0], header_id, datestamp, sets)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def parse_page(xml: bytes) -> OAIPage:
    """Parse any supported document: OAI-PMH envelope, bare <record>, bare <arXiv>/<arXivRaw>."""
    root = _parse_xml(xml)
    name = _local(root.tag)
    if name in _METADATA_PARSERS:
        return OAIPage(records=[_record_from_metadata(root, None, None, [])])
    if name == "record":
        return OAIPage(records=[_parse_record(root)])
    if name == "ListRecords":  # a fragment saved without its envelope
        return _parse_list(root, OAIPage(verb="ListRecords"))
    if name != "OAI-PMH":
        raise OAIParseError(f"unexpected root element <{name}> (expected OAI-PMH, record or arXiv)")
    errors = _children(root, "error")
    if errors:
        code = errors[0].get("code", "unknown")
        if code == "noRecordsMatch":
            return OAIPage()
        raise OAIError(code, _text(errors[0]) or "")
    for verb in ("ListRecords", "GetRecord"):
        body = _child(root, verb)
        if body is not None:
            return _parse_list(body, OAIPage(verb=verb))
    raise OAIParseError("OAI-PMH response without ListRecords, GetRecord or error")


def _parse_list(body: ET.Element, page: OAIPage) -> OAIPage:
    page.records = [_parse_record(r) for r in _children(body, "record")]
    tok = _child(body, "resumptionToken")
    if tok is not None:
        page.resumption_token = (tok.text or "").strip() or None
        page.cursor = _int_or_none(tok.get("cursor"))
        page.complete_list_size = _int_or_none(tok.get("completeListSize"))
        page.expiration_date = tok.get("expirationDate")
    return page


def parse_response(xml: bytes) -> tuple[list[MetadataRecord], str | None]:
    """Records and the resumption token (None when the list is complete)."""
    page = parse_page(xml)
    return page.records, page.resumption_token


def parse_file(path: str | Path) -> OAIPage:
    """Parse one saved response or record file (.xml, or gzipped); OAIParseError names the file."""
    path = Path(path)
    try:
        return parse_page(path.read_bytes())
    except OAIParseError as exc:
        raise OAIParseError(f"{path}: {exc}") from None


# ---------------------------------------------------------------- rendering


def split_author(name: str) -> tuple[str, str | None, str | None]:
    """'Waldyr A. Rodrigues Jr' -> (keyname 'Rodrigues', forenames 'Waldyr A.', suffix 'Jr').

    The inverse of how authors are joined, so render -> parse gives back the same string.
    """
    tokens = name.split()
    suffix = None
    if len(tokens) > 1 and tokens[-1].lower() in _NAME_SUFFIXES:
        suffix = tokens.pop()
    if not tokens:
        return (suffix or "", None, None)
    keyname = tokens[-1]
    forenames = " ".join(tokens[:-1]) or None
    return keyname, forenames, suffix


def default_sets(categories: list[str]) -> list[str]:
    """OAI setSpecs for categories, in the 2025 style: `cs:cs:AI`, `physics:hep-th`, `math:math:MP`."""
    from pipeline.source.taxonomy import set_spec

    out: list[str] = []
    for cat in categories:
        spec = set_spec(cat)
        if spec and spec not in out:
            out.append(spec)
    return out


def _el(name: str, value: str | None) -> str:
    return f"<{name}>{escape(value)}</{name}>" if value else ""


def render_arxiv_metadata(rec: MetadataRecord, *, standalone: bool = False) -> str:
    """The `<arXiv>` element for one record, element order as arXiv emits it."""
    authors = []
    for name in rec.authors:
        keyname, forenames, suffix = split_author(name)
        authors.append("<author>" + _el("keyname", keyname) + _el("forenames", forenames)
                       + _el("suffix", suffix) + "</author>")
    decl = '<?xml version="1.0" encoding="UTF-8"?>\n' if standalone else ""
    return (
        decl
        + f'<arXiv xmlns="{ARXIV_NS}" xmlns:xsi="{XSI_NS}" '
        f'xsi:schemaLocation="{ARXIV_NS} https://oaipmh.arxiv.org/OAI/arXiv.xsd">'
        + _el("id", rec.id) + _el("created", rec.created) + _el("updated", rec.updated)
        + "<authors>" + "".join(authors) + "</authors>"
        + _el("title", rec.title)
        + _el("categories", " ".join(rec.categories))
        + _el("comments", rec.comments)
        + _el("msc-class", rec.msc_class)
        + _el("acm-class", rec.acm_class)
        + _el("journal-ref", rec.journal_ref)
        + _el("doi", rec.doi)
        + _el("license", rec.license)
        + _el("abstract", rec.abstract)
        + "</arXiv>"
    )


def _render_record(rec: MetadataRecord) -> str:
    sets = rec.sets or default_sets(rec.categories)
    status = ' status="deleted"' if rec.deleted else ""
    header = (
        f"<header{status}>\n <identifier>{escape(OAI_ID_PREFIX + rec.id)}</identifier>\n"
        + (f" <datestamp>{escape(rec.datestamp)}</datestamp>\n" if rec.datestamp else "")
        + "".join(f" <setSpec>{escape(s)}</setSpec>\n" for s in sets)
        + "</header>\n"
    )
    if rec.deleted:
        return "<record>\n" + header + "</record>\n"
    return "<record>\n" + header + "<metadata>\n " + render_arxiv_metadata(rec) + "\n</metadata>\n</record>\n"


def _envelope(body: str, *, response_date: str, request_url: str, request_params: dict[str, str]) -> bytes:
    attrs = "".join(f" {k}={quoteattr(v)}" for k, v in request_params.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<OAI-PMH xmlns="{OAI_NS}" xmlns:xsi="{XSI_NS}" '
        f'xsi:schemaLocation="{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">\n'
        f"<responseDate>{escape(response_date)}</responseDate>\n"
        f"<request{attrs}>{escape(request_url)}</request>\n"
        + body
        + "</OAI-PMH>\n"
    ).encode("utf-8")


def render_list_records(
    records: list[MetadataRecord],
    *,
    resumption_token: str | None,
    complete_list_size: int | None = None,
    cursor: int = 0,
    response_date: str = "2025-01-01T00:00:00Z",
    request_url: str = DEFAULT_ENDPOINT,
    request_params: dict[str, str] | None = None,
    expiration_date: str | None = None,
) -> bytes:
    """A ListRecords page as arXiv serves it. `resumption_token=None` marks the last page (an empty
    `<resumptionToken/>`, as the 2025 server sends); with `complete_list_size` the token also carries
    `cursor` and `completeListSize` (the pre-2025 server's style)."""
    params = request_params if request_params is not None else {"verb": "ListRecords", "metadataPrefix": "arXiv"}
    attrs = ""
    if complete_list_size is not None:
        attrs += f' cursor="{int(cursor)}" completeListSize="{int(complete_list_size)}"'
    if expiration_date:
        attrs += f" expirationDate={quoteattr(expiration_date)}"
    token = (f"<resumptionToken{attrs}>{escape(resumption_token)}</resumptionToken>\n"
             if resumption_token else f"<resumptionToken{attrs}/>\n")
    body = "<ListRecords>\n" + "".join(_render_record(r) for r in records) + token + "</ListRecords>\n"
    return _envelope(body, response_date=response_date, request_url=request_url, request_params=params)


def render_get_record(record: MetadataRecord, *, response_date: str = "2025-01-01T00:00:00Z",
                      request_url: str = DEFAULT_ENDPOINT) -> bytes:
    params = {"verb": "GetRecord", "identifier": OAI_ID_PREFIX + record.id, "metadataPrefix": "arXiv"}
    body = "<GetRecord>\n" + _render_record(record) + "</GetRecord>\n"
    return _envelope(body, response_date=response_date, request_url=request_url, request_params=params)


def render_error(code: str, message: str = "", *, response_date: str = "2025-01-01T00:00:00Z",
                 request_url: str = DEFAULT_ENDPOINT, request_params: dict[str, str] | None = None) -> bytes:
    """An OAI-PMH error response (HTTP 200 with `<error code=...>`)."""
    body = f"<error code={quoteattr(code)}>{escape(message)}</error>\n"
    return _envelope(body, response_date=response_date, request_url=request_url,
                     request_params=request_params or {})


# ---------------------------------------------------------------- files and directories


def xml_files(paths: "list[str | Path]") -> list[Path]:
    """The record files named: files as given, directories searched recursively for *.xml / *.xml.gz
    (sorted, so later pages come later). A missing path raises UserError."""
    from pipeline.errors import UserError

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith((".xml", ".xml.gz"))))
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"metadata file or directory not found: {p}")
    return out


def iter_files(paths: "list[str | Path]"):
    """Yield (file, records, None) per readable file and (file, [], reason) per unreadable one."""
    for path in xml_files(paths):
        try:
            yield path, parse_page(path.read_bytes()).records, None
        except (OAIParseError, OAIError, OSError, EOFError, zlib.error) as exc:
            yield path, [], str(exc)


def read_records(paths: "list[str | Path]") -> tuple[list[MetadataRecord], list[tuple[str, str]]]:
    """All records in these files/directories, in file order, and (file, reason) for files that could not
    be read; a bad file never stops the others."""
    records: list[MetadataRecord] = []
    problems: list[tuple[str, str]] = []
    for path, recs, problem in iter_files(paths):
        records.extend(recs)
        if problem:
            problems.append((str(path), problem))
    return records, problems
