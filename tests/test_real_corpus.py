"""Extraction on real papers: every paper of ../shared/corpus against the hand-checked truth in
tests/data/real_corpus_truth.tsv (how it was made: tests/data/real_corpus_truth.md).

Per paper: the figure environments found, their labels, resolved graphics and the start of their caption
source match the truth. LaTeX analysis only (no rasterising), so the 65 papers take a few seconds; the full
score, images and kinds included, is `bench/real_corpus.py`.
"""

import gzip
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "papers"
sys.path.insert(0, str(REPO / "bench"))

from real_corpus import extracted_figures, load_truth, norm, split_list  # noqa: E402

TRUTH = load_truth()


def _analysis_rows(path: Path) -> list[dict]:
    """The figure rows process_paper would write, without rasterising (figure_kind aside)."""
    from pipeline.extract.bundle import read_bundle
    from pipeline.extract.paper import analyse_latex

    bundle = read_bundle(gzip.decompress(path.read_bytes()), "tar")
    rows = []
    for fig in analyse_latex(bundle, path.name).figures:
        common = {"figure_index": fig.figure_index, "figure_env": fig.env, "label": fig.label,
                  "caption_latex": fig.caption_latex, "caption_text": fig.caption_text,
                  "figure_kind": fig.figure_kind, "section_kind": fig.section_kind, "image": None}
        for g in fig.graphics or [None]:
            rows.append({**common, "graphic_path": g.path if g else None,
                         "graphic_status": g.status if g else "none"})
    return rows


@pytest.mark.parametrize("paper", sorted(TRUTH))
def test_real_paper_matches_the_truth(paper):
    if not CORPUS.is_dir():
        pytest.skip(f"real corpus not found at {CORPUS} (clone with ../shared beside the repo)")
    truth = TRUTH[paper]
    got = extracted_figures(_analysis_rows(CORPUS / paper))
    assert len(got) == len(truth), f"{len(got)} figure environments, truth has {len(truth)}"
    for t, e in zip(truth, got, strict=True):
        where = f"figure {t['order']}"
        assert (e["label"] or "") == t["label"], where
        assert [g["resolved"] for g in e["graphics"]] == split_list(t["resolved"]), where
        assert norm(e["caption_latex"])[:80].strip()[:40] == norm(t["caption_src80"])[:40], where
