"""Chunk download against moto's S3 server behind a fault-injecting HTTP proxy, and from a local bucket."""

import dataclasses
import hashlib
import os

import pytest

from forge_common import ProgressLog
from pipeline.cli import main
from pipeline.errors import UserError
from pipeline.source.bucket import open_bucket
from pipeline.source.chunk import iter_chunk
from pipeline.source.download import ChunkIntegrityError, download_chunk, open_chunk

pytest_plugins = ["s3server"]  # fixtures: moto_server, aws_env, s3_bucket, s3_proxy, bucket_dir


@pytest.fixture
def s3(bucket_dir, s3_bucket, s3_proxy):
    """The sample bucket on moto, read through the proxy; returns (bucket, entry of the 3 MB chunk, root, proxy)."""
    root, manifest = bucket_dir
    s3_bucket.upload(root)
    bucket = open_bucket(f"s3://{s3_bucket.name}", endpoint_url=s3_proxy.endpoint_url, max_attempts=1)
    entry = manifest.by_chunk()["arXiv_src_2301_001"]
    return bucket, entry, root, s3_proxy


def test_download_then_skip_when_complete(s3, tmp_path):
    bucket, entry, root, proxy = s3
    seen = []
    path = download_chunk(bucket, entry, tmp_path / "dest", progress=lambda d, t: seen.append((d, t)))
    assert path == tmp_path / "dest" / "arXiv_src_2301_001.tar"
    assert path.read_bytes() == (root / entry.filename).read_bytes()
    assert not path.with_name(path.name + ".part").exists()
    assert path.with_name(path.name + ".md5").read_text().split()[:2] == [entry.md5sum, str(entry.size)]
    assert seen[-1] == (entry.size, entry.size) and len(seen) >= 3
    gets = len(proxy.gets())
    assert download_chunk(bucket, entry, tmp_path / "dest") == path
    assert len(proxy.gets()) == gets  # sidecar fresh: no request, no rehash


def test_resume_fetches_only_the_rest(s3, tmp_path):
    bucket, entry, root, proxy = s3
    data = (root / entry.filename).read_bytes()
    dest = tmp_path / "dest"
    dest.mkdir()
    have = 1_234_567
    (dest / "arXiv_src_2301_001.tar.part").write_bytes(data[:have])
    lines = []
    progress = ProgressLog("c", unit="MB", scale=1e6, start=None, emit=lines.append)
    path = download_chunk(bucket, entry, dest, progress=progress)
    assert hashlib.md5(path.read_bytes()).hexdigest() == entry.md5sum
    assert progress.new == entry.size - have  # the rate and the CLI's total count this run's bytes only
    assert lines[-1].startswith(f"c: {entry.size / 1e6:,.1f}/{entry.size / 1e6:,.1f} MB (100.0%), ")
    (get,) = proxy.gets()
    assert get.range == f"bytes={have}-"
    assert get.body_bytes == entry.size - have


