"""Training shards: write/load round trip, validation errors, the seeded resumable batch loader."""

import json
import time

import numpy as np
import pytest
import torch

from models.shard import (
    BatchLoader,
    ShardError,
    load_shard,
    measure_loader,
    split_indices,
    to_uint8,
    write_shard,
)


def _images(n=20, c=1, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, size, size), dtype=np.uint8)


def test_round_trip_one_column(tmp_path):
    imgs = _images()
    labels = np.arange(20) % 3
    write_shard(tmp_path / "s", imgs, labels, ["plot", "diagram", "photo"])
    shard = load_shard(tmp_path / "s")
    assert isinstance(shard.images, np.memmap)
    assert np.array_equal(np.asarray(shard.images), imgs)
    assert shard.labels.shape == (20, 1) and shard.labels.dtype == np.int64
    assert np.array_equal(shard.labels[:, 0], labels)
    assert shard.class_names == [["plot", "diagram", "photo"]]
    assert (len(shard), shard.channels, shard.resolution, shard.num_classes) == (20, 1, 16, [3])
    assert json.loads((tmp_path / "s" / "classes.json").read_text())["names"] == ["plot", "diagram", "photo"]


def test_round_trip_several_columns_and_selection(tmp_path):
    imgs = _images(c=3)
    labels = np.stack([np.arange(20) % 2, np.arange(20) % 4], 1)
    names = [["a", "b"], ["w", "x", "y", "z"]]
    write_shard(tmp_path / "s", imgs, labels, names, columns=["kind", "section"])
    shard = load_shard(tmp_path / "s")
    assert shard.class_names == names and shard.columns == ["kind", "section"]
    sel, sel_names = shard.select_columns(["section"])
    assert np.array_equal(sel[:, 0], labels[:, 1]) and sel_names == [names[1]]
    both, _ = shard.select_columns(None)
    assert both.shape == (20, 2)
    with pytest.raises(ShardError, match="no label column 'caption'"):
        shard.column_index("caption")
    with pytest.raises(ShardError, match="out of range"):
        shard.column_index(5)


@pytest.mark.parametrize("breakage, message", [
    ("missing", "missing labels.npy"),
    ("dtype", "expected uint8"),
    ("range", "outside 0..2"),
    ("names", "name lists for"),
    ("json", "cannot read class names"),
])
def test_bad_shards_are_named_errors(tmp_path, breakage, message):
    root = write_shard(tmp_path / "s", _images(), np.arange(20) % 3, ["a", "b", "c"])
    if breakage == "missing":
        (root / "labels.npy").unlink()
    elif breakage == "dtype":
        np.save(root / "images.npy", _images().astype(np.float32))
    elif breakage == "range":
        np.save(root / "labels.npy", np.arange(20, dtype=np.int64))
    elif breakage == "names":
        (root / "classes.json").write_text(json.dumps({"names": [["a"], ["b"]]}))
    elif breakage == "json":
        (root / "classes.json").write_text("{not json")
    with pytest.raises(ShardError, match=message):
        load_shard(root)
    with pytest.raises(ShardError, match="not found"):
        load_shard(tmp_path / "nowhere")


def test_split_is_deterministic_disjoint_and_complete():
    a, b = split_indices(103, 0.2, seed=4)
    a2, b2 = split_indices(103, 0.2, seed=4)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    assert len(b) == 21 and not set(a) & set(b) and sorted(set(a) | set(b)) == list(range(103))
    assert not np.array_equal(b, split_indices(103, 0.2, seed=5)[1])


def test_loader_batches_are_a_function_of_the_step(tmp_path):
    write_shard(tmp_path / "s", _images(50), np.arange(50) % 5, [str(i) for i in range(5)])
    shard = load_shard(tmp_path / "s")
    idx = np.arange(0, 50, 2)
    loader = BatchLoader(shard.images, shard.labels, 8, indices=idx, resolution=32, seed=3)
    it = loader.batches(0)
    first = [next(it) for _ in range(7)]  # crosses an epoch boundary (25 images / 8 = 3 batches per epoch)
    it.close()
    resumed = loader.batches(4)
    for k in range(4, 7):
        x, y = next(resumed)
        assert torch.equal(x, first[k][0]) and torch.equal(y, first[k][1])
    resumed.close()
    x, y = first[0]
    assert x.shape == (8, 1, 32, 32) and x.dtype == torch.float32 and y.shape == (8, 1)
    assert x.min() >= -1 and x.max() <= 1
    # resized batches stay on the 256-level grid (needed for discrete likelihoods)
    assert torch.allclose((x + 1) * 127.5, ((x + 1) * 127.5).round(), atol=1e-4)
    # only images from the chosen indices, and each batch of an epoch is distinct
    seen = [to_uint8(b[0]) for b in first[:3]]
    assert len({t.numpy().tobytes() for t in seen}) == 3
    # labels travel with their images: the label is index % 5 and images are unique per index
    no_resize = BatchLoader(shard.images, shard.labels, 8, indices=idx, seed=3, prefetch=0)
    xb, yb = no_resize.batch(0)
    u8 = to_uint8(xb).numpy()
    for img, lab in zip(u8, yb[:, 0].numpy(), strict=True):
        (match,) = [i for i in idx if np.array_equal(shard.images[i], img)]
        assert match % 5 == lab


def test_loader_rejects_empty_and_measures(tmp_path, monkeypatch):
    with pytest.raises(ShardError, match="no training images"):
        BatchLoader(_images(4), np.zeros(4, np.int64), 2, indices=np.array([], dtype=np.int64))
    loader = BatchLoader(_images(40), np.zeros(40, np.int64), 8)
    # a clock that reads 0.5 s later at every look: 5 timed batches of 8 images are 40 images in 0.5 s
    ticks = iter(np.arange(0, 100, 0.5))
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(ticks)))
    assert measure_loader(loader, steps=5) == pytest.approx(80.0)    # images per second, not batches or steps
