"""`arxiv-forge train|generate|evaluate gan|vae`: the conditional image models from `models.gan` / `models.vae`.

Registered by `pipeline.commands.models`; torch and `models` are imported inside the handlers only.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from pipeline.commands import example
from pipeline.errors import UserError

log = logging.getLogger(__name__)

_FMT = argparse.RawDescriptionHelpFormatter
PRESET_NAMES = ("cpu-small", "cpu-64", "gpu-64", "gpu-128", "gpu-256", "tiny")  # = models.gan/vae.PRESETS (tested)


def register(train_sub, generate_sub, evaluate_sub) -> None:
    for kind in ("gan", "vae"):
        _add_train(train_sub, kind)
        _add_generate(generate_sub, kind)
        _add_evaluate(evaluate_sub, kind)


_NAMES = {"gan": "conditional GAN (SNGAN/BigGAN-style, projection D, hinge, EMA, DiffAugment)",
          "vae": "conditional VAE (discretised logistic likelihood, KL warm-up; bits/dim)"}


def _add_train(sub, kind: str) -> None:
    p = sub.add_parser(
        kind, help=f"train a {_NAMES[kind]} on a training shard", formatter_class=_FMT,
        description=f"Train (or resume) a {_NAMES[kind]} on a shard directory\n"
                    "(images.npy uint8 N x C x H x W, labels.npy, classes.json). OUT gets checkpoint.pt,\n"
                    "metrics.json, loss_curve.png and samples.png" + (", reconstructions.png" if kind == "vae" else "")
                    + ". Running the same\ncommand again resumes from the last checkpoint. A held-out split "
                    "(--holdout) is never trained on\nand is used for the metrics. Presets: cpu-small (32 px), "
                    "cpu-64, gpu-64, gpu-128, gpu-256,\ntiny (smoke tests). Without --steps/--minutes the preset's budget "
                    "applies (CPU presets:\ntheir steps or 5 minutes, whichever comes first); either flag replaces it.",
        epilog=example(f"""
arxiv-forge train {kind} --shard var/data/shards/cs.CV --out var/models/{kind}-cs.CV --minutes 10
arxiv-forge train {kind} --shard digits-shard --out runs/{kind}-digits --resolution 32 --steps 3000 --seed 1
arxiv-forge train {kind} --shard var/data/shards/cs.CV --out runs/{kind}-gpu --preset gpu-128 --label-column figure_kind"""),
    )
    p.add_argument("--shard", required=True, type=Path, metavar="DIR", help="training shard directory")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for checkpoint and outputs")
    p.add_argument("--preset", choices=PRESET_NAMES,
                   help="base configuration (default: cpu-small / cpu-64 on CPU by resolution, gpu-64 / gpu-128 on CUDA)")
    p.add_argument("--resolution", type=int, choices=(32, 64, 128, 256),
                   help="training resolution (default: the preset's; images are resized on the fly)")
    budget = p.add_argument_group("budget (replaces the preset's; both may be given, the first reached stops the run)")
    budget.add_argument("--steps", type=int, help="total training steps (counting steps before a resume)")
    budget.add_argument("--minutes", type=float, help="wall-clock budget for this run; stops cleanly and checkpoints")
    p.add_argument("--batch-size", type=int, help="images per step")
    p.add_argument("--label-column", action="append", metavar="K",
                   help="label column (index or name) to condition on; repeat to combine several; "
                        "'all' = every column (default: column 0)")
    p.add_argument("--holdout", type=float, default=0.1, help="fraction of the shard held out for metrics (0.1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--eval-samples", type=int, default=0,
                   help="after training, evaluate with this many samples (0 = skip; or run `evaluate`)")
    p.set_defaults(func=_train, kind=kind)


def _add_generate(sub, kind: str) -> None:
    p = sub.add_parser(
        kind, help=f"sample images from a trained {kind}", formatter_class=_FMT,
        description=f"Sample N images of one class from a trained {kind} checkpoint. OUT ending in .png\n"
                    "writes a grid; .npy writes uint8 N x C x H x W. With --interpolate A B, a latent walk\n"
                    "instead: --rows rows that move from label A to label B (--steps columns, one latent per\n"
                    "row), then --rows rows that move between two random latents of label A.",
        epilog=example(f"""
