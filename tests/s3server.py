"""A real S3 API for tests: moto's threaded server on 127.0.0.1, plus an HTTP proxy in front of it that
behaves like production S3 where moto does not.

moto stores objects and answers the S3 API but neither enforces requester-pays nor misbehaves. `S3Proxy`
is a real HTTP server that forwards every request to moto and can:
  * refuse requests without `x-amz-request-payer: requester` with S3's own 403 AccessDenied XML
    (what s3://arxiv does), `require_payer=True`;
  * record what reached it (method, path, headers, Range, bytes sent back), for asserting headers and
    resumed ranges;
  * refuse everything with 403 (`deny_all=True`: credentials without access);
  * inject faults: a 503 SlowDown (or any status/code), a response cut off after N body bytes, or a
    body with one byte flipped (a corrupt transfer).

Use from a test module (conftest.py is not ours):

    pytest_plugins = ["s3server"]   # fixtures: moto_server, aws_env, s3_bucket, s3_proxy, bucket_dir, make_bucket_dir

(Importing names from it as well makes pytest warn that it cannot rewrite its asserts; use the fixtures.)
"""

import collections
import dataclasses
import http.client
import http.server
import socket
import threading
import uuid
from types import SimpleNamespace

import pytest

_ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message>'
    b"<RequestId>TESTPROXY</RequestId><HostId>proxy</HostId></Error>"
)


