"""The `metadata` table: one row per arXiv paper id, the OAI-PMH fields, latest record wins.

Stored as one Parquet file (zstd), sorted by id, written atomically (temp file in the same directory,
then `os.replace`), so a reader never sees half a file. Dates stay `YYYY-MM-DD` strings, as OAI-PMH
gives them (day granularity; they sort correctly as strings). Ids are strings, never numbers.

Which record wins for an id: the greatest (datestamp, updated or created); on a tie, the one given
last. Deleted records stay as rows with `deleted = true` (tombstones), so a stale page harvested later
cannot bring a deleted paper back; `read_metadata` leaves them out unless asked.
"""

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import UserError
from pipeline.source.oai import MetadataRecord

TABLE_FILE = "metadata.parquet"

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
])


def table_path(path: str | Path) -> Path:
    """A directory means `<dir>/metadata.parquet`; a path ending in .parquet is the file itself."""
    path = Path(path)
    return path if path.suffix == ".parquet" else path / TABLE_FILE


def records_to_table(records: Iterable[MetadataRecord | dict]) -> pa.Table:
    """Records (dataclasses or dicts with the schema's keys) -> a table in METADATA_SCHEMA, input order."""
    columns: dict[str, list] = {name: [] for name in METADATA_SCHEMA.names}
    for rec in records:
        row = rec if isinstance(rec, dict) else rec.__dict__
        for name, values in columns.items():
            values.append(row.get(name, False if name == "deleted" else None))
    return pa.Table.from_pydict(columns, schema=METADATA_SCHEMA)


def latest_per_id(table: pa.Table) -> pa.Table:
    """One row per id: the greatest (datestamp, updated or created), ties to the later row; sorted by id."""
    if table.num_rows == 0:
        return table
    order = pa.array(range(table.num_rows), pa.int64())
    version = pc.coalesce(table["updated"], table["created"], pa.scalar(""))
    keyed = table.append_column("_ds", pc.fill_null(table["datestamp"], "")).append_column(
        "_ver", version).append_column("_ord", order)
    keyed = keyed.sort_by([("id", "ascending"), ("_ds", "descending"), ("_ver", "descending"),
                           ("_ord", "descending")])
    ids = keyed["id"].combine_chunks()
    first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    mask = pa.concat_arrays([pa.array([True]), first.fill_null(True)])
    return keyed.filter(mask).drop_columns(["_ds", "_ver", "_ord"])


def _atomic_write(table: pa.Table, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=10_000)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_metadata(path: str | Path, records: Iterable[MetadataRecord | dict] | pa.Table) -> Path:
    """Replace the table at `path` with these records (deduplicated). Returns the file written."""
    dest = table_path(path)
    table = records if isinstance(records, pa.Table) else records_to_table(records)
    _atomic_write(latest_per_id(table.cast(METADATA_SCHEMA)), dest)
    return dest


def upsert_metadata(path: str | Path, records: Iterable[MetadataRecord | dict] | pa.Table) -> Path:
    """Merge records into the table at `path` (created if missing); idempotent. Returns the file."""
    dest = table_path(path)
    new = records if isinstance(records, pa.Table) else records_to_table(records)
    if dest.exists():
        new = pa.concat_tables([read_metadata(dest, include_deleted=True), new.cast(METADATA_SCHEMA)])
    return write_metadata(dest, new)


def read_metadata(path: str | Path, *, include_deleted: bool = False) -> pa.Table:
    """The metadata table (tombstones of deleted papers left out unless include_deleted)."""
    src = table_path(path)
    if not src.is_file():
        raise UserError(f"metadata table not found: {src} (run `arxiv-forge harvest` or build it first)")
    table = pq.read_table(src, schema=METADATA_SCHEMA)
    return table if include_deleted else table.filter(pc.invert(table["deleted"]))
