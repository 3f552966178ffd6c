"""Extraction accuracy on real papers: the 65 real sources of ../shared/corpus against hand-checked truth.

The truth (tests/data/real_corpus_truth.tsv) was written by hand, in two independent passes reconciled row by
row (conventions and disagreements: tests/data/real_corpus_truth.md). This script packs the corpus into one
chunk tar exactly as arXiv ships papers (`YYMM/<id>.gz` members), runs every paper through the pipeline's
own `process_paper` (LaTeX analysis, graphics resolution, rasterising, PNG encoding: what a chunk run does),
aligns the extracted figure environments with the truth rows of each paper, and scores:

- environments: recall (truth rows found) and precision (extracted figures that are real);
- resolved graphics: a matched figure's resolved files (or MISSING / <tikz>) all equal the truth's;
- caption source: the first 80 characters of the long caption's source, whitespace collapsed;
- caption text: the plain text, whitespace collapsed;
- rendered image: every graphic the truth resolves to a file got a stored image;
- figure_kind and section_kind: accuracy with confusion matrices (rows marked ambiguous in the truth are
  left out of figure_kind); figure_kind also on the papers the kind model was not fitted on;
- papers/s: wall clock of process_paper over the corpus on one core, images included;
- the newer figure columns, counted (no truth for them): figures whose paragraphs \\ref them (`mentions`),
  drawn figures with `tikz_source` (and how many hit the size cap), images that are a `duplicate_of` an
  earlier one (the rows go through the ChunkWriter into a scratch lake, as a chunk run writes them). The
  corpus has no arXiv metadata, so `license` is null for every row; `arxiv_version` too (no version in
  the file names).

    .venv/bin/python bench/real_corpus.py [--papers cs-01,phys-03] [--show-misses]

Prints per-paper lines and the totals; saves bench/results/real_corpus.json.
"""

import argparse
import csv
import io
import json
import re
import sys
import tarfile
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPUS = REPO.parent / "shared" / "corpus" / "papers"
TRUTH = REPO / "tests" / "data" / "real_corpus_truth.tsv"
KINDS = ("plot", "diagram", "photo", "table", "tikz", "other")
SECTIONS = ("introduction", "related", "method", "experiments", "results", "discussion", "conclusion", "appendix",
            "other")
_WS = re.compile(r"\s+")


def norm(text: str | None) -> str:
    return _WS.sub(" ", (text or "").replace("\u00a0", " ")).strip()


def load_truth(path: Path = TRUTH) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            out[row["paper"]].append(row)
    for rows in out.values():
        rows.sort(key=lambda r: int(r["order"]))
    return dict(out)


def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(" | ")] if value.strip() else []


def corpus_chunk(papers: list[str], out: Path) -> tuple[Path, dict[str, str]]:
    """The corpus files as one chunk tar; returns it and {paper_id: corpus file name}."""
    tar_path = out / "arXiv_src_2401_001.tar"
    ids = {}
    with tarfile.open(tar_path, "w") as tar:
        for k, name in enumerate(papers, 1):
            pid = f"2401.{k:05d}"
            ids[pid] = name
            data = (CORPUS / name).read_bytes()
            info = tarfile.TarInfo(f"2401/{pid}.gz")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return tar_path, ids


def extracted_figures(rows: list[dict]) -> list[dict]:
    """process_paper's figure rows (one per graphic) grouped back into figure environments, in order."""
    figs: dict[int, dict] = {}
    for r in rows:
        f = figs.setdefault(r["figure_index"], {
            "env": r["figure_env"], "label": r["label"] or "", "caption_latex": r["caption_latex"] or "",
            "caption_text": r["caption_text"] or "", "figure_kind": r["figure_kind"],
            "section_kind": r["section_kind"], "graphics": []})
        if r["graphic_status"] == "none":
            continue
        resolved = {"ok": r["graphic_path"], "tikz": "<tikz>"}.get(r["graphic_status"], "MISSING")
        if r["graphic_status"] == "error" and r["graphic_path"]:
            resolved = r["graphic_path"]  # found, but it did not render: the resolver was right
        f["graphics"].append({"resolved": resolved, "image": r["image"] is not None})
    return [figs[k] for k in sorted(figs)]


