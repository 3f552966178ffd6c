"""The one training loop of every model: resume, budget, checkpoints, loss history, progress.

A model plugs in a `Job`: its step function (one optimisation step, returning the scalars to record) and how
to save and restore its own state (weights, optimisers, data position). The loop owns everything else::

    job = Job(kind="vae", step=step, state=lambda: {...}, load=restore, config=asdict(cfg), arch=cfg.arch())
    result = run(job, out, Schedule(steps=2000, minutes=None, checkpoint_every=500), items_per_step=64)

Checkpoint layout (checkpoint.pt, written atomically by CheckpointManager): {"kind", "step", "model":
job.state(), "config", "arch", "history", "train_seconds", "cpu_seconds", "rng", **job.extra()}. This is the
layout the GAN and VAE have written since the first release, so their old checkpoints resume; a checkpoint of
another kind or without a kind is refused with a message that says what to do (models with an older layout
convert theirs with `Job.upgrade`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from models import training

log = logging.getLogger(__name__)


class CheckpointMismatch(ValueError):
    """The output directory holds a checkpoint this run cannot continue (another model or architecture)."""


@dataclass
class Job:
    kind: str                                       # "gan" | "vae" | "lstm": logs, progress, checkpoint kind
    step: Callable[[int], dict[str, Any]]           # step(index) -> scalars (tensors are fine: read in batches)
    state: Callable[[], dict[str, Any]]             # the model's part of a checkpoint
    load: Callable[[dict[str, Any]], None]          # restore it
    config: dict[str, Any]                          # saved so loaders can rebuild the model
    arch: dict[str, Any]                            # must match to resume
    legacy_arch: dict[str, Any] = field(default_factory=dict)   # arch values of checkpoints older than a key
    extra: Callable[[], dict[str, Any]] | None = None            # more top-level checkpoint entries
    upgrade: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None  # old layout -> this one
    progress_values: Callable[[dict[str, list[float]]], dict[str, float]] | None = None
    finish: Callable[[], None] | None = None        # after the last step, before the final checkpoint


@dataclass
class Schedule:
    steps: int | None
    minutes: float | None
    checkpoint_every: int = 500
    history_every: int = 10                         # steps averaged into one history point
    log_interval_s: float = 15.0


@dataclass
class Result:
    step: int
    start_step: int
    history: dict[str, list[float]]
    run_seconds: float                              # this process's wall time in the loop
    train_seconds: float                            # summed over every run of this checkpoint
    cpu_seconds: float
    stop_reason: str
    resumed: bool

    @property
    def steps_this_run(self) -> int:
        return self.step - self.start_step


def resume(job: Job, ckpt: training.CheckpointManager, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint in the output directory, checked and loaded into the job; None on a fresh run."""
    saved = ckpt.load_latest(map_location=device)
    if saved is None:
        return None
    if job.upgrade is not None:
        saved = job.upgrade(saved) or saved
    if saved.get("kind") != job.kind:
        raise CheckpointMismatch(
            f"{ckpt.path} is not a {job.kind} checkpoint of this version (kind {saved.get('kind')!r}); "
            "use a new output directory, or --fresh to start over")
    theirs = {**{k: v for k, v in job.legacy_arch.items() if k in job.arch}, **saved.get("arch", {})}
    diff = {k: (theirs.get(k), v) for k, v in job.arch.items() if theirs.get(k) != v}
    if diff:
        raise CheckpointMismatch(f"checkpoint in the output directory has a different architecture {diff}; "
                                 "use a new --out directory or the same settings")
    job.load(saved["model"])
    ckpt.restore_rng(saved)      # last: building models and optimisers consumes random numbers
    ckpt.last_saved_step = int(saved["step"])
    log.info("resuming %s training from %s at step %d", job.kind.upper(), ckpt.path, saved["step"])
    return saved


def run(job: Job, out: Path, schedule: Schedule, *, device: torch.device, items_per_step: int,
        on_checkpoint: Callable[[Path], None] | None = None, total_steps: int | None = None) -> Result:
    """Train `job` until its budget ends (steps or minutes, whichever first), checkpointing on the way and at
    the end. `total_steps` overrides schedule.steps for the budget (the LSTM derives it from epochs)."""
    out.mkdir(parents=True, exist_ok=True)
    ckpt = training.CheckpointManager(out, every=schedule.checkpoint_every, on_save=on_checkpoint)
    saved = resume(job, ckpt, device)
    history: dict[str, list[float]] = dict(saved.get("history", {})) if saved else {}
    step = int(saved["step"]) if saved else 0
    before = float(saved.get("train_seconds", 0.0)) if saved else 0.0
    cpu_before = float(saved.get("cpu_seconds", 0.0)) if saved else 0.0
    steps = schedule.steps if total_steps is None else total_steps
    budget = training.Budget(steps=steps, minutes=schedule.minutes)
    progress = training.Progress(total_steps=steps, budget=budget, interval=schedule.log_interval_s,
                                 items_per_step=items_per_step, name=job.kind, logger=log)
    t0, c0, start_step = time.monotonic(), time.process_time(), step

    def state() -> dict[str, Any]:
        return {"kind": job.kind, "model": job.state(), "config": job.config, "arch": job.arch,
                "history": history, "train_seconds": before + time.monotonic() - t0,
                "cpu_seconds": cpu_before + time.process_time() - c0, **(job.extra() if job.extra else {})}

    sums: dict[str, Any] = {}
    n = 0

    def flush() -> None:
        nonlocal sums, n
        for k, v in sums.items():   # one device sync per history point, not per step
            history.setdefault(k, []).append(float(v) / n)
        sums, n = {}, 0

    while not budget.done(step):
        stats = job.step(step)
        step += 1
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v)
        n += 1
        if n >= schedule.history_every:
            flush()
        shown = job.progress_values(history) if job.progress_values else {k: v[-1] for k, v in history.items() if v}
        progress.update(step, **shown)
        ckpt.maybe_save(step, state)
    if n:
        flush()
    reason = budget.reason(step)
    if job.finish is not None:
        job.finish()
    ckpt.save(step, state())
    log.info("%s training stopped at step %d: %s", job.kind, step, reason)
    run_seconds = time.monotonic() - t0
    return Result(step=step, start_step=start_step, history=history, run_seconds=run_seconds,
                  train_seconds=before + run_seconds, cpu_seconds=cpu_before + time.process_time() - c0,
                  stop_reason=reason, resumed=saved is not None)


def summary(result: Result, items_per_step: int, unit: str) -> dict[str, Any]:
    """The loop's figures for metrics.json: steps, budget reason, time and `{unit}_per_second` of this run."""
    return {"steps": result.step, "steps_this_run": result.steps_this_run, "stop_reason": result.stop_reason,
            "train_seconds": result.train_seconds, "resumed": result.resumed,
            f"{unit}_per_second": (result.steps_this_run * items_per_step / result.run_seconds
                                   if result.run_seconds > 0 else None)}
