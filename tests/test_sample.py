"""The sample bucket: layout like s3://arxiv, manifest integrity, metadata, ground truth, hostile members.

Everything is read back with tarfile/gzip/zlib (and Pillow/pypdfium2/pylatexenc for content), never with the
code that wrote it, so a wrong manifest, member or truth entry fails here.
"""

import hashlib
import io
import json
import re
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.cli import main
from pipeline.sample import figures
from pipeline.sample.bucket import write_sample_bucket
from pipeline.source.manifest import md5_file, parse_manifest
from pipeline.source.oai import parse_file
from pipeline.source.taxonomy import field_of

N_PAPERS = 40
SEED = 3
PAGE = 15
CAP = 64 << 20  # decompression cap used when reading members back


@pytest.fixture(scope="module")
def bucket(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "bucket"
    summary = write_sample_bucket(out, papers=N_PAPERS, seed=SEED, page_size=PAGE)
    assert summary.papers == N_PAPERS
    return out


@pytest.fixture(scope="module")
def truth(bucket) -> list[dict]:
    return [json.loads(line) for line in (bucket / "truth/papers.jsonl").read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def members(bucket) -> dict[str, bytes]:
    """Every chunk member's bytes, keyed by member name."""
    out = {}
    for tar_path in sorted((bucket / "src").glob("arXiv_src_*.tar")):
        with tarfile.open(tar_path) as tar:
            for m in tar:
                out[m.name] = tar.extractfile(m).read()
    return out


def gunzip_capped(data: bytes, cap: int = CAP) -> tuple[bytes, bool]:
    """(decompressed bytes up to cap, whether the cap was hit)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = d.decompress(data, cap + 1)
    return out[:cap], len(out) > cap


def gzip_fname(data: bytes) -> str | None:
    if data[3] & 0x08 == 0:
        return None
    start = 10 + (2 + int.from_bytes(data[10:12], "little") if data[3] & 0x04 else 0)
    return data[start:data.index(b"\0", start)].decode("latin-1")


def bundle(data: bytes) -> dict[str, tarfile.TarInfo | bytes]:
    """Inner tar of a paper: name -> bytes for regular files, TarInfo for anything else."""
    raw, capped = gunzip_capped(data)
    assert not capped
    out: dict = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for m in tar:
            name = m.name[2:] if m.name.startswith("./") else m.name
            out[name] = tar.extractfile(m).read() if m.isreg() else m
    return out


# ---------------------------------------------------------------------------------------------- layout


def test_layout_like_the_s3_bucket(bucket):
    assert (bucket / "src/arXiv_src_manifest.xml").is_file()
    tars = sorted(p.name for p in (bucket / "src").glob("*.tar"))
    assert all(re.fullmatch(r"arXiv_src_\d{4}_\d{3}\.tar", t) for t in tars)
    assert len(tars) >= 4
    assert {t[10:14] for t in tars} >= {"0601", "2301", "2302"}
    assert sorted(p.name for p in (bucket / "metadata").iterdir()) == [
        f"ListRecords-{i:05d}.xml" for i in range(1, -(-N_PAPERS // PAGE) + 1)]
    assert not list(bucket.rglob(".*.part")), "temporary files left behind"


def test_manifest_matches_the_tars(bucket):
    manifest = parse_manifest(bucket / "src/arXiv_src_manifest.xml")
    assert manifest.timestamp and re.fullmatch(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", manifest.timestamp)
    assert [e.filename for e in manifest.entries] == sorted(e.filename for e in manifest.entries)
    on_disk = {f"src/{p.name}" for p in (bucket / "src").glob("*.tar")}
    assert {e.filename for e in manifest.entries} == on_disk
    for e in manifest.entries:
        path = bucket / e.filename
        assert md5_file(path) == e.md5sum
        assert path.stat().st_size == e.size
        with tarfile.open(path) as tar:
            infos = tar.getmembers()
            content = hashlib.md5(b"".join(tar.extractfile(m).read() for m in infos)).hexdigest()
        names = [m.name for m in infos]
        assert names == sorted(names)
        assert all(n.startswith(f"{e.yymm}/") and n.endswith((".gz", ".pdf")) for n in names)
        stems = [n.split("/", 1)[1].rsplit(".", 1)[0] for n in names]
        assert (e.num_items, e.first_item, e.last_item) == (len(names), stems[0], stems[-1])
        assert content == e.content_md5sum
        assert e.chunk.endswith(f"_{e.seq_num:03d}")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", e.timestamp)
    months = {e.yymm for e in manifest.entries}
    assert len(months) >= 2 and "0601" in months
    assert any("/" not in e.first_item and not e.first_item[0].isdigit() for e in manifest.entries), \
        "old-style first_item (e.g. math0601001) expected"


def test_every_paper_is_in_its_chunk_and_in_the_metadata(bucket, truth, members):
    assert len(truth) == N_PAPERS == len(members)
    for t in truth:
        assert t["member"] in members
        assert t["member"].startswith(t["yymm"] + "/")
        stem = t["member"].split("/", 1)[1].rsplit(".", 1)[0]
        assert stem == t["paper_id"].replace("/", "")  # math/0601001 <-> math0601001
        assert f"{t['chunk']}.tar" in {p.name for p in (bucket / "src").glob("*.tar")}
        with tarfile.open(bucket / "src" / f"{t['chunk']}.tar") as tar:
            assert t["member"] in tar.getnames()
    records = {}
    for page in sorted((bucket / "metadata").glob("*.xml")):
        for rec in parse_file(page).records:
            assert rec.id not in records
            records[rec.id] = rec
    assert set(records) == {t["paper_id"] for t in truth}
    for t in truth:
        rec = records[t["paper_id"]]
        assert rec.categories == t["categories"] and rec.categories[0] == rec.primary_category == t["primary_category"]
        yy, mm = t["yymm"][:2], t["yymm"][2:]
        assert rec.created.startswith(f"{2000 + int(yy) if int(yy) < 91 else 1900 + int(yy)}-{mm}-")
        assert rec.title == t["title"] and rec.authors and len(rec.abstract) > 50
        assert "$" in rec.abstract  # abstracts carry math
        if rec.updated:
            assert rec.updated > rec.created


def test_metadata_pages_are_linked_by_resumption_tokens(bucket):
    pages = [parse_file(p) for p in sorted((bucket / "metadata").glob("*.xml"))]
    assert [len(p.records) for p in pages] == [PAGE, PAGE, N_PAPERS - 2 * PAGE]
    assert all(p.resumption_token for p in pages[:-1]) and pages[-1].resumption_token is None
    texts = [p.read_text() for p in sorted((bucket / "metadata").glob("*.xml"))]
    for i, (page, nxt) in enumerate(zip(pages[:-1], texts[1:], strict=True), 1):
        # the next response echoes the token it was asked for; the token encodes how many came before
        assert re.search(r'<request [^>]*resumptionToken="([^"]+)"', nxt).group(1) == page.resumption_token
        assert page.resumption_token.endswith(f"skip%3D{i * PAGE}")


def test_categories_span_fields(truth):
    cats = {c for t in truth for c in t["categories"]}
    primaries = {t["primary_category"] for t in truth}
    assert len(primaries) >= 8, primaries
    assert len({field_of(c) for c in primaries}) >= 4
    assert cats >= primaries


# ---------------------------------------------------------------------------------------------- formats


def test_source_formats_match_magic_bytes(truth, members):
    seen = set()
    for t in truth:
        data = members[t["member"]]
        fmt = t["source_format"]
        seen.add(fmt)
        if fmt == "pdf":
            assert data.startswith(b"%PDF-") and t["member"].endswith(".pdf") and t["status"] == "pdf_only"
            continue
        assert data[:2] == b"\x1f\x8b", t["paper_id"]
        head, _ = gunzip_capped(data, 1 << 16)
        if fmt == "tar":
            assert head[257:262] == b"ustar"
        elif fmt == "withdrawn":
            assert gzip_fname(data) == "withdrawn" and len(head) < 100 and t["status"] == "withdrawn"
        elif fmt == "tex":
            assert head.lstrip().startswith(b"\\documentclass") and t["main_tex"] is None
        elif fmt == "ps":
            assert head.startswith(b"%!PS-Adobe") and t["status"] == "no_source"
        elif fmt == "html":
            assert head.lower().startswith(b"<!doctype html") and t["status"] == "no_source"
    assert seen >= {"tar", "tex", "pdf", "withdrawn", "ps", "html"}


def test_single_file_tex_sources(truth, members):
    singles = [t for t in truth if t["source_format"] == "tex"]
    statuses = {g["status"] for t in singles for f in t["figures"] for g in f["graphics"]}
    assert {"tikz", "missing"} <= statuses
    for t in singles:
        tex, _ = gunzip_capped(members[t["member"]])
        assert tex.count(b"\\begin{figure}") == len(t["figures"])


# ---------------------------------------------------------------------------------------------- truth


def _tar_papers(truth):
    return [t for t in truth if t["source_format"] == "tar" and t["status"] != "error"]


def test_truth_agrees_with_the_bundles(truth, members):
    for t in _tar_papers(truth):
        files = bundle(members[t["member"]])
        main = files[t["main_tex"]]
        assert b"\\documentclass" in main and b"\\begin{document}" in main
        tex = b"\n".join(v for k, v in files.items() if k.endswith(".tex") and isinstance(v, bytes))
        enc = "latin-1" if "latin1" in t["features"] else "utf-8"
        tex_text = tex.decode(enc)
        for f in t["figures"]:
            assert f["caption_latex"] in tex_text, (t["paper_id"], f["figure_index"])
            assert [g["subcaption_text"] is not None for g in f["graphics"]].count(True) in (0, len(f["graphics"]))
            for g in f["graphics"]:
                if g["status"] in ("ok", "error"):
                    assert isinstance(files.get(g["path"]), bytes), (t["paper_id"], g)
                    assert g["as_written"] in tex_text
                elif g["status"] == "missing":
                    assert g["path"] is None and not isinstance(files.get(g["as_written"]), bytes)
                else:
                    assert g["status"] == "tikz" and b"tikzpicture" in tex
        for d in t["decoys"]:
            assert isinstance(files.get(d["graphic"]), bytes)
        assert [f["figure_index"] for f in t["figures"]] == list(range(1, len(t["figures"]) + 1))


def test_caption_text_is_what_pylatexenc_makes_of_the_caption(truth):
    """The truth's plain captions agree with a real LaTeX-to-text converter (after the user macros and
    the changes-package commands are expanded, which an extractor must do itself)."""
    from pylatexenc.latex2text import LatexNodes2Text

    l2t = LatexNodes2Text(math_mode="verbatim")

    def expand(c: str) -> str:
        c = c.replace("\\ours{}", "SciFact")
        c = re.sub(r"\\replaced\{([^{}]*)\}\{[^{}]*\}", r"\1", c)
        c = re.sub(r"\\added\{([^{}]*)\}", r"\1", c)
        return re.sub(r"\\deleted\{[^{}]*\}", "", c)

    figs = [f for t in truth for f in t["figures"]]
    assert figs
    for f in figs:
        got = re.sub(r"\s+", " ", l2t.latex_to_text(expand(f["caption_latex"])).replace("\xa0", " ")).strip()
        assert got == f["caption_text"]
    assert any("<ref>" in f["caption_text"] for f in figs) and any("<cit.>" in f["caption_text"] for f in figs)
    assert any("$" in f["caption_text"] for f in figs)


def test_latex_variety_is_planted(truth, members):
    figs = [f for t in truth for f in t["figures"]]
    assert {"figure", "figure*", "wrapfigure", "sidewaysfigure", "captionof"} <= {f["env"] for f in figs}
    assert {"subcaption", "subfloat", "subfigure", "plottwo"} <= {f["sub_style"] for f in figs}
    assert {"macro", "tikz"} <= {f["written_as"] for f in figs}
    assert {"plot", "diagram", "photo", "table", "tikz"} <= {f["figure_kind"] for f in figs}
    assert any(f["short_caption"] for f in figs)
    graphics = [g for f in figs for g in f["graphics"]]
    written = [g["as_written"] or "" for g in graphics]
    assert any(w.startswith("\\figdir") for w in written)
    assert any(" " in w for w in written) and any(re.search(r"\.\d+$", w) for w in written)
    notes = " ".join(g["note"] or "" for g in graphics)
    assert "case-insensitive" in notes and "pdfTeX takes the .pdf" in notes
    assert {"pdf", "png", "jpg", "eps"} <= {g["format"] for g in graphics}
    sources = {}
    for t in _tar_papers(truth):
        files = bundle(members[t["member"]])
        sources[t["paper_id"]] = (t, files)
    features = {f for t, _ in sources.values() for f in t["features"]}
    assert {"input_tree", "graphicspath", "deadcode", "readme00", "latin1", "appledouble", "draft_tex"} <= features
    for t, files in sources.values():
        main = files[t["main_tex"]]
        if "latin1" in t["features"]:
            with pytest.raises(UnicodeDecodeError):
                main.decode("utf-8")
            assert b"[latin1]{inputenc}" in main and "Schrödinger" in main.decode("latin-1")
        if "readme00" in t["features"]:
            assert files["00README.XXX"].startswith(t["main_tex"].encode())
            assert b"\\documentclass" in files["response_letter.tex"]
        if "deadcode" in t["features"]:
            assert b"\\iffalse" in main and b"\\begin{comment}" in main
            assert main.split(b"\\end{document}", 1)[1].count(b"\\begin{figure}") == 1
            assert {d["where"] for d in t["decoys"]} >= {"percent", "iffalse", "comment_env", "after_end"}
        if "appledouble" in t["features"]:
            assert any(k.rsplit("/", 1)[-1].startswith("._") for k in files)
        if "input_tree" in t["features"]:
            assert re.search(rb"\\(input|include)\s*\{?sections/|\\include\{appendix/", main)


# ---------------------------------------------------------------------------------------------- images


def test_images_decode_except_the_planted_corrupt_ones(truth, members):
    import pypdfium2

    modes = set()
    for t in _tar_papers(truth):
        files = bundle(members[t["member"]])
        for f in t["figures"]:
            for g in f["graphics"]:
                if g["status"] not in ("ok", "error"):
                    continue
                data = files[g["path"]]
                if g["status"] == "error":
                    with pytest.raises((OSError, Image.DecompressionBombError, SyntaxError)):
                        with Image.open(io.BytesIO(data)) as im:
                            im.load()
                    continue
                if g["format"] == "pdf":
                    doc = pypdfium2.PdfDocument(data)
                    assert len(doc) == 1 and doc[0].get_size()[0] > 100
                    doc.close()
                elif g["format"] == "eps":
                    assert data.startswith(b"%!PS-Adobe-3.0 EPSF-3.0") and b"%%BoundingBox:" in data
                    assert b"%%CreationDate: Thu Jan  1 00:00:00 1970" in data
                else:
                    with Image.open(io.BytesIO(data)) as im:
                        im.load()
                        modes.add((g["encoding"], im.mode))
                        if g["encoding"] == "jpg-exif":
                            assert im.getexif().get(0x0112) == 6
                        if g["encoding"] == "png-rgba":
                            assert np.asarray(im)[..., 3].min() == 0  # really transparent somewhere
    assert {("png16", "I;16"), ("jpg-cmyk", "CMYK"), ("png-rgba", "RGBA"), ("png-palette", "P")} <= modes


def test_categories_and_kinds_look_different():
    """Per-category style is real signal: astro plots are dark, cs plots are light; photos differ from plots."""
    def mean(subkind, cat):
        d = figures.draw(subkind, cat, np.random.default_rng(0))
        img = Image.open(io.BytesIO(figures.encode(d, "png"))).convert("RGB")
        return np.asarray(img, float).mean(axis=(0, 1))

    astro, cs_lg, qbio = mean("line", "astro-ph.GA"), mean("line", "cs.LG"), mean("line", "q-bio.NC")
    assert astro.mean() < 80 < 200 < cs_lg.mean()
    assert qbio[1] > qbio[0]  # q-bio is green-tinted
    assert abs(mean("photo", "cs.CV").mean() - mean("line", "cs.CV").mean()) > 30


# ---------------------------------------------------------------------------------------------- hostile


def test_hostile_members_are_planted(truth, members):
    kinds = {h["kind"] for t in truth for h in t["hostile"]}
    assert kinds >= {"path_traversal", "absolute_path", "device", "symlink", "hardlink", "gzip_bomb",
                     "truncated_image", "pixel_bomb"}
    for t in truth:
        if not t["hostile"] or t["status"] == "error":
            continue
        raw, _ = gunzip_capped(members[t["member"]])
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            infos = {m.name: m for m in tar}
        for h in t["hostile"]:
            if h["kind"] in ("truncated_image", "pixel_bomb"):
                continue
            info = infos[h["member"]]
            if h["kind"] == "symlink":
                assert info.issym() and info.linkname == "/etc/passwd"
            elif h["kind"] == "hardlink":
                assert info.islnk() and info.linkname == h["target"]
            elif h["kind"] == "device":
                assert info.ischr()
            else:
                assert info.isreg() and (info.name.startswith("../") or info.name.startswith("/"))


def test_gzip_bomb_is_small_on_disk_and_huge_inside(truth, members):
    (bomb,) = [t for t in truth if any(h["kind"] == "gzip_bomb" for h in t["hostile"])]
    assert bomb["status"] == "error" and bomb["source_format"] == "tar"
    data = members[bomb["member"]]
    assert len(data) < 2 << 20
    head, capped = gunzip_capped(data, CAP)
    assert capped and head[257:262] == b"ustar"
    declared = bomb["hostile"][0]["decompressed_bytes"]
    assert declared >= 1 << 30
    assert int.from_bytes(data[-4:], "little") == declared % (1 << 32)  # gzip ISIZE trailer


# ---------------------------------------------------------------------------------------------- determinism, CLI


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(bucket, tmp_path):
    again = tmp_path / "again"
    write_sample_bucket(again, papers=N_PAPERS, seed=SEED, page_size=PAGE, workers=2)
    assert _digests(again) == _digests(bucket)


def test_other_seed_differs_and_rerun_replaces_stale_files(tmp_path):
    out = tmp_path / "b"
    calls = []
    write_sample_bucket(out, papers=8, seed=1, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 8) for i in range(1, 9)]
    first = _digests(out)
    (out / "src/arXiv_src_2302_009.tar").write_bytes(b"stale")
    write_sample_bucket(out, papers=5, seed=2)
    second = _digests(out)
    assert first != second and "src/arXiv_src_2302_009.tar" not in second
    manifest = parse_manifest(out / "src/arXiv_src_manifest.xml")
    assert {e.filename for e in manifest.entries} == {k for k in second if k.endswith(".tar")}


def test_cli_writes_a_bucket_and_prints_a_summary(tmp_path, capsys):
    assert main(["sample-bucket", str(tmp_path / "cli"), "--papers", "4", "--seed", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["papers"] == 4 and len(summary["months"]) == 3
    assert (tmp_path / "cli/src/arXiv_src_manifest.xml").is_file()


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert main(["sample-bucket", str(tmp_path / "x"), "--papers", "1"]) == 2
    assert "at least 3" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["sample-bucket", str(tmp_path / "file")]) == 2
    assert main(["sample-bucket", str(tmp_path / "file" / "sub"), "--papers", "3"]) == 2
    assert "choose a writable directory" in capsys.readouterr().err