def _match_score(t: dict, e: dict) -> float:
    if t["label"] and t["label"] == e["label"]:
        return 3.0
    tc, ec = norm(t["caption_src80"])[:40], norm(e["caption_latex"])[:40]
    if tc and tc == ec:
        return 2.0
    if tc and ec and (tc[:20] == ec[:20]):
        return 1.5
    if not tc and not ec and not t["label"] and not e["label"]:
        return 1.0  # neither has a caption nor a label: match by position
    return 0.0


def align(truth: list[dict], ext: list[dict]) -> list[tuple[int, int]]:
    """Order-preserving pairs (truth index, extracted index) with the greatest total match score."""
    n, m = len(truth), len(ext)
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            s = _match_score(truth[i], ext[j])
            best[i][j] = max(best[i + 1][j], best[i][j + 1], best[i + 1][j + 1] + s if s else 0.0)
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        s = _match_score(truth[i], ext[j])
        if s and best[i][j] == best[i + 1][j + 1] + s:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def score(truth: dict[str, list[dict]], extracted: dict[str, list[dict]], show: bool = False) -> dict:
    c = Counter()
    kind_conf: dict[str, Counter] = defaultdict(Counter)
    sect_conf: dict[str, Counter] = defaultdict(Counter)
    per_paper, misses = {}, defaultdict(list)
    for paper, rows in sorted(truth.items()):
        ext = extracted.get(paper, [])
        pairs = align(rows, ext)
        p = Counter(truth=len(rows), extracted=len(ext), matched=len(pairs))
        for i, j in pairs:
            t, e = rows[i], ext[j]
            tres = split_list(t["resolved"])
            eres = [g["resolved"] for g in e["graphics"]]
            checks = {
                "resolved": tres == eres,
                "caption_src": norm(t["caption_src80"]) == norm(e["caption_latex"])[:80].strip(),
                "caption_text": norm(t["caption_text"]) == norm(e["caption_text"]),
                "section_kind": t["section_kind"] == e["section_kind"],
            }
            files = [k for k, r in enumerate(tres) if r not in ("MISSING", "<tikz>")]
            if files:
                c["image_total"] += 1
                rendered = len(eres) == len(tres) and all(e["graphics"][k]["image"] for k in files)
                c["image_ok"] += rendered
                if not rendered:
                    misses["image"].append(f"{paper} #{t['order']}: {tres} -> {eres}")
            if not t["ambiguous"].strip():
                checks["figure_kind"] = t["figure_kind"] == e["figure_kind"]
                kind_conf[t["figure_kind"]][e["figure_kind"]] += 1
            sect_conf[t["section_kind"]][e["section_kind"]] += 1
            for name, ok in checks.items():
                p[f"{name}_total"] += 1
                p[f"{name}_ok"] += ok
                if not ok:
                    got = {"resolved": eres, "caption_src": norm(e["caption_latex"])[:80],
                           "caption_text": e["caption_text"], "figure_kind": e["figure_kind"],
                           "section_kind": e["section_kind"]}[name]
                    want = {"resolved": tres, "caption_src": t["caption_src80"], "caption_text": t["caption_text"],
                            "figure_kind": t["figure_kind"], "section_kind": t["section_kind"]}[name]
                    misses[name].append(f"{paper} #{t['order']}: want {want!r} got {got!r}")
        matched_t = {i for i, _ in pairs}
        matched_e = {j for _, j in pairs}
        misses["env_missed"] += [f"{paper} #{r['order']} {r['label']!r} {r['caption_src80'][:50]!r}"
                                 for k, r in enumerate(rows) if k not in matched_t]
        misses["env_spurious"] += [f"{paper} extracted #{k + 1} {e['label']!r} {norm(e['caption_latex'])[:50]!r}"
                                   for k, e in enumerate(ext) if k not in matched_e]
        c.update(p)
        per_paper[paper] = dict(p)
    ratio = lambda a, b: round(c[a] / c[b], 4) if c[b] else None  # noqa: E731
    totals = {
        "papers": len(truth), "truth_figures": c["truth"], "extracted_figures": c["extracted"],
        "env_recall": ratio("matched", "truth"), "env_precision": ratio("matched", "extracted"),
        "resolved_graphics": ratio("resolved_ok", "resolved_total"),
        "caption_source": ratio("caption_src_ok", "caption_src_total"),
        "caption_text": ratio("caption_text_ok", "caption_text_total"),
        "rendered_image": ratio("image_ok", "image_total"),
        "figure_kind": ratio("figure_kind_ok", "figure_kind_total"),
        "figure_kind_scored": c["figure_kind_total"],
        "section_kind": ratio("section_kind_ok", "section_kind_total"),
        "always_plot_baseline": round(sum(kind_conf["plot"].values()) / max(c["figure_kind_total"], 1), 4),
    }
    return {"totals": totals, "per_paper": per_paper,
            "figure_kind_confusion": {k: dict(v) for k, v in kind_conf.items()},
            "section_kind_confusion": {k: dict(v) for k, v in sect_conf.items()},
            "misses": {k: v for k, v in misses.items()}}


