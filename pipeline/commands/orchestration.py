"""`arxiv-forge demo` and `arxiv-forge backfill`: the commands that drive Dagster.

They import `assets` (and so Dagster) inside the command, so `import pipeline` never loads Dagster.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from pipeline.commands import example
from pipeline.errors import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the whole asset graph on a generated sample bucket (CPU, about 10 minutes)",
        description="Write a sample bucket, then materialise manifest -> chunks -> metadata -> extraction -> "
                    "category/field datasets -> GAN, VAE and LSTM, as real Dagster runs recorded in "
                    "DAGSTER_HOME (default var/dagster_home). Afterwards `make dev` shows them in the UI.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example("arxiv-forge demo\narxiv-forge demo --papers 120 --gan-minutes 1 --root /tmp/forge"),
    )
    p.add_argument("--root", default="var", help="where the sample bucket, data and Dagster home go (default var)")
    p.add_argument("--papers", type=int, default=300, help="papers in the sample bucket (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--categories", type=int, default=2, help="categories to train GAN+VAE for (default 2)")
    p.add_argument("--fields", type=int, default=2, help="fields to train the LSTM for (default 2)")
    p.add_argument("--gan-minutes", type=float, default=6.0, help="GAN training budget per category")
    p.add_argument("--vae-minutes", type=float, default=0.75, help="VAE training budget per category")
    p.add_argument("--lstm-minutes", type=float, default=0.75, help="LSTM training budget per field")
    p.add_argument("--resolution", type=int, default=64, choices=(32, 64), help="shard resolution (default 64)")
    p.add_argument("--image-preset", default="cpu-small",
                   help="GAN/VAE preset (default cpu-small: 32 px, what a CPU trains in minutes; cpu-64 on a fast machine)")
    p.add_argument("--workers", type=int, default=0, help="extraction processes (default: all cores)")
    p.add_argument("--no-evaluate", action="store_true", help="skip KID / accuracy evaluation")
    p.set_defaults(func=_demo)

    b = sub.add_parser(
        "backfill", help="backfill category- or field-partitioned assets (e.g. retrain cs.CV and cs.LG)",
        description="Launch a Dagster backfill of the category- (or field-) partitioned job for the chosen "
                    "partitions. By default the backfill is submitted to the instance and run by the daemon "
                    "(`make dev` runs one); with --now each partition runs here, one after the other.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example("arxiv-forge backfill --categories cs.CV,cs.LG\n"
                       "arxiv-forge backfill --categories cs.CV --job category_dataset_job --now\n"
                       "arxiv-forge backfill --fields cs,math"),
    )
    g = b.add_mutually_exclusive_group(required=True)
    g.add_argument("--categories", help="comma-separated arXiv categories, e.g. cs.CV,cs.LG")
    g.add_argument("--fields", help="comma-separated text fields, e.g. cs,math")
    b.add_argument("--job", help="job to backfill (default category_training_job or field_training_job)")
    b.add_argument("--now", action="store_true", help="run the partitions in this process instead of the daemon")
    b.set_defaults(func=_backfill)


def _demo(args) -> int:
    from assets.demo import DemoOptions, print_report, run_demo

    opts = DemoOptions(
        root=Path(args.root), papers=args.papers, seed=args.seed, train_categories=args.categories,
        train_fields=args.fields, gan_minutes=args.gan_minutes, vae_minutes=args.vae_minutes,
        lstm_minutes=args.lstm_minutes, resolution=args.resolution, image_preset=args.image_preset,
        workers=args.workers,
        evaluate=not args.no_evaluate,
    )
    print_report(run_demo(opts))
    return 0


def _backfill(args) -> int:
    from pipeline.source.taxonomy import FIELDS, active_categories

    if args.categories:
        keys = [c.strip() for c in args.categories.split(",") if c.strip()]
        known, job = set(active_categories()), args.job or "category_training_job"
        what = "category"
    else:
        keys = [f.strip() for f in args.fields.split(",") if f.strip()]
        known, job = set(FIELDS), args.job or "field_training_job"
        what = "field"
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise UserError(f"unknown {what}(s): {', '.join(unknown)}; `arxiv-forge taxonomy` lists them")
    if args.now:
        return _run_now(job, keys)
    os.environ.setdefault("DAGSTER_HOME", str(Path("var/dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster), "job", "backfill", "-w", "workspace.yaml", "-j", job,
           "--partitions", ",".join(keys), "--noprompt"]
    print("running: " + " ".join(cmd), flush=True)
    done = subprocess.run(cmd, check=False)
    if done.returncode == 0:
        print("submitted; the daemon runs it (`make dev` starts one). Watch it under Overview > Backfills.")
    return done.returncode


def _run_now(job_name: str, keys: list[str]) -> int:
    os.environ.setdefault("DAGSTER_HOME", str(Path("var/dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    import dagster as dg

    from assets.definitions import defs

    try:
        job = defs.resolve_job_def(job_name)
    except Exception as exc:  # noqa: BLE001 - Dagster's error names the job
        raise UserError(f"no job {job_name!r} in assets.definitions ({exc})") from None
    instance = dg.DagsterInstance.get()
    failed = 0
    for key in keys:
        result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False,
                                        tags={"arxiv-forge/backfill": ",".join(keys)})
        print(f"{job_name}[{key}]: {'ok' if result.success else 'FAILED'} (run {result.run_id[:8]})", flush=True)
        failed += not result.success
    return 1 if failed else 0
