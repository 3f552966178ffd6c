"""Rasteriser benchmark: pypdfium2 vs pdf2image (and pdftoppm) on the same PDFs, Pillow paths, Ghostscript,
and PNG compress levels. Prints a table and writes bench/results/raster.json. Times are CPU milliseconds
(this process plus its subprocesses), because wall clock on the shared 2-core machine is too noisy.

Data: figure PDFs drawn here with matplotlib (vector line plot, 20k-point scatter, embedded raster), the PDFs
and EPS/PS files inside the real arXiv fixtures (../shared/fixtures/real, when present), and raster images
made with Pillow. Each figure is the median of N runs after a warm-up, in CPU milliseconds.

    nice -n 10 .venv/bin/python bench/raster.py [--runs 5]
"""

import argparse
import io
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.extract import raster  # noqa: E402
from pipeline.extract.bundle import read_bundle  # noqa: E402
from pipeline.extract.limits import DEFAULT_LIMITS  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "real"


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (pdftoppm, pdfinfo, gs)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def timed(fn, runs: int) -> float:
    """Median CPU milliseconds of `fn` (CPU, not wall: the machine is shared and wall clock swings 3x)."""
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = _cpu()
        fn()
        times.append(_cpu() - t0)
    return statistics.median(times) * 1000


def matplotlib_pdfs() -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    out = {}
    fig, ax = plt.subplots(figsize=(6, 3))
    for k in range(4):
        ax.plot(np.linspace(0, 10, 200), np.sin(np.linspace(0, 10, 200) + k), label=f"s{k}")
    ax.legend()
    out["mpl-line (vector)"] = fig
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(rng.normal(size=20000), rng.normal(size=20000), s=2, alpha=0.5)
    out["mpl-scatter-20k (vector)"] = fig
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.imshow(rng.random((600, 800)), cmap="viridis")
    out["mpl-imshow (embedded raster)"] = fig
    pdfs = {}
    for name, fig in out.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="pdf")
        plt.close(fig)
        pdfs[name] = buf.getvalue()
    return pdfs


def fixture_files(exts: tuple[str, ...], limit: int) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    if not FIXTURES.is_dir():
        return found
    for tarball in sorted(FIXTURES.glob("*.tar.gz")):
        for path, data in sorted(read_bundle(tarball).files.items()):
            if path.lower().endswith(exts) and len(found) < limit:
                found[f"{tarball.name}:{path}"] = data
    return found


def bench_pdfs(runs: int) -> list[dict]:
    from pdf2image import convert_from_bytes

    def via_pdf2image(data: bytes) -> bytes:
        im = convert_from_bytes(data, size=512, single_file=True, timeout=20)[0]
        buf = io.BytesIO()
        im.save(buf, "PNG", compress_level=raster.PNG_COMPRESS_LEVEL)
        return buf.getvalue()

    pdfs = {**matplotlib_pdfs(), **fixture_files((".pdf",), 4)}
    rows = []
    for name, data in pdfs.items():
        res = raster.rasterize(data, "pdf")
        row = {"file": name, "bytes": len(data), "out": f"{res.width}x{res.height}", "status": res.status}
        if res.status != "ok":
            rows.append(row)
            continue
        row["pypdfium2_ms"] = timed(lambda d=data: raster.rasterize(d, "pdf"), runs)
        row["pdf2image_ms"] = timed(lambda d=data: via_pdf2image(d), runs)
        row["pdftoppm_fallback_ms"] = timed(
            lambda d=data: raster._render_poppler(d, 512, DEFAULT_LIMITS), runs)
        row["speedup_vs_pdf2image"] = row["pdf2image_ms"] / row["pypdfium2_ms"]
        rows.append(row)
    return rows


