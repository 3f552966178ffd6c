"""bench/gpu_check.py: the no-CUDA message, and every workload's code path in tiny sizes on the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.py"
DEFAULT_OUT = REPO / "bench" / "results" / "gpu_check.json"
IMAGE_WORKLOADS = ("gan_64", "dcgan_64", "loader_64", "gan_128", "dcgan_128", "loader_128", "vae_64", "vae_128",
                   "digits_vae")


def _run(*args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    # no GPU visible even on a machine that has one, one thread: the machine is shared with timed benchmarks
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "ARXIV_FORGE_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _snapshot(directory: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in directory.iterdir()} if directory.is_dir() else {}


def test_without_cuda_says_so_and_writes_nothing(tmp_path):
    before = _snapshot(DEFAULT_OUT.parent)
    proc = _run(cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no CUDA device: this check needs a GPU; nothing measured"
    assert _snapshot(DEFAULT_OUT.parent) == before
    assert list(tmp_path.iterdir()) == []


def test_tiny_cpu_run_measures_every_workload(tmp_path):
    out = tmp_path / "tmp" / "x.json"
    proc = _run("--device", "cpu", "--tiny", "--out", str(out), cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"saved {out}" in proc.stdout
    data = json.loads(out.read_text())
    assert data["tiny"] is True and data["device"] == "cpu"
    for key in ("torch", "cuda", "gpu", "settings", "comparisons", "total_seconds"):
        assert key in data
    workloads = data["workloads"]
    assert set(workloads) == {*IMAGE_WORKLOADS, "lstm"}
    for name in IMAGE_WORKLOADS:
        value = workloads[name]["images_per_s"]
        assert isinstance(value, float) and value > 0, (name, workloads[name])
    assert isinstance(workloads["lstm"]["tokens_per_s"], float) and workloads["lstm"]["tokens_per_s"] > 0
    digits = workloads["digits_vae"]
    assert isinstance(digits["loss_first"], float) and isinstance(digits["loss_last"], float)
    assert digits["loss_fell"] is (digits["loss_last"] < digits["loss_first"])
    for res in (64, 128):   # the ratios the summary prints are the ratios of the measured rates
        gan, dcgan, loader = (workloads[f"{k}_{res}"]["images_per_s"] for k in ("gan", "dcgan", "loader"))
        assert data["comparisons"][f"gan_over_dcgan_{res}"] == pytest.approx(gan / dcgan)
        assert data["comparisons"][f"loader_over_gan_step_{res}"] == pytest.approx(loader / gan)
        assert data["comparisons"][f"loader_is_bottleneck_{res}"] is (loader < gan)
    assert "gan_128" in proc.stdout and "digits VAE" in proc.stdout   # the table


def test_cpu_needs_tiny(tmp_path):
    proc = _run("--device", "cpu", "--out", str(tmp_path / "x.json"), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "--tiny" in proc.stderr
    assert not (tmp_path / "x.json").exists()
