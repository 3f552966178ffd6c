"""Source bucket commands: `manifest`, `chunk-list`, `download`."""

import argparse
import contextlib
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

from pipeline.commands import example
from pipeline.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_DEST = "var/chunks"
CONFIRM_BYTES = 50 * 10**9  # above this, `download` wants --yes (requester-pays egress costs money)
EGRESS_USD_PER_GB = 0.09


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint-url", metavar="URL", help="S3-compatible endpoint (MinIO, moto); default AWS")
    common.add_argument(
        "--requester-pays", action=argparse.BooleanOptionalAction, default=None,
        help="send x-amz-request-payer: requester (default: on for s3://arxiv, off elsewhere)",
    )

    p = sub.add_parser(
        "manifest", parents=[common], help="summarise a chunk manifest (file, bucket dir or s3:// URL)",
        description="Read src/arXiv_src_manifest.xml and print a summary, or one JSON object per chunk "
                    "in chronological order (--json).",
        epilog=example("""
arxiv-forge manifest var/sample-bucket
arxiv-forge manifest s3://arxiv --json > chunks.jsonl      # requester pays: uses your AWS credentials
arxiv-forge manifest path/to/arXiv_src_manifest.xml"""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="PATH_OR_URL", help="manifest file, bucket directory, file://DIR or s3://BUCKET[/PREFIX]")
    p.add_argument("--json", action="store_true", help="one JSON object per chunk (manifest field names, ints as ints)")
    p.set_defaults(func=manifest_cmd)

    p = sub.add_parser(
        "chunk-list", parents=[common], help="list the papers in a chunk tar without extracting it",
        description="One line per paper: id, detected format, compressed and uncompressed bytes, error. "
                    "TAR may be a file, '-' (stdin) or s3://BUCKET/KEY (streamed, no local copy).",
        epilog=example("""
arxiv-forge chunk-list var/chunks/arXiv_src_2301_001.tar
arxiv-forge chunk-list s3://arxiv/src/arXiv_src_2301_001.tar --json | head"""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("tar", metavar="TAR")
    p.add_argument("--json", action="store_true", help="one JSON object per paper")
    p.add_argument("--max-paper-mb", type=int, default=256, help="decompressed size cap per paper (default 256)")
    p.set_defaults(func=chunk_list_cmd)

    p = sub.add_parser(
        "download", parents=[common], help="download chunk tars, md5-verified and resumable",
        description="Stream chunk tars from a bucket to DEST, verify each against the manifest md5, resume "
                    "partial downloads, retry throttling and 5xx with backoff. Complete files are skipped.",
        epilog=example("""
arxiv-forge download var/sample-bucket --all --dest var/chunks
arxiv-forge download s3://arxiv --chunk arXiv_src_2301_001 arXiv_src_2301_002
arxiv-forge download s3://arxiv --month 2301 --yes"""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bucket", metavar="BUCKET_URL")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--chunk", nargs="+", metavar="NAME", help="chunk names (arXiv_src_2301_001, 2301_001 or the key)")
    which.add_argument("--month", nargs="+", metavar="YYMM", help="every chunk of these months")
    which.add_argument("--all", action="store_true", help="every chunk in the manifest")
    p.add_argument("--dest", default=DEFAULT_DEST, type=Path, help=f"directory for the tars (default {DEFAULT_DEST})")
    p.add_argument("--retries", type=int, default=5, help="retries per chunk on errors and md5 mismatch (default 5)")
    p.add_argument("--yes", action="store_true", help=f"allow downloads over {CONFIRM_BYTES // 10**9} GB")
    p.set_defaults(func=download_cmd)


# --------------------------------------------------------------------------------------------------


def _open(url: str, args):
    from pipeline.source.bucket import open_bucket

    return open_bucket(url, endpoint_url=args.endpoint_url, requester_pays=args.requester_pays)


def load_manifest_from(source: str, args):
    """A manifest from a file path, a bucket directory, or a bucket/object URL. Returns (manifest, where)."""
    from pipeline.source.manifest import MANIFEST_KEY, parse_manifest

    if "://" not in source or source.startswith("file://"):
        path = Path(urlparse(source).path if source.startswith("file://") else source).expanduser()
        if path.is_file():
            return parse_manifest(path), str(path)
        bucket = _open(str(path), args)
        return bucket.load_manifest(), bucket.key_url(MANIFEST_KEY)
    if source.endswith(".xml"):
        url, _, key = source.rpartition("/")
        bucket = _open(url, args)
        return parse_manifest(bucket.read_bytes(key)), bucket.key_url(key)
    bucket = _open(source, args)
    return bucket.load_manifest(), bucket.key_url(MANIFEST_KEY)


def manifest_cmd(args) -> int:
    manifest, where = load_manifest_from(args.source, args)
    if args.json:
        for entry in manifest.sorted():
            print(json.dumps(entry.to_json()))
        return 0
    s = manifest.summary()
    months = len({e.yymm for e in manifest.entries})
    print(f"manifest  {where}")
    print(f"timestamp {s['timestamp'] or '(none)'}")
    print(f"chunks    {s['chunks']:,}")
    print(f"items     {s['items']:,}")
    print(f"bytes     {human_bytes(s['bytes'])} ({s['bytes']:,})")
    print(f"months    {s['first_month'] or '-'} .. {s['last_month'] or '-'} ({months} month{'' if months == 1 else 's'})")
    return 0


def chunk_list_cmd(args) -> int:
    from pipeline.source.chunk import iter_chunk

    formats: Counter = Counter()
    t0 = time.monotonic()
    with _tar_input(args) as tar:
        for paper in iter_chunk(tar, max_paper_bytes=args.max_paper_mb << 20, with_data=False):
            formats[paper.format] += 1
            if args.json:
                row = {k: getattr(paper, k) for k in (
                    "paper_id", "member", "yymm", "format", "compressed_bytes", "uncompressed_bytes", "error", "gzip_name")}
                print(json.dumps(row))
            else:
                un = "-" if paper.uncompressed_bytes is None else paper.uncompressed_bytes
                print(f"{paper.paper_id:<20} {paper.format:<9} {paper.compressed_bytes:>11} {un:>11}  {paper.error or ''}".rstrip())
    n = sum(formats.values())
    log.info("%d papers in %.1f s: %s", n, time.monotonic() - t0, ", ".join(f"{k} {v}" for k, v in formats.most_common()))
    return 0


@contextlib.contextmanager
def _tar_input(args):
    if args.tar == "-":
        yield sys.stdin.buffer
        return
    if "://" in args.tar and not args.tar.startswith("file://"):
        # s3://bucket/src/x.tar -> bucket s3://bucket, key src/x.tar
        parsed = urlparse(args.tar)
        bucket = _open(f"{parsed.scheme}://{parsed.netloc}", args)
        with bucket.open(parsed.path.lstrip("/")) as body:
            yield body
        return
    path = Path(urlparse(args.tar).path if args.tar.startswith("file://") else args.tar)
    if not path.is_file():
        raise UserError(f"chunk tar {path} does not exist")
    yield path


def download_cmd(args) -> int:
    from forge_common import ProgressLog
    from pipeline.source.download import download_chunk

    bucket = _open(args.bucket, args)
    manifest = bucket.load_manifest()
    entries = select_chunks(manifest, chunks=args.chunk, months=args.month, everything=args.all)
    total = sum(e.size for e in entries)
    if total > CONFIRM_BYTES and not args.yes and bucket.url.startswith("s3://"):
        raise UserError(
            f"this downloads {len(entries)} chunks, {human_bytes(total)} (about ${total / 1e9 * EGRESS_USD_PER_GB:,.0f} "
            f"of requester-pays egress outside us-east-1); pass --yes to go ahead"
        )
    log.info("downloading %d chunks (%s) from %s to %s", len(entries), human_bytes(total), bucket.url, args.dest)
    t0 = time.monotonic()
    fetched = 0
    for i, entry in enumerate(entries, 1):
        line = ProgressLog(f"[{i}/{len(entries)}] {entry.chunk}", unit="MB", scale=1e6, interval=2, start=None,
                           emit=log.info)
        path = download_chunk(bucket, entry, args.dest, retries=args.retries, progress=line)
        fetched += line.new
        print(path)
    elapsed = time.monotonic() - t0
    log.info("done: %d chunks in %s; fetched %s in %.1f s (%.1f MB/s)", len(entries), args.dest,
             human_bytes(fetched), elapsed, fetched / 1e6 / max(elapsed, 1e-6))
    return 0


def select_chunks(manifest, *, chunks=None, months=None, everything=False) -> list:
    """Manifest entries chosen by chunk name (several spellings), by month, or all; chronological."""
    from pipeline.source.manifest import chunk_name

    ordered = manifest.sorted()
    if everything:
        return ordered
    if months:
        want = set(months)
        picked = [e for e in ordered if e.yymm in want]
        missing = want - {e.yymm for e in picked}
        if missing:
            raise UserError(f"no chunks for month(s) {', '.join(sorted(missing))} in the manifest")
        return picked
    by_name = manifest.by_chunk()
    picked = []
    for raw in chunks or []:
        name = chunk_name(raw)
        if name not in by_name and f"arXiv_src_{name}" in by_name:
            name = f"arXiv_src_{name}"
        if name not in by_name:
            near = [c for c in by_name if name[-8:-4] in c][:5] if len(name) >= 8 else []
            hint = f"; chunks of that month: {', '.join(sorted(near))}" if near else ""
            raise UserError(f"chunk {raw!r} is not in the manifest{hint} (list them: arxiv-forge manifest URL --json)")
        picked.append(by_name[name])
    return picked


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.2f} {unit}"
        n /= 1000
    return f"{n} B"
