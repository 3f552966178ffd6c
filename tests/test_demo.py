"""`arxiv-forge demo`, the README's first command, end to end through the real CLI on a small sample bucket:
every stage is a Dagster run recorded in the demo's own SQLite instance, the summary names the outputs, and
the outputs are there. Tiny models and second-long budgets; the full-size timing is measured by hand (README)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
def test_demo_runs_the_whole_graph_and_reports_where_everything_is(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARXIV_FORGE_", "DAGSTER_"))}
    root = tmp_path / "demo"
    cmd = [sys.executable, "-m", "pipeline.cli", "demo", "--root", str(root), "--papers", "40",
           "--image-preset", "tiny", "--gan-minutes", "0.05", "--vae-minutes", "0.05", "--lstm-minutes", "0.05",
           "--no-evaluate", "--workers", "1"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=580)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]

    # everything it wrote is under --root, in the layout the README lists
    assert (root / "sample-bucket" / "src" / "arXiv_src_manifest.xml").is_file()
    assert list((root / "data" / "figures").rglob("*.parquet"))
    assert list((root / "data" / "metadata" / "harvest").glob("*.parquet"))
    for kind, n in (("gan", 2), ("vae", 2), ("lstm", 2)):
        trained = [d for d in (root / "data" / "models" / kind).iterdir() if (d / "metrics.json").is_file()]
        assert len(trained) == n, (kind, trained)
        if kind != "lstm":
            assert all((d / "samples.png").is_file() and (d / "loss_curve.png").is_file() for d in trained)

    # the summary: where the tables, grids and UI are
    assert "papers" in out and "samples.png" in out and "make dev" in out, out[-3000:]

    # every stage was a real, successful Dagster run in the demo's own instance
    import dagster as dg

    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert len(runs) >= 10
        assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        jobs = {r.job_name for r in runs}
        for job in ("chunk_job", "category_training_job", "field_training_job"):
            assert job in jobs, jobs
