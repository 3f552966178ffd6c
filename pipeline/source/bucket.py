"""The source bucket: one interface over a local mirror directory and S3 (arXiv's requester-pays bucket,
MinIO, or any S3-compatible endpoint).

    bucket = open_bucket("var/sample-bucket")            # plain path or file://... (the embedded default)
    bucket = open_bucket("s3://arxiv")                   # requester-pays, us-east-1, AWS credential chain
    bucket = open_bucket("s3://mirror/arxiv", endpoint_url="http://127.0.0.1:9000")   # MinIO

Keys are the bucket's own (`src/arXiv_src_2301_004.tar`); an `s3://bucket/prefix` URL puts them under the
prefix. Everything a user can get wrong (no credentials, 403, missing bucket or key, endpoint down) ends
in a `UserError` naming the URL and the fix; transient trouble (throttling, 5xx, dropped connections)
raises `TransientBucketError` so callers can retry.
"""

import abc
import contextlib
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from pipeline.errors import UserError
from pipeline.source.manifest import MANIFEST_KEY, Manifest, parse_manifest

log = logging.getLogger(__name__)

ARXIV_BUCKET = "arxiv"  # requester pays by default
DEFAULT_REGION = "us-east-1"
_TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
    "InternalError", "ServiceUnavailable", "503", "500", "502", "504",
}
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}


class MissingKeyError(UserError):
    """The key does not exist in the bucket (e.g. a chunk name that is not in the manifest)."""


class TransientBucketError(Exception):
    """Throttling, a 5xx or a dropped connection: worth retrying. Not a UserError on its own; callers
    that give up after retries turn it into one."""


