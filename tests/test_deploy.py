"""Deployment: the code location validates; the compose files lint; Dagster runs partitioned
materialisations against a real PostgreSQL server (dagster-postgres), with the repo's and the Helm chart's
instance settings; the compose topology (code server + daemon, no Docker) runs a queued job; the Helm values
give training step pods a GPU and CPU step pods none.

Needs Debian's `postgresql` and `docker-compose` packages; the tests that need them skip with the
apt-get command when they are missing.
"""

import hashlib
import importlib.util
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.resources import DataLake, SourceBucket
from assets.sensors import new_chunks_sensor
from assets.sources import arxiv_manifest, source_chunk
from pipeline.source.manifest import MANIFEST_KEY, ManifestEntry, render_manifest

pytest_plugins = ["pgserver"]

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
COMPOSE_SECRETS = ("POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")


# --- the code location ---------------------------------------------------------------------------------

def test_definitions_validate(tmp_path):
    """`dagster definitions validate -w workspace.yaml` from the repo root, as a user (or CI) runs it."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    proc = subprocess.run([str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful for code location assets.definitions" in proc.stderr + proc.stdout


def test_compose_workspace_points_at_the_code_service():
    """The webserver/daemon workspace names the compose `code` service on the port it serves on."""
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.compose.yaml").read_text())
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    assert grpc["host"] in compose["services"]
    command = compose["services"][grpc["host"]]["command"]
    assert command[command.index("-p") + 1] == str(grpc["port"])
    assert command[command.index("-m") + 1] == "assets.definitions"


# --- docker-compose ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose_bin() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.skip("docker-compose (v1) not installed: apt-get install -y docker-compose")
    return path


def _compose(compose_bin: str, env_file: Path, *files: str) -> subprocess.CompletedProcess:
    # The secrets must come from the env file alone: drop any the calling shell exports.
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_SECRETS}
    args = [compose_bin, "--env-file", str(env_file)]
    for f in files:
        args += ["-f", str(REPO / f)]
    return subprocess.run([*args, "config", "-q"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def _env_file(tmp_path: Path, drop: str | None = None) -> Path:
    lines = (REPO / ".env.example").read_text().splitlines()
    if drop:
        lines = [ln for ln in lines if not ln.startswith(f"{drop}=")]
    path = tmp_path / "env"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("files", [("docker-compose.yml",), ("docker-compose.yml", "docker-compose.gpu.yml")],
                         ids=["cpu", "gpu"])
def test_compose_config_valid(compose_bin, tmp_path, files):
    proc = _compose(compose_bin, _env_file(tmp_path), *files)
    assert proc.returncode == 0, proc.stderr


def test_compose_env_example_has_every_required_secret():
    text = (REPO / "docker-compose.yml").read_text()
    example = {ln.split("=", 1)[0] for ln in (REPO / ".env.example").read_text().splitlines() if "=" in ln}
    for name in COMPOSE_SECRETS:
        assert f"${{{name}:?" in text, f"{name} is not guarded with :? in docker-compose.yml"
        assert name in example, f"{name} missing from .env.example"


@pytest.mark.parametrize("secret", COMPOSE_SECRETS)
def test_compose_without_a_secret_says_which(compose_bin, tmp_path, secret):
    proc = _compose(compose_bin, _env_file(tmp_path, drop=secret), "docker-compose.yml")
    assert proc.returncode != 0
    assert f"set {secret} in .env" in proc.stderr, proc.stderr


def test_compose_gpu_override_reserves_a_gpu_for_the_code_service(compose_bin, tmp_path):
    """The merged config (what `up` would run) gives the service that executes runs one NVIDIA GPU."""
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_SECRETS}
    proc = subprocess.run([compose_bin, "--env-file", str(_env_file(tmp_path)), "-f", "docker-compose.yml",
                           "-f", "docker-compose.gpu.yml", "config"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    (device,) = services["code"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["count"] == 1 and "gpu" in device["capabilities"]
    assert services["code"]["environment"]["ARXIV_FORGE_DEVICE"] == "cuda"
    # Every Dagster service sees the same Postgres settings (the instance config reads them).
    for name in ("code", "webserver", "daemon"):
        env_vars = services[name]["environment"]
        assert env_vars["DAGSTER_POSTGRES_HOST"] == "postgres" and env_vars["DAGSTER_POSTGRES_PASSWORD"] == "change-me"


def test_compose_every_service_uses_the_minio_data_root(compose_bin, tmp_path):
    """The merged config: code server, webserver and daemon all name the MinIO lake (the bucket minio-init
    creates) with MinIO's credentials, and a scratch folder that is only a cache."""
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_SECRETS}
    proc = subprocess.run([compose_bin, "--env-file", str(_env_file(tmp_path)), "-f", "docker-compose.yml", "config"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    example = dict(ln.split("=", 1) for ln in (REPO / ".env.example").read_text().splitlines() if "=" in ln)
    init = " ".join(services["minio-init"]["entrypoint"]) if isinstance(services["minio-init"]["entrypoint"], list) \
        else services["minio-init"]["entrypoint"]
    for name in ("code", "webserver", "daemon"):
        e = services[name]["environment"]
        bucket = e["ARXIV_FORGE_DATA"].removeprefix("s3://").split("/")[0]
        assert e["ARXIV_FORGE_DATA"].startswith("s3://") and f"mc mb --ignore-existing lake/{bucket}" in init, name
        assert e["ARXIV_FORGE_DATA_ENDPOINT"] == "http://minio:9000", name
        assert e["ARXIV_FORGE_DATA_KEY"] == example["MINIO_ROOT_USER"], name
        assert e["ARXIV_FORGE_DATA_SECRET"] == example["MINIO_ROOT_PASSWORD"], name


# --- Kubernetes (Helm values, the k8s code location, the pods it would create) ---------------------------

HELM_VALUES = REPO / "deploy" / "helm" / "values.yaml"
TRAINING = ("figure_gan", "figure_vae", "text_lstm")


@pytest.fixture(scope="module")
def helm_values() -> dict:
    return yaml.safe_load(HELM_VALUES.read_text())


@pytest.fixture(scope="module")
def k8s_defs():
    """deploy/k8s/definitions.py loaded the way `dagster code-server start -f` loads it."""
    spec = importlib.util.spec_from_file_location("arxiv_forge_k8s_definitions", REPO / "deploy/k8s/definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs


def _deployment(values: dict) -> dict:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def test_helm_values_structure(helm_values):
    deployment = _deployment(helm_values)
    args = deployment["codeServerArgs"]
    assert args[0] == "-f" and args[1].startswith("/opt/arxiv-forge/")
    in_repo = args[1].removeprefix("/opt/arxiv-forge/")
    assert (REPO / in_repo).is_file()
    assert f"COPY {in_repo} ./{in_repo}" in (REPO / "Dockerfile").read_text(), "the image must contain the file"
    assert helm_values["dagster-user-deployments"]["enabled"] and deployment["image"]["repository"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["ARXIV_FORGE_DATA"].startswith("s3://") and env["ARXIV_FORGE_SCRATCH"] == "/scratch"
    # The code server's resources would override the launcher's in every run and step pod.
    assert "resources" not in deployment
    assert helm_values["runLauncher"]["type"] == "K8sRunLauncher"
    pg = helm_values["postgresql"]
    assert pg["postgresqlScheme"] == "postgresql+psycopg2"
    assert pg["enabled"] or pg["postgresqlHost"]
    # Dagster refuses run limits on the coordinator once a `concurrency` block exists.
    assert "config" not in helm_values["dagsterDaemon"]["runCoordinator"]


def test_k8s_code_location_runs_a_pod_per_step(k8s_defs):
    from assets.definitions import defs as project_defs

    assert k8s_defs.executor.name == "k8s"
    for job in ("chunk_job", "category_training_job", "field_training_job"):
        assert k8s_defs.resolve_job_def(job).executor_def.name == "k8s"
    assert set(k8s_defs.resolve_all_asset_keys()) == set(project_defs.resolve_all_asset_keys())


def _step_pod(values: dict, op_tags: dict):
    """The step Job the k8s_job_executor would submit for an op with these tags, as Kubernetes objects.

    Mirrors dagster-k8s: the run launcher's config (rendered from the Helm values as the chart's
    _run-launcher.tpl does), then the code location's container context (the chart's
    k8sContainerContext helper), then the op's `dagster-k8s/config` tag, each merged onto the previous.
    """
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import (
        DagsterK8sJobConfig,
        UserDefinedDagsterK8sConfig,
        construct_dagster_k8s_job,
        get_user_defined_k8s_config,
    )

    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s = {"container_config": launcher["runK8sConfig"].get("containerConfig", {}),
               "pod_spec_config": launcher["runK8sConfig"].get("podSpecConfig", {})}
    deployment = _deployment(values)
    context = K8sContainerContext(
        env_secrets=[s["name"] for s in launcher["envSecrets"]], volumes=launcher["volumes"],
        volume_mounts=launcher["volumeMounts"], run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(run_k8s),
    ).merge(K8sContainerContext(
        env_config_maps=["arxiv-forge-user-env"], env_secrets=[s["name"] for s in deployment["envSecrets"]],
        volumes=deployment["volumes"], volume_mounts=deployment["volumeMounts"], resources=deployment.get("resources"),
    )).merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(op_tags)))
    job_config = DagsterK8sJobConfig(job_image="registry/arxiv-forge:test", dagster_home="/opt/dagster/dagster_home",
                                     instance_config_map="arxiv-forge-dagster-instance")
    job = construct_dagster_k8s_job(job_config, ["dagster", "api", "execute_step"], "dagster-step-test",
                                    user_defined_k8s_config=context.run_k8s_config, pod_name="dagster-step-test")
    return job.spec.template.spec


def test_training_steps_request_a_gpu_and_tolerate_gpu_nodes(helm_values, k8s_defs):
    for name in TRAINING:
        op = k8s_defs.resolve_assets_def(name).op
        assert op.pool == "gpu", name
        pod = _step_pod(helm_values, op.tags)
        (container,) = pod.containers
        assert container.resources.limits["nvidia.com/gpu"] == "1", name
        assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in pod.tolerations), name
        assert "/scratch" in [m.mount_path for m in container.volume_mounts]
        scratch = {v.name: v for v in pod.volumes}["scratch"]
        # a pod's own empty cache: runs share nothing but the data root on S3
        assert scratch.empty_dir is not None and scratch.persistent_volume_claim is None
        assert "arxiv-forge-aws" in [e.secret_ref.name for e in container.env_from if e.secret_ref]


def test_cpu_steps_get_no_gpu(helm_values, k8s_defs):
    for name in ("arxiv_manifest", "source_chunk", "category_figures"):
        pod = _step_pod(helm_values, k8s_defs.resolve_assets_def(name).op.tags)
        (container,) = pod.containers
        assert not (container.resources.limits or {}).get("nvidia.com/gpu"), name
        assert container.resources.requests["cpu"] == "2", name


# --- a real PostgreSQL server ---------------------------------------------------------------------------

def _instance(home: Path, storage: dict) -> dg.DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"postgres": storage},
                                                       "telemetry": {"enabled": False}}))
    return dg.DagsterInstance.from_config(str(home))


