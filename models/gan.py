"""Class-conditional GAN: SNGAN/BigGAN-style residual generator with conditional BatchNorm, spectral-norm
residual discriminator with a projection head, hinge loss, TTUR Adam, EMA generator, DiffAugment.

One definition covers 32, 64, 128 and 256 px: the number of residual blocks is log2(resolution) - 2 and the
channel widths follow a fixed schedule from `g_ch` / `d_ch`. Several label columns combine: every column has
its own embedding; the generator's conditioning vector is their sum (default) or concatenation, and the
discriminator adds one projection term per column (D(x, y) = psi(phi(x)) + sum_k <e_k(y_k), phi(x)>).

Images are float in [-1, 1], N x C x H x W. `train` knows nothing of arXiv: images (uint8 array, memory-mapped
is fine) and integer labels in, checkpoint + metrics + loss curve + sample grid out.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from models import latent_walk, trainer, training
from models.images import save_grid
from models.shard import BatchLoader, to_uint8

log = logging.getLogger(__name__)

SUPPORTED_RESOLUTIONS = (32, 64, 128, 256)
# Bumped when the block structure changes, so an old checkpoint is refused with a clear message instead of a
# state-dict mismatch. 2: resampling convolutions (4x4 stride 2) instead of fixed resampling + 3x3 at full size.
BLOCKS_VERSION = 2


@dataclass
class GANConfig:
    resolution: int = 32
    channels: int = 1                                   # set from the data
    num_classes: list[int] = field(default_factory=list)  # one entry per label column; set from the data
    class_names: list[list[str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    # architecture
    z_dim: int = 64
    g_ch: int = 32
    d_ch: int = 32
    embed_dim: int = 64
    label_combine: str = "sum"          # "sum" | "concat" of the per-column embeddings (generator side)
    attention_res: int = 0              # resolution of a SAGAN self-attention block in G and D; 0 = none
    g_spectral_norm: bool = True        # BigGAN puts SN in G too
    # Against within-class mode collapse (bench/digits.py measures each): the minibatch standard deviation of
    # D's 4x4 features over groups of this many images as one extra channel (StyleGAN; 0 = off), so D can see
    # that a batch of fakes lacks the variety of real images; and the mode-seeking term (Mao et al. 2019,
    # MSGAN) that rewards G for mapping two z of the same label to different images (its weight; 0 = off).
    mbstd_group: int = 0
    mode_seeking: float = 0.0
    # "real": each pair's reward stops at the variety of real images of one class in the batch, so G is not paid
    # to push two z past it (to an inverted or blank image); "none": MSGAN's unbounded 1 / ratio
    mode_seeking_cap: str = "real"
    # optimisation (TTUR: D learns faster than G; betas as in SAGAN/BigGAN)
    batch_size: int = 64
    steps: int | None = 2000
    minutes: float | None = None
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.999
    n_dis: int = 1
    ema_decay: float = 0.999
    ema_start: int = 200                # EMA copies G exactly until this step
    diffaug: str = "translation,cutout"  # no flips: mirrored plots and text are wrong
    # bookkeeping
    seed: int = 0
    preset: str | None = None           # the preset this config came from (models.config.build), for the record
    device: str = "auto"
    cpu_threads: int = 0                # 0 = auto (1 thread when the machine is already busy); see training
    channels_last: bool = True          # CUDA only
    cpu_bf16: bool = True               # bf16 autocast on CPUs with native bf16 kernels (see training.autocast)
    checkpoint_every: int = 500
    history_every: int = 10
    log_interval_s: float = 15.0
    standing_stats_batches: int = 16    # recompute EMA-G BatchNorm statistics at the end (BigGAN "standing stats")

    def validate(self) -> None:
        if self.resolution not in SUPPORTED_RESOLUTIONS:
            raise ValueError(f"resolution must be one of {SUPPORTED_RESOLUTIONS}, got {self.resolution}")
        if self.label_combine not in ("sum", "concat"):
            raise ValueError(f"label_combine must be 'sum' or 'concat', got {self.label_combine!r}")
        if self.attention_res and self.attention_res not in (8, 16, 32, 64, 128):
            raise ValueError(f"attention_res must be 0 or one of 8..128, got {self.attention_res}")
        if not self.num_classes:
            raise ValueError("num_classes is empty: give at least one label column")
        if self.mode_seeking_cap not in ("real", "none"):
            raise ValueError(f"mode_seeking_cap must be 'real' or 'none', got {self.mode_seeking_cap!r}")
        for token in filter(None, self.diffaug.split(",")):
            if token not in _AUGMENTS:
                raise ValueError(f"unknown DiffAugment policy {token!r}; known: {sorted(_AUGMENTS)}")

    def arch(self) -> dict[str, Any]:
        keys = ("resolution", "channels", "num_classes", "z_dim", "g_ch", "d_ch", "embed_dim", "label_combine",
                "attention_res", "g_spectral_norm", "mbstd_group")
        return {"blocks": BLOCKS_VERSION, **{k: getattr(self, k) for k in keys}}


PRESETS: dict[str, dict[str, Any]] = {
    # smoke tests only: seconds per run, produces noise
    "tiny": dict(resolution=32, g_ch=8, d_ch=8, z_dim=16, embed_dim=16, batch_size=16, steps=20,
                 checkpoint_every=10, standing_stats_batches=2),
    # a few minutes on a 2-core CPU at 32 px: one to two thousand steps. Side by side on the demo's
    # category shards (~130 figures, 4 min each), batch 32 with equal rates 2e-4 (the DCGAN recipe's) gave
    # recognisable bar charts, heatmaps and box diagrams; TTUR's faster D (4e-4) collapsed each class to one
    # faint image, and batch 64 got half the steps. An EMA decay of 0.999 (time constant 1000 steps) would
    # still show the generator of step ~200, so average over ~100 steps.
    # The mode-seeking term (weight 0.5): on scikit-learn digits (bench/digits.py, 6 CPU minutes) without it
    # every sample of a class was the same digit (within-class diversity 0.65 of real), with it 1.10.
    "cpu-small": dict(resolution=32, g_ch=32, d_ch=32, z_dim=64, embed_dim=64, batch_size=32, steps=1500,
                      minutes=5.0, lr_g=2e-4, lr_d=2e-4, ema_decay=0.99, ema_start=100, mode_seeking=0.5),
    # CPU demo at 64 px
    "cpu-64": dict(resolution=64, g_ch=32, d_ch=32, z_dim=64, embed_dim=64, batch_size=32, steps=2000,
                   minutes=5.0, lr_g=2e-4, lr_d=2e-4, ema_decay=0.99, ema_start=100, mode_seeking=0.5),
    # one GPU, 64 px figures: SAGAN-like widths with attention at 32 px
    "gpu-64": dict(resolution=64, g_ch=64, d_ch=64, z_dim=128, embed_dim=128, batch_size=128, steps=50_000,
                   attention_res=32, checkpoint_every=2000),
    # one GPU, 128 px (BigGAN-128-like widths, halved)
    "gpu-128": dict(resolution=128, g_ch=64, d_ch=64, z_dim=128, embed_dim=128, batch_size=128, steps=100_000,
                    attention_res=64, checkpoint_every=2000),
    "gpu-256": dict(resolution=256, g_ch=48, d_ch=48, z_dim=128, embed_dim=128, batch_size=64, steps=150_000,
                    attention_res=64, checkpoint_every=2000),
}


# ---------------------------------------------------------------------------------------------------------
# DiffAugment (Zhao et al. 2020), translation and cutout only; the same random transform family for real and
# fake, differentiable so G gets gradients through it.
# ---------------------------------------------------------------------------------------------------------

def _rand_translation(x: torch.Tensor, ratio: float = 0.125, pad: str = "constant") -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, size=[n, 1, 1], device=x.device)
    ty = torch.randint(-sw, sw + 1, size=[n, 1, 1], device=x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    x_pad = F.pad(x, [1, 1, 1, 1], mode=pad)
    return x_pad.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2)


def _rand_shift(x: torch.Tensor) -> torch.Tensor:
    """Translation that fills the uncovered strip with the image's own edge pixels instead of mid-grey, so what
    the generator draws at its borders stays in view of D (zero padding hides it for part of the batches)."""
    return _rand_translation(x, pad="replicate")


def _rand_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), size=[n, 1, 1], device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), size=[n, 1, 1], device=x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


_AUGMENTS = {"translation": _rand_translation, "shift": _rand_shift, "cutout": _rand_cutout}


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    for token in filter(None, policy.split(",")):
        x = _AUGMENTS[token](x)
    return x


# ---------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------

def _sn(module: nn.Module, use: bool = True) -> nn.Module:
    return spectral_norm(module) if use else module


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class LabelEmbedding(nn.Module):
    """One embedding per label column, combined by sum or concatenation into one conditioning vector."""

    def __init__(self, num_classes: list[int], dim: int, combine: str = "sum"):
        super().__init__()
        self.embeds = nn.ModuleList(nn.Embedding(n, dim) for n in num_classes)
        self.combine = combine
        self.out_dim = dim * (len(num_classes) if combine == "concat" else 1)
        for e in self.embeds:
            nn.init.normal_(e.weight, std=1.0)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        parts = [e(y[:, k]) for k, e in enumerate(self.embeds)]
        return torch.cat(parts, dim=1) if self.combine == "concat" else torch.stack(parts, 0).sum(0)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine; gain (1 + .) and bias are linear functions of the label vector."""

    def __init__(self, channels: int, cond_dim: int, sn: bool):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = _sn(nn.Linear(cond_dim, channels, bias=False), sn)
        self.bias = _sn(nn.Linear(cond_dim, channels, bias=False), sn)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        g = 1.0 + self.gain(c)[:, :, None, None]
        b = self.bias(c)[:, :, None, None]
        return self.bn(x) * g + b


