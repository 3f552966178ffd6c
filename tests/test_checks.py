"""Asset checks that must fail: an empty or truncated chunk, a shard short of its figures, model metrics that
are missing or NaN. Real Dagster materialisations on a tiny hand-made bucket and lake (no sample generator, no
real training: the trainer is replaced where a diverged run is needed), so the file runs in seconds."""

import gzip
import hashlib
import io
from pathlib import Path

import dagster as dg
import pytest
from helpers import write_chunk  # tests/ is on sys.path (rootdir conftest, no package)
from PIL import Image

from assets.checks import extraction_checks, metrics_check, shard_check
from assets.datasets import category_figures
from assets.extraction import chunk_extract
from assets.partitions import chunk_partitions
from assets.resources import Compute, DataLake, SourceBucket
from assets.training import figure_gan
from pipeline.dataset.lake import Lake
from pipeline.dataset.writer import ChunkWriter
from pipeline.source.manifest import ManifestEntry, render_manifest


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 24), ((37 * i) % 256, (91 * i) % 256, 200)).save(buf, "PNG")
    return buf.getvalue()


def _write_chunk(root: Path, chunk: str, category: str, figures: list[tuple[bytes, str | None]]) -> None:
    """One chunk's papers and figures rows, one figure with an image per paper."""
    with ChunkWriter(root, chunk) as writer:
        for i, (png, lic) in enumerate(figures):
            pid = f"{chunk[10:14]}.{i:05d}"
            writer.add_paper({"paper_id": pid, "status": "ok", "n_figures": 1, "n_graphics": 1, "n_images": 1})
            writer.add_figure({
                "figure_id": f"{pid}/f1", "paper_id": pid, "primary_category": category, "figure_index": 1,
                "caption_text": "A figure.", "figure_kind": "plot", "section_kind": "results", "license": lic,
                "graphic_status": "ok", "image": {"bytes": png, "path": f"{pid}/f1.png"},
                "image_sha256": hashlib.sha256(png).hexdigest()})
        writer.commit()


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory) -> Path:
    """cs.CV: 10 figures over two chunks, 6 of them CC BY; cs.LG: 4 figures, one PNG cut in half."""
    root = tmp_path_factory.mktemp("lake")
    _write_chunk(root, "arXiv_src_2301_001", "cs.CV",
                 [(_png(i), "cc-by-4.0" if i % 2 == 0 else None) for i in range(6)])
    _write_chunk(root, "arXiv_src_2301_002", "cs.CV",
                 [(_png(10 + i), "cc-by-4.0" if i < 3 else "cc0-1.0") for i in range(4)])
    broken = _png(99)
    _write_chunk(root, "arXiv_src_2301_003", "cs.LG",
                 [(_png(20 + i), None) for i in range(3)] + [(broken[: len(broken) // 2], None)])
    return root


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    with dg.instance_for_test(temp_dir=str(tmp_path_factory.mktemp("dagster_home"))) as inst:
        yield inst


def _resources(data: Path, bucket: Path | None = None) -> dict:
    return {"bucket": SourceBucket(url=str(bucket or data)), "lake": DataLake(root=str(data)),
            "compute": Compute(device="cpu", workers=1)}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def _shard(lake_root: Path, instance, category: str, **config) -> dg.ExecuteInProcessResult:
    return dg.materialize([category_figures], partition_key=category, instance=instance,
                          resources=_resources(lake_root), raise_on_error=False,
                          run_config={"ops": {"category_figures": {"config": {"resolution": 16, **config}}}})


def test_shard_check_counts_the_licence_filter_and_max_images(lake_root, instance):
    result = _shard(lake_root, instance, "cs.CV", licenses=["cc-by"], max_images=4)
    check = _checks(result)["shard_complete"]
    meta = {k: v.value for k, v in check.metadata.items()}
    assert result.success and check.passed, meta
    assert (meta["figures_with_images"], meta["shard_images"], meta["expected"]) == (6, 6, 4)

    result = _shard(lake_root, instance, "cs.CV")  # no filter, no cap: every figure with an image
    check = _checks(result)["shard_complete"]
    assert check.passed and check.metadata["expected"].value == 10 == check.metadata["usable"].value
    # A part lost on the lake (or a chunk extracted after the shard was built): the check names the chunk.
    lake = Lake(str(lake_root))
    part = next(f.key for f in lake.files("shards/cs.CV/parts") if "arXiv_src_2301_002" in f.key
                and f.key.endswith(".parquet"))
    data = lake.read_bytes(part)
    lake.delete(part)
    try:
        lost = shard_check(lake, "cs.CV")
        assert not lost.passed and lost.metadata["short_chunks"].value == "arXiv_src_2301_002: 0 of 4"
    finally:
        lake.write_bytes(part, data)


def test_shard_check_fails_when_a_figure_with_an_image_is_missing_from_the_shard(lake_root, instance):
    result = _shard(lake_root, instance, "cs.LG")  # the cut PNG does not decode: the shard has 3 of 4
    check = _checks(result)["shard_complete"]
    assert result.success and not check.passed
    assert check.metadata["short_chunks"].value == "arXiv_src_2301_003: 3 of 4"


def test_chunk_checks_fail_on_an_empty_or_truncated_chunk(tmp_path, instance):
    """The manifest lists 3 papers in 001 but the tar ends after 2; 002 holds none at all."""
    paper = gzip.compress(b"\\documentclass{article}\\begin{document}\\title{T}Words only.\\end{document}\n")
    src = tmp_path / "bucket" / "src"
    src.mkdir(parents=True)
    tars = {"arXiv_src_2301_001": write_chunk(src / "arXiv_src_2301_001.tar", {"2301/2301.00001.gz": paper,
                                                                        "2301/2301.00002.gz": paper}),
            "arXiv_src_2301_002": write_chunk(src / "arXiv_src_2301_002.tar", {})}
    entries = [ManifestEntry(content_md5sum="0", filename=f"src/{name}.tar", first_item="2301.00001",
                             last_item="2301.00003", md5sum=hashlib.md5(tar.read_bytes()).hexdigest(),
                             num_items=3 if name.endswith("1") else 2, seq_num=i, size=tar.stat().st_size,
                             timestamp="2023-02-01 00:00:00", yymm="2301")
               for i, (name, tar) in enumerate(tars.items(), 1)]
    (src / "arXiv_src_manifest.xml").write_bytes(render_manifest(entries, "2023-02-01 00:00:00"))
    data = tmp_path / "data"
    instance.add_dynamic_partitions(chunk_partitions.name, list(tars))
    got = {}
    for chunk in tars:
        result = dg.materialize([chunk_extract], partition_key=chunk, instance=instance, raise_on_error=False,
                                resources=_resources(data, tmp_path / "bucket"))
        assert result.success, chunk
        got[chunk] = _checks(result)
    truncated, empty = got["arXiv_src_2301_001"], got["arXiv_src_2301_002"]
    assert not truncated["papers_complete"].passed and truncated["papers_complete"].metadata["missing"].value == 1
    assert truncated["figures_complete"].passed and truncated["error_rate_below_threshold"].passed
    assert not empty["papers_complete"].passed and not empty["error_rate_below_threshold"].passed

    # A chunk whose figures file went missing after its papers were written fails figures_complete.
    lake_dir = tmp_path / "lake2"
    _write_chunk(lake_dir, "arXiv_src_2301_004", "cs.CV", [(_png(1), None), (_png(2), None)])
    lake = Lake(str(lake_dir))
    assert {r.check_name: r.passed for r in extraction_checks(lake, "arXiv_src_2301_004", 2)}["figures_complete"]
    for f in lake.files("figures"):
        lake.delete(f.key)
    results = {r.check_name: r for r in extraction_checks(lake, "arXiv_src_2301_004", 2)}
    assert not results["figures_complete"].passed and results["figures_complete"].metadata["expected_rows"].value == 2


@pytest.mark.parametrize("metrics, problem", [
    ({"model": "gan", "final_d_loss": float("nan"), "final_g_loss": 1.5}, ("not_finite", "final_d_loss")),
    ({"model": "gan", "final_d_loss": 0.5}, ("missing", "final_g_loss")),
])
def test_metrics_check_fails_on_nan_or_missing_metrics(lake_root, instance, monkeypatch, metrics, problem):
    from models import gan

    assert _shard(lake_root, instance, "cs.CV").success
    monkeypatch.setattr(gan, "train", lambda *args, **kwargs: dict(metrics))  # a diverged or broken trainer
    result = dg.materialize(
        [figure_gan], partition_key="cs.CV", instance=instance, resources=_resources(lake_root),
        raise_on_error=False,
        run_config={"ops": {"figure_gan": {"config": {"preset": "cpu-small", "steps": 1, "evaluate": False}}}})
    check = _checks(result)["metrics_valid"]
    assert result.success and not check.passed
    assert check.metadata[problem[0]].value == problem[1]


def test_metrics_check_fails_without_a_metrics_file(lake_root):
    lake = Lake(str(lake_root))
    check = metrics_check(lake, "lstm", "cs", "text_lstm")
    assert not check.passed and check.metadata["file"].value == "missing"
    lake.write_bytes("models/lstm/cs/metrics.json", b'{"train_loss": 4.1, "valid": {"loss": 4.0, '
                                                    b'"perplexity": 54.6, "bpc": null}}')
    check = metrics_check(lake, "lstm", "cs", "text_lstm")
    assert not check.passed and check.metadata["null"].value == "valid_bpc"
    lake.write_bytes("models/lstm/cs/metrics.json", b'{"train_loss": 4.1, "valid": {"loss": 4.0, '
                                                    b'"perplexity": 54.6, "bpc": 1.9}}')
    assert metrics_check(lake, "lstm", "cs", "text_lstm").passed
