"""Drawing the sample figures: plots, diagrams, photo-like rasters and tables, per category style.

`draw(subkind, category, rng, wide=False)` returns a matplotlib Figure (vector kinds) or a PIL image
(photo-like rasters); `encode(drawing, fmt)` turns it into file bytes (png, jpg, pdf, eps and the odd
encodings real papers ship: RGBA PNG, 16-bit PNG, CMYK JPEG, EXIF-rotated JPEG). Output bytes are a pure
function of the inputs: no timestamps (PDF CreationDate dropped, EPS header fixed, PNGs written by Pillow).
Only the object-oriented matplotlib API is used (no pyplot global state), with the Agg canvas.
"""

import io
import logging
import re

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from PIL import Image

from pipeline.sample.styles import STYLES, Style

logging.getLogger("matplotlib.mathtext").setLevel(logging.WARNING)  # "Substituting symbol ..." per glyph

DPI = 80
SIZE = (4.0, 3.0)  # inches: 320 x 240 px at 80 dpi; small keeps the bucket and the run cheap
WIDE = (7.0, 2.6)  # figure* spans both columns
VECTOR_FORMATS = ("pdf", "eps")
_EPS_DATE = re.compile(rb"%%CreationDate: [^\n]*\n")

Drawing = Figure | Image.Image


def draw(subkind: str, category: str, rng: np.random.Generator, *, wide: bool = False) -> Drawing:
    """One figure of `subkind` (see styles.SUBKIND_TO_KIND) in the style of `category`."""
    style = STYLES[category]
    if subkind == "photo":
        return _photo(style, rng, wide)
    fig = Figure(figsize=WIDE if wide else SIZE, dpi=DPI, facecolor=style.background)
    fn = _DRAWERS[subkind]
    fn(fig, style, category, rng)
    return fig


def encode(drawing: Drawing, fmt: str) -> bytes:
    """File bytes for `fmt`: png, jpg, pdf, eps, png-rgba, png16, jpg-cmyk, jpg-exif, png-palette."""
    if isinstance(drawing, Figure):
        if fmt in VECTOR_FORMATS:
            return _save_vector(drawing, fmt)
        if fmt == "png-rgba":
            return _png(_rasterise(drawing, transparent=True), mode="RGBA")
        drawing = Image.fromarray(_rasterise(drawing)).convert("RGB")
    elif fmt in VECTOR_FORMATS:
        raise ValueError("raster drawings are saved as PNG/JPEG only")
    img = drawing.convert("RGB")
    if fmt == "png":
        return _png(np.asarray(img), mode="RGB")
    if fmt == "png-rgba":
        return _png(np.asarray(img.convert("RGBA")), mode="RGBA")
    if fmt == "png16":
        # 16-bit greyscale: naive convert('RGB') clips it, which is what an extractor must not do.
        grey = np.asarray(img.convert("L"), dtype="<u2") * 257
        buf = io.BytesIO()
        Image.frombytes("I;16", img.size, grey.tobytes()).save(buf, format="PNG")
        return buf.getvalue()
    if fmt == "png-palette":
        pal = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
        buf = io.BytesIO()
        pal.save(buf, format="PNG", transparency=0)
        return buf.getvalue()
    if fmt == "jpg":
        return _jpeg(img)
    if fmt == "jpg-cmyk":
        return _jpeg(img.convert("CMYK"))
    if fmt == "jpg-exif":
        # Stored rotated; EXIF orientation 6 says "rotate 90 CW to display", restoring the upright figure.
        exif = Image.Exif()
        exif[0x0112] = 6
        return _jpeg(img.transpose(Image.Transpose.ROTATE_90), exif=exif)
    raise ValueError(f"unknown figure format {fmt!r}")


def sketch_png(rng: np.random.Generator, label: str) -> bytes:
    """A cheap throwaway image (a few lines and a label, drawn with Pillow): for decoys and unused junk
    files, which must exist in a bundle but are never extracted, so they need not look like much."""
    from PIL import ImageDraw

    img = Image.new("RGB", (160, 120), "white")
    pen = ImageDraw.Draw(img)
    pts = [(int(x), int(y)) for x, y in zip(np.linspace(10, 150, 12), rng.uniform(20, 100, 12), strict=True)]
    pen.line(pts, fill=(40, 40, 160), width=2)
    pen.rectangle((5, 5, 154, 114), outline=(0, 0, 0))
    pen.text((10, 8), label[:24], fill=(0, 0, 0))
    return _png(np.asarray(img), mode="RGB")


