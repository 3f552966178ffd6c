"""The Bucket abstraction on a local directory and on a real S3 API (moto's server behind a real HTTP proxy)."""

import socket

import pytest

from pipeline.errors import UserError
from pipeline.source.bucket import LocalBucket, MissingKeyError, S3Bucket, TransientBucketError, open_bucket
from pipeline.source.manifest import MANIFEST_KEY

pytest_plugins = ["s3server"]  # fixtures: moto_server, aws_env, s3_bucket, s3_proxy, bucket_dir
PDF_KEY = "src/arXiv_src_2301_001.tar"


def _check_api(bucket, root):
    """Same behaviour whatever the bucket is."""
    data = (root / PDF_KEY).read_bytes()
    assert bucket.read_bytes(PDF_KEY) == data
    assert bucket.size(PDF_KEY) == len(data)
    with bucket.open(PDF_KEY, start=1000) as fh:
        assert fh.read() == data[1000:]
    assert bucket.exists(PDF_KEY) and not bucket.exists("src/nope.tar")
    assert list(bucket.list("src/arXiv_src_2")) == [PDF_KEY]
    assert list(bucket.list()) == sorted(["src/arXiv_src_2301_001.tar", "src/arXiv_src_9912_001.tar", MANIFEST_KEY])
    assert list(bucket.list("nothing/")) == []
    manifest = bucket.load_manifest()
    assert [e.chunk for e in manifest.sorted()] == ["arXiv_src_9912_001", "arXiv_src_2301_001"]
    with pytest.raises(MissingKeyError, match="nope.tar"):
        bucket.read_bytes("src/nope.tar")


def test_local_bucket(bucket_dir):
    root, _ = bucket_dir
    for url in (root, str(root), root.as_uri()):
        bucket = open_bucket(url)
        assert isinstance(bucket, LocalBucket)
        _check_api(bucket, root)
    assert bucket.local_path(PDF_KEY) == root / PDF_KEY
    with pytest.raises(UserError, match=r"'\.\.'"):
        bucket.read_bytes("../etc/passwd")


def test_open_bucket_rejects_bad_urls(tmp_path):
    with pytest.raises(UserError, match="does not exist.*sample-bucket"):
        open_bucket(tmp_path / "missing")
    with pytest.raises(UserError, match="unsupported bucket URL"):
        open_bucket("gs://arxiv")
    with pytest.raises(UserError, match="no bucket name"):
        open_bucket("s3://")
    with pytest.raises(UserError, match="no manifest.*sample-bucket"):
        open_bucket(tmp_path).load_manifest()


def test_s3_bucket_against_moto(bucket_dir, s3_bucket):
    root, _ = bucket_dir
    s3_bucket.upload(root)
    bucket = open_bucket(f"s3://{s3_bucket.name}", endpoint_url=s3_bucket.endpoint_url)
    assert isinstance(bucket, S3Bucket) and not bucket.requester_pays
    _check_api(bucket, root)
    assert bucket.local_path(PDF_KEY) is None
    # a prefix URL: the same layout one level down
    s3_bucket.upload(root, prefix="mirror/v1")
    prefixed = open_bucket(f"s3://{s3_bucket.name}/mirror/v1/", endpoint_url=s3_bucket.endpoint_url)
    assert prefixed.url == f"s3://{s3_bucket.name}/mirror/v1"
    _check_api(prefixed, root)


def test_requester_pays_header_reaches_the_server(bucket_dir, s3_bucket, s3_proxy):
    root, _ = bucket_dir
    s3_bucket.upload(root)
    s3_proxy.require_payer = True  # like s3://arxiv: 403 without x-amz-request-payer
    bucket = open_bucket(f"s3://{s3_bucket.name}", endpoint_url=s3_proxy.endpoint_url, requester_pays=True)
    _check_api(bucket, root)
    methods = {r.method for r in s3_proxy.requests}
    assert {"GET", "HEAD"} <= methods
    assert any("list-type=2" in r.path for r in s3_proxy.requests)
    assert s3_proxy.requests and all(r.headers.get("x-amz-request-payer") == "requester" for r in s3_proxy.requests)
    assert all(r.status in (200, 206, 404) for r in s3_proxy.requests)


