"""Rasterise one figure file (PNG/JPEG/GIF/TIFF/BMP, PDF, EPS/PS) to a small PNG, safely.

- Raster images go through Pillow: the pixel count is checked from the header before anything is decoded,
  big JPEGs are decoded at reduced scale (`draft`), EXIF orientation is applied, 16-bit data is scaled
  (not clipped), CMYK is converted (through its ICC profile when it has one), and transparency is
  composited over white, never black.
- PDFs: page 1 with pypdfium2 in-process, at a scale chosen from the page size so the long side is
  `max_side` (a 200-inch page is refused before rendering, a big page renders small). Poppler's
  `pdftoppm` in a subprocess with a timeout is the fallback when PDFium cannot open the file.
- EPS/PS: Ghostscript with `-dSAFER` in a subprocess with a timeout and a memory rlimit, at a resolution
  computed from the BoundingBox, reading from and writing to a private temporary directory (also its
  TMPDIR and cwd, the only place -dSAFER lets a PostScript program write).

Output: PNG bytes, mode RGB or L, long side <= max_side. Failures never raise: they come back as
`RasterResult(status="error" | "unsupported", reason=...)`.
"""

import io
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from pipeline.extract.limits import DEFAULT_LIMITS, Limits

# zlib level 1: measured on 512-px outputs (bench/raster.py) ~30% faster than Pillow's default 6 for ~2.5%
# more bytes; level 0 is 2-4x bigger, 9 is 3x slower. The lake stores PNG bytes without further compression.
PNG_COMPRESS_LEVEL = 1
_PILLOW_FORMATS = {"png", "jpg", "jpeg", "gif", "tif", "tiff", "bmp", "webp", "ppm", "pgm", "pbm", "pnm"}
_PDF_FORMATS = {"pdf", "ai"}
_PS_FORMATS = {"eps", "ps", "epsi", "epsf", "mps"}
_GS_MEMORY_BYTES = 1 << 30
_DOS_EPS_MAGIC = b"\xc5\xd0\xd3\xc6"


@dataclass
class RasterResult:
    png: bytes | None
    width: int | None
    height: int | None
    source_format: str  # format actually decoded (by magic bytes), e.g. png, jpeg, pdf, eps
    status: str  # ok | error | unsupported
    reason: str | None
    render_s: float = 0.0  # decoding / rendering CPU seconds (incl. Ghostscript / poppler)
    encode_s: float = 0.0  # resizing + PNG encoding (+ the kind features of the final image) CPU seconds
    kind_features: Any = None  # pipeline.extract.kind_image features of the stored image (numpy array)


def cpu_clock() -> float:
    """CPU seconds of this process plus its finished subprocesses (Ghostscript, poppler): stage timings in
    CPU time stay meaningful on a shared machine, where wall clock depends on the neighbours' load."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


class _RasterError(Exception):
    """A figure that cannot be rasterised; the message is the recorded reason."""


def sniff_image_format(data: bytes) -> str | None:
    """Image format from magic bytes (None when unknown): png, jpeg, gif, tiff, bmp, webp, pdf, eps."""
    head = data[:1024]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if b"%PDF-" in head:
        return "pdf"
    if head.lstrip().startswith(b"%!") or head.startswith(_DOS_EPS_MAGIC):
        return "eps"
    if head.startswith(b"\x97JB2") or head.startswith(b"\x00\x00\x00\x0cjP"):
        return "unsupported"
    return None


def _target_size(w: int, h: int, max_side: int, upscale: bool = False) -> tuple[int, int]:
    long = max(w, h)
    if long <= max_side and not upscale:
        return w, h
    s = max_side / long
    return max(1, round(w * s)), max(1, round(h * s))


def _encode(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def _scale_16bit(im: Image.Image) -> Image.Image:
    """16/32-bit integer and float greyscale to 8-bit L by scaling (Pillow's convert('L') would clip)."""
    import numpy as np

    arr = np.asarray(im)
    if im.mode == "F" or arr.dtype.kind == "f":
        arr = np.nan_to_num(arr.astype("float64"))
        lo, hi = float(arr.min()), float(arr.max())
        out = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    elif im.mode.startswith("I;16") or arr.max(initial=0) > 255:
        out = np.clip(arr.astype("float64"), 0, 65535) / 257.0
    else:
        out = arr
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype("uint8"), "L")


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # noqa: BLE001 - a broken profile falls back to the plain conversion
            pass
    return im.convert("RGB")


