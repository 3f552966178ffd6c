"""The demo: the whole asset graph on the embedded sample bucket, on CPU, recorded in a local Dagster instance.

`arxiv-forge demo` (and `make demo`) calls `run_demo`. Every stage is a real Dagster run of a job from
`assets.definitions`, executed in-process against the SQLite instance in DAGSTER_HOME (default
var/dagster_home), so `make dev` afterwards shows every run, asset, image and metric in the UI.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from forge_common import format_duration

DEFAULT_ROOT = Path("var")


@dataclass
class DemoOptions:
    root: Path = DEFAULT_ROOT
    papers: int = 300
    seed: int = 0
    train_categories: int = 2
    train_fields: int = 2
    gan_minutes: float = 6.0
    vae_minutes: float = 0.75
    lstm_minutes: float = 0.75
    resolution: int = 64  # of the shards; the CPU presets train at 32 px (resized on the fly)
    image_preset: str = "cpu-small"
    eval_samples: int = 64
    workers: int = 0
    evaluate: bool = True


@dataclass
class DemoReport:
    bucket: str = ""
    data_root: str = ""
    dagster_home: str = ""
    papers: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    figures: int = 0
    images: int = 0
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    fields: dict[str, int] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_job(job_name: str, partition_key: str | None = None, ops: dict | None = None) -> tuple[bool, str, float, str]:
    """Execute one job of the code location in this process on the DAGSTER_HOME instance.

    Returns (success, run id, seconds, first error message). Module-level so worker processes can run it.
    """
    import logging

    import dagster as dg

    from assets.definitions import defs

    if not logging.getLogger().handlers:  # a spawned worker: show the trainers' progress lines too
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%H:%M:%S")
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if os.environ.get("ARXIV_FORGE_THREADS"):  # set by run_parallel for its workers
        import torch

        torch.set_num_threads(int(os.environ["ARXIV_FORGE_THREADS"]))
    t0 = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, partition_key=partition_key, raise_on_error=False,
            run_config={**QUIET, **({"ops": ops} if ops else {})})
    error = ""
    if not result.success:
        for ev in result.all_events:
            err = getattr(ev.event_specific_data, "error", None) if ev.is_failure else None
            if err is not None:
                error = err.message.strip()[:500]
                break
    return result.success, result.run_id, time.perf_counter() - t0, error


def _prepare_environment(opts: DemoOptions) -> tuple[Path, Path, Path]:
    root = opts.root.resolve()
    bucket = Path(os.environ.setdefault("ARXIV_FORGE_BUCKET", str(root / "sample-bucket")))
    data = Path(os.environ.setdefault("ARXIV_FORGE_DATA", str(root / "data")))
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(root / "dagster_home")))
    os.environ.setdefault("ARXIV_FORGE_SCRATCH", str(root / "scratch"))
    os.environ.setdefault("ARXIV_FORGE_OAI", "bucket")
    if opts.workers:
        os.environ["ARXIV_FORGE_WORKERS"] = str(opts.workers)
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        # The demo trains two categories side by side on the CPU, so the `gpu` pool gets two slots here.
        cfg.write_text("telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 2\n")
    return bucket, data, home


def run_demo(opts: DemoOptions) -> DemoReport:
    bucket_dir, data_dir, home = _prepare_environment(opts)
    # Resources read their environment defaults at import, so import Dagster code only now.
    import logging

    import dagster as dg

    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema stamping on every run is noise here

    from assets.definitions import defs
    from assets.partitions import chunk_partitions, metadata_days
    from assets.sensors import new_chunks_sensor
    from pipeline.dataset.lake import lake_from_env
    from pipeline.dataset.reader import read_papers

    report = DemoReport(bucket=str(bucket_dir), data_root=str(data_dir), dagster_home=str(home))
    t_all = time.perf_counter()

    def stage(name: str):
        report.stage_seconds[name] = round(time.perf_counter() - t_all - sum(report.stage_seconds.values()), 1)

    if not (bucket_dir / "src" / "arXiv_src_manifest.xml").exists():
        from pipeline.sample.bucket import write_sample_bucket

        _say(f"writing the sample bucket ({opts.papers} papers, seed {opts.seed}) to {bucket_dir}")
        write_sample_bucket(bucket_dir, papers=opts.papers, seed=opts.seed)
    else:
        _say(f"using the sample bucket in {bucket_dir}")
    stage("sample_bucket")

    instance = dg.DagsterInstance.get()

    def report_run(label: str, outcome: tuple[bool, str, float, str]) -> None:
        ok, run_id, seconds, error = outcome
        _say(f"  {label}: {'ok' if ok else 'FAILED'} in {seconds:.1f} s (run {run_id[:8]})")
        if not ok:
            _say(f"    {error}")
            raise SystemExit(f"demo stopped: {label} failed; see the run in the UI (make dev)")

    def run(job_name: str, partition_key: str | None = None, ops: dict | None = None) -> None:
        label = f"{job_name}[{partition_key}]" if partition_key else job_name
        report_run(label, run_job(job_name, partition_key, ops))

    def run_parallel(job_name: str, partitions: list[str], ops: dict) -> None:
        """Two CPU cores: two training runs side by side, one torch thread each, beat one run on two
        threads (small convolutions and LSTMs scale poorly across threads)."""
        if len(partitions) < 2 or (os.cpu_count() or 1) < 2:
            for p in partitions:
                run(job_name, p, ops)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        os.environ["ARXIV_FORGE_THREADS"] = str(max(1, (os.cpu_count() or 2) // len(partitions)))
        try:
            with ProcessPoolExecutor(max_workers=len(partitions), mp_context=mp.get_context("spawn")) as pool:
                futures = {p: pool.submit(run_job, job_name, p, ops) for p in partitions}
                for p, fut in futures.items():
                    report_run(f"{job_name}[{p}]", fut.result())
        finally:
            os.environ.pop("ARXIV_FORGE_THREADS", None)

    _say("manifest")
    run("manifest_job")
    _say("new chunks (the sensor adds them as partitions)")
    ctx = dg.build_sensor_context(instance=instance, resources={"bucket": defs.resources["bucket"]})
    sensor_result = new_chunks_sensor(ctx)
    chunks = [r.partition_key for r in (sensor_result.run_requests or [])]
    if chunks:
        instance.add_dynamic_partitions(chunk_partitions.name, chunks)
    chunks = sorted(instance.get_dynamic_partitions(chunk_partitions.name))
    _say(f"  {len(chunks)} chunks: {', '.join(chunks)}")
    _say("metadata")
    run("metadata_job", metadata_days.get_last_partition_key())
    stage("sources")
    _say("extraction (one run per chunk)")
    for c in chunks:
        run("chunk_job", c)
    stage("extraction")

    store = lake_from_env()  # the demo's environment names its lake (a local folder under --root)
    papers = read_papers(store)
    statuses = papers.column("status").to_pylist()
    report.papers = len(statuses)
    report.by_status = {s: statuses.count(s) for s in sorted(set(statuses))}
    errors = [e for s, e in zip(statuses, papers.column("error").to_pylist(), strict=True) if s == "error"]
    for e in errors:
        key = (e or "unknown").split(":")[0][:60]
        report.errors_by_reason[key] = report.errors_by_reason.get(key, 0) + 1

    from assets.schedules import lake_categories, lake_fields
    from assets.training import flat_numbers
    from pipeline.dataset.reader import dataset

    cats = lake_categories(store)
    for c in cats:
        figs = dataset(store, "figures", category=c).to_table(columns=["image_sha256"])
        report.categories[c] = sum(1 for v in figs.column("image_sha256").to_pylist() if v)
    report.figures = dataset(store, "figures").count_rows()
    report.images = sum(report.categories.values())
    chosen = sorted(cats, key=lambda c: -report.categories[c])[: opts.train_categories]
    _say(f"category datasets ({len(cats)} categories); training GAN + VAE for {', '.join(chosen)}")
    for c in cats:
        if c not in chosen:
            run("category_dataset_job", c, {"category_figures": {"config": {"resolution": opts.resolution}}})
    # fresh: a re-run of the demo trains from scratch (same time, same pictures) instead of resuming
    image_cfg = {"preset": opts.image_preset, "batch_size": 32, "evaluate": opts.evaluate,
                 "eval_samples": opts.eval_samples, "fresh": True}
    run_parallel("category_training_job", chosen, {
        "category_figures": {"config": {"resolution": opts.resolution}},
        "figure_gan": {"config": {**image_cfg, "minutes": opts.gan_minutes}},
        "figure_vae": {"config": {**image_cfg, "minutes": opts.vae_minutes}},
    })
    stage("images")

    flds = lake_fields(store)
    for f in flds:
        corpus = dataset(store, "text").to_table(columns=["field"]).column("field").to_pylist()
        report.fields[f] = corpus.count(f)
    chosen_fields = sorted(flds, key=lambda f: -report.fields[f])[: opts.train_fields]
    _say(f"field corpora ({len(flds)} fields); training the LSTM for {', '.join(chosen_fields)}")
    for f in flds:
        if f not in chosen_fields:
            run("field_dataset_job", f)
    run_parallel("field_training_job", chosen_fields,
                 {"text_lstm": {"config": {"preset": "arxiv-cpu", "minutes": opts.lstm_minutes, "fresh": True}}})
    stage("text")

    for kind, parts in (("gan", chosen), ("vae", chosen), ("lstm", chosen_fields)):
        for p in parts:
            prefix = f"models/{kind}/{p}"
            metrics = store.read_json(f"{prefix}/metrics.json", {})
            report.models[f"{kind}[{p}]"] = {"dir": store.uri(prefix), **flat_numbers(metrics),
                                             **({"kid_note": metrics["kid_note"]} if metrics.get("kid_note") else {})}
    report.stage_seconds["total"] = round(time.perf_counter() - t_all, 1)
    return report


def print_report(r: DemoReport) -> None:
    line = "-" * 78
    print(line)
    print(f"papers: {r.papers}  " + ", ".join(f"{k} {v}" for k, v in r.by_status.items()))
    print(f"figures: {r.figures} graphics rows, {r.images} with images, in {len(r.categories)} categories")
    if r.errors_by_reason:
        print("errors by reason: " + "; ".join(f"{k} ({v})" for k, v in r.errors_by_reason.items()))
    print(f"tables (Parquet): {r.data_root}/papers, {r.data_root}/figures, {r.data_root}/text, "
          f"{r.data_root}/metadata")
    for name, m in r.models.items():
        keys = [k for k in ("steps", "kid_inception_vs_heldout", "kid_inception_floor_train_vs_heldout",
                            "conditional_accuracy", "memorisation_rate", "heldout_bits_per_dim",
                            "valid_bpc", "valid_perplexity") if k in m]
        nums = ", ".join(f"{k} {m[k]:.4g}" if isinstance(m[k], float) else f"{k} {m[k]}" for k in keys)
        if m.get("kid_note"):
            nums += f", KID {m['kid_note']}"
        print(f"{name}: {nums}")
        for img in ("samples.png", "loss_curve.png"):
            if (Path(m["dir"]) / img).exists():
                print(f"    {Path(m['dir']) / img}")
    print("time: " + ", ".join(f"{k} {format_duration(v)}" for k, v in r.stage_seconds.items()))
    print(line)
    print(f"open the UI with every run, asset, image and metric:  make dev   (DAGSTER_HOME={r.dagster_home})")
