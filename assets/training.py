"""Training assets: a conditional GAN and a conditional VAE per category, an LSTM language model per field.

Each runs in the `gpu` pool (one at a time by default), requests a GPU under dagster-k8s through op tags,
takes its hyperparameters as Dagster config, and resumes from its last checkpoint when re-materialised
after a failure (checkpoints live under DATA_ROOT/models/<kind>/<partition>/). A run with
`fresh: true` starts over.
"""

import json
import shutil
from pathlib import Path

import dagster as dg

from assets.metadata_values import md_image
from assets.partitions import category_partitions, field_partitions
from assets.resources import Compute, DataLake

GPU_TAGS = {
    "dagster-k8s/config": {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "4", "memory": "16Gi"}}},
    }
}
TRAIN_RETRY = dg.RetryPolicy(max_retries=1, delay=10)  # the retry resumes from the last checkpoint


class ImageModelConfig(dg.Config):
    preset: str = "cpu-64"  # cpu-small (32 px), cpu-64, gpu-64, gpu-128, gpu-256 (models/gan.py, models/vae.py)
    minutes: float | None = 3.0  # wall-clock budget; None = run the preset's steps
    steps: int | None = None
    batch_size: int | None = None
    label_column: int | None = None  # None = all label columns combined; else one column of the shard
    holdout_fraction: float = 0.1
    seed: int = 0
    checkpoint_every: int | None = None  # steps between checkpoints; None = the preset's
    fresh: bool = False  # True: discard the checkpoint and start over
    evaluate: bool = True  # KID / conditional accuracy / memorisation after training
    eval_samples: int = 256  # generated images for the metrics (Inception runs at a few images/s on a CPU)


class TextModelConfig(dg.Config):
    preset: str = "arxiv-cpu"  # arxiv-cpu (BPE), ptb-small, ptb-large (models/lstm.py)
    minutes: float | None = 3.0
    steps: int | None = None
    epochs: float | None = None
    seed: int = 1111
    fresh: bool = False


def _out_dir(lake: DataLake, kind: str, partition: str, fresh: bool) -> Path:
    out = lake.local("models", kind, partition)
    if fresh:
        shutil.rmtree(out)
        out.mkdir(parents=True)
    return out