class Bucket(abc.ABC):
    """What the pipeline needs from a bucket: read, stream with a start offset, size, list, manifest."""

    url: str

    @abc.abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def open(self, key: str, start: int = 0) -> BinaryIO:
        """A readable binary stream of `key` from byte `start` (for resuming). Close it when done."""

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under `prefix`, sorted."""

    def local_path(self, key: str) -> Path | None:
        """The file behind `key` when the bucket is a local directory, else None."""
        return None

    def key_url(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{key}"

    def load_manifest(self) -> Manifest:
        if not self.exists(MANIFEST_KEY):
            raise UserError(
                f"no manifest at {self.key_url(MANIFEST_KEY)}: is {self.url} an arXiv source bucket "
                f"(or a mirror with the same layout)? Create a sample one with `arxiv-forge sample-bucket DIR`."
            )
        return parse_manifest(self.read_bytes(MANIFEST_KEY))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def open_bucket(
    url: str | Path,
    *,
    endpoint_url: str | None = None,
    requester_pays: bool | None = None,
    region: str | None = None,
    max_attempts: int = 3,
) -> "Bucket":
    """Open a bucket by URL: a directory path, `file://DIR`, or `s3://bucket[/prefix]`.

    requester_pays: None = on for the `arxiv` bucket, off elsewhere; True/False forces it.
    endpoint_url: an S3-compatible endpoint (MinIO, moto); also read from AWS_ENDPOINT_URL_S3 /
    AWS_ENDPOINT_URL by boto3 itself when not given.
    max_attempts: attempts per call including botocore's own retries (throttling, 5xx); 1 = no retry.
    """
    text = str(url)
    parsed = urlparse(text)
    if parsed.scheme in ("s3", "s3a"):
        if not parsed.netloc:
            raise UserError(f"bucket URL {text!r} has no bucket name; expected s3://BUCKET[/PREFIX]")
        return S3Bucket(
            parsed.netloc,
            parsed.path.strip("/"),
            endpoint_url=endpoint_url,
            requester_pays=requester_pays,
            region=region,
            max_attempts=max_attempts,
        )
    if parsed.scheme == "file":
        return LocalBucket(Path(unquote(parsed.path)))
    if not parsed.scheme:
        return LocalBucket(Path(text).expanduser())
    raise UserError(f"unsupported bucket URL {text!r}: use a directory path, file://DIR or s3://BUCKET[/PREFIX]")


# --------------------------------------------------------------------------------------------------
# Local directory with the S3 layout


class LocalBucket(Bucket):
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise UserError(
                f"bucket directory {root} does not exist: give a directory laid out like s3://arxiv "
                f"(src/arXiv_src_manifest.xml, src/arXiv_src_YYMM_NNN.tar), or create one with "
                f"`arxiv-forge sample-bucket {root}`"
            )
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        # Keys come from manifests and users: never let one reach outside the root.
        parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            raise UserError(f"bucket key {key!r} contains '..'")
        return self.root.joinpath(*parts)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def _existing(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise MissingKeyError(f"{self.key_url(key)} does not exist (no file {path})")
        return path

    def read_bytes(self, key: str) -> bytes:
        return self._existing(key).read_bytes()

    def open(self, key: str, start: int = 0) -> BinaryIO:
        fh = open(self._existing(key), "rb")  # noqa: SIM115 - the caller closes it
        if start:
            fh.seek(start)
        return fh

    def size(self, key: str) -> int:
        return self._existing(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        # S3 prefixes are plain string prefixes, not directories: walk the deepest directory they name.
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        top = self._path(base) if base else self.root
        if not top.is_dir():
            return iter(())
        keys = (p.relative_to(self.root).as_posix() for p in top.rglob("*") if p.is_file())
        return iter(sorted(k for k in keys if k.startswith(prefix)))


# --------------------------------------------------------------------------------------------------
# S3 (requester pays) and S3-compatible endpoints


class S3Bucket(Bucket):
    def __init__(
        self,
        name: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        requester_pays: bool | None = None,
        region: str | None = None,
        max_attempts: int = 3,
    ):
        import boto3  # boto3 takes ~0.3 s to import; only S3 users pay for it
        from botocore.config import Config

        # boto3 reads these itself, but we also need to know: path-style addressing and error messages.
        endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
        self.name = name
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.requester_pays = (name == ARXIV_BUCKET) if requester_pays is None else requester_pays
        self.url = f"s3://{name}/{self.prefix}" if self.prefix else f"s3://{name}"
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        config = Config(
            region_name=region,
            retries={"mode": "standard", "total_max_attempts": max(1, max_attempts)},
            connect_timeout=10,
            read_timeout=60,
            # Path-style works for every S3-compatible server; AWS accepts it for `arxiv` too.
            s3={"addressing_style": "path"} if endpoint_url else {},
        )
        self._client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        # "Found credentials in environment variables" at INFO on every run is noise in our logs.
        quiet = logging.getLogger("botocore.credentials")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)

    @property
    def client(self):
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _extra(self) -> dict:
        return {"RequestPayer": "requester"} if self.requester_pays else {}

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def open(self, key: str, start: int = 0) -> BinaryIO:
        kwargs = {"Bucket": self.name, "Key": self._key(key), **self._extra()}
        if start:
            kwargs["Range"] = f"bytes={start}-"
        with self._errors(key):
            resp = self._client.get_object(**kwargs)
        body = _S3Stream(resp["Body"], self, key)
        if start and "ContentRange" not in resp:
            # A server that ignores Range sends the whole object: skip what we already have.
            log.debug("%s ignored the Range header; skipping %d bytes", self.key_url(key), start)
            _skip(body, start)
        return body  # type: ignore[return-value]

    def size(self, key: str) -> int:
        with self._errors(key):
            return int(self._client.head_object(Bucket=self.name, Key=self._key(key), **self._extra())["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except MissingKeyError:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors(prefix or "/"):
            for page in paginator.paginate(Bucket=self.name, Prefix=self._key(prefix), **self._extra()):
                for obj in page.get("Contents", []):
                    yield obj["Key"][strip:]

    @contextlib.contextmanager
    def _errors(self, key: str):
        """Turn botocore exceptions into UserError / MissingKeyError / TransientBucketError."""
        from botocore import exceptions as bx

        where = self.key_url(key)
        try:
            yield
        except (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError) as exc:
            raise UserError(
                f"no usable AWS credentials for {where} ({exc}). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                f"or AWS_PROFILE, or run `aws configure`. arXiv's bucket is requester-pays: anonymous requests are refused."
            ) from None
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ProxyConnectionError) as exc:
            endpoint = self.endpoint_url or "the S3 endpoint"
            raise UserError(f"cannot reach {endpoint} for {where} ({exc}); check --endpoint-url and the network") from None
        except (bx.ReadTimeoutError, bx.ConnectionClosedError, bx.ResponseStreamingError, bx.IncompleteReadError,
                bx.FlexibleChecksumError) as exc:  # a checksum mismatch is a corrupt transfer: fetch again
            raise TransientBucketError(f"{where}: {exc}") from exc
        except bx.ClientError as exc:
            raise self._client_error(exc, where) from None

    def _client_error(self, exc, where: str) -> Exception:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = err.get("Message") or code
        if code in ("NoSuchKey", "404", "NotFound"):
            return MissingKeyError(f"{where} does not exist (check the chunk name against `arxiv-forge manifest {self.url}`)")
        if code == "NoSuchBucket":
            return UserError(f"bucket {self.name!r} does not exist at {self.endpoint_url or 'AWS S3'} ({where}); check the URL")
        if code in _CREDENTIAL_CODES:
            return UserError(f"AWS rejected the credentials for {where} ({code}: {message}); check the keys, profile and clock")
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
            if self.requester_pays:
                hint = (
                    "the request carried the requester-pays header, so the credentials lack access: check that "
                    "the IAM user/role may s3:GetObject and s3:ListBucket on this bucket and that the account can be billed"
                )
            else:
                hint = (
                    "the request did NOT carry the requester-pays header (x-amz-request-payer): if the bucket is "
                    "requester-pays (s3://arxiv is), pass --requester-pays (requester_pays=True); otherwise the "
                    "credentials lack access"
                )
            return UserError(f"403 AccessDenied for {where}: {hint}")
        if code in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500):
            return TransientBucketError(f"{where}: {code or status} {message}")
        return UserError(f"S3 error for {where}: {code or status} {message}")


class _S3Stream(io.RawIOBase):
    """A botocore StreamingBody as a file object whose read errors are TransientBucketError."""

    def __init__(self, body, bucket: S3Bucket, key: str):
        self._body = body
        self._bucket = bucket
        self._key = key

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        with self._bucket._errors(self._key):
            try:
                return self._body.read(None if size is None or size < 0 else size)
            except (ConnectionError, OSError) as exc:  # urllib3 sometimes leaks raw socket errors
                raise TransientBucketError(f"{self._bucket.key_url(self._key)}: {exc}") from exc

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


def _skip(fh: BinaryIO, n: int) -> None:
    while n > 0:
        got = fh.read(min(n, 1 << 20))
        if not got:
            break
        n -= len(got)

