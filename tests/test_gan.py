"""Conditional GAN: shapes at 32/64 px, conditioning, loss decrease, exact resume (in-process and after a kill),
and the CLI end to end on a tiny shard. Tiny configs, CPU."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from models import classifier as clf
from models import gan
from models.shard import write_shard

REPO = Path(__file__).resolve().parents[1]
TINY = dict(g_ch=8, d_ch=8, z_dim=16, embed_dim=16, batch_size=8, checkpoint_every=3, standing_stats_batches=2,
            log_interval_s=1e9, device="cpu", cpu_threads=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _toy(n=48, size=16, seed=0):
    """Two visually distinct classes: dark images (class 0) and bright images (class 1), plus a second column."""
    rng = np.random.default_rng(seed)
    labels = np.stack([np.arange(n) % 2, np.arange(n) % 3], 1)
    base = np.where(labels[:, 0] == 0, 30, 220)[:, None, None, None]
    images = np.clip(base + rng.integers(-20, 21, size=(n, 1, size, size)), 0, 255).astype(np.uint8)
    return images, labels


@pytest.mark.parametrize("resolution, channels", [(32, 1), (64, 3)])
def test_sample_shapes_and_label_dependence(resolution, channels):
    cfg = gan.GANConfig(resolution=resolution, channels=channels, num_classes=[3, 2], attention_res=16, **TINY)
    G = gan.Generator(cfg).eval()
    labels = np.array([[0, 0], [1, 1], [2, 0], [2, 1]])
    out = gan.sample(G, labels, seed=5)
    assert out.shape == (4, channels, resolution, resolution) and out.dtype == np.uint8
    assert np.array_equal(out, gan.sample(G, labels, seed=5))          # deterministic for a seed
    same_z_other_label = gan.sample(G, labels[[1, 0, 3, 2]], seed=5)
    assert not np.array_equal(out, same_z_other_label)                 # the label changes the image
    D = gan.Discriminator(cfg).eval()          # eval: no spectral-norm power iteration between the two calls
    x = torch.randn(4, channels, resolution, resolution)
    with torch.no_grad():
        scores = D(x, torch.as_tensor(labels))
        assert scores.shape == (4,) and torch.equal(scores, D(x, torch.as_tensor(labels)))
        assert not torch.allclose(scores, D(x, torch.as_tensor(labels[[1, 0, 3, 2]])))  # D judges image and label


def test_discriminator_and_generator_losses_decrease_on_a_fixed_batch():
    images, labels = _toy()
    cfg = gan.GANConfig(resolution=32, channels=1, num_classes=[2, 3], diffaug="", lr_d=1e-3, lr_g=1e-3, **TINY)
    torch.manual_seed(0)
    tr = gan.GANTrainer(cfg, torch.device("cpu"))
    real = torch.nn.functional.interpolate(torch.from_numpy(images[:16]).float() / 127.5 - 1, size=32)
    y = torch.from_numpy(labels[:16])
    torch.manual_seed(1)
    d_losses = [float(tr.d_step(real, y)["d_loss"]) for _ in range(12)]
    assert d_losses[-1] < d_losses[0] - 0.1, d_losses
    # G against a frozen D: fixed z is not possible inside g_step, but the mean over steps must fall
    g_losses = [float(tr.g_step(y)["g_loss"]) for _ in range(12)]
    assert np.mean(g_losses[-4:]) < np.mean(g_losses[:4]), g_losses


@pytest.mark.parametrize("n_dis", [1, 2])
def test_a_training_step_runs_the_generator_forward_once_per_discriminator_update(n_dis):
    """The step's cost: the last D update's fakes are reused for the G update (one G forward fewer), and the
    G update leaves no weight gradients on D (they would only be thrown away)."""
    cfg = gan.GANConfig(resolution=32, channels=1, num_classes=[2], n_dis=n_dis, **TINY)
    tr = gan.GANTrainer(cfg, torch.device("cpu"))
    calls = []
    tr.G.register_forward_hook(lambda *_: calls.append(1))
    batch = (torch.rand(8, 1, 32, 32) * 2 - 1, torch.zeros(8, 1, dtype=torch.long))
    g_before = [p.detach().clone() for p in tr.G.parameters()]
    stats = tr.train_step(iter([batch] * n_dis))
    assert len(calls) == n_dis
    assert set(stats) == {"d_loss", "d_real", "d_fake", "g_loss"}
    assert all(p.requires_grad for p in tr.D.parameters())          # D is trainable again after the G update
    assert any(not torch.equal(a, b) for a, b in zip(g_before, tr.G.parameters(), strict=True))  # G was updated
    tr.opt_d.zero_grad(set_to_none=True)
    tr.g_step(batch[1])
    assert all(p.grad is None for p in tr.D.parameters())


def test_old_architecture_checkpoints_are_refused_with_a_clear_message(tmp_path):
    images, labels = _toy(16)
    gan.train(images, labels[:, :1], gan.GANConfig(resolution=32, steps=1, **TINY), tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint.pt"
    saved = torch.load(ckpt, weights_only=False)
    del saved["arch"]["blocks"]                                       # as written before BLOCKS_VERSION 2
    torch.save(saved, ckpt)
    with pytest.raises(ValueError, match="older GAN architecture"):
        gan.load_generator(tmp_path / "run")
    with pytest.raises(ValueError, match="different architecture"):
        gan.train(images, labels[:, :1], gan.GANConfig(resolution=32, steps=2, **TINY), tmp_path / "run")


def test_conditioning_is_learned_on_two_distinct_classes(tmp_path):
    images, labels = _toy(64)
    cfg = gan.GANConfig(resolution=32, steps=80, lr_g=5e-4, lr_d=5e-4, ema_start=1000, **TINY)
    gan.train(images, labels[:, :1], cfg, tmp_path / "run")
    G = gan.load_generator(tmp_path / "run")
    dark = gan.sample(G, np.zeros(16, np.int64), seed=1).mean()
    bright = gan.sample(G, np.ones(16, np.int64), seed=1).mean()
    assert bright - dark > 60, (dark, bright)
    # the evaluation's conditional accuracy says so too: a classifier of real tones reads the asked tone back
    from models.evaluate import evaluate_image_model

    shard = write_shard(tmp_path / "shard", images, labels[:, :1], ["0", "1"])  # class names of in-process training
    clf.cached_classifier(tmp_path / "run", images, labels[:, :1], np.arange(len(images)), [2], epochs=15, size=16,
                          width=16)   # a small judge, where the evaluation looks for it (its default takes ~15 s)
    metrics = evaluate_image_model("gan", tmp_path / "run", shard, n_samples=32, use_inception=False, device="cpu",
                                   write=False)
    assert metrics["conditional_accuracy"] > 0.9, metrics["conditional_accuracy"]


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_continues_exactly_like_an_unbroken_run(tmp_path):
    images, labels = _toy()
    cfg = gan.GANConfig(resolution=32, steps=6, **TINY)
    full = gan.train(images, labels, cfg, tmp_path / "full")
    first = gan.train(images, labels, gan.GANConfig(**{**cfg.__dict__, "steps": 3}), tmp_path / "split")
    assert first["steps"] == 3
    second = gan.train(images, labels, cfg, tmp_path / "split")
    assert second["steps"] == 6 and second["steps_this_run"] == 3 and full["steps_this_run"] == 6
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)["model"]
    for part in ("G", "D", "G_ema"):
        assert _states_equal(a[part], b[part]), part
    assert json.loads((tmp_path / "split" / "metrics.json").read_text())["steps"] == 6
    for name in ("loss_curve.png", "samples.png"):
        assert (tmp_path / "split" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    with pytest.raises(ValueError, match="different architecture"):
        gan.train(images, labels, gan.GANConfig(**{**cfg.__dict__, "g_ch": 16}), tmp_path / "split")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


def _env() -> dict:
    return {**os.environ, "ARXIV_FORGE_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.fixture
def tiny_shard(tmp_path) -> Path:
    images, labels = _toy(40)
    return write_shard(tmp_path / "shard", images, labels, [["dark", "bright"], ["a", "b", "c"]],
                       columns=["tone", "other"])


def test_cli_killed_run_resumes_to_the_same_result(tmp_path, tiny_shard):
    common = ["train", "gan", "--shard", str(tiny_shard), "--preset", "tiny", "--steps", "24",
              "--checkpoint-every", "4", "--seed", "3"]
    # the uninterrupted reference run goes on in parallel with the run we kill
    ref = subprocess.Popen(_cli(*common, "--out", str(tmp_path / "ref")), cwd=REPO, env=_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*common, "--out", str(out)), cwd=REPO, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = torch.load(out / "checkpoint.pt", weights_only=False)["step"]
    assert 0 < killed_at < 24, f"the run was not interrupted mid-way (checkpoint at step {killed_at})"
    again = subprocess.run(_cli(*common, "--out", str(out)), cwd=REPO, env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resuming GAN training from {out / 'checkpoint.pt'} at step {killed_at}" in again.stderr
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    a = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=False)
    b = torch.load(out / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 24
    for part in ("G", "D", "G_ema"):
        assert _states_equal(a["model"][part], b["model"][part]), part


def test_cli_train_generate_evaluate(tmp_path, tiny_shard, capsys):
    # in-process: the same code path as the console script, without paying for another torch import
    from pipeline.cli import main

    run = tmp_path / "run"
    assert main(["train", "gan", "--shard", str(tiny_shard), "--out", str(run), "--preset", "tiny", "--steps", "4",
                 "--label-column", "tone", "--label-column", "other"]) == 0
    assert {"checkpoint.pt", "metrics.json", "loss_curve.png", "samples.png"} <= {p.name for p in run.iterdir()}
    assert main(["generate", "gan", "--checkpoint", str(run), "--label", "bright,c", "-n", "6",
                 "--out", str(tmp_path / "s.npy")]) == 0
    arr = np.load(tmp_path / "s.npy")
    # "bright,c" is class 1 of the first column and 2 of the second; the default seed is 0
    assert np.array_equal(arr, gan.sample(gan.load_generator(run), np.tile([1, 2], (6, 1)), seed=0))
    assert not np.array_equal(arr, gan.sample(gan.load_generator(run), np.tile([0, 2], (6, 1)), seed=0))
    assert main(["generate", "gan", "--checkpoint", str(run), "--label", "0,1", "-n", "4",
                 "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["generate", "gan", "--checkpoint", str(run), "--label", "purple,a", "-n", "4",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "not a class of this model" in capsys.readouterr().err
    assert main(["evaluate", "gan", "--checkpoint", str(run), "--shard", str(tiny_shard), "--samples", "4",
                 "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # 4 held-out images: KID would be noise, so it is absent with a note saying why
    assert metrics["n_generated"] == 4 and metrics["n_reference"] == 4
    assert metrics["kid_inception_vs_heldout"] is None and metrics["kid_note"] == "not meaningful: 4 real images < 200"
    # the judge of conditional accuracy reads the tone of real held-out figures; a 4-step generator copies nothing
    assert metrics["classifier_accuracy_heldout_real"] == 1.0
    assert metrics["conditional_accuracy"] == metrics["conditional_accuracy_per_column"][0]
    assert metrics["memorisation_rate"] == 0.0
    assert metrics["label_columns"] == ["tone", "other"]
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["kid_note"] == metrics["kid_note"] and saved["conditional_accuracy"] == metrics["conditional_accuracy"]
    assert saved["model"] == "gan"   # training metrics kept, evaluation merged in
    assert main(["train", "gan", "--shard", str(tmp_path / "nope"), "--out", str(run)]) == 2
    assert "shard directory not found" in capsys.readouterr().err


def test_cli_preset_names_match_the_models():
    from models import vae
    from pipeline.commands.image_models import PRESET_NAMES

    assert set(PRESET_NAMES) == set(gan.PRESETS) == set(vae.PRESETS)
    for name, preset in gan.PRESETS.items():
        gan.GANConfig(**preset, num_classes=[2]).validate()
        vae.VAEConfig(**vae.PRESETS[name], num_classes=[2]).validate()


@pytest.mark.parametrize("resolution", [128, 256])
def test_larger_resolutions_come_from_the_same_definition(resolution):
    cfg = gan.GANConfig(resolution=resolution, channels=3, num_classes=[4], g_ch=4, d_ch=4, z_dim=8, embed_dim=8,
                        attention_res=64)
    G, D = gan.Generator(cfg).eval(), gan.Discriminator(cfg)
    assert len(G.blocks) == len(D.blocks) - 1 == int(np.log2(resolution)) - 2
    with torch.no_grad():
        x = G(torch.randn(1, 8), torch.tensor([[2]]))
        assert x.shape == (1, 3, resolution, resolution)
        assert D(x, torch.tensor([[2]])).shape == (1,)


def test_mbstd_and_mode_seeking_train_and_old_checkpoints_without_them_still_load(tmp_path):
    images, labels = _toy(32)
    cfg = gan.GANConfig(**{**TINY, "resolution": 32, "mbstd_group": 4, "mode_seeking": 1.0, "steps": 3})
    gan.train(images, labels, cfg, tmp_path / "new")
    assert gan.load_generator(tmp_path / "new").config.mbstd_group == 4
    # a checkpoint written before these options existed: no keys in config or arch; it loads and resumes
    gan.train(images, labels, gan.GANConfig(**{**TINY, "resolution": 32, "steps": 2}), tmp_path / "old")
    ckpt = torch.load(tmp_path / "old" / "checkpoint.pt", weights_only=False)
    for part in ("config", "arch"):
        ckpt[part] = {k: v for k, v in ckpt[part].items()
                      if k not in ("mbstd_group", "mode_seeking", "mode_seeking_cap", "preset")}
    torch.save(ckpt, tmp_path / "old" / "checkpoint.pt")
    old = gan.load_generator(tmp_path / "old").config
    assert old.mbstd_group == 0 and old.mode_seeking_cap == "none"   # the older model's behaviour
    again = gan.train(images, labels, gan.GANConfig(**{**TINY, "resolution": 32, "steps": 4}), tmp_path / "old")
    assert again["resumed"] and again["steps_this_run"] == 2


def test_minibatch_std_groups_never_mix_real_and_fake_halves():
    real, fake = torch.zeros(8, 3, 4, 4), torch.randn(8, 3, 4, 4)
    std = gan.minibatch_std(torch.cat([real, fake]), group=4)
    assert std[:8].abs().max() < 1e-3 and (std[8:] > 0.1).all()


def test_capped_mode_seeking_pays_for_variety_only_up_to_the_real_images():
    """Two z that give the same image cost; two z pushed further apart than real images of a class are not paid
    for (no incentive to invert or blank a sample); the uncapped MSGAN term still pays for that."""
    cfg = gan.GANConfig(**{**TINY, "resolution": 32, "num_classes": [2], "mode_seeking": 1.0})
    trainer = gan.GANTrainer(cfg, torch.device("cpu"))
    real = torch.full((4, 1, 32, 32), -1.0)
    real[:, :, 8:24, 12:20] = torch.tensor([0.6, 1.0, 0.8, 0.4]).view(4, 1, 1, 1)   # one class, some variety
    y = torch.zeros(4, 1, dtype=torch.long)
    z = torch.randn(4, cfg.z_dim)

    def grad(fake: torch.Tensor, cap: str) -> torch.Tensor:
        trainer.cfg.mode_seeking_cap = cap
        fake = fake.clone().requires_grad_(True)
        trainer.mode_seeking_term(fake, z, real, y).backward()
        return fake.grad

    collapsed = real[[0, 1, 0, 1]] + 0.01 * torch.randn(4, 1, 32, 32)  # pairs (0, 2), (1, 3): nearly the same
    assert grad(collapsed, "real").abs().sum() > 0
    inverted = torch.cat([real[:2], -real[:2]])                    # each pair far beyond the real variety
    assert grad(inverted, "real").abs().sum() == 0
    assert grad(inverted, "none").abs().sum() > 0
    assert gan.real_pair_distance(real, y) > 0


def test_shift_augment_moves_images_and_fills_with_their_own_edges():
    """DiffAugment's translation fills the uncovered strip with 0 (mid-grey in [-1, 1]); `shift` fills it with
    the image's edge pixels, so a black-background digit stays black and a white-background plot stays white."""
    torch.manual_seed(0)
    black, white = torch.full((64, 1, 16, 16), -1.0), torch.full((64, 1, 16, 16), 1.0)
    black[:, :, 6:10, 6:10] = white[:, :, 6:10, 6:10] = 0.3                      # a mark in the middle
    for x in (black, white):
        shifted = gan.diff_augment(x, "shift")
        assert set(shifted.unique().tolist()) == set(x.unique().tolist())       # no new grey values
        assert (shifted != x).any(dim=(1, 2, 3)).float().mean() > 0.5           # most images moved
        assert torch.allclose(shifted.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # the mark is moved, not cut
    assert (gan.diff_augment(black, "translation") == 0).any()                  # the grey fill it replaces
    with pytest.raises(ValueError, match="shift"):
        gan.GANConfig(**{**TINY, "num_classes": [2], "diffaug": "shfit"}).validate()
