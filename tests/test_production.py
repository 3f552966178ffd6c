"""The production path, as a cluster runs it: every run a separate `dagster asset materialize` process (as the
Kubernetes run launcher starts a pod per run) with its own new, empty scratch directory, the run history in
PostgreSQL, the source bucket and the data root on an S3 API (moto's server on 127.0.0.1), metadata from an
OAI-PMH endpoint (a local server). Nothing else is shared between runs: what a run needs from an earlier one
must come from the lake.

Also: four metadata days and two chunks materialised at the same time lose no row, and a training run killed
midway resumes in a fresh process with a fresh scratch from the checkpoint on the lake.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from oai_server import OAIServer

from pipeline.dataset.lake import Lake

pytest_plugins = ["s3server", "pgserver"]

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
DAYS = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
TINY_IMAGE = {"preset": "tiny", "minutes": None, "steps": 3, "evaluate": False}


class Cluster:
    """Launches runs as separate processes; each gets a fresh scratch directory (a new pod's empty disk)."""

    def __init__(self, tmp: Path, env: dict, home: Path):
        self.tmp, self.env, self.home = tmp, env, home
        self.runs = 0

    def _cmd(self, select: str, partition: str | None, config: dict | None) -> list[str]:
        cmd = [str(DAGSTER), "asset", "materialize", "-m", "assets.definitions", "--select", select]
        if partition:
            cmd += ["--partition", partition]
        if config:
            cmd += ["--config-json", json.dumps(config)]
        return cmd

    def start(self, select: str, partition: str | None = None, config: dict | None = None) -> subprocess.Popen:
        self.runs += 1
        scratch = self.tmp / f"pod-{self.runs}-{uuid.uuid4().hex[:6]}"
        log = open(self.tmp / f"run-{self.runs}.log", "w")  # noqa: SIM115 - closed by the process's end
        proc = subprocess.Popen(self._cmd(select, partition, config), cwd=REPO,
                                env={**self.env, "ARXIV_FORGE_SCRATCH": str(scratch)}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = self.tmp / f"run-{self.runs}.log"  # type: ignore[attr-defined]
        return proc

    def wait(self, *procs: subprocess.Popen, timeout: float = 400) -> None:
        for proc in procs:
            proc.wait(timeout=timeout)
            assert proc.returncode == 0, proc.log_path.read_text()[-4000:]  # type: ignore[attr-defined]

    def run(self, select: str, partition: str | None = None, config: dict | None = None) -> None:
        self.wait(self.start(select, partition, config))

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    def metadata(self, asset: str, partition: str) -> dict:
        with self.instance() as instance:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1).records
            assert records, f"no materialisation of {asset}[{partition}]"
            return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


@pytest.fixture
def cluster(pg, s3_bucket, small_sample_bucket, tmp_path):
    from pipeline.source.oai import read_records

    s3_bucket.upload(small_sample_bucket)
    lake_bucket = f"lake-{uuid.uuid4().hex[:8]}"
    s3_bucket.client.create_bucket(Bucket=lake_bucket)
    db = pg.create_database(f"prod_{uuid.uuid4().hex[:8]}")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"postgres": {"postgres_url": pg.url(db)}},
                                                       "telemetry": {"enabled": False}}))
    records, _ = read_records([small_sample_bucket / "metadata"])
    # Spread the records over four harvest days, so each day partition brings a quarter of them.
    records = [dataclasses.replace(r, datestamp=DAYS[i % 4]) for i, r in enumerate(records)]
    with OAIServer(records, page_size=4) as oai:
        env = {**os.environ, "DAGSTER_HOME": str(home), "ARXIV_FORGE_BUCKET": f"s3://{s3_bucket.name}",
               "ARXIV_FORGE_ENDPOINT_URL": s3_bucket.endpoint_url, "ARXIV_FORGE_DATA": f"s3://{lake_bucket}/arxiv",
               "ARXIV_FORGE_DATA_ENDPOINT": s3_bucket.endpoint_url, "ARXIV_FORGE_OAI": oai.url,
               "ARXIV_FORGE_DEVICE": "cpu", "ARXIV_FORGE_WORKERS": "1"}
        c = Cluster(tmp_path, env, home)
        c.records = records  # type: ignore[attr-defined]
        c.truth = (small_sample_bucket / "truth" / "papers.jsonl").read_text().splitlines()  # type: ignore
        c.lake = Lake(env["ARXIV_FORGE_DATA"], endpoint_url=s3_bucket.endpoint_url,  # type: ignore[attr-defined]
                      scratch=tmp_path / "reader")
        c.source = (s3_bucket.name, s3_bucket.endpoint_url)  # type: ignore[attr-defined]
        yield c


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_whole_graph_with_a_process_per_run_on_s3(cluster):
    from assets.partitions import chunk_partitions
    from assets.resources import SourceBucket
    from assets.sensors import new_chunks_sensor
    from pipeline.dataset.metadata import read_metadata
    from pipeline.dataset.reader import categories, read_figures, read_papers, read_text

    lake = cluster.lake
    cluster.run("arxiv_manifest")
    # The sensor (the daemon's job) adds the manifest's chunks as partitions in Postgres.
    bucket = SourceBucket(url=f"s3://{cluster.source[0]}", endpoint_url=cluster.source[1])
    with cluster.instance() as instance:
        sensed = new_chunks_sensor(dg.build_sensor_context(instance=instance, resources={"bucket": bucket}))
        chunks = [r.partition_key for r in sensed.run_requests]
        instance.add_dynamic_partitions(chunk_partitions.name, chunks)
    assert len(chunks) == 5

    # Four metadata days at the same time, each its own process: no day loses another's records.
    # Resource config set at launch replaces the resource's settings, so name the endpoint with the interval.
    fast_oai = {"resources": {"metadata_source": {"config": {"endpoint": cluster.env["ARXIV_FORGE_OAI"],
                                                             "min_interval": 0.05}}}}
    cluster.wait(*[cluster.start("arxiv_metadata", day, fast_oai) for day in DAYS])
    meta = read_metadata(lake, include_deleted=True)
    assert sorted(meta.column("id").to_pylist()) == sorted(r.id for r in cluster.records)

    # Chunks two at a time, each extracting from the S3 bucket with metadata from the lake.
    chunk_job = "source_chunk,papers,figures,text"
    for pair in (chunks[:2], chunks[2:4], chunks[4:]):
        cluster.wait(*[cluster.start(chunk_job, c) for c in pair])
    papers = read_papers(lake)
    assert sorted(set(papers.column("chunk").to_pylist())) == sorted(chunks)
    assert papers.num_rows == len(cluster.truth)  # one row per paper of every chunk
    cats = categories(lake)
    assert "unknown" not in cats, "extraction did not see the metadata on the lake"
    figs = read_figures(lake, columns=["figure_id", "primary_category", "image"], with_images_only=True)
    assert figs.num_rows > 0

    # Datasets and models, each run in a new process with an empty disk.
    counts = {c: read_figures(lake, category=c, with_images_only=True, columns=["figure_id"]).num_rows for c in cats}
    cat = max(counts, key=lambda c: (counts[c], c))
    cluster.run("category_figures", cat, {"ops": {"category_figures": {"config": {"resolution": 32}}}})
    assert cluster.metadata("category_figures", cat)["images"] == counts[cat]
    field = "cs"
    assert read_text(lake, field=field).num_rows > 0
    cluster.run("field_corpus", field)
    cluster.run("figure_gan", cat, {"ops": {"figure_gan": {"config": TINY_IMAGE}}})
    cluster.run("figure_vae", cat, {"ops": {"figure_vae": {"config": TINY_IMAGE}}})
    cluster.run("text_lstm", field, {"ops": {"text_lstm": {"config": {"preset": "arxiv-cpu", "minutes": None,
                                                                      "steps": 3}}}})
    for kind, part in (("gan", cat), ("vae", cat), ("lstm", field)):
        keys = {f.key.rsplit("/", 1)[-1] for f in lake.files(f"models/{kind}/{part}")}
        assert {"checkpoint.pt", "metrics.json", "loss_curve.png"} <= keys, (kind, keys)
        assert lake.read_json(f"models/{kind}/{part}/metrics.json")["steps"] == 3
    assert cluster.metadata("figure_gan", cat)["steps"] == 3
    from assets.checks import metrics_check, shard_check  # the runs' read-back checks work on S3 too

    assert shard_check(lake, cat).passed
    assert all(metrics_check(lake, kind, part, asset).passed for kind, part, asset in
               (("gan", cat, "figure_gan"), ("vae", cat, "figure_vae"), ("lstm", field, "text_lstm")))

    # A training run killed midway (a lost node) resumes on another machine from the lake's checkpoint.
    import torch

    long_run = {"ops": {"figure_gan": {"config": {**TINY_IMAGE, "steps": 100_000, "checkpoint_every": 2,
                                                  "fresh": True}}}}
    proc = cluster.start("figure_gan", cat, long_run)
    key = f"models/gan/{cat}/checkpoint.pt"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            stat = lake.stat(key)
            if stat is not None and torch.load(lake.fetch(key), map_location="cpu", weights_only=False)["step"] > 3:
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.log_path.read_text()[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    saved = torch.load(lake.fetch(key), map_location="cpu", weights_only=False)["step"]
    assert saved > 3
    cluster.run("figure_gan", cat, {"ops": {"figure_gan": {"config": {**TINY_IMAGE, "steps": saved + 2}}}})
    resumed = cluster.metadata("figure_gan", cat)
    assert resumed["resumed"] is True and resumed["steps"] == saved + 2 and resumed["steps_this_run"] == 2
