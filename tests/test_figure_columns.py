"""The figures table's license, arxiv_version, mentions, tikz_source and duplicate_of columns, old-schema
partitions, the mixed-schema check and the licence filter of shards and corpora.

Real components throughout: LaTeX sources and chunk tars built here, OAI-PMH XML parsed by the harvester's
parser, extract_chunk with its worker pool writing Parquet to a lake, the CLI's shard/corpus commands.
"""

import io
import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from helpers import targz, write_chunk
from PIL import Image

from assets.checks import schema_uniform_check
from pipeline.cli import main as cli_main
from pipeline.dataset.corpus import fetch_field_corpus, update_field_corpus
from pipeline.dataset.duplicates import chunk_order_key
from pipeline.dataset.lake import Lake
from pipeline.dataset.metadata import METADATA_SCHEMA, read_metadata, records_from_xml, write_metadata
from pipeline.dataset.reader import read_figures, read_papers, read_text, schema_report
from pipeline.dataset.shards import read_index, update_category_shard
from pipeline.extract.chunk import extract_chunk, load_metadata_for_chunk
from pipeline.extract.tikzsource import tikz_source
from pipeline.source.licenses import license_matches, normalise_license, parse_license_filter

NEW_COLUMNS = ["license", "arxiv_version", "mentions", "tikz_source", "duplicate_of"]


def _png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 80), colour).save(buf, "PNG")
    return buf.getvalue()


RED, GREEN, BLUE = _png((200, 0, 0)), _png((0, 160, 0)), _png((0, 0, 190))


def _doc(preamble: str, body: str) -> bytes:
    return (f"\\documentclass{{article}}\n\\usepackage{{graphicx,subcaption,tikz,cleveref}}\n{preamble}\n"
            f"\\begin{{document}}\n{body}\n\\end{{document}}\n").encode()


PAPER_1 = _doc(r"""
\usetikzlibrary{positioning}
\definecolor{ours}{RGB}{10,20,30}
\definecolor{unusedcolour}{RGB}{1,2,3}
\tikzset{box/.style={draw=ours, rounded corners}}
\newcommand{\R}{\mathbb{R}}
\newcommand{\unusedmacro}{nothing}
\newcommand{\figref}[1]{Figure~\ref{#1}}
""", r"""
\section{Introduction}
As \figref{fig:plot} shows, the main result of this study holds.

This paragraph mentions no figure at all, only plain words here.

Panels \cref{fig:a,fig:other} and \subref{fig:b} compare the two settings side by side.

\begin{figure}\includegraphics{plot.png}\caption{The plot.}\label{fig:plot}\end{figure}
\begin{figure}
\begin{subfigure}{.4\linewidth}\includegraphics{a.png}\caption{A.}\label{fig:a}\end{subfigure}
\begin{subfigure}{.4\linewidth}\includegraphics{b.png}\caption{B.}\label{fig:b}\end{subfigure}
\caption{The pair.}\label{fig:pair}
\end{figure}
\begin{figure}
\begin{tikzpicture}
\node[box] (n) {$\R$};
\draw[ours] (0,0) -- (1,1);
\definecolor{inpicture}{RGB}{5,5,5}\fill[inpicture] (2,0) circle (1);
\end{tikzpicture}
\caption{A drawing.}\label{fig:draw}
\end{figure}
\begin{figure}\includegraphics{c.png}\caption{Never referred to.}\label{fig:lonely}\end{figure}
\begin{figure}\includestandalone{pic}\caption{A standalone picture.}\end{figure}

\section{Discussion}
The pair in \ref*{fig:pair} is explained by the drawing in \autoref{fig:draw} above.
""")
BIG_PICTURE = "\\begin{tikzpicture}\n" + "\\draw (0,0) -- (1,1);\n" * 4000 + "\\end{tikzpicture}"
STANDALONE = (b"\\documentclass{standalone}\n\\usepackage{tikz}\n\\begin{document}\n"
              b"\\begin{tikzpicture}\\draw (0,0) -- (1,0);\\end{tikzpicture}\n\\end{document}\n")
