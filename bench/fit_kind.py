"""Fit the figure_kind model (pipeline/extract/kind_model.json) on the hand-labelled real corpus, and score it on
papers it never saw.

Every corpus paper goes through the pipeline's `process_paper` (the stored PNGs are what the model sees at run
time); extracted figures are aligned with the truth (tests/data/real_corpus_truth.tsv) as in
bench/real_corpus.py. Rows the truth marks ambiguous, and figures whose kind the source decides (TikZ, a bare
tabular) or that have no image, are left out. Papers are split by a stable hash of their file name: about
two thirds to fit, one third held out. The multinomial logistic regression's C and class weighting are
chosen by 5-fold cross-validation (grouped by paper) on the fitting papers only; the held-out papers score it, beside the caption-word rules
(the old label) and always answering "plot".

    .venv/bin/python bench/fit_kind.py            # writes kind_model.json and bench/results/fit_kind.json
"""

import hashlib
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from real_corpus import CORPUS, align, corpus_chunk, extracted_figures, load_truth  # noqa: E402

HELD_OUT_SHARE = 1 / 3


def held_out(paper: str) -> bool:
    return int(hashlib.sha1(paper.encode()).hexdigest()[:8], 16) / 16**8 < HELD_OUT_SHARE


def examples() -> list[dict]:
    """One example per matched, unambiguous truth figure: features, truth kind, old label, paper."""
    from pipeline.extract.bundle import read_bundle
    from pipeline.extract.chunk import PaperTask, process_paper
    from pipeline.extract.kind_image import png_features, source_features
    from pipeline.extract.paper import analyse_latex
    from pipeline.source.chunk import iter_chunk

    truth = load_truth()
    out = []
    with tempfile.TemporaryDirectory(prefix="af-kind-") as d:
        tar, ids = corpus_chunk(sorted(truth), Path(d))
        for s in iter_chunk(tar):
            paper = ids[s.paper_id]
            task = PaperTask(paper_id=s.paper_id, yymm=s.yymm, format=s.format, source_bytes=s.compressed_bytes,
                             data=s.data, error=s.error, gzip_name=s.gzip_name)
            rows = process_paper(task).figures
            records = analyse_latex(read_bundle(s.data, s.format), s.paper_id, with_paragraphs=False).figures
            figs = extracted_figures(rows)
            pngs: dict[int, list[bytes]] = {}
            for r in rows:
                if r["image"] is not None:
                    pngs.setdefault(r["figure_index"], []).append(r["image"]["bytes"])
            for i, j in align(truth[paper], figs):
                t, rec = truth[paper][i], records[j]
                images = pngs.get(rec.figure_index, [])
                if t["ambiguous"].strip() or rec.kind_rule or not images:
                    continue
                img = np.mean([png_features(p) for p in images], axis=0)
                ok = [g for g in rec.graphics if g.status == "ok"]
                src = source_features([g.format for g in ok], rec.has_tabular, len(rec.graphics), rec.caption_text,
                                      [g.path or "" for g in ok])
                out.append({"paper": paper, "x": np.concatenate([img, src]), "y": t["figure_kind"],
                            "old": rec.figure_kind})
            print(f"{paper}: {len(out)} examples so far", flush=True)
    return out


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.preprocessing import StandardScaler

    from pipeline.extract.kind_image import FEATURES, MODEL_FILE

    if not CORPUS.is_dir():
        sys.exit(f"no corpus at {CORPUS}: clone with ../shared beside the repo")
    ex = examples()
    train = [e for e in ex if not held_out(e["paper"])]
    test = [e for e in ex if held_out(e["paper"])]
    X, y = np.array([e["x"] for e in train]), np.array([e["y"] for e in train])
    groups = [e["paper"] for e in train]
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X)
    best_c, best_w, best = None, None, -1.0
    for weight in (None, "balanced"):
        for c in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0):
            clf = LogisticRegression(C=c, class_weight=weight, max_iter=5000)
            score = cross_val_score(clf, Xs, y, cv=GroupKFold(n_splits=5), groups=groups).mean()
            print(f"C={c} class_weight={weight}: cross-validated accuracy on the fitting papers {score:.3f}")
            if score > best:
                best_c, best_w, best = c, weight, score
    clf = LogisticRegression(C=best_c, class_weight=best_w, max_iter=5000).fit(Xs, y)
    Xt, yt = np.array([e["x"] for e in test]), np.array([e["y"] for e in test])
    pred = clf.predict(scaler.transform(Xt))
    acc = float((pred == yt).mean())
    old = float(np.mean([e["old"] == e["y"] for e in test]))
    plot = float(np.mean(yt == "plot"))
    conf = {k: dict(Counter(p for p, t in zip(pred, yt, strict=True) if t == k)) for k in sorted(set(yt))}
    MODEL_FILE.write_text(json.dumps({
        "features": list(FEATURES), "classes": [str(c) for c in clf.classes_],
        "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
        "coef": clf.coef_.tolist(), "intercept": clf.intercept_.tolist(),
        "fitted_on": sorted({e["paper"] for e in train}), "C": best_c, "class_weight": best_w,
    }, indent=1) + "\n")
    results = {"examples": len(ex), "fit_examples": len(train), "held_out_examples": len(test),
               "fit_papers": len({e["paper"] for e in train}), "held_out_papers": len({e["paper"] for e in test}),
               "C": best_c, "class_weight": best_w, "cv_accuracy": round(best, 4), "held_out_accuracy": round(acc, 4),
               "held_out_caption_rules": round(old, 4), "held_out_always_plot": round(plot, 4),
               "held_out_confusion": conf, "classes": Counter(e["y"] for e in ex)}
    print(json.dumps(results, indent=1))
    (REPO / "bench" / "results" / "fit_kind.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {MODEL_FILE}")


if __name__ == "__main__":
    main()
