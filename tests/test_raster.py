"""rasterize: real Pillow, PDFium, poppler and Ghostscript on images and documents built by the tests."""

import io
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from pipeline.extract.limits import Limits
from pipeline.extract.raster import _render_poppler, eps_bounding_box, rasterize

needs_gs = pytest.mark.skipif(shutil.which("gs") is None, reason="Ghostscript not installed (apt-get install ghostscript)")
needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")


def _encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _decode(png: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(png))
    assert im.format == "PNG"
    im.load()
    return im


def pdf_page(w_pt: float, h_pt: float, pages: int = 1) -> bytes:
    """A minimal valid PDF; page i is filled with a different colour (red, then blue)."""
    colours = [b"1 0 0 rg", b"0 0 1 rg"]
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(pages)), pages)]
    for i in range(pages):
        content = colours[i % 2] + b" 0 0 %g %g re f" % (w_pt, h_pt)
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Contents %d 0 R >>" % (w_pt, h_pt, 4 + 2 * i))
        objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    out, offsets = b"%PDF-1.4\n", []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, o)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


def test_rgba_is_composited_over_white():
    im = Image.new("RGBA", (800, 600), (0, 0, 0, 0))  # fully transparent black: the classic black-box bug
    im.paste((0, 0, 255, 255), (300, 200, 500, 400))
    r = rasterize(_encode(im), "png")
    assert r.status == "ok", r.reason
    out = _decode(r.png)
    assert out.mode == "RGB" and max(out.size) == 512
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((out.width // 2, out.height // 2)) == (0, 0, 255)


def test_la_and_palette_transparency_over_white():
    la = Image.new("LA", (40, 40), (0, 0))
    out = _decode(rasterize(_encode(la), "png").png)
    assert out.mode == "L" and out.getpixel((0, 0)) == 255
    p = Image.new("P", (40, 40), 0)
    p.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    p.paste(1, (10, 10, 30, 30))
    out = _decode(rasterize(_encode(p, transparency=0), "gif").png)
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((20, 20)) == (255, 0, 0)


def test_16bit_greyscale_is_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 300), (100, 1)).astype(np.uint16)
    im = Image.fromarray(ramp)
    assert im.mode.startswith("I;16")
    r = rasterize(_encode(im), "png")
    out = np.asarray(_decode(r.png))
    assert out.dtype == np.uint8
    assert out[:, 0].max() <= 1 and out[:, -1].min() >= 254
    assert 110 < out.mean() < 145  # a naive convert('L') clips everything above 255 to white (mean ~255)


def test_cmyk_jpeg_becomes_rgb():
    im = Image.new("CMYK", (120, 80), (0, 255, 255, 0))  # pure red in CMYK
    r = rasterize(_encode(im, "JPEG", quality=95), "jpg")
    out = _decode(r.png)
    assert out.mode == "RGB"
    red, green, blue = out.getpixel((60, 40))
    assert red > 230 and green < 30 and blue < 30


def test_exif_orientation_is_applied():
    im = Image.new("RGB", (400, 200), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 50, 50))  # blue marker top-left in the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    r = rasterize(_encode(im, "JPEG", exif=exif.tobytes(), quality=95), "jpeg")
    out = _decode(r.png)
    assert out.size == (200, 400)
    b = out.getpixel((out.width - 10, 10))
    assert b[2] > 200 and b[0] < 60  # marker now top-right


def test_large_jpeg_is_decoded_in_draft_mode_and_capped():
    im = Image.radial_gradient("L").resize((4000, 3000)).convert("RGB")
    data = _encode(im, "JPEG", quality=80)
    r = rasterize(data, "jpg")
    assert r.status == "ok" and (r.width, r.height) == (512, 384)


def test_decompression_bomb_image_is_refused_before_decoding():
    bomb = _encode(Image.new("1", (20000, 20000)))  # 400 MP of zeros in ~50 KB
    assert len(bomb) < 100_000
    t0 = time.perf_counter()
    r = rasterize(bomb, "png", limits=Limits(max_pixels=50_000_000))
    assert time.perf_counter() - t0 < 1
    assert r.status == "error" and "too large" in r.reason
    r = rasterize(_encode(Image.new("L", (3000, 3000))), "png", limits=Limits(max_pixels=1_000_000))
    assert r.status == "error" and "too large" in r.reason


