"""figure_kind from the rendered picture as well as the source: a small linear model over image statistics.

Features of a figure (the mean over its stored images, each looked at as a ~128 px copy):
how much of it is white, ink and mid-tone; colour saturation and the number of distinct colours; grey-level
entropy; edge density and how smooth its non-white regions are; the share of rows and columns crossed by
long straight lines (plot axes and grids, table rules, box edges) and whether there is an axis-like pair
(a long vertical line on the left and a long horizontal one at the bottom); the aspect ratio. Source cues
beside them: raster or vector file, a tabular in the float, the number of graphics, which kind word (if any)
comes first in the caption, how many of each kind the caption has, and kind words in the graphics' file names.

Rules come first, where the source says it all: a figure drawn only in TikZ/PGF is `tikz`; a float with a
tabular and no picture is `table`. Everything else goes to the model: multinomial logistic regression
weights in `kind_model.json`, fitted by `bench/fit_kind.py` on the hand-labelled real corpus
(../shared/corpus) with a split of papers it never saw, where it is scored (README, "Quality on real data").
The model needs only numpy at run time.
"""

import io
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_FILE = Path(__file__).with_name("kind_model.json")
IMAGE_FEATURES = ("white", "ink", "midtone", "saturation", "saturated", "colours", "entropy", "edges", "smooth",
                  "hlines", "vlines", "axes", "aspect", "orient_h", "orient_v", "orient_diag", "left_band",
                  "bottom_band", *(f"grid{i}" for i in range(16)))
SOURCE_FEATURES = ("raster", "tabular", "n_graphics", "cue_plot", "cue_diagram", "cue_photo", "cue_table",
                   "words_plot", "words_diagram", "words_photo", "name_plot", "name_diagram", "name_photo")
FEATURES = IMAGE_FEATURES + SOURCE_FEATURES
SIDE = 128


def png_features(png: bytes) -> np.ndarray:
    """The IMAGE_FEATURES of a stored image (PNG bytes)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return image_features(im)


def image_features(im) -> np.ndarray:
    """The IMAGE_FEATURES of a PIL image (the rasteriser calls this before encoding, so no decode is paid)."""
    w, h = im.size
    factor = max(1, max(w, h) // SIDE)
    small = (im.reduce(factor) if factor > 1 else im).convert("RGB")  # box reduce: cheap, good enough here
    rgb = np.asarray(small, dtype=np.float32) / 255.0
    gray = rgb.mean(axis=2)
    white = gray > 0.94
    ink = gray < 0.35
    mx, mn = rgb.max(axis=2), rgb.min(axis=2)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    nonwhite = ~white
    q = (rgb * 15).astype(np.uint8)
    codes = (q[..., 0].astype(np.int32) << 8) | (q[..., 1].astype(np.int32) << 4) | q[..., 2]
    n_colours = int(np.count_nonzero(np.bincount(codes.ravel(), minlength=4096)))
    hist = np.bincount((gray * 31).astype(np.int32).ravel(), minlength=32) / gray.size
    entropy = float(-(hist[hist > 0] * np.log2(hist[hist > 0])).sum())
    gx, gy = np.abs(np.diff(gray, axis=1)), np.abs(np.diff(gray, axis=0))
    edges = (gx[:-1, :] > 0.15) | (gy[:, :-1] > 0.15)
    lap = np.abs(gray[1:-1, 1:-1] * 4 - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:])
    region = nonwhite[1:-1, 1:-1]
    smooth = float((lap[region] < 0.05).mean()) if region.any() else 0.0
    dark = gray < 0.7
    hrows = dark.mean(axis=1) > 0.6  # rows crossed by a long line (axis, rule, box edge)
    vcols = dark.mean(axis=0) > 0.6
    hh, ww = dark.shape
    axes = float(vcols[: max(1, ww // 4)].any() and hrows[-max(1, hh // 4):].any())
    # Stroke directions: curves and scatter make diagonal edges; boxes, tables and text blocks mostly
    # horizontal and vertical ones.
    dx, dy = gx[:-1, :], gy[:, :-1]
    strong = (dx + dy) > 0.15
    n_strong = max(int(strong.sum()), 1)
    ratio = dy / np.maximum(dx, 1e-6)
    orient_h = float((strong & (ratio > 2.4)).sum() / n_strong)  # edge of a horizontal stroke
    orient_v = float((strong & (ratio < 0.42)).sum() / n_strong)
    orient_diag = 1.0 - orient_h - orient_v
    band_w, band_h = max(1, ww // 8), max(1, hh // 8)
    total_ink = max(float(dark.sum()), 1.0)
    left_band = float(dark[:, :band_w].sum() / total_ink)  # tick labels and the y axis sit on the left
    bottom_band = float(dark[-band_h:, :].sum() / total_ink)
    grid = [float(dark[r * hh // 4:(r + 1) * hh // 4, c * ww // 4:(c + 1) * ww // 4].mean())
            for r in range(4) for c in range(4)]
    return np.array([
        white.mean(), ink.mean(), (nonwhite & ~ink).mean(), float(sat[nonwhite].mean()) if nonwhite.any() else 0.0,
        (sat > 0.35).mean(), np.log1p(n_colours) / np.log(4097), entropy / 5.0, edges.mean(), smooth,
        hrows.mean(), vcols.mean(), axes, np.log(max(w, 1) / max(h, 1)), orient_h, orient_v, orient_diag,
        left_band, bottom_band, *grid,
    ], dtype=np.float64)


def source_features(formats: list[str | None], has_tabular: bool, n_graphics: int, caption: str | None,
                    names: list[str]) -> np.ndarray:
    """Source cues: raster share, a tabular, how many graphics, the caption's first kind word, how many words of
    each kind the caption has, and kind words in the graphics' file names (results_loss.pdf, overview.png)."""
    from pipeline.extract.kind import caption_cue, cue_counts

    raster = sum(1 for f in formats if f in ("png", "jpg", "gif", "tiff", "bmp", "webp")) / max(len(formats), 1)
    cue = caption_cue(caption)
    words = cue_counts(caption or "")
    stems = " ".join(n.rsplit("/", 1)[-1].rsplit(".", 1)[0].replace("_", " ").replace("-", " ") for n in names)
    in_names = cue_counts(stems)
    return np.array([raster, float(has_tabular), min(n_graphics, 8) / 8.0,
                     *(float(cue == k) for k in ("plot", "diagram", "photo", "table")),
                     *(min(words[k], 3) / 3.0 for k in ("plot", "diagram", "photo")),
                     *(float(in_names[k] > 0) for k in ("plot", "diagram", "photo"))], dtype=np.float64)


@lru_cache(maxsize=1)
def _model() -> dict | None:
    if not MODEL_FILE.is_file():
        return None
    m = json.loads(MODEL_FILE.read_text())
    return {"classes": m["classes"], "mean": np.array(m["mean"]), "scale": np.array(m["scale"]),
            "coef": np.array(m["coef"]), "intercept": np.array(m["intercept"]), "features": m["features"]}


def predict(features: np.ndarray) -> str | None:
    """The most likely kind for a FEATURES vector, or None when no model is installed."""
    m = _model()
    if m is None or list(m["features"]) != list(FEATURES):
        return None
    z = (features - m["mean"]) / m["scale"]
    logits = m["coef"] @ z + m["intercept"]
    return m["classes"][int(np.argmax(logits))]