PAPER_2 = _doc("", r"""
Some words about the single figure of this second paper, Figure~\ref{fig:same}.

\begin{figure}\includegraphics{same.png}\caption{The same red image.}\label{fig:same}\end{figure}
\begin{figure}""" + BIG_PICTURE + r"""\caption{A very big drawing.}\end{figure}
""")
PAPER_3 = _doc("", r"""
An older paper, with the red image in Figure~\ref{fig:r} of its results.

\begin{figure}\includegraphics{r.png}\caption{Red.}\label{fig:r}\end{figure}
""")

OAI = """<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>2023-01-06T00:00:00Z</responseDate>
<request verb="ListRecords">https://oaipmh.arxiv.org/oai</request><ListRecords>
<record><header><identifier>oai:arXiv.org:2301.00001</identifier><datestamp>2023-01-05</datestamp></header>
<metadata><arXivRaw xmlns="http://arxiv.org/OAI/arXivRaw/"><id>2301.00001</id><submitter>A</submitter>
<version version="v1"><date>Mon, 2 Jan 2023 10:00:00 GMT</date><size>10kb</size></version>
<version version="v2"><date>Thu, 5 Jan 2023 10:00:00 GMT</date><size>11kb</size></version>
<title>One</title><authors>A. Author</authors><categories>cs.CV</categories>
<license>http://creativecommons.org/licenses/by/4.0/</license><abstract>Abstract one.</abstract>
</arXivRaw></metadata></record>
<record><header><identifier>oai:arXiv.org:2301.00002</identifier><datestamp>2023-01-05</datestamp></header>
<metadata><arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>2301.00002</id><created>2023-01-02</created>
<authors><author><keyname>Bee</keyname></author></authors><title>Two</title><categories>cs.CV</categories>
<license>http://arxiv.org/licenses/nonexclusive-distrib/1.0/</license><abstract>Abstract two.</abstract>
</arXiv></metadata></record>
<record><header><identifier>oai:arXiv.org:2212.00001</identifier><datestamp>2022-12-05</datestamp></header>
<metadata><arXivRaw xmlns="http://arxiv.org/OAI/arXivRaw/"><id>2212.00001</id><submitter>C</submitter>
<version version="v1"><date>Fri, 2 Dec 2022 10:00:00 GMT</date><size>10kb</size></version>
<title>Three</title><authors>C. Author</authors><categories>cs.CV</categories>
<license>http://creativecommons.org/publicdomain/zero/1.0/</license><abstract>Abstract three.</abstract>
</arXivRaw></metadata></record>
</ListRecords></OAI-PMH>
"""
NEW, OLD = "arXiv_src_2301_001", "arXiv_src_2212_001"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """Two chunks on one lake; the earlier month (2212) is extracted last, as a backfill would."""
    root = tmp_path_factory.mktemp("figcols")
    xml = root / "oai.xml"
    xml.write_text(OAI)
    data = root / "data"
    new = write_chunk(root / f"{NEW}.tar", {
        "2301/2301.00001.gz": targz({"main.tex": PAPER_1, "plot.png": RED, "a.png": GREEN, "b.png": RED,
                                      "c.png": BLUE, "pic.tex": STANDALONE}),
        "2301/2301.00002v3.gz": targz({"main.tex": PAPER_2, "same.png": RED}),
    })
    old = write_chunk(root / f"{OLD}.tar", {"2212/2212.00001.gz": targz({"main.tex": PAPER_3, "r.png": RED})})
    extract_chunk(new, data, workers=1, metadata=load_metadata_for_chunk(xml, ["2301"]))
    extract_chunk(old, data, workers=1, metadata=load_metadata_for_chunk(xml, ["2212"]))
    return data


