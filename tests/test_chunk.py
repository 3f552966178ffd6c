"""Chunk tars read in place: every source format, old ids, hostile members, real arXiv submissions."""

import gzip
import io
import json
import tarfile
import zlib

import pytest
from helpers import tar_bytes, write_chunk

from pipeline.cli import main
from pipeline.source.chunk import ChunkError, detect_format, gzip_fname, iter_chunk, paper_id_from_member

TEX = b"\\documentclass{article}\n\\begin{document}\nHello $x^2$.\n\\end{document}\n"


def gz(data: bytes, fname: str | None = None) -> bytes:
    """gzip with an optional FNAME in the header, as `gzip file` writes it."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename=fname or "", mode="wb", fileobj=buf, mtime=0) as fh:
        fh.write(data)
    return buf.getvalue()


def zero_bomb(megabytes: int) -> bytes:
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    return b"".join(co.compress(block) for _ in range(megabytes)) + co.flush()


@pytest.fixture
def mixed_chunk(tmp_path):
    members = [
        ("2301/2301.00001.gz", gz(tar_bytes({"main.tex": TEX, "fig.png": b"\x89PNG\r\n\x1a\n" + bytes(100)}))),
        ("2301/2301.00002.gz", gz(TEX, "paper.tex")),
        ("2301/2301.00003.pdf", b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
        ("2301/2301.00004.gz", gz(b"%!PS-Adobe-2.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")),
        ("2301/2301.00005.gz", gz(b"\n  <!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\">\n<html><body>x</body></html>")),
        ("2301/2301.00006.gz", gz(b"\n", "withdrawn")),
        ("2301/2301.00007.gz", gz(b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 4)),
        ("2301/2301.00008.gz", zero_bomb(24)),
        ("2301/2301.00009.gz", gz(TEX * 50)[:-40] + b"garbage-not-deflate" * 3),
        ("2301/2301.00010.gz", gz(b"This paper has been withdrawn by the author due to an error in eq. 3.\n")),
    ]
    return write_chunk(tmp_path / "arXiv_src_2301_001.tar", members, dirs=("2301",))


def test_each_format_detected_by_magic_bytes(mixed_chunk):
    papers = {p.paper_id: p for p in iter_chunk(mixed_chunk, max_paper_bytes=8 << 20)}
    assert {k: p.format for k, p in papers.items()} == {
        "2301.00001": "tar", "2301.00002": "tex", "2301.00003": "pdf", "2301.00004": "ps",
        "2301.00005": "html", "2301.00006": "withdrawn", "2301.00007": "unknown", "2301.00008": "error",
        "2301.00009": "error", "2301.00010": "withdrawn",
    }
    tar_paper = papers["2301.00001"]
    with tarfile.open(fileobj=io.BytesIO(tar_paper.data)) as inner:  # the payload is the decompressed tar
        assert inner.extractfile("main.tex").read() == TEX
    assert papers["2301.00002"].data == TEX and papers["2301.00002"].gzip_name == "paper.tex"
    assert papers["2301.00003"].compressed_bytes == papers["2301.00003"].uncompressed_bytes
    assert papers["2301.00006"].gzip_name == "withdrawn"
    assert all(p.yymm == "2301" and p.member.endswith((".gz", ".pdf")) for p in papers.values())


def test_gzip_bomb_stops_at_cap_and_chunk_goes_on(mixed_chunk):
    papers = list(iter_chunk(mixed_chunk, max_paper_bytes=4 << 20))
    bomb = next(p for p in papers if p.paper_id == "2301.00008")
    assert bomb.format == "error" and bomb.data is None
    assert "exceeds cap of 4194304 bytes" in bomb.error
    # it stopped near the cap, not at the 24 MB the bomb would inflate to
    assert 4 << 20 < bomb.uncompressed_bytes <= (4 << 20) + (1 << 20)
    assert papers[-1].paper_id == "2301.00010"  # papers after the bomb are still read


def test_corrupt_and_truncated_gzip_are_recorded(tmp_path):
    good = gz(TEX * 200)
    chunk = write_chunk(tmp_path / "c.tar", [
        ("2301/2301.00001.gz", good[: len(good) // 2]),  # cut in the middle
        ("2301/2301.00002.gz", good[:10] + b"\xff" * 64),  # header fine, deflate data broken
        ("2301/2301.00003.gz", gz(TEX)),
    ])
    papers = list(iter_chunk(chunk))
    assert [p.format for p in papers] == ["error", "error", "tex"]
    assert "truncated gzip" in papers[0].error
    assert "corrupt gzip" in papers[1].error


def test_concatenated_gzip_members_and_zero_padding(tmp_path):
    part1, part2 = TEX[:20], TEX[20:]
    chunk = write_chunk(tmp_path / "c.tar", [("2301/2301.00001.gz", gz(part1) + gz(part2) + bytes(512))])
    (paper,) = iter_chunk(chunk)
    assert paper.format == "tex" and paper.data == TEX and paper.error is None


def test_old_style_ids_restored(tmp_path):
    chunk = write_chunk(tmp_path / "c.tar", [
        ("0601/math0601001.gz", gz(TEX)),
        ("9108/hep-th9108001.gz", gz(TEX)),
        ("0601/math.GT0601002.gz", gz(TEX)),
        ("0704/0704.0001.pdf", b"%PDF-1.3\n"),
    ])
    assert [p.paper_id for p in iter_chunk(chunk)] == ["math/0601001", "hep-th/9108001", "math/0601002", "0704.0001"]


def test_paper_id_from_member():
    assert paper_id_from_member("2301/2301.00001.gz") == "2301.00001"
    assert paper_id_from_member("1501/1501.00001v2.pdf") == "1501.00001v2"
    assert paper_id_from_member("0703/cond-mat0703747.gz") == "cond-mat/0703747"
    assert paper_id_from_member("0704/0704.0001") == "0704.0001"  # no extension: keep the dot
    # files and folders on a disk (`arxiv-forge extract`) are named by the same function
    assert paper_id_from_member("2301.00001.tar.gz") == "2301.00001"
    assert paper_id_from_member("hep-th9108001.tar") == "hep-th/9108001"
    assert paper_id_from_member("paper.tex") == "paper" and paper_id_from_member("my.paper") == "my.paper"


def test_skips_dirs_and_members_outside_yymm_records_links(tmp_path):
    path = tmp_path / "c.tar"
    with tarfile.open(path, "w") as t:
        for name, data in [("./2301/2301.00001.gz", gz(TEX)), ("README", b"x"), ("2301/sub/2301.00002.gz", gz(TEX))]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("2301/2301.00003.gz")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    papers = list(iter_chunk(path))
    assert [(p.paper_id, p.member, p.format) for p in papers] == [
        ("2301.00001", "2301/2301.00001.gz", "tex"), ("2301.00003", "2301/2301.00003.gz", "error")]
    assert papers[1].error == "member is a symlink, not a regular file" and papers[1].data is None


def test_reads_a_non_seekable_stream_without_data(mixed_chunk):
    class Pipe:  # what an S3 streaming body offers: read() only
        def __init__(self, raw):
            self._raw = raw

        def read(self, n=-1):
            return self._raw.read(n)

    with open(mixed_chunk, "rb") as fh:
        papers = list(iter_chunk(Pipe(fh), with_data=False, max_paper_bytes=8 << 20))
    assert len(papers) == 10 and all(p.data is None for p in papers)
    tex = next(p for p in papers if p.paper_id == "2301.00002")
    assert tex.format == "tex" and tex.uncompressed_bytes == len(TEX)


def test_truncated_chunk_tar_raises_after_good_papers(mixed_chunk, tmp_path):
    data = mixed_chunk.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 3])
    seen = []
    with pytest.raises(ChunkError, match="truncated|broken"):
        for p in iter_chunk(cut, max_paper_bytes=8 << 20):
            seen.append(p.paper_id)
    assert seen and seen[0] == "2301.00001"
    not_tar = tmp_path / "x.tar"
    not_tar.write_bytes(b"this is not a tar at all" * 100)
    with pytest.raises(ChunkError, match="not a readable tar"):
        list(iter_chunk(not_tar))


def test_detect_format_edge_cases():
    v7 = bytearray(tar_bytes({"a.tex": TEX})[:512])
    v7[257:265] = bytes(8)  # strip the ustar magic, fix the checksum: a pre-POSIX tar header
    v7[148:156] = b" " * 8
    v7[148:156] = f"{sum(v7):06o}\0 ".encode()
    assert detect_format(bytes(v7)) == "tar"
    assert detect_format(b"\xef\xbb\xbf\\documentclass{revtex4}") == "tex"
    assert detect_format(b"% comment first\n\\input macros\n") == "tex"
    assert detect_format(b"\\magnification=1200\n\\centerline{Title}\n\\bye\n") == "tex"
    assert detect_format(b"<!-- generated -->\n<HTML><BODY>") == "html"
    assert detect_format(b"\xc5\xd0\xd3\xc6" + bytes(28)) == "ps"
    assert detect_format(b"") == "unknown"
    assert detect_format(b"just some words\n") == "unknown"
    assert detect_format(b"This submission has been withdrawn by arXiv administrators.\n") == "withdrawn"
    assert detect_format(b"\\section{Intro} The claim was later withdrawn in [3].") == "tex"  # mention, not notice
    long_tex = b"\\documentclass{article} This paper has been withdrawn in v1 but not here." + b" x" * 5000
    assert detect_format(long_tex, size=len(long_tex)) == "tex"  # long papers are not stubs
    assert gzip_fname(gz(b"x", "9901011.tar")) == "9901011.tar"
    assert gzip_fname(gz(b"x")) is None


def test_real_submissions_as_chunk_members(real_fixtures, tmp_path):
    """Real arXiv uploads packed as arXiv packs them: gzipped tars, a bare PDF, a single gzipped HTML file."""
    def inner(name: str, member: str) -> bytes:
        with tarfile.open(real_fixtures / name) as t:
            return t.extractfile(member).read()

    members = [
        ("0903/0903.00001.gz", (real_fixtures / "upload3.tar.gz").read_bytes()),  # already a .tar.gz = the .gz
        ("0903/0903.00002.pdf", inner("upload5.tar.gz", "upload5.pdf")),  # PDF-only: stored raw
        ("1001/1001.00003.gz", gz(inner("sampleF_html.tar.gz", "index.htm"), "index.htm")),
        ("1001/1001.00004.gz", (real_fixtures / "upload7.tar.gz").read_bytes()),  # HTML + GIFs as a tar
        ("1801/1801.03879.gz", (real_fixtures / "1801.03879-1.tar.gz").read_bytes()),
        ("0601/math0601001.gz", (real_fixtures / "upload5.tar.gz").read_bytes()),
    ]
    chunk = write_chunk(tmp_path / "real.tar", members)
    got = [(p.paper_id, p.format) for p in iter_chunk(chunk)]
    assert got == [
        ("0903.00001", "tar"), ("0903.00002", "pdf"), ("1001.00003", "html"),
        ("1001.00004", "tar"), ("1801.03879", "tar"), ("math/0601001", "tar"),
    ]
    papers = list(iter_chunk(chunk))
    with tarfile.open(fileobj=io.BytesIO(papers[4].data)) as t:
        assert any(n.endswith(".tex") for n in t.getnames())
    assert papers[1].data.startswith(b"%PDF-1.4")


def test_chunk_list_cli(mixed_chunk, capsys):
    assert main(["chunk-list", str(mixed_chunk), "--json", "--max-paper-mb", "4"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 10
    assert rows[0] == {
        "paper_id": "2301.00001", "member": "2301/2301.00001.gz", "yymm": "2301", "format": "tar",
        "compressed_bytes": rows[0]["compressed_bytes"], "uncompressed_bytes": 10240, "error": None,
        "gzip_name": None,
    }
    assert rows[7]["format"] == "error" and "cap" in rows[7]["error"]
    assert main(["chunk-list", str(mixed_chunk)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[:2] == ["2301.00003", "pdf"]
    assert main(["chunk-list", str(mixed_chunk.with_name("missing.tar"))]) == 2


def test_member_larger_than_cap_is_not_read(tmp_path):
    big = b"%PDF-1.4\n" + bytes(3000)
    chunk = write_chunk(tmp_path / "c.tar", [("2301/2301.00001.pdf", big), ("2301/2301.00002.gz", gz(TEX))])
    papers = list(iter_chunk(chunk, max_paper_bytes=2048))
    assert [p.format for p in papers] == ["error", "tex"]
    assert papers[0].error == "member size 3009 exceeds cap of 2048 bytes"
    bomb_no_data = list(iter_chunk(write_chunk(tmp_path / "b.tar", [("2301/2301.00003.gz", zero_bomb(16))]),
                               max_paper_bytes=1 << 20, with_data=False))
    assert bomb_no_data[0].format == "error" and "gzip bomb" in bomb_no_data[0].error