def _normalise_mode(im: Image.Image) -> Image.Image:
    """Any Pillow mode to one of L, LA, RGB, RGBA (alpha kept for compositing after resizing)."""
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode == "P":
        has_alpha = "transparency" in im.info or im.palette is not None and im.palette.mode == "RGBA"
        return im.convert("RGBA" if has_alpha else "RGB")
    if mode == "PA":
        return im.convert("RGBA")
    if mode in ("La",):
        return im.convert("LA")
    if mode in ("RGBa", "RGBX"):
        return im.convert("RGBA" if mode == "RGBa" else "RGB")
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode.startswith("I") or mode == "F":
        return _scale_16bit(im)
    return im.convert("RGB")  # YCbCr, LAB, HSV, ...


def _over_white(im: Image.Image) -> Image.Image:
    if im.mode not in ("LA", "RGBA"):
        return im
    base_mode = im.mode[:-1]
    bg = Image.new(base_mode, im.size, 255 if base_mode == "L" else (255, 255, 255))
    bg.paste(im.convert(base_mode), mask=im.getchannel("A"))
    return bg


def _finish(im: Image.Image, max_side: int, *, upscale: bool = False) -> Image.Image:
    """Normalised mode, resized to max_side (box-reduce first, then Lanczos), alpha over white."""
    im = _normalise_mode(im)
    size = _target_size(im.width, im.height, max_side, upscale)
    if size != im.size:
        im = im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _over_white(im)


def _result(im: Image.Image, fmt: str, render_s: float, max_side: int, t0: float) -> RasterResult:
    from pipeline.extract.kind_image import image_features

    im = _finish(im, max_side)
    png = _encode(im)
    features = image_features(im)  # counted with encoding: both work on the final image
    return RasterResult(png, im.width, im.height, fmt, "ok", None, render_s, cpu_clock() - t0,
                        kind_features=features)


def _rasterize_pillow(data: bytes, fmt: str, max_side: int, limits: Limits) -> RasterResult:
    t0 = cpu_clock()
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise _RasterError(f"image too large: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for garbage input
            raise _RasterError(f"not a readable image: {type(exc).__name__}: {exc}") from exc
        w, h = im.size
        if w <= 0 or h <= 0:
            raise _RasterError(f"image has an empty size {w}x{h}")
        if w * h > limits.max_pixels:
            raise _RasterError(f"image too large: {w}x{h} pixels exceeds the cap of {limits.max_pixels}")
        decoded_fmt = (im.format or fmt).lower()
        try:
            if decoded_fmt == "jpeg":  # DCT-domain downscale: decodes a 6000-px photo at 1/8 the cost
                im.draft(None, _target_size(w, h, max_side))
            im.load()
            orientation = im.getexif().get(0x0112, 1) if decoded_fmt in ("jpeg", "tiff", "png", "webp") else 1
            if orientation != 1:
                im = ImageOps.exif_transpose(im)
        except Image.DecompressionBombError as exc:
            raise _RasterError(f"image too large: {exc}") from exc
        except Exception as exc:  # noqa: BLE001
            raise _RasterError(f"truncated or corrupt image: {type(exc).__name__}: {exc}") from exc
    render_s = cpu_clock() - t0
    t1 = cpu_clock()
    # An 8-bit RGB/L PNG that already fits is stored as it came: no re-encode (the cheapest path).
    if decoded_fmt == "png" and im.mode in ("RGB", "L") and max(im.size) <= max_side and "transparency" not in im.info:
        from pipeline.extract.kind_image import image_features

        features = image_features(im)
        return RasterResult(data, im.width, im.height, "png", "ok", None, render_s, cpu_clock() - t1,
                            kind_features=features)
    return _result(im, decoded_fmt, render_s, max_side, t1)


def _check_page(w_pt: float, h_pt: float, limits: Limits) -> None:
    if not (w_pt > 0 and h_pt > 0):
        raise _RasterError(f"empty page size {w_pt:g}x{h_pt:g} pt")
    cap = limits.max_page_inches * 72
    if max(w_pt, h_pt) > cap:
        raise _RasterError(
            f"page of {w_pt / 72:.0f}x{h_pt / 72:.0f} in exceeds the cap of {limits.max_page_inches:g} in"
        )


def _render_pdfium(data: bytes, max_side: int, limits: Limits) -> Image.Image:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        if len(pdf) < 1:
            raise _RasterError("PDF has no pages")
        page = pdf[0]
        try:
            w_pt, h_pt = page.get_size()
            _check_page(w_pt, h_pt, limits)
            scale = max_side / max(w_pt, h_pt)  # vector art renders straight at the stored size
            bitmap = page.render(scale=scale, draw_annots=False)
            try:
                return bitmap.to_pil().copy()
            finally:
                bitmap.close()
        finally:
            page.close()
    finally:
        pdf.close()


def _limit_child_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_GS_MEMORY_BYTES, _GS_MEMORY_BYTES))


