"""Arrow schemas of the extraction tables: `papers`, `figures`, `text` (DESIGN.md "Tables").

Partition columns (`chunk` everywhere, `primary_category` for figures) are also kept inside each file, so a
single file read on its own (or by `datasets.load_dataset("parquet", data_files=...)`) is complete; the
hive path and the column always agree because one writer sets both.
"""

import json

import pyarrow as pa

# Bump when extraction output changes meaning; stored in every papers row and chunk manifest.
# 2: papers.license; figures.license, arxiv_version, mentions, tikz_source, duplicate_of; figure_hashes.
EXTRACTOR_VERSION = "2"

PAPER_STATUSES = ("ok", "no_figures", "pdf_only", "no_source", "withdrawn", "error")
TEXT_KINDS = ("title", "abstract", "caption", "paragraph")
UNKNOWN_CATEGORY = "unknown"  # primary_category partition of papers without metadata

IMAGE_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])

PAPERS_SCHEMA = pa.schema([
    pa.field("paper_id", pa.string(), nullable=False),
    pa.field("version", pa.int32()),  # from the e-print's file name, else the metadata (arXivRaw)
    pa.field("chunk", pa.string(), nullable=False),
    pa.field("yymm", pa.string()),
    pa.field("source_format", pa.string()),
    pa.field("source_bytes", pa.int64()),
    pa.field("main_tex", pa.string()),
    pa.field("status", pa.string(), nullable=False),
    pa.field("error", pa.string()),
    pa.field("n_figures", pa.int32()),
    pa.field("n_graphics", pa.int32()),
    pa.field("n_images", pa.int32()),  # graphics that produced a stored image
    pa.field("n_skipped_members", pa.int32()),  # bundle members refused (links, traversal, caps, ...)
    pa.field("seconds", pa.float32()),  # wall clock spent on the paper in its worker
    pa.field("extractor_version", pa.string()),
    pa.field("license", pa.string()),  # as in figures; here so that text corpora can filter by it
])