def test_arxiv_bucket_is_requester_pays_by_default(moto_server, aws_env, s3_proxy):
    client = moto_server.client()
    try:
        client.create_bucket(Bucket="arxiv")
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    client.put_object(Bucket="arxiv", Key="src/hello.txt", Body=b"hi")
    s3_proxy.require_payer = True
    bucket = open_bucket("s3://arxiv", endpoint_url=s3_proxy.endpoint_url)
    assert bucket.requester_pays and bucket.read_bytes("src/hello.txt") == b"hi"
    assert s3_proxy.requests[-1].headers["x-amz-request-payer"] == "requester"
    forced_off = open_bucket("s3://arxiv", endpoint_url=s3_proxy.endpoint_url, requester_pays=False)
    with pytest.raises(UserError, match="did NOT carry the requester-pays header.*--requester-pays"):
        forced_off.read_bytes("src/hello.txt")
    assert "x-amz-request-payer" not in s3_proxy.requests[-1].headers


def test_403_becomes_a_clear_user_error(bucket_dir, s3_bucket, s3_proxy):
    root, _ = bucket_dir
    s3_bucket.upload(root)
    s3_proxy.require_payer = True
    no_header = open_bucket(f"s3://{s3_bucket.name}", endpoint_url=s3_proxy.endpoint_url)
    for call in (lambda: no_header.read_bytes(PDF_KEY), lambda: no_header.size(PDF_KEY),
                 lambda: list(no_header.list()), no_header.load_manifest):
        with pytest.raises(UserError, match=r"403 AccessDenied for s3://.*requester-pays header"):
            call()
    s3_proxy.deny_all = True
    with_header = open_bucket(f"s3://{s3_bucket.name}", endpoint_url=s3_proxy.endpoint_url, requester_pays=True)
    with pytest.raises(UserError, match="credentials lack access.*s3:GetObject"):
        with_header.read_bytes(PDF_KEY)


def test_missing_credentials(s3_bucket, aws_env):
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    bucket = open_bucket(f"s3://{s3_bucket.name}", endpoint_url=s3_bucket.endpoint_url)
    with pytest.raises(UserError, match="no usable AWS credentials.*AWS_ACCESS_KEY_ID.*aws configure"):
        bucket.load_manifest()


def test_missing_bucket_key_and_unreachable_endpoint(s3_bucket):
    missing = open_bucket("s3://no-such-bucket-here", endpoint_url=s3_bucket.endpoint_url)
    with pytest.raises(UserError, match="bucket 'no-such-bucket-here' does not exist"):
        missing.read_bytes("x")
    bucket = open_bucket(f"s3://{s3_bucket.name}", endpoint_url=s3_bucket.endpoint_url)
    with pytest.raises(MissingKeyError, match="does not exist.*arxiv-forge manifest"):
        bucket.read_bytes("src/none.tar")
    with pytest.raises(UserError, match="no manifest at"):
        bucket.load_manifest()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = open_bucket(f"s3://{s3_bucket.name}", endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(UserError, match=f"cannot reach http://127.0.0.1:{port}.*--endpoint-url"):
        dead.read_bytes("x")


def test_throttling_is_transient_and_retried(bucket_dir, s3_bucket, s3_proxy):
    root, _ = bucket_dir
    s3_bucket.upload(root)
    url = f"s3://{s3_bucket.name}"
    s3_proxy.fail_next(times=1, status=503, code="SlowDown")
    once = open_bucket(url, endpoint_url=s3_proxy.endpoint_url, max_attempts=1)
    with pytest.raises(TransientBucketError, match="SlowDown"):
        once.read_bytes(MANIFEST_KEY)
    s3_proxy.fail_next(times=1, status=500, code="InternalError")
    patient = open_bucket(url, endpoint_url=s3_proxy.endpoint_url, max_attempts=3)
    assert patient.read_bytes(MANIFEST_KEY) == (root / MANIFEST_KEY).read_bytes()
    assert [r.status for r in s3_proxy.gets()] == [503, 500, 200]


def test_endpoint_from_the_environment(bucket_dir, s3_bucket, aws_env):
    root, _ = bucket_dir
    s3_bucket.upload(root)
    aws_env.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)  # how MinIO users often configure it
    bucket = open_bucket(f"s3://{s3_bucket.name}")
    assert bucket.endpoint_url == s3_bucket.endpoint_url
    assert bucket.load_manifest().by_chunk().keys() == {"arXiv_src_2301_001", "arXiv_src_9912_001"}
