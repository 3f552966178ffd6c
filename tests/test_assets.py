"""The Dagster code location, materialised for real on a small generated sample bucket.

One module-scoped pipeline run (temporary instance, bucket and data root) feeds the assertions: the
manifest, the sensor adding chunk partitions, metadata, extraction with its checks, the category shard,
the field corpus, and tiny GAN / VAE / LSTM trainings. Schedules, backfills and resume-after-failure
have their own tests.
"""

import datetime as dt
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from assets.definitions import build_definitions
from assets.partitions import category_partitions, chunk_partitions, field_partitions, metadata_days
from assets.resources import Compute, DataLake, MetadataSource, SourceBucket
from assets.schedules import nightly_metadata_schedule, nightly_shards_schedule
from assets.sensors import new_chunks_sensor
from pipeline.source.manifest import parse_manifest, render_manifest

pytest_plugins = ["s3server"]  # moto's threaded S3 server (tests/s3server.py)
REPO = Path(__file__).resolve().parents[1]
TINY_IMAGE = {"preset": "cpu-small", "minutes": None, "steps": 3, "batch_size": 8, "evaluate": False}


def _resources(bucket: Path, data: Path) -> dict:
    return {
        "bucket": SourceBucket(url=str(bucket)),
        "lake": DataLake(root=str(data)),
        "metadata_source": MetadataSource(endpoint="bucket"),
        "compute": Compute(device="cpu", workers=2),
    }


def _truth(bucket: Path) -> list[dict]:
    return [json.loads(line) for line in (bucket / "truth" / "papers.jsonl").read_text().splitlines() if line]


class Pipeline:
    """A pipeline run on one instance; `run(job, partition, ops)` executes a job of the code location."""

    def __init__(self, bucket: Path, data: Path, instance: dg.DagsterInstance):
        self.bucket, self.data, self.instance = bucket, data, instance
        self.defs = build_definitions(_resources(bucket, data))

    def run(self, job: str, partition: str | None = None, ops: dict | None = None) -> dg.ExecuteInProcessResult:
        return self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance, partition_key=partition, run_config={"ops": ops or {}}, raise_on_error=False)

    def sensor(self) -> dg.SensorResult:
        ctx = dg.build_sensor_context(instance=self.instance, resources={"bucket": self.defs.resources["bucket"]})
        return new_chunks_sensor(ctx)


