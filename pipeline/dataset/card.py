"""The dataset card: a Hugging Face `README.md` at the data root that describes the lake's tables.

The YAML header names one config per table (`figures`, the default, then `papers` and `text`) with
`data_files` globs over the writer's hive layout, so `datasets.load_dataset(DATA_ROOT)` loads the figures
and `load_dataset(DATA_ROOT, "text")` the text. The body counts what is there (licences, categories,
figure kinds, paper statuses), says what the columns mean and how the data was made.

Optional columns (`license`, `arxiv_version`, `mentions`, `tikz_source`, `duplicate_of`, added by newer
extractors) are described when a table has them; a figure's licence comes from its `license` column, else
from the lake's metadata for its paper, else it is "unknown".
"""

import re
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import yaml

from pipeline.dataset.lake import Lake, as_lake
from pipeline.dataset.reader import read_table
from pipeline.dataset.schemas import EXTRACTOR_VERSION, IMAGE_TYPE, PARTITIONS, SCHEMAS
from pipeline.errors import UserError
from pipeline.source.licenses import normalise_license

CARD_KEY = "README.md"
UNKNOWN = "unknown"

# One glob per table, one `*` per hive level (figures/primary_category=X/chunk=Y/part-0.parquet): `_`- and
# `.`-prefixed staging files never match, and neither do shards, corpora or models beside the tables.
DATA_FILES = {t: "/".join([t, *("*" for _ in PARTITIONS[t]), "*.parquet"]) for t in ("figures", "papers", "text")}

COLUMNS = {
    "figure_id": "`<paper_id>/f<k>` for the k-th figure environment, `/<j>` for its j-th graphic",
    "paper_id": "arXiv id without version (`2301.00001`, `math/0601001`)",
    "chunk": "the arXiv source tarball the paper came from (`arXiv_src_YYMM_NNN`)",
    "primary_category": "the paper's primary arXiv category (`unknown` without metadata)",
    "categories": "all of the paper's arXiv categories, primary first",
    "figure_index": "position of the figure environment in the document",
    "figure_env": "the LaTeX environment (`figure`, `figure*`, `wrapfigure`, `subfigure`, ...)",
    "label": "the figure's `\\label`",
    "caption_latex": "the caption as written (long form of `\\caption[short]{long}`)",
    "caption_text": "the caption as plain text (math kept as `$...$`, refs as `<ref>`, cites as `<cit.>`)",
    "subcaption_text": "the sub-figure's own caption",
    "section_title": "title of the section the figure sits in",
    "section_kind": "introduction, related, method, experiments, results, discussion, conclusion, appendix",
    "graphic_path": "the graphic file inside the source bundle",
    "graphic_format": "format of that file (pdf, png, jpeg, eps, ...)",
    "graphic_status": "ok, missing, tikz, error, unsupported or none",
    "graphic_reason": "why the graphic has no image, when it has none",
    "figure_kind": "weak label from the picture and caption: plot, diagram, photo, table, tikz, other",
    "width": "stored image width in pixels",
    "height": "stored image height in pixels",
    "image": "the figure as PNG (512 px on the long side), or null (TikZ, missing file)",
    "image_sha256": "SHA-256 of the PNG bytes",
    "license": "the paper's licence (arXiv metadata); filter on it before redistributing",
    "arxiv_version": "the arXiv version of the source the figure came from",
    "mentions": "sentences of the paper's text that reference the figure",
    "tikz_source": "the TikZ/PGF code of a drawn figure",
    "duplicate_of": "figure_id of an identical earlier image, when this one repeats it",
    "version": "the arXiv version of the source",
    "yymm": "the month of the id",
    "source_format": "tar, tex, pdf, ps, html, withdrawn or unknown (from magic bytes)",
    "source_bytes": "size of the paper's compressed source",
    "main_tex": "the main LaTeX file chosen",
    "status": "ok, no_figures, pdf_only, no_source, withdrawn or error",
    "error": "the reason, for errors",
    "n_figures": "figure environments found",
    "n_graphics": "graphics referenced by them",
    "n_images": "graphics that produced a stored image",
    "n_skipped_members": "bundle members refused (links, path traversal, size caps)",
    "seconds": "wall-clock time spent on the paper",
    "extractor_version": "version of the extraction code that wrote the row",
    "field": "text field used for language models (cs, math, hep, ...)",
    "kind": "title, abstract, caption or paragraph",
    "text": "the text, reduced to plain text",
}


