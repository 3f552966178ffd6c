"""Extraction benchmark: papers/s and figures/s per core on the sample bucket, where the time goes, and the
obvious baseline (whole-document pylatexenc parse + pdf2image) on the same papers in the same run.

- "ours": `pipeline.extract.chunk.process_paper` (bundle read, cheap scan + targeted parsing, pypdfium2 /
  Pillow / Ghostscript, PNG level 1), serially in this process: one core. Stage shares come from the
  worker's own CPU timers (read, LaTeX analysis, rasterising, encoding; "other" is the rest).
- "baseline": same bundle reader, then the whole expanded document through pylatexenc's LatexWalker and
  LatexNodes2Text (figures found by walking the node tree, body text from the whole document), PDFs through
  pdf2image, rasters through Pillow; EPS through the same Ghostscript call (no cheaper tool exists, so it is not
  part of the comparison's difference). PNG at the same zlib level as ours (raster.PNG_COMPRESS_LEVEL), so the
  LaTeX analysis and the PDF renderer are what the comparison measures.
- "end to end": `extract_chunk` with 1 and 2 workers (process pool + Parquet writing), wall clock.

The machine is shared, so wall clock is noisy: CPU seconds (this process + its children, e.g. Ghostscript)
are reported too, and papers/s per core is given both ways.

    nice -n 10 .venv/bin/python bench/extract.py [--bucket DIR] [--papers 120]
"""

import argparse
import dataclasses
import io
import json
import platform
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.extract.bundle import read_bundle  # noqa: E402
from pipeline.extract.chunk import PaperTask, extract_chunk, process_paper  # noqa: E402
from pipeline.extract.raster import PNG_COMPRESS_LEVEL, rasterize  # noqa: E402
from pipeline.source.chunk import iter_chunk  # noqa: E402


def cpu_now() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def load_bucket(bucket: Path) -> tuple[list[Path], dict[str, dict]]:
    from pipeline.source.oai import read_records

    tars = sorted((bucket / "src").glob("arXiv_src_*.tar"))
    records, _ = read_records([bucket / "metadata"]) if (bucket / "metadata").is_dir() else ([], [])
    return tars, {r.id: dataclasses.asdict(r) for r in records}


def tasks_of(tars: list[Path], meta: dict[str, dict]) -> list[PaperTask]:
    out = []
    for tar in tars:
        for src in iter_chunk(tar):
            out.append(PaperTask(paper_id=src.paper_id, yymm=src.yymm, format=src.format,
                                 source_bytes=src.compressed_bytes, data=src.data, error=src.error,
                                 gzip_name=src.gzip_name, meta=meta.get(src.paper_id)))
    return out


def run_ours(tasks: list[PaperTask]) -> dict:
    stages = Counter()
    figures = images = 0
    wall0, cpu0 = time.perf_counter(), cpu_now()
    for task in tasks:
        res = process_paper(task)
        stages.update(res.timings)
        figures += res.paper.get("n_figures") or 0
        images += sum(1 for r in res.figures if r.get("image") is not None)
    wall, cpu = time.perf_counter() - wall0, cpu_now() - cpu0
    return summarise("ours", len(tasks), figures, images, wall, cpu, dict(stages), "cpu")


# ------------------------------------------------------------------------------------------- baseline

_FIG_ENVS = {"figure", "figure*", "wrapfigure", "sidewaysfigure"}
_INPUT_RE = re.compile(r"\\(?:input|include)\s*\{([^}]+)\}")


def _baseline_context():
    from pylatexenc import macrospec
    from pylatexenc.latexwalker import get_default_latex_context_db

    db = get_default_latex_context_db().filter_context()
    db.add_context_category("figures", prepend=True, macros=[
        macrospec.MacroSpec("caption", "[{"), macrospec.MacroSpec("subfloat", "[{"),
        macrospec.MacroSpec("epsfig", "{"), macrospec.MacroSpec("plotone", "{"),
        macrospec.MacroSpec("graphicspath", "{"),
    ])
    return db


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _baseline_document(files: dict[str, bytes]) -> str | None:
    mains = [p for p, d in sorted(files.items()) if p.endswith(".tex") and b"\\documentclass" in d]
    if not mains:
        return None
    root = mains[0].rsplit("/", 1)[0] + "/" if "/" in mains[0] else ""

    def expand(text: str, depth: int) -> str:
        def sub(m: re.Match) -> str:
            name = m.group(1).strip()
            for cand in (root + name, root + name + ".tex"):
                if cand in files and depth < 10:
                    return expand(_decode(files[cand]), depth + 1)
            return ""
        return _INPUT_RE.sub(sub, text)

    return expand(_decode(files[mains[0]]), 0)


def _walk(nodes, out: list):
    from pylatexenc.latexwalker import LatexEnvironmentNode, LatexGroupNode, LatexMacroNode

    for n in nodes or []:
        if isinstance(n, LatexEnvironmentNode):
            if n.environmentname in _FIG_ENVS:
                out.append(n)
            _walk(n.nodelist, out)
        elif isinstance(n, LatexGroupNode):
            _walk(n.nodelist, out)
        elif isinstance(n, LatexMacroNode) and n.nodeargd is not None:
            _walk([a for a in n.nodeargd.argnlist if a is not None], out)