@pytest.fixture(scope="module")
def pipeline(small_sample_bucket, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    bucket = root / "bucket"
    shutil.copytree(small_sample_bucket, bucket)
    (root / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        yield Pipeline(bucket, root / "data", instance)


@pytest.fixture(scope="module")
def extracted(pipeline):
    """Manifest, sensor, metadata and every chunk extracted (the sources + extraction half of the graph)."""
    results = {"manifest": pipeline.run("manifest_job")}
    sensor = pipeline.sensor()
    for req in sensor.dynamic_partitions_requests:
        pipeline.instance.add_dynamic_partitions(chunk_partitions.name, list(req.partition_keys))
    results["sensor"] = sensor
    results["metadata"] = pipeline.run("metadata_job", metadata_days.get_last_partition_key())
    results["chunks"] = {r.partition_key: pipeline.run("chunk_job", r.partition_key) for r in sensor.run_requests}
    return results


def _meta(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == asset]
    assert mats, f"no materialisation of {asset}"
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def test_definitions_load_with_every_asset_job_schedule_and_sensor():
    from assets.definitions import defs

    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"arxiv_manifest", "source_chunk", "arxiv_metadata", "papers", "figures", "text", "category_figures",
            "field_corpus", "figure_gan", "figure_vae", "text_lstm"} <= keys
    for name in ("figure_gan", "figure_vae", "text_lstm"):
        node = defs.resolve_assets_def(name)
        spec = node.specs_by_key[dg.AssetKey(name)]
        assert node.op.pool == "gpu"
        assert "nvidia.com/gpu" in json.dumps(node.op.tags.get("dagster-k8s/config"))
        # one model per category (images) or per field (text), as a backfill by category expects
        assert spec.partitions_def == (field_partitions if name == "text_lstm" else category_partitions), name
    assert defs.resolve_sensor_def("new_chunks_sensor")
    assert defs.resolve_schedule_def("nightly_metadata_schedule")


def test_manifest_and_sensor_add_every_chunk(pipeline, extracted):
    manifest = parse_manifest(pipeline.bucket / "src" / "arXiv_src_manifest.xml")
    assert extracted["manifest"].success
    meta = _meta(extracted["manifest"], "arxiv_manifest")
    assert meta["chunks"] == len(manifest.entries)
    assert meta["items"] == sum(e.num_items for e in manifest.entries)
    sensor = extracted["sensor"]
    assert sorted(r.partition_key for r in sensor.run_requests) == sorted(e.chunk for e in manifest.entries)
    assert sorted(pipeline.instance.get_dynamic_partitions("chunk")) == sorted(e.chunk for e in manifest.entries)
    again = pipeline.sensor()  # nothing new: the sensor skips
    assert not again.run_requests and again.skip_reason


def test_sensor_picks_up_a_chunk_added_to_the_manifest(small_sample_bucket, tmp_path):
    bucket = tmp_path / "bucket"
    shutil.copytree(small_sample_bucket, bucket)
    path = bucket / "src" / "arXiv_src_manifest.xml"
    full = parse_manifest(path)
    newest = full.sorted()[-1]
    path.write_bytes(render_manifest([e for e in full.entries if e is not newest], full.timestamp))
    with dg.instance_for_test() as instance:
        p = Pipeline(bucket, tmp_path / "data", instance)
        first = p.sensor()
        instance.add_dynamic_partitions("chunk", list(first.dynamic_partitions_requests[0].partition_keys))
        assert newest.chunk not in instance.get_dynamic_partitions("chunk")
        path.write_bytes(render_manifest(full.entries, "Sun Nov 22 03:00:00 2026"))  # arXiv published a chunk
        second = p.sensor()
        assert [r.partition_key for r in second.run_requests] == [newest.chunk]
        assert list(second.dynamic_partitions_requests[0].partition_keys) == [newest.chunk]


def test_metadata_table_has_every_paper(pipeline, extracted):
    assert extracted["metadata"].success
    meta = _meta(extracted["metadata"], "arxiv_metadata")
    assert meta["rows"] == len(_truth(pipeline.bucket))
    assert meta["unreadable_files"] == 0


def test_each_chunk_extracts_one_papers_row_per_paper_and_passes_its_checks(pipeline, extracted):
    from pipeline.dataset.reader import read_papers

    truth = _truth(pipeline.bucket)
    for chunk, result in extracted["chunks"].items():
        assert result.success, chunk
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks == {"papers_complete": True, "figures_complete": True, "error_rate_below_threshold": True,
                          "images_decode": True, "captions_present": True, "schema_stable": True}, chunk
        papers = read_papers(pipeline.data, chunk=chunk).column("paper_id").to_pylist()
        assert sorted(papers) == sorted(t["paper_id"] for t in truth if t["chunk"] == chunk)
        assert _meta(result, "papers")["papers"] == len(papers)


def _category_with_most_images(data: Path) -> list[str]:
    from pipeline.dataset.reader import categories, read_figures

    counts = {c: read_figures(data, category=c, with_images_only=True, columns=["figure_id"]).num_rows
              for c in categories(data)}
    return sorted(counts, key=lambda c: (-counts[c], c))


def test_category_shard_reads_only_its_category(pipeline, extracted):
    from pipeline.dataset.reader import chunk_files, read_figures
    from pipeline.dataset.shards import fetch_category_shard

    cat = _category_with_most_images(pipeline.data)[0]
    result = pipeline.run("category_dataset_job", cat, {"category_figures": {"config": {"resolution": 32}}})
    assert result.success
    meta = _meta(result, "category_figures")
    own = chunk_files(pipeline.data, f"figures/primary_category={cat}")
    assert meta["files_read"] == len(own) and meta["bytes_read"] == sum(f.size for f in own.values())
    shard = fetch_category_shard(pipeline.data, cat)
    images = np.load(shard / "images.npy", mmap_mode="r")
    expected = read_figures(pipeline.data, category=cat, with_images_only=True, columns=["figure_id"]).num_rows
    assert images.shape == (expected, 3, 32, 32) and images.dtype == np.uint8
    assert meta["images"] == expected
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()} == {
        "figures_schema_uniform": True, "shard_complete": True}
    assert "preview" in meta and (pipeline.data / "shards" / cat / "preview.png").is_file()  # the grid, on the lake
    # Run again with nothing new: every part is reused, no figures file is read.
    again = _meta(pipeline.run("category_dataset_job", cat, {"category_figures": {"config": {"resolution": 32}}}),
                  "category_figures")
    assert again["parts_reused"] == len(own) and again["parts_built"] == 0 and again["files_read"] == 0
    labels = np.load(shard / "labels.npy")
    assert labels.shape == (expected, 2)
    assert json.loads((shard / "classes.json").read_text())["columns"] == ["figure_kind", "section_kind"]
    assert images.reshape(len(images), -1).max(axis=1).min() == 255  # letterboxed on white, not black


