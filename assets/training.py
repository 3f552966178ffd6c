"""Training assets: a conditional GAN and a conditional VAE per category, an LSTM language model per field.

Each runs in the `gpu` pool (one at a time by default), requests a GPU under dagster-k8s through op tags,
takes its hyperparameters as Dagster config (preset `auto`: the GPU presets where the run has CUDA), and
resumes from its last checkpoint when re-materialised after a failure, on any machine: every checkpoint is
copied to the lake (`models/<kind>/<partition>/`) as soon as it is written, and the outputs (samples,
loss curve, metrics) when training ends. A run with `fresh: true` starts over.
"""

import json
import shutil
from pathlib import Path

import dagster as dg

from assets.checks import metrics_check, metrics_check_spec
from assets.metadata_values import md_image
from assets.partitions import category_partitions, field_partitions
from assets.resources import Compute, DataLake
from forge_common import atomic_write

GPU_TAGS = {
    "dagster-k8s/config": {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "4", "memory": "16Gi"}}},
    }
}
TRAIN_RETRY = dg.RetryPolicy(max_retries=1, delay=10)  # the retry resumes from the last checkpoint


class ImageModelConfig(dg.Config):
    # auto: gpu-128 where the run has CUDA, cpu-64 elsewhere; or cpu-small (32 px), cpu-64, gpu-64, gpu-128,
    # gpu-256, tiny (models/gan.py, models/vae.py)
    preset: str = "auto"
    minutes: float | None = None  # wall-clock budget; None = run the preset's steps
    steps: int | None = None
    batch_size: int | None = None
    label_column: int | None = None  # None = all label columns combined; else one column of the shard
    holdout_fraction: float = 0.1
    seed: int = 0
    checkpoint_every: int | None = None  # steps between checkpoints; None = the preset's
    fresh: bool = False  # True: ignore the checkpoint on the lake and start over
    evaluate: bool = True  # KID / conditional accuracy / memorisation after training
    eval_samples: int = 256  # generated images for the metrics (Inception runs at a few images/s on a CPU)


class TextModelConfig(dg.Config):
    preset: str = "auto"  # auto: arxiv-gpu with CUDA, arxiv-cpu elsewhere; or ptb-small, ptb-large
    minutes: float | None = None  # None = the preset's budget
    steps: int | None = None
    epochs: float | None = None
    seed: int = 1111
    fresh: bool = False


def resolve_preset(kind: str, preset: str, device: str) -> str:
    """The preset a run uses (`auto` resolved for its device); a bad name fails the run with the choices."""
    from models.config import resolve_preset as resolve

    try:
        return resolve(kind, preset, device)
    except ValueError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None


def build_config(kind: str, preset: str, device: str, **overrides):
    """models.config.build (the rules the CLI and the benchmarks use too); a bad value fails without retry."""
    from models.config import build

    try:
        return build(kind, preset, device, **overrides)
    except ValueError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None


def production_run_config(device: str, assets: tuple[str, ...]) -> dict:
    """Run config that names the presets for this code location's hardware (GPU presets where it has CUDA):
    what the schedules send, so a retraining run says in the UI which profile it used."""
    kinds = {"figure_gan": "gan", "figure_vae": "vae", "text_lstm": "lstm"}
    return {"ops": {a: {"config": {"preset": resolve_preset(kinds[a], "auto", device)}} for a in assets}}


def _model_dir(lake: DataLake, kind: str, partition: str, fresh: bool) -> tuple[Path, str]:
    """A clean local working folder with the lake's copy of the model (unless fresh), and the lake prefix.

    The local folder is emptied first: only what is on the lake counts, so a run on any machine resumes
    from the same checkpoint."""
    store = lake.lake()
    prefix = f"models/{kind}/{partition}"
    out = store.scratch("models", kind, partition)
    shutil.rmtree(out)
    out.mkdir(parents=True)
    if not fresh:
        store.fetch_dir(prefix, out)
    return out, prefix