def test_dropped_connection_is_resumed_where_it_broke(s3, tmp_path):
    bucket, entry, _, proxy = s3
    proxy.drop_next(after_bytes=2_500_000)
    path = download_chunk(bucket, entry, tmp_path, backoff=0.01)
    assert hashlib.md5(path.read_bytes()).hexdigest() == entry.md5sum
    first, second = proxy.gets()
    assert first.range is None and first.body_bytes == 2_500_000
    start = int(second.range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 2_500_000  # resumed from what reached the disk, not from zero
    assert second.body_bytes == entry.size - start


def test_interrupted_download_leaves_no_final_file(s3, tmp_path):
    bucket, entry, _, proxy = s3
    proxy.drop_next(after_bytes=2_500_000)
    with pytest.raises(UserError, match="giving up.*partial download.*resumes"):
        download_chunk(bucket, entry, tmp_path, retries=0)
    final = tmp_path / "arXiv_src_2301_001.tar"
    assert not final.exists() and not final.with_name(final.name + ".md5").exists()
    part = final.with_name(final.name + ".part")
    assert 0 < part.stat().st_size < entry.size
    download_chunk(bucket, entry, tmp_path)  # the next run completes it
    assert final.exists() and not part.exists()
    assert proxy.gets()[-1].range == f"bytes={part_size_before(proxy)}-"


def part_size_before(proxy) -> int:
    return int(proxy.gets()[-1].range.removeprefix("bytes=").rstrip("-"))


def test_throttling_retried_with_backoff(s3, tmp_path):
    bucket, entry, _, proxy = s3
    proxy.fail_next(times=3, status=503, code="SlowDown")
    path = download_chunk(bucket, entry, tmp_path, backoff=0.01)
    assert path.exists()
    assert [r.status for r in proxy.gets()] == [503, 503, 503, 200]
    proxy.fail_next(times=3, status=500, code="InternalError")
    with pytest.raises(UserError, match="giving up .* after 3 attempts .*InternalError"):
        download_chunk(bucket, entry, tmp_path / "other", retries=2, backoff=0.01)
    assert not (tmp_path / "other" / "arXiv_src_2301_001.tar").exists()


def test_corrupt_transfer_detected_and_downloaded_again(s3, tmp_path):
    bucket, entry, _, proxy = s3
    proxy.corrupt_next(times=1)
    path = download_chunk(bucket, entry, tmp_path, backoff=0.01)
    assert hashlib.md5(path.read_bytes()).hexdigest() == entry.md5sum
    assert [r.range for r in proxy.gets()] == [None, None]  # the bad copy was discarded, not resumed


def test_wrong_manifest_md5_is_a_clear_error_after_retries(s3, tmp_path):
    bucket, entry, _, proxy = s3
    wrong = dataclasses.replace(entry, md5sum="0" * 32)
    with pytest.raises(ChunkIntegrityError, match="does not match the manifest.*after 3 downloads.*re-read the manifest"):
        download_chunk(bucket, wrong, tmp_path / "dest", retries=2)
    assert len(proxy.gets()) == 3
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["arXiv_src_2301_001.tar.lock"]


def test_local_bucket_download_and_stale_file(bucket_dir, tmp_path):
    root, manifest = bucket_dir
    bucket = open_bucket(root)
    entry = manifest.by_chunk()["arXiv_src_9912_001"]
    path = download_chunk(bucket, entry, tmp_path)
    assert path.read_bytes() == (root / entry.filename).read_bytes()
    # same size, different bytes (a repack, a bad disk): the sidecar is stale, the hash exposes it
    data = bytearray(path.read_bytes())
    data[600] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))
    assert download_chunk(bucket, entry, tmp_path).read_bytes() == (root / entry.filename).read_bytes()
    # a file with the right bytes but no sidecar is accepted after one hash
    path.with_name(path.name + ".md5").unlink()
    mtime = path.stat().st_mtime_ns
    download_chunk(bucket, entry, tmp_path)
    assert path.stat().st_mtime_ns == mtime and path.with_name(path.name + ".md5").exists()


def test_open_chunk_in_place(s3, bucket_dir):
    bucket, entry, root, _ = s3
    with open_chunk(bucket, entry) as stream:
        ids = [p.paper_id for p in iter_chunk(stream)]
    assert ids == ["2301.00001", "2301.00002", "2301.00003"]
    local = open_bucket(root)
    with open_chunk(local, entry) as path:
        assert path == root / entry.filename
        assert [p.paper_id for p in iter_chunk(path)] == ids
    wrong = dataclasses.replace(entry, md5sum="f" * 32)
    with pytest.raises(ChunkIntegrityError, match="read in place"):
        with open_chunk(bucket, wrong) as stream:
            list(iter_chunk(stream))


def test_download_cli(s3, tmp_path, capsys):
    bucket, entry, _, proxy = s3
    name = bucket.url.removeprefix("s3://")
    argv = ["download", f"s3://{name}", "--endpoint-url", proxy.endpoint_url, "--dest", str(tmp_path)]
    assert main([*argv, "--chunk", "2301_001", "arXiv_src_9912_001"]) == 0
    out = capsys.readouterr().out.split()
    assert out == [str(tmp_path / "arXiv_src_2301_001.tar"), str(tmp_path / "arXiv_src_9912_001.tar")]
    assert main([*argv, "--chunk", "arXiv_src_2301_009"]) == 2
    assert "not in the manifest" in capsys.readouterr().err
    assert main([*argv, "--month", "9912"]) == 0
    assert main([*argv, "--all"]) == 0
    capsys.readouterr()
    # chunk-list streams a chunk straight from the bucket, no local copy
    assert main(["chunk-list", f"s3://{name}/{entry.filename}", "--endpoint-url", proxy.endpoint_url]) == 0
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()] == [
        ["2301.00001", "tex"], ["2301.00002", "pdf"], ["2301.00003", "tex"]]


def test_unwritable_destination_is_a_user_error(bucket_dir, tmp_path):
    root, manifest = bucket_dir
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(UserError, match="cannot create the download directory"):
        download_chunk(open_bucket(root), manifest.entries[0], blocker / "sub")