def test_image_models_train_and_report(pipeline, extracted):
    cat = _category_with_most_images(pipeline.data)[0]
    result = pipeline.run("category_training_job", cat, {
        "category_figures": {"config": {"resolution": 32}},
        "figure_gan": {"config": TINY_IMAGE},
        "figure_vae": {"config": TINY_IMAGE},
    })
    assert result.success
    gan, vae = _meta(result, "figure_gan"), _meta(result, "figure_vae")
    assert gan["steps"] == 3 and "samples" in gan and "loss_curve" in gan
    assert vae["steps"] == 3
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks[("figure_gan", "metrics_valid")] and checks[("figure_vae", "metrics_valid")]
    assert (pipeline.data / "models" / "gan" / cat / "checkpoint.pt").exists()
    # the bits/dim the UI shows is the saved VAE's on the shard's held-out 10 %, and 3 steps already beat no training
    from models import vae as vae_model
    from models.shard import load_shard, split_indices
    from pipeline.dataset.shards import fetch_category_shard

    shard = load_shard(fetch_category_shard(pipeline.data, cat))
    _, hold = split_indices(len(shard), 0.1, seed=0)                  # the asset's defaults
    model = vae_model.load_vae(pipeline.data / "models" / "vae" / cat)
    trained = vae_model.heldout_bits_per_dim(model, shard.images, shard.labels, hold)["bits_per_dim"]
    untrained = vae_model.heldout_bits_per_dim(vae_model.ConditionalVAE(model.cfg), shard.images, shard.labels,
                                               hold)["bits_per_dim"]
    assert vae["heldout_bits_per_dim"] == pytest.approx(trained)
    assert trained < untrained - 0.5, (trained, untrained)           # measured: 9.8 against 11.2


def test_field_corpus_and_lstm(pipeline, extracted):
    result = pipeline.run("field_training_job", "cs", {
        "field_corpus": {"config": {"valid_fraction": 0.2}},
        "text_lstm": {"config": {"minutes": None, "steps": 3}},
    })
    assert result.success
    from pipeline.dataset.corpus import DEFAULT_KINDS
    from pipeline.dataset.reader import read_text

    corpus = _meta(result, "field_corpus")
    texts = read_text(pipeline.data, field="cs", kinds=list(DEFAULT_KINDS), columns=["paper_id", "text"]).to_pydict()
    with_text = {p for p, t in zip(texts["paper_id"], texts["text"], strict=True) if (t or "").strip()}
    assert corpus["papers"] == len(with_text) == corpus["by_kind"]["title"]   # every cs paper with text, once
    assert corpus["train_lines"] + corpus["valid_lines"] == sum(corpus["by_kind"].values())
    lstm = _meta(result, "text_lstm")
    assert lstm["steps"] == 3 and lstm["sample"].startswith("> We propose")
    # the LSTM read the corpus the asset wrote, and its bits/char are what its validation loss says
    assert (lstm["train_chars"], lstm["valid_chars"]) == (corpus["train_chars"], corpus["valid_chars"])
    assert lstm["valid_bpc"] == pytest.approx(lstm["valid_loss"] / math.log(2) * lstm["valid_tokens"]
                                              / lstm["valid_chars"])
    # 3 steps already beat a uniform guess over the vocabulary (measured: 2.11 against 2.22 bits/char)
    uniform_bpc = math.log2(lstm["vocab_size"]) * lstm["valid_tokens"] / lstm["valid_chars"]
    assert lstm["valid_bpc"] < 0.97 * uniform_bpc, (lstm["valid_bpc"], uniform_bpc)
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()}["metrics_valid"]


