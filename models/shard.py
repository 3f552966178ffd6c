"""Training shards: the file hand-over from the dataset side to the image models, and a fast batch loader.

A shard is a directory:

    images.npy    uint8, N x C x H x W (C = 1 or 3, H = W), loaded memory-mapped
    labels.npy    int64, N (one label column) or N x K (K label columns)
    classes.json  {"names": [[...], ...]} one name list per label column, or {"names": [...]} for one column;
                  optional "columns": ["figure_kind", ...] naming the columns
    meta.parquet  optional, one row per image (not read here; kept for provenance)

The loader draws batches from the memory map with a per-epoch permutation derived from (seed, epoch), so a
resumed run sees exactly the batches an unbroken run would see without saving loader state. uint8 is moved
to the device first and converted to float there (4x less host->device traffic than float32), and a
background thread prefetches the next batch so disk/page-cache reads overlap the training step.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from forge_common import atomic_write


class ShardError(ValueError):
    """A shard directory is missing or malformed; the message names the file and the problem."""


@dataclass
class Shard:
    path: Path
    images: np.ndarray                  # uint8 N x C x H x W (np.memmap when loaded from disk)
    labels: np.ndarray                  # int64 N x K (always 2-D here)
    class_names: list[list[str]]        # one list per label column
    columns: list[str] = field(default_factory=list)
    meta_path: Path | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.images.shape[2])

    @property
    def num_classes(self) -> list[int]:
        return [len(names) for names in self.class_names]

    def column_index(self, column: int | str) -> int:
        """A label column given by index or by name."""
        if isinstance(column, str) and not column.lstrip("-").isdigit():
            if column not in self.columns:
                raise ShardError(f"{self.path}: no label column {column!r}; columns are {self.columns or 'unnamed'}")
            return self.columns.index(column)
        k = int(column)
        if not 0 <= k < self.labels.shape[1]:
            raise ShardError(f"{self.path}: label column {k} out of range (shard has {self.labels.shape[1]})")
        return k

    def select_columns(self, columns: Sequence[int | str] | None) -> tuple[np.ndarray, list[list[str]]]:
        """Labels (N x k int64) and class names for the chosen columns (None = all columns)."""
        idx = list(range(self.labels.shape[1])) if columns is None else [self.column_index(c) for c in columns]
        return np.ascontiguousarray(self.labels[:, idx]), [self.class_names[i] for i in idx]


def _read_classes(path: Path, n_columns: int) -> tuple[list[list[str]], list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: cannot read class names ({exc}); expected {{\"names\": [...]}}") from exc
    names = data.get("names") if isinstance(data, dict) else None
    if not isinstance(names, list) or not names:
        raise ShardError(f"{path}: expected a non-empty \"names\" list")
    if all(isinstance(n, str) for n in names):
        names = [names]
    if not all(isinstance(col, list) and all(isinstance(n, str) for n in col) for col in names):
        raise ShardError(f"{path}: \"names\" must be a list of strings or a list of lists of strings")
    if len(names) != n_columns:
        raise ShardError(f"{path}: {len(names)} name lists for {n_columns} label columns in labels.npy")
    columns = data.get("columns") or [f"label{i}" for i in range(n_columns)]
    return [list(col) for col in names], [str(c) for c in columns]


def load_shard(directory: str | os.PathLike, mmap: bool = True) -> Shard:
    """Open a shard directory (images memory-mapped); checks shapes, dtypes and label ranges."""
    root = Path(directory)
    if not root.is_dir():
        raise ShardError(f"{root}: shard directory not found (expected images.npy, labels.npy, classes.json)")
    for name in ("images.npy", "labels.npy", "classes.json"):
        if not (root / name).is_file():
            raise ShardError(f"{root}: missing {name}; a shard needs images.npy, labels.npy and classes.json")
    try:
        images = np.load(root / "images.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        labels = np.load(root / "labels.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ShardError(f"{root}: cannot read the .npy files ({exc})") from exc
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3) \
            or images.shape[2] != images.shape[3]:
        raise ShardError(f"{root}/images.npy: expected uint8 N x C x H x W with C in (1, 3) and H == W, "
                         f"got {images.dtype} {images.shape}")
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[0] != images.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise ShardError(f"{root}/labels.npy: expected int64 N or N x K with N = {images.shape[0]}, "
                         f"got {labels.dtype} {labels.shape}")
    labels = labels.astype(np.int64, copy=False)
    class_names, columns = _read_classes(root / "classes.json", labels.shape[1])
    for k, names in enumerate(class_names):
        if labels.shape[0] and (labels[:, k].min() < 0 or labels[:, k].max() >= len(names)):
            raise ShardError(f"{root}/labels.npy: column {k} has labels outside 0..{len(names) - 1}")
    meta = root / "meta.parquet"
    return Shard(root, images, labels, class_names, columns, meta if meta.is_file() else None)


def write_shard(directory: str | os.PathLike, images: np.ndarray, labels: np.ndarray,
                class_names: Sequence[str] | Sequence[Sequence[str]], columns: Sequence[str] | None = None) -> Path:
    """Write a shard (each file via temp name + rename, classes.json last so a reader never sees half a shard)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    images = np.ascontiguousarray(images)
    labels = np.asarray(labels, dtype=np.int64)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ShardError(f"images must be uint8 N x C x H x W, got {images.dtype} {images.shape}")
    if labels.shape[0] != images.shape[0]:
        raise ShardError(f"{labels.shape[0]} labels for {images.shape[0]} images")
    nested = bool(class_names) and not isinstance(class_names[0], str)
    names = [list(c) for c in class_names] if nested else [list(class_names)]  # type: ignore[arg-type]
    n_cols = 1 if labels.ndim == 1 else labels.shape[1]
    if len(names) != n_cols:
        raise ShardError(f"{len(names)} class-name lists for {n_cols} label columns")
    for name, array in (("images.npy", images), ("labels.npy", labels)):
        atomic_write(root / name, lambda tmp, a=array: _save_npy(tmp, a))
    doc: dict = {"names": names if nested or n_cols > 1 else names[0]}
    if columns:
        doc["columns"] = list(columns)
    atomic_write(root / "classes.json", json.dumps(doc, indent=1) + "\n")
    return root


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # np.save appends ".npy" to a path that lacks it; a file handle it takes as is
        np.save(fh, array, allow_pickle=False)


