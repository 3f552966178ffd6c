"""The `metadata` table: one row per arXiv paper id, the OAI-PMH fields, latest record wins.

On the lake it is a folder of Parquet files that concurrent runs never rewrite for each other:

    metadata/harvest/<key>.parquet     one file per harvest (a day partition's key is its day), replaced
                                       whole when that harvest runs again
    metadata/compacted/<id>.parquet    the union of earlier files, written by `compact_metadata`

`read_metadata` resolves the latest record per id across all files when it reads. Files are sorted by id
with row groups of 10,000 rows, so a reader that asks for one month's ids (`yymm=`) reads only the row
groups whose id range can hold them (Parquet statistics), not the whole table.

Which record wins for an id: the greatest (datestamp, updated or created); on a tie, the one from the later
file (compacted before harvests, harvests by key), then the later row. Deleted records stay as rows with
`deleted = true` (tombstones), so a stale page harvested later cannot bring a deleted paper back;
`read_metadata` leaves them out unless asked. Dates stay `YYYY-MM-DD` strings, ids stay strings.
"""

import io
import logging
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.dataset.lake import Lake, LakeFile, as_lake
from pipeline.source.oai import MetadataRecord, iter_files

log = logging.getLogger(__name__)
METADATA_DIR = "metadata"
HARVEST_DIR = f"{METADATA_DIR}/harvest"
COMPACTED_DIR = f"{METADATA_DIR}/compacted"
ROW_GROUP = 10_000
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_NEW_ID_MONTH = "0704"  # ids are YYMM.NNNN(N) from April 2007 on; archive/YYMMNNN before

METADATA_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("created", pa.string()),
    pa.field("updated", pa.string()),
    pa.field("title", pa.string()),
    pa.field("authors", pa.list_(pa.string())),
    pa.field("categories", pa.list_(pa.string())),
    pa.field("primary_category", pa.string()),
    pa.field("abstract", pa.string()),
    pa.field("comments", pa.string()),
    pa.field("journal_ref", pa.string()),
    pa.field("doi", pa.string()),
    pa.field("license", pa.string()),
    pa.field("msc_class", pa.string()),
    pa.field("acm_class", pa.string()),
    pa.field("datestamp", pa.string()),
    pa.field("sets", pa.list_(pa.string())),
    pa.field("deleted", pa.bool_(), nullable=False),
    pa.field("version", pa.int32()),  # latest version (arXivRaw only); files written before it read as null
])


def records_to_table(records: Iterable[MetadataRecord | dict]) -> pa.Table:
    """Records (dataclasses or dicts with the schema's keys) -> a table in METADATA_SCHEMA, input order."""
    columns: dict[str, list] = {name: [] for name in METADATA_SCHEMA.names}
    for rec in records:
        row = rec if isinstance(rec, dict) else rec.__dict__
        for name, values in columns.items():
            values.append(row.get(name, False if name == "deleted" else None))
    return pa.Table.from_pydict(columns, schema=METADATA_SCHEMA)


def latest_per_id(table: pa.Table, tiebreak: str | None = None) -> pa.Table:
    """One row per id: the greatest (datestamp, updated or created), ties to the greater `tiebreak` column
    value (if given), then to the later row; sorted by id."""
    if table.num_rows == 0:
        return table
    order = pa.array(range(table.num_rows), pa.int64())
    version = pc.coalesce(table["updated"], table["created"], pa.scalar(""))
    keyed = table.append_column("_ds", pc.fill_null(table["datestamp"], "")).append_column(
        "_ver", version).append_column("_ord", order)
    ties = [(tiebreak, "descending")] if tiebreak else []
    keyed = keyed.sort_by([("id", "ascending"), ("_ds", "descending"), ("_ver", "descending"), *ties,
                           ("_ord", "descending")])
    ids = keyed["id"].combine_chunks()
    first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    mask = pa.concat_arrays([pa.array([True]), first.fill_null(True)])
    return keyed.filter(mask).drop_columns(["_ds", "_ver", "_ord"])


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP)
    return sink.getvalue()


def records_from_xml(paths: list[str | Path]) -> tuple[pa.Table, list[tuple[str, str]]]:
    """Saved OAI-PMH responses or record files (or folders of them) -> (table, [(file, reason)] unreadable).
    One page's Python objects are alive at a time."""
    tables, problems = [], []
    for path, records, problem in iter_files(list(paths)):
        if problem:
            log.warning("skipped unreadable metadata file %s: %s", path, problem)
            problems.append((str(path), problem))
        elif records:
            tables.append(records_to_table(records))
    return (pa.concat_tables(tables) if tables else METADATA_SCHEMA.empty_table()), problems