def test_nightly_schedules_request_the_right_partitions(pipeline, extracted):
    from pipeline.dataset.reader import categories

    when = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)
    ctx = dg.build_schedule_context(instance=pipeline.instance, scheduled_execution_time=when)
    req = nightly_metadata_schedule(ctx)
    assert req.partition_key == "2026-11-21"
    ctx = dg.build_schedule_context(instance=pipeline.instance, scheduled_execution_time=when,
                                    resources={"lake": DataLake(root=str(pipeline.data))})
    requested = sorted(r.partition_key for r in nightly_shards_schedule(ctx))
    assert requested and requested == sorted(c for c in categories(pipeline.data) if c != "unknown")


def _env(bucket: Path, data: Path, home: Path) -> dict:
    return {**os.environ, "ARXIV_FORGE_BUCKET": str(bucket), "ARXIV_FORGE_DATA": str(data),
            "ARXIV_FORGE_OAI": "bucket", "ARXIV_FORGE_DEVICE": "cpu", "DAGSTER_HOME": str(home)}


def test_category_backfill_of_two_categories(pipeline, extracted, tmp_path):
    cats = _category_with_most_images(pipeline.data)[:2]
    home = tmp_path / "home"
    home.mkdir()
    env = _env(pipeline.bucket, pipeline.data, home)
    cli = [sys.executable, "-m", "pipeline.cli", "backfill", "--categories", ",".join(cats),
           "--job", "category_dataset_job"]
    submitted = subprocess.run(cli, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        backfills = instance.get_backfills()
        assert len(backfills) == 1
        assert sorted(backfills[0].partition_names) == sorted(cats)
    ran = subprocess.run([*cli, "--now"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.count(": ok") == 2
    for c in cats:
        assert (pipeline.data / "shards" / c / "index.json").exists()


KILL_SCRIPT = """
import sys
from assets.definitions import defs
job = defs.resolve_job_def("category_training_job")
job.execute_in_process(partition_key=sys.argv[1], run_config={"ops": {
    "category_figures": {"config": {"resolution": 32}},
    "figure_gan": {"config": {"preset": "cpu-small", "minutes": None, "steps": 100000, "batch_size": 8,
                              "checkpoint_every": 2, "evaluate": False}},
    "figure_vae": {"config": {"preset": "cpu-small", "minutes": None, "steps": 3, "evaluate": False}}}})
"""


def test_failed_training_run_resumes_from_its_checkpoint(pipeline, extracted, tmp_path):
    cat = _category_with_most_images(pipeline.data)[0]
    data = tmp_path / "data"
    shutil.copytree(pipeline.data, data, ignore=shutil.ignore_patterns("models"))
    ckpt = data / "models" / "gan" / cat / "checkpoint.pt"
    env = {**_env(pipeline.bucket, data, tmp_path / "home"), "ARXIV_FORGE_SCRATCH": str(tmp_path / "lost-node")}
    (tmp_path / "home").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, cat], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert ckpt.exists(), "the training run wrote no checkpoint before the deadline"
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run dies mid-training, like a lost node
        proc.wait()
    import torch

    saved_step = torch.load(ckpt, map_location="cpu", weights_only=False)["step"]
    assert saved_step >= 2
    shutil.rmtree(tmp_path / "lost-node")  # the rerun is on another machine: only the lake is left
    with dg.instance_for_test() as instance:
        rerun = Pipeline(pipeline.bucket, data, instance).run("category_training_job", cat, {
            "category_figures": {"config": {"resolution": 32}},
            "figure_gan": {"config": {**TINY_IMAGE, "steps": saved_step + 2}},
            "figure_vae": {"config": TINY_IMAGE},
        })
    assert rerun.success
    gan = _meta(rerun, "figure_gan")
    assert gan["resumed"] is True
    assert gan["steps"] == saved_step + 2 and gan["steps_this_run"] == 2


def test_chunks_stream_from_s3_without_a_local_copy(small_sample_bucket, s3_bucket, tmp_path):
    """Source bucket on an S3 API (moto on 127.0.0.1): read in place, extracted from the stream."""
    s3_bucket.upload(small_sample_bucket)
    manifest = parse_manifest(small_sample_bucket / "src" / "arXiv_src_manifest.xml")
    chunk = manifest.sorted()[-1].chunk
    data = tmp_path / "data"
    resources = {**_resources(small_sample_bucket, data),
                 "bucket": SourceBucket(url=f"s3://{s3_bucket.name}", endpoint_url=s3_bucket.endpoint_url)}
    defs = build_definitions(resources)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("chunk", [chunk])
        result = defs.resolve_job_def("chunk_job").execute_in_process(
            instance=instance, partition_key=chunk,
            run_config={"ops": {"source_chunk": {"config": {"read_in_place": True}}}})
    assert result.success
    assert _meta(result, "source_chunk")["copied"] is False
    assert not (data / "chunks" / f"{chunk}.tar").exists()
    from pipeline.dataset.reader import read_papers

    truth = [t["paper_id"] for t in _truth(small_sample_bucket) if t["chunk"] == chunk]
    assert sorted(read_papers(data, chunk=chunk).column("paper_id").to_pylist()) == sorted(truth)


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for ev in result.all_events:
        if ev.is_failure and getattr(ev.event_specific_data, "error", None) is not None:
            return ev.event_specific_data.error.message
    return ""


@pytest.mark.parametrize("asset, job, partition, bad, allowed", [
    ("figure_gan", "category_training_job", None, {"preset": "gpu-12"}, "cpu-small, cpu-64, gpu-64, gpu-128"),
    ("text_lstm", "field_training_job", "cs", {"preset": "arxiv"}, "ptb-small, ptb-large, arxiv-cpu, arxiv-gpu"),
    ("figure_gan", "category_training_job", None, {"preset": "tiny", "label_column": 5}, "0 (figure_kind), 1"),
])
def test_mistyped_names_in_run_config_fail_with_the_choices(pipeline, extracted, asset, job, partition, bad, allowed):
    partition = partition or _category_with_most_images(pipeline.data)[0]
    ops = {"figure_gan": {"config": {**TINY_IMAGE, **bad}}, "figure_vae": {"config": TINY_IMAGE}} \
        if asset == "figure_gan" else {"text_lstm": {"config": {**bad, "steps": 2}}}
    result = pipeline.run(job, partition, ops)
    assert not result.success
    message = _failure_message(result)
    assert allowed in message and "Traceback" not in message and "KeyError" not in message, message


def test_training_presets_follow_the_hardware(monkeypatch):
    import torch

    from assets.training import production_run_config

    assert production_run_config("cpu", ("figure_gan", "figure_vae", "text_lstm")) == {"ops": {
        "figure_gan": {"config": {"preset": "cpu-64"}}, "figure_vae": {"config": {"preset": "cpu-64"}},
        "text_lstm": {"config": {"preset": "arxiv-cpu"}}}}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU host's code location
    gpu = production_run_config("auto", ("figure_gan", "text_lstm"))
    assert gpu == {"ops": {"figure_gan": {"config": {"preset": "gpu-128"}}, "text_lstm": {"config": {"preset": "arxiv-gpu"}}}}


def test_weekly_retraining_sends_the_hardware_presets(pipeline, extracted, monkeypatch):
    import assets.schedules
    from assets.resources import Compute
    from assets.schedules import weekly_image_training_schedule, weekly_text_training_schedule

    monkeypatch.setattr(assets.schedules, "MIN_TRAIN_IMAGES", 1)  # the 40-paper bucket has no 64-figure category

    when = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.UTC)
    resources = {"lake": DataLake(root=str(pipeline.data)), "compute": Compute(device="cpu")}
    ctx = dg.build_schedule_context(instance=pipeline.instance, scheduled_execution_time=when, resources=resources)
    image_runs = list(weekly_image_training_schedule(ctx))
    text_runs = list(weekly_text_training_schedule(ctx))
    assert image_runs and text_runs
    assert all(r.run_config["ops"]["figure_gan"]["config"]["preset"] == "cpu-64" for r in image_runs)
    assert all(r.run_config["ops"]["text_lstm"]["config"]["preset"] == "arxiv-cpu" for r in text_runs)


@pytest.mark.parametrize("device, message", [("gpu", "use auto, cpu, cuda or cuda:N"),
                                             ("cuda", "CUDA is not available")])
def test_a_bad_device_fails_with_the_choices(device, message):
    import torch

    from assets.training import resolve_preset

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(dg.Failure, match=message):
        resolve_preset("gan", "auto", device)
