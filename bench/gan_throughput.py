"""Training throughput of the conditional GAN step against a plain DCGAN of the same size, and of the shard loader
against the training step, in the same run on this machine.

- Ours: models.gan.GANTrainer (residual G with conditional BN + SN, SN projection D, hinge, DiffAugment
  translation+cutout, EMA update), cpu-64 preset widths unless --g-ch/--d-ch are given.
- Reference: the pytorch/examples DCGAN recipe written out inline (ConvTranspose G / strided-conv D, BatchNorm,
  BCE, Adam 2e-4 (0.5, 0.999), one G forward reused for the D and G updates), with ngf = ndf chosen so that its
  parameter count is the closest to ours ("same size"). Both use the same optimiser, models.training.adam (the
  fused Adam kernel where torch has one), the same batch, threads and precision: the networks and their training
  step are the one thing compared.
- Ours is timed in fp32 (the like-for-like comparison) and, where the CPU has native bf16 kernels, also with the
  bf16 autocast the trainer uses there by default ("ours_bf16").
- Rounds alternate the models so all see the same machine load; the median step time per model over
  steps x rounds timed steps (default 20 x 3 = 60) is used, with the quartiles to show how stable it is.
- Figures: images/s, images/s x parameters ("per parameter"), forward+backward FLOPs per image counted with
  torch.utils.flop_counter, and achieved GFLOP/s (how well each implementation uses the hardware).
- Loader: models.shard.BatchLoader on a memory-mapped shard on disk (uint8 -> float, optional resize), alone.

Run:  nice -n 10 .venv/bin/python bench/gan_throughput.py [--resolution 64] [--batch-size 32] [--steps 20] [--rounds 3]
Saves bench/results/gan_throughput.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import gan  # noqa: E402
from models.shard import BatchLoader, measure_loader, write_shard  # noqa: E402
from models.training import adam, configure_threads, count_parameters, cpu_bf16_supported  # noqa: E402


# --------------------------------------------------------------------------------- pytorch/examples DCGAN, inline
def dcgan_g(nz: int, ngf: int, nc: int, resolution: int) -> nn.Sequential:
    n_up = int(np.log2(resolution)) - 3          # 64 px: 1 -> 4 (ngf*8) -> 8 -> 16 -> 32 (ngf) -> 64 (nc)
    mult = 2 ** n_up
    layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * mult),
                               nn.ReLU(True)]
    for _ in range(n_up):
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
        mult //= 2
    layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def dcgan_d(ndf: int, nc: int, resolution: int) -> nn.Sequential:
    n_down = int(np.log2(resolution)) - 3          # 64 px: 64 (nc) -> 32 (ndf) -> 16 -> 8 -> 4 (ndf*8) -> 1
    layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    mult = 1
    for _ in range(n_down):
        layers += [nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult * 2),
                   nn.LeakyReLU(0.2, inplace=True)]
        mult *= 2
    layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    return nn.Sequential(*layers)


def weights_init(m: nn.Module) -> None:
    if "Conv" in type(m).__name__:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in type(m).__name__:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class DCGANStep:
    def __init__(self, nz: int, ngf: int, ndf: int, nc: int, resolution: int):
        self.nz = nz
        self.G, self.D = dcgan_g(nz, ngf, nc, resolution), dcgan_d(ndf, nc, resolution)
        self.G.apply(weights_init)
        self.D.apply(weights_init)
        self.opt_g = adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))   # ours' optimiser (fused Adam)
        self.opt_d = adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.loss = nn.BCELoss()

    def params(self) -> int:
        return count_parameters(self.G) + count_parameters(self.D)

    def optimisers(self) -> tuple:
        return self.opt_g, self.opt_d

    def step(self, real: torch.Tensor, y: torch.Tensor) -> None:
        b = real.shape[0]
        self.D.zero_grad()
        err_real = self.loss(self.D(real).view(-1), torch.ones(b))
        err_real.backward()
        fake = self.G(torch.randn(b, self.nz, 1, 1))
        err_fake = self.loss(self.D(fake.detach()).view(-1), torch.zeros(b))
        err_fake.backward()
        self.opt_d.step()
        self.G.zero_grad()
        err_g = self.loss(self.D(fake).view(-1), torch.ones(b))
        err_g.backward()
        self.opt_g.step()


class OursStep:
    def __init__(self, cfg: gan.GANConfig):
        self.trainer = gan.GANTrainer(cfg, torch.device("cpu"))
        self.n = 0

    def params(self) -> int:
        return count_parameters(self.trainer.G) + count_parameters(self.trainer.D)

    def optimisers(self) -> tuple:
        return self.trainer.opt_g, self.trainer.opt_d

    def step(self, real: torch.Tensor, y: torch.Tensor) -> None:
        self.trainer.train_step(iter([(real, y)]))
        self.trainer.ema_update(self.n)
        self.n += 1


def flops_per_image(model, real: torch.Tensor, y: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model.step(real, y)
    return counter.get_total_flops() / real.shape[0]


def time_steps(model, real: torch.Tensor, y: torch.Tensor, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        t = time.perf_counter()
        model.step(real, y)
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per model per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--g-ch", type=int, default=32)
    ap.add_argument("--d-ch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: auto, see training)")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "gan_throughput.json")
    args = ap.parse_args()
    threads = configure_threads(args.threads)
    torch.manual_seed(0)
    res, bs, nc = args.resolution, args.batch_size, 3
    cfg = gan.GANConfig(resolution=res, channels=nc, num_classes=[5], g_ch=args.g_ch, d_ch=args.d_ch, z_dim=64,
                        embed_dim=64, batch_size=bs, device="cpu")
    ours = OursStep(dataclasses.replace(cfg, cpu_bf16=False))
    target = ours.params()
    ngf = min(range(4, 257), key=lambda k: abs(DCGANStep(100, k, k, nc, res).params() - target))
    ref = DCGANStep(100, ngf, ngf, nc, res)
    real = torch.rand(bs, nc, res, res) * 2 - 1
    y = torch.randint(0, 5, (bs, 1))
    load_start = os.getloadavg()
    models = {"ours": ours, "dcgan": ref}
    if cpu_bf16_supported():
        models["ours_bf16"] = OursStep(cfg)
    flops = {name: flops_per_image(m, real, y) for name, m in models.items()}
    for m in models.values():       # warm-up (oneDNN primitive caches)
        time_steps(m, real, y, 2)
    times: dict[str, list[float]] = {name: [] for name in models}
    for r in range(args.rounds):
        order = list(models.items())
        for name, m in (order if r % 2 == 0 else order[::-1]):
            times[name] += time_steps(m, real, y, args.steps)
    results: dict = {"resolution": res, "batch_size": bs, "channels": nc, "torch_threads": threads,
                     "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
                     "load_avg_start": load_start, "steps_timed_per_model": args.steps * args.rounds}
    for name, m in models.items():
        med = statistics.median(times[name])
        ips = bs / med
        q1, _, q3 = statistics.quantiles(times[name], n=4)
        results[name] = {"params": m.params(), "median_step_s": med, "images_per_s": ips,
                         "step_s_quartiles": [q1, q3], "steps_timed": len(times[name]),
                         "fused_adam": bool(m.optimisers()[0].defaults.get("fused")),
                         "images_per_s_x_params_M": ips * m.params() / 1e6,
                         "train_flops_per_image_G": flops[name] / 1e9,
                         "achieved_gflops_per_s": flops[name] * ips / 1e9}
    results["ours"]["config"] = {"g_ch": cfg.g_ch, "d_ch": cfg.d_ch, "z_dim": cfg.z_dim, "diffaug": cfg.diffaug,
                                 "params_G": count_parameters(ours.trainer.G),
                                 "params_D": count_parameters(ours.trainer.D)}
    results["dcgan"]["config"] = {"ngf": ngf, "ndf": ngf, "nz": 100, "params_G": count_parameters(ref.G),
                                  "params_D": count_parameters(ref.D)}
    o, d = results["ours"], results["dcgan"]
    results["ratio_ours_over_dcgan"] = {
        "images_per_s": o["images_per_s"] / d["images_per_s"],
        "images_per_s_x_params": o["images_per_s_x_params_M"] / d["images_per_s_x_params_M"],
        "achieved_gflops_per_s": o["achieved_gflops_per_s"] / d["achieved_gflops_per_s"],
    }
    if "ours_bf16" in results:
        results["ratio_ours_bf16_over_dcgan"] = {
            "images_per_s": results["ours_bf16"]["images_per_s"] / d["images_per_s"]}

    # loader alone: memory-mapped shard on disk, as training reads it
    with tempfile.TemporaryDirectory() as tmp:
        n = 2048
        imgs = np.random.default_rng(0).integers(0, 256, size=(n, nc, res, res), dtype=np.uint8)
        write_shard(Path(tmp) / "s", imgs, np.zeros(n, np.int64), ["x"])
        mm = np.load(Path(tmp) / "s" / "images.npy", mmap_mode="r")
        same = BatchLoader(mm, np.zeros(n, np.int64), bs, resolution=res, seed=0)
        bigger = np.random.default_rng(1).integers(0, 256, size=(512, nc, 2 * res, 2 * res), dtype=np.uint8)
        write_shard(Path(tmp) / "b", bigger, np.zeros(512, np.int64), ["x"])
        mm2 = np.load(Path(tmp) / "b" / "images.npy", mmap_mode="r")
        resized = BatchLoader(mm2, np.zeros(512, np.int64), bs, resolution=res, seed=0)
        results["loader"] = {
            "images_per_s_same_resolution": measure_loader(same, steps=40),
            f"images_per_s_resize_{2 * res}_to_{res}": measure_loader(resized, steps=20),
            "train_step_images_per_s_ours": o["images_per_s"],
        }
        results["loader"]["loader_over_train_step"] = results["loader"]["images_per_s_same_resolution"] / o["images_per_s"]
    results["load_avg_end"] = os.getloadavg()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"saved {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
