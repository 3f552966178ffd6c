"""Evaluate a trained image model (GAN or VAE checkpoint directory) against its training shard.

The checkpoint records which shard rows it trained on, so the held-out rows are the rest of the shard; the label
columns are the shard columns whose class-name lists match the checkpoint's. Metrics (see models.metrics) are
merged into ckpt_dir/metrics.json and returned.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from models import metrics as M
from models import training
from models.shard import load_shard

log = logging.getLogger(__name__)


def _label_columns(saved_names: list[list[str]], shard_names: list[list[str]]) -> list[int]:
    cols, used = [], set()
    for names in saved_names:
        match = [k for k, sn in enumerate(shard_names) if sn == names and k not in used]
        if not match:
            raise ValueError(f"the shard has no label column with classes {names[:5]}...; "
                             "evaluate on the shard the model was trained on")
        cols.append(match[0])
        used.add(match[0])
    return cols


def load_image_model(kind: str, ckpt_dir: str | Path, device: str = "auto"):
    """(model, config, sample_fn(labels, seed) -> uint8) for a GAN or VAE checkpoint."""
    dev = training.pick_device(device)
    if kind == "gan":
        from models import gan

        G = gan.load_generator(ckpt_dir, dev)
        return G, G.config, lambda labels, seed: gan.sample(G, labels, seed=seed)
    if kind == "vae":
        from models import vae

        model = vae.load_vae(ckpt_dir, dev)
        return model, model.cfg, lambda labels, seed: vae.sample(model, labels, seed=seed)
    raise ValueError(f"unknown image model kind {kind!r} (gan or vae)")


def evaluate_image_model(kind: str, ckpt_dir: str | Path, shard_dir: str | Path, *, n_samples: int = 256,
                         n_reference: int | None = None, use_inception: bool = True, protocol: str = "tf",
                         seed: int = 0, device: str = "auto", write: bool = True) -> dict[str, Any]:
    """KID (+ floor, per class; FID at >= 2048), conditional accuracy, memorisation; VAE: held-out bits/dim.

    n_reference caps the held-out reference set (random subset, default = n_samples) so CPU evaluation stays
    affordable; the Inception features of the reference set are cached in ckpt_dir.
    """
    ckpt_dir = Path(ckpt_dir)
    saved = training.load_latest(ckpt_dir)
    if saved is None:
        raise FileNotFoundError(f"{ckpt_dir}: no checkpoint.pt; train a model there first")
    shard = load_shard(shard_dir)
    if int(saved.get("n_images", len(shard))) != len(shard):
        raise ValueError(f"{shard_dir} has {len(shard)} images but the model in {ckpt_dir} was trained on a shard "
                         f"of {saved.get('n_images')}; evaluate on the same shard")
    model, cfg, generate = load_image_model(kind, ckpt_dir, device)
    cols = _label_columns(cfg.class_names, shard.class_names)
    labels, names = shard.select_columns(cols)
    train_idx = np.asarray(saved.get("train_indices", np.arange(len(shard))))
    holdout = np.setdiff1d(np.arange(len(shard)), train_idx)
    n_ref = n_samples if n_reference is None else n_reference
    if len(holdout) > n_ref:
        holdout = np.sort(np.random.default_rng(seed).choice(holdout, n_ref, replace=False))
    dev = training.pick_device(device)
    if dev.type == "cpu":
        training.configure_threads(None)
    log.info("evaluating %s in %s: %d generated vs %d held-out images%s", kind, ckpt_dir, n_samples, len(holdout),
             " (Inception KID)" if use_inception else "")
    result = M.evaluate_generator(generate, shard.images, labels, train_idx, holdout, names, n_samples=n_samples,
                                  seed=seed, use_inception=use_inception, protocol=protocol, cache_dir=ckpt_dir,
                                  device=dev)
    result["checkpoint_step"] = int(saved["step"])
    result["label_columns"] = [shard.columns[c] for c in cols]
    if kind == "vae":
        from models import vae

        full_holdout = np.setdiff1d(np.arange(len(shard)), train_idx)
        if len(full_holdout):
            held = vae.heldout_bits_per_dim(model, shard.images, labels, full_holdout, seed=seed)
            result.update({f"heldout_{k}": v for k, v in held.items()})
    if write:
        training.write_metrics(ckpt_dir, {**training.read_metrics(ckpt_dir), **result})
    return result