def _rows(data: Path, **kw) -> dict[str, dict]:
    return {r["figure_id"]: r for r in read_figures(data, **kw).to_pylist()}


def test_licence_urls_normalise_to_spdx_style_ids():
    assert normalise_license("http://creativecommons.org/licenses/by/4.0/") == "CC-BY-4.0"
    assert normalise_license("https://creativecommons.org/licenses/by-sa/4.0") == "CC-BY-SA-4.0"
    assert normalise_license("http://creativecommons.org/licenses/by-nc-sa/4.0/") == "CC-BY-NC-SA-4.0"
    assert normalise_license("http://creativecommons.org/licenses/by-nc-nd/4.0/") == "CC-BY-NC-ND-4.0"
    assert normalise_license("http://creativecommons.org/publicdomain/zero/1.0/") == "CC0-1.0"
    assert normalise_license("http://arxiv.org/licenses/nonexclusive-distrib/1.0/") == "arXiv-nonexclusive-1.0"
    assert normalise_license("http://example.org/my-licence") == "http://example.org/my-licence"
    assert normalise_license(None) is None and normalise_license("  ") is None
    cc = parse_license_filter("CC-BY, cc0,")
    assert cc == ("cc-by", "cc0") and parse_license_filter("") is None and parse_license_filter(None) is None
    assert license_matches("CC-BY-NC-SA-4.0", cc) and license_matches("CC0-1.0", cc)
    assert not license_matches("arXiv-nonexclusive-1.0", cc) and not license_matches(None, cc)
    assert license_matches(None, None)


def test_license_and_version_from_metadata_and_file_name(lake):
    rows = _rows(lake)
    assert {r["license"] for k, r in rows.items() if k.startswith("2301.00001/")} == {"CC-BY-4.0"}
    assert {r["arxiv_version"] for k, r in rows.items() if k.startswith("2301.00001/")} == {2}  # arXivRaw v1, v2
    # The file name's v3 is the version in the chunk; the arXiv-format record gives the licence only.
    assert {(r["license"], r["arxiv_version"]) for k, r in rows.items() if k.startswith("2301.00002v3/")} == {
        ("arXiv-nonexclusive-1.0", 3)}
    assert rows["2212.00001/f1"]["license"] == "CC0-1.0" and rows["2212.00001/f1"]["arxiv_version"] == 1
    papers = {r["paper_id"]: r for r in read_papers(lake).to_pylist()}
    assert papers["2301.00001"]["license"] == "CC-BY-4.0" and papers["2301.00001"]["version"] == 2
    assert papers["2301.00002v3"]["version"] == 3 and papers["2212.00001"]["license"] == "CC0-1.0"


def test_metadata_keeps_the_latest_version_and_old_files_still_read(tmp_path):
    (tmp_path / "oai.xml").write_text(OAI)
    records, _ = records_from_xml([tmp_path / "oai.xml"])
    new = records.filter(pc.not_equal(records["id"], "2212.00001"))
    write_metadata(Lake(tmp_path), "2023-01-05", new)
    # A harvest file written before the version column existed.
    old = records.filter(pc.equal(records["id"], "2212.00001")).drop_columns(["version"])
    pq.write_table(old, tmp_path / "metadata" / "harvest" / "2022-12-05.parquet")
    table = read_metadata(Lake(tmp_path))
    assert table.schema.equals(METADATA_SCHEMA)
    versions = dict(zip(table["id"].to_pylist(), table["version"].to_pylist(), strict=True))
    assert versions == {"2212.00001": None, "2301.00001": 2, "2301.00002": None}  # arXiv format: no versions