@dataclass
class CardSummary:
    key: str
    uri: str
    figures: int = 0
    images: int = 0
    papers: int = 0
    text_rows: int = 0
    configs: list[str] = field(default_factory=list)
    licences: dict[str, int] = field(default_factory=dict)  # figures per licence
    text: str = ""


def licence_id(value: str | None) -> str:
    """A licence as the figures table stores it (SPDX-style: CC-BY-4.0, arXiv-nonexclusive-1.0; see
    pipeline/source/licenses.py), from a metadata URL or an id already normalised; none is "unknown"."""
    return normalise_license(value) or UNKNOWN


def figure_licences(lake: Lake, figures: pa.Table) -> list[str]:
    """Each figure's licence id: its own `license` column, else its paper's metadata licence, else unknown."""
    own = figures.column("license").to_pylist() if "license" in figures.column_names else [None] * len(figures)
    if all(own):
        return [licence_id(v) for v in own]
    from pipeline.dataset.metadata import read_metadata

    meta = read_metadata(lake, columns=["id", "license"])
    by_paper = dict(zip(meta.column("id").to_pylist(), meta.column("license").to_pylist(), strict=True))
    return [licence_id(v or by_paper.get(p)) for v, p in zip(own, figures.column("paper_id").to_pylist(), strict=True)]


def _file_schema(lake: Lake, table: str) -> pa.Schema | None:
    """The schema of the table's first data file (its footer only), or None without files."""
    for f in lake.files(table):
        if f.key.endswith(".parquet"):
            with lake.fs.open_input_file(lake.path(f.key)) as fh:
                return pq.read_schema(fh)
    return None


_DTYPES = {pa.string(): "string", pa.large_string(): "string", pa.int32(): "int32", pa.int64(): "int64",
           pa.float32(): "float32", pa.float64(): "float64", pa.bool_(): "bool", pa.binary(): "binary"}


def hf_features(schema: pa.Schema) -> list[dict] | None:
    """`dataset_info.features` in the card's YAML form; None when a type has no simple Hub spelling."""
    out = []
    for f in schema:
        if f.type == IMAGE_TYPE:
            out.append({"name": f.name, "dtype": "image"})
        elif pa.types.is_list(f.type) and f.type.value_type in _DTYPES:
            out.append({"name": f.name, "sequence": _DTYPES[f.type.value_type]})
        elif f.type in _DTYPES:
            out.append({"name": f.name, "dtype": _DTYPES[f.type]})
        else:
            return None
    return out


def _counts(values) -> dict[str, int]:
    """Counts per value, largest first; empty values count as "unknown"."""
    return dict(sorted(Counter(v if v else UNKNOWN for v in values).items(), key=lambda kv: (-kv[1], kv[0])))


def _md_table(columns: list[str], rows: list[list]) -> str:
    """A markdown table; numbers right-aligned with thousands separators."""
    if not rows:
        return "_(none yet)_"
    align = ["---:" if isinstance(v, int) else "---" for v in rows[0]]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


_LOADING = """```python
import datasets
figures = datasets.load_dataset("path/to/this/folder")            # the default config: figures
papers = datasets.load_dataset("path/to/this/folder", "papers")   # one row per paper, with its status
text = datasets.load_dataset("path/to/this/folder", "text")       # titles, abstracts, captions, paragraphs
```"""

_LICENCE_NOTE = """Every arXiv paper keeps its own licence, so this collection has no single one. Many papers carry
only arXiv's non-exclusive distribution licence, which does **not** allow you to redistribute them:
**filter by licence before redistributing any part** (e.g. keep `CC-BY-4.0`, `CC-BY-SA-4.0`, `CC0-1.0`)
and credit the authors. "unknown" means the paper's licence was not in the metadata harvested."""

_HOW_MADE = """Each paper's source bundle (from arXiv's bulk source tarballs) is read in memory
with caps against archive bombs; the main `.tex` file is found, `\\input`s are expanded, and every figure
environment gives one row per graphic. Graphics are rasterised as pdfTeX resolves them (PDF with pdfium,
EPS/PS with Ghostscript `-dSAFER`, bitmaps with Pillow) and stored as PNG; captions are turned into plain
text with pylatexenc. Categories, titles, abstracts and licences come from arXiv's OAI-PMH metadata. Every
paper has exactly one `papers` row, with a status and, for errors, the reason. `figure_kind` is a weak
label (a linear model on the rendered picture and caption words), not a hand label."""


