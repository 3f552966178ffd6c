"""Real-data check of the image models: scikit-learn's 1,797 handwritten 8x8 digits (10 classes), upsampled to 32 px.

Trains the conditional GAN and the conditional VAE on CPU on 80% of the digits and scores them on the other 20%:
- conditional accuracy: a CNN trained on the real training digits classifies generated digits of each requested
  class (target for the GAN: >= 0.90); the same classifier's accuracy on held-out real digits is the ceiling;
- Inception KID of generated digits vs held-out real digits, next to KID of real training digits vs the same
  held-out digits (the floor a perfect model would reach with this many samples);
- memorisation rate (nearest training digit much closer than held-out digits' nearest training digit);
- CVAE held-out negative ELBO in bits/dim (discretised logistic, 256 levels).

Run:  nice -n 10 .venv/bin/python bench/digits.py [--gan-steps 2000] [--vae-steps 2000] [--samples 500]
Writes bench/results/digits.json and sample grids bench/results/digits_{gan,vae}_samples.png.
"""

from __future__ import annotations

import argparse
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

from models import gan, vae  # noqa: E402
from models import metrics as M  # noqa: E402
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gan-steps", type=int, default=2500)
    ap.add_argument("--vae-steps", type=int, default=1500)
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
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for kind in ("gan", "vae"):
        if args.fresh and kind not in args.skip and (args.work / kind).exists():
            shutil.rmtree(args.work / kind)
    threads = configure_threads(None)
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
        data.update({k: v for k, v in results.items() if k not in ("gan", "vae")})
        data[kind] = section
        data["load_avg_end"] = os.getloadavg()
        args.results.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.results.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=float) + "\n")
        tmp.replace(args.results)
        results[kind] = section

    def evaluate(generate, tag: str) -> dict:
        return M.evaluate_generator(generate, shard.images, labels, train_idx, hold_idx, names,
                                    n_samples=args.samples, seed=0, cache_dir=args.work / "eval-cache")

    if "gan" not in args.skip:
        cfg = gan.GANConfig(resolution=32, g_ch=args.gan_ch, d_ch=args.gan_ch, z_dim=64, embed_dim=64,
                            batch_size=args.gan_batch, steps=args.gan_steps, diffaug=args.diffaug, checkpoint_every=250,
                            seed=0, device="cpu")
        t0 = time.monotonic()
        train_m = gan.train(shard.images, labels, cfg, args.work / "gan", indices=train_idx, class_names=names)
        G = gan.load_generator(args.work / "gan")
        eval_m = evaluate(lambda y, s: gan.sample(G, y, seed=s), "gan")
        save_grid(gan.sample(G, np.repeat(np.arange(10), 10), seed=1), ROOT / "bench/results/digits_gan_samples.png",
                  nrow=10, min_cell=64)
        store("gan", {"config": {k: getattr(cfg, k) for k in ("g_ch", "d_ch", "z_dim", "batch_size", "steps",
                                                                  "lr_g", "lr_d", "n_dis", "diffaug")},
                          "train": train_m, "eval": eval_m, "wall_seconds": time.monotonic() - t0})
        log.info("GAN: conditional accuracy %.3f (classifier on held-out real %.3f), KID %.4f (floor %.4f)",
                 eval_m["conditional_accuracy"], eval_m["classifier_accuracy_heldout_real"],
                 eval_m["kid_inception_vs_heldout"], eval_m["kid_inception_floor_train_vs_heldout"])

    if "vae" not in args.skip:
        vcfg = vae.VAEConfig(resolution=32, ch=args.vae_ch, z_dim=32, batch_size=64, steps=args.vae_steps,
                             kl_warmup_steps=500, checkpoint_every=250, seed=0, device="cpu")
        t0 = time.monotonic()
        train_m = vae.train(shard.images, labels, vcfg, args.work / "vae", indices=train_idx, holdout=hold_idx,
                            class_names=names)
        model = vae.load_vae(args.work / "vae")
        eval_m = evaluate(lambda y, s: vae.sample(model, y, seed=s), "vae")
        save_grid(vae.sample(model, np.repeat(np.arange(10), 10), seed=1), ROOT / "bench/results/digits_vae_samples.png",
                  nrow=10, min_cell=64)
        store("vae", {"config": {k: getattr(vcfg, k) for k in ("ch", "z_dim", "batch_size", "steps",
                                                                   "kl_warmup_steps", "lr")},
                          "train": train_m, "eval": eval_m, "wall_seconds": time.monotonic() - t0})
        log.info("VAE: held-out %.3f bits/dim, conditional accuracy %.3f, KID %.4f",
                 train_m.get("heldout_bits_per_dim", float("nan")), eval_m["conditional_accuracy"],
                 eval_m["kid_inception_vs_heldout"])

    if args.results.exists():
        results.update({k: v for k, v in json.loads(args.results.read_text()).items() if k in ("gan", "vae")})
    summary = {}
    for kind in ("gan", "vae"):
        if kind in results:
            e = results[kind]["eval"]
            summary[kind] = {
                "conditional_accuracy": e["conditional_accuracy"],
                "classifier_accuracy_heldout_real": e.get("classifier_accuracy_heldout_real"),
                "kid_vs_heldout": e.get("kid_inception_vs_heldout"),
                "kid_floor_train_vs_heldout": e.get("kid_inception_floor_train_vs_heldout"),
                "memorisation_rate": e.get("memorisation_rate"),
                "train_minutes": results[kind]["train"]["train_seconds"] / 60,
            }
            if kind == "vae":
                summary[kind]["heldout_bits_per_dim"] = results[kind]["train"].get("heldout_bits_per_dim")
    print(json.dumps(summary, indent=2))
    print(f"saved {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