def close(drawing: Drawing) -> None:
    if isinstance(drawing, Figure):
        drawing.clear()


# ---------------------------------------------------------------------------------------------- encoders


def _rasterise(fig: Figure, transparent: bool = False) -> np.ndarray:
    if transparent:
        fig.patch.set_alpha(0.0)
        for ax in fig.axes:
            ax.patch.set_alpha(0.0)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba()).copy()
    return rgba if transparent else rgba[..., :3]


def _png(arr: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8)).convert(mode).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _jpeg(img: Image.Image, exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    img.save(buf, format="JPEG", quality=85, **kwargs)
    return buf.getvalue()


def _save_vector(fig: Figure, fmt: str) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig)  # attach a canvas; savefig picks the pdf/ps backend by format
    ps_log = logging.getLogger("matplotlib.backends.backend_ps")
    level = ps_log.level
    ps_log.setLevel(logging.ERROR)  # "The PostScript backend does not support transparency" on every alpha
    try:
        if fmt == "pdf":
            fig.savefig(buf, format="pdf", metadata={"CreationDate": None, "ModDate": None})
        else:
            fig.savefig(buf, format="eps", metadata={"Creator": "matplotlib"})
    finally:
        ps_log.setLevel(level)
    data = buf.getvalue()
    if fmt == "eps":  # the PS backend stamps the wall clock unless SOURCE_DATE_EPOCH is set
        data = _EPS_DATE.sub(b"%%CreationDate: Thu Jan  1 00:00:00 1970\n", data, count=1)
    return data


# ---------------------------------------------------------------------------------------------- helpers


def _axes(fig: Figure, style: Style):
    ax = fig.add_subplot()
    ax.set_facecolor(style.background)
    for spine in ax.spines.values():
        spine.set_color(style.foreground)
    ax.tick_params(colors=style.foreground, labelsize=7)
    ax.locator_params(nbins=5)
    if style.grid:
        ax.grid(True, color=style.foreground, alpha=0.15, linewidth=0.6)
    return ax


def _margins(fig: Figure) -> None:
    """Fixed margins that fit 7-8 pt tick labels: tight_layout would cost a full text layout per figure."""
    wide = fig.get_figwidth() > 5
    fig.subplots_adjust(left=0.08 if wide else 0.15, right=0.97, bottom=0.18 if wide else 0.15, top=0.95)


def _labels(ax, style: Style, xlabel: str, ylabel: str, title: str | None = None) -> None:
    kw = {"color": style.foreground, "fontsize": 8, "family": style.font}
    ax.set_xlabel(xlabel, **kw)
    ax.set_ylabel(ylabel, **kw)
    if title:
        ax.set_title(title, **kw)


def _legend(ax, style: Style, rng) -> None:
    if rng.random() < 0.7:
        leg = ax.legend(fontsize=6, frameon=False, loc="best" if rng.random() < 0.5 else "upper right")
        for text in leg.get_texts():
            text.set_color(style.foreground)


def _pick(rng, items, k=None):
    if k is None:
        return items[int(rng.integers(len(items)))]
    idx = rng.choice(len(items), size=min(k, len(items)), replace=False)
    return [items[i] for i in idx]


_METHODS = ["Ours", "Baseline", "ResNet-50", "ViT-B", "Transformer", "LSTM", "MLP", "Random", "Oracle",
            "SGD", "Adam", "BERT", "GPT-2", "kNN", "SVM"]