def build_card(lake: Lake | str) -> tuple[str, CardSummary]:
    """The card's text and what it counted (reads only small columns, never the images)."""
    lake = as_lake(lake)
    schemas = {t: _file_schema(lake, t) for t in DATA_FILES}
    if schemas["figures"] is None:
        raise UserError(f"no figures under {lake.uri('figures')}; extract chunks first (arxiv-forge extract-chunk)")
    s = CardSummary(key=CARD_KEY, uri=lake.uri(CARD_KEY), configs=[t for t in DATA_FILES if schemas[t] is not None])

    fig_cols = [c for c in ("paper_id", "primary_category", "figure_kind", "license", "duplicate_of")
                if c in SCHEMAS["figures"].names]
    figs = read_table(lake, "figures", columns=fig_cols)
    papers = read_table(lake, "papers", columns=["status", "extractor_version"])
    s.figures, s.papers, s.text_rows = len(figs), len(papers), len(read_table(lake, "text", columns=["kind"]))
    s.images = len(read_table(lake, "figures", columns=["figure_id"], filter=ds.field("image").is_valid()))
    licences = figure_licences(lake, figs)
    s.licences = _counts(licences)
    papers_by_licence = Counter(lic for lic, _ in set(zip(licences, figs.column("paper_id").to_pylist(), strict=True)))
    rows = {"figures": s.figures, "papers": s.papers, "text": s.text_rows}

    header = {
        "pretty_name": "arXiv figures, captions and text (arxiv-forge)",
        # Hub licence ids are lower case (cc-by-4.0); arXiv's own licences and unknown ones are "other".
        "license": sorted({lic.lower() if re.match(r"cc(0|-by)", lic, re.I) else "other" for lic in s.licences})
        or ["other"],
        "task_categories": ["image-to-text", "text-to-image", "text-generation"],
        "language": ["en"],
        "tags": ["arxiv", "scientific-figures", "captions"],
        "configs": [{"config_name": t, "data_files": [{"split": "train", "path": DATA_FILES[t]}],
                     **({"default": True} if t == "figures" else {})} for t in s.configs],
        # No `splits` entry: `datasets` wants num_bytes (Arrow size) with it; row counts are in the body.
        "dataset_info": [{"config_name": t, "features": f} for t in s.configs
                         if (f := hf_features(schemas[t])) is not None],
    }

    images = f"{s.images:,} with an image"
    if "duplicate_of" in fig_cols:
        images += f", {sum(1 for v in figs['duplicate_of'].to_pylist() if v):,} repeating an earlier image of their chunk"
    versions = sorted(set(papers.column("extractor_version").to_pylist()) - {None}) or [EXTRACTOR_VERSION]
    body = [
        "# arXiv figures, captions and text",
        f"Figures (as PNG), their captions and the papers' text, extracted from arXiv's LaTeX sources by "
        f"arxiv-forge without a TeX compiler: {s.figures:,} figures ({images}) from {s.papers:,} papers, and "
        f"{s.text_rows:,} text rows.",
        _LOADING,
        _md_table(["config", "files", "rows"], [[f"`{t}`", f"`{DATA_FILES[t]}`", rows[t]] for t in s.configs]),
        "## Licences", _LICENCE_NOTE,
        _md_table(["licence", "papers", "figures"], [[k, papers_by_licence[k], v] for k, v in s.licences.items()]),
        "## Figures by category",
        _md_table(["primary category", "figures"], [list(kv) for kv in _counts(figs["primary_category"].to_pylist()).items()]),
        "## Figures by kind",
        _md_table(["figure kind", "figures"], [list(kv) for kv in _counts(figs["figure_kind"].to_pylist()).items()]),
        "## Papers by status",
        _md_table(["status", "papers"], [list(kv) for kv in _counts(papers["status"].to_pylist()).items()]),
        "## How it was made", f"Extractor version {', '.join(versions)}. {_HOW_MADE}",
        "## Columns",
    ]
    for t in s.configs:
        body += [f"**{t}**", _md_table(["column", "meaning"], [[f"`{f.name}`", COLUMNS.get(f.name, "")]
                                                                for f in schemas[t]])]
    s.text = "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n" + "\n\n".join(body) + "\n"
    return s.text, s


def write_card(lake: Lake | str) -> CardSummary:
    """Write `README.md` at the data root (atomically) and return what it says."""
    lake = as_lake(lake)
    text, summary = build_card(lake)
    lake.write_bytes(CARD_KEY, text.encode("utf-8"))
    return summary
