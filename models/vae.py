"""Conditional VAE (Sohn et al. 2015 style) with a discretised-logistic likelihood, reported in bits per dimension.

Encoder q(z | x, y): strided convs over the image with the label embedding broadcast as extra input channels,
then the label embedding concatenated again before the linear head. Decoder p(x | z, y): z and the label
embedding -> 4 x 4 -> nearest-upsample + conv blocks (the label embedding enters every block as extra channels)
-> per sub-pixel mean and log-scale. Prior p(z | y): a learned Gaussian per class (mean and log-variance from a
label embedding that starts at zero, i.e. at N(0, I)). With the fixed N(0, I) prior and the label only at the
decoder's input, the encoder put the digit's identity into z and samples ignored the requested label (59-75 %
conditional accuracy on scikit-learn digits); bench/digits.py measures each part (README).

Likelihood: the data are 8-bit, so p(x | z) must be a distribution over the 256 levels for -ELBO / (D ln 2) to
be a bound on the code length in bits per dimension. We use the discretised logistic of PixelCNN++ (Salimans et
al. 2017), one component: P(x) = sigmoid((x + 1/255 - mu)/s) - sigmoid((x - 1/255 - mu)/s) on the [-1, 1] grid
with bin width 2/255, the edge bins integrating to -inf / +inf. (A Bernoulli or continuous-Bernoulli likelihood
gives numbers that are not bits/dim of 8-bit data.) The reported held-out value is the single-sample estimate of
the negative ELBO with beta = 1 (the KL warm-up only shapes training), averaged over held-out images.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models import latent_walk, trainer, training
from models.images import save_grid
from models.shard import BatchLoader, quantise, resize_batch, to_float, to_uint8

log = logging.getLogger(__name__)

SUPPORTED_RESOLUTIONS = (32, 64, 128, 256)


@dataclass
class VAEConfig:
    resolution: int = 32
    channels: int = 1
    num_classes: list[int] = field(default_factory=list)
    class_names: list[list[str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    z_dim: int = 32
    ch: int = 32
    embed_dim: int = 16
    # How the label reaches the model (bench/digits.py measures each; README "Image models on real digits"):
    # prior "conditional" = a learned p(z | y) = N(mu_y, sigma_y^2) instead of N(0, I), so the prior puts each
    # class where the encoder puts it; label_stages "every" = the label embedding enters every decoder stage as
    # extra channels, not only the first linear layer.
    prior: str = "conditional"          # conditional | standard
    label_stages: str = "every"         # every | input
    free_bits: float = 0.0              # nats per latent dim below which KL is not penalised (0 = off)
    batch_size: int = 64
    steps: int | None = 2000
    minutes: float | None = None
    lr: float = 1e-3
    kl_warmup_steps: int = 500          # beta goes linearly 0 -> 1 over these steps
    grad_clip: float = 100.0
    seed: int = 0
    preset: str | None = None           # the preset this config came from (models.config.build), for the record
    device: str = "auto"
    cpu_threads: int = 0                # 0 = auto (1 thread when the machine is already busy); see training
    channels_last: bool = True
    checkpoint_every: int = 500
    history_every: int = 10
    log_interval_s: float = 15.0
    eval_batch_size: int = 128

    def validate(self) -> None:
        if self.resolution not in SUPPORTED_RESOLUTIONS:
            raise ValueError(f"resolution must be one of {SUPPORTED_RESOLUTIONS}, got {self.resolution}")
        if not self.num_classes:
            raise ValueError("num_classes is empty: give at least one label column")
        training.check_choice("prior", self.prior, ("conditional", "standard"))
        training.check_choice("label_stages", self.label_stages, ("every", "input"))

    def arch(self) -> dict[str, Any]:
        keys = ("resolution", "channels", "num_classes", "z_dim", "ch", "embed_dim", "prior", "label_stages")
        return {k: getattr(self, k) for k in keys}


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(resolution=32, ch=8, z_dim=8, embed_dim=4, batch_size=16, steps=20, checkpoint_every=10,
                 kl_warmup_steps=10),
    "cpu-small": dict(resolution=32, ch=32, z_dim=32, batch_size=64, steps=2000, minutes=5.0),
    "cpu-64": dict(resolution=64, ch=32, z_dim=64, batch_size=32, steps=2000, minutes=5.0),
    "gpu-64": dict(resolution=64, ch=64, z_dim=128, batch_size=128, steps=50_000, checkpoint_every=2000),
    "gpu-128": dict(resolution=128, ch=64, z_dim=256, batch_size=64, steps=100_000, checkpoint_every=2000),
    "gpu-256": dict(resolution=256, ch=48, z_dim=256, batch_size=32, steps=150_000, checkpoint_every=2000),
}


# ---------------------------------------------------------------------------------------------------------
# Discretised logistic likelihood
# ---------------------------------------------------------------------------------------------------------

def discretized_logistic_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(x) per sub-pixel for x on the 256-level grid in [-1, 1] (PixelCNN++ single component)."""
    log_scale = log_scale.clamp(min=-7.0)
    centered = x - mean
    inv_s = torch.exp(-log_scale)
    plus_in = inv_s * (centered + 1.0 / 255.0)
    min_in = inv_s * (centered - 1.0 / 255.0)
    log_cdf_plus = plus_in - F.softplus(plus_in)            # log sigmoid(plus_in): the x = 0 edge bin
    log_one_minus_cdf_min = -F.softplus(min_in)            # log(1 - sigmoid(min_in)): the x = 255 edge bin
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_s * centered
    log_pdf_mid = mid_in - log_scale - 2.0 * F.softplus(mid_in)  # density at the bin centre, for tiny bins
    inner = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid - math.log(127.5))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, inner))


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------

