"""The Lake: a local folder and an S3 API (moto on 127.0.0.1) behave the same; shards and corpora are built
incrementally from per-chunk parts on the lake, and a fresh machine (empty scratch) sees the same results."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from pipeline.dataset.corpus import fetch_field_corpus, update_field_corpus
from pipeline.dataset.lake import Lake
from pipeline.dataset.shards import fetch_category_shard, update_category_shard
from pipeline.dataset.writer import ChunkWriter
from pipeline.errors import UserError

pytest_plugins = ["s3server"]


@pytest.fixture(params=["local", "s3"])
def lake(request, tmp_path):
    if request.param == "local":
        return Lake(tmp_path / "data", scratch=tmp_path / "scratch")
    s3 = request.getfixturevalue("s3_bucket")
    return Lake(f"s3://{s3.name}/prefix", endpoint_url=s3.endpoint_url, scratch=tmp_path / "scratch")


def test_objects_round_trip_and_hidden_names(lake, tmp_path):
    lake.write_bytes("a/b/c.bin", b"one")
    lake.write_json("a/index.json", {"x": 1})
    lake.write_bytes("a/_private/d.bin", b"hidden")
    (tmp_path / "up.txt").write_text("uploaded")
    lake.upload(tmp_path / "up.txt", "a/up.txt")
    assert lake.read_bytes("a/b/c.bin") == b"one" and lake.read_json("a/index.json") == {"x": 1}
    assert [f.key for f in lake.files("a")] == ["a/b/c.bin", "a/index.json", "a/up.txt"]
    assert lake.read_json("a/missing.json", default="none") == "none"
    first = lake.stat("a/b/c.bin")
    assert first.size == 3
    # fetch: a local copy; refetching an unchanged object reuses it, a rewritten one is fetched again
    copy = lake.fetch("a/b/c.bin", tmp_path / "copy.bin")
    assert copy.read_bytes() == b"one"
    lake.write_bytes("a/b/c.bin", b"two!")
    assert lake.fetch("a/b/c.bin", tmp_path / "copy.bin").read_bytes() == b"two!"
    lake.delete("a/b/c.bin")
    assert not lake.exists("a/b/c.bin")
    with pytest.raises(FileNotFoundError, match="not found"):
        lake.read_bytes("a/b/c.bin")


def test_bad_roots_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="names no bucket"):
        Lake("s3://")
    with pytest.raises(UserError, match="empty"):
        Lake("")
    with pytest.raises(ValueError, match="bad lake key"):
        Lake(tmp_path).path("../outside")


def _png(seed: int, size=(40, 30)) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 200, size=(size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _write_chunk(lake: Lake, chunk: str, n: int, category: str = "cs.CV", field: str = "cs", seed: int = 0) -> None:
    with ChunkWriter(lake, chunk) as w:
        for i in range(n):
            pid = f"{chunk[-8:]}.{i:05d}"
            w.add_paper({"paper_id": pid, "status": "ok"})
            png = _png(seed * 1000 + i)
            w.add_figure({"figure_id": f"{pid}/f1", "paper_id": pid, "primary_category": category,
                          "figure_kind": ["plot", "diagram", "photo"][i % 3], "section_kind": "results",
                          "caption_text": f"caption {i}", "image": {"bytes": png, "path": f"{pid}/f1.png"}})
            w.add_text({"paper_id": pid, "field": field, "kind": "abstract", "text": f"abstract of {pid}\nline"})
        w.commit()


def test_shards_grow_by_chunk_and_read_back_on_a_fresh_machine(lake, tmp_path):
    _write_chunk(lake, "arXiv_src_2301_001", 5, seed=1)
    _write_chunk(lake, "arXiv_src_2301_002", 3, seed=2)
    first = update_category_shard(lake, "cs.CV", resolution=16)
    assert (first.images, first.parts, first.parts_built, first.files_read) == (8, 2, 2, 2)
    assert first.class_counts["figure_kind"] == {"plot": 3, "diagram": 3, "photo": 2}
    # One new chunk: only its figures are read; the other parts are reused as they are.
    _write_chunk(lake, "arXiv_src_2302_001", 4, seed=3)
    second = update_category_shard(lake, "cs.CV", resolution=16)
    assert (second.images, second.parts_built, second.parts_reused, second.files_read) == (12, 1, 2, 1)
    # A chunk extracted again (new content) replaces its part; the old part is deleted from the lake.
    _write_chunk(lake, "arXiv_src_2301_002", 1, seed=4)
    third = update_category_shard(lake, "cs.CV", resolution=16)
    assert (third.images, third.parts_built, third.parts_removed) == (10, 1, 1)
    assert len([f for f in lake.files("shards/cs.CV/parts") if f.key.endswith(".npz")]) == 3

    a = fetch_category_shard(lake, "cs.CV", tmp_path / "machine-a")
    other = Lake(lake.url, endpoint_url=lake.endpoint_url, scratch=tmp_path / "empty-scratch")
    b = fetch_category_shard(other, "cs.CV", tmp_path / "machine-b")
    images_a, images_b = np.load(a / "images.npy"), np.load(b / "images.npy")
    assert images_a.shape == (10, 3, 16, 16) and np.array_equal(images_a, images_b)
    assert np.array_equal(np.load(a / "labels.npy"), np.load(b / "labels.npy"))
    assert json.loads((a / "classes.json").read_text())["columns"] == ["figure_kind", "section_kind"]
    import pyarrow.parquet as pq

    meta = pq.read_table(a / "meta.parquet")
    assert meta.num_rows == 10 and meta.column("chunk").to_pylist()[0] == "arXiv_src_2301_001"


def test_corpus_grows_by_chunk_and_splits_by_paper(lake, tmp_path):
    _write_chunk(lake, "arXiv_src_2301_001", 20)
    s1 = update_field_corpus(lake, "cs", valid_fraction=0.3)
    assert s1.train_lines + s1.valid_lines == 20 and s1.valid_lines > 0 and s1.parts_built == 1
    _write_chunk(lake, "arXiv_src_2301_002", 10)
    s2 = update_field_corpus(lake, "cs", valid_fraction=0.3)
    assert s2.parts_built == 1 and s2.parts_reused == 1 and s2.train_lines + s2.valid_lines == 30
    out = fetch_field_corpus(lake, "cs", tmp_path / "corpus")
    train = (out / "train.txt").read_text().splitlines()
    valid = (out / "valid.txt").read_text().splitlines()
    assert len(train) + len(valid) == 30 and all("\n" not in line for line in train)
    assert not {line.split()[2] for line in train} & {line.split()[2] for line in valid}  # no paper on both sides
    assert update_field_corpus(lake, "cs", valid_fraction=0.5).parts_built == 2  # new settings: rebuilt


def test_shard_and_corpus_settings_are_checked(tmp_path):
    lake = Lake(tmp_path / "data")
    with pytest.raises(UserError, match="choose from figure_kind, section_kind"):
        update_category_shard(lake, "cs.CV", label_columns=("figure_knd",))
    with pytest.raises(UserError, match="choose from title, abstract, caption, paragraph"):
        update_field_corpus(lake, "cs", kinds=("abstracts",))
    with pytest.raises(UserError, match=r"materialise category_figures\[cs.CV\] first"):
        fetch_category_shard(lake, "cs.CV")
    with pytest.raises(UserError, match=r"materialise field_corpus\[cs\] first"):
        fetch_field_corpus(lake, "cs")


def test_empty_category_gives_an_empty_shard(tmp_path):
    lake = Lake(tmp_path / "data")
    s = update_category_shard(lake, "math.AG")
    assert s.images == 0 and s.parts == 0
    out = fetch_category_shard(lake, "math.AG", tmp_path / "s")
    assert np.load(out / "images.npy").shape == (0, 3, 64, 64)


def test_metadata_ids_stay_strings_on_s3(s3_bucket, tmp_path):
    from pipeline.dataset.metadata import read_metadata, write_metadata

    lake = Lake(f"s3://{s3_bucket.name}/x", endpoint_url=s3_bucket.endpoint_url, scratch=tmp_path / "s")
    rows = [{"id": "0704.0001", "datestamp": "2024-01-01", "deleted": False},
            {"id": "math/0601001", "datestamp": "2024-01-01", "deleted": False}]
    write_metadata(lake, "2024-01-01", rows)
    assert read_metadata(lake).column("id").to_pylist() == ["0704.0001", "math/0601001"]
    assert read_metadata(lake, yymm=["0704"]).column("id").to_pylist() == ["0704.0001"]


def test_cli_shard_and_corpus_fetch_what_train_takes(tmp_path, capsys):
    from models.shard import load_shard
    from pipeline.cli import main

    lake = Lake(tmp_path / "data")
    _write_chunk(lake, "arXiv_src_2301_001", 6)
    assert main(["shard", "cs.CV", "--data-root", str(tmp_path / "data"), "--resolution", "32",
                 "--out", str(tmp_path / "shard")]) == 0
    assert "6 images at 32 px" in capsys.readouterr().out
    shard = load_shard(tmp_path / "shard")
    assert len(shard) == 6 and shard.resolution == 32 and shard.columns == ["figure_kind", "section_kind"]
    assert main(["corpus", "cs", "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "corpus")]) == 0
    lines = (tmp_path / "corpus" / "train.txt").read_text().splitlines() + \
        (tmp_path / "corpus" / "valid.txt").read_text().splitlines()
    assert len(lines) == 6


def test_a_shard_build_leaves_other_builds_scratch_files_alone(tmp_path):
    """Category shards build at the same time on one machine (the demo runs cs.CV and cs.LG together): a build
    must delete only its own temporary files from the shared scratch folder, not the other build's arrays."""
    lake = Lake(str(tmp_path / "lake"))
    _write_chunk(lake, "2301_001", 3)
    other = lake.scratch("build") / "another-build-in-progress.npy"
    other.write_bytes(b"half-written array")
    update_category_shard(lake, "cs.CV", resolution=16)
    assert other.read_bytes() == b"half-written array"
    assert [p.name for p in lake.scratch("build").iterdir()] == [other.name]
