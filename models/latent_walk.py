"""Latent walks of a conditional generator: from label A to label B, and between random latents of one label.

The grid has `steps` columns. Its first `rows` rows keep one latent per row and blend the label's conditioning
from A (left) to B (right): the embeddings the generator sees are interpolated linearly, so the middle columns
show what the model puts between two research areas or figure kinds. The next `rows` rows keep label A and move
the latent from one random draw to another along the great circle (slerp: Gaussian latents live near a sphere,
where a straight line would pass through unlikely, low-norm points).

A model plugs in two functions: `condition(y)`, the tensors that carry the label (a GAN's embedding; a VAE's
decoder embedding and prior), and `render(noise, condition)`, images in [-1, 1] from standard-normal noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from models.shard import to_uint8

Condition = tuple[torch.Tensor, ...]


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between row vectors a and b (linear when they are nearly parallel)."""
    na, nb = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((na * nb).sum(1, keepdim=True).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    linear = (1 - t) * a + t * b
    curved = torch.sin((1 - t) * omega) / so.clamp(min=1e-6) * a + torch.sin(t * omega) / so.clamp(min=1e-6) * b
    return torch.where(so.abs() < 1e-4, linear, curved)


@torch.no_grad()
def walk(condition: Callable[[torch.Tensor], Condition], render: Callable[[torch.Tensor, Condition], torch.Tensor],
         z_dim: int, label_a: list[int], label_b: list[int], *, steps: int = 8, rows: int = 4, seed: int = 0,
         device: torch.device | str = "cpu") -> np.ndarray:
    """uint8 (2 * rows * steps) x C x H x W, row-major: `rows` label walks A -> B, then `rows` latent walks in A."""
    if steps < 2 or rows < 1:
        raise ValueError("a walk needs steps >= 2 and rows >= 1")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ya = torch.tensor([label_a], dtype=torch.long, device=device)
    yb = torch.tensor([label_b], dtype=torch.long, device=device)
    ca, cb = condition(ya), condition(yb)
    ts = np.linspace(0.0, 1.0, steps)
    out = []
    noise = torch.randn(rows, z_dim, generator=gen).to(device)
    for t in ts:      # label walk: one column per t, one row per latent
        blend = tuple(((1 - t) * a + t * b).expand(rows, *a.shape[1:]) for a, b in zip(ca, cb, strict=True))
        out.append(render(noise, blend))
    label_rows = torch.stack(out, 1).flatten(0, 1)            # rows x steps, row-major
    z0, z1 = (torch.randn(rows, z_dim, generator=gen).to(device) for _ in range(2))
    in_a = tuple(a.expand(rows, *a.shape[1:]) for a in ca)
    latent_rows = torch.stack([render(slerp(z0, z1, float(t)), in_a) for t in ts], 1).flatten(0, 1)
    return to_uint8(torch.cat([label_rows, latent_rows]).float().clamp(-1, 1)).cpu().numpy()


def default_pair(labels: np.ndarray) -> tuple[list[int], list[int]] | None:
    """The two most frequent classes of the first label column (other columns from a row of each), or None
    when there is only one class."""
    labels = labels[:, None] if labels.ndim == 1 else labels
    values, counts = np.unique(labels[:, 0], return_counts=True)
    if len(values) < 2:
        return None
    a, b = values[np.argsort(-counts, kind="stable")[:2]]
    row_a, row_b = labels[labels[:, 0] == a][0], labels[labels[:, 0] == b][0]
    return [int(v) for v in row_a], [int(v) for v in row_b]