def test_mentions_are_the_paragraphs_that_ref_the_figure_or_its_subfigures(lake):
    rows = _rows(lake)
    plot = "As Figure <ref> shows, the main result of this study holds."
    panels = "Panels <ref> and <ref> compare the two settings side by side."
    last = "The pair in <ref> is explained by the drawing in <ref> above."
    assert rows["2301.00001/f1"]["mentions"] == [plot]  # through the user macro \figref
    assert rows["2301.00001/f2/1"]["mentions"] == [panels, last] == rows["2301.00001/f2/2"]["mentions"]
    assert rows["2301.00001/f3"]["mentions"] == [last]  # \autoref
    assert rows["2301.00001/f4"]["mentions"] == []
    paragraphs = set(read_text(lake, kinds=["paragraph"]).column("text").to_pylist())
    assert {plot, panels, last} <= paragraphs  # the same text as the text table's rows


def test_tikz_source_with_the_definitions_it_uses(lake):
    rows = _rows(lake)
    src = rows["2301.00001/f3"]["tikz_source"]
    assert rows["2301.00001/f3"]["graphic_status"] == "tikz"
    lines = src.splitlines()
    assert lines[:5] == [r"\usetikzlibrary{positioning}", r"\definecolor{ours}{RGB}{10,20,30}",
                         r"\tikzset{box/.style={draw=ours, rounded corners}}", r"\newcommand{\R}{\mathbb{R}}",
                         r"\begin{tikzpicture}"]
    assert src.endswith(r"\end{tikzpicture}") and r"\node[box] (n) {$\R$};" in src
    assert "unusedcolour" not in src and "unusedmacro" not in src and "figref" not in src
    assert src.count(r"\definecolor{inpicture}") == 1  # defined inside the picture: not repeated before it
    assert rows["2301.00001/f5"]["tikz_source"] == STANDALONE.decode().strip()  # a whole document: nothing added
    assert all(r["tikz_source"] is None for k, r in rows.items() if r["graphic_status"] != "tikz")
    big = rows["2301.00002v3/f2"]["tikz_source"]
    assert len(big.encode()) < 64 * 1024 + 100 and big.endswith(f"of {len(BIG_PICTURE.encode())} bytes]")
    assert tikz_source("x" * 10, [], max_bytes=4) == "xxxx\n% [arxiv-forge: truncated to 4 of 10 bytes]"


def test_duplicates_within_a_chunk_and_across_the_lake(lake):
    stored = _rows(lake)
    assert stored["2301.00001/f1"]["duplicate_of"] is None  # first in its chunk
    assert stored["2301.00001/f2/2"]["duplicate_of"] == "2301.00001/f1"
    assert stored["2301.00002v3/f1"]["duplicate_of"] == "2301.00001/f1"
    assert stored["2301.00001/f2/1"]["duplicate_of"] is None and stored["2301.00001/f3"]["duplicate_of"] is None
    assert stored["2212.00001/f1"]["duplicate_of"] is None
    # Lake-wide, December 2022 comes first although it was extracted last; chunks go by month, not by name.
    assert chunk_order_key("arXiv_src_9108_001") < chunk_order_key(OLD) < chunk_order_key(NEW)
    resolved = _rows(lake, lake_duplicates=True)
    red = ["2301.00001/f1", "2301.00001/f2/2", "2301.00002v3/f1"]
    assert [resolved[k]["duplicate_of"] for k in red] == ["2212.00001/f1"] * 3
    assert resolved["2212.00001/f1"]["duplicate_of"] is None and resolved["2301.00001/f2/1"]["duplicate_of"] is None
    only = read_figures(lake, chunk=NEW, columns=["figure_id", "duplicate_of"], lake_duplicates=True)
    assert only.column_names == ["figure_id", "duplicate_of"]
    assert dict(zip(*only.to_pydict().values(), strict=True))["2301.00001/f1"] == "2212.00001/f1"