def _smooth_noise(rng, h: int, w: int, octaves=(4, 8, 16), weights=(1.0, 0.5, 0.25)) -> np.ndarray:
    """Smooth value noise in [0, 1]: low-res random grids upsampled bicubically and summed."""
    out = np.zeros((h, w), np.float32)
    for cells, wgt in zip(octaves, weights, strict=True):
        small = rng.random((max(2, cells * h // max(h, w)), cells)).astype(np.float32)
        img = Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
        out += wgt * np.asarray(img, np.float32) / 255.0
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


# ---------------------------------------------------------------------------------------------- line plots


def _line(fig: Figure, style: Style, category: str, rng) -> None:
    ax = _axes(fig, style)
    pal = style.palette
    field = category.split(".")[0]
    if category.startswith("cs.") or category == "stat.ML" and rng.random() < 0.5:
        epochs = np.arange(1, 101)
        for i, name in enumerate(_pick(rng, _METHODS, int(rng.integers(2, 5)))):
            rate = rng.uniform(0.02, 0.08)
            floor = rng.uniform(0.05, 0.4)
            y = floor + (1 - floor) * np.exp(-rate * epochs) + rng.normal(0, 0.015, epochs.size)
            acc = rng.random() < 0.4
            ax.plot(epochs, 1 - y if acc else y, color=pal[i % len(pal)], lw=1.4, label=name)
        _labels(ax, style, "Epoch", "Accuracy" if rng.random() < 0.4 else "Loss")
        _legend(ax, style, rng)
    elif category == "stat.ML":
        n = np.logspace(1, 4, 30)
        for i in range(int(rng.integers(2, 4))):
            ax.loglog(n, rng.uniform(0.5, 3) * n ** -rng.uniform(0.3, 1.0), "o-", ms=3,
                      color=pal[i % len(pal)], label=f"$\\alpha={i + 1}$")
        _labels(ax, style, "$n$", "MSE")
        _legend(ax, style, rng)
    elif category == "math.PR":
        t = np.linspace(0, 1, 400)
        for i in range(int(rng.integers(3, 7))):
            ax.plot(t, np.cumsum(rng.normal(0, 0.05, t.size)), color=pal[i % len(pal)], lw=0.8)
        _labels(ax, style, "$t$", "$X_t$")
    elif category == "math.AP":
        x = np.linspace(-4, 4, 300)
        for i, tt in enumerate(sorted(rng.uniform(0.1, 2.0, int(rng.integers(3, 6))))):
            ax.plot(x, np.exp(-x**2 / (4 * tt)) / np.sqrt(4 * np.pi * tt), color=pal[i % len(pal)],
                    ls=("-", "--", ":", "-.")[i % 4], lw=1.2, label=f"$t={tt:.2f}$")
        _labels(ax, style, "$x$", "$u(x,t)$")
        _legend(ax, style, rng)
    elif field == "astro-ph":
        wl = np.linspace(3800, 7200, 800)
        flux = 1 + 0.3 * np.sin(wl / 900) + rng.normal(0, 0.03, wl.size)
        for line in (4861, 5007, 6563, 6717):
            flux += rng.uniform(0.5, 3) * np.exp(-((wl - line) / rng.uniform(4, 12)) ** 2)
        ax.plot(wl, flux, color=pal[0], lw=0.8)
        _labels(ax, style, "Wavelength [$\\AA$]", "Flux [arb.]")
    elif field == "cond-mat":
        k = np.linspace(0, 3 * np.pi, 300)
        for i in range(int(rng.integers(3, 7))):
            ax.plot(k, rng.uniform(-3, 3) + rng.uniform(0.5, 2) * np.cos(k + rng.uniform(0, 3)),
                    color=pal[i % len(pal)], lw=1.2)
        ax.set_xticks([0, np.pi, 2 * np.pi, 3 * np.pi], ["$\\Gamma$", "X", "M", "$\\Gamma$"])
        _labels(ax, style, "", "$E - E_F$ (eV)")
    elif field == "q-bio":
        t = np.linspace(0, 200, 2000)
        for i in range(int(rng.integers(2, 4))):
            v = -65 + 5 * _smooth_noise(rng, 1, t.size, (8, 32), (1.0, 0.5))[0]
            for s in rng.choice(t.size - 20, int(rng.integers(3, 9)), replace=False):
                v[s:s + 15] += 90 * np.exp(-np.arange(15) / 3.0)
            ax.plot(t, v + 120 * i, color=pal[i % len(pal)], lw=0.7)
        _labels(ax, style, "Time (ms)", "$V_m$ (mV)")
    else:  # hep-th
        phi = np.linspace(-2.2, 2.2, 300)
        for i in range(int(rng.integers(2, 5))):
            lam, v = rng.uniform(0.3, 1.5), rng.uniform(0.5, 1.5)
            ax.plot(phi, lam * (phi**2 - v**2) ** 2, color=pal[i % len(pal)], lw=1.3,
                    label=f"$\\lambda={lam:.1f}$")
        ax.set_ylim(-0.2, 4)
        _labels(ax, style, "$\\phi$", "$V(\\phi)$")
        _legend(ax, style, rng)
    _margins(fig)


# ---------------------------------------------------------------------------------------------- scatter


def _scatter(fig: Figure, style: Style, category: str, rng) -> None:
    ax = _axes(fig, style)
    pal = style.palette
    field = category.split(".")[0]
    if field == "astro-ph":
        n = 600
        color = rng.uniform(-0.2, 1.8, n)
        mag = 4 + 5 * color + rng.normal(0, 0.6, n)
        ax.scatter(color, mag, s=2, c=color, cmap=style.cmap, linewidths=0)
        ax.invert_yaxis()
        _labels(ax, style, "$B-V$", "$M_V$")
    elif field == "q-bio":
        for i in range(int(rng.integers(15, 30))):
            spikes = np.sort(rng.uniform(0, 1000, int(rng.integers(5, 40))))
            ax.scatter(spikes, np.full(spikes.size, i), s=3, marker="|", color=pal[i % 2])
        _labels(ax, style, "Time (ms)", "Neuron")
    elif field == "cond-mat":
        x = rng.uniform(0, 1, 80)
        y = 2 * x - 1 + rng.normal(0, 0.2, x.size)
        ax.scatter(x, y, s=12, color=pal[0], edgecolors=style.foreground, linewidths=0.3)
        ax.plot([0, 1], [-1, 1], color=pal[1], ls="--")
        _labels(ax, style, "DFT (eV/atom)", "Predicted (eV/atom)")
    else:  # clusters: embeddings, mixtures, samples
        for i in range(int(rng.integers(2, 6))):
            c = rng.normal(0, 3, 2)
            cov = rng.normal(0, 0.6, (2, 2))
            pts = c + rng.normal(0, 1, (int(rng.integers(40, 120)), 2)) @ (cov + np.eye(2) * 0.5)
            ax.scatter(pts[:, 0], pts[:, 1], s=5, color=pal[i % len(pal)], alpha=0.8, label=f"class {i}")
        _labels(ax, style, "$z_1$", "$z_2$")
        _legend(ax, style, rng)
    _margins(fig)


# ---------------------------------------------------------------------------------------------- bar charts


def _bar(fig: Figure, style: Style, category: str, rng) -> None:
    ax = _axes(fig, style)
    pal = style.palette
    if category == "math.PR":
        data = rng.standard_gamma(rng.uniform(1, 4), 1500)
        ax.hist(data, bins=30, density=True, color=pal[2], edgecolor=style.foreground, linewidth=0.4)
        _labels(ax, style, "$x$", "density")
    else:
        groups = _pick(rng, ["CIFAR-10", "ImageNet", "COCO", "SQuAD", "GLUE", "MNIST", "WMT", "Ours-1k"],
                       int(rng.integers(3, 6)))
        methods = _pick(rng, _METHODS, int(rng.integers(2, 4)))
        width = 0.8 / len(methods)
        x = np.arange(len(groups))
        for i, name in enumerate(methods):
            vals = rng.uniform(40, 95, len(groups))
            ax.bar(x + i * width, vals, width, yerr=rng.uniform(0.5, 4, len(groups)), color=pal[i % len(pal)],
                   label=name, capsize=1.5, error_kw={"elinewidth": 0.6})
        ax.set_xticks(x + width * (len(methods) - 1) / 2, groups, fontsize=6)
        _labels(ax, style, "", "Score (%)")
        _legend(ax, style, rng)
    _margins(fig)


# ---------------------------------------------------------------------------------------------- heatmaps


def _heatmap(fig: Figure, style: Style, category: str, rng) -> None:
    ax = _axes(fig, style)
    ax.grid(False)
    field = category.split(".")[0]
    if category in ("cs.CL", "cs.LG", "stat.ML", "cs.CV", "q-bio.NC"):
        n = int(rng.integers(5, 9))
        m = rng.random((n, n)) ** 3 + np.eye(n) * rng.uniform(0.5, 2)
        m /= m.sum(axis=1, keepdims=True)
        ax.imshow(m, cmap=style.cmap)
        if n <= 6:
            for (i, j), v in np.ndenumerate(m):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5,
                        color="white" if v > m.max() / 2 else "black")
        names = [f"w{i}" for i in range(n)] if category == "cs.CL" else [str(i) for i in range(n)]
        ax.set_xticks(range(n), names, fontsize=6)
        ax.set_yticks(range(n), names, fontsize=6)
    elif field == "astro-ph":
        pts = rng.normal(0, 1, (3000, 2)) @ rng.normal(0, 1, (2, 2))
        ax.hist2d(pts[:, 0], pts[:, 1], bins=40, cmap=style.cmap)
        _labels(ax, style, "RA offset [arcmin]", "Dec offset [arcmin]")
    else:  # fields and phase diagrams
        x, y = np.meshgrid(np.linspace(-2, 2, 120), np.linspace(-2, 2, 120))
        z = np.zeros_like(x)
        for _ in range(int(rng.integers(2, 5))):
            cx, cy, s = rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5), rng.uniform(0.3, 1.0)
            z += rng.choice([-1, 1]) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / s)
        im = ax.imshow(z, extent=(-2, 2, -2, 2), origin="lower", cmap=style.cmap)
        ax.contour(x, y, z, levels=6, colors=style.foreground, linewidths=0.4)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
        _labels(ax, style, "$x$" if field != "cond-mat" else "$T$ (K)", "$y$" if field != "cond-mat" else "$P$ (GPa)")
    _margins(fig)