def _graphics_and_caption(env, l2t):
    from pylatexenc.latexwalker import LatexEnvironmentNode, LatexGroupNode, LatexMacroNode

    names, caption = [], None
    stack = list(env.nodelist)
    while stack:
        n = stack.pop(0)
        if isinstance(n, LatexMacroNode):
            args = [a for a in (n.nodeargd.argnlist if n.nodeargd else []) if a is not None]
            if n.macroname in ("includegraphics", "epsfig", "plotone") and args:
                names.append(args[-1].latex_verbatim().strip("{}").strip())
            elif n.macroname == "caption" and args:
                caption = l2t.nodelist_to_text(args[-1].nodelist if hasattr(args[-1], "nodelist") else [args[-1]])
            stack.extend(args)
        elif isinstance(n, (LatexGroupNode, LatexEnvironmentNode)):
            stack.extend(n.nodelist)
    return names, caption


def _baseline_raster(data: bytes, path: str) -> tuple[int, int] | None:
    from pdf2image import convert_from_bytes
    from PIL import Image

    ext = path.rsplit(".", 1)[-1].lower()
    if ext == "pdf":
        im = convert_from_bytes(data, size=512, single_file=True, timeout=20)[0]
    elif ext in ("eps", "ps"):
        res = rasterize(data, "eps")
        return (res.width, res.height) if res.status == "ok" else None
    else:
        im = Image.open(io.BytesIO(data))
        im.load()
        im = im.convert("RGB")
        im.thumbnail((512, 512))
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)   # the same level as ours
    return im.size


def baseline_paper(task: PaperTask, db) -> tuple[int, int, dict]:
    from pylatexenc.latex2text import LatexNodes2Text
    from pylatexenc.latexwalker import LatexWalker

    t = {"read": 0.0, "analysis": 0.0, "raster": 0.0}
    if task.format not in ("tar", "tex") or task.data is None:
        return 0, 0, t
    t0 = cpu_now()
    bundle = read_bundle(task.data, task.format, name=task.gzip_name)
    t["read"] = cpu_now() - t0
    t0 = cpu_now()
    doc = _baseline_document(bundle.files)
    if doc is None:
        t["analysis"] = cpu_now() - t0
        return 0, 0, t
    walker = LatexWalker(doc, latex_context=db, tolerant_parsing=True)
    nodes, _, _ = walker.get_latex_nodes()
    l2t = LatexNodes2Text()
    _ = l2t.nodelist_to_text(nodes)  # body text for the corpora: the whole document
    envs: list = []
    _walk(nodes, envs)
    found = [_graphics_and_caption(env, l2t) for env in envs]
    t["analysis"] = cpu_now() - t0
    t0 = cpu_now()
    images = 0
    for names, _caption in found:
        for name in names:
            for cand in (name, *(f"{name}.{e}" for e in ("pdf", "png", "jpg", "eps"))):
                if cand in bundle.files:
                    try:
                        images += _baseline_raster(bundle.files[cand], cand) is not None
                    except Exception:  # noqa: BLE001 - the baseline only needs to be timed
                        pass
                    break
    t["raster"] = cpu_now() - t0
    return len(found), images, t


def run_baseline(tasks: list[PaperTask]) -> dict:
    db = _baseline_context()
    stages = Counter()
    figures = images = 0
    wall0, cpu0 = time.perf_counter(), cpu_now()
    for task in tasks:
        f, i, t = baseline_paper(task, db)
        figures += f
        images += i
        stages.update(t)
    wall, cpu = time.perf_counter() - wall0, cpu_now() - cpu0
    return summarise("baseline (pylatexenc whole document + pdf2image)", len(tasks), figures, images, wall, cpu,
                     dict(stages), "cpu")