def test_truncated_and_garbage_images_are_errors_with_reasons():
    data = _encode(Image.effect_noise((300, 300), 60))
    r = rasterize(data[: len(data) // 2], "png")
    assert r.status == "error" and "truncated" in r.reason
    r = rasterize(b"this is not an image at all", "png")
    assert r.status == "error" and "not a readable image" in r.reason
    assert rasterize(b"", "png").status == "error"
    r = rasterize(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "svg")
    assert r.status == "unsupported"


def test_small_rgb_png_is_stored_unchanged():
    data = _encode(Image.new("RGB", (100, 50), (1, 2, 3)))
    r = rasterize(data, "png")
    assert r.png == data and (r.width, r.height) == (100, 50)


def test_pdf_first_page_rendered_to_max_side():
    r = rasterize(pdf_page(576, 288, pages=2), "pdf")
    assert r.status == "ok", r.reason
    out = _decode(r.png)
    assert out.size == (512, 256) and out.mode == "RGB"
    assert out.getpixel((256, 128)) == (255, 0, 0)  # page 1 is red, page 2 blue


def test_200_inch_pdf_page_is_refused_without_allocating():
    code = (
        "import resource, json, sys; sys.path.insert(0, '.');"
        "from tests.test_raster import pdf_page; from pipeline.extract.raster import rasterize;"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "big = rasterize(pdf_page(14400, 14400), 'pdf');"
        "ok = rasterize(pdf_page(7000, 7000), 'pdf');"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "print(json.dumps([big.status, big.reason, ok.status, ok.width, (after - before) * 1024]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    status, reason, ok_status, ok_width, grown = json.loads(out.stdout.strip().splitlines()[-1])
    assert status == "error" and "200x200 in exceeds the cap" in reason
    assert ok_status == "ok" and ok_width == 512  # a 97-inch page renders small, not at 72 dpi (190 MB)
    assert grown < 150 << 20


def test_broken_pdf_reports_both_renderers():
    r = rasterize(b"%PDF-1.4\nnot really a pdf\n", "pdf")
    assert r.status == "error" and "pypdfium2" in r.reason and "fallback" in r.reason


@needs_poppler
def test_poppler_fallback_renders_page_one():
    im = _render_poppler(pdf_page(576, 288, pages=2), 512, Limits())
    assert max(im.size) == 512 and im.convert("RGB").getpixel((256, 128)) == (255, 0, 0)


EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 200 100
%%HiResBoundingBox: 0 0 200 100
newpath 20 20 moveto 180 80 lineto 8 setlinewidth 1 0 0 setrgbcolor stroke
showpage
"""


@needs_gs
def test_eps_rendered_from_bounding_box():
    assert eps_bounding_box(EPS) == (0.0, 0.0, 200.0, 100.0)
    r = rasterize(EPS, "eps")
    assert r.status == "ok", r.reason
    out = _decode(r.png)
    assert abs(out.width - 512) <= 2 and abs(out.height - 256) <= 2
    assert out.getpixel((2, 2)) == (255, 255, 255)
    assert out.getpixel((out.width // 2, out.height // 2))[0] > 200


@needs_gs
def test_pathological_eps_times_out_with_a_reason():
    loop = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n{} loop\n"
    t0 = time.perf_counter()
    r = rasterize(loop, "eps", limits=Limits(render_timeout_s=2))
    assert time.perf_counter() - t0 < 10
    assert r.status == "error" and "timed out after 2 s" in r.reason


@needs_gs
def test_eps_cannot_write_or_read_files(tmp_path):
    for target in (tmp_path / "pwned.txt", tmp_path.parent / "pwned.txt"):
        evil = b"%%!PS-Adobe-3.0 EPSF-3.0\n%%%%BoundingBox: 0 0 10 10\n(%s) (w) file (x) writestring showpage\n" % str(target).encode()
        r = rasterize(evil, "eps")
        assert not target.exists()  # -dSAFER + a private TMPDIR: no writes outside gs's own temp dir
        assert r.status == "error" and "invalidfileaccess" in r.reason
    leak = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n(/etc/passwd) (r) file 100 string readstring pop pop showpage\n"
    r = rasterize(leak, "eps")
    assert r.status == "error" and "invalidfileaccess" in r.reason


@needs_gs
def test_plain_postscript_with_bounding_box_is_cropped_to_it():
    ps = b"%!PS-Adobe-3.0\n%%BoundingBox: 100 500 300 600\n0 0 1 setrgbcolor 100 500 200 100 rectfill showpage\n"
    r = rasterize(ps, "ps")
    out = _decode(r.png)
    assert abs(out.width - 512) <= 2 and abs(out.height - 256) <= 2  # the box, not the letter page
    assert out.getpixel((out.width // 2, out.height // 2))[2] > 200


@needs_gs
def test_postscript_batch_matches_single_renders_and_isolates_bad_files():
    from pipeline.extract.raster import rasterize_postscript_batch

    def eps(w, h, colour, extra=b""):
        return (b"%%!PS-Adobe-3.0 EPSF-3.0\n%%%%BoundingBox: 0 0 %d %d\n%s setrgbcolor 0 0 %d %d rectfill %s showpage\n"
                % (w, h, colour, w, h, extra))

    items = [eps(200, 100, b"1 0 0"), eps(100, 300, b"0 1 0"), eps(300, 300, b"0 0 1"),
             eps(120, 120, b"0 0 0", extra=b"showpage"),  # two pages: must not shift the others
             b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n{} loop\n",
             EPS]
    results = rasterize_postscript_batch(items, limits=Limits(render_timeout_s=3))
    for i, a in enumerate(results):
        if i == 4:
            continue
        b = rasterize(items[i], "eps")
        assert a.status == b.status == "ok", i
        assert (a.width, a.height) == (b.width, b.height), i
        im_a, im_b = _decode(a.png).convert("RGB"), _decode(b.png).convert("RGB")
        assert im_a.getpixel((a.width // 2, a.height // 2)) == im_b.getpixel((b.width // 2, b.height // 2))
    assert results[4].status == "error" and "timed out" in results[4].reason
    assert _decode(results[1].png).convert("RGB").getpixel((5, 5)) == (0, 255, 0)