# ---------------------------------------------------------------------------------------------- diagrams


_BLOCKS = {
    "cs": ["Input", "Encoder", "Attention", "Decoder", "Loss", "Backbone", "Head", "Tokenizer", "Embedding",
           "Pooling", "Classifier", "Augment", "Features", "Output"],
    "default": ["Data", "Model", "Estimator", "Sampler", "Update", "Output", "Prior", "Posterior"],
}


def _block(fig: Figure, style: Style, category: str, rng) -> None:
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 6)
    names = _BLOCKS["cs" if category.startswith("cs.") else "default"]
    n = int(rng.integers(3, 6))
    labels = _pick(rng, names, n)
    rows = 1 if rng.random() < 0.6 else 2
    xs = np.linspace(1.2, 8.8, n)
    ys = [3.0] * n if rows == 1 else [4.2 if i % 2 == 0 else 1.8 for i in range(n)]
    pal = style.palette
    for i, (x, y, label) in enumerate(zip(xs, ys, labels, strict=True)):
        ax.add_patch(FancyBboxPatch((x - 0.75, y - 0.5), 1.5, 1.0, boxstyle="round,pad=0.08",
                                    facecolor=pal[i % len(pal)], alpha=0.85, edgecolor=style.foreground))
        ax.text(x, y, label, ha="center", va="center", fontsize=6, family=style.font, color="white"
                if i % 2 == 0 else style.foreground)
        if i:
            ax.add_patch(FancyArrowPatch((xs[i - 1] + 0.75, ys[i - 1]), (x - 0.8, y), arrowstyle="-|>",
                                         mutation_scale=8, color=style.foreground, lw=1))
    if rng.random() < 0.5:  # a skip connection
        ax.add_patch(FancyArrowPatch((xs[0], ys[0] + 0.55), (xs[-1], ys[-1] + 0.55),
                                     connectionstyle="arc3,rad=-0.3", arrowstyle="-|>", mutation_scale=8,
                                     color=pal[-1], lw=1, ls="--"))