arxiv-forge generate {kind} --checkpoint var/models/{kind}-cs.CV --label plot -n 64 --out plots.png
arxiv-forge generate {kind} --checkpoint runs/{kind}-digits --label 7 -n 1000 --out sevens.npy --seed 3
arxiv-forge generate {kind} --checkpoint runs/{kind}-digits --interpolate 3 8 --out walk-3-8.png"""),
    )
    p.add_argument("--checkpoint", required=True, type=Path, metavar="DIR", help="training output directory")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--label", metavar="NAME_OR_INDEX",
                      help="class name or index; for several label columns give one per column, comma-separated")
    what.add_argument("--interpolate", nargs=2, metavar=("A", "B"), help="latent walk from label A to label B")
    p.add_argument("--steps", type=int, default=8, help="columns of a latent walk (8)")
    p.add_argument("--rows", type=int, default=4, help="rows of each part of a latent walk (4)")
    p.add_argument("-n", type=int, default=64, help="number of images (64)")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help=".png grid or .npy array")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (0)")
    if kind == "gan":
        p.add_argument("--truncation", type=float, help="truncation trick threshold for z (e.g. 1.0)")
    else:
        p.add_argument("--temperature", type=float, default=1.0, help="scale of z (1.0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(func=_generate, kind=kind)


def _add_evaluate(sub, kind: str) -> None:
    p = sub.add_parser(
        kind, help=f"evaluate a trained {kind} (KID, conditional accuracy, memorisation"
                   + (", bits/dim)" if kind == "vae" else ")"),
        formatter_class=_FMT,
        description="Evaluate against the shard the model was trained on: Inception KID vs held-out images (and\n"
                    "the train-vs-held-out floor), per-class KID, FID when both sets have >= 2048 images,\n"
                    "conditional accuracy of a classifier trained on the real training images, and the\n"
                    "memorisation rate" + (", plus held-out bits/dim" if kind == "vae" else "") +
                    ". Prints the metrics and merges them into CHECKPOINT/metrics.json.",
        epilog=example(f"""
