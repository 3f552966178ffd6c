"""GPU check in one command: training throughput of every model on this machine's GPU, in under 8 minutes.

With bf16 autocast and channels_last (what the trainers use on CUDA), in one run:
- GAN training images/s at 64 and 128 px (models.gan.GANTrainer, presets gpu-64 / gpu-128) against the
  pytorch/examples DCGAN at the same resolution (ngf = ndf = 64, nz = 100; one more layer at 128 px), both with
  the same fused Adam (models.training.adam);
- the shard loader's images/s (models.shard.BatchLoader over a synthetic uint8 array, delivered to the GPU)
  against the GAN step's images/s: a loader slower than the step is the bottleneck;
- VAE training images/s (models.vae.ConditionalVAE, presets gpu-64 / gpu-128: forward + backward + Adam);
- LSTM training tokens/s (models.lstm.LSTMLanguageModel, arxiv-gpu preset sizes, random tokens);
- peak GPU memory of each workload (torch.cuda.max_memory_allocated, reset between workloads);
- a short real training run: the VAE on scikit-learn's 8x8 digits upsampled to 32 px for 300 steps; the mean
  loss (negative ELBO, bits/dim) of the first and the last 50 steps and whether it fell.

Warm-up steps are not timed, timed regions start and end with torch.cuda.synchronize(), and every workload
has a time cap (shrunk when the run falls behind) so the whole check stays under 8 minutes.

Run:   .venv/bin/python bench/gpu_check.py [--out bench/results/gpu_check.json] [--seconds 20]
Test:  .venv/bin/python bench/gpu_check.py --device cpu --tiny --out /tmp/gpu_check.json
       (every workload in a tiny size for a couple of steps on the CPU, to exercise the code paths)
Without a CUDA device it prints one line and exits 0 without measuring or writing anything.
Exit status 1 when a workload failed or (full run only) the digits loss did not fall.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gan_throughput import dcgan_d, dcgan_g, weights_init  # noqa: E402  the one DCGAN reference
from models import gan, lstm, training, vae  # noqa: E402
from models.shard import BatchLoader, quantise  # noqa: E402

NO_CUDA = "no CUDA device: this check needs a GPU; nothing measured"
DEFAULT_OUT = ROOT / "bench" / "results" / "gpu_check.json"
NUM_CLASSES = [8]
# Tiny sizes for --tiny (code paths only); the full run uses the presets as they are.
TINY_GAN = dict(g_ch=8, d_ch=8, z_dim=16, embed_dim=16, batch_size=4)
TINY_VAE = dict(ch=8, z_dim=8, embed_dim=4, batch_size=4)
TINY_LSTM = dict(vocab_size=512, emsize=32, nhid=32, bptt=16, batch_size=4)


# ------------------------------------------------------------------------------------------------- timing
class Run:
    """Device, sizes and the time budget shared by all workloads."""

    def __init__(self, device: torch.device, tiny: bool, seconds: float, budget_s: float, warmup: int,
                 max_steps: int):
        self.device, self.tiny = device, tiny
        self.cuda = device.type == "cuda"
        self.seconds, self.warmup, self.max_steps = seconds, warmup, max_steps
        self.deadline = time.monotonic() + budget_s
        self.left = 0   # workloads not yet run

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def cap(self) -> float:
        """This workload's timed seconds: the per-workload cap, shrunk so the rest still fits the budget
        (the factor 1.5 leaves room for building models and warming up)."""
        share = (self.deadline - time.monotonic()) / max(self.left, 1) / 1.5
        return max(1.0, min(self.seconds, share))

    def time_steps(self, step: Callable[[], Any], items_per_step: int) -> dict[str, Any]:
        """Warm up, then run `step` until max_steps or the cap; items per second over the timed steps."""
        for _ in range(self.warmup):
            step()
        cap = self.cap()
        self.sync()
        t0 = time.perf_counter()
        n = 0
        while n < self.max_steps:
            step()
            n += 1
            if time.perf_counter() - t0 >= cap:
                break
        self.sync()
        dt = time.perf_counter() - t0
        return {"steps": n, "seconds": dt, "per_s": n * items_per_step / dt, "cap_s": cap,
                "warmup_steps": self.warmup}


def _images(run: Run, n: int, res: int) -> torch.Tensor:
    x = quantise(torch.rand(n, 1, res, res, device=run.device) * 2 - 1)
    return x.contiguous(memory_format=torch.channels_last) if run.cuda else x


def _labels(run: Run, n: int) -> torch.Tensor:
    return torch.randint(0, NUM_CLASSES[0], (n, len(NUM_CLASSES)), device=run.device)


def _image_result(timing: dict[str, Any], **extra: Any) -> dict[str, Any]:
    per_s = timing.pop("per_s")
    return {"images_per_s": per_s, **extra, **timing}


# ------------------------------------------------------------------------------------------------- workloads
def gan_config(res: int, tiny: bool) -> gan.GANConfig:
    cfg = gan.GANConfig(**{**gan.PRESETS[f"gpu-{res}"], **(TINY_GAN if tiny else {})})
    cfg.num_classes, cfg.channels = list(NUM_CLASSES), 1
    cfg.validate()
    return cfg


def vae_config(preset: str, tiny: bool, num_classes: list[int]) -> vae.VAEConfig:
    cfg = vae.VAEConfig(**{**vae.PRESETS[preset], **(TINY_VAE if tiny and preset.startswith("gpu") else {})})
    cfg.num_classes, cfg.channels = list(num_classes), 1
    cfg.validate()
    return cfg


def ours_gan(run: Run, res: int) -> dict[str, Any]:
    cfg = gan_config(res, run.tiny)
    trainer = gan.GANTrainer(cfg, run.device)
    bs = cfg.batch_size
    batches = itertools.repeat((_images(run, bs, res), _labels(run, bs)))
    count = itertools.count()

    def step() -> None:   # one iteration of models.gan.train's loop: n_dis D updates, one G update, EMA
        trainer.train_step(batches)
        trainer.ema_update(next(count))

    timing = run.time_steps(step, bs * cfg.n_dis)
    return _image_result(timing, model="models.gan.GANTrainer", preset=f"gpu-{res}", resolution=res,
                         batch_size=bs, n_dis=cfg.n_dis, params=training.count_parameters(trainer.G)
                         + training.count_parameters(trainer.D), optimizer=type(trainer.opt_d).__name__,
                         fused_adam=bool(trainer.opt_d.defaults.get("fused")),
                         channels_last=run.cuda and cfg.channels_last)


def dcgan(run: Run, res: int) -> dict[str, Any]:
    """pytorch/examples dcgan training step (BCE, Adam 2e-4 (0.5, 0.999), G's fakes reused for the G update),
    with the same fused Adam, bf16 autocast and channels_last as ours. The losses are taken outside autocast
    (binary_cross_entropy refuses to run under it) on the float32 D outputs."""
    cfg = gan_config(res, run.tiny)
    nz, width, bs = 100, (8 if run.tiny else 64), cfg.batch_size
    G, D = dcgan_g(nz, width, 1, res).to(run.device), dcgan_d(width, 1, res).to(run.device)
    G.apply(weights_init)
    D.apply(weights_init)
    if run.cuda:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    opt_g = training.adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = training.adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = _images(run, bs, res)
    ones, zeros = torch.ones(bs, device=run.device), torch.zeros(bs, device=run.device)

    def amp():
        return training.autocast(run.device, cpu=cfg.cpu_bf16)

    def step() -> None:
        D.zero_grad(set_to_none=True)
        with amp():
            out_real = D(real).view(-1)
        F.binary_cross_entropy(out_real.float(), ones).backward()
        with amp():
            fake = G(torch.randn(bs, nz, 1, 1, device=run.device))
            out_fake = D(fake.detach()).view(-1)
        F.binary_cross_entropy(out_fake.float(), zeros).backward()
        opt_d.step()
        G.zero_grad(set_to_none=True)
        with amp():
            out = D(fake).view(-1)
        F.binary_cross_entropy(out.float(), ones).backward()
        opt_g.step()

    timing = run.time_steps(step, bs)
    return _image_result(timing, model="pytorch/examples DCGAN", ngf=width, ndf=width, nz=nz, resolution=res,
                         batch_size=bs, params=training.count_parameters(G) + training.count_parameters(D),
                         optimizer=type(opt_d).__name__, fused_adam=bool(opt_d.defaults.get("fused")),
                         channels_last=run.cuda)


def loader(run: Run, res: int) -> dict[str, Any]:
    """BatchLoader over an in-memory uint8 array (as a page-cached shard), batches delivered to the device as
    float [-1, 1] (channels_last on CUDA), at the GAN preset's batch size."""
    n = 64 if run.tiny else 4096
    bs = gan_config(res, run.tiny).batch_size
    images = np.random.default_rng(0).integers(0, 256, size=(n, 1, res, res), dtype=np.uint8)
    labels = np.zeros((n, 1), np.int64)
    bl = BatchLoader(images, labels, bs, resolution=res, device=run.device, seed=0, channels_last=run.cuda)
    it = bl.batches(0)
    try:
        timing = run.time_steps(lambda: next(it), bl.batch_size)
    finally:
        it.close()
    return _image_result(timing, model="models.shard.BatchLoader", array=list(images.shape), batch_size=bl.batch_size,
                         resolution=res)


def vae_step(run: Run, res: int) -> dict[str, Any]:
    """One iteration of models.vae.train's loop: forward under autocast, backward, gradient clipping, Adam."""
    cfg = vae_config(f"gpu-{res}", run.tiny, NUM_CLASSES)
    model = vae.ConditionalVAE(cfg).to(run.device)
    if run.cuda and cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = training.adam(model.parameters(), lr=cfg.lr)
    x, y = _images(run, cfg.batch_size, res), _labels(run, cfg.batch_size)

    def step() -> None:
        with training.autocast(run.device):
            out = model(x, y, beta=1.0)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

    timing = run.time_steps(step, cfg.batch_size)
    return _image_result(timing, model="models.vae.ConditionalVAE", preset=f"gpu-{res}", resolution=res,
                         batch_size=cfg.batch_size, params=training.count_parameters(model),
                         optimizer=type(opt).__name__, fused_adam=bool(opt.defaults.get("fused")))


def lstm_step(run: Run) -> dict[str, Any]:
    """One iteration of models.lstm.train's loop on random tokens: carried, detached hidden state, forward
    under autocast, float32 cross-entropy, backward, clipping, the trainer's optimiser."""
    cfg = lstm.preset_config("arxiv-gpu", **(TINY_LSTM if run.tiny else {}))
    vocab = int(cfg.vocab_size)
    model = lstm.LSTMLanguageModel.from_config(cfg, vocab).to(run.device)
    opt = lstm._make_optimizer(model, cfg)   # the trainer's own choice (AdamW for this preset)
    windows = 8
    data = torch.randint(0, vocab, (windows * cfg.bptt + 1, cfg.batch_size), device=run.device)
    state: dict[str, Any] = {"hidden": None, "i": 0}
    model.train()

    def step() -> None:
        pos = (state["i"] % windows) * cfg.bptt
        state["i"] += 1
        x, y = data[pos:pos + cfg.bptt], data[pos + 1:pos + 1 + cfg.bptt]
        hidden = lstm.detach_hidden(state["hidden"])
        opt.zero_grad(set_to_none=True)
        with training.autocast(run.device):
            logits, state["hidden"] = model(x, hidden)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()

    tokens = cfg.bptt * cfg.batch_size
    timing = run.time_steps(step, tokens)
    return {"tokens_per_s": timing.pop("per_s"), "model": "models.lstm.LSTMLanguageModel", "preset": "arxiv-gpu",
            "vocab_size": vocab, "emsize": cfg.emsize, "nhid": cfg.nhid, "nlayers": cfg.nlayers, "bptt": cfg.bptt,
            "batch_size": cfg.batch_size, "tokens_per_step": tokens, "params": training.count_parameters(model),
            "optimizer": type(opt).__name__, **timing}


def digits_vae(run: Run) -> dict[str, Any]:
    """The VAE trained on real data (scikit-learn digits, 8x8 upsampled to 32 px) with the trainer's loop:
    KL warm-up, clipping, Adam. The loss recorded per step is the negative ELBO with beta = 1 in bits/dim
    (what the trainer reports); it has to fall from the first steps to the last."""
    from sklearn.datasets import load_digits

    from models.images import resize_uint8

    d = load_digits()
    img8 = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    images = resize_uint8(img8, 32)
    labels = d.target.astype(np.int64)[:, None]
    preset = "tiny" if run.tiny else "cpu-small"
    cfg = vae_config(preset, run.tiny, [10])
    steps, window = (40, 10) if run.tiny else (300, 50)
    torch.manual_seed(0)
    model = vae.ConditionalVAE(cfg).to(run.device)
    if run.cuda and cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = training.adam(model.parameters(), lr=cfg.lr)
    bl = BatchLoader(images, labels, cfg.batch_size, resolution=32, device=run.device, seed=0,
                     channels_last=run.cuda and cfg.channels_last)
    dims = cfg.channels * cfg.resolution ** 2
    cap = max(run.cap(), 5.0)
    losses: list[torch.Tensor] = []
    timed_from, t0 = min(5, steps // 4), 0.0
    it = bl.batches(0)
    t_start = time.perf_counter()
    try:
        for step in range(steps):
            if step == timed_from:
                run.sync()
                t0 = time.perf_counter()
            x, y = next(it)
            beta = min(1.0, (step + 1) / cfg.kl_warmup_steps) if cfg.kl_warmup_steps > 0 else 1.0
            with training.autocast(run.device):
                out = model(x, y, beta=beta)
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            losses.append((out["recon"] + out["kl"]).detach().mean())
            if time.perf_counter() - t_start >= cap:
                break
    finally:
        it.close()
    run.sync()
    n = len(losses)
    timed = max(n - timed_from, 0)
    dt = time.perf_counter() - t0 if timed else float("nan")
    bpd = (torch.stack(losses).float().cpu().numpy() / (dims * math.log(2.0))).tolist()
    w = max(1, min(window, n // 2))
    first, last = float(np.mean(bpd[:w])), float(np.mean(bpd[-w:]))
    return {"images_per_s": timed * bl.batch_size / dt if timed else float("nan"),
            "model": "models.vae.ConditionalVAE", "preset": preset, "data": "sklearn load_digits, 8x8 -> 32 px",
            "batch_size": bl.batch_size, "steps": n, "steps_planned": steps, "window": w,
            f"loss_first{w}": first, f"loss_last{w}": last, "loss_first": first, "loss_last": last,
            "loss_unit": "negative ELBO (beta = 1), bits/dim", "loss_fell": last < first,
            "seconds": time.perf_counter() - t_start, "timed_steps": timed, "cap_s": cap}


# ------------------------------------------------------------------------------------------------- report
def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
                           "platform": platform.platform(), "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=torch.cuda.get_device_name(device), gpu_capability=f"{props.major}.{props.minor}",
                   gpu_memory_gb=round(props.total_memory / 2**30, 2), cudnn=torch.backends.cudnn.version(),
                   bf16_supported=torch.cuda.is_bf16_supported())
    else:
        env.update(gpu=None, cpu=platform.processor() or platform.machine(), torch_threads=torch.get_num_threads())
    return env


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:,.{digits}f}" if isinstance(v, (int, float)) else str(v)


def table(results: dict[str, Any]) -> str:
    rows = [("workload", "throughput", "unit", "steps", "seconds", "peak MB")]
    for name, r in results["workloads"].items():
        if "error" in r:
            rows.append((name, "FAILED", r["error"][:60], "", "", ""))
            continue
        tput, unit = (r["tokens_per_s"], "tokens/s") if "tokens_per_s" in r else (r["images_per_s"], "images/s")
        rows.append((name, _fmt(tput, 1), unit, _fmt(r.get("steps")), _fmt(r.get("seconds"), 1),
                     _fmt(r.get("peak_memory_mb"), 0)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    c = results["comparisons"]
    for res in (64, 128):
        if f"gan_over_dcgan_{res}" in c:
            lines.append(f"GAN step {res} px: {c[f'gan_over_dcgan_{res}']:.2f}x the DCGAN's images/s "
                         f"({c[f'gan_params_over_dcgan_{res}']:.2f}x its parameters)")
        if f"loader_over_gan_step_{res}" in c:
            ratio = c[f"loader_over_gan_step_{res}"]
            verdict = "the loader is the bottleneck" if ratio < 1 else "the loader keeps up"
            lines.append(f"loader {res} px: {ratio:.2f}x the GAN step's images/s: {verdict}")
    dv = results["workloads"].get("digits_vae", {})
    if "loss_fell" in dv:
        lines.append(f"digits VAE ({dv['steps']} steps): loss {dv['loss_first']:.3f} -> {dv['loss_last']:.3f} "
                     f"bits/dim (mean of first/last {dv['window']} steps): "
                     + ("fell" if dv["loss_fell"] else "DID NOT FALL"))
    return "\n".join(lines)


def comparisons(w: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for res in (64, 128):
        ours, ref, ld = w.get(f"gan_{res}", {}), w.get(f"dcgan_{res}", {}), w.get(f"loader_{res}", {})
        if "images_per_s" in ours and "images_per_s" in ref:
            out[f"gan_over_dcgan_{res}"] = ours["images_per_s"] / ref["images_per_s"]
            out[f"gan_params_over_dcgan_{res}"] = ours["params"] / ref["params"]
        if "images_per_s" in ours and "images_per_s" in ld:
            out[f"loader_over_gan_step_{res}"] = ld["images_per_s"] / ours["images_per_s"]
            out[f"loader_is_bottleneck_{res}"] = ld["images_per_s"] < ours["images_per_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results (default: %(default)s)")
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (with --tiny, for testing)")
    ap.add_argument("--tiny", action="store_true", help="every workload in a tiny size for a couple of steps")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per workload (default 20; tiny 5)")
    ap.add_argument("--budget", type=float, default=420.0,
                    help="seconds the whole check may take, caps shrink to fit (default %(default)s)")
    args = ap.parse_args(argv)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    try:
        device = training.pick_device(args.device)
    except ValueError as exc:
        ap.error(str(exc))
    if device.type == "cpu" and not args.tiny:
        ap.error("--device cpu only runs with --tiny (it checks the code paths; the full sizes need a GPU)")
    if device.type == "cpu":
        training.configure_threads()
    elif device.index is not None:
        torch.cuda.set_device(device)

    t_run = time.monotonic()
    torch.manual_seed(0)
    run = Run(device, args.tiny, seconds=args.seconds or (5.0 if args.tiny else 20.0), budget_s=args.budget,
              warmup=1 if args.tiny else 5, max_steps=2 if args.tiny else 500)
    plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("gan_64", lambda: ours_gan(run, 64)), ("dcgan_64", lambda: dcgan(run, 64)),
        ("loader_64", lambda: loader(run, 64)),
        ("gan_128", lambda: ours_gan(run, 128)), ("dcgan_128", lambda: dcgan(run, 128)),
        ("loader_128", lambda: loader(run, 128)),
        ("vae_64", lambda: vae_step(run, 64)), ("vae_128", lambda: vae_step(run, 128)),
        ("lstm", lambda: lstm_step(run)), ("digits_vae", lambda: digits_vae(run)),
    ]
    env = environment(device)
    print(f"GPU check on {env.get('gpu') or env['device']} (torch {env['torch']}, CUDA {env['cuda']})"
          + (", tiny sizes" if args.tiny else ""), flush=True)
    workloads: dict[str, dict[str, Any]] = {}
    for i, (name, fn) in enumerate(plan):
        run.left = len(plan) - i
        gc.collect()
        if run.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.monotonic()
        try:
            r = fn()
        except Exception as exc:   # one failing workload (e.g. out of memory) must not hide the others
            traceback.print_exc()
            r = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        r["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20 if run.cuda else None
        r["wall_seconds"] = time.monotonic() - t0
        workloads[name] = r
        tput = r.get("tokens_per_s", r.get("images_per_s"))
        print(f"  {name}: " + ("FAILED " + r["error"] if "error" in r else
                               f"{tput:,.1f} {'tokens' if 'tokens_per_s' in r else 'images'}/s"
                               f" in {r['wall_seconds']:.1f} s"), flush=True)

    results: dict[str, Any] = {
        "check": "bench/gpu_check.py", "tiny": args.tiny, **env,
        "settings": {"autocast": "bf16" if run.cuda else "bf16 for the GANs if the CPU has native bf16 kernels",
                     "cpu_bf16_kernels": None if run.cuda else training.cpu_bf16_supported(),
                     "channels_last": run.cuda, "optimizer": "models.training.adam (fused Adam where supported); "
                     "LSTM: the trainer's own optimiser", "cudnn_benchmark": torch.backends.cudnn.benchmark,
                     "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "seconds_per_workload": run.seconds,
                     "warmup_steps": run.warmup, "max_timed_steps": run.max_steps, "budget_s": args.budget,
                     "num_classes": NUM_CLASSES, "channels": 1,
                     "gan_presets": {f"gpu-{r}": gan.PRESETS[f"gpu-{r}"] for r in (64, 128)},
                     "vae_presets": {f"gpu-{r}": vae.PRESETS[f"gpu-{r}"] for r in (64, 128)},
                     "tiny_overrides": {"gan": TINY_GAN, "vae": TINY_VAE, "lstm": TINY_LSTM} if args.tiny else None},
        "workloads": workloads,
        "comparisons": comparisons(workloads),
        "total_seconds": time.monotonic() - t_run,
    }
    training.write_json(args.out, results)
    print()
    print(table(results))
    print(f"total {results['total_seconds']:.0f} s; saved {args.out}")
    failed = [n for n, r in workloads.items() if "error" in r]
    if failed:
        print(f"FAILED workloads: {', '.join(failed)}")
        return 1
    if not args.tiny and not workloads["digits_vae"].get("loss_fell"):
        print("FAILED: the digits VAE's loss did not fall")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
