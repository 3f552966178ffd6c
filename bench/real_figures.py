"""The image models on real figures: the 65 real papers of ../shared/corpus through the pipeline, a GAN and a VAE.

1. The corpus goes through the extraction pipeline as one chunk (`extract_chunk`, images rendered by poppler and
   Ghostscript as in production). The corpus has no arXiv metadata, so every paper is filed under one category,
   `corpus`, and its shard is built by `update_category_shard` (64 px RGB, letterboxed, white trimmed) with the
   extractor's figure_kind as the label.
2. A quarter of the figures is held out (about 230, above the 200 below which KID is not reported).
3. The GAN and the VAE train at the same time, one process and one torch thread each, for `--minutes` of wall
   clock (6 CPU minutes), with their `cpu-64` presets through models.config.build (only the budget replaced).
4. Each is scored on the held-out figures (KID against them with the floor of real training figures, within-class
   diversity, conditional accuracy, memorisation), and sample grids are saved next to a grid of real figures.

    .venv/bin/python bench/real_figures.py [--minutes 6] [--samples 500]

Writes bench/results/real_figures.json (one entry per preset) and grids
bench/results/real_figures_real.png, real_figures_PRESET_{gan,vae}.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

log = logging.getLogger("bench.real_figures")
CATEGORY = "corpus"
RESULTS = ROOT / "bench" / "results"


def build_shard(work: Path) -> Path:
    """Extract the corpus (once) and build its shard; returns the local shard directory."""
    from real_corpus import CORPUS, corpus_chunk

    from pipeline.dataset.shards import fetch_category_shard, update_category_shard
    from pipeline.extract.chunk import extract_chunk

    lake = work / "lake"
    if not (lake / "figures").exists():
        if not CORPUS.is_dir():
            raise SystemExit(f"{CORPUS} not found: this benchmark needs ../shared/corpus beside the repository")
        work.mkdir(parents=True, exist_ok=True)
        tar, ids = corpus_chunk(sorted(p.name for p in CORPUS.iterdir() if p.is_file()), work)
        t0 = time.monotonic()
        summary = extract_chunk(tar, lake, workers=2,
                                metadata={pid: {"primary_category": CATEGORY, "field": "corpus"} for pid in ids})
        log.info("extracted %d papers in %.0f s", len(ids), time.monotonic() - t0)
        del summary
    shard = update_category_shard(lake, CATEGORY, resolution=64, channels=3, label_columns=("figure_kind",))
    log.info("shard: %d images, classes %s", shard.images, shard.class_counts)
    return fetch_category_shard(lake, CATEGORY, work / "shard")


def train_one(kind: str, shard_dir: Path, out: Path, minutes: float, holdout: float, samples: int,
              preset: str) -> dict:
    """One model in this process (1 thread): train, evaluate, save grids; returns its figures."""
    import shutil

    import torch

    from models import gan, vae
    from models import metrics as M
    from models.config import build
    from models.images import save_grid
    from models.shard import load_shard, split_indices

    torch.set_num_threads(1)
    shard = load_shard(shard_dir)
    train_idx, hold_idx = split_indices(len(shard), holdout, seed=0)
    labels, names = shard.select_columns(None)
    cfg = build(kind, preset, "cpu", minutes=minutes, cpu_threads=1, seed=0, checkpoint_every=250)
    if out.exists():
        shutil.rmtree(out)
    module = gan if kind == "gan" else vae
    kwargs = {"holdout": hold_idx} if kind == "vae" else {}
    train_m = module.train(shard.images, labels, cfg, out, indices=train_idx, class_names=names, **kwargs)
    model = gan.load_generator(out) if kind == "gan" else vae.load_vae(out)
    eval_m = M.evaluate_generator(lambda y, s: module.sample(model, y, seed=s), shard.images, labels, train_idx,
                                  hold_idx, names, n_samples=samples, seed=0, cache_dir=out.parent / "eval-cache")
    shown = np.repeat(np.unique(labels[train_idx, 0]), 8)
    save_grid(module.sample(model, shown, seed=1), RESULTS / f"real_figures_{preset}_{kind}.png", nrow=8,
              min_cell=64)
    return {"config": {k: v for k, v in cfg.__dict__.items() if k not in ("class_names",)}, "train": train_m,
            "eval": eval_m}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--samples", type=int, default=500, help="generated images per model for the metrics")
    ap.add_argument("--holdout", type=float, default=0.25)
    ap.add_argument("--preset", default="cpu-64", help="model preset (cpu-small: 32 px, about 10x the steps)")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "real_figures")
    ap.add_argument("--one", help=argparse.SUPPRESS)   # child process: gan or vae
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    shard_dir = args.work / "shard"
    if args.one:
        result = train_one(args.one, shard_dir, args.work / f"{args.preset}-{args.one}", args.minutes, args.holdout,
                           args.samples, args.preset)
        (args.work / f"{args.preset}-{args.one}.json").write_text(json.dumps(result, default=str))
        return 0

    from models.images import save_grid
    from models.shard import load_shard, split_indices

    build_shard(args.work)
    shard = load_shard(shard_dir)
    train_idx, hold_idx = split_indices(len(shard), args.holdout, seed=0)
    labels, names = shard.select_columns(None)
    real_rows = np.concatenate([train_idx[labels[train_idx, 0] == c][:8] for c in np.unique(labels[train_idx, 0])])
    save_grid(shard.images[np.sort(real_rows)], RESULTS / "real_figures_real.png", nrow=8)
    load_before = os.getloadavg()
    procs = {k: subprocess.Popen([sys.executable, __file__, "--one", k, "--minutes", str(args.minutes),
                                  "--samples", str(args.samples), "--holdout", str(args.holdout),
                                  "--preset", args.preset, "--work", str(args.work)], env={**os.environ, "OMP_NUM_THREADS": "1"})
             for k in ("gan", "vae")}
    for k, p in procs.items():
        if p.wait() != 0:
            raise SystemExit(f"{k} failed (exit {p.returncode})")
    counts = np.bincount(labels[:, 0], minlength=len(names[0]))
    results = {
        "data": "the 65 real papers of ../shared/corpus through extract_chunk; 64 px RGB shard, label = the "
                "extractor's figure_kind",
        "images": int(len(shard)), "n_train": int(len(train_idx)), "n_heldout": int(len(hold_idx)),
        "class_counts": {n: int(c) for n, c in zip(names[0], counts, strict=True) if c},
        "minutes_per_model": args.minutes, "threads_per_model": 1, "load_average": [load_before, os.getloadavg()],
    }
    for k in ("gan", "vae"):
        results[k] = json.loads((args.work / f"{args.preset}-{k}.json").read_text())
    path = RESULTS / "real_figures.json"
    everything = json.loads(path.read_text()) if path.exists() else {}
    everything[args.preset] = results
    path.write_text(json.dumps(everything, indent=2, default=str) + "\n")
    for k in ("gan", "vae"):
        e, t = results[k]["eval"], results[k]["train"]
        print(f"{k}: {t['steps']} steps; KID {e.get('kid_inception_vs_heldout')} (floor "
              f"{e.get('kid_inception_floor_train_vs_heldout')}), conditional accuracy {e['conditional_accuracy']:.3f} "
              f"(real {e.get('classifier_accuracy_heldout_real')}), diversity ratio {e.get('diversity_ratio')}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
