"""Image helpers without torchvision: sample grids as PNG, uint8 conversions, resizing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from forge_common import atomic_write


def make_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile uint8 N x C x H x W images into one H' x W' x C array (C = 1 or 3), row-major, `nrow` per row."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected N x C x H x W, got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("no images to tile")
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    grid = np.full((padding + ncol * (h + padding), padding + nrow * (w + padding), c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        grid[y:y + h, x:x + w] = images[i].transpose(1, 2, 0)
    return grid


def save_grid(images: np.ndarray, path: str | Path, nrow: int | None = None, padding: int = 2,
              min_cell: int = 0) -> Path:
    """Write a PNG grid of uint8 N x C x H x W images; cells smaller than `min_cell` px are upscaled (nearest)."""
    images = np.asarray(images)
    if min_cell and images.shape[-1] < min_cell:
        factor = int(math.ceil(min_cell / images.shape[-1]))
        images = images.repeat(factor, axis=2).repeat(factor, axis=3)
    grid = make_grid(images, nrow=nrow, padding=padding)
    mode = "L" if grid.shape[2] == 1 else "RGB"
    img = Image.fromarray(grid[:, :, 0] if mode == "L" else grid, mode=mode)
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def resize_uint8(images: np.ndarray, size: int, resample: int = Image.BILINEAR) -> np.ndarray:
    """Resize uint8 N x C x H x W images to size x size with Pillow (antialiased when shrinking)."""
    images = np.asarray(images)
    n, c, h, w = images.shape
    if h == size and w == size:
        return images.copy()
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for i in range(n):
        for ch in range(c):
            out[i, ch] = np.asarray(Image.fromarray(images[i, ch]).resize((size, size), resample=resample))
    return out


def gray_to_rgb(images: np.ndarray) -> np.ndarray:
    """N x 1 x H x W -> N x 3 x H x W (repeat); 3-channel input is returned unchanged."""
    return np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images
