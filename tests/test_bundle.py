"""read_bundle: formats, hostile members, caps. Real tar/gzip bytes built here; nothing touches the disk."""

import gzip
import io
import os
import tarfile
import time
import zlib
from pathlib import Path

import pytest

from pipeline.errors import UserError
from pipeline.extract.bundle import normalise_member_name, read_bundle
from pipeline.extract.limits import Limits

TEX = b"\\documentclass{article}\\begin{document}\\includegraphics{a}\\end{document}\n"


def _add(tf: tarfile.TarFile, name: str, data: bytes = b"", **kw) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(data) if data else None)


def _tar(members: list[tuple], gz: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for m in members:
            _add(tf, *m[:2], **(m[2] if len(m) > 2 else {}))
    raw = buf.getvalue()
    return gzip.compress(raw, compresslevel=1) if gz else raw


def test_hostile_members_are_skipped_with_reasons(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _tar([
        ("./main.tex", TEX),
        ("figs/a.png", b"\x89PNG fake"),
        ("../../evil.txt", b"owned"),
        ("/etc/abs.txt", b"owned"),
        ("sub/../../up.txt", b"owned"),
        ("link", b"", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
        ("hard", b"", {"type": tarfile.LNKTYPE, "linkname": "main.tex"}),
        ("dev", b"", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}),
        ("blk", b"", {"type": tarfile.BLKTYPE}),
        ("pipe", b"", {"type": tarfile.FIFOTYPE}),
        ("._main.tex", b"\0\5\26\7 apple"),
        ("__MACOSX/figs/._a.png", b"junk"),
        ("figs/.DS_Store", b"junk"),
        ("figs/", b"", {"type": tarfile.DIRTYPE}),
    ])
    b = read_bundle(data)
    assert b.source_format == "tar" and b.error is None
    assert set(b.files) == {"main.tex", "figs/a.png"}
    assert b.files["main.tex"] == TEX
    reasons = dict(b.skipped)
    assert "path traversal" in reasons["../../evil.txt"]
    assert "path traversal" in reasons["sub/../../up.txt"]
    assert reasons["/etc/abs.txt"] == "absolute path"
    assert "symbolic link" in reasons["link"]
    assert "hard link" in reasons["hard"]
    assert reasons["dev"] == "device file" and reasons["blk"] == "device file"
    assert reasons["pipe"] == "fifo"
    assert "AppleDouble" in reasons["._main.tex"]
    assert "__MACOSX" in reasons["__MACOSX/figs/._a.png"]
    assert ".DS_Store" in reasons["figs/.DS_Store"]
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere near us
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path.parent.parent / "evil.txt").exists()


@pytest.mark.parametrize("name,expected", [
    ("./a/./b.tex", ("a/b.tex", None)),
    ("a//b.tex", ("a/b.tex", None)),
    ("..", (None, "path traversal ('..' in member name)")),
    ("C:/x.tex", (None, "absolute path")),
    ("a\0b", (None, "NUL byte in member name")),
    ("./", (None, "empty member name")),
])
def test_normalise_member_name(name, expected):
    assert normalise_member_name(name) == expected


def _gzip_stream_of_zeros(n: int) -> bytes:
    """gzip of n zero bytes, built in pieces (a 1000:1 bomb without holding n bytes)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    out = [c.compress(block) for _ in range(n >> 20)]
    out.append(c.flush())
    return b"".join(out)


def test_gzip_bomb_stops_at_the_total_cap():
    bomb = _gzip_stream_of_zeros(200 << 20)  # 200 MiB of zeros in ~200 KB
    assert len(bomb) < 1 << 20
    limits = Limits(max_total_bytes=8 << 20, max_member_bytes=4 << 20)
    t0 = time.perf_counter()
    b = read_bundle(bomb, limits=limits)
    assert time.perf_counter() - t0 < 5
    assert b.files == {} and b.error and "cap" in b.error


def test_tar_gz_bomb_member_and_total_caps():
    big = bytes(6 << 20)
    data = _tar([("main.tex", TEX), ("huge.bin", big), ("after.tex", b"x"), ("pad1", bytes(3 << 20)),
                 ("pad2", bytes(3 << 20)), ("late.tex", b"y")])
    b = read_bundle(data, limits=Limits(max_member_bytes=4 << 20, max_total_bytes=5 << 20))
    reasons = dict(b.skipped)
    assert "exceeds the cap" in reasons["huge.bin"]
    assert "main.tex" in b.files and "after.tex" in b.files and "pad1" in b.files
    assert "late.tex" not in b.files and "pad2" not in b.files
    assert any("cap" in r for n, r in b.skipped if n in ("pad2", "<archive>"))
    assert b.total_bytes <= 5 << 20


def test_tar_bomb_by_member_count():
    data = _tar([(f"f{i:05d}.tex", b"%") for i in range(300)])
    b = read_bundle(data, limits=Limits(max_members=50))
    assert len(b.files) == 50
    assert any("member count cap of 50" in r for _, r in b.skipped)


def test_truncated_archive_keeps_what_was_read():
    raw = _tar([("main.tex", TEX), ("b.tex", os.urandom(200_000))], gz=False)
    data = gzip.compress(raw)[: len(gzip.compress(raw)) // 2]
    b = read_bundle(data)
    assert "main.tex" in b.files
    assert any("truncated" in r or "corrupt" in r for _, r in b.skipped)


def test_single_gzipped_tex_uses_the_gzip_file_name():
    buf = io.BytesIO()
    with gzip.GzipFile(filename="2301.00001", mode="wb", fileobj=buf) as gz:
        gz.write(TEX)
    b = read_bundle(buf.getvalue())
    assert b.source_format == "tex"
    assert b.files == {"2301.00001.tex": TEX}


def test_non_utf8_names_and_content_survive():
    latin = "r\xe9sum\xe9.tex"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        content = "\\documentclass{article}\\begin{document}caf\xe9\\end{document}".encode("latin-1")
        info = tarfile.TarInfo(latin)
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    b = read_bundle(gzip.compress(buf.getvalue()))
    assert b.files == {latin: content}  # bytes untouched: decoding TeX is the analysis' job


def test_plain_tar_pdf_and_concatenated_gzip():
    assert set(read_bundle(_tar([("main.tex", TEX)], gz=False)).files) == {"main.tex"}
    pdf = read_bundle(b"%PDF-1.4\n%...\n", name="2301.00002.pdf")
    assert pdf.source_format == "pdf" and pdf.files == {"2301.00002.pdf": b"%PDF-1.4\n%...\n"}
    raw = _tar([("main.tex", TEX), ("b.tex", b"%b")], gz=False)
    two = gzip.compress(raw[:1024]) + gzip.compress(raw[1024:])
    assert set(read_bundle(two).files) == {"main.tex", "b.tex"}


def test_directory_source_skips_links_and_fifos(tmp_path):
    (tmp_path / "paper" / "figs").mkdir(parents=True)
    (tmp_path / "paper" / "main.tex").write_bytes(TEX)
    (tmp_path / "paper" / "figs" / "a.png").write_bytes(b"png")
    (tmp_path / "paper" / "._main.tex").write_bytes(b"junk")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", tmp_path / "paper" / "leak.txt")
    os.mkfifo(tmp_path / "paper" / "pipe")
    b = read_bundle(tmp_path / "paper")
    assert b.source_format == "dir"
    assert set(b.files) == {"main.tex", "figs/a.png"}
    reasons = dict(b.skipped)
    assert reasons["leak.txt"] == "symbolic link"
    assert "regular" in reasons["pipe"]
    assert "AppleDouble" in reasons["._main.tex"]


def test_missing_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_bundle(tmp_path / "nope.gz")


def test_empty_and_garbage_inputs_do_not_raise():
    assert read_bundle(b"").error
    assert read_bundle(gzip.compress(b"")).error
    b = read_bundle(b"\x1f\x8b\x08\x00garbage-not-deflate")
    assert b.error and "gzip" in b.error


def test_real_fixtures(real_fixtures: Path):
    rel = read_bundle(real_fixtures / "relative_path.tar.gz")
    assert rel.files == {} and all("traversal" in r for _, r in rel.skipped)
    mac = read_bundle(real_fixtures / "1801.03879-1.tar.gz")
    assert not any(Path(p).name.startswith("._") for p in mac.files)
    assert any("AppleDouble" in r for _, r in mac.skipped)
    assert "defective-fpt.tex" in mac.files
    nested = read_bundle(real_fixtures / "with__MACOSX_hidden.tar.gz")
    assert not any("__MACOSX" in p.split("/") for p in nested.files)
    assert "with__MACOSX_hidden/For-arXive/pict1_polar.eps" in nested.files
    odd = read_bundle(real_fixtures / "Upload9BadFileNames.tar.gz")
    assert "+1110(79).png" in odd.files