letters = dg.StaticPartitionsDefinition(["a", "b"])


@dg.asset(partitions_def=letters)
def letter_rows(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"letter": context.partition_key, "rows": ord(context.partition_key)})


def test_partitioned_materialisation_on_postgres(pg, tmp_path):
    db = pg.create_database("dagster_letters")
    storage = {"postgres_db": {"scheme": "postgresql+psycopg2", "hostname": pg.host, "port": pg.port, "username": pg.username,
                               "password": pg.password, "db_name": db}}
    instance = _instance(tmp_path / "home", storage)
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        for key in letters.get_partition_keys():
            assert dg.materialize([letter_rows], partition_key=key, instance=instance).success
        asset = dg.AssetKey("letter_rows")
        assert instance.get_materialized_partitions(asset) == {"a", "b"}
        latest = instance.get_latest_materialization_event(asset).asset_materialization
        assert latest.partition == "b" and latest.metadata["rows"].value == ord("b")
    finally:
        instance.dispose()

    # The runs and events are in Postgres itself, not in process memory.
    runs = pg.query(db, "SELECT partition, status FROM runs ORDER BY create_timestamp")
    assert runs == [("a", "SUCCESS"), ("b", "SUCCESS")]
    events = pg.query(db, "SELECT partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                          "AND asset_key = %s ORDER BY id", (asset.to_string(),))
    assert [p for (p,) in events] == ["a", "b"]

    # A fresh instance (what the webserver or daemon would open) sees the same history.
    again = _instance(tmp_path / "home2", {"postgres_url": pg.url(db)})
    try:
        assert again.get_runs_count() == 2
        assert again.get_materialized_partitions(asset) == {"a", "b"}
    finally:
        again.dispose()


def _tiny_bucket(root: Path) -> list[str]:
    """A bucket with two real (tiny) chunk tars and a manifest that describes them; returns the chunk names."""
    entries = []
    for seq, chunk in enumerate(("arXiv_src_2301_001", "arXiv_src_2301_002"), start=1):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = b"\\documentclass{article}\\begin{document}hi\\end{document}\n"
            info = tarfile.TarInfo(f"2301.0000{seq}.tex")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        blob = buf.getvalue()
        path = root / "src" / f"{chunk}.tar"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        md5 = hashlib.md5(blob).hexdigest()
        entries.append(ManifestEntry(content_md5sum=md5, filename=f"src/{chunk}.tar", first_item=f"2301.0000{seq}",
                                     last_item=f"2301.0000{seq}", md5sum=md5, num_items=1, seq_num=seq,
                                     size=len(blob), timestamp="2023-01-31 12:00:00", yymm="2301"))
    (root / MANIFEST_KEY).write_bytes(render_manifest(entries, "Tue Jan 31 12:00:00 2023"))
    return [e.chunk for e in entries]


def test_project_assets_on_postgres(pg, tmp_path):
    """The real manifest asset, the chunk sensor (dynamic partitions) and a source_chunk partition on Postgres."""
    chunks = _tiny_bucket(tmp_path / "bucket")
    bucket = SourceBucket(url=str(tmp_path / "bucket"))
    lake = DataLake(root=str(tmp_path / "data"))
    db = pg.create_database("dagster_project")
    instance = _instance(tmp_path / "home", {"postgres_url": pg.url(db)})
    try:
        result = dg.materialize([arxiv_manifest], instance=instance, resources={"bucket": bucket})
        assert result.success
        meta = instance.get_latest_materialization_event(dg.AssetKey("arxiv_manifest")).asset_materialization.metadata
        assert meta["chunks"].value == 2 and meta["items"].value == 2

        sensed = new_chunks_sensor(dg.build_sensor_context(instance=instance, resources={"bucket": bucket}))
        assert [r.partition_key for r in sensed.run_requests] == chunks
        (add,) = sensed.dynamic_partitions_requests
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))

        # A second look at the same manifest finds nothing new: the partitions are stored in Postgres.
        again = new_chunks_sensor(dg.build_sensor_context(instance=instance, resources={"bucket": bucket}))
        assert not again.run_requests and "no new chunks (2 known" in again.skip_reason.skip_message

        result = dg.materialize([source_chunk], partition_key=chunks[1], instance=instance,
                                resources={"bucket": bucket, "lake": lake})
        assert result.success
        assert instance.get_materialized_partitions(dg.AssetKey("source_chunk")) == {chunks[1]}
    finally:
        instance.dispose()
    stored = pg.query(db, "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'chunk' ORDER BY id")
    assert [p for (p,) in stored] == chunks


