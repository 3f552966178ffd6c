"""A small CNN label classifier trained on real images, used to score conditional samples ("GAN-test",
Shmelkov et al. 2018): the accuracy with which it recovers the requested label from a generated image.

One network with one linear head per label column. Inputs are resized to at most 32 px, which keeps it cheap
on CPU and is enough to tell classes apart for figures-at-a-glance and digits alike. Its accuracy on held-out
real images is reported next to the score on generated images: it is the ceiling that score should be read
against.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.shard import resize_batch, to_float

log = logging.getLogger(__name__)


class LabelClassifier(nn.Module):
    def __init__(self, channels: int, num_classes: list[int], size: int = 32, width: int = 32):
        super().__init__()
        self.size, self.width, self.channels, self.num_classes = size, width, channels, list(num_classes)
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
        )
        self.heads = nn.ModuleList(nn.Linear(4 * w, n) for n in num_classes)

    def prepare(self, images_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = to_float(torch.as_tensor(np.asarray(images_u8)))
        return resize_batch(x, min(self.size, x.shape[-1]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.features(x)
        return [head(h) for head in self.heads]

    @torch.no_grad()
    def predict(self, images_u8: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """N x K predicted labels."""
        self.eval()
        device = next(self.parameters()).device
        preds = []
        for i in range(0, len(images_u8), batch_size):
            x = self.prepare(images_u8[i:i + batch_size]).to(device)
            preds.append(torch.stack([o.argmax(1) for o in self(x)], 1).cpu())
        return torch.cat(preds).numpy() if preds else np.zeros((0, len(self.heads)), np.int64)


def _translate(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random integer shifts with edge padding: a light augmentation so the classifier does not overfit pixels."""
    if max_shift <= 0:
        return x
    pad = F.pad(x, [max_shift] * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2,), generator=gen).tolist()
    return pad[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]


def train_classifier(images: np.ndarray, labels: np.ndarray, num_classes: list[int], *, seed: int = 0,
                     **kwargs: Any) -> LabelClassifier:
    """Train on uint8 N x C x H x W images with N x K labels; deterministic for a seed, and the caller's torch
    RNG stream is left untouched (init and dropout draw from a forked, seeded stream)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _train_classifier(images, labels, num_classes, seed=seed, **kwargs)


def _train_classifier(images: np.ndarray, labels: np.ndarray, num_classes: list[int], *, epochs: int = 15,
                     batch_size: int = 64, lr: float = 3e-3, seed: int = 0, device: str | torch.device = "cpu",
                     max_images: int = 20_000, size: int = 32, width: int = 32) -> LabelClassifier:
    labels = labels[:, None] if labels.ndim == 1 else labels
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(images))[:max_images])
    model = LabelClassifier(images.shape[1], num_classes, size=size, width=width).to(device)
    x_all = model.prepare(np.ascontiguousarray(images[idx]))
    y_all = torch.from_numpy(labels[idx])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = max(1, epochs * int(np.ceil(len(idx) / batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    shift = max(1, x_all.shape[-1] // 16)
    for _ in range(epochs):
        perm = torch.randperm(len(idx), generator=gen)
        for i in range(0, len(idx), batch_size):
            b = perm[i:i + batch_size]
            if len(b) < 2:
                continue
            x = _translate(x_all[b], shift, gen).to(device)
            y = y_all[b].to(device)
            loss = sum(F.cross_entropy(o, y[:, k]) for k, o in enumerate(model(x)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def accuracy(model: LabelClassifier, images: np.ndarray, labels: np.ndarray) -> list[float]:
    """Per-column accuracy of the classifier on the given images."""
    labels = labels[:, None] if labels.ndim == 1 else labels
    if len(images) == 0:
        return [float("nan")] * labels.shape[1]
    pred = model.predict(images)
    return [float((pred[:, k] == labels[:, k]).mean()) for k in range(labels.shape[1])]


def fingerprint(images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> str:
    """Cheap identity of a training set for caching: shapes, indices, labels and a strided sample of pixels."""
    h = hashlib.sha1()
    h.update(str(images.shape).encode())
    h.update(np.ascontiguousarray(indices).tobytes())
    h.update(np.ascontiguousarray(labels[indices]).tobytes())
    step = max(1, len(indices) // 64)
    h.update(np.ascontiguousarray(images[np.asarray(indices)[::step]]).tobytes())
    return h.hexdigest()[:16]


def cached_classifier(cache_dir: Path | None, images: np.ndarray, labels: np.ndarray, indices: np.ndarray,
                      num_classes: list[int], seed: int = 0, **kwargs: Any) -> LabelClassifier:
    """Train the classifier on images[indices], or load it from cache_dir when the same data trained it before."""
    labels = labels[:, None] if labels.ndim == 1 else labels
    key = fingerprint(images, labels, indices)
    path = Path(cache_dir) / f"eval_classifier_{key}.pt" if cache_dir else None
    if path is not None and path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=False)
        model = LabelClassifier(saved["channels"], saved["num_classes"], size=saved["size"], width=saved["width"])
        model.load_state_dict(saved["state"])
        return model.eval()
    max_images = kwargs.pop("max_images", 20_000)
    if len(indices) > max_images:  # subsample before reading: a shard can be larger than memory
        indices = np.sort(np.random.default_rng(seed).choice(np.asarray(indices), max_images, replace=False))
    model = train_classifier(np.ascontiguousarray(images[np.sort(indices)]), labels[np.sort(indices)], num_classes,
                             seed=seed, max_images=max_images, **kwargs)
    if path is not None:
        from models.training import atomic_torch_save

        atomic_torch_save({"channels": model.channels, "num_classes": model.num_classes, "size": model.size,
                           "width": model.width, "state": model.state_dict()}, path)
    return model