class LabelEmbed(nn.Module):
    def __init__(self, num_classes: list[int], dim: int):
        super().__init__()
        self.embeds = nn.ModuleList(nn.Embedding(n, dim) for n in num_classes)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.stack([e(y[:, k]) for k, e in enumerate(self.embeds)], 0).sum(0)


def _n_down(resolution: int) -> int:
    return int(math.log2(resolution)) - 2


class ConditionalVAE(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        n = _n_down(cfg.resolution)
        self.cfg = cfg
        self.embed_enc = LabelEmbed(cfg.num_classes, cfg.embed_dim)
        self.embed_dec = LabelEmbed(cfg.num_classes, cfg.embed_dim)
        chs = [cfg.ch * min(2 ** i, 8) for i in range(n)]
        layers: list[nn.Module] = []
        cin = cfg.channels + cfg.embed_dim
        for cout in chs:
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.SiLU(),
                       nn.Conv2d(cout, cout, 3, padding=1), nn.SiLU()]
            cin = cout
        self.encoder = nn.Sequential(*layers)
        self.top = cin
        self.enc_head = nn.Linear(cin * 16 + cfg.embed_dim, 2 * cfg.z_dim)
        self.dec_in = nn.Linear(cfg.z_dim + cfg.embed_dim, cin * 16)
        extra = cfg.embed_dim if cfg.label_stages == "every" else 0
        self.decoder = nn.ModuleList()
        for cout in reversed([cfg.ch] + chs[:-1]):
            self.decoder.append(nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin + extra, cout, 3, padding=1), nn.SiLU(),
                nn.Conv2d(cout, cout, 3, padding=1), nn.SiLU()))
            cin = cout
        self.dec_out = nn.Conv2d(cin, 2 * cfg.channels, 3, padding=1)
        if cfg.prior == "conditional":   # per-class mean and log-variance, starting at N(0, I)
            self.prior_embed = LabelEmbed(cfg.num_classes, 2 * cfg.z_dim)
            for e in self.prior_embed.embeds:
                nn.init.zeros_(e.weight)
        nn.init.zeros_(self.dec_out.weight)
        with torch.no_grad():   # start at mean 0, scale exp(-2): a sane initial likelihood
            self.dec_out.bias.zero_()
            self.dec_out.bias[cfg.channels:] = -2.0

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.embed_enc(y)
        maps = e[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        h = self.encoder(torch.cat([x, maps.to(x.dtype)], 1)).flatten(1)
        mu, logvar = self.enc_head(torch.cat([h, e.to(h.dtype)], 1)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def prior(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(z | y): learned per class, or N(0, I) for the standard prior."""
        if self.cfg.prior == "standard":
            zeros = torch.zeros(y.shape[0], self.cfg.z_dim, device=y.device)
            return zeros, zeros
        mu, logvar = self.prior_embed(y).chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 5.0)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode_embedded(z, self.embed_dec(y))

    def decode_embedded(self, z: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder mean and log-scale for latents z and decoder label embeddings e (blends too)."""
        h = F.silu(self.dec_in(torch.cat([z, e], 1)).view(z.shape[0], self.top, 4, 4))
        for block in self.decoder:
            if self.cfg.label_stages == "every":
                h = torch.cat([h, e[:, :, None, None].to(h.dtype).expand(-1, -1, h.shape[2], h.shape[3])], 1)
            h = block(h)
        mean, log_scale = self.dec_out(h).chunk(2, dim=1)
        return mean, log_scale

    def forward(self, x: torch.Tensor, y: torch.Tensor, beta: float = 1.0,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-image negative ELBO terms in nats (recon, kl) and the beta-weighted loss (mean over the batch).
        With free bits, the KL term of the loss (not the reported kl) counts each latent dimension's batch-mean KL
        as at least `free_bits` nats (Kingma et al. 2016), so the encoder may use that much for free."""
        mu, logvar = self.encode(x, y)
        eps = torch.randn(mu.shape, generator=generator, device="cpu" if generator is not None else mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps.to(mu.device, mu.dtype)
        mean, log_scale = self.decode(z, y)
        recon = -discretized_logistic_log_prob(x.float(), mean.float(), log_scale.float()).flatten(1).sum(1)
        p_mu, p_logvar = self.prior(y)
        mu, logvar, p_mu, p_logvar = mu.float(), logvar.float(), p_mu.float(), p_logvar.float()
        kl_dims = 0.5 * (p_logvar - logvar + (logvar.exp() + (mu - p_mu).pow(2)) / p_logvar.exp() - 1.0)
        kl = kl_dims.sum(1)
        kl_loss = kl.mean()
        if self.cfg.free_bits > 0:
            kl_loss = kl_dims.mean(0).clamp(min=self.cfg.free_bits).sum()
        return {"recon": recon, "kl": kl, "loss": recon.mean() + beta * kl_loss}


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    return nats_per_image / (dims * math.log(2.0))


# ---------------------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------------------

@torch.no_grad()
def heldout_bits_per_dim(model: ConditionalVAE, images: np.ndarray, labels: np.ndarray, indices: np.ndarray,
                         batch_size: int = 128, seed: int = 0) -> dict[str, float]:
    """Negative ELBO (beta = 1) on the given images, in bits/dim, with its recon/KL split; one z sample per image
    drawn from a private generator, so the figure is deterministic."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    total_recon = total_kl = 0.0
    n = 0
    labels = labels[:, None] if labels.ndim == 1 else labels
    for i in range(0, len(indices), batch_size):
        idx = np.asarray(indices[i:i + batch_size])
        x = to_float(torch.from_numpy(np.ascontiguousarray(images[idx])).to(device))
        if x.shape[-1] != model.cfg.resolution:
            x = quantise(resize_batch(x, model.cfg.resolution))
        y = torch.from_numpy(labels[idx]).to(device)
        out = model(x, y, beta=1.0, generator=gen)
        total_recon += float(out["recon"].sum())
        total_kl += float(out["kl"].sum())
        n += len(idx)
    model.train(was)
    dims = model.cfg.channels * model.cfg.resolution ** 2
    return {"bits_per_dim": bits_per_dim((total_recon + total_kl) / max(n, 1), dims),
            "recon_bits_per_dim": bits_per_dim(total_recon / max(n, 1), dims),
            "kl_bits_per_dim": bits_per_dim(total_kl / max(n, 1), dims), "n_images": n}


def _config_from(config: VAEConfig | dict | None) -> VAEConfig:
    if config is None:
        return VAEConfig()
    return VAEConfig(**config) if isinstance(config, dict) else dataclasses.replace(config)


def train(images: np.ndarray, labels: np.ndarray, config: VAEConfig | dict | None = None,
          out_dir: str | Path = "vae-out", *, indices: np.ndarray | None = None,
          holdout: np.ndarray | None = None, class_names: list[list[str]] | None = None,
          on_checkpoint: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Train (or resume) a conditional VAE; reports held-out bits/dim when `holdout` indices are given.
    `on_checkpoint(path)` is called after every checkpoint is written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = _config_from(config)
    labels = training.fit_labels(cfg, images, labels, class_names)
    cfg.validate()
    train_idx = np.arange(len(images)) if indices is None else np.asarray(indices)

    device = training.start(cfg)
    model = ConditionalVAE(cfg).to(device)
    if device.type == "cuda" and cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = training.adam(model.parameters(), lr=cfg.lr)
    loader = BatchLoader(images, labels, cfg.batch_size, indices=train_idx, resolution=cfg.resolution,
                         device=device, seed=cfg.seed, channels_last=(device.type == "cuda" and cfg.channels_last))
    dims = cfg.channels * cfg.resolution ** 2
    batches = None

    def step(i: int) -> dict[str, Any]:
        nonlocal batches
        if batches is None:            # start where a resumed run left the data order
            batches = loader.batches(i)
        x, y = next(batches)
        beta = min(1.0, (i + 1) / cfg.kl_warmup_steps) if cfg.kl_warmup_steps > 0 else 1.0
        with training.autocast(device):
            terms = model(x, y, beta=beta)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        # history in bits/dim of the beta = 1 bound, whatever beta trained this step
        recon = terms["recon"].detach().mean() / (dims * math.log(2.0))
        kl = terms["kl"].detach().mean() / (dims * math.log(2.0))
        return {"loss": recon + kl, "recon": recon, "kl": kl, "beta": beta}

    def load(state: dict[str, Any]) -> None:
        model.load_state_dict(state["vae"])
        opt.load_state_dict(state["opt"])

    job = trainer.Job(kind="vae", step=step, state=lambda: {"vae": model.state_dict(), "opt": opt.state_dict()},
                      load=load, config=dataclasses.asdict(cfg), arch=cfg.arch(), legacy_arch=LEGACY_DEFAULTS,
                      extra=lambda: {"train_indices": train_idx.astype(np.int64), "n_images": int(len(images))},
                      progress_values=lambda h: {"train_bpd": h["loss"][-1]} if h.get("loss") else {})
    schedule = trainer.Schedule(steps=cfg.steps, minutes=cfg.minutes, checkpoint_every=cfg.checkpoint_every,
                                history_every=cfg.history_every, log_interval_s=cfg.log_interval_s)
    model.train()
    try:
        result = trainer.run(job, out, schedule, device=device, items_per_step=loader.batch_size,
                             on_checkpoint=on_checkpoint)
    finally:
        if batches is not None:
            batches.close()
    history = result.history

    training.save_loss_curve({"train -ELBO (bits/dim, beta=1)": history["loss"]}, out / "loss_curve.png",
                             title=f"CVAE training loss (per {cfg.history_every} steps)")
    from models.gan import grid_labels
    model.eval()
    save_grid(sample(model, grid_labels(labels[train_idx]), seed=cfg.seed), out / "samples.png", nrow=8, min_cell=64)
    pair = latent_walk.default_pair(labels[train_idx])
    if pair:
        save_grid(walk(model, *pair, seed=cfg.seed), out / "latent_walk.png", nrow=8, min_cell=64)
    recon_idx = train_idx[:32] if holdout is None or len(holdout) == 0 else np.asarray(holdout)[:32]
    save_grid(reconstruct(model, images, labels, recon_idx), out / "reconstructions.png", nrow=8, min_cell=64)
    metrics: dict[str, Any] = {
        "model": "vae", **trainer.summary(result, loader.batch_size, "images"),
        "params": training.count_parameters(model), "n_train_images": int(len(train_idx)),
        "final_train_bits_per_dim": history["loss"][-1] if history.get("loss") else None,
        "likelihood": "discretised logistic, 256 levels", "resolution": cfg.resolution, "device": str(device),
    }
    if holdout is not None and len(holdout):
        held = heldout_bits_per_dim(model, images, labels, np.asarray(holdout), cfg.eval_batch_size, seed=cfg.seed)
        metrics.update({f"heldout_{k}": v for k, v in held.items()})
    prior = training.read_metrics(out)
    training.write_metrics(out, {**prior, **metrics})
    return metrics


# ---------------------------------------------------------------------------------------------------------
# Loading, sampling, reconstructions
# ---------------------------------------------------------------------------------------------------------

# What a checkpoint written before a field existed was trained with (its config dict lacks the key).
LEGACY_DEFAULTS = {"prior": "standard", "label_stages": "input", "free_bits": 0.0}


def config_from_checkpoint(saved: dict[str, Any]) -> VAEConfig:
    """The VAEConfig a checkpoint was trained with; keys it predates take the values of that older model."""
    known = {f.name for f in dataclasses.fields(VAEConfig)}
    return VAEConfig(**{**LEGACY_DEFAULTS, **{k: v for k, v in saved.items() if k in known}})


def load_vae(ckpt_dir: str | Path, device: str | torch.device = "cpu") -> ConditionalVAE:
    saved = training.load_latest(Path(ckpt_dir))
    if saved is None or saved.get("kind") != "vae":
        raise FileNotFoundError(f"{ckpt_dir}: no VAE checkpoint (checkpoint.pt written by `train vae`)")
    model = ConditionalVAE(config_from_checkpoint(saved["config"]))
    model.load_state_dict(saved["model"]["vae"])
    return model.to(torch.device(device)).eval()


@torch.no_grad()
def sample(model: ConditionalVAE, labels: np.ndarray | torch.Tensor | list, seed: int = 0,
           batch_size: int = 256, temperature: float = 1.0) -> np.ndarray:
    """uint8 N x C x H x W: z ~ p(z | y) with its spread scaled by `temperature`, image = decoder mean (the usual
    way to show VAE samples)."""
    device = next(model.parameters()).device
    y_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    y_all = y_all[:, None] if y_all.ndim == 1 else y_all
    gen = torch.Generator(device="cpu").manual_seed(seed)
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(y_all), batch_size):
        y = y_all[i:i + batch_size].to(device)
        p_mu, p_logvar = model.prior(y)
        eps = torch.randn(len(y), model.cfg.z_dim, generator=gen).to(device)
        mean, _ = model.decode(p_mu + temperature * torch.exp(0.5 * p_logvar) * eps, y)
        out.append(to_uint8(mean.float().clamp(-1, 1)).cpu())
    model.train(was)
    return torch.cat(out, 0).numpy() if out else np.zeros((0, 1, 1, 1), np.uint8)


@torch.no_grad()
def reconstruct(model: ConditionalVAE, images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """uint8 grid rows: originals and reconstructions (encoder mean -> decoder mean) interleaved in pairs."""
    device = next(model.parameters()).device
    labels = labels[:, None] if labels.ndim == 1 else labels
    idx = np.asarray(indices)
    x = to_float(torch.from_numpy(np.ascontiguousarray(images[idx])).to(device))
    x = resize_batch(x, model.cfg.resolution)
    y = torch.from_numpy(labels[idx]).to(device)
    mu, _ = model.encode(x, y)
    mean, _ = model.decode(mu, y)
    orig, rec = to_uint8(x).cpu().numpy(), to_uint8(mean.clamp(-1, 1)).cpu().numpy()
    pairs = np.empty((2 * len(idx),) + orig.shape[1:], dtype=np.uint8)
    pairs[0::2], pairs[1::2] = orig, rec
    return pairs


def walk(model: ConditionalVAE, label_a: list[int], label_b: list[int], steps: int = 8, rows: int = 4,
         seed: int = 0) -> np.ndarray:
    """Latent-walk grid (models.latent_walk): label A -> B (decoder embedding and prior blended, noise fixed),
    then between two prior draws within label A. Images are decoder means, as in `sample`."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()

    def condition(y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (model.embed_dec(y), *model.prior(y))

    def render(eps: torch.Tensor, c: tuple[torch.Tensor, ...]) -> torch.Tensor:
        e, mu, logvar = c
        return model.decode_embedded(mu + torch.exp(0.5 * logvar) * eps, e)[0]

    try:
        return latent_walk.walk(condition, render, model.cfg.z_dim, label_a, label_b, steps=steps, rows=rows,
                                seed=seed, device=device)
    finally:
        model.train(was)