arxiv-forge evaluate {kind} --checkpoint var/models/{kind}-cs.CV --shard var/data/shards/cs.CV
arxiv-forge evaluate {kind} --checkpoint runs/{kind}-digits --shard digits-shard --samples 1000 --json"""),
    )
    p.add_argument("--checkpoint", required=True, type=Path, metavar="DIR", help="training output directory")
    p.add_argument("--shard", required=True, type=Path, metavar="DIR", help="the shard the model was trained on")
    p.add_argument("--samples", type=int, default=256, help="generated images to score (256)")
    p.add_argument("--reference", type=int, help="held-out images to compare with (default = --samples)")
    p.add_argument("--no-inception", action="store_true", help="skip Inception KID/FID (classifier metrics only)")
    p.add_argument("--protocol", choices=("tf", "pytorch-fid", "clean"), default="tf",
                   help="Inception preprocessing: tf (TTUR/StyleGAN, default), pytorch-fid, clean (clean-fid)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(func=_evaluate, kind=kind)


# ---------------------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------------------

def _open_shard(path: Path):
    from models.shard import ShardError, load_shard

    try:
        return load_shard(path)
    except ShardError as exc:
        raise UserError(str(exc)) from exc


def _device(pref: str):
    from models.training import pick_device

    try:
        return pick_device(pref)
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"--device {pref}: {exc}") from exc


def _columns(spec: list[str] | None) -> list[str] | None:
    if not spec:
        return ["0"]
    if any(s.strip().lower() == "all" for s in spec):
        return None
    return [c.strip() for s in spec for c in s.split(",") if c.strip()]


def _train(args) -> int:
    from models import gan, vae
    from models.shard import ShardError, split_indices

    module = gan if args.kind == "gan" else vae
    shard = _open_shard(args.shard)
    if len(shard) < 4:
        raise UserError(f"{args.shard}: only {len(shard)} images; a shard needs at least 4 to train a {args.kind}")
    device = _device(args.device)
    wanted = _columns(args.label_column)
    try:
        labels, names = shard.select_columns(wanted)
        column_names = [shard.columns[shard.column_index(c)] for c in (wanted or range(len(shard.columns)))]
    except ShardError as exc:
        raise UserError(f"--label-column: {exc}") from exc
    if not 0 <= args.holdout < 1:
        raise UserError("--holdout must be in [0, 1)")
    from models.config import build

    try:
        cfg = build(args.kind, args.preset or "auto", str(device),
                    resolution=args.resolution or (None if args.preset else (32 if shard.resolution <= 32 else 64)),
                    steps=args.steps, minutes=args.minutes, batch_size=args.batch_size,
                    checkpoint_every=args.checkpoint_every, seed=args.seed, columns=column_names)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    train_idx, hold_idx = split_indices(len(shard), args.holdout, seed=args.seed)
    kwargs = {"indices": train_idx, "class_names": names}
    if args.kind == "vae":
        kwargs["holdout"] = hold_idx
    log.info("training %s on %s: %d images (%d held out), %d px shard -> %d px, preset %s",
             args.kind, args.shard, len(train_idx), len(hold_idx), shard.resolution, cfg.resolution, cfg.preset)
    try:
        metrics = module.train(shard.images, labels, cfg, args.out, **kwargs)
    except ValueError as exc:  # bad config or a checkpoint with another architecture in --out
        raise UserError(f"{args.out}: {exc}") from exc
    if args.eval_samples:
        metrics.update(_run_evaluation(args.kind, args.out, args.shard, args.eval_samples, None, True, "tf",
                                       args.seed, args.device))
    _print_metrics(metrics, as_json=False)
    return 0


def _parse_label(spec: str, class_names: list[list[str]]) -> list[int]:
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != len(class_names):
        raise UserError(f"--label {spec!r}: the model has {len(class_names)} label column(s); give one value per "
                        "column, comma-separated")
    out = []
    for part, names in zip(parts, class_names, strict=True):
        if part in names:
            out.append(names.index(part))
        elif part.isdigit() and int(part) < len(names):
            out.append(int(part))
        else:
            raise UserError(f"--label {part!r}: not a class of this model; classes are {', '.join(names)} "
                            f"(or an index 0..{len(names) - 1})")
    return out


def _generate(args) -> int:
    import numpy as np

    from models.evaluate import load_image_model
    from models.images import save_grid

    if args.n <= 0:
        raise UserError("-n must be positive")
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".npy"):
        raise UserError(f"--out {args.out}: use a .png (grid) or .npy (uint8 N x C x H x W) file name")
    _device(args.device)
    try:
        model, cfg, _ = load_image_model(args.kind, args.checkpoint, args.device)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from exc
    if args.interpolate:
        return _walk(args, model, cfg)
    label = _parse_label(args.label, cfg.class_names)
    labels = np.tile(np.asarray(label, dtype=np.int64), (args.n, 1))
    if args.kind == "gan":
        from models.gan import sample

        images = sample(model, labels, seed=args.seed, truncation=args.truncation)
    else:
        from models.vae import sample

        images = sample(model, labels, seed=args.seed, temperature=args.temperature)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        save_grid(images, args.out, min_cell=64 if images.shape[-1] < 64 else 0)
    else:
        from forge_common import atomic_write

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as fh:  # a path would get ".npy" appended
                np.save(fh, images)

        atomic_write(args.out, save)
    names = ", ".join(n[i] for n, i in zip(cfg.class_names, label, strict=True))
    print(f"wrote {len(images)} images of class {names} ({images.shape[1]} x {images.shape[2]} x {images.shape[3]}) "
          f"to {args.out}")
    return 0


def _walk(args, model, cfg) -> int:
    from models import gan, vae
    from models.images import save_grid

    if args.out.suffix.lower() != ".png":
        raise UserError(f"--out {args.out}: a latent walk is a grid; use a .png file name")
    if args.steps < 2 or args.rows < 1:
        raise UserError("--steps must be >= 2 and --rows >= 1")
    a, b = (_parse_label(x, cfg.class_names) for x in args.interpolate)
    module = gan if args.kind == "gan" else vae
    images = module.walk(model, a, b, steps=args.steps, rows=args.rows, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_grid(images, args.out, nrow=args.steps, min_cell=64 if images.shape[-1] < 64 else 0)
    print(f"wrote a latent walk to {args.out}: {args.rows} rows from {args.interpolate[0]} to {args.interpolate[1]}, "
          f"then {args.rows} rows between random latents of {args.interpolate[0]} ({args.steps} columns)")
    return 0


def _run_evaluation(kind, ckpt, shard, samples, reference, use_inception, protocol, seed, device) -> dict:
    from models.evaluate import evaluate_image_model
    from models.metrics import MetricsError
    from models.shard import ShardError

    try:
        return evaluate_image_model(kind, ckpt, shard, n_samples=samples, n_reference=reference,
                                    use_inception=use_inception, protocol=protocol, seed=seed, device=device)
    except (MetricsError, ShardError, FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from exc


def _evaluate(args) -> int:
    if args.samples < 2:
        raise UserError("--samples must be at least 2")
    _device(args.device)
    metrics = _run_evaluation(args.kind, args.checkpoint, args.shard, args.samples, args.reference,
                              not args.no_inception, args.protocol, args.seed, args.device)
    _print_metrics(metrics, as_json=args.json)
    return 0


def _print_metrics(metrics: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(metrics, sort_keys=True, default=str))
        return
    for key in sorted(metrics):
        value = metrics[key]
        if isinstance(value, float):
            value = f"{value:.6g}"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, default=str)
        print(f"{key:44s} {value}", file=sys.stdout)