def _run_tool(cmd: list[str], timeout: float, what: str, workdir: str) -> None:
    # Ghostscript's -dSAFER still permits writes under $TMPDIR: point it (and the cwd) at our private
    # temporary directory so a PostScript program can write nowhere else.
    env = {**os.environ, "TMPDIR": workdir, "TMP": workdir, "TEMP": workdir}
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=workdir,
            env=env, timeout=timeout, preexec_fn=_limit_child_memory, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise _RasterError(f"{what} timed out after {timeout:g} s") from exc
    except FileNotFoundError as exc:
        raise _RasterError(f"{cmd[0]} is not installed (apt-get install -y {what.split()[0]})") from exc
    if proc.returncode != 0:
        lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()  # gs reports errors on stdout
        errors = [ln for ln in lines if ln.startswith("Error:") or "Error" in ln[:20]]
        detail = (errors or lines[-1:] or [""])[0].strip()
        raise _RasterError(f"{what} failed (exit {proc.returncode}): {detail[:200]}")


def _render_poppler(data: bytes, max_side: int, limits: Limits) -> Image.Image:
    """pdftoppm page 1, scaled so the long side is max_side (pdf2image's own pdfinfo call has no timeout)."""
    with tempfile.TemporaryDirectory(prefix="af-pdf-") as tmp:
        src, out = Path(tmp) / "in.pdf", Path(tmp) / "out"
        src.write_bytes(data)
        cmd = ["pdftoppm", "-f", "1", "-l", "1", "-singlefile", "-scale-to", str(max_side), "-png", str(src), str(out)]
        _run_tool(cmd, limits.render_timeout_s, "poppler pdftoppm", tmp)
        png = out.with_suffix(".png")
        if not png.is_file():
            raise _RasterError("poppler pdftoppm produced no image")
        with Image.open(png) as im:
            im.load()
            return im.copy()


def _rasterize_pdf(data: bytes, max_side: int, limits: Limits) -> RasterResult:
    t0 = cpu_clock()
    try:
        im = _render_pdfium(data, max_side, limits)
    except _RasterError:
        raise  # a refused page size is final: poppler must not render it either
    except Exception as pdfium_exc:  # noqa: BLE001 - PdfiumError and friends: try poppler
        try:
            im = _render_poppler(data, max_side, limits)
        except _RasterError as exc:
            raise _RasterError(f"pypdfium2: {pdfium_exc}; fallback: {exc}") from exc
    render_s = cpu_clock() - t0
    return _result(im, "pdf", render_s, max_side, cpu_clock())


_BBOX_RE = re.compile(rb"%%(HiRes)?BoundingBox:[ \t]*(-?[\d.]+)[ \t]+(-?[\d.]+)[ \t]+(-?[\d.]+)[ \t]+(-?[\d.]+)")