def _publish(lake: DataLake, out: Path, prefix: str) -> None:
    lake.lake().upload_dir(out, prefix)


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
    from models.shard import ShardError, load_shard, split_indices
    from pipeline.dataset.shards import fetch_category_shard
    from pipeline.errors import UserError

    category = context.partition_key
    store = lake.lake()
    preset = resolve_preset(kind, config.preset, compute.device)
    try:
        shard_dir = fetch_category_shard(store, category)
        shard = load_shard(shard_dir)
    except (UserError, ShardError) as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    if len(shard) < 8:
        raise dg.Failure(f"{category}: only {len(shard)} images in the shard; too few to train a {kind}")
    module = gan if kind == "gan" else vae
    cfg = build_config(kind, preset, compute.device, steps=config.steps, minutes=config.minutes,
                       batch_size=config.batch_size, checkpoint_every=config.checkpoint_every, seed=config.seed)
    labels, names = shard.labels, shard.class_names
    if config.label_column is not None:
        if not 0 <= config.label_column < labels.shape[1]:
            raise dg.Failure(f"label_column {config.label_column} out of range: the shard's label columns are "
                             + ", ".join(f"{i} ({c})" for i, c in enumerate(shard.columns)), allow_retries=False)
        labels, names = labels[:, [config.label_column]], [names[config.label_column]]
    train_idx, hold_idx = split_indices(len(shard), config.holdout_fraction, seed=config.seed)
    out, prefix = _model_dir(lake, kind, category, config.fresh)
    resumed = (out / "checkpoint.pt").exists()
    context.log.info(f"{kind}[{category}]: preset {preset}, {len(train_idx)} training images at "
                     f"{shard.images.shape[-1]} px, {'resuming from' if resumed else 'checkpoints to'} "
                     f"{store.uri(prefix)}")
    kwargs = {"indices": train_idx, "class_names": names,
              "on_checkpoint": lambda path: store.upload(path, f"{prefix}/{path.name}")}
    if kind == "vae":
        kwargs["holdout"] = hold_idx
    metrics = module.train(shard.images, labels, cfg, out, **kwargs)
    if config.evaluate:
        metrics.update(_evaluate(context, kind, out, shard_dir, config.eval_samples, compute.device))
    metrics["preset"] = preset
    atomic_write(out / "metrics.json", json.dumps(metrics, indent=1, default=str))  # NaN stays NaN: the check sees it
    _publish(lake, out, prefix)
    meta = {"checkpoint": dg.MetadataValue.path(store.uri(prefix)), "preset": preset, "resumed": resumed,
            **_numbers(metrics)}
    if metrics.get("kid_note"):   # too few real images: say so where the KID would be, not a noisy number
        meta["kid_inception"] = dg.MetadataValue.text(metrics["kid_note"])
    for name, alt in (("samples.png", "samples by class"), ("loss_curve.png", "loss curve"),
                      ("reconstructions.png", "reconstructions"),
                      ("latent_walk.png", "latent walk between its two largest classes")):
        if (out / name).exists():
            meta[name.removesuffix(".png")] = md_image(out / name, f"{kind} {category} {alt}")
    required = ("heldout_bits_per_dim",) if kind == "vae" and len(hold_idx) else ()
    check = metrics_check(store, kind, category, f"figure_{kind}", required)
    return dg.MaterializeResult(metadata=meta, check_results=[check])


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
    pool="gpu", op_tags=GPU_TAGS, retry_policy=TRAIN_RETRY, check_specs=[metrics_check_spec("figure_gan")],
)
def figure_gan(context: dg.AssetExecutionContext, config: ImageModelConfig, lake: DataLake,
               compute: Compute) -> dg.MaterializeResult:
    """Conditional GAN (SNGAN/BigGAN-style, projection D, hinge, EMA, DiffAugment) on one category's figures."""
    return _train_image_model(context, "gan", config, lake, compute)


@dg.asset(
    group_name="models", partitions_def=category_partitions, deps=["category_figures"], kinds={"pytorch"},
    pool="gpu", op_tags=GPU_TAGS, retry_policy=TRAIN_RETRY, check_specs=[metrics_check_spec("figure_vae")],
)
def figure_vae(context: dg.AssetExecutionContext, config: ImageModelConfig, lake: DataLake,
               compute: Compute) -> dg.MaterializeResult:
    """Conditional VAE (label embedding on both sides, KL warm-up) on one category's figures; held-out bits/dim."""
    return _train_image_model(context, "vae", config, lake, compute)


@dg.asset(
    group_name="models", partitions_def=field_partitions, deps=["field_corpus"], kinds={"pytorch"},
    pool="gpu", op_tags=GPU_TAGS, retry_policy=TRAIN_RETRY, check_specs=[metrics_check_spec("text_lstm")],
)
def text_lstm(context: dg.AssetExecutionContext, config: TextModelConfig, lake: DataLake,
              compute: Compute) -> dg.MaterializeResult:
    """LSTM language model for one field (byte-level BPE, tied embeddings); held-out perplexity and bits/char."""
    from models import lstm
    from pipeline.dataset.corpus import fetch_field_corpus
    from pipeline.errors import UserError

    fld = context.partition_key
    store = lake.lake()
    preset = resolve_preset("lstm", config.preset, compute.device)
    try:
        corpus = fetch_field_corpus(store, fld)
    except UserError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    train_txt, valid_txt = corpus / "train.txt", corpus / "valid.txt"
    if train_txt.stat().st_size == 0:
        raise dg.Failure(f"{fld}: the corpus is empty; extract chunks with {fld} papers, then materialise "
                         f"field_corpus[{fld}]")
    cfg = build_config("lstm", preset, compute.device, minutes=config.minutes, steps=config.steps,
                       epochs=config.epochs, seed=config.seed)
    out, prefix = _model_dir(lake, "lstm", fld, config.fresh)
    resumed = (out / "checkpoint.pt").exists()
    valid = valid_txt if valid_txt.stat().st_size > 0 else None
    metrics = lstm.train(str(train_txt), cfg, out, valid=str(valid) if valid else None,
                         on_checkpoint=lambda path: store.upload(path, f"{prefix}/{path.name}"))
    prompt = "We propose"
    sample_text = lstm.generate(out, prompt, max_tokens=80, temperature=0.8, top_p=0.95, seed=0)
    _publish(lake, out, prefix)
    meta = {"checkpoint": dg.MetadataValue.path(store.uri(prefix)), "preset": preset, "resumed": resumed,
            **_numbers(metrics), "sample": dg.MetadataValue.md(f"> {sample_text}")}
    if (out / "loss_curve.png").exists():
        meta["loss_curve"] = md_image(out / "loss_curve.png", f"lstm {fld} loss curve")
    return dg.MaterializeResult(metadata=meta, check_results=[metrics_check(store, "lstm", fld, "text_lstm")])