FIGURES_SCHEMA = pa.schema([
    pa.field("figure_id", pa.string(), nullable=False),  # <paper_id>/f<k> or <paper_id>/f<k>/<j>
    pa.field("paper_id", pa.string(), nullable=False),
    pa.field("chunk", pa.string(), nullable=False),
    pa.field("primary_category", pa.string(), nullable=False),
    pa.field("categories", pa.list_(pa.string())),
    pa.field("figure_index", pa.int32()),
    pa.field("figure_env", pa.string()),
    pa.field("label", pa.string()),
    pa.field("caption_latex", pa.string()),
    pa.field("caption_text", pa.string()),
    pa.field("subcaption_text", pa.string()),
    pa.field("section_title", pa.string()),
    pa.field("section_kind", pa.string()),
    pa.field("graphic_path", pa.string()),
    pa.field("graphic_format", pa.string()),
    pa.field("graphic_status", pa.string()),  # ok | missing | tikz | error | unsupported | none
    pa.field("graphic_reason", pa.string()),
    pa.field("figure_kind", pa.string()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("image", IMAGE_TYPE),
    pa.field("image_sha256", pa.string()),
    # Added with extractor version 2 (files written before read them as null):
    pa.field("license", pa.string()),  # SPDX-style id (CC-BY-4.0, arXiv-nonexclusive-1.0), else the URL
    pa.field("arxiv_version", pa.int32()),
    pa.field("mentions", pa.list_(pa.string())),  # body paragraphs that \ref the figure, document order
    pa.field("tikz_source", pa.string()),  # drawn figures: the picture's code and the definitions it uses
    # The first figure with the same image in this chunk; read_figures(..., lake_duplicates=True) resolves
    # it across the lake's chunks (see pipeline/dataset/duplicates.py for why it is not stored lake-wide).
    pa.field("duplicate_of", pa.string()),
])

TEXT_SCHEMA = pa.schema([
    pa.field("paper_id", pa.string(), nullable=False),
    pa.field("chunk", pa.string(), nullable=False),
    pa.field("field", pa.string()),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
])

# One row per distinct image of a chunk, at its first figure (chunk order): the small per-chunk index that
# lake-wide duplicate_of is resolved from, written by each chunk's own run (no shared file to race on).
FIGURE_HASHES_SCHEMA = pa.schema([
    pa.field("chunk", pa.string(), nullable=False),
    pa.field("image_sha256", pa.string(), nullable=False),
    pa.field("figure_id", pa.string(), nullable=False),
    pa.field("position", pa.int32(), nullable=False),  # the figure's row number in the chunk's order
])

SCHEMAS: dict[str, pa.Schema] = {"papers": PAPERS_SCHEMA, "figures": FIGURES_SCHEMA, "text": TEXT_SCHEMA,
                                 "figure_hashes": FIGURE_HASHES_SCHEMA}

# Directory levels under DATA_ROOT/<table>/ (hive: name=value). Figures are split by category first, so
# a training job for one category lists and reads only its own files.
PARTITIONS: dict[str, tuple[str, ...]] = {
    "papers": ("chunk",),
    "figures": ("primary_category", "chunk"),
    "text": ("chunk",),
    "figure_hashes": ("chunk",),
}

# Row-group sizes: ~128 image rows (random access to one figure reads one small group, as HF does).
ROWS_PER_GROUP = {"papers": 10_000, "figures": 128, "text": 20_000, "figure_hashes": 100_000}

_BINARY_COLUMNS = {"image.bytes"}


def _hf_feature(t: pa.DataType) -> dict:
    if t == IMAGE_TYPE:
        return {"_type": "Image"}
    if pa.types.is_list(t):
        return {"feature": _hf_feature(t.value_type), "_type": "Sequence"}
    dtype = {pa.string(): "string", pa.int32(): "int32", pa.int64(): "int64", pa.float32(): "float32",
             pa.bool_(): "bool", pa.binary(): "binary"}.get(t, str(t))
    return {"dtype": dtype, "_type": "Value"}


def with_hf_metadata(schema: pa.Schema) -> pa.Schema:
    """Schema metadata that makes `datasets` / the Hub decode `image` as an Image feature."""
    features = {f.name: _hf_feature(f.type) for f in schema}
    return schema.with_metadata({"huggingface": json.dumps({"info": {"features": features}})})


def file_schema(table: str) -> pa.Schema:
    schema = SCHEMAS[table]
    return with_hf_metadata(schema) if table == "figures" else schema


def column_paths(schema: pa.Schema) -> list[str]:
    """Leaf column paths as Parquet names them (`image.bytes`, `categories.list.element`, ...)."""
    out: list[str] = []

    def walk(prefix: str, t: pa.DataType) -> None:
        if pa.types.is_struct(t):
            for i in range(t.num_fields):
                walk(f"{prefix}.{t.field(i).name}", t.field(i).type)
        elif pa.types.is_list(t):
            walk(f"{prefix}.list.element", t.value_type)
        else:
            out.append(prefix)

    for f in schema:
        walk(f.name, f.type)
    return out


def parquet_options(table: str) -> dict:
    """ParquetWriter keyword arguments: zstd for text/ids, PNG bytes stored as-is without statistics."""
    leaves = column_paths(SCHEMAS[table])
    compression = {c: ("none" if c in _BINARY_COLUMNS else "zstd") for c in leaves}
    dictionary = [c for c in leaves if c.split(".")[0] in (
        "chunk", "primary_category", "categories", "figure_env", "section_kind", "graphic_format",
        "graphic_status", "figure_kind", "status", "source_format", "field", "kind", "yymm", "extractor_version",
        "license",
    )]
    stats = [c for c in leaves if c not in _BINARY_COLUMNS]
    return {"compression": compression, "use_dictionary": dictionary, "write_statistics": stats}