def _postscript_part(data: bytes) -> bytes:
    """The PostScript section of a DOS-binary EPS (which carries a TIFF/WMF preview), else the data."""
    if data.startswith(_DOS_EPS_MAGIC) and len(data) >= 30:
        off = int.from_bytes(data[4:8], "little")
        length = int.from_bytes(data[8:12], "little")
        return data[off : off + length]
    return data


def eps_bounding_box(ps: bytes) -> tuple[float, float, float, float] | None:
    """The (HiRes)BoundingBox from the header, or from the trailer when it says (atend)."""
    found = {}
    for part in (ps[:65536], ps[-65536:]):
        for m in _BBOX_RE.finditer(part):
            key = bool(m.group(1))
            found.setdefault(key, tuple(float(x) for x in m.groups()[1:]))
    box = found.get(True) or found.get(False)
    return box  # type: ignore[return-value]


@dataclass
class _PsJob:
    ps: bytes  # PostScript to run (EPSF header declared when the file has a BoundingBox)
    box: tuple[float, float, float, float] | None
    dpi: float


def _prepare_ps(data: bytes, max_side: int, limits: Limits) -> _PsJob:
    ps = _postscript_part(data)
    box = eps_bounding_box(ps)
    if box is not None:
        w_pt, h_pt = box[2] - box[0], box[3] - box[1]
        _check_page(w_pt, h_pt, limits)
        first, _, rest = ps.partition(b"\n")
        if first.startswith(b"%!") and b"EPSF" not in first:
            # A plain PostScript file with a BoundingBox (dvips places it by that box, as LaTeX users
            # expect); Ghostscript honours -dEPSCrop only for an EPSF header, so declare one.
            ps = b"%!PS-Adobe-3.0 EPSF-3.0\n" + rest
    else:
        w_pt = h_pt = 421.0  # no bounding box: a full A4/letter page at twice the size, trimmed below
    dpi = min(max(72.0 * max_side / max(w_pt, h_pt), 1.0), 2400.0)
    return _PsJob(ps, box, dpi)


def _gs_command(dpi: float, out: str, inputs: list[str], *, first_page_only: bool) -> list[str]:
    cmd = [
        shutil.which("gs") or "gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOPROMPT", "-dEPSCrop",
        "-sDEVICE=png16m", f"-r{dpi:.3f}", "-dTextAlphaBits=4", "-dGraphicsAlphaBits=4",
    ]
    if first_page_only:
        cmd += ["-dFirstPage=1", "-dLastPage=1"]
    return cmd + [f"-sOutputFile={out}"] + [x for path in inputs for x in ("-f", path)]


def _finish_page(page: Image.Image, job: _PsJob, max_side: int, render_s: float) -> RasterResult:
    if job.box is None:  # a whole page: trim the white margin around the drawing
        bbox = ImageOps.invert(page.convert("L")).getbbox()
        if bbox:
            page = page.crop(bbox)
    return _result(page, "eps", render_s, max_side, cpu_clock())


def _rasterize_ps(data: bytes, max_side: int, limits: Limits) -> RasterResult:
    t0 = cpu_clock()
    job = _prepare_ps(data, max_side, limits)
    with tempfile.TemporaryDirectory(prefix="af-eps-") as tmp:
        src, out = Path(tmp) / "in.eps", Path(tmp) / "out.png"
        src.write_bytes(job.ps)
        _run_tool(_gs_command(job.dpi, str(out), [str(src)], first_page_only=True), limits.render_timeout_s,
                  "ghostscript gs", tmp)
        if not out.is_file():
            raise _RasterError("ghostscript produced no image (empty or invalid PostScript)")
        with Image.open(out) as im:
            im.load()
            page = im.copy()
    return _finish_page(page, job, max_side, cpu_clock() - t0)