def test_repo_instance_config_on_postgres(pg, tmp_path, monkeypatch):
    """The compose deployment's dagster.yaml, as shipped, against a real server via its environment variables."""
    db = pg.create_database("dagster_compose")
    for name, value in {"HOST": pg.host, "PORT": str(pg.port), "USER": pg.username, "PASSWORD": pg.password,
                        "DB": db}.items():
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{name}", value)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        limits = instance.get_concurrency_config()
        assert limits.pool_config.default_pool_limit == 1
        assert limits.run_queue_config.max_concurrent_runs == 4
        assert {"key": "arxiv-forge/stage", "value": "extract", "limit": 1} in limits.run_queue_config.tag_concurrency_limits
        assert dg.materialize([letter_rows], partition_key="a", instance=instance).success
    finally:
        instance.dispose()
    assert pg.query(db, "SELECT partition, status FROM runs") == [("a", "SUCCESS")]


def test_helm_instance_config_on_postgres(pg, tmp_path, helm_values):
    """The dagster.yaml the chart renders from deploy/helm/values.yaml (storage, queue, concurrency) is
    accepted by this Dagster and works against a real server (host and port swapped for the test's)."""
    db = pg.create_database("dagster_helm")
    chart_pg = helm_values["postgresql"]
    instance_yaml = {
        "storage": {"postgres": {"postgres_db": {
            "username": pg.username, "password": pg.password, "hostname": pg.host, "db_name": db,
            "port": pg.port, "params": chart_pg["postgresqlParams"], "scheme": chart_pg["postgresqlScheme"],
        }}},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
        **helm_values["additionalInstanceConfig"],
        "telemetry": {"enabled": False},
    }
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        limits = instance.get_concurrency_config()
        assert limits.pool_config.default_pool_limit == 1
        assert limits.run_queue_config.max_concurrent_runs == 20
        assert dg.materialize([letter_rows], partition_key="b", instance=instance).success
    finally:
        instance.dispose()
    assert pg.query(db, "SELECT partition, status FROM runs") == [("b", "SUCCESS")]


