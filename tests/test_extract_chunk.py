"""extract_chunk end to end on chunk tars built here (real tar/gzip, real workers, real Parquet)."""

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from helpers import targz, write_chunk
from PIL import Image

from pipeline.dataset.lake import Lake
from pipeline.dataset.reader import categories, chunk_manifests, read_figures, read_papers, read_text
from pipeline.extract.chunk import extract_chunk
from pipeline.extract.limits import Limits
from pipeline.extract.worker import run_pool

REPO = Path(__file__).resolve().parents[1]
CHUNK = "arXiv_src_2301_001"
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 200 100\n0 0 1 setrgbcolor 10 10 180 80 rectfill showpage\n"
LOOP_EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n{} loop\n"


def _png(colour, size=(320, 200), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "PNG")
    return buf.getvalue()


def _pdf(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (300, 150), colour).save(buf, "PDF", resolution=72)
    return buf.getvalue()


def _doc(body: str, preamble: str = "") -> bytes:
    return (f"\\documentclass{{article}}\n\\usepackage{{graphicx}}\n{preamble}\n\\begin{{document}}\n"
            f"\\title{{A paper}}\n\\maketitle\n{body}\n\\end{{document}}\n").encode()


FIG_PAPER = _doc(r"""
\section{Introduction}
We study things. This paragraph is body text that should reach the text table.

\begin{figure}[t]
  \centering
  \includegraphics[width=\linewidth]{figs/plot}
  \caption[Short]{A red plot of $x^2$ for \ours.}
  \label{fig:plot}
\end{figure}

\section{Experiments}
\begin{figure*}
  \includegraphics{figs/diagram.pdf}
  \includegraphics{figs/eps_fig}
  \caption{Two panels: a diagram and a PostScript drawing.}
\end{figure*}
% \begin{figure}\includegraphics{commented}\caption{never}\end{figure}
\begin{figure}
  \includegraphics{figs/missing}
  \caption{A figure whose file is absent.}
\end{figure}
""", preamble=r"\newcommand{\ours}{SciFact}")