def _enc(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def bench_pillow(runs: int) -> list[dict]:
    rng = np.random.default_rng(1)
    photo = Image.fromarray((rng.random((3000, 4000, 3)) * 64 + np.linspace(0, 190, 4000)[None, :, None]).astype("uint8"))
    rgba = Image.new("RGBA", (2000, 1500), (0, 0, 0, 0))
    rgba.paste((30, 90, 200, 255), (200, 200, 1800, 1300))
    ramp16 = Image.fromarray(np.tile(np.linspace(0, 65535, 2000), (1500, 1)).astype(np.uint16))
    cases = {
        "jpeg 4000x3000 (draft decode)": (_enc(photo, "JPEG", quality=85), "jpg"),
        "png rgba 2000x1500 over white": (_enc(rgba, "PNG"), "png"),
        "png 16-bit grey 2000x1500": (_enc(ramp16, "PNG"), "png"),
        "png rgb 480x360 (stored as-is)": (_enc(photo.resize((480, 360)), "PNG"), "png"),
    }
    rows = []
    for name, (data, fmt) in cases.items():
        res = raster.rasterize(data, fmt)
        rows.append({"file": name, "bytes": len(data), "out": f"{res.width}x{res.height}", "status": res.status,
                     "ms": timed(lambda d=data, f=fmt: raster.rasterize(d, f), runs)})
    jpeg = cases["jpeg 4000x3000 (draft decode)"][0]

    def no_draft() -> None:  # the obvious way: full decode, then thumbnail
        im = Image.open(io.BytesIO(jpeg))
        im.load()
        im.thumbnail((512, 512), Image.Resampling.LANCZOS)
        _enc(im, "PNG", compress_level=raster.PNG_COMPRESS_LEVEL)

    rows.append({"file": "jpeg 4000x3000 full decode + thumbnail (baseline)", "ms": timed(no_draft, runs)})
    return rows


def bench_gs(runs: int) -> list[dict]:
    files = fixture_files((".eps", ".ps"), 4)
    files["inline line-art EPS"] = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 400 300\n"
                                    b"2 setlinewidth 0 1 100 { 4 mul 0 moveto 400 300 lineto } for stroke showpage\n")
    rows = []
    for name, data in files.items():
        res = raster.rasterize(data, "eps")
        row = {"file": name, "bytes": len(data), "out": f"{res.width}x{res.height}", "status": res.status,
               "reason": res.reason}
        if res.status == "ok":
            row["gs_ms"] = timed(lambda d=data: raster.rasterize(d, "eps"), max(1, runs // 2))
        rows.append(row)
    batch = [d for d in files.values() if raster.rasterize(d, "eps").status == "ok"]
    one_by_one = timed(lambda: [raster.rasterize(d, "eps") for d in batch], max(1, runs // 2))
    shared = timed(lambda: raster.rasterize_postscript_batch(batch), max(1, runs // 2))
    rows.append({"file": f"all {len(batch)} above: one gs run each", "gs_ms": one_by_one, "status": "ok", "out": ""})
    rows.append({"file": f"all {len(batch)} above: shared gs runs (per paper)", "gs_ms": shared, "status": "ok",
                 "out": f"x{one_by_one / shared:.1f}"})
    return rows


def bench_png_levels(runs: int) -> list[dict]:
    """Encode 512-px outputs at each zlib level: time and size, for rendered plots and a photo-like image."""
    plots = []
    for data in matplotlib_pdfs().values():
        res = raster.rasterize(data, "pdf")
        plots.append(Image.open(io.BytesIO(res.png)).convert("RGB"))
    rng = np.random.default_rng(2)
    photo = Image.fromarray((rng.random((384, 512, 3)) * 96 + np.linspace(0, 150, 512)[None, :, None]).astype("uint8"))
    rows = []
    for kind, images in (("plots", plots), ("photo-like", [photo])):
        for level in (0, 1, 3, 6, 9):
            ms = sum(timed(lambda im=im, lv=level: _enc(im, "PNG", compress_level=lv), runs) for im in images)
            size = sum(len(_enc(im, "PNG", compress_level=level)) for im in images)
            rows.append({"kind": kind, "compress_level": level, "ms_per_image": ms / len(images),
                         "kib_per_image": size / len(images) / 1024, "images": len(images)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "raster.json"))
    args = ap.parse_args()
    results = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "runs": args.runs,
        "pdf": bench_pdfs(args.runs),
        "pillow": bench_pillow(args.runs),
        "ghostscript": bench_gs(args.runs),
        "png_compress_levels": bench_png_levels(args.runs),
        "chosen_png_compress_level": raster.PNG_COMPRESS_LEVEL,
        "time_unit": "CPU milliseconds (process + children), median",
    }
    print("PDF page 1 -> 512 px PNG (CPU ms, median):")
    for r in results["pdf"]:
        if "pypdfium2_ms" in r:
            print(f"  {r['file'][:48]:48s} pypdfium2 {r['pypdfium2_ms']:7.1f}  pdf2image {r['pdf2image_ms']:7.1f}  "
                  f"pdftoppm {r['pdftoppm_fallback_ms']:7.1f}  x{r['speedup_vs_pdf2image']:.1f}")
        else:
            print(f"  {r['file'][:48]:48s} {r['status']}")
    print("Pillow paths (CPU ms):")
    for r in results["pillow"]:
        print(f"  {r['file'][:52]:52s} {r['ms']:7.1f}")
    print("Ghostscript EPS/PS (CPU ms incl. gs):")
    for r in results["ghostscript"]:
        print(f"  {r['file'][:52]:52s} {r.get('gs_ms', float('nan')):7.1f} {r['status']} {r['out']}")
    print("PNG compress level (per 512-px image):")
    for r in results["png_compress_levels"]:
        print(f"  {r['kind']:10s} level {r['compress_level']}: {r['ms_per_image']:6.1f} ms  {r['kib_per_image']:7.1f} KiB")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
