"""The one way to make a training config: the CLI, the Dagster assets and the benchmarks all call `build`.

    cfg = build("gan", preset="auto", device="auto", minutes=10, batch_size=64)

Rules, the same everywhere:
- `preset="auto"` picks the hardware's preset: the GPU one where `device` resolves to CUDA, the CPU one elsewhere
  (`gpu-128`/`cpu-64` for images, `arxiv-gpu`/`arxiv-cpu` for text). With a `resolution` for an image model it
  picks the preset of that size for the hardware (cpu-small for 32 px, cpu-64 above; gpu-64, gpu-128, gpu-256).
- Budget: giving any of the budget fields (steps, minutes; epochs for text) replaces the preset's whole budget,
  so `minutes=10` means ten minutes, not "ten minutes or the preset's 2,000 steps".
- Every other keyword overrides one config field; None means "not given". An unknown field, preset, device or
  choice is a ValueError naming the allowed values (callers facing users show it as it is).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from models import gan, lstm, training, vae

KINDS = ("gan", "vae", "lstm")
BUDGET_FIELDS = {"gan": ("steps", "minutes"), "vae": ("steps", "minutes"), "lstm": ("steps", "epochs", "minutes")}


def presets(kind: str) -> dict[str, Any]:
    training.check_choice("model kind", kind, KINDS)
    return {"gan": gan.PRESETS, "vae": vae.PRESETS, "lstm": lstm.PRESETS}[kind]


def resolve_preset(kind: str, preset: str | None, device: str = "auto", resolution: int | None = None) -> str:
    """The preset name a run uses: `auto` (or None) resolved for the device (and image size), else checked."""
    name = preset or "auto"
    training.check_choice("model kind", kind, KINDS)
    if name != "auto":
        return training.check_choice(f"{kind} preset", name, ["auto", *presets(kind)])
    cuda = training.pick_device(device).type == "cuda"
    if kind == "lstm" or not resolution:
        return training.default_preset(kind, device)
    if cuda:
        return "gpu-64" if resolution <= 64 else "gpu-128" if resolution <= 128 else "gpu-256"
    return "cpu-small" if resolution <= 32 else "cpu-64"


def build(kind: str, preset: str | None = "auto", device: str = "auto", **overrides: Any):
    """A GANConfig, VAEConfig or LSTMConfig: the preset, then the overrides (None = not given), checked."""
    name = resolve_preset(kind, preset, device, overrides.get("resolution"))
    given = {k: v for k, v in overrides.items() if v is not None}
    budget = BUDGET_FIELDS[kind]
    if any(k in given for k in budget):
        given = {**{k: None for k in budget}, **given}
    if given.get("steps") is not None and given["steps"] < 0:
        raise ValueError("steps must be >= 0")
    if given.get("minutes") is not None and given["minutes"] <= 0:
        raise ValueError("minutes must be > 0")
    training.pick_device(device)   # a bad or missing device fails here, before any data is read
    if kind == "lstm":
        return lstm.preset_config(name, **given, device=device).check()
    cls = gan.GANConfig if kind == "gan" else vae.VAEConfig
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"unknown {kind} config field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    cfg = cls(**{**presets(kind)[name], **given, "device": device, "preset": name})
    # the choice fields are checked now; the data-dependent ones (classes, channels) when training starts
    dataclasses.replace(cfg, num_classes=cfg.num_classes or [1]).validate()
    return cfg