def split_indices(n: int, holdout_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train / held-out split of range(n); both sorted (sequential memmap reads)."""
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    perm = np.random.default_rng(seed + 7919).permutation(n)
    n_hold = int(round(n * holdout_fraction))
    if holdout_fraction > 0 and n >= 2:
        n_hold = min(max(n_hold, 1), n - 1)
    return np.sort(perm[n_hold:]), np.sort(perm[:n_hold])


# ---------------------------------------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------------------------------------

def to_float(batch_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1] (the range the GAN and VAE work in)."""
    return batch_u8.float().div_(127.5).sub_(1.0)


def to_uint8(batch: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded and clamped (the quantisation every metric sees)."""
    return batch.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def quantise(x: torch.Tensor) -> torch.Tensor:
    """Snap float [-1, 1] values to the nearest of the 256 uint8 levels."""
    return x.add(1.0).mul_(127.5).round_().clamp_(0, 255).div_(127.5).sub_(1.0)


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a float N x C x H x W batch: antialiased bilinear down, bilinear up."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    down = size < x.shape[-1]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=down)


# ---------------------------------------------------------------------------------------------------------
# Batch loader
# ---------------------------------------------------------------------------------------------------------

class BatchLoader:
    """Infinite, seeded, resumable batches of (float images in [-1, 1] on device, int64 labels N x K on device).

    `batches(start_step)` yields the batch for every step from start_step on; batch s is a pure function of
    (seed, s), so resuming at step s reproduces an unbroken run. Batches never straddle an epoch boundary
    (the last partial batch of each epoch is dropped, as `drop_last=True` does).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, *, indices: np.ndarray | None = None,
                 resolution: int | None = None, device: torch.device | str = "cpu", seed: int = 0,
                 prefetch: int = 2, channels_last: bool = False):
        self.images = images
        self.labels = labels if labels.ndim == 2 else labels[:, None]
        self.indices = np.arange(images.shape[0]) if indices is None else np.asarray(indices)
        if len(self.indices) == 0:
            raise ShardError("no training images (empty shard or split)")
        self.batch_size = min(int(batch_size), len(self.indices))
        self.resolution = resolution or int(images.shape[-1])
        self.device = torch.device(device)
        self.seed = seed
        self.prefetch = prefetch
        self.channels_last = channels_last
        self.per_epoch = len(self.indices) // self.batch_size

    def _batch_indices(self, step: int) -> np.ndarray:
        epoch, pos = divmod(step, self.per_epoch)
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.indices))
        chosen = self.indices[perm[pos * self.batch_size:(pos + 1) * self.batch_size]]
        return chosen

    def _host_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self._batch_indices(step)
        order = np.argsort(idx)  # read the memmap in file order, then restore the shuffled order
        imgs = np.empty((len(idx),) + tuple(self.images.shape[1:]), dtype=np.uint8)
        imgs[order] = self.images[idx[order]]
        x = torch.from_numpy(imgs)
        y = torch.from_numpy(np.ascontiguousarray(self.labels[idx]))
        if self.device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x, y

    def _finish(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_float(x.to(self.device, non_blocking=True))
        if x.shape[-1] != self.resolution:
            # back onto the 256-level grid so discrete likelihoods (VAE bits/dim) stay valid after resizing
            x = quantise(resize_batch(x, self.resolution))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._finish(*self._host_batch(step))

    def batches(self, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.prefetch <= 0:
            step = start_step
            while True:
                yield self.batch(step)
                step += 1
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def work() -> None:
            step = start_step
            while not stop.is_set():
                item = self._host_batch(step)
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                step += 1

        thread = threading.Thread(target=work, name="shard-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                yield self._finish(*q.get())
        finally:
            stop.set()
            thread.join(timeout=2)


def measure_loader(loader: BatchLoader, steps: int = 50) -> float:
    """Images/s of the loader alone (host read + transfer + float conversion + resize)."""
    import time

    it = loader.batches(0)
    next(it)
    t0 = time.perf_counter()
    n = 0
    for _ in range(steps):
        x, _ = next(it)
        n += x.shape[0]
    if loader.device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    it.close()
    return n / dt