def _network(fig: Figure, style: Style, category: str, rng) -> None:
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_aspect("equal")
    pal = style.palette
    if category == "hep-th":  # a Feynman-like diagram: fermion lines, a wavy boson, vertices
        ax.set_xlim(-3, 3)
        ax.set_ylim(-2, 2)
        a, b = (-1.0, 0.0), (1.0, 0.0)
        for end in ((-2.5, 1.5), (-2.5, -1.5)):
            ax.add_patch(FancyArrowPatch(end, a, arrowstyle="-|>", mutation_scale=8, color=style.foreground))
        for end in ((2.5, 1.5), (2.5, -1.5)):
            ax.add_patch(FancyArrowPatch(b, end, arrowstyle="-|>", mutation_scale=8, color=style.foreground))
        t = np.linspace(a[0], b[0], 200)
        ax.plot(t, 0.15 * np.sin(t * rng.uniform(12, 20)), color=pal[1], lw=1.2)
        for p in (a, b):
            ax.add_patch(Circle(p, 0.07, color=style.foreground))
        ax.text(0, 0.35, "$\\gamma$", ha="center", fontsize=9)
        return
    n = int(rng.integers(8, 20))
    pts = rng.uniform(-1, 1, (n, 2))
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.2, 1.2)
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    thr = np.sort(d, axis=1)[:, min(3, n - 1)]
    for i in range(n):
        for j in range(i + 1, n):
            if d[i, j] <= thr[i]:
                ax.plot(*pts[[i, j]].T, color=style.foreground, lw=0.6, alpha=0.6, zorder=1)
    sizes = rng.uniform(40, 160, n) if category.startswith("q-bio") else np.full(n, 60)
    ax.scatter(pts[:, 0], pts[:, 1], s=sizes, c=[pal[i % len(pal)] for i in range(n)],
               edgecolors=style.foreground, linewidths=0.5, zorder=2)
    if category.startswith("math"):
        for i, p in enumerate(pts):
            ax.text(p[0], p[1] + 0.1, f"$v_{{{i}}}$", ha="center", fontsize=6, family=style.font)