def paper_members() -> dict[str, bytes]:
    """Chunk members (YYMM/<id>.gz or .pdf) and what each should become."""
    members = {}
    members["2301/2301.00001.gz"] = targz({
        "main.tex": FIG_PAPER, "figs/plot.png": _png((255, 0, 0)), "figs/diagram.pdf": _pdf((0, 255, 0)),
        "figs/eps_fig.eps": EPS, "._main.tex": b"apple junk", "old_draft.tex": b"\\begin{figure}x\\end{figure}",
    })
    members["2301/2301.00002.gz"] = gzip.compress(_doc("No figures here, only words."))
    members["2301/2301.00003.pdf"] = _pdf((0, 0, 0))
    buf = io.BytesIO()
    with gzip.GzipFile(filename="withdrawn", mode="wb", fileobj=buf) as gz:
        gz.write(b"%auto-ignore\nThis paper has been withdrawn by the author.\n")
    members["2301/2301.00004.gz"] = buf.getvalue()
    link = tarfile.TarInfo("figs/link.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    bad_png = _png((0, 0, 255), size=(400, 400))
    members["2301/2301.00005.gz"] = targz({
        "paper.tex": _doc("\\begin{figure}\\includegraphics{figs/t.png}\\caption{Truncated.}\\end{figure}"
                          "\\begin{figure}\\includegraphics{figs/link.png}\\caption{A link.}\\end{figure}"),
        "figs/t.png": bad_png[: len(bad_png) // 2], "../../evil.tex": b"owned",
    }, extra=[link])
    members["2301/2301.00006.gz"] = b"\x1f\x8b\x08\x00corrupt"
    members["2301/2301.00007.gz"] = targz({
        "main.tex": _doc("\\begin{figure}\\includegraphics{loop.eps}\\caption{Hangs Ghostscript.}\\end{figure}"),
        "loop.eps": LOOP_EPS,
    })
    return members


METADATA = {
    "2301.00001": {"title": "Red plots", "abstract": "We  plot\nthings.", "categories": ["cs.CV", "cs.LG"],
                   "primary_category": "cs.CV"},
    "2301.00005": {"title": "Hostile", "abstract": "Bad members.", "categories": ["math.AG"]},
}
FAST = Limits(paper_timeout_s=4, render_timeout_s=60)  # the looping EPS must hit the paper deadline


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    tar = write_chunk(root / f"{CHUNK}.tar", paper_members())
    data = root / "data"
    summary = extract_chunk(tar, data, workers=2, limits=FAST, metadata=METADATA)
    return tar, data, summary


def test_every_paper_has_exactly_one_row_with_a_status(extracted):
    _, data, summary = extracted
    papers = read_papers(data).to_pylist()
    assert [p["paper_id"] for p in papers] == [f"2301.0000{i}" for i in range(1, 8)]  # chunk order
    status = {p["paper_id"]: p for p in papers}
    assert status["2301.00001"]["status"] == "ok" and status["2301.00001"]["main_tex"] == "main.tex"
    assert status["2301.00001"]["n_figures"] == 3 and status["2301.00001"]["n_graphics"] == 4
    assert status["2301.00002"]["status"] == "no_figures"
    assert status["2301.00003"]["status"] == "pdf_only"
    assert status["2301.00004"]["status"] == "withdrawn"
    assert status["2301.00005"]["status"] == "ok" and status["2301.00005"]["n_skipped_members"] >= 2
    assert status["2301.00006"]["status"] == "error" and status["2301.00006"]["error"]
    assert status["2301.00007"]["status"] == "error"
    assert status["2301.00007"]["error"] == "timeout after 4 s"
    assert all(p["chunk"] == CHUNK and p["extractor_version"] for p in papers)
    assert summary.papers == 7 and summary.by_status["error"] == 2
    assert sum(summary.errors_by_reason.values()) == 2


def test_figures_have_ids_captions_and_decodable_images(extracted):
    _, data, _ = extracted
    figs = {f["figure_id"]: f for f in read_figures(data).to_pylist()}
    assert set(figs) == {"2301.00001/f1", "2301.00001/f2/1", "2301.00001/f2/2", "2301.00001/f3",
                         "2301.00005/f1", "2301.00005/f2"}
    f1 = figs["2301.00001/f1"]
    assert f1["caption_text"] == "A red plot of $x^2$ for SciFact."
    assert f1["label"] == "fig:plot" and f1["primary_category"] == "cs.CV"
    assert f1["categories"] == ["cs.CV", "cs.LG"] and f1["graphic_path"] == "figs/plot.png"
    expected_colour = {"2301.00001/f1": (255, 0, 0), "2301.00001/f2/1": (0, 255, 0), "2301.00001/f2/2": (0, 0, 255)}
    for fid, colour in expected_colour.items():
        row = figs[fid]
        im = Image.open(io.BytesIO(row["image"]["bytes"]))
        im.load()
        assert im.size == (row["width"], row["height"]) and max(im.size) <= 512
        got = im.convert("RGB").getpixel((im.width // 2, im.height // 2))
        assert all(abs(a - b) <= 8 for a, b in zip(got, colour, strict=True)), (fid, got)
        assert row["image"]["path"] == f"{fid}.png" and len(row["image_sha256"]) == 64
    assert figs["2301.00001/f2/1"]["figure_env"] == "figure*"
    assert figs["2301.00001/f3"]["graphic_status"] == "missing" and figs["2301.00001/f3"]["image"] is None
    hostile = [figs["2301.00005/f1"], figs["2301.00005/f2"]]
    assert hostile[0]["graphic_status"] == "error" and "truncated" in hostile[0]["graphic_reason"]
    assert hostile[1]["graphic_status"] == "missing" and hostile[1]["image"] is None
    assert hostile[0]["primary_category"] == "math.AG"


def test_text_rows_and_partitions(extracted):
    _, data, _ = extracted
    text = read_text(data).to_pylist()
    mine = [(t["kind"], t["text"]) for t in text if t["paper_id"] == "2301.00001"]
    assert ("title", "Red plots") in mine and ("abstract", "We plot things.") in mine
    assert ("caption", "A red plot of $x^2$ for SciFact.") in mine
    assert any(k == "paragraph" and "body text" in t for k, t in mine)
    assert {t["field"] for t in text if t["paper_id"] == "2301.00001"} == {"cs"}
    assert categories(data) == ["cs.CV", "math.AG"]
    only_cv = read_figures(data, category="cs.CV")
    assert set(only_cv.column("paper_id").to_pylist()) == {"2301.00001"}
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.parquet"))
    assert files == [f"figure_hashes/chunk={CHUNK}/part-0.parquet",
                     f"figures/primary_category=cs.CV/chunk={CHUNK}/part-0.parquet",
                     f"figures/primary_category=math.AG/chunk={CHUNK}/part-0.parquet",
                     f"papers/chunk={CHUNK}/part-0.parquet", f"text/chunk={CHUNK}/part-0.parquet"]
    assert chunk_manifests(data)[CHUNK]["rows"]["papers"] == 7


def _snapshot(data: Path) -> dict:
    drop = {"seconds"}
    return {
        "papers": [{k: v for k, v in r.items() if k not in drop} for r in read_papers(data).to_pylist()],
        "figures": read_figures(data).sort_by("figure_id").to_pylist(),
        "text": read_text(data).to_pylist(),
    }


def test_rerun_is_idempotent_and_replaces_stale_partitions(extracted):  # runs last of the fixture's users
    tar, data, _ = extracted
    before = _snapshot(data)
    extract_chunk(tar, data, workers=1, limits=FAST, metadata=METADATA)
    assert _snapshot(data) == before
    moved = {**METADATA, "2301.00005": {**METADATA["2301.00005"], "categories": ["cs.CV"]}}
    extract_chunk(tar, data, workers=1, limits=FAST, metadata=moved)
    assert categories(data) == ["cs.CV"]  # the math.AG file of this chunk was removed
    assert read_figures(data).num_rows == len(before["figures"])
    assert not (data / "_staging").exists() or not any((data / "_staging").iterdir())


def test_killed_run_leaves_no_visible_partial_files(tmp_path):
    members = {}
    for i in range(1, 141):  # > 128 figures, so a figures row group is flushed to staging before the kill
        members[f"2301/2301.{i:05d}.gz"] = targz({
            "main.tex": _doc(f"\\begin{{figure}}\\includegraphics{{a.png}}\\caption{{Figure of paper {i}.}}\\end{{figure}}"),
            "a.png": _png((i, 0, 0), size=(64, 32)),
        })
    members["2301/2301.99999.gz"] = targz({
        "main.tex": _doc("\\begin{figure}\\includegraphics{loop.eps}\\caption{Hangs.}\\end{figure}"),
        "loop.eps": LOOP_EPS,
    })
    tar = write_chunk(tmp_path / f"{CHUNK}.tar", members)
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "extract-chunk", str(tar), "--out", str(data), "--workers", "1",
         "--paper-timeout", "60"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        staged: list[Path] = []
        while time.monotonic() < deadline and not staged:
            staged = [p for p in (data / "_staging").rglob("*.parquet") if p.stat().st_size > 0] if data.exists() else []
            time.sleep(0.2)
        assert staged, "the run never started writing"
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)  # mid-write: a figures file is half written in staging
    finally:
        proc.kill()
        proc.wait(10)
    assert ds.dataset(data / "figures" if (data / "figures").exists() else data, format="parquet").files == []
    assert read_papers(data).num_rows == 0 and read_figures(data).num_rows == 0 and read_text(data).num_rows == 0
    assert chunk_manifests(data) == {}


def _square(x):
    if x == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if x == "hog":
        return bytearray(3 << 30)
    if x == "sleep":
        time.sleep(60)
    if x == "raise":
        raise ValueError("bad input")
    if x == "nap":
        time.sleep(1)
        return 0
    return x * x


def test_pool_survives_crash_timeout_memory_and_exceptions():
    items = [1, "crash", 2, "sleep", 3, "hog", "raise", 4]
    outcomes = list(run_pool(_square, items, workers=2, timeout_s=2, memory_bytes=1 << 30, max_tasks_per_child=2))
    assert [o.index for o in outcomes] == list(range(len(items)))
    got = {items[o.index] if isinstance(items[o.index], str) else o.index: o for o in outcomes}
    assert [o.value for o in outcomes if o.ok] == [1, 4, 9, 16]
    assert "SIGSEGV" in got["crash"].error
    assert got["sleep"].error == "timeout after 2 s"
    assert "out of memory" in got["hog"].error
    assert got["raise"].error == "ValueError: bad input"


@pytest.mark.timeout(60)
def test_pool_reads_on_after_a_slow_task_blocks_the_pending_window():
    # One slow task while the others fill the read-ahead window: once it finishes and the window is
    # yielded, the pool must read on (this once deadlocked with every worker idle).
    items = ["nap"] + list(range(1, 12))
    outcomes = list(run_pool(_square, items, workers=2, timeout_s=30, max_pending=4))
    assert [o.index for o in outcomes] == list(range(12)) and all(o.ok for o in outcomes)
    assert [o.value for o in outcomes] == [0] + [i * i for i in range(1, 12)]


def test_cli_extract_json(tmp_path):
    bundle = tmp_path / "2301.00001.gz"
    bundle.write_bytes(paper_members()["2301/2301.00001.gz"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "extract", str(bundle), "--json",
                          "--images", str(tmp_path / "png")], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    objs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [o["figure_index"] for o in objs] == [1, 2, 3]
    assert objs[0]["paper_id"] == "2301.00001" and objs[0]["graphics"][0]["width"] == 320
    assert objs[1]["env"] == "figure*" and len(objs[1]["graphics"]) == 2
    assert sorted(p.name for p in (tmp_path / "png" / "2301.00001").iterdir()) == ["f1.png", "f2_1.png", "f2_2.png"]
    empty = tmp_path / "2301.00002.gz"
    empty.write_bytes(paper_members()["2301/2301.00002.gz"])
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "extract", str(empty), "--json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout == ""
    bad = tmp_path / "2301.00006.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00corrupt")
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "extract", str(bad), "--json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- the sample bucket, end to end


@pytest.fixture(scope="module")
def sample_extracted(request, tmp_path_factory):
    """The session's small sample bucket (conftest) when there is one, else 24 generated papers; extracted."""
    from pipeline.source.oai import read_records

    try:
        bucket = request.getfixturevalue("small_sample_bucket")
    except pytest.FixtureLookupError:
        from pipeline.sample.bucket import write_sample_bucket

        bucket = tmp_path_factory.mktemp("bucket")
        write_sample_bucket(bucket, papers=24, seed=0)
    records, _ = read_records([bucket / "metadata"])
    meta = {r.id: {"title": r.title, "abstract": r.abstract, "categories": r.categories,
                   "primary_category": r.primary_category} for r in records}
    data = tmp_path_factory.mktemp("sample-data")
    for tar in sorted((bucket / "src").glob("arXiv_src_*.tar")):
        extract_chunk(tar, data, workers=2, metadata=meta)
    truth = [json.loads(line) for line in (bucket / "truth" / "papers.jsonl").read_text().splitlines()]
    return truth, data


def test_sample_bucket_matches_the_generator_truth(sample_extracted):
    truth, data = sample_extracted
    papers = {p["paper_id"]: p for p in read_papers(data).to_pylist()}
    assert len(papers) == len(truth) == read_papers(data).num_rows  # exactly one row per paper
    figures: dict[str, list[dict]] = {}
    for row in read_figures(data).to_pylist():
        figures.setdefault(row["paper_id"], []).append(row)
    checked_images = 0
    for t in truth:
        p = papers[t["paper_id"]]
        assert p["status"] == t["status"], (t["paper_id"], p["error"], t["features"])
        if p["status"] == "error":
            assert p["error"]
        got = figures.get(t["paper_id"], [])
        assert p["n_figures"] == len(t["figures"]), t["paper_id"]
        for tf in t["figures"]:
            rows = [r for r in got if r["figure_index"] == tf["figure_index"]]
            assert rows, (t["paper_id"], tf["figure_index"])
            assert rows[0]["caption_text"] == tf["caption_text"], (t["paper_id"], tf["figure_index"])
            assert rows[0]["primary_category"] == t["primary_category"]
            assert len(rows) == max(1, len(tf["graphics"]))
            for row, tg in zip(rows, tf["graphics"], strict=False):
                assert row["graphic_status"] == tg["status"], (row["figure_id"], tg)
                if tg["status"] == "ok":
                    assert row["graphic_path"] == tg["path"]
                    im = Image.open(io.BytesIO(row["image"]["bytes"]))
                    im.load()
                    assert im.size == (row["width"], row["height"]) and max(im.size) <= 512
                    assert im.mode in ("RGB", "L")
                    checked_images += 1
    assert checked_images > 10
    kinds = {r["kind"] for r in read_text(data).to_pylist()}
    assert kinds == {"title", "abstract", "caption", "paragraph"}


pytest_plugins = ["s3server"]


def test_extract_chunk_to_s3_and_rerun(tmp_path, s3_bucket):
    members = paper_members()
    small = {k: members[k] for k in ("2301/2301.00001.gz", "2301/2301.00002.gz", "2301/2301.00003.pdf")}
    tar = write_chunk(tmp_path / f"{CHUNK}.tar", small)
    root = Lake(f"s3://{s3_bucket.name}/lake", endpoint_url=s3_bucket.endpoint_url, scratch=tmp_path / "scratch")
    extract_chunk(tar, root, workers=1, metadata=METADATA)
    keys = sorted(o["Key"] for o in s3_bucket.client.list_objects_v2(Bucket=s3_bucket.name)["Contents"])
    assert f"lake/figures/primary_category=cs.CV/chunk={CHUNK}/part-0.parquet" in keys
    assert f"lake/_manifests/{CHUNK}.json" in keys
    from pipeline.dataset.reader import read_table

    assert read_table(root, "papers").num_rows == 3
    figs = read_table(root, "figures", category="cs.CV")
    assert figs.num_rows == 4 and figs.column("image").null_count == 1  # the missing graphic
    moved = {"2301.00001": {**METADATA["2301.00001"], "primary_category": "cs.LG"}}
    extract_chunk(tar, root, workers=1, metadata=moved)
    keys = sorted(o["Key"] for o in s3_bucket.client.list_objects_v2(Bucket=s3_bucket.name)["Contents"])
    # the stale object of this chunk is gone (pyarrow may leave an empty "folder/" marker key behind)
    assert not any("primary_category=cs.CV" in k and not k.endswith("/") for k in keys)
    assert categories(root) == ["cs.LG"]
    assert read_table(root, "figures", category="cs.LG").num_rows == 4


def test_cli_extract_tex_file_uses_its_folder(tmp_path, capsys):
    from pipeline.cli import main

    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "a.png").write_bytes(_png((0, 0, 255), size=(64, 48)))
    (tmp_path / "paper.tex").write_bytes(_doc("\\begin{figure}\\includegraphics{figs/a}\\caption{Blue.}\\end{figure}"))
    (tmp_path / "draft.tex").write_bytes(_doc("\\begin{figure}\\caption{Not this one.}\\end{figure}"))
    assert main(["extract", str(tmp_path / "paper.tex"), "--json"]) == 0
    objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["caption_text"] for o in objs] == ["Blue."]
    assert objs[0]["graphics"][0]["path"] == "figs/a.png" and objs[0]["graphics"][0]["width"] == 64


def test_cli_extract_gives_the_rows_a_chunk_gives(extracted, tmp_path, capsys):
    """`arxiv-forge extract` runs process_paper as a chunk does: same figure ids, kinds, sizes and statuses."""
    from pipeline.cli import main

    _, data, _ = extracted
    bundle = tmp_path / "2301.00001.tar.gz"  # the id comes from the chunk reader's function (.tar.gz too)
    bundle.write_bytes(paper_members()["2301/2301.00001.gz"])
    assert main(["extract", str(bundle), "--json"]) == 0
    got = {g["figure_id"]: (o["figure_kind"], g["status"], g["width"], g["height"], g["as_written"])
           for o in (json.loads(line) for line in capsys.readouterr().out.splitlines()) for g in o["graphics"]}
    rows = read_figures(data, columns=["figure_id", "paper_id", "figure_kind", "graphic_status", "width",
                                       "height"]).to_pylist()
    want = {r["figure_id"]: (r["figure_kind"], r["graphic_status"], r["width"], r["height"])
            for r in rows if r["paper_id"] == "2301.00001"}
    assert {k: v[:4] for k, v in got.items()} == want and len(want) == 4
    assert got["2301.00001/f3"][4] == "figs/missing"  # the name as written, for the missing graphic


def test_cli_extract_kills_a_paper_at_its_deadline_and_goes_on(tmp_path, capsys):
    """The paper deadline of the worker pool applies: a looping EPS ends its paper, not the command."""
    from pipeline.cli import main

    members = paper_members()
    (tmp_path / "2301.00007.gz").write_bytes(members["2301/2301.00007.gz"])
    (tmp_path / "math0601001.gz").write_bytes(members["2301/2301.00002.gz"])  # an old-style id
    start = time.monotonic()
    rc = main(["extract", str(tmp_path / "2301.00007.gz"), str(tmp_path / "math0601001.gz"),
               "--paper-timeout", "2", "--workers", "2"])
    out, err = capsys.readouterr()
    assert rc == 1 and time.monotonic() - start < 15
    assert err.count("\n") == 1 and "2301.00007.gz: cannot extract: timeout after 2 s" in err
    assert out.startswith("math/0601001: main main.tex, 0 figures")


def test_real_submissions_as_a_chunk(real_fixtures, tmp_path):
    """The real arXiv fixtures packed as one chunk: each ends in the status its content calls for."""
    names = ["1801.03879-1", "Upload9BadFileNames", "relative_path", "sampleF_html", "source_with_dir",
             "upload5", "with__MACOSX_hidden"]
    members = {f"1801/1801.{i:05d}.gz": (real_fixtures / f"{n}.tar.gz").read_bytes() for i, n in enumerate(names, 1)}
    data = tmp_path / "data"
    extract_chunk(write_chunk(tmp_path / "arXiv_src_1801_001.tar", members), data, workers=2)
    got = {p["paper_id"]: p for p in read_papers(data).to_pylist()}
    status = {n: got[f"1801.{i:05d}"]["status"] for i, n in enumerate(names, 1)}
    assert status == {"1801.03879-1": "no_figures", "Upload9BadFileNames": "ok", "relative_path": "error",
                      "sampleF_html": "no_source", "source_with_dir": "ok", "upload5": "pdf_only",
                      "with__MACOSX_hidden": "ok"}
    assert "traversal" in got["1801.00003"]["error"]
    assert got["1801.00001"]["n_skipped_members"] == 6  # the AppleDouble ._* files
    ps_paper = got["1801.00005"]
    assert ps_paper["n_graphics"] == 41 and ps_paper["n_images"] == 41  # PostScript figures via Ghostscript
    figs = read_figures(data, columns=["paper_id", "graphic_format", "image"]).to_pylist()
    assert all(f["image"] is not None for f in figs if f["paper_id"] == "1801.00005")
