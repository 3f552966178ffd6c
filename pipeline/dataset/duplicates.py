"""`duplicate_of` across the lake: the first figure, in a fixed order, whose image has the same sha256.

The order is chunk (by month, so the 1990s come first although their tars sort last by name), then the
figure's position in its chunk (papers in tar order, figures in document order).

Why the stored column is only chunk-local. Chunks are extracted in any order, on many machines at once, and
re-extracted. A lake-wide value written at extraction time would depend on which chunks happened to be
there already, and a chunk that sorts earlier but arrives later would make the values stored in other
chunks' files wrong; fixing them means rewriting files other runs own (a read-modify-write race), and a
single shared hash index has the same race. So each run writes what it alone knows: `duplicate_of` within
its chunk, and `figure_hashes/chunk=<C>/` (one row per distinct image, at its first figure), published
atomically with the chunk's other files. Readers that want lake-wide duplicates resolve them from those
small per-chunk files (`resolve_duplicates`), which always reflects exactly the chunks that are committed.
"""

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.dataset.lake import Lake
from pipeline.dataset.reader import read_table

_CHUNK_RE = re.compile(r"^arXiv_src_(\d\d)(\d\d)_(\d+)$")


def chunk_order_key(chunk: str) -> str:
    """Sort key of a chunk: `arXiv_src_9108_001` (1991) before `arXiv_src_0001_001` (2000)."""
    m = _CHUNK_RE.match(chunk)
    if not m:
        return "~" + chunk  # other names (tests, local tars) after arXiv's, by name
    century = "19" if m.group(1) >= "91" else "20"
    return f"{century}{m.group(1)}{m.group(2)}_{int(m.group(3)):06d}"


def first_figures(lake: Lake | str | Path, shas: pa.Array | None = None) -> pa.Table:
    """(image_sha256, first_figure_id) for every image in the lake, or only the given hashes."""
    index = read_table(lake, "figure_hashes", columns=["chunk", "image_sha256", "figure_id", "position"])
    if shas is not None:
        index = index.filter(pc.is_in(index["image_sha256"], value_set=pc.unique(shas.drop_null())))
    empty = pa.table({"image_sha256": pa.array([], pa.string()), "first_figure_id": pa.array([], pa.string())})
    if index.num_rows == 0:
        return empty
    chunks = pc.unique(index["chunk"]).to_pylist()
    keys = pa.array([chunk_order_key(c) for c in chunks], pa.string())
    index = index.append_column("_key", pc.take(keys, pc.index_in(index["chunk"], value_set=pa.array(chunks))))
    index = index.sort_by([("image_sha256", "ascending"), ("_key", "ascending"), ("position", "ascending")])
    sha = index["image_sha256"].combine_chunks()
    first = pa.concat_arrays([pa.array([True]), pc.not_equal(sha.slice(1), sha.slice(0, len(sha) - 1))])
    firsts = index.filter(first)
    return pa.table({"image_sha256": firsts["image_sha256"], "first_figure_id": firsts["figure_id"]})


def resolve_duplicates(lake: Lake | str | Path, figures: pa.Table) -> pa.Table:
    """`figures` (with figure_id and image_sha256) with duplicate_of set lake-wide. Chunks extracted before
    the hash index existed have no index file: their images count only within their own chunk."""
    firsts = first_figures(lake, figures["image_sha256"])
    at = pc.index_in(figures["image_sha256"], value_set=firsts["image_sha256"])
    lake_first = pc.take(firsts["first_figure_id"], at)
    local = figures["duplicate_of"] if "duplicate_of" in figures.column_names else pa.nulls(len(figures), pa.string())
    first = pc.coalesce(lake_first, pc.coalesce(local, figures["figure_id"]))
    value = pc.if_else(pc.equal(first, figures["figure_id"]), pa.scalar(None, pa.string()), first)
    if "duplicate_of" in figures.column_names:
        return figures.set_column(figures.column_names.index("duplicate_of"), "duplicate_of", value)
    return figures.append_column("duplicate_of", value)