# --- the compose topology without Docker ------------------------------------------------------------------

def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started with start_new_session=True, and its children (run workers, loaders)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_compose_topology_runs_a_queued_job(pg, tmp_path):
    """What docker-compose.yml wires up, as local processes: the repo's dagster.yaml on Postgres, the code
    location as a gRPC code server, the daemon reading deploy/workspace.compose.yaml's shape. A launched job
    is queued, dequeued by the daemon, executed by the code server, and its run and materialisation land in
    Postgres."""
    from dagster._grpc.client import DagsterGrpcClient
    from pgserver import free_port

    db = pg.create_database("dagster_topology")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    _tiny_bucket(tmp_path / "bucket")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_POSTGRES_HOST": pg.host,
           "DAGSTER_POSTGRES_PORT": str(pg.port), "DAGSTER_POSTGRES_USER": pg.username,
           "DAGSTER_POSTGRES_PASSWORD": pg.password, "DAGSTER_POSTGRES_DB": db,
           "ARXIV_FORGE_BUCKET": str(tmp_path / "bucket"), "ARXIV_FORGE_DATA": str(tmp_path / "data")}
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    code_cmd = compose["code"]["command"]
    port = free_port()
    code_cmd = [str(DAGSTER.with_name(code_cmd[0])), *code_cmd[1:]]
    code_cmd[code_cmd.index("-h") + 1] = "127.0.0.1"
    code_cmd[code_cmd.index("-p") + 1] = str(port)
    (grpc,) = yaml.safe_load((REPO / "deploy" / "workspace.compose.yaml").read_text())["load_from"]
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {**grpc["grpc_server"], "host": "127.0.0.1",
                                                                         "port": port}}]}))
    daemon_cmd = [str(DAGSTER.with_name("dagster-daemon")), "run", "-w", str(workspace)]
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("code", "daemon")}  # noqa: SIM115
    procs = []
    try:
        procs.append(subprocess.Popen(code_cmd, cwd=REPO, env=env, stdout=logs["code"], stderr=subprocess.STDOUT,
                                      start_new_session=True))
        procs.append(subprocess.Popen(daemon_cmd, cwd=REPO, env=env, stdout=logs["daemon"],
                                      stderr=subprocess.STDOUT, start_new_session=True))
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + 180
        while True:
            try:
                client.ping("ready")
                break
            except Exception:  # noqa: BLE001 - not listening yet
                assert time.monotonic() < deadline and procs[0].poll() is None, (tmp_path / "code.log").read_text()
                time.sleep(0.5)
        launch = subprocess.run([str(DAGSTER), "job", "launch", "-w", str(workspace), "-j", "manifest_job"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        assert launch.returncode == 0, launch.stdout + launch.stderr
        status = None
        while status not in ("SUCCESS", "FAILURE", "CANCELED"):
            assert time.monotonic() < deadline, f"run still {status}\n{(tmp_path / 'daemon.log').read_text()[-3000:]}"
            time.sleep(0.5)
            rows = pg.query(db, "SELECT status FROM runs")
            status = rows[0][0] if rows else None
    finally:
        for proc in procs:
            _stop(proc)
        for fh in logs.values():
            fh.close()
    assert status == "SUCCESS", (tmp_path / "daemon.log").read_text()[-3000:]
    assert "Launched 1 runs" in (tmp_path / "daemon.log").read_text()
    events = pg.query(db, "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                          "AND asset_key = %s", (dg.AssetKey("arxiv_manifest").to_string(),))
    assert events == [(1,)]
