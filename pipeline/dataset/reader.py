"""Read the extraction tables with `pyarrow.dataset` (hive partitions; `_`/`.`-prefixed files ignored).

A category filter opens only `figures/primary_category=<cat>/`, so a training job never lists or reads
another category's files; a chunk filter prunes by the partition path.

Files written by an older extractor may lack columns added since (figures' license, mentions, ...): the
dataset is opened with the current schema, so those columns read as null. `schema_report` lists such files.
"""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pipeline.dataset.lake import Lake, LakeFile, as_lake
from pipeline.dataset.schemas import PARTITIONS, SCHEMAS
from pipeline.dataset.writer import MANIFEST_DIR


def _partitioning(table: str) -> ds.Partitioning:
    schema = SCHEMAS[table]
    return ds.partitioning(pa.schema([schema.field(k) for k in PARTITIONS[table]]), flavor="hive")


def dataset(
    lake: Lake | str | Path,
    table: str,
    *,
    category: str | None = None,
    chunk: str | None = None,
) -> ds.Dataset:
    """A pyarrow dataset over one table; `category` (figures only) restricts discovery to its folder."""
    if table not in SCHEMAS:
        raise ValueError(f"unknown table {table!r}; tables are {', '.join(SCHEMAS)}")
    lake = as_lake(lake)
    fs = lake.fs
    table_dir = lake.path(table)
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
    lake: Lake | str | Path,
    table: str,
    *,
    category: str | None = None,
    chunk: str | None = None,
    columns: list[str] | None = None,
    filter: ds.Expression | None = None,  # noqa: A002 - pyarrow's own name for it
) -> pa.Table:
    d = dataset(lake, table, category=category, chunk=chunk)
    return d.to_table(columns=columns, filter=filter)


def read_papers(lake: Lake | str | Path, *, chunk: str | None = None, columns: list[str] | None = None) -> pa.Table:
    return read_table(lake, "papers", chunk=chunk, columns=columns)


def read_figures(
    lake: Lake | str | Path,
    *,
    category: str | None = None,
    chunk: str | None = None,
    columns: list[str] | None = None,
    with_images_only: bool = False,
    lake_duplicates: bool = False,
) -> pa.Table:
    """Figures rows. `duplicate_of` as stored is the first figure with the same image in the same chunk;
    with `lake_duplicates` it is resolved across every chunk of the lake (pipeline/dataset/duplicates.py)."""
    flt = ds.field("image").is_valid() if with_images_only else None
    if not lake_duplicates:
        return read_table(lake, "figures", category=category, chunk=chunk, columns=columns, filter=flt)
    from pipeline.dataset.duplicates import resolve_duplicates

    need = list(dict.fromkeys([*(columns or SCHEMAS["figures"].names), "figure_id", "image_sha256", "duplicate_of"]))
    table = resolve_duplicates(lake, read_table(lake, "figures", category=category, chunk=chunk, columns=need,
                                                filter=flt))
    return table.select(columns) if columns else table


def read_text(
    lake: Lake | str | Path,
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
    return read_table(lake, "text", chunk=chunk, columns=columns, filter=flt)


def categories(lake: Lake | str | Path) -> list[str]:
    """Categories that have at least one figures file (empty folders and S3 folder markers do not count)."""
    prefix = "primary_category="
    found = set()
    for f in as_lake(lake).files("figures"):
        if f.key.endswith(".parquet"):
            found.update(p[len(prefix):] for p in f.key.split("/") if p.startswith(prefix))
    return sorted(found)


def chunk_files(lake: Lake | str | Path, folder: str) -> dict[str, LakeFile]:
    """The Parquet files under a table folder ("text", "figures/primary_category=cs.CV") by chunk. For
    incremental builds: a file's `stamp` changes whenever its chunk is extracted again."""
    out = {}
    for f in as_lake(lake).files(folder):
        chunk = next((p[len("chunk="):] for p in f.key.split("/") if p.startswith("chunk=")), None)
        if chunk is not None and f.key.endswith(".parquet"):
            out[chunk] = f
    return out


def chunk_manifests(lake: Lake | str | Path) -> dict[str, dict]:
    """Committed chunks: chunk name -> its manifest (files, row counts, extractor version, time)."""
    lake = as_lake(lake)
    out = {}
    for f in lake.files(MANIFEST_DIR, recursive=False):
        name = f.key.rsplit("/", 1)[-1]
        if name.endswith(".json"):
            out[name[:-5]] = json.loads(lake.read_bytes(f.key).decode("utf-8"))
    return out


def schema_report(lake: Lake | str | Path, table: str, *, category: str | None = None) -> dict:
    """The table's files (one category's, for figures) by schema, from each file's own footer and its chunk's
    manifest. A file is outdated when it lacks a current column, has a column of another type, or its chunk
    was extracted by another extractor version; such chunks need extracting again. `mixed` is True when the
    files do not all share one schema: a reader then gets nulls in some chunks' rows and not in others'.

    Returns {"files", "mixed", "groups": {signature: files}, "outdated": [{file, chunk, extractor_version,
    missing, changed}], "chunks": [chunks to re-extract]}."""
    import pyarrow.parquet as pq

    from pipeline.dataset.schemas import EXTRACTOR_VERSION

    lake = as_lake(lake)
    folder = f"{table}/primary_category={category}" if category is not None else table
    schema, hive = SCHEMAS[table], set(PARTITIONS[table])
    versions: dict[str, str] = {}
    groups: dict[str, int] = {}
    outdated = []
    files = [f for f in lake.files(folder) if f.key.endswith(".parquet")]
    for f in files:
        chunk = next((p[len("chunk="):] for p in f.key.split("/") if p.startswith("chunk=")), "")
        if chunk not in versions:
            manifest = lake.read_json(f"{MANIFEST_DIR}/{chunk}.json") or {}
            versions[chunk] = str(manifest.get("extractor_version", "unknown"))
        actual = pq.read_schema(lake.path(f.key), filesystem=lake.fs)
        missing = [c.name for c in schema if c.name not in actual.names and c.name not in hive]
        changed = [c.name for c in schema if c.name in actual.names and not actual.field(c.name).type.equals(c.type)]
        signature = f"extractor {versions[chunk]}" + "".join(f"; no {c}" for c in missing) + "".join(
            f"; {c} retyped" for c in changed)
        groups[signature] = groups.get(signature, 0) + 1
        if missing or changed or versions[chunk] != EXTRACTOR_VERSION:
            outdated.append({"file": f.key, "chunk": chunk, "extractor_version": versions[chunk],
                             "missing": missing, "changed": changed})
    return {"files": len(files), "mixed": len(groups) > 1, "groups": groups, "outdated": outdated,
            "chunks": sorted({o["chunk"] for o in outdated})}