class SelfAttention(nn.Module):
    """SAGAN self-attention with 2x2 max-pooled keys/values; gamma starts at 0 so it fades in."""

    def __init__(self, ch: int, sn: bool = True):
        super().__init__()
        k, v = max(ch // 8, 1), max(ch // 2, 1)
        self.theta = _sn(nn.Conv2d(ch, k, 1, bias=False), sn)
        self.phi = _sn(nn.Conv2d(ch, k, 1, bias=False), sn)
        self.g = _sn(nn.Conv2d(ch, v, 1, bias=False), sn)
        self.o = _sn(nn.Conv2d(v, ch, 1, bias=False), sn)
        self.v = v
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).flatten(2)                                   # n, c/8, hw
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)                      # n, c/8, hw/4
        g = F.max_pool2d(self.g(x), 2).flatten(2)                          # n, v = c/2, hw/4
        attn = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)  # n, hw, hw/4
        out = torch.bmm(g, attn.transpose(1, 2)).view(n, self.v, h, w)
        return x + self.gamma * self.o(out)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling via expand + reshape: same result as F.interpolate(mode="nearest"),
    2-3x faster on CPU (measured on this machine), and fine under channels_last on GPU."""
    n, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


class GBlock(nn.Module):
    """Residual up-block. The 3x3 convolution runs at the input resolution and the upsampling is a learned 4x4
    stride-2 transposed convolution, so no 3x3 convolution runs at the output resolution. That costs 4x fewer
    FLOPs per parameter than BigGAN's upsample-then-two-3x3 block (the same budget as a DCGAN layer), measured
    in bench/gan_throughput.py. The kernel size is a multiple of the stride, so the overlap is even and the
    transposed convolution does not add the uneven checkerboard of 3x3 stride-2 kernels."""

    def __init__(self, cin: int, cout: int, cond_dim: int, sn: bool):
        super().__init__()
        self.bn1 = ConditionalBatchNorm(cin, cond_dim, sn)
        self.conv1 = _sn(nn.Conv2d(cin, cin, 3, padding=1), sn)
        self.bn2 = ConditionalBatchNorm(cin, cond_dim, sn)
        self.up = _sn(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), sn)
        self.shortcut = _sn(nn.Conv2d(cin, cout, 1), sn)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.bn1(x, c)))
        h = self.up(F.relu(self.bn2(h, c)))
        return h + upsample2x(self.shortcut(x))  # 1x1 conv commutes with nearest upsampling: 4x cheaper first


class DBlock(nn.Module):
    """Residual down-block, the mirror of GBlock: a 4x4 stride-2 convolution, then a 3x3 convolution at the
    output resolution (no 3x3 convolution at the input resolution). Without downsampling (the last 4x4
    block) both are 3x3."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool):
        super().__init__()
        self.first, self.down = first, down
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1) if down
                                   else nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(cout, cout, 3, padding=1))
        self.shortcut = spectral_norm(nn.Conv2d(cin, cout, 1)) if (cin != cout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        s = F.avg_pool2d(x, 2) if self.down else x   # average pooling and a 1x1 conv commute: pool first
        if self.shortcut is not None:
            s = self.shortcut(s)
        return h + s


def minibatch_std(h: torch.Tensor, group: int) -> torch.Tensor:
    """One channel: the standard deviation of each feature over a group of images, averaged over features and
    positions, broadcast to the group. Groups are consecutive images (the largest size <= `group` dividing the
    batch), so D's single pass over [real; fake] never mixes real and fake images in a group."""
    n, c, hh, ww = h.shape
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    std = h.float().view(n // g, g, c, hh, ww).var(1, unbiased=False).add(1e-8).sqrt().mean((1, 2, 3))
    return std.to(h.dtype).repeat_interleave(g)[:, None, None, None].expand(n, 1, hh, ww)


def _n_blocks(resolution: int) -> int:
    return int(math.log2(resolution)) - 2


class Generator(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        n = _n_blocks(cfg.resolution)
        chs = [cfg.g_ch * min(2 ** (n - j), 16) for j in range(n + 1)]
        sn = cfg.g_spectral_norm
        self.z_dim, self.bottom = cfg.z_dim, 4
        self.embed = LabelEmbedding(cfg.num_classes, cfg.embed_dim, cfg.label_combine)
        cond_dim = self.embed.out_dim + cfg.z_dim   # BigGAN: the CBN gains see z as well as the label
        self.cond_dim = cond_dim
        self.linear = _sn(nn.Linear(cfg.z_dim + self.embed.out_dim, chs[0] * 16), sn)
        self.blocks = nn.ModuleList()
        self.attn = nn.ModuleDict()
        res = 4
        for i in range(n):
            self.blocks.append(GBlock(chs[i], chs[i + 1], cond_dim, sn))
            res *= 2
            if cfg.attention_res == res:
                self.attn[str(i)] = SelfAttention(chs[i + 1], sn)
        self.out_bn = nn.BatchNorm2d(chs[-1])
        self.out_conv = _sn(nn.Conv2d(chs[-1], cfg.channels, 3, padding=1), sn)
        self.chs = chs
        _init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.from_embedding(z, self.embed(y))

    def from_embedding(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Images for latents z and label embeddings e (rows of `self.embed(y)`, or blends of them: the
        latent walks between labels go through here)."""
        c = torch.cat([z, e], dim=1)
        h = self.linear(c).view(z.shape[0], self.chs[0], self.bottom, self.bottom)
        for i, block in enumerate(self.blocks):
            h = block(h, c)
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        h = F.relu(self.out_bn(h))
        if h.device.type != "cpu":
            return torch.tanh(self.out_conv(h))
        # oneDNN's NCHW kernels for a convolution with 1-3 output channels run at a few GFLOP/s; in NHWC the same
        # layer is 2.4x faster (forward + backward, measured) and it was 15 % of a 64 px step on this CPU
        out = self.out_conv(h.contiguous(memory_format=torch.channels_last))
        return torch.tanh(out).contiguous()


class Discriminator(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        n = _n_blocks(cfg.resolution)
        chs = [cfg.d_ch * min(2 ** j, 8) for j in range(n)]
        self.blocks = nn.ModuleList()
        self.attn = nn.ModuleDict()
        cin, res = cfg.channels, cfg.resolution
        for i, cout in enumerate(chs):
            self.blocks.append(DBlock(cin, cout, down=True, first=(i == 0)))
            cin, res = cout, res // 2
            if cfg.attention_res == res:
                self.attn[str(i)] = SelfAttention(cout)
        self.mbstd_group = cfg.mbstd_group
        extra = 1 if cfg.mbstd_group > 1 else 0
        self.blocks.append(DBlock(cin + extra, cin, down=False, first=False))   # one more block at 4x4, as SNGAN
        self.linear = spectral_norm(nn.Linear(cin, 1))
        self.proj = nn.ModuleList(spectral_norm(nn.Embedding(k, cin)) for k in cfg.num_classes)
        self.feat_dim = cin
        _init(self)
        for e in self.proj:
            nn.init.xavier_uniform_(e.parametrizations.weight.original)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = x
        for i, block in enumerate(self.blocks):
            if i == len(self.blocks) - 1 and self.mbstd_group > 1:
                h = torch.cat([h, minibatch_std(h, self.mbstd_group)], 1)
            h = block(h)
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        h = F.relu(h).sum(dim=(2, 3))
        out = self.linear(h).squeeze(1)
        for k, e in enumerate(self.proj):
            out = out + (e(y[:, k]) * h).sum(dim=1)
        return out


# ---------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------

class GANTrainer:
    """G, D, EMA-G and both optimisers; `d_step`/`g_step` are one update each (hinge loss)."""

    def __init__(self, cfg: GANConfig, device: torch.device):
        cfg.validate()
        self.cfg, self.device = cfg, device
        self.G = Generator(cfg).to(device)
        self.D = Discriminator(cfg).to(device)
        if device.type == "cuda" and cfg.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.ema = training.EMA(self.G, cfg.ema_decay)
        self.opt_g = training.adam(self.G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.opt_d = training.adam(self.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))

    def z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.z_dim, device=self.device)

    def fake(self, y: torch.Tensor, grad: bool, z: torch.Tensor | None = None) -> torch.Tensor:
        z = self.z(y.shape[0]) if z is None else z
        with torch.set_grad_enabled(grad), training.autocast(self.device, cpu=self.cfg.cpu_bf16):
            return self.G(z, y)

    def train_step(self, batches: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """`n_dis` D updates, then one G update. The last D update's fakes are generated with gradients and
        reused by the G update (the pytorch/examples DCGAN recipe): one generator forward fewer per step.
        With the mode-seeking term the fakes' second half repeats the first half's labels with other z."""
        for i in range(self.cfg.n_dis):
            real, y = next(batches)
            last = i == self.cfg.n_dis - 1
            y_fake, z = y, None
            if last and self.cfg.mode_seeking > 0 and y.shape[0] >= 2:
                half = y.shape[0] // 2
                y_fake = torch.cat([y[:half], y[:half], y[2 * half:]])
                z = self.z(y.shape[0])
            fake = self.fake(y_fake, grad=last, z=z)
            d_stats = self.d_step(real, y_fake, fake.detach(), y_real=y)
        ms = self.mode_seeking_term(fake, z, real, y) if z is not None else None
        return {**d_stats, **self.g_step(y_fake, fake, extra=ms)}

    def mode_seeking_term(self, fake: torch.Tensor, z: torch.Tensor, real: torch.Tensor,
                          y_real: torch.Tensor) -> torch.Tensor:
        """MSGAN's ratio mean|G(z1) - G(z2)| / mean|z1 - z2| for pairs of the same label (first half vs second
        half of the batch); the G loss adds weight / ratio, so collapsing two z onto one image costs. With
        `mode_seeking_cap: real` each pair's image distance counts only up to the mean distance between real
        images of one class in this batch: beyond the real variety there is nothing to gain."""
        half = fake.shape[0] // 2
        dist = (fake[:half] - fake[half:2 * half]).abs().float().flatten(1).mean(1)
        dz = (z[:half] - z[half:2 * half]).abs().mean()
        if self.cfg.mode_seeking_cap == "real":
            dist = torch.minimum(dist, real_pair_distance(real, y_real))
            return self.cfg.mode_seeking * (dz / (dist + 1e-5)).mean()
        return self.cfg.mode_seeking / (dist.mean() / dz + 1e-5)

    def d_step(self, real: torch.Tensor, y: torch.Tensor, fake: torch.Tensor | None = None,
               y_real: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One D update on real images (labels `y_real`, default `y`) and fakes of labels `y`."""
        y_real = y if y_real is None else y_real
        if fake is None:
            fake = self.fake(y, grad=False)
        with training.autocast(self.device, cpu=self.cfg.cpu_bf16):
            # one D pass over [real; fake] (as BigGAN does): D has no BatchNorm, so this equals two passes, with
            # half the spectral-norm power iterations and small ops, and larger convolutions
            both = diff_augment(torch.cat([real, fake.to(real.dtype)]), self.cfg.diffaug)
            d_out = self.D(both, torch.cat([y_real, y])).float()
            d_real, d_fake = d_out[:real.shape[0]], d_out[real.shape[0]:]
            loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"d_loss": loss.detach(), "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}

    def g_step(self, y: torch.Tensor, fake: torch.Tensor | None = None,
               extra: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One G update on `fake` (generated with gradients for labels y), or on fresh fakes; `extra` is added
        to the loss (the mode-seeking term)."""
        if fake is None:
            fake = self.fake(y, grad=True)
        self.D.requires_grad_(False)   # the G loss needs D's input gradients only, not its weight gradients
        try:
            with training.autocast(self.device, cpu=self.cfg.cpu_bf16):
                loss = -self.D(diff_augment(fake, self.cfg.diffaug), y).float().mean()
            total = loss if extra is None else loss + extra
            self.opt_g.zero_grad(set_to_none=True)
            total.backward()
            self.opt_g.step()
        finally:
            self.D.requires_grad_(True)
        return {"g_loss": loss.detach()}

    def ema_update(self, step: int) -> None:
        self.ema.update(self.G, decay=0.0 if step < self.cfg.ema_start else None)

    def state_dict(self) -> dict[str, Any]:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.ema.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])


@torch.no_grad()
def real_pair_distance(real: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean per-pixel |a - b| over pairs of real images with the same labels in the batch (all pairs when no
    two share a label): the variety a class really has, in the units of the mode-seeking distance."""
    flat = real.float().flatten(1)
    d = torch.cdist(flat, flat, p=1) / flat.shape[1]
    pairs = torch.triu(torch.ones_like(d, dtype=torch.bool), diagonal=1)
    same = pairs & (y.reshape(len(y), -1)[:, None, :] == y.reshape(len(y), -1)[None, :, :]).all(-1)
    return d[same if same.any() else pairs].mean()


@torch.no_grad()
def standing_stats(G: Generator, labels: np.ndarray, batches: int, batch_size: int, seed: int = 1234) -> None:
    """Re-estimate G's BatchNorm running statistics as a plain average over fresh batches (BigGAN's
    "standing stats"): the EMA weights never saw the running stats they inherit from the live G. Only the BN
    layers run in train mode and a private RNG is used, so this disturbs neither SN vectors nor the run's RNG."""
    if batches <= 0:
        return
    device = next(G.parameters()).device
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    G.eval()
    for m in bns:
        m.train()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    for _ in range(batches):
        idx = torch.randint(0, len(labels), (batch_size,), generator=gen).numpy()
        y = torch.from_numpy(labels[idx]).to(device)
        z = torch.randn(batch_size, G.z_dim, generator=gen).to(device)
        G(z, y)
    for m, (mom, tr) in zip(bns, saved, strict=True):
        m.momentum, m.training = mom, tr
    G.eval()


def grid_labels(labels: np.ndarray, per_class: int = 8, max_classes: int = 16) -> np.ndarray:
    """Label rows for a sample grid: one row per class of the first column, other columns taken from real rows."""
    rows = []
    for c in np.unique(labels[:, 0])[:max_classes]:
        match = labels[labels[:, 0] == c]
        rows.append(match[np.arange(per_class) % len(match)])
    return np.concatenate(rows, 0)


def _config_from(config: GANConfig | dict | None, **overrides: Any) -> GANConfig:
    if config is None:
        cfg = GANConfig()
    elif isinstance(config, dict):
        cfg = GANConfig(**config)
    else:
        cfg = dataclasses.replace(config)
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg


# What a checkpoint written before a field existed was trained with (its config and arch lack the key).
LEGACY_DEFAULTS = {"mbstd_group": 0, "mode_seeking": 0.0, "mode_seeking_cap": "none"}


def config_from_checkpoint(saved: dict[str, Any]) -> GANConfig:
    """The GANConfig a checkpoint was trained with; keys it predates take the values of that older model."""
    known = {f.name for f in dataclasses.fields(GANConfig)}
    return GANConfig(**{**LEGACY_DEFAULTS, **{k: v for k, v in saved.items() if k in known}})


def _check_resume_arch(cfg: GANConfig, saved: dict[str, Any]) -> None:
    theirs = {**{k: v for k, v in LEGACY_DEFAULTS.items() if k in cfg.arch()}, **saved.get("arch", {})}
    mine = cfg.arch()
    diff = {k: (theirs.get(k), mine[k]) for k in mine if theirs.get(k) != mine[k]}
    if diff:
        raise ValueError(f"checkpoint in the output directory has a different architecture {diff}; "
                         "use a new --out directory or the same settings")


def train(images: np.ndarray, labels: np.ndarray, config: GANConfig | dict | None = None,
          out_dir: str | Path = "gan-out", *, indices: np.ndarray | None = None,
          class_names: list[list[str]] | None = None,
          on_checkpoint: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Train (or resume) a conditional GAN on uint8 N x C x H x W images with int labels N or N x K.

    `indices` restricts training to a subset (a held-out split stays untouched). Resumes from
    out_dir/checkpoint.pt when present. Writes checkpoint.pt, metrics.json, loss_curve.png, samples.png.
    `on_checkpoint(path)` is called after every checkpoint is written.
    """
    out = Path(out_dir)
    cfg = _config_from(config)
    labels = training.fit_labels(cfg, images, labels, class_names)
    cfg.validate()
    train_idx = np.arange(len(images)) if indices is None else np.asarray(indices)
    train_labels = labels[train_idx]

    device = training.start(cfg)
    gan = GANTrainer(cfg, device)
    loader = BatchLoader(images, labels, cfg.batch_size, indices=train_idx, resolution=cfg.resolution,
                         device=device, seed=cfg.seed, channels_last=(device.type == "cuda" and cfg.channels_last))
    batches = None

    def step(i: int) -> dict[str, torch.Tensor]:
        nonlocal batches
        if batches is None:            # start where a resumed run left the data order
            batches = loader.batches(i * cfg.n_dis)
        stats = gan.train_step(batches)
        gan.ema_update(i)
        return stats

    job = trainer.Job(kind="gan", step=step, state=gan.state_dict, load=gan.load_state_dict,
                      config=dataclasses.asdict(cfg), arch=cfg.arch(), legacy_arch=LEGACY_DEFAULTS,
                      extra=lambda: {"train_indices": train_idx.astype(np.int64), "n_images": int(len(images))},
                      # BigGAN's standing statistics for the EMA generator, in the final checkpoint
                      finish=lambda: standing_stats(gan.ema.shadow, train_labels, cfg.standing_stats_batches,
                                                    min(cfg.batch_size, 64)))
    schedule = trainer.Schedule(steps=cfg.steps, minutes=cfg.minutes, checkpoint_every=cfg.checkpoint_every,
                                history_every=cfg.history_every, log_interval_s=cfg.log_interval_s)
    try:
        result = trainer.run(job, out, schedule, device=device, items_per_step=loader.batch_size * cfg.n_dis,
                             on_checkpoint=on_checkpoint)
    finally:
        if batches is not None:
            batches.close()

    history = result.history
    training.save_loss_curve({k: v for k, v in history.items() if k in ("d_loss", "g_loss")},
                             out / "loss_curve.png", title=f"GAN hinge losses (per {cfg.history_every} steps)")
    grid = sample(gan.ema.shadow, grid_labels(train_labels), seed=cfg.seed)
    save_grid(grid, out / "samples.png", nrow=8, min_cell=64)
    pair = latent_walk.default_pair(train_labels)
    if pair:
        save_grid(walk(gan.ema.shadow, *pair, seed=cfg.seed), out / "latent_walk.png", nrow=8, min_cell=64)
    metrics = {
        "model": "gan", **trainer.summary(result, loader.batch_size * cfg.n_dis, "images"),
        "params_G": training.count_parameters(gan.G), "params_D": training.count_parameters(gan.D),
        "final_d_loss": history["d_loss"][-1] if history.get("d_loss") else None,
        "final_g_loss": history["g_loss"][-1] if history.get("g_loss") else None,
        "n_train_images": int(len(train_idx)), "resolution": cfg.resolution, "device": str(device),
    }
    training.write_metrics(out, {**training.read_metrics(out), **metrics})
    return metrics


# ---------------------------------------------------------------------------------------------------------
# Loading and sampling
# ---------------------------------------------------------------------------------------------------------

def load_generator(ckpt_dir: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> Generator:
    """The (EMA by default) generator from ckpt_dir/checkpoint.pt, in eval mode; `G.config` holds its GANConfig."""
    saved = training.load_latest(Path(ckpt_dir))
    if saved is None or saved.get("kind") != "gan":
        raise FileNotFoundError(f"{ckpt_dir}: no GAN checkpoint (checkpoint.pt written by `train gan`)")
    cfg = config_from_checkpoint(saved["config"])
    if saved.get("arch", {}).get("blocks") != BLOCKS_VERSION:
        raise ValueError(f"{ckpt_dir}: checkpoint from an older GAN architecture (blocks version "
                         f"{saved.get('arch', {}).get('blocks', 1)}, this code has {BLOCKS_VERSION}); train it again")
    G = Generator(cfg)
    G.load_state_dict(saved["model"]["G_ema" if ema else "G"])
    G.config = cfg  # type: ignore[attr-defined]
    return G.to(torch.device(device)).eval()


@torch.no_grad()
def sample(G: Generator, labels: np.ndarray | torch.Tensor | list, seed: int = 0, batch_size: int = 256,
           truncation: float | None = None) -> np.ndarray:
    """uint8 N x C x H x W samples, one per label row (labels N or N x K). Deterministic for a given seed.

    `truncation` (BigGAN truncation trick) resamples |z| > truncation for fidelity over variety.
    """
    device = next(G.parameters()).device
    y_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    y_all = y_all[:, None] if y_all.ndim == 1 else y_all
    gen = torch.Generator(device="cpu").manual_seed(seed)
    was_training = G.training
    G.eval()
    out = []
    for i in range(0, len(y_all), batch_size):
        y = y_all[i:i + batch_size]
        z = torch.randn(len(y), G.z_dim, generator=gen)
        if truncation:
            while (mask := z.abs() > truncation).any():
                z[mask] = torch.randn(int(mask.sum()), generator=gen)
        out.append(to_uint8(G(z.to(device), y.to(device)).float()).cpu())
    G.train(was_training)
    return torch.cat(out, 0).numpy() if out else np.zeros((0, 1, 1, 1), np.uint8)


def walk(G: Generator, label_a: list[int], label_b: list[int], steps: int = 8, rows: int = 4,
         seed: int = 0) -> np.ndarray:
    """Latent-walk grid (models.latent_walk): label A -> B with fixed z, then between two z within label A."""
    device = next(G.parameters()).device
    was = G.training
    G.eval()
    try:
        return latent_walk.walk(lambda y: (G.embed(y),), lambda z, c: G.from_embedding(z, c[0]), G.z_dim,
                                label_a, label_b, steps=steps, rows=rows, seed=seed, device=device)
    finally:
        G.train(was)
