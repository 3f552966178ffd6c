"""Read the extraction tables with `pyarrow.dataset` (hive partitions; `_`/`.`-prefixed files ignored).

A category filter opens only `figures/primary_category=<cat>/`, so a training job never lists or reads
another category's files; a chunk filter prunes by the partition path.
"""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipeline.dataset.schemas import PARTITIONS, SCHEMAS
from pipeline.dataset.writer import MANIFEST_DIR, resolve_root


def _partitioning(table: str) -> ds.Partitioning:
    schema = SCHEMAS[table]
    return ds.partitioning(pa.schema([schema.field(k) for k in PARTITIONS[table]]), flavor="hive")


def dataset(
    data_root: str | Path,
    table: str,
    *,
    category: str | None = None,
    chunk: str | None = None,
    endpoint_url: str | None = None,
) -> ds.Dataset:
    """A pyarrow dataset over one table; `category` (figures only) restricts discovery to its folder."""
    if table not in SCHEMAS:
        raise ValueError(f"unknown table {table!r}; tables are {', '.join(SCHEMAS)}")
    fs, base, _ = resolve_root(data_root, endpoint_url)
    table_dir = f"{base}/{table}"
    path = table_dir
    if category is not None:
        if table != "figures":
            raise ValueError("only the figures table is partitioned by category")
        path = f"{table_dir}/primary_category={category}"
    if chunk is not None and table != "figures":
        path = f"{table_dir}/chunk={chunk}"
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return ds.dataset(pa.Table.from_pylist([], schema=SCHEMAS[table]))
    d = ds.dataset(path, schema=SCHEMAS[table], format="parquet", filesystem=fs,
                   partitioning=_partitioning(table), partition_base_dir=table_dir)
    if chunk is not None and table == "figures":
        d = d.filter(ds.field("chunk") == chunk)
    return d


def read_table(
    data_root: str | Path,
    table: str,
    *,
    category: str | None = None,
    chunk: str | None = None,
    columns: list[str] | None = None,
    filter: ds.Expression | None = None,  # noqa: A002 - pyarrow's own name for it
    endpoint_url: str | None = None,
) -> pa.Table:
    d = dataset(data_root, table, category=category, chunk=chunk, endpoint_url=endpoint_url)
    return d.to_table(columns=columns, filter=filter)


def read_papers(data_root: str | Path, *, chunk: str | None = None, columns: list[str] | None = None) -> pa.Table:
    return read_table(data_root, "papers", chunk=chunk, columns=columns)


def read_figures(
    data_root: str | Path,
    *,
    category: str | None = None,
    chunk: str | None = None,
    columns: list[str] | None = None,
    with_images_only: bool = False,
) -> pa.Table:
    flt = ds.field("image").is_valid() if with_images_only else None
    return read_table(data_root, "figures", category=category, chunk=chunk, columns=columns, filter=flt)


def read_text(
    data_root: str | Path,
    *,
    chunk: str | None = None,
    field: str | None = None,
    kinds: list[str] | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    flt = None
    if field is not None:
        flt = ds.field("field") == field
    if kinds:
        k = ds.field("kind").isin(kinds)
        flt = k if flt is None else flt & k
    return read_table(data_root, "text", chunk=chunk, columns=columns, filter=flt)


def categories(data_root: str | Path, endpoint_url: str | None = None) -> list[str]:
    """Categories that have at least one figures file (empty folders and S3 folder markers do not count)."""
    fs, base, _ = resolve_root(data_root, endpoint_url)
    selector = pafs.FileSelector(f"{base}/figures", allow_not_found=True, recursive=True)
    prefix = "primary_category="
    found = set()
    for info in fs.get_file_info(selector):
        if info.type != pafs.FileType.File or not info.path.endswith(".parquet"):
            continue
        for part in info.path[len(base):].split("/"):
            if part.startswith(prefix):
                found.add(part[len(prefix):])
    return sorted(found)


def chunk_manifests(data_root: str | Path, endpoint_url: str | None = None) -> dict[str, dict]:
    """Committed chunks: chunk name -> its manifest (files, row counts, extractor version, time)."""
    fs, base, _ = resolve_root(data_root, endpoint_url)
    out = {}
    for info in fs.get_file_info(pafs.FileSelector(f"{base}/{MANIFEST_DIR}", allow_not_found=True)):
        name = Path(info.path).name
        if info.type == pafs.FileType.File and name.endswith(".json") and not name.startswith("."):
            with fs.open_input_stream(info.path) as fh:
                out[name[:-5]] = json.loads(fh.read().decode("utf-8"))
    return out