def write_metadata_file(path: str | Path, records: Iterable[MetadataRecord | dict] | pa.Table) -> Path:
    """A standalone metadata file (one row per id, latest wins), e.g. for `arxiv-forge harvest --out`."""
    table = records if isinstance(records, pa.Table) else records_to_table(records)
    path = Path(path)
    Lake(path.parent).write_bytes(path.name, _parquet_bytes(latest_per_id(table.cast(METADATA_SCHEMA))))
    return path


def write_metadata(lake: Lake | str | Path, key: str, records: Iterable[MetadataRecord | dict] | pa.Table) -> int:
    """Store one harvest's records as `metadata/harvest/<key>.parquet` (replacing that harvest's earlier file
    only). Returns the rows written (one per id)."""
    if not _KEY_RE.match(key):
        raise ValueError(f"bad metadata key {key!r}: use letters, digits, '-', '_', '.', ':' (e.g. a day)")
    table = records if isinstance(records, pa.Table) else records_to_table(records)
    table = latest_per_id(table.cast(METADATA_SCHEMA))
    as_lake(lake).write_bytes(f"{HARVEST_DIR}/{key}.parquet", _parquet_bytes(table))
    return table.num_rows


def metadata_files(lake: Lake | str | Path) -> list[LakeFile]:
    """Compacted files first, then harvests by key: the order in which a later record wins a tie."""
    lake = as_lake(lake)
    return lake.files(COMPACTED_DIR) + lake.files(HARVEST_DIR)


def _month_filter(yymm: list[str]) -> ds.Expression:
    """Ids of these months: a range per new-style month (pruned by row-group statistics), a pattern for old ids."""
    expr = None
    for m in yymm:
        if _NEW_ID_MONTH <= m < "9":
            cond = (ds.field("id") >= f"{m}.") & (ds.field("id") < f"{m}/")
        else:  # archive/YYMMNNN (old style, until March 2007; 91xx-99xx are 19xx)
            cond = pc.match_substring_regex(ds.field("id"), f"^[a-z-]+(\\.[A-Z]{{2}})?/{m}[0-9]{{3}}$")
        expr = cond if expr is None else expr | cond
    return expr


def read_metadata(lake: Lake | str | Path, *, yymm: list[str] | None = None, include_deleted: bool = False,
                  columns: list[str] | None = None) -> pa.Table:
    """The metadata table (latest record per id, sorted by id); only the given months' ids with `yymm`;
    tombstones of deleted papers left out unless include_deleted. Empty when nothing was harvested yet."""
    lake = as_lake(lake)
    files = metadata_files(lake)
    if not files:
        return METADATA_SCHEMA.empty_table()
    flt = _month_filter(yymm) if yymm else None
    parts = []
    for order, f in enumerate(files):
        t = ds.dataset(lake.path(f.key), schema=METADATA_SCHEMA, format="parquet", filesystem=lake.fs) \
            .to_table(filter=flt)
        parts.append(t.append_column("_file", pa.array([order] * t.num_rows, pa.int32())))
    merged = latest_per_id(pa.concat_tables(parts), tiebreak="_file").drop_columns(["_file"])
    if not include_deleted:
        merged = merged.filter(pc.invert(merged["deleted"]))
    return merged.select(columns) if columns else merged


def compact_metadata(lake: Lake | str | Path, *, min_files: int = 2) -> int:
    """Merge all metadata files into one compacted file (when there are at least `min_files`), then delete the
    files merged. Safe beside running harvests: a file is deleted only if it is still the version that was
    read (same size and mtime), and readers merge whatever files exist. Returns the files merged."""
    lake = as_lake(lake)
    files = metadata_files(lake)
    if len(files) < min_files:
        return 0
    table = read_metadata(lake, include_deleted=True)
    lake.write_bytes(f"{COMPACTED_DIR}/{uuid.uuid4().hex}.parquet", _parquet_bytes(table))
    for f in files:
        now = lake.stat(f.key)
        if now is not None and now.stamp == f.stamp:
            lake.delete(f.key)
    log.info("compacted %d metadata files into one of %d rows", len(files), table.num_rows)
    return len(files)


def read_metadata_file(path: str | Path, *, yymm: list[str] | None = None, include_deleted: bool = False) -> pa.Table:
    """A standalone metadata file written by `write_metadata_file`, optionally only the ids of the given months."""
    return _select(ds.dataset(str(path), schema=METADATA_SCHEMA, format="parquet"), yymm, include_deleted)


def select_months(table: pa.Table, yymm: list[str] | None, *, include_deleted: bool = False) -> pa.Table:
    """Rows of an in-memory metadata table for the given months (all when None), tombstones left out."""
    return _select(ds.dataset(table), yymm, include_deleted)


def _select(d: ds.Dataset, yymm: list[str] | None, include_deleted: bool) -> pa.Table:
    out = d.to_table(filter=_month_filter(yymm) if yymm else None)
    return out if include_deleted else out.filter(pc.invert(out["deleted"]))