def _make_old(data: Path, chunk: str) -> None:
    """Turn one chunk's files into what extractor version 1 wrote: no new columns, version 1 manifest."""
    for path in data.glob(f"*/**/chunk={chunk}/*.parquet"):
        table = pq.read_table(path)
        keep = [c for c in table.column_names if c not in NEW_COLUMNS]
        pq.write_table(table.select(keep), path)
    shutil.rmtree(data / "figure_hashes" / f"chunk={chunk}")
    manifest = data / "_manifests" / f"{chunk}.json"
    m = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**m, "extractor_version": "1"}))


def test_old_partitions_read_with_nulls_and_the_mixed_schema_check_fails(lake, tmp_path):
    assert schema_uniform_check(lake, "figures", "category_figures", category="cs.CV").passed
    mixed = tmp_path / "data"
    shutil.copytree(lake, mixed)
    _make_old(mixed, OLD)
    rows = _rows(mixed)
    assert {c: rows["2212.00001/f1"][c] for c in NEW_COLUMNS} == {c: None for c in NEW_COLUMNS}
    assert rows["2212.00001/f1"]["caption_text"] == "Red." and rows["2301.00001/f1"]["license"] == "CC-BY-4.0"
    assert read_papers(mixed, chunk=OLD).column("license").to_pylist() == [None]
    # Without the old chunk's hash index its image counts in its own chunk only, and nothing breaks.
    assert _rows(mixed, lake_duplicates=True)["2301.00001/f2/2"]["duplicate_of"] == "2301.00001/f1"
    check = schema_uniform_check(mixed, "figures", "category_figures", category="cs.CV")
    assert not check.passed
    assert check.metadata["chunks_to_reextract"].value == OLD
    assert f"figures/primary_category=cs.CV/chunk={OLD}/part-0.parquet" in check.metadata["outdated_files"].value
    assert "no license" in json.dumps(check.metadata["schemas"].value)
    assert not schema_uniform_check(mixed, "text", "field_corpus").passed  # older extractor version
    report = schema_report(mixed, "papers")
    assert report["mixed"] and report["chunks"] == [OLD] and report["outdated"][0]["missing"] == ["license"]
    # A licence filter leaves out rows whose licence is unknown (the old chunk's).
    assert update_category_shard(mixed, "cs.CV", resolution=16, licenses="cc0").images == 0


def test_licence_filter_on_shards_and_corpora(lake, tmp_path, capsys):
    everything = update_category_shard(lake, "cs.CV", resolution=16)
    assert everything.images == 6 and "licenses" not in read_index(lake, "cs.CV")  # default: as before
    cc = update_category_shard(lake, "cs.CV", resolution=16, licenses=["CC-BY", "cc0"])
    assert cc.images == 5 and cc.excluded_by_license == 1 and read_index(lake, "cs.CV")["licenses"] == ["cc-by", "cc0"]
    out = tmp_path / "shard"
    assert cli_main(["shard", "cs.CV", "--data-root", str(lake), "--out", str(out), "--resolution", "16",
                     "--license", "cc0"]) == 0
    assert pq.read_table(out / "meta.parquet").column("paper_id").to_pylist() == ["2212.00001"]
    assert "left out by --license" in capsys.readouterr().out
    assert update_category_shard(lake, "cs.CV", resolution=16).images == 6  # the filter is not sticky

    every = update_field_corpus(lake, "cs", valid_fraction=0.5)
    assert every.papers == 3
    assert cli_main(["corpus", "cs", "--data-root", str(lake), "--out", str(tmp_path / "c"),
                     "--valid-fraction", "0.5", "--license", "CC-BY"]) == 0
    text = "".join((tmp_path / "c" / f"{s}.txt").read_text() for s in ("train", "valid"))
    assert "main result of this study" in text and "Abstract one." in text
    assert "second paper" not in text and "older paper" not in text
    again = update_field_corpus(lake, "cs", valid_fraction=0.5)
    assert again.papers == 3 and again.parts_built == 2  # back to every paper: parts rebuilt, not reused
    fetch_field_corpus(lake, "cs", tmp_path / "all")
