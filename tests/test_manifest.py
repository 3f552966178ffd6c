"""The bulk-source manifest: parsing as arXiv writes it (trailing <timestamp>, 19xx last), and `arxiv-forge manifest`."""

import json

import pytest

from pipeline.cli import main
from pipeline.errors import UserError
from pipeline.source.manifest import chunk_name, month_of, parse_manifest, render_manifest

pytest_plugins = ["s3server"]  # fixtures: moto_server, aws_env, s3_bucket, bucket_dir


def file_xml(yymm: str, seq: int, first: str, last: str, n: int, size: int) -> str:
    return f"""<file>
<content_md5sum>cacbfede21d5dfef26f367ec99384546</content_md5sum>
<filename>src/arXiv_src_{yymm}_{seq:03d}.tar</filename>
<first_item>{first}</first_item>
<last_item>{last}</last_item>
<md5sum>949ae880fbaf4649a485a8d9e07f370b</md5sum>
<num_items>{n}</num_items>
<seq_num>{seq}</seq_num>
<size>{size}</size>
<timestamp>2010-12-23 00:13:59</timestamp>
<yymm>{yymm}</yymm>
</file>"""


# Filename order, as in the real file: 0001.. first, 9108..9912 last; then the trailing <timestamp>.
MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<arXivSRC>\n'
    + file_xml("0001", 1, "astro-ph0001001", "quant-ph0001119", 2364, 225605507)
    + file_xml("2301", 1, "2301.00001", "2301.01200", 1200, 536905569)
    + file_xml("2301", 2, "2301.01201", "2301.02400", 1200, 1910000000)
    + file_xml("9108", 1, "hep-th9108001", "hep-th9108003", 3, 53000)
    + file_xml("9912", 1, "astro-ph9912001", "solv-int9912010", 2500, 180000000)
    + "<timestamp>Thu Nov  7 07:23:49 2024</timestamp>\n</arXivSRC>\n"
)


def test_parse_real_layout():
    m = parse_manifest(MANIFEST.encode())
    assert m.timestamp == "Thu Nov  7 07:23:49 2024"
    assert len(m.entries) == 5  # the trailing <timestamp> is not a chunk
    e = m.entries[0]
    assert (e.filename, e.first_item, e.num_items, e.seq_num, e.size, e.yymm) == (
        "src/arXiv_src_0001_001.tar", "astro-ph0001001", 2364, 1, 225605507, "0001")
    assert e.chunk == "arXiv_src_0001_001" and e.month == "2000-01"
    assert [x.chunk for x in m.sorted()] == [
        "arXiv_src_9108_001", "arXiv_src_9912_001", "arXiv_src_0001_001", "arXiv_src_2301_001", "arXiv_src_2301_002"]
    s = m.summary()
    assert s == {"chunks": 5, "items": 7267, "bytes": 2852564076, "first_month": "1991-08",
                 "last_month": "2023-01", "timestamp": "Thu Nov  7 07:23:49 2024"}


def test_render_round_trip(tmp_path):
    m = parse_manifest(MANIFEST.encode())
    path = tmp_path / "arXiv_src_manifest.xml"
    path.write_bytes(render_manifest(reversed(m.entries), m.timestamp))
    again = parse_manifest(path)
    assert again.entries == sorted(m.entries, key=lambda e: e.filename) and again.timestamp == m.timestamp


@pytest.mark.parametrize("xml, message", [
    (b"<arXivSRC><file>", "not valid XML"),
    (b"<arXivPDFx/>", "expected <arXivSRC>"),
    (b"<arXivSRC><file><filename>src/a.tar</filename></file></arXivSRC>", "lacks content_md5sum"),
    (MANIFEST.replace("<size>53000</size>", "<size>big</size>").encode(), "size is 'big', not an integer"),
    (MANIFEST.replace("<yymm>9912</yymm>", "<yymm>99-12</yymm>").encode(), "expected 4 digits"),
])
def test_bad_manifests_are_user_errors(xml, message):
    with pytest.raises(UserError, match=message):
        parse_manifest(xml)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot read manifest"):
        parse_manifest(tmp_path / "nope.xml")


def test_month_and_chunk_names():
    assert [month_of(y) for y in ("9108", "9912", "0001", "0704", "2410")] == [
        "1991-08", "1999-12", "2000-01", "2007-04", "2024-10"]
    assert chunk_name("src/arXiv_src_2301_004.tar") == "arXiv_src_2301_004"
    assert chunk_name("arXiv_src_2301_004") == "arXiv_src_2301_004"
    assert chunk_name("s3://arxiv/src/arXiv_src_2301_004.tar") == chunk_name("arXiv_src_2301_004.tar.gz")
    with pytest.raises(UserError, match="cannot derive a chunk name"):
        chunk_name("src/../x y.tar")  # names are partition values on the lake: nothing else gets through


def test_manifest_cli_summary_and_json(tmp_path, capsys):
    path = tmp_path / "arXiv_src_manifest.xml"
    path.write_text(MANIFEST)
    assert main(["manifest", str(path)]) == 0
    out = capsys.readouterr().out
    assert "chunks    5" in out and "items     7,267" in out and "2.85 GB" in out
    assert "1991-08 .. 2023-01 (4 months)" in out and "Thu Nov  7 07:23:49 2024" in out
    assert main(["manifest", str(path), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["yymm"] for r in rows] == ["9108", "9912", "0001", "2301", "2301"]
    assert rows[0] == {
        "content_md5sum": "cacbfede21d5dfef26f367ec99384546", "filename": "src/arXiv_src_9108_001.tar",
        "first_item": "hep-th9108001", "last_item": "hep-th9108003", "md5sum": "949ae880fbaf4649a485a8d9e07f370b",
        "num_items": 3, "seq_num": 1, "size": 53000, "timestamp": "2010-12-23 00:13:59", "yymm": "9108",
    }
    assert main(["manifest", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_manifest_cli_on_bucket_dir_and_s3(bucket_dir, s3_bucket, capsys):
    root, manifest = bucket_dir
    assert main(["manifest", str(root)]) == 0
    assert "chunks    2" in capsys.readouterr().out
    s3_bucket.upload(root)
    url = f"s3://{s3_bucket.name}"
    assert main(["manifest", url, "--endpoint-url", s3_bucket.endpoint_url, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["filename"] for r in rows] == ["src/arXiv_src_9912_001.tar", "src/arXiv_src_2301_001.tar"]
    assert rows[1]["md5sum"] == manifest.by_chunk()["arXiv_src_2301_001"].md5sum
    key_url = f"{url}/src/arXiv_src_manifest.xml"
    assert main(["manifest", key_url, "--endpoint-url", s3_bucket.endpoint_url]) == 0
    assert f"manifest  {key_url}" in capsys.readouterr().out
