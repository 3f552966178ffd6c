"""A real S3 API for tests: moto's threaded server on 127.0.0.1, plus an HTTP proxy in front of it that
behaves like production S3 where moto does not.

moto stores objects and answers the S3 API but neither enforces requester-pays nor misbehaves. `S3Proxy`
is a real HTTP server that forwards every request to moto and can:
  * refuse requests without `x-amz-request-payer: requester` with S3's own 403 AccessDenied XML
    (what s3://arxiv does), `require_payer=True`;
  * record what reached it (method, path, headers, Range, bytes sent back), for asserting headers and
    resumed ranges;
  * inject faults: a 503 SlowDown (or any status/code), or a response cut off after N body bytes.

Use from a test module (conftest.py is not ours):

    from s3server import aws_env, moto_server, s3_bucket, s3_proxy  # noqa: F401  (fixtures)
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

    def __init__(self, upstream: str, *, require_payer: bool = False) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.require_payer = require_payer
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
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
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

        if self.require_payer and headers.get("x-amz-request-payer", "").lower() != "requester":
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
            out = {k: v for k, v in resp.getheaders() if k.lower() not in ("connection", "transfer-encoding", "content-length")}
        finally:
            conn.close()
        if fault and fault[0] == "drop":
            self._reply(h, rec, resp.status, out, data, cut=fault[2])
        else:
            self._reply(h, rec, resp.status, out, data)

    def _reply(self, h, rec: Recorded, status: int, headers: dict, data: bytes, cut: int | None = None) -> None:
        rec.status = status
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
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
    """A fresh, empty bucket on the moto server: .name, .endpoint_url, .client (boto3, direct to moto)."""
    client = moto_server.client()
    name = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return SimpleNamespace(name=name, endpoint_url=moto_server.endpoint_url, client=client)


@pytest.fixture
def s3_proxy(moto_server):
    proxy = S3Proxy(moto_server.endpoint_url)
    yield proxy
    proxy.stop()