def flat_numbers(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Numeric metrics, nested dicts flattened (`valid: {bpc}` -> `valid_bpc`); the config is left out."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if k == "config":
            continue
        if isinstance(v, dict):
            out.update(flat_numbers(v, f"{prefix}{k}_"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


def _numbers(metrics: dict) -> dict:
    """Numeric metrics as Dagster floats (the UI plots them across materialisations)."""
    return {k: dg.MetadataValue.float(v) for k, v in flat_numbers(metrics).items()}


def _train_image_model(context: dg.AssetExecutionContext, kind: str, config: ImageModelConfig, lake: DataLake,
                       compute: Compute) -> dg.MaterializeResult:
    from models import gan, vae
    from models.shard import load_shard, split_indices

    category = context.partition_key
    shard_dir = lake.local("shards", category)
    try:
        shard = load_shard(shard_dir)
    except Exception as exc:  # noqa: BLE001 - the message names the file
        raise dg.Failure(f"{category}: no usable training shard at {shard_dir} ({exc}); "
                         f"materialise category_figures[{category}] first") from exc
    if len(shard) < 8:
        raise dg.Failure(f"{category}: only {len(shard)} images in the shard; too few to train a {kind}")
    module = gan if kind == "gan" else vae
    overrides = {k: v for k, v in {"steps": config.steps, "batch_size": config.batch_size,
                                   "checkpoint_every": config.checkpoint_every}.items() if v is not None}
    cfg = {**module.PRESETS[config.preset], **overrides, "minutes": config.minutes, "seed": config.seed,
           "device": compute.device}
    if config.minutes is not None and config.steps is None:
        cfg["steps"] = None  # the wall clock decides
    labels, names = shard.labels, shard.class_names
    if config.label_column is not None:
        labels, names = labels[:, [config.label_column]], [names[config.label_column]]
    train_idx, hold_idx = split_indices(len(shard), config.holdout_fraction, seed=config.seed)
    out = _out_dir(lake, kind, category, config.fresh)
    resumed = (out / "checkpoint.pt").exists()
    context.log.info(f"{kind}[{category}]: {len(train_idx)} training images at {shard.images.shape[-1]} px, "
                     f"{'resuming' if resumed else 'starting'} in {out}")
    kwargs = {"indices": train_idx, "class_names": names}
    if kind == "vae":
        kwargs["holdout"] = hold_idx
    metrics = module.train(shard.images, labels, cfg, out, **kwargs)
    if config.evaluate:
        metrics.update(_evaluate(context, kind, out, shard_dir, config.eval_samples, compute.device))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str))
    meta = {"checkpoint": dg.MetadataValue.path(str(out)), "resumed": resumed, **_numbers(metrics)}
    for name, alt in (("samples.png", "samples by class"), ("loss_curve.png", "loss curve"),
                      ("reconstructions.png", "reconstructions")):
        if (out / name).exists():
            meta[name.removesuffix(".png")] = md_image(out / name, f"{kind} {category} {alt}")
    return dg.MaterializeResult(metadata=meta)


def _evaluate(context: dg.AssetExecutionContext, kind: str, out: Path, shard_dir: Path, n_samples: int,
              device: str) -> dict:
    """Held-out metrics (KID, conditional accuracy, memorisation); a missing Inception file is a warning."""
    try:
        from models.evaluate import evaluate_image_model
    except ImportError:
        context.log.warning("models.evaluate is not available; skipping image metrics")
        return {}
    try:
        return evaluate_image_model(kind, out, shard_dir, n_samples=n_samples, device=device)
    except FileNotFoundError as exc:
        context.log.warning(f"evaluation skipped: {exc}")
        return {}


@dg.asset(
    group_name="models", partitions_def=category_partitions, deps=["category_figures"], kinds={"pytorch"},
    pool="gpu", op_tags=GPU_TAGS, retry_policy=TRAIN_RETRY,
)
def figure_gan(context: dg.AssetExecutionContext, config: ImageModelConfig, lake: DataLake,
               compute: Compute) -> dg.MaterializeResult:
    """Conditional GAN (SNGAN/BigGAN-style, projection D, hinge, EMA, DiffAugment) on one category's figures."""
    return _train_image_model(context, "gan", config, lake, compute)


@dg.asset(
    group_name="models", partitions_def=category_partitions, deps=["category_figures"], kinds={"pytorch"},
    pool="gpu", op_tags=GPU_TAGS, retry_policy=TRAIN_RETRY,
)
def figure_vae(context: dg.AssetExecutionContext, config: ImageModelConfig, lake: DataLake,
               compute: Compute) -> dg.MaterializeResult:
    """Conditional VAE (label embedding on both sides, KL warm-up) on one category's figures; held-out bits/dim."""
    return _train_image_model(context, "vae", config, lake, compute)


@dg.asset(
    group_name="models", partitions_def=field_partitions, deps=["field_corpus"], kinds={"pytorch"},
    pool="gpu", op_tags=GPU_TAGS, retry_policy=TRAIN_RETRY,
)
def text_lstm(context: dg.AssetExecutionContext, config: TextModelConfig, lake: DataLake,
              compute: Compute) -> dg.MaterializeResult:
    """LSTM language model for one field (byte-level BPE, tied embeddings); held-out perplexity and bits/char."""
    from models import lstm

    fld = context.partition_key
    corpus = lake.local("corpora", fld)
    train_txt, valid_txt = corpus / "train.txt", corpus / "valid.txt"
    if not train_txt.exists() or train_txt.stat().st_size == 0:
        raise dg.Failure(f"{fld}: no corpus at {train_txt}; materialise field_corpus[{fld}] first")
    cfg = lstm.preset_config(config.preset, minutes=config.minutes, steps=config.steps, epochs=config.epochs,
                             seed=config.seed, device=compute.device)
    out = _out_dir(lake, "lstm", fld, config.fresh)
    resumed = (out / "checkpoint.pt").exists()
    valid = valid_txt if valid_txt.exists() and valid_txt.stat().st_size > 0 else None
    metrics = lstm.train(str(train_txt), cfg, out, valid=str(valid) if valid else None)
    prompt = "We propose"
    sample_text = lstm.generate(out, prompt, max_tokens=80, temperature=0.8, top_p=0.95, seed=0)
    meta = {"checkpoint": dg.MetadataValue.path(str(out)), "resumed": resumed, **_numbers(metrics),
            "sample": dg.MetadataValue.md(f"> {sample_text}")}
    if (out / "loss_curve.png").exists():
        meta["loss_curve"] = md_image(out / "loss_curve.png", f"lstm {fld} loss curve")
    return dg.MaterializeResult(metadata=meta)