def _render_ps_group(jobs: list[_PsJob], max_side: int, limits: Limits) -> list[RasterResult] | None:
    """Several EPS files in ONE Ghostscript run (its start-up is most of an EPS's cost), at the group's
    highest resolution. Each EPS gives exactly one page, so page i is file i; that, and every page's
    size matching its BoundingBox, is checked. None on any doubt (the caller renders one by one)."""
    t0 = cpu_clock()
    dpi = max(j.dpi for j in jobs)
    with tempfile.TemporaryDirectory(prefix="af-eps-") as tmp:
        inputs = []
        for i, job in enumerate(jobs):
            inputs.append(str(Path(tmp) / f"in-{i:03d}.eps"))
            Path(inputs[-1]).write_bytes(job.ps)
        try:
            _run_tool(_gs_command(dpi, str(Path(tmp) / "out-%03d.png"), inputs, first_page_only=False),
                      limits.render_timeout_s, "ghostscript gs", tmp)
        except _RasterError:
            return None
        outs = sorted(Path(tmp).glob("out-*.png"))
        if len(outs) != len(jobs):
            return None
        pages = []
        for job, path in zip(jobs, outs, strict=True):
            with Image.open(path) as im:
                im.load()
                page = im.copy()
            w_px = (job.box[2] - job.box[0]) * dpi / 72  # type: ignore[index]
            h_px = (job.box[3] - job.box[1]) * dpi / 72  # type: ignore[index]
            if abs(page.width - w_px) > 2 or abs(page.height - h_px) > 2:
                return None
            pages.append(page)
    each = (cpu_clock() - t0) / len(jobs)
    return [_finish_page(page, job, max_side, each) for page, job in zip(pages, jobs, strict=True)]


def rasterize_postscript_batch(
    items: list[bytes], *, max_side: int = 512, limits: Limits = DEFAULT_LIMITS,
) -> list[RasterResult]:
    """Rasterise several EPS/PS files (e.g. all of one paper's) with as few Ghostscript runs as possible:
    files with a BoundingBox whose resolutions are within 1.5x share a run; anything that fails in a
    shared run is redone on its own (so one bad file costs its neighbours nothing but time)."""
    results: list[RasterResult | None] = [None] * len(items)
    jobs: dict[int, _PsJob] = {}
    for i, data in enumerate(items):
        try:
            job = _prepare_ps(data, max_side, limits)
        except _RasterError:
            continue  # rasterize() below reports it
        if job.box is not None:
            jobs[i] = job
    order = sorted(jobs, key=lambda i: jobs[i].dpi)
    group: list[int] = []
    for i in order + [None]:  # type: ignore[list-item]
        if i is not None and (not group or jobs[i].dpi <= 1.5 * jobs[group[0]].dpi):
            group.append(i)
            continue
        if len(group) > 1:
            rendered = _render_ps_group([jobs[g] for g in group], max_side, limits)
            for g, res in zip(group, rendered or [], strict=False):
                results[g] = res
        group = [i] if i is not None else []
    return [res if res is not None else rasterize(items[i], "eps", max_side=max_side, limits=limits)
            for i, res in enumerate(results)]


def rasterize(data: bytes, fmt: str, *, max_side: int = 512, limits: Limits = DEFAULT_LIMITS) -> RasterResult:
    """Rasterise a figure file to PNG (long side <= max_side). Never raises for bad input."""
    declared = (fmt or "").lower().lstrip(".")
    sniffed = sniff_image_format(data)
    kind = sniffed or declared
    if kind == "jpg":
        kind = "jpeg"
    try:
        if not data:
            raise _RasterError("empty file")
        if kind in _PDF_FORMATS:
            return _rasterize_pdf(data, max_side, limits)
        if kind in _PS_FORMATS:
            return _rasterize_ps(data, max_side, limits)
        if kind in _PILLOW_FORMATS or sniffed is None and declared not in ("svg", "jbig2", "jb2"):
            return _rasterize_pillow(data, kind, max_side, limits)
        return RasterResult(None, None, None, kind or "unknown", "unsupported", f"no rasteriser for format {kind!r}")
    except _RasterError as exc:
        return RasterResult(None, None, None, kind or "unknown", "error", str(exc))
    except MemoryError:
        return RasterResult(None, None, None, kind or "unknown", "error", "out of memory while rasterising")