class MotoServer:
    """moto's ThreadedMotoServer on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    def stop(self) -> None:
        self._server.stop()


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    status: int = 0
    body_bytes: int = 0  # response body bytes actually sent

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


class S3Proxy:
    """Forwarding proxy with S3 behaviours moto lacks (see module doc)."""

    def __init__(self, upstream: str, *, require_payer: bool = False, deny_all: bool = False) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.require_payer = require_payer
        self.deny_all = deny_all
        self.requests: list[Recorded] = []
        self._faults: collections.deque = collections.deque()
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- faults -----------------------------------------------------------------------------------
    def fail_next(self, times: int = 1, status: int = 503, code: str = "SlowDown", method: str = "GET") -> None:
        """The next `times` requests with `method` get an S3 error response."""
        with self._lock:
            for _ in range(times):
                self._faults.append(("status", method, status, code))

    def drop_next(self, after_bytes: int, times: int = 1, method: str = "GET") -> None:
        """The next `times` requests with `method` get the full headers, `after_bytes` of body, then a closed socket."""
        with self._lock:
            for _ in range(times):
                self._faults.append(("drop", method, after_bytes, None))

    def corrupt_next(self, times: int = 1, method: str = "GET") -> None:
        """The next `times` responses with `method` have their middle body byte flipped."""
        with self._lock:
            for _ in range(times):
                self._faults.append(("corrupt", method, None, None))

    def _take_fault(self, method: str):
        with self._lock:
            if self._faults and self._faults[0][1] == method:
                return self._faults.popleft()
        return None

    def gets(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "GET"]

    # --- serving ----------------------------------------------------------------------------------
    def _serve(self, h: http.server.BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in h.headers.items()}
        rec = Recorded(h.command, h.path, headers)
        with self._lock:
            self.requests.append(rec)
        length = int(headers.get("content-length", 0) or 0)
        body = h.rfile.read(length) if length else b""

        if self.deny_all or (self.require_payer and headers.get("x-amz-request-payer", "").lower() != "requester"):
            self._reply(h, rec, 403, {"Content-Type": "application/xml"}, _ACCESS_DENIED)
            return
        fault = self._take_fault(h.command)
        if fault and fault[0] == "status":
            _, _, status, code = fault
            xml = f"<Error><Code>{code}</Code><Message>injected by S3Proxy</Message></Error>".encode()
            self._reply(h, rec, status, {"Content-Type": "application/xml"}, xml)
            return

        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            fwd = {k: v for k, v in h.headers.items() if k.lower() not in ("connection", "transfer-encoding")}
            conn.request(h.command, h.path, body=body, headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
            drop = ("connection", "transfer-encoding") if h.command == "HEAD" else ("connection", "transfer-encoding", "content-length")
            out = {k: v for k, v in resp.getheaders() if k.lower() not in drop}
        finally:
            conn.close()
        if fault and fault[0] == "corrupt" and data:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]
        if fault and fault[0] == "drop":
            self._reply(h, rec, resp.status, out, data, cut=fault[2])
        else:
            self._reply(h, rec, resp.status, out, data)

    def _reply(self, h, rec: Recorded, status: int, headers: dict, data: bytes, cut: int | None = None) -> None:
        rec.status = status
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if h.command != "HEAD" or "content-length" not in {k.lower() for k in headers}:
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command == "HEAD":
            return
        payload = data if cut is None else data[:cut]
        h.wfile.write(payload)
        rec.body_bytes = len(payload)
        if cut is not None:  # the connection dies mid-body, as a flaky network would make it
            h.wfile.flush()
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- building buckets ---------------------------------------------------------------------------


def build_bucket_dir(root, chunks: dict[str, list[tuple[str, bytes]]], timestamp: str = "Thu Nov  7 07:23:49 2024"):
    """Write a local bucket: `src/<chunk>.tar` per chunk (members in order) and a manifest with real md5s.
    `chunks` maps `arXiv_src_YYMM_NNN` to its (member name, bytes). Returns the parsed Manifest."""
    import hashlib
    import io
    import tarfile
    from pathlib import Path

    from pipeline.source.manifest import MANIFEST_KEY, ManifestEntry, parse_manifest, render_manifest

    root = Path(root)
    (root / "src").mkdir(parents=True, exist_ok=True)
    entries = []
    for chunk, members in chunks.items():
        yymm, seq = chunk.split("_")[2:4]
        path = root / "src" / f"{chunk}.tar"
        content = hashlib.md5()
        with tarfile.open(path, "w") as t:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 1_700_000_000
                t.addfile(info, io.BytesIO(data))
                content.update(data)
        data = path.read_bytes()
        ids = [m.rsplit("/", 1)[-1].split(".gz")[0].removesuffix(".pdf") for m, _ in members]
        entries.append(ManifestEntry(
            content_md5sum=content.hexdigest(), filename=f"src/{chunk}.tar", first_item=ids[0], last_item=ids[-1],
            md5sum=hashlib.md5(data).hexdigest(), num_items=len(members), seq_num=int(seq), size=len(data),
            timestamp="2024-11-01 00:00:00", yymm=yymm,
        ))
    (root / MANIFEST_KEY).write_bytes(render_manifest(entries, timestamp))
    return parse_manifest(root / MANIFEST_KEY)


def upload_dir(client, bucket: str, root, prefix: str = "") -> None:
    """Put every file under `root` into `bucket` (under `prefix/`), keys = relative paths."""
    from pathlib import Path

    root = Path(root)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            key = path.relative_to(root).as_posix()
            client.put_object(Bucket=bucket, Key=f"{prefix}/{key}" if prefix else key, Body=path.read_bytes())


# --- pytest fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials for the AWS chain; nothing from the developer's own ~/.aws leaks in."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def s3_bucket(moto_server, aws_env):
    """A fresh, empty bucket on the moto server: .name, .endpoint_url, .client (boto3, direct to moto),
    .upload(root, prefix="") to copy a local bucket directory into it."""
    import functools

    client = moto_server.client()
    name = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return SimpleNamespace(name=name, endpoint_url=moto_server.endpoint_url, client=client,
                           upload=functools.partial(upload_dir, client, name))


@pytest.fixture
def make_bucket_dir():
    """`build_bucket_dir` as a fixture, for modules that load this one via pytest_plugins."""
    return build_bucket_dir


@pytest.fixture
def s3_proxy(moto_server):
    proxy = S3Proxy(moto_server.endpoint_url)
    yield proxy
    proxy.stop()


@pytest.fixture
def bucket_dir(tmp_path):
    """A small local bucket: two chunks over two months (one 19xx), ~3 MB in the first. Returns (root, manifest)."""
    import gzip
    import random

    rng = random.Random(0)
    tex = gzip.compress(b"\\documentclass{article}\\begin{document}x\\end{document}\n", mtime=0)
    root = tmp_path / "bucket"
    manifest = build_bucket_dir(root, {
        "arXiv_src_2301_001": [
            ("2301/2301.00001.gz", tex),
            ("2301/2301.00002.pdf", b"%PDF-1.4\n" + rng.randbytes(3 << 20)),
            ("2301/2301.00003.gz", tex),
        ],
        "arXiv_src_9912_001": [("9912/hep-th9912001.gz", tex)],
    })
    return root, manifest
