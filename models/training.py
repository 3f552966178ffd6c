"""Trainer utilities shared by every model: device, autocast, seeding, checkpoints, budgets, progress, metrics.

Nothing here knows about a particular model. A trainer typically does::

    device = pick_device(config.device)
    seed_everything(config.seed)
    ckpt = CheckpointManager(out_dir, every=500)
    state = ckpt.load_latest()            # None on a fresh run
    budget = Budget(steps=config.steps, minutes=config.minutes)
    progress = Progress(total_steps=config.steps, budget=budget)
    while not budget.done(step):
        with autocast(device):
            ...
        progress.update(step)
        ckpt.maybe_save(step, lambda: {...})
    ckpt.save(step, {...})                # always at the end
    write_metrics(out_dir, metrics)
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forge_common import ProgressLog, atomic_write

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"


# ---------------------------------------------------------------------------------------------------------
# Device, precision, seeding
# ---------------------------------------------------------------------------------------------------------

def pick_device(pref: str = "auto") -> torch.device:
    """`auto` -> CUDA when available, else CPU; `cpu`, `cuda`, `cuda:1` are taken as given.

    Asking for CUDA on a machine without it is a configuration mistake, so it raises ValueError
    (callers that face users turn it into a UserError).
    """
    pref = (pref or "auto").strip().lower()
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(pref)
    except RuntimeError:
        raise ValueError(f"unknown device {pref!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {pref!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {pref!r} requested but CUDA is not available; use --device cpu or auto")
    return device


# The presets a trainer uses when none is named: the GPU ones where CUDA is, the CPU ones elsewhere.
DEFAULT_PRESETS = {"gan": ("gpu-128", "cpu-64"), "vae": ("gpu-128", "cpu-64"), "lstm": ("arxiv-gpu", "arxiv-cpu")}


def default_preset(kind: str, device: str = "auto") -> str:
    """`gpu-128`/`arxiv-gpu` when `device` resolves to CUDA, else `cpu-64`/`arxiv-cpu`."""
    gpu, cpu = DEFAULT_PRESETS[kind]
    return gpu if pick_device(device).type == "cuda" else cpu


def check_choice(what: str, value: Any, allowed) -> Any:
    """`value` if it is one of `allowed`, else a ValueError that lists them (for config fields taking names)."""
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, allowed))}")
    return value


def cpu_bf16_supported() -> bool:
    """True when oneDNN has native bf16 kernels here (AVX512-BF16 or AMX); elsewhere CPU bf16 is emulated and
    slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device, enabled: bool = True, cpu: bool = False) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (no loss scaling needed, unlike fp16). On the CPU only when the caller asks
    (`cpu=True`) and the CPU has native bf16 kernels: there a 32 px GAN step is 1.65x faster (measured on this
    machine's AVX512-BF16 EPYC); without them bf16 is emulated and slower, so it stays off."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    if enabled and cpu and device.type == "cpu" and cpu_bf16_supported():
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op CPU threads. `None` = auto: keep torch's default (one per core) unless the machine is
    already busy (1-minute load average >= cores), then use 1 thread. On a shared 2-core box, OpenMP threads
    that spin-wait for a core another process holds made a training step 4x slower with 2 threads than with 1
    (measured here at load ~9). Returns the thread count in effect."""
    if threads is None:
        env = os.environ.get("ARXIV_FORGE_THREADS")
        if env:
            threads = int(env)
        else:
            cores = os.cpu_count() or 1
            try:
                busy = os.getloadavg()[0] >= cores
            except OSError:
                busy = False
            threads = 1 if busy else torch.get_num_threads()
    threads = max(1, int(threads))
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
        log.info("using %d CPU thread(s) for torch", threads)
    return threads


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) so a run is reproducible on the same hardware."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def fit_labels(cfg: Any, images: np.ndarray, labels: np.ndarray,
               class_names: list[list[str]] | None) -> np.ndarray:
    """Fill an image config's data-dependent fields (channels, classes per label column, class names) from
    the data, and return the labels as int64 N x K."""
    labels = np.asarray(labels, dtype=np.int64)
    labels = labels[:, None] if labels.ndim == 1 else labels
    cfg.channels = int(images.shape[1])
    if not cfg.num_classes:
        cfg.num_classes = [int(labels[:, k].max()) + 1 for k in range(labels.shape[1])]
    if class_names:
        cfg.class_names = [list(c) for c in class_names]
    elif not cfg.class_names:
        cfg.class_names = [[str(i) for i in range(n)] for n in cfg.num_classes]
    return labels


def start(cfg: Any) -> torch.device:
    """The device for a config's `device` preference, CPU threads set (`cpu_threads`), every RNG seeded."""
    device = pick_device(cfg.device)
    if device.type == "cpu":
        configure_threads(cfg.cpu_threads or None)
    seed_everything(cfg.seed)
    return device


def rng_state() -> dict[str, Any]:
    """All RNG states a training loop consumes, so a resumed run continues exactly like an unbroken one."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def adam(params, **kwargs: Any) -> torch.optim.Adam:
    """Adam with the fused kernel when this torch supports it for the parameters' device (CPU and CUDA in
    torch >= 2.4): one kernel per step instead of ~6 small ops per parameter tensor, which matters on a busy CPU
    where every small op pays thread-synchronisation latency. Same maths as the default implementation."""
    params = list(params)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, **kwargs)


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------------------
# Atomic files (forge_common.atomic_write: temp file in the same folder, fsync, os.replace)
# ---------------------------------------------------------------------------------------------------------

def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean_floats(value: Any) -> Any:
    """JSON has no NaN/Infinity; write them as null so every JSON reader accepts the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_floats(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> Path:
    text = json.dumps(_clean_floats(json.loads(json.dumps(data, default=_json_default))), indent=2, sort_keys=True)
    atomic_write(path, text + "\n")
    return Path(path)


def write_metrics(out_dir: Path, metrics: dict[str, Any], name: str = METRICS_NAME) -> Path:
    """Write (replace) out_dir/metrics.json atomically; numpy/torch scalars are converted, NaN -> null."""
    return write_json(Path(out_dir) / name, metrics)


def read_metrics(out_dir: Path, name: str = METRICS_NAME) -> dict[str, Any]:
    path = Path(out_dir) / name
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


# ---------------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------------

def load_latest(out_dir: Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The last checkpoint written to out_dir (a dict with at least `step`), or None if there is none."""
    path = Path(out_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    # weights_only=False: the checkpoint holds RNG states (tuples, numpy arrays) and config dicts we wrote.
    return torch.load(path, map_location=map_location, weights_only=False)


class CheckpointManager:
    """Saves out_dir/checkpoint.pt atomically every `every` steps and on demand.

    The state is built lazily by a callable so the cost (state_dict copies) is paid only when saving.
    RNG states are added automatically; `restore_rng(state)` puts them back on resume.
    """

    def __init__(self, out_dir: Path, every: int = 500, on_save: Callable[[Path], None] | None = None):
        self.out_dir = Path(out_dir)
        self.every = max(int(every), 0)
        self.path = self.out_dir / CHECKPOINT_NAME
        self.last_saved_step: int | None = None
        self.on_save = on_save  # e.g. copy the checkpoint to durable storage, so another machine can resume

    def load_latest(self, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        return load_latest(self.out_dir, map_location)

    def save(self, step: int, state: dict[str, Any]) -> Path:
        payload = dict(state)
        payload["step"] = int(step)
        payload["rng"] = rng_state()
        payload["saved_at"] = time.time()
        atomic_torch_save(payload, self.path)
        self.last_saved_step = int(step)
        log.debug("checkpoint saved at step %d -> %s", step, self.path)
        if self.on_save is not None:
            self.on_save(self.path)
        return self.path

    def maybe_save(self, step: int, make_state: Callable[[], dict[str, Any]]) -> bool:
        """Save when `step` is a positive multiple of `every`; returns whether it saved."""
        if self.every and step > 0 and step % self.every == 0 and step != self.last_saved_step:
            self.save(step, make_state())
            return True
        return False

    @staticmethod
    def restore_rng(state: dict[str, Any]) -> None:
        if "rng" in state:
            set_rng_state(state["rng"])


# ---------------------------------------------------------------------------------------------------------
# Budget and progress
# ---------------------------------------------------------------------------------------------------------

class Budget:
    """A step budget, a wall-clock budget, or both; `done(step)` says when to stop cleanly.

    The clock starts at construction (or `start()`); a resumed run gets a fresh wall-clock budget,
    while the step budget counts total steps including those done before the crash.
    """

    def __init__(self, steps: int | None = None, minutes: float | None = None):
        if steps is None and minutes is None:
            raise ValueError("give a step budget, a time budget in minutes, or both")
        if steps is not None and steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if minutes is not None and minutes <= 0:
            raise ValueError(f"minutes must be > 0, got {minutes}")
        self.steps = steps
        self.minutes = minutes
        self.started = time.monotonic()

    def start(self) -> Budget:
        self.started = time.monotonic()
        return self

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def seconds(self) -> float | None:
        return None if self.minutes is None else self.minutes * 60.0

    def time_up(self) -> bool:
        return self.seconds is not None and self.elapsed >= self.seconds

    def done(self, step: int) -> bool:
        return (self.steps is not None and step >= self.steps) or self.time_up()

    def reason(self, step: int) -> str:
        if self.steps is not None and step >= self.steps:
            return f"step budget reached ({self.steps})"
        if self.time_up():
            return f"time budget reached ({self.minutes:g} min)"
        return "not done"


class Progress(ProgressLog):
    """forge_common.ProgressLog for training loops, every `interval` seconds (INFO), quiet otherwise:

        gan: 1,200/5,000 steps (24.0%), 2.3 steps/s, 148 images/s, ETA 27m32s, d_loss 0.5123, g_loss 1.204

    The rate is measured over the last interval (it changes after warm-up), not since the start; the ETA is
    the nearer of the step budget and the wall-clock budget; `items_per_step` adds an items/s rate.
    """

    def __init__(self, total_steps: int | None = None, budget: Budget | None = None, interval: float = 10.0,
                 items_per_step: int = 0, name: str = "train", logger: logging.Logger | None = None,
                 items: str = "items"):
        super().__init__(name, total_steps, unit="steps", interval=interval, start=None,
                         emit=(logger or log).info, rates={items: items_per_step} if items_per_step else None)
        self.total_steps, self.budget, self.items_per_step = total_steps, budget, items_per_step
        self.steps_per_s = 0.0
        self._window: tuple[float, float] | None = None  # (step, time) where the current interval began

    def rate(self, done: float, elapsed: float) -> float:
        now = time.monotonic()
        step0, t0 = self._window or (self.start or 0, self.t0)
        self.steps_per_s = (done - step0) / max(now - t0, 1e-9)
        self._window = (done, now)
        return self.steps_per_s

    def eta(self, done: float, rate: float) -> float | None:
        candidates = [e for e in (super().eta(done, rate),) if e is not None]
        if self.budget is not None and self.budget.seconds is not None:
            candidates.append(max(self.budget.seconds - self.budget.elapsed, 0.0))
        return min(candidates) if candidates else None


# ---------------------------------------------------------------------------------------------------------
# EMA and plots
# ---------------------------------------------------------------------------------------------------------

class EMA:
    """Exponential moving average of a module's parameters (buffers are copied), as used for GAN generators."""

    def __init__(self, module: torch.nn.Module, decay: float = 0.999):
        import copy

        self.decay = decay
        self.shadow = copy.deepcopy(module).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: torch.nn.Module, decay: float | None = None) -> None:
        d = self.decay if decay is None else decay
        for s, p in zip(self.shadow.parameters(), module.parameters(), strict=True):
            s.lerp_(p.detach(), 1.0 - d)
        for s, b in zip(self.shadow.buffers(), module.buffers(), strict=True):
            s.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shadow.load_state_dict(state)


def save_loss_curve(history: dict[str, list[float]], path: Path, title: str = "training loss",
                    smooth: int = 0) -> Path:
    """One line per series (x = index in the list); optional moving-average smoothing. Uses the Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # the OO API needs no pyplot global state (thread-safe)

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for name, values in history.items():
        y = np.asarray([v for v in values], dtype=np.float64)
        if y.size == 0:
            continue
        if smooth and y.size > smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
        ax.plot(np.arange(y.size), y, label=name, linewidth=1)
    ax.set_xlabel("step")
    ax.set_title(title)
    if history:
        ax.legend(loc="best")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path


@contextlib.contextmanager
def eval_mode(*modules: torch.nn.Module) -> Iterator[None]:
    """Temporarily switch modules to eval mode and restore their previous mode afterwards."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)
