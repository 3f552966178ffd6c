"""Real-data check of the image models: scikit-learn's 1,797 handwritten 8x8 digits (10 classes), upsampled to 32 px.

Trains the conditional GAN and the conditional VAE on CPU on 80% of the digits and scores them on the other 20%:
- conditional accuracy: a CNN trained on the real training digits classifies generated digits of each requested
  class (target for the GAN: >= 0.90); the same classifier's accuracy on held-out real digits is the ceiling;
- Inception KID of generated digits vs held-out real digits, next to KID of real training digits vs the same
  held-out digits (the floor a perfect model would reach with this many samples);
- memorisation rate (nearest training digit much closer than held-out digits' nearest training digit);
- CVAE held-out negative ELBO in bits/dim (discretised logistic, 256 levels).

Each model gets the same wall-clock budget (`--minutes`, default 6) with one torch thread, i.e. 6 CPU minutes.
Variants for comparison: `--gan-set key=value` / `--vae-set key=value` override config fields, `--tag NAME`
stores the run under its own name (results key `gan-NAME`, its own work directory and grid).

Run:  .venv/bin/python bench/digits.py [--minutes 6] [--samples 500] [--vae-set prior=standard --tag std]
Writes bench/results/digits.json and sample grids bench/results/digits_{gan,vae}[-TAG]_samples.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from forge_common import atomic_write  # noqa: E402
from models import gan, vae  # noqa: E402
from models import metrics as M  # noqa: E402
from models.config import build  # noqa: E402
from models.images import resize_uint8, save_grid  # noqa: E402
from models.shard import load_shard, split_indices, write_shard  # noqa: E402
from models.training import configure_threads  # noqa: E402

log = logging.getLogger("bench.digits")


def digits_shard(path: Path) -> Path:
    from sklearn.datasets import load_digits

    if (path / "classes.json").exists():  # written last by write_shard, so the shard is complete
        return path

    d = load_digits()
    img8 = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]     # 17 grey levels -> 0..255
    img32 = resize_uint8(img8, 32)                                             # Pillow bilinear upsampling
    return write_shard(path, img32, d.target.astype(np.int64), [str(i) for i in range(10)], columns=["digit"])


def parse_overrides(pairs: list[str]) -> dict:
    """`key=value` pairs as config overrides, each value parsed as JSON when it parses (numbers, true)."""
    out = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=6.0, help="training budget per model (wall clock, 1 thread)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gan-set", action="append", default=[], metavar="KEY=VALUE", help="GAN config override")
    ap.add_argument("--vae-set", action="append", default=[], metavar="KEY=VALUE", help="VAE config override")
    ap.add_argument("--tag", default="", help="name of this variant (results key and file names get -TAG)")
    ap.add_argument("--samples", type=int, default=500, help="generated images per model for the metrics")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "digits")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "digits.json")
    ap.add_argument("--fresh", action="store_true", help="delete previous checkpoints (otherwise resume)")
    ap.add_argument("--skip", choices=("gan", "vae"), action="append", default=[])
    ap.add_argument("--gan-ch", type=int, default=16)
    ap.add_argument("--vae-ch", type=int, default=16)
    ap.add_argument("--gan-batch", type=int, default=32)
    ap.add_argument("--diffaug", default="translation",
                    help="DiffAugment policy for the GAN (cutout hides most of a centred digit, so translation only)")
    ap.add_argument("--truncation", type=float, action="append", default=[], metavar="T",
                    help="also score GAN samples drawn with |z| <= T (truncation trick; repeatable)")
    ap.add_argument("--eval-only", action="store_true",
                    help="score the saved GAN of this tag without training it further (with --truncation)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    suffix = f"-{args.tag}" if args.tag else ""
    for kind in ("gan", "vae"):
        if args.fresh and kind not in args.skip and (args.work / (kind + suffix)).exists():
            shutil.rmtree(args.work / (kind + suffix))
    threads = configure_threads(args.threads)
    shard = load_shard(digits_shard(args.work / "shard"))
    train_idx, hold_idx = split_indices(len(shard), 0.2, seed=0)
    labels, names = shard.select_columns(None)
    results: dict = {
        "data": "sklearn load_digits: 1797 real 8x8 digits, 10 classes, upsampled to 32x32 (Pillow bilinear)",
        "n_train": int(len(train_idx)), "n_heldout": int(len(hold_idx)), "n_samples": args.samples,
        "torch_threads": threads, "load_avg_start": os.getloadavg(), "machine": platform.processor() or platform.machine(),
    }

    def store(kind: str, section: dict) -> None:
        """Read-modify-write so a GAN run and a VAE run in parallel processes both land in the file."""
        data = json.loads(args.results.read_text()) if args.results.exists() else {}
        data.update({k: v for k, v in results.items() if not k.startswith(("gan", "vae"))})
        data[kind] = section
        data["load_avg_end"] = os.getloadavg()
        atomic_write(args.results, json.dumps(data, indent=2, default=float) + "\n")
        results[kind] = section

    def evaluate(generate, tag: str) -> dict:
        return M.evaluate_generator(generate, shard.images, labels, train_idx, hold_idx, names,
                                    n_samples=args.samples, seed=0, cache_dir=args.work / "eval-cache")

    if "gan" not in args.skip:
        cfg = build("gan", "cpu-small", "cpu", **{
            "resolution": 32, "g_ch": args.gan_ch, "d_ch": args.gan_ch, "z_dim": 64, "embed_dim": 64,
            "batch_size": args.gan_batch, "minutes": args.minutes, "diffaug": args.diffaug, "checkpoint_every": 250,
            "seed": 0, "cpu_threads": args.threads, **parse_overrides(args.gan_set)})
        t0 = time.monotonic()
        if args.eval_only:  # re-score a saved GAN: its training figures and first scores stay as stored
            stored = json.loads(args.results.read_text()) if args.results.exists() else {}
            if f"gan{suffix}" not in stored:
                ap.error(f"--eval-only: no stored run gan{suffix} in {args.results}; train it first (without --eval-only)")
            section = stored[f"gan{suffix}"]
            G = gan.load_generator(args.work / f"gan{suffix}")
        else:
            train_m = gan.train(shard.images, labels, cfg, args.work / f"gan{suffix}", indices=train_idx,
                                class_names=names)
            G = gan.load_generator(args.work / f"gan{suffix}")
            section = {"config": dataclasses.asdict(cfg), "overrides": args.gan_set, "train": train_m,
                       "eval": evaluate(lambda y, s: gan.sample(G, y, seed=s), "gan")}
            save_grid(gan.sample(G, np.repeat(np.arange(10), 10), seed=1),
                      ROOT / f"bench/results/digits_gan{suffix}_samples.png", nrow=10, min_cell=64)
        for t in args.truncation:  # fidelity for variety: KID weighs both, so measure rather than assume
            m = evaluate(lambda y, s, t=t: gan.sample(G, y, seed=s, truncation=t), "gan")
            section.setdefault("eval_truncation", {})[str(t)] = m
            log.info("GAN%s truncation %.2f: conditional accuracy %.3f, KID %.4f, diversity ratio %.2f", suffix, t,
                     m["conditional_accuracy"], m["kid_inception_vs_heldout"], m["diversity_ratio"])
        if not args.eval_only:
            section["wall_seconds"] = time.monotonic() - t0
        store(f"gan{suffix}", section)
        eval_m = section["eval"]
        log.info("GAN%s: conditional accuracy %.3f, KID %s (floor %s), diversity ratio %s", suffix,
                 eval_m["conditional_accuracy"], eval_m["kid_inception_vs_heldout"],
                 eval_m["kid_inception_floor_train_vs_heldout"], eval_m.get("diversity_ratio"))

    if "vae" not in args.skip:
        vcfg = build("vae", "cpu-small", "cpu", **{
            "resolution": 32, "ch": args.vae_ch, "z_dim": 32, "batch_size": 64, "minutes": args.minutes,
            "kl_warmup_steps": 500, "checkpoint_every": 250, "seed": 0, "cpu_threads": args.threads,
            **parse_overrides(args.vae_set)})
        t0 = time.monotonic()
        train_m = vae.train(shard.images, labels, vcfg, args.work / f"vae{suffix}", indices=train_idx,
                            holdout=hold_idx, class_names=names)
        model = vae.load_vae(args.work / f"vae{suffix}")
        eval_m = evaluate(lambda y, s: vae.sample(model, y, seed=s), "vae")
        save_grid(vae.sample(model, np.repeat(np.arange(10), 10), seed=1),
                  ROOT / f"bench/results/digits_vae{suffix}_samples.png", nrow=10, min_cell=64)
        store(f"vae{suffix}", {"config": dataclasses.asdict(vcfg), "overrides": args.vae_set, "train": train_m,
                               "eval": eval_m, "wall_seconds": time.monotonic() - t0})
        log.info("VAE%s: held-out %.3f bits/dim, conditional accuracy %.3f, KID %s, diversity ratio %s", suffix,
                 train_m.get("heldout_bits_per_dim", float("nan")), eval_m["conditional_accuracy"],
                 eval_m["kid_inception_vs_heldout"], eval_m.get("diversity_ratio"))

    if args.results.exists():
        results.update({k: v for k, v in json.loads(args.results.read_text()).items()
                        if k.startswith(("gan", "vae"))})
    summary = {}
    for kind, section in sorted(results.items()):
        if not kind.startswith(("gan", "vae")) or not isinstance(section, dict):
            continue
        e = section["eval"]
        summary[kind] = {
            "conditional_accuracy": e["conditional_accuracy"],
            "kid_vs_heldout": e.get("kid_inception_vs_heldout"),
            "kid_floor_train_vs_heldout": e.get("kid_inception_floor_train_vs_heldout"),
            "diversity_ratio": e.get("diversity_ratio"),
            "diversity_ratio_real_train": e.get("diversity_ratio_real_train"),
            "memorisation_rate": e.get("memorisation_rate"),
            "steps": section["train"]["steps"],
            "train_minutes": section["train"]["train_seconds"] / 60,
        }
        if kind.startswith("vae"):
            summary[kind]["heldout_bits_per_dim"] = section["train"].get("heldout_bits_per_dim")
    print(json.dumps(summary, indent=2))
    print(f"saved {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
