"""LaTeX analysis: correctness against the sample bucket's ground truth, and speed against whole-document
pylatexenc (the obvious alternative), in the same run.

    .venv/bin/python bench/extract_latex.py [--papers 120] [--seed 0] [--baseline 15]

Correctness (sample papers built by pipeline.sample, bundles read by pipeline.extract.bundle):
  figures found / expected, spurious figures, captions exactly right, graphics resolved right (path and
  status), labels, sub-captions, section titles, main file, decoys (dead figures) not extracted.
Speed: mean ms/paper of `analyse_latex` (and without paragraphs), caption conversion ms/caption, the
body-text reduction vs a whole-document pylatexenc LatexNodes2Text on the same bodies.
Prints the figures and writes bench/results/extract_latex.json.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_sample(n: int, seed: int):
    from pipeline.sample.papers import build_paper
    from pipeline.sample.plan import plan_papers

    return [build_paper(p) for p in plan_papers(n, seed=seed)]


def evaluate(papers) -> dict:
    from pipeline.extract.bundle import read_bundle
    from pipeline.extract.paper import analyse_latex

    c = dict(papers=0, tex_papers=0, main_ok=0, fig_expected=0, fig_found=0, fig_matched=0, spurious=0,
             env_ok=0, caption_ok=0, label_ok=0, section_title_ok=0, graphics_expected=0, graphics_ok=0,
             sub_expected=0, sub_ok=0, errors=0, kind_ok=0, section_kind_ok=0)
    kind_confusion: dict[str, int] = {}
    mismatches: list[dict] = []
    times, times_nopara = [], []
    for bp in papers:
        c["papers"] += 1
        truth = bp.truth
        if truth.get("source_format") not in ("tex", "tar"):
            continue
        try:
            bundle = read_bundle(bp.data)
        except Exception as e:  # noqa: BLE001 - counted, the bench goes on
            c["errors"] += 1
            mismatches.append({"paper": truth["paper_id"], "error": repr(e)})
            continue
        if bundle.source_format not in ("tex", "tar"):
            continue
        c["tex_papers"] += 1
        t0 = time.perf_counter()
        a = analyse_latex(bundle, truth["paper_id"])
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        analyse_latex(bundle, truth["paper_id"], with_paragraphs=False)
        times_nopara.append(time.perf_counter() - t0)
        if truth.get("main_tex") is None or a.main_tex == truth.get("main_tex") or (
                a.main_tex and a.main_tex.endswith(str(truth.get("main_tex")))):
            c["main_ok"] += 1
        else:
            mismatches.append({"paper": truth["paper_id"], "main": a.main_tex, "expected": truth.get("main_tex")})
        exp = truth.get("figures", [])
        c["fig_expected"] += len(exp)
        c["fig_found"] += len(a.figures)
        c["spurious"] += max(0, len(a.figures) - len(exp))
        for k, tf in enumerate(exp):
            if k >= len(a.figures):
                mismatches.append({"paper": truth["paper_id"], "figure": k + 1, "problem": "not found"})
                continue
            f = a.figures[k]
            c["fig_matched"] += 1
            c["env_ok"] += f.env == tf["env"]
            ok_cap = f.caption_text == tf["caption_text"]
            c["caption_ok"] += ok_cap
            if not ok_cap:
                mismatches.append({"paper": truth["paper_id"], "figure": k + 1, "caption": f.caption_text,
                                   "expected": tf["caption_text"], "latex": tf["caption_latex"]})
            c["label_ok"] += f.label == tf["label"]
            if f.label != tf["label"]:
                mismatches.append({"paper": truth["paper_id"], "figure": k + 1, "label": f.label,
                                   "expected": tf["label"]})
            c["section_title_ok"] += f.section_title == tf["section_title"]
            c["kind_ok"] += f.figure_kind == tf["figure_kind"]
            key = f"{tf['figure_kind']}->{f.figure_kind}"
            kind_confusion[key] = kind_confusion.get(key, 0) + 1
            c["section_kind_ok"] += f.section_kind in _SECTION_KIND_MAP.get(tf["section_kind"], (tf["section_kind"],))
            for j, tg in enumerate(tf["graphics"]):
                c["graphics_expected"] += 1
                g = f.graphics[j] if j < len(f.graphics) else None
                # "error" is decided by the rasteriser (a corrupt file): for the LaTeX side it is found.
                want = "ok" if tg["status"] == "error" else tg["status"]
                ok = g is not None and g.status == want and g.path == tg["path"]
                c["graphics_ok"] += ok
                if not ok:
                    mismatches.append({"paper": truth["paper_id"], "figure": k + 1, "graphic": j + 1,
                                       "got": g.to_json() if g else None, "expected": tg,
                                       "features": truth.get("features")})
                if tg.get("subcaption_text") is not None:
                    c["sub_expected"] += 1
                    c["sub_ok"] += g is not None and g.subcaption_text == tg["subcaption_text"]
                    if g is not None and g.subcaption_text != tg["subcaption_text"]:
                        mismatches.append({"paper": truth["paper_id"], "figure": k + 1, "graphic": j + 1,
                                           "sub": g.subcaption_text, "expected": tg["subcaption_text"]})
            if len(f.graphics) != len(tf["graphics"]):
                mismatches.append({"paper": truth["paper_id"], "figure": k + 1,
                                   "n_graphics": len(f.graphics), "expected": len(tf["graphics"])})
    c["ms_per_paper_mean"] = 1000 * statistics.mean(times) if times else None
    c["ms_per_paper_median"] = 1000 * statistics.median(times) if times else None
    c["ms_per_paper_no_paragraphs_mean"] = 1000 * statistics.mean(times_nopara) if times_nopara else None
    return {"counts": c, "mismatches": mismatches, "kind_confusion": kind_confusion}


# Older generator section kinds -> the kinds the extractor may call them (current ones compare directly).
_SECTION_KIND_MAP = {"intro": ("introduction",), "background": ("related",), "method": ("method",),
                     "results": ("experiments", "results"), "discussion": ("discussion", "conclusion"),
                     "appendix": ("appendix",)}


def rate(a: int, b: int) -> float | None:
    return round(100.0 * a / b, 2) if b else None


def speed_vs_pylatexenc(papers, n: int) -> dict:
    """Body paragraphs: our regex reduction vs pylatexenc LatexNodes2Text on the whole flattened body."""
    from pylatexenc.latex2text import LatexNodes2Text

    from pipeline.extract.bodytext import paragraphs
    from pipeline.extract.bundle import read_bundle
    from pipeline.extract.expand import expand_document
    from pipeline.extract.mainfile import TexSources, find_main_tex

    bodies = []
    for bp in papers:
        if bp.truth.get("source_format") not in ("tex", "tar") or len(bodies) >= n:
            continue
        bundle = read_bundle(bp.data)
        src = TexSources(bundle.files)
        ch = find_main_tex(bundle.files, src)
        if ch.path:
            text = expand_document(ch.path, src).text
            b = text.find("\\begin{document}")
            bodies.append(text[b if b >= 0 else 0:])
    if not bodies:
        return {}
    t0 = time.perf_counter()
    for b in bodies:
        paragraphs(b)
    ours = (time.perf_counter() - t0) / len(bodies)
    l2t = LatexNodes2Text(math_mode="verbatim")
    t0 = time.perf_counter()
    for b in bodies:
        l2t.latex_to_text(b)
    base = (time.perf_counter() - t0) / len(bodies)
    kb = statistics.mean(len(b) for b in bodies) / 1024
    return {"bodies": len(bodies), "mean_body_kb": round(kb, 1), "bodytext_ms": round(ours * 1000, 2),
            "pylatexenc_whole_body_ms": round(base * 1000, 1), "speedup": round(base / ours, 1)}


def caption_speed(papers) -> dict:
    from pipeline.extract import captions

    caps = [f["caption_latex"] for bp in papers for f in bp.truth.get("figures", []) if f.get("caption_latex")]
    if not caps:
        return {}
    from pylatexenc.latexwalker import LatexWalker

    captions.latex_to_text.cache_clear()
    t0 = time.perf_counter()
    ours = [captions.latex_to_text.__wrapped__(c) for c in caps]
    ms = (time.perf_counter() - t0) / len(caps) * 1000
    # The same pylatexenc context without hiding math and plain runs from its tokenizer: the plain way.
    wdb, l2t = captions._converter()
    t0 = time.perf_counter()
    plain = []
    for c in caps:
        nodes, _, _ = LatexWalker(c, latex_context=wdb, tolerant_parsing=True).get_latex_nodes()
        plain.append(captions.normalise_space(l2t.nodelist_to_text(nodes)))
    ms_plain = (time.perf_counter() - t0) / len(caps) * 1000
    same = sum(a == b for a, b in zip(ours, plain, strict=True))
    return {"captions": len(caps), "ms_per_caption": round(ms, 3),
            "ms_per_caption_plain_pylatexenc": round(ms_plain, 3),
            "same_text_as_plain_pct": rate(same, len(caps)),
            "mean_caption_chars": round(statistics.mean(len(c) for c in caps))}


def real_fixture_speed() -> dict:
    import tarfile

    from pylatexenc.latex2text import LatexNodes2Text

    from pipeline.extract.bundle import read_bundle
    from pipeline.extract.expand import expand_document
    from pipeline.extract.mainfile import TexSources
    from pipeline.extract.paper import analyse_latex

    real = ROOT.parent / "shared" / "fixtures" / "real"
    out = {}
    for name in ("1801.03879-1", "Upload9BadFileNames", "source_with_dir", "with__MACOSX_hidden", "upload3"):
        path = real / f"{name}.tar.gz"
        if not path.exists() or not tarfile.is_tarfile(path):
            continue
        bundle = read_bundle(path)
        analyse_latex(bundle, name)
        t0 = time.perf_counter()
        for _ in range(5):
            a = analyse_latex(bundle, name)
        ms = (time.perf_counter() - t0) / 5 * 1000
        t0 = time.perf_counter()
        a_np = analyse_latex(bundle, name, with_paragraphs=False)
        ms_np = (time.perf_counter() - t0) * 1000
        # the obvious alternative for the text corpus: pylatexenc over the whole flattened body
        base_ms = None
        if a.main_tex:
            src = TexSources(bundle.files)
            text = expand_document(a.main_tex, src).text
            body = text[max(0, text.find("\\begin{document}")):]
            t0 = time.perf_counter()
            LatexNodes2Text(math_mode="verbatim").latex_to_text(body)
            base_ms = round((time.perf_counter() - t0) * 1000, 1)
        out[name] = {"ms": round(ms, 2), "ms_without_paragraphs": round(ms_np, 2),
                     "pylatexenc_whole_body_ms": base_ms, "figures": len(a_np.figures),
                     "graphics": a.n_graphics, "kb_tex": round(sum(len(v) for k, v in bundle.files.items()
                                                                  if k in [a.main_tex, *a.included]) / 1024, 1),
                     "resolved": sum(g.status == "ok" for f in a.figures for g in f.graphics)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--papers", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", type=int, default=15, help="bodies for the pylatexenc comparison")
    ap.add_argument("--show", type=int, default=15, help="mismatches to print")
    args = ap.parse_args()
    t0 = time.perf_counter()
    papers = build_sample(args.papers, args.seed)
    build_s = time.perf_counter() - t0
    ev = evaluate(papers)
    c = ev["counts"]
    summary = {
        "sample_papers": c["papers"], "tex_papers": c["tex_papers"], "build_s": round(build_s, 1),
        "main_file_ok_pct": rate(c["main_ok"], c["tex_papers"]),
        "figures_found_pct": rate(min(c["fig_matched"], c["fig_expected"]), c["fig_expected"]),
        "figures_expected": c["fig_expected"], "figures_found": c["fig_found"], "spurious": c["spurious"],
        "env_ok_pct": rate(c["env_ok"], c["fig_matched"]),
        "captions_exact_pct": rate(c["caption_ok"], c["fig_matched"]),
        "labels_ok_pct": rate(c["label_ok"], c["fig_matched"]),
        "section_title_ok_pct": rate(c["section_title_ok"], c["fig_matched"]),
        "section_kind_agrees_pct": rate(c["section_kind_ok"], c["fig_matched"]),
        "figure_kind_agrees_pct": rate(c["kind_ok"], c["fig_matched"]),
        "figure_kind_confusion": dict(sorted(ev["kind_confusion"].items())),
        "graphics_resolved_right_pct": rate(c["graphics_ok"], c["graphics_expected"]),
        "graphics_expected": c["graphics_expected"],
        "subcaptions_ok_pct": rate(c["sub_ok"], c["sub_expected"]),
        "analysis_ms_per_paper_mean": round(c["ms_per_paper_mean"] or 0, 2),
        "analysis_ms_per_paper_median": round(c["ms_per_paper_median"] or 0, 2),
        "analysis_ms_per_paper_without_paragraphs": round(c["ms_per_paper_no_paragraphs_mean"] or 0, 2),
    }
    summary["captions"] = caption_speed(papers)
    summary["bodytext_vs_pylatexenc"] = speed_vs_pylatexenc(papers, args.baseline)
    summary["real_fixtures"] = real_fixture_speed()
    print(json.dumps(summary, indent=2))
    for m in ev["mismatches"][: args.show]:
        print("MISMATCH", json.dumps(m)[:600])
    out = ROOT / "bench" / "results" / "extract_latex.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "mismatches": ev["mismatches"][:200]}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