def real_fixture_analysis(runs: int = 3) -> list[dict]:
    """LaTeX analysis alone on the real arXiv fixtures (bigger documents than the sample's): ours vs the
    whole-document pylatexenc parse + LatexNodes2Text, median of `runs`."""
    from pylatexenc.latex2text import LatexNodes2Text
    from pylatexenc.latexwalker import LatexWalker

    from pipeline.extract.paper import analyse_latex

    fixtures = REPO.parent / "shared" / "fixtures" / "real"
    db = _baseline_context()
    rows = []
    for tarball in sorted(fixtures.glob("*.tar.gz")) if fixtures.is_dir() else []:
        bundle = read_bundle(tarball)
        doc = _baseline_document(bundle.files)
        if doc is None:
            continue

        def ours(b=bundle, name=tarball.name):
            return analyse_latex(b, name)

        def base(d=doc):
            nodes, _, _ = LatexWalker(d, latex_context=db, tolerant_parsing=True).get_latex_nodes()
            LatexNodes2Text().nodelist_to_text(nodes)
            _walk(nodes, [])

        def median_ms(fn) -> float:
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return sorted(times)[len(times) // 2] * 1000

        a = ours()
        rows.append({"fixture": tarball.name, "doc_kb": len(doc) / 1024, "figures": len(a.figures),
                     "ours_ms": median_ms(ours), "pylatexenc_ms": median_ms(base)})
        rows[-1]["ratio"] = rows[-1]["pylatexenc_ms"] / rows[-1]["ours_ms"]
    return rows


def summarise(name: str, papers: int, figures: int, images: int, wall: float, cpu: float, stages: dict,
              clock: str) -> dict:
    total = cpu if clock == "cpu" else wall
    shares = {k: v / total for k, v in stages.items()}
    shares["other"] = max(0.0, total - sum(stages.values())) / total
    return {
        "name": name, "papers": papers, "figures": figures, "images": images,
        "wall_s": wall, "cpu_s": cpu,
        "papers_per_s_per_core_wall": papers / wall, "papers_per_s_per_core_cpu": papers / cpu,
        "figures_per_s_per_core_wall": figures / wall, "figures_per_s_per_core_cpu": figures / cpu,
        "stage_seconds": stages, "stage_clock": clock, "stage_share": shares,
    }


def run_end_to_end(tars: list[Path], meta: dict, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="af-bench-") as tmp:
        wall0, cpu0 = time.perf_counter(), cpu_now()
        papers = figures = 0
        for tar in tars:
            s = extract_chunk(tar, tmp, workers=workers, metadata=meta)
            papers += s.papers
            figures += s.figures
        wall, cpu = time.perf_counter() - wall0, cpu_now() - cpu0
    return {"workers": workers, "papers": papers, "figures": figures, "wall_s": wall, "parent_cpu_s": cpu,  # workers are forkserver children: not counted here
            "papers_per_s": papers / wall, "papers_per_s_per_core": papers / wall / workers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bucket", help="a sample bucket (default: generate one in a temp dir)")
    ap.add_argument("--papers", type=int, default=120, help="papers when generating the bucket")
    ap.add_argument("--no-e2e", action="store_true", help="skip the extract_chunk runs")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "extract.json"))
    args = ap.parse_args()
    tmp = None
    if args.bucket:
        bucket = Path(args.bucket)
    else:
        from pipeline.sample.bucket import write_sample_bucket

        tmp = tempfile.TemporaryDirectory(prefix="af-bench-bucket-")
        bucket = Path(tmp.name)
        print(f"generating a {args.papers}-paper sample bucket in {bucket} ...", flush=True)
        write_sample_bucket(bucket, papers=args.papers, seed=0)
    tars, meta = load_bucket(bucket)
    tasks = tasks_of(tars, meta)
    formats = Counter(t.format for t in tasks)
    print(f"{len(tasks)} papers in {len(tars)} chunks: {dict(formats)}", flush=True)
    ours = run_ours(tasks)
    base = run_baseline(tasks)
    results = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "note": "2 shared vCPUs; wall clock is noisy, CPU seconds include Ghostscript children"},
        "bucket": str(bucket), "papers_by_format": dict(formats),
        "ours": ours, "baseline": base,
        "speedup_wall": base["wall_s"] / ours["wall_s"], "speedup_cpu": base["cpu_s"] / ours["cpu_s"],
        "end_to_end": [] if args.no_e2e else [run_end_to_end(tars, meta, w) for w in (1, 2)],
        "real_fixture_analysis": real_fixture_analysis(),
    }
    for r in (ours, base):
        print(f"{r['name']}: {r['papers']} papers, {r['figures']} figures in {r['wall_s']:.1f} s wall / "
              f"{r['cpu_s']:.1f} s CPU -> {r['papers_per_s_per_core_wall']:.2f} papers/s/core (wall), "
              f"{r['papers_per_s_per_core_cpu']:.2f} (CPU); {r['figures_per_s_per_core_wall']:.2f} figures/s/core")
        print(f"   share of {r['stage_clock']} time: " + ", ".join(f"{k} {v:.0%}" for k, v in r["stage_share"].items()))
    print(f"speed-up over the baseline: {results['speedup_wall']:.1f}x wall, {results['speedup_cpu']:.1f}x CPU")
    for e in results["end_to_end"]:
        print(f"extract_chunk, {e['workers']} worker(s): {e['papers']} papers in {e['wall_s']:.1f} s -> "
              f"{e['papers_per_s']:.2f} papers/s ({e['papers_per_s_per_core']:.2f} per core)")
    print("LaTeX analysis on the real arXiv fixtures (ms, median):")
    for r in results["real_fixture_analysis"]:
        print(f"  {r['fixture'][:34]:34s} {r['doc_kb']:6.1f} KB  ours {r['ours_ms']:7.1f}  "
              f"pylatexenc {r['pylatexenc_ms']:7.1f}  x{r['ratio']:.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"saved {args.out}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
