"""Latent walks: label A -> B columns blend the conditioning, latent rows stay in label A; the CLI writes the grid
and training writes one for the UI."""

import numpy as np
import pytest
import torch
from PIL import Image

from models import gan, latent_walk, vae
from models.shard import write_shard


def _two_tones(n=48):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    base = np.where(labels == 0, 30, 220)[:, None, None, None]
    return np.clip(base + rng.integers(-20, 21, size=(n, 1, 32, 32)), 0, 255).astype(np.uint8), labels


def test_slerp_ends_at_its_endpoints_and_keeps_the_norm_of_orthogonal_unit_vectors():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert torch.allclose(latent_walk.slerp(a, b, 0.0), a) and torch.allclose(latent_walk.slerp(a, b, 1.0), b)
    assert latent_walk.slerp(a, b, 0.5).norm().item() == pytest.approx(1.0)
    assert torch.allclose(latent_walk.slerp(a, a, 0.3), a)


def test_default_pair_is_the_two_largest_classes():
    labels = np.array([[2, 0], [2, 1], [0, 1], [2, 0], [1, 1], [1, 0]])
    assert latent_walk.default_pair(labels) == ([2, 0], [1, 1])
    assert latent_walk.default_pair(np.zeros((5, 1), np.int64)) is None


@pytest.mark.parametrize("kind", ["gan", "vae"])
def test_a_trained_model_walks_from_dark_to_bright(tmp_path, kind):
    images, labels = _two_tones()
    if kind == "gan":
        cfg = gan.GANConfig(g_ch=8, d_ch=8, z_dim=16, embed_dim=16, batch_size=8, steps=80, lr_g=5e-4, lr_d=5e-4,
                            ema_start=1000, checkpoint_every=80, standing_stats_batches=2, device="cpu", cpu_threads=1)
        gan.train(images, labels, cfg, tmp_path)
        model, module = gan.load_generator(tmp_path), gan
    else:
        cfg = vae.VAEConfig(ch=8, z_dim=8, embed_dim=4, batch_size=8, steps=40, kl_warmup_steps=4, checkpoint_every=40,
                            device="cpu", cpu_threads=1)
        vae.train(images, labels, cfg, tmp_path)
        model, module = vae.load_vae(tmp_path), vae
    grid = module.walk(model, [0], [1], steps=6, rows=3, seed=0)
    assert grid.shape == (36, 1, 32, 32) and grid.dtype == np.uint8
    brightness = grid.reshape(6, 6, -1).mean(2)          # 6 rows (3 label walks, 3 latent walks) x 6 columns
    label_rows, latent_rows = brightness[:3], brightness[3:]
    assert (label_rows[:, -1] - label_rows[:, 0] > 60).all(), label_rows     # dark (A) -> bright (B)
    assert (latent_rows < label_rows[:, -1:].min() - 60).all(), latent_rows  # the latent walk stays dark (A)
    # training writes the final model's walk for the UI: 8 steps x (4 label + 4 latent rows) of 64 px cells
    with Image.open(tmp_path / "latent_walk.png") as im:
        assert im.size == (8 * 66 + 2, 8 * 66 + 2)
        png = np.asarray(im.convert("L"), dtype=float)
    cells = png[2:, 2:].reshape(8, 66, 8, 66)[:, :64, :, :64].mean(axis=(1, 3))   # 8 x 8 cell brightness
    assert (cells[:4, -1] - cells[:4, 0] > 60).all(), cells.round()               # label rows: dark -> bright


def test_cli_interpolate_writes_a_grid(tmp_path, capsys):
    from pipeline.cli import main

    images, labels = _two_tones(40)
    shard = write_shard(tmp_path / "shard", images, labels, ["dark", "bright"])
    run = tmp_path / "run"
    assert main(["train", "vae", "--shard", str(shard), "--out", str(run), "--preset", "tiny", "--steps", "4"]) == 0
    out = tmp_path / "walk.png"
    assert main(["generate", "vae", "--checkpoint", str(run), "--interpolate", "dark", "bright", "--steps", "5",
                 "--rows", "2", "--out", str(out)]) == 0
    assert "2 rows from dark to bright" in capsys.readouterr().out
    with Image.open(out) as im:      # 5 columns x 4 rows of 64 px cells (32 px upscaled) with 2 px padding
        assert im.size == (5 * 66 + 2, 4 * 66 + 2)
    assert main(["generate", "vae", "--checkpoint", str(run), "--interpolate", "dark", "grey",
                 "--out", str(out)]) == 2
    assert "not a class of this model" in capsys.readouterr().err
    assert main(["generate", "vae", "--checkpoint", str(run), "--interpolate", "dark", "bright",
                 "--out", str(tmp_path / "w.npy")]) == 2