# ---------------------------------------------------------------------------------------------- tables


def _table(fig: Figure, style: Style, category: str, rng) -> None:
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96))
    ax.set_axis_off()
    cols = ["Method"] + _pick(rng, ["Acc.", "F1", "BLEU", "mAP", "Time (s)", "Params", "Error"], 3)
    rows = [[name] + [f"{rng.uniform(10, 99):.1f}" for _ in cols[1:]]
            for name in _pick(rng, _METHODS, int(rng.integers(3, 7)))]
    table = ax.table(cellText=rows, colLabels=cols, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    for (r, _c), cell in table.get_celld().items():
        cell.set_edgecolor(style.foreground if r == 0 else "#bbbbbb")
        cell.set_facecolor(style.palette[0] if r == 0 else style.background)
        cell.get_text().set_color("white" if r == 0 else style.foreground)


# ---------------------------------------------------------------------------------------------- photo-like


def _photo(style: Style, rng, wide: bool) -> Image.Image:
    w, h = (int(WIDE[0] * DPI), int(WIDE[1] * DPI)) if wide else (int(SIZE[0] * DPI), int(SIZE[1] * DPI))
    if style.photo == "sky":
        return _sky(rng, w, h, style)
    if style.photo == "grains":
        return _grains(rng, w, h)
    if style.photo == "cells":
        return _cells(rng, w, h)
    # natural: a grid of photo-like tiles (the cs.CV "qualitative results" figure)
    cols, rows = (3, 2) if rng.random() < 0.6 else (1, 1)
    tile_w, tile_h = (w - 4 * (cols - 1)) // cols, (h - 4 * (rows - 1)) // rows
    canvas = Image.new("RGB", (w, h), "white")
    for r in range(rows):
        for c in range(cols):
            canvas.paste(_scene(rng, tile_w, tile_h), (c * (tile_w + 4), r * (tile_h + 4)))
    return canvas


def _scene(rng, w: int, h: int) -> Image.Image:
    """Sky gradient over textured ground with a few soft blobs: photo-like statistics, not a plot."""
    y = np.linspace(0, 1, h)[:, None, None]
    sky_top, sky_low = rng.uniform(0.3, 0.9, 3), rng.uniform(0.6, 1.0, 3)
    img = sky_top * (1 - y) + sky_low * y + np.zeros((h, w, 3))
    horizon = int(h * rng.uniform(0.45, 0.7))
    ground = rng.uniform(0.15, 0.6, 3)
    tex = _smooth_noise(rng, h - horizon, w, (6, 20, 60), (1.0, 0.6, 0.3))[..., None]
    img[horizon:] = ground * (0.6 + 0.6 * tex)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.3, 0.9) * h
        rx, ry = rng.uniform(0.05, 0.2) * w, rng.uniform(0.08, 0.25) * h
        mask = np.clip(1.5 - ((xx - cx) / rx) ** 2 - ((yy - cy) / ry) ** 2, 0, 1)[..., None]
        img = img * (1 - mask) + rng.uniform(0, 1, 3) * mask
    img += rng.normal(0, 0.02, img.shape)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))


