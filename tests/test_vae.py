"""Conditional VAE: the discretised likelihood is a distribution, loss falls on a fixed batch, exact resume,
shapes and label dependence at 32/64 px, held-out bits/dim, and the CLI on a tiny shard. Tiny configs, CPU."""

import json
import math

import numpy as np
import pytest
import torch

from models import vae
from models.shard import split_indices, write_shard

TINY = dict(ch=8, z_dim=8, embed_dim=4, batch_size=8, checkpoint_every=3, kl_warmup_steps=4, log_interval_s=1e9,
            device="cpu", cpu_threads=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _toy(n=40, size=32, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    base = np.where(labels == 0, 40, 210)[:, None, None, None]
    images = np.clip(base + rng.integers(-25, 26, size=(n, 1, size, size)), 0, 255).astype(np.uint8)
    return images, labels


@pytest.mark.parametrize("mean, log_scale", [(0.0, -2.0), (0.7, -4.0), (-1.0, -1.0), (0.3, -6.5)])
def test_discretised_logistic_sums_to_one_over_the_256_levels(mean, log_scale):
    x = torch.arange(256, dtype=torch.float64) / 127.5 - 1.0
    lp = vae.discretized_logistic_log_prob(x, torch.full_like(x, mean), torch.full_like(x, log_scale))
    assert lp.exp().sum().item() == pytest.approx(1.0, abs=2e-3)
    assert (lp <= 1e-9).all()


def test_bits_per_dim_of_a_uniform_coder_is_8():
    assert vae.bits_per_dim(32 * 32 * math.log(256), 32 * 32) == pytest.approx(8.0)


def test_loss_decreases_on_a_fixed_batch():
    images, labels = _toy(16)
    cfg = vae.VAEConfig(num_classes=[2], **TINY)
    torch.manual_seed(0)
    model = vae.ConditionalVAE(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.from_numpy(images).float() / 127.5 - 1
    y = torch.from_numpy(labels)[:, None]
    losses = []
    for _ in range(25):
        out = model(x, y, beta=1.0)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("resolution, channels", [(32, 1), (64, 3)])
def test_sample_and_reconstruct_shapes_and_label_dependence(resolution, channels):
    cfg = vae.VAEConfig(resolution=resolution, channels=channels, num_classes=[3, 2], **TINY)
    torch.manual_seed(0)
    model = vae.ConditionalVAE(cfg).eval()
    torch.nn.init.normal_(model.dec_out.weight, std=2.0)  # the output layer starts at zero; make labels visible
    labels = np.array([[0, 1], [1, 0], [2, 1]])
    out = vae.sample(model, labels, seed=2)
    assert out.shape == (3, channels, resolution, resolution) and out.dtype == np.uint8
    assert np.array_equal(out, vae.sample(model, labels, seed=2))
    assert not np.array_equal(out, vae.sample(model, labels[[1, 2, 0]], seed=2))
    imgs = np.random.default_rng(0).integers(0, 256, (3, channels, resolution, resolution), dtype=np.uint8)
    pairs = vae.reconstruct(model, imgs, labels, np.arange(3))
    assert pairs.shape == (6, channels, resolution, resolution) and np.array_equal(pairs[0::2], imgs)


def test_train_resume_is_exact_and_heldout_bits_per_dim_improve(tmp_path):
    images, labels = _toy(48)
    train_idx, hold = np.arange(40), np.arange(40, 48)
    cfg = vae.VAEConfig(steps=6, **TINY)
    full = vae.train(images, labels, cfg, tmp_path / "full", indices=train_idx, holdout=hold)
    vae.train(images, labels, vae.VAEConfig(**{**cfg.__dict__, "steps": 3}), tmp_path / "split", indices=train_idx,
              holdout=hold)
    again = vae.train(images, labels, cfg, tmp_path / "split", indices=train_idx, holdout=hold)
    assert again["steps_this_run"] == 3 and again["steps"] == 6
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["model"]["vae"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)["model"]["vae"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert again["heldout_bits_per_dim"] == pytest.approx(full["heldout_bits_per_dim"])
    # more training gives a better held-out bound than the untrained model
    untrained = vae.ConditionalVAE(vae.load_vae(tmp_path / "full").cfg)
    before = vae.heldout_bits_per_dim(untrained, images, labels, hold)["bits_per_dim"]
    longer = vae.train(images, labels, vae.VAEConfig(**{**cfg.__dict__, "steps": 40}), tmp_path / "full",
                       indices=train_idx, holdout=hold)
    # the toy images have ~5.7 bits of noise per pixel: 40 steps beat the untrained model by bits, and a
    # uniform coder (8 bits/dim) clearly (measured: untrained 11.2, 40 steps 7.0)
    assert longer["heldout_bits_per_dim"] < before - 3, (longer["heldout_bits_per_dim"], before)
    assert longer["heldout_bits_per_dim"] < 7.5
    assert json.loads((tmp_path / "full" / "metrics.json").read_text())["steps"] == 40
    for name in ("loss_curve.png", "samples.png", "reconstructions.png"):
        assert (tmp_path / "full" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_cli_train_generate_evaluate(tmp_path, capsys):
    from pipeline.cli import main

    images, labels = _toy(40, size=16)
    shard = write_shard(tmp_path / "shard", images, labels, ["dark", "bright"])
    run = tmp_path / "run"
    assert main(["train", "vae", "--shard", str(shard), "--out", str(run), "--preset", "tiny", "--steps", "6",
                 "--holdout", "0.2"]) == 0
    assert main(["generate", "vae", "--checkpoint", str(run), "--label", "bright", "-n", "5",
                 "--out", str(tmp_path / "v.npy")]) == 0
    model = vae.load_vae(run)
    assert np.array_equal(np.load(tmp_path / "v.npy"), vae.sample(model, np.ones(5, np.int64), seed=0))  # "bright"
    capsys.readouterr()
    assert main(["evaluate", "vae", "--checkpoint", str(run), "--shard", str(shard), "--samples", "8",
                 "--no-inception", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["heldout_n_images"] == 8
    # the held-out bound is the trained model's on the 8 held-out rows, and 6 steps already beat no training
    _, hold = split_indices(40, 0.2)                                  # the CLI's split (seed 0)
    assert hold.tolist() == np.setdiff1d(np.arange(40), torch.load(run / "checkpoint.pt", weights_only=False)
                                         ["train_indices"]).tolist()
    trained = vae.heldout_bits_per_dim(model, images, labels, hold)["bits_per_dim"]
    untrained = vae.heldout_bits_per_dim(vae.ConditionalVAE(model.cfg), images, labels, hold)["bits_per_dim"]
    assert metrics["heldout_bits_per_dim"] == pytest.approx(trained) and trained < untrained - 0.1
    assert "kid_inception_vs_heldout" not in metrics
    # the judge of conditional accuracy reads the tone of real held-out figures; 6 steps copy no training image
    assert metrics["classifier_accuracy_heldout_real"] == 1.0 and metrics["memorisation_rate"] == 0.0
    assert main(["generate", "vae", "--checkpoint", str(run), "--label", "7", "-n", "2",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert main(["generate", "gan", "--checkpoint", str(run), "--label", "0", "-n", "2",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "no GAN checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("prior, stages", [("conditional", "every"), ("standard", "every")])
def test_with_the_label_in_every_decoder_stage_samples_follow_the_label_within_40_steps(tmp_path, prior, stages):
    images, labels = _toy(48)
    cfg = vae.VAEConfig(steps=40, prior=prior, label_stages=stages, **{**TINY, "checkpoint_every": 40})
    vae.train(images, labels, cfg, tmp_path)
    model = vae.load_vae(tmp_path)
    assert (model.cfg.prior, model.cfg.label_stages) == (prior, stages)
    dark, bright = (vae.sample(model, np.full(16, c), seed=1).mean() for c in (0, 1))
    assert bright - dark > 60, (dark, bright)


def test_conditional_prior_is_learned_per_class_and_sampled_from():
    cfg = vae.VAEConfig(num_classes=[3], **TINY)
    model = vae.ConditionalVAE(cfg)
    with torch.no_grad():
        model.prior_embed.embeds[0].weight[2, :cfg.z_dim] = 5.0     # class 2's prior mean: 5 in every dimension
    mu, logvar = model.prior(torch.tensor([[0], [2]]))
    assert mu[0].abs().max() == 0 and (mu[1] == 5).all() and logvar.abs().max() == 0
    # the KL is measured against that prior: an encoder mean at the prior mean costs nothing
    x = torch.zeros(1, 1, 32, 32)
    assert model(x, torch.tensor([[2]]))["kl"].item() != model(x, torch.tensor([[0]]))["kl"].item()


def test_checkpoint_from_before_the_conditional_prior_still_loads(tmp_path):
    """Checkpoints written before `prior` and `label_stages` existed were the standard-prior, input-only model."""
    images, labels = _toy(24)
    vae.train(images, labels, vae.VAEConfig(steps=2, prior="standard", label_stages="input", **TINY), tmp_path)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    for part in ("config", "arch"):
        ckpt[part] = {k: v for k, v in ckpt[part].items() if k not in ("prior", "label_stages", "free_bits", "preset")}
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    model = vae.load_vae(tmp_path)
    assert (model.cfg.prior, model.cfg.label_stages) == ("standard", "input")
    again = vae.train(images, labels, vae.VAEConfig(steps=4, prior="standard", label_stages="input", **TINY), tmp_path)
    assert again["resumed"] and again["steps_this_run"] == 2
    with pytest.raises(ValueError, match="different architecture"):
        vae.train(images, labels, vae.VAEConfig(steps=6, **TINY), tmp_path)   # today's defaults: another model


def test_free_bits_leave_the_reported_kl_alone_but_change_the_loss():
    cfg = vae.VAEConfig(num_classes=[2], **TINY)
    torch.manual_seed(0)
    model = vae.ConditionalVAE(cfg)
    x, y = torch.zeros(4, 1, 32, 32), torch.zeros(4, 1, dtype=torch.long)
    plain = model(x, y, generator=torch.Generator().manual_seed(0))
    model.cfg.free_bits = 1.0
    floored = model(x, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(plain["kl"], floored["kl"])
    assert floored["loss"].item() == pytest.approx(plain["recon"].mean().item() + cfg.z_dim * 1.0, rel=1e-4)