def column_counts(rows: list[dict], ids: dict[str, str]) -> dict:
    """Counts of the mentions / tikz_source / duplicate_of / license / arxiv_version columns over the corpus,
    read back from a scratch lake the rows were written to by the ChunkWriter (which sets duplicate_of)."""
    from pipeline.dataset.reader import read_figures
    from pipeline.dataset.writer import ChunkWriter

    with tempfile.TemporaryDirectory(prefix="af-cols-") as d:
        with ChunkWriter(d, "arXiv_src_2401_001") as w:
            for r in rows:
                w.add_figure(r)
            w.commit()
        t = read_figures(d, lake_duplicates=True, columns=[
            "figure_id", "paper_id", "figure_index", "label", "graphic_status", "image_sha256", "mentions",
            "tikz_source", "duplicate_of", "license", "arxiv_version"]).to_pylist()
    figs: dict[tuple, dict] = {}
    for r in t:
        figs.setdefault((r["paper_id"], r["figure_index"]), r)
    drawn = [r for r in t if r["graphic_status"] == "tikz"]
    dups = [r for r in t if r["duplicate_of"]]
    same_paper = sum(r["duplicate_of"].split("/f")[0] == r["paper_id"] for r in dups)
    sizes = sorted(len(r["tikz_source"].encode()) for r in drawn if r["tikz_source"])
    return {
        "figures": len(figs), "figures_with_label": sum(bool(f["label"]) for f in figs.values()),
        "figures_with_mentions": sum(bool(f["mentions"]) for f in figs.values()),
        "mentions_total": sum(len(f["mentions"] or []) for f in figs.values()),
        "papers_with_mentions": len({p for (p, _), f in figs.items() if f["mentions"]}),
        "tikz_graphics": len(drawn), "tikz_with_source": sum(bool(r["tikz_source"]) for r in drawn),
        "tikz_truncated": sum("% [arxiv-forge: truncated" in (r["tikz_source"] or "") for r in drawn),
        "tikz_source_median_bytes": sizes[len(sizes) // 2] if sizes else None,
        "images": sum(bool(r["image_sha256"]) for r in t), "duplicate_images": len(dups),
        "duplicates_same_paper": same_paper, "duplicates_other_paper": len(dups) - same_paper,
        "duplicate_examples": sorted({f"{ids[r['paper_id']]}: {r['figure_id']} = {r['duplicate_of']}" for r in dups}),
        "license_known": sum(r["license"] is not None for r in t),
        "arxiv_version_known": sum(r["arxiv_version"] is not None for r in t),
    }


def run_extraction(papers: list[str]) -> tuple[dict[str, list[dict]], float]:
    from pipeline.extract.chunk import PaperTask, process_paper
    from pipeline.source.chunk import iter_chunk

    with tempfile.TemporaryDirectory(prefix="af-real-") as d:
        tar, ids = corpus_chunk(papers, Path(d))
        tasks = [PaperTask(paper_id=s.paper_id, yymm=s.yymm, format=s.format, source_bytes=s.compressed_bytes,
                           data=s.data, error=s.error, gzip_name=s.gzip_name) for s in iter_chunk(tar)]
    out, stages, rows = {}, Counter(), []
    t0 = time.perf_counter()
    for task in tasks:
        result = process_paper(task)
        out[ids[task.paper_id]] = extracted_figures(result.figures)
        stages.update(result.timings)
        rows += result.figures
    seconds = time.perf_counter() - t0
    run_extraction.stages = {k: round(v, 2) for k, v in stages.items()}  # CPU seconds by stage
    run_extraction.columns = column_counts(rows, ids)
    return out, seconds


def confusion_table(conf: dict, labels: tuple[str, ...]) -> str:
    head = "truth \\ got".ljust(14) + "".join(x[:8].rjust(9) for x in labels)
    lines = [head]
    for t in labels:
        if t in conf:
            lines.append(t.ljust(14) + "".join(str(conf[t].get(g, 0)).rjust(9) for g in labels))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--papers", help="comma-separated prefixes of corpus files (default: all)")
    ap.add_argument("--show-misses", action="store_true", help="print every miss")
    ap.add_argument("--results", default=str(REPO / "bench" / "results" / "real_corpus.json"))
    args = ap.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"no corpus at {CORPUS}: clone with ../shared beside the repo")
    truth = load_truth()
    if args.papers:
        keep = tuple(args.papers.split(","))
        truth = {k: v for k, v in truth.items() if k.startswith(keep)}
    extracted, seconds = run_extraction(sorted(truth))
    res = score(truth, extracted)
    res["totals"]["seconds"] = round(seconds, 1)
    res["totals"]["papers_per_s"] = round(len(truth) / seconds, 2)
    res["totals"]["cpu_seconds_by_stage"] = run_extraction.stages
    from fit_kind import held_out  # the papers the kind model was not fitted on (bench/fit_kind.py)

    ok = sum(p.get("figure_kind_ok", 0) for k, p in res["per_paper"].items() if held_out(k))
    total = sum(p.get("figure_kind_total", 0) for k, p in res["per_paper"].items() if held_out(k))
    res["totals"]["figure_kind_unseen_papers"] = round(ok / total, 4) if total else None
    res["columns"] = run_extraction.columns
    for paper, p in res["per_paper"].items():
        parts = [f"{p['matched']}/{p['truth']} envs ({p['extracted']} extracted)"]
        for k in ("resolved", "caption_src", "caption_text", "figure_kind", "section_kind"):
            if p.get(f"{k}_total"):
                parts.append(f"{k} {p[f'{k}_ok']}/{p[f'{k}_total']}")
        print(f"{paper:<42} " + ", ".join(parts))
    print()
    print(confusion_table(res["figure_kind_confusion"], KINDS))
    print()
    print(confusion_table(res["section_kind_confusion"], SECTIONS))
    print()
    for k, v in res["totals"].items():
        print(f"{k:<24} {v}")
    print()
    for k, v in res["columns"].items():
        if k != "duplicate_examples":
            print(f"{k:<24} {v}")
    for line in res["columns"]["duplicate_examples"]:
        print(f"  duplicate: {line}")
    if args.show_misses:
        for name, items in res["misses"].items():
            print(f"\n== {name} ({len(items)})")
            for item in items:
                print("  " + item)
    Path(args.results).write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    print(f"saved {args.results}")


if __name__ == "__main__":
    main()