def _sky(rng, w: int, h: int, style: Style) -> Image.Image:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.02 * _smooth_noise(rng, h, w, (4, 12), (1.0, 0.5))
    for _ in range(int(rng.integers(60, 200))):  # stars: point sources
        x, y, f = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 1.0) ** 2
        x0, y0 = int(x), int(y)
        img[max(0, y0 - 2):y0 + 3, max(0, x0 - 2):x0 + 3] += f * np.exp(
            -((xx[max(0, y0 - 2):y0 + 3, max(0, x0 - 2):x0 + 3] - x) ** 2
              + (yy[max(0, y0 - 2):y0 + 3, max(0, x0 - 2):x0 + 3] - y) ** 2) / 1.2)
    for _ in range(int(rng.integers(1, 3))):  # a galaxy: inclined exponential disc
        cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h
        ang, q, r = rng.uniform(0, np.pi), rng.uniform(0.3, 1.0), rng.uniform(8, 30)
        dx, dy = xx - cx, yy - cy
        u = dx * np.cos(ang) + dy * np.sin(ang)
        v = (-dx * np.sin(ang) + dy * np.cos(ang)) / q
        img += rng.uniform(0.5, 1.2) * np.exp(-np.sqrt(u**2 + v**2) / r)
    rgb = _cmap(style.cmap)(np.clip(np.sqrt(img), 0, 1))[..., :3]
    return Image.fromarray((rgb * 255).astype(np.uint8))


def _grains(rng, w: int, h: int) -> Image.Image:
    """Micrograph of a polycrystal: Voronoi grains with dark boundaries, greyscale."""
    sw, sh = w // 4, h // 4
    seeds = rng.uniform(0, 1, (int(rng.integers(15, 40)), 2)) * (sw, sh)
    yy, xx = np.mgrid[0:sh, 0:sw]
    d = (xx[..., None] - seeds[:, 0]) ** 2 + (yy[..., None] - seeds[:, 1]) ** 2
    labels = np.argmin(d, axis=-1)
    shade = rng.uniform(0.3, 0.9, len(seeds))[labels]
    edge = (np.diff(labels, axis=0, prepend=labels[:1]) != 0) | (np.diff(labels, axis=1, prepend=labels[:, :1]) != 0)
    small = np.where(edge, 0.1, shade)
    img = Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
    arr = np.asarray(img, np.float32) / 255 + 0.06 * _smooth_noise(rng, h, w, (30, 80), (1.0, 0.5)) - 0.03
    return Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8)).convert("RGB")


def _cells(rng, w: int, h: int) -> Image.Image:
    """Fluorescence micrograph: dark field, green cell bodies with red nuclei."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(8, 25))):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(6, 18)
        d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2
        img[..., 1] += rng.uniform(0.4, 1.0) * np.exp(-d2 * 1.5)
        img[..., 0] += rng.uniform(0.3, 0.9) * np.exp(-d2 * 8)
    img += 0.05 * _smooth_noise(rng, h, w, (8, 30), (1.0, 0.5))[..., None]
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))


_DRAWERS = {
    "line": _line,
    "scatter": _scatter,
    "bar": _bar,
    "heatmap": _heatmap,
    "block": _block,
    "network": _network,
    "table": _table,
}
