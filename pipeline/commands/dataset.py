"""`arxiv-forge shard|corpus|compact-metadata`: the lake's datasets from the command line.

The same functions the `category_figures`, `field_corpus` and `arxiv_metadata` assets call: bring the lake's
shard or corpus up to date (only chunks that changed are read), then fetch it into a local folder that
`arxiv-forge train` takes.
"""

from pipeline.commands import example


def _lake_args(p) -> None:
    p.add_argument("--data-root", metavar="ROOT",
                   help="data root: a folder or s3://bucket/prefix (default: $ARXIV_FORGE_DATA or var/data)")
    p.add_argument("--endpoint-url", metavar="URL", help="S3-compatible endpoint of the data root (MinIO)")


def _license_arg(p, what: str) -> None:
    p.add_argument("--license", metavar="PREFIXES",
                   help=f"keep only {what} whose licence starts with one of these comma-separated prefixes, "
                        "case-insensitive (e.g. cc-by,cc0 matches CC-BY-4.0, CC-BY-NC-SA-4.0, CC0-1.0); "
                        "papers without a known licence are left out; default: every licence")


def register(sub) -> None:
    s = sub.add_parser("shard", help="build a category's training shard on the lake and fetch it",
                       description=__doc__, epilog=example(
                           "arxiv-forge shard cs.CV --data-root var/data --out var/shards/cs.CV\n"
                           "arxiv-forge train gan --shard var/shards/cs.CV --out var/models/gan-cs.CV"))
    s.add_argument("category", metavar="CATEGORY", help="arXiv category, e.g. cs.CV")
    s.add_argument("--out", metavar="DIR", help="local folder for the shard (default var/shards/CATEGORY)")
    s.add_argument("--resolution", type=int, default=64, help="image size in pixels (default 64)")
    s.add_argument("--channels", type=int, default=3, choices=(1, 3))
    _license_arg(s, "figures")
    _lake_args(s)
    s.set_defaults(func=_shard)

    c = sub.add_parser("corpus", help="build a field's text corpus on the lake and fetch it",
                       description=__doc__, epilog=example(
                           "arxiv-forge corpus cs --data-root var/data --out var/corpora/cs\n"
                           "arxiv-forge train lstm --text var/corpora/cs/train.txt --valid var/corpora/cs/valid.txt "
                           "--out var/models/lstm-cs"))
    c.add_argument("field", metavar="FIELD", help="text field, e.g. cs, math, hep")
    c.add_argument("--out", metavar="DIR", help="local folder for train.txt / valid.txt (default var/corpora/FIELD)")
    c.add_argument("--valid-fraction", type=float, default=0.1)
    _license_arg(c, "papers' text")
    _lake_args(c)
    c.set_defaults(func=_corpus)

    m = sub.add_parser("compact-metadata", help="merge the lake's metadata files into one",
                       description="Merge metadata/harvest/*.parquet (one per harvest day) into one compacted file. "
                                   "Safe beside running harvests.",
                       epilog=example("arxiv-forge compact-metadata --data-root s3://my-lake/arxiv"))
    _lake_args(m)
    m.set_defaults(func=_compact)


def _lake(args):
    import os

    from pipeline.dataset.lake import lake_from_env

    if args.endpoint_url:
        os.environ["ARXIV_FORGE_DATA_ENDPOINT"] = args.endpoint_url
    return lake_from_env(args.data_root)


def _shard(args) -> int:
    from pipeline.dataset.shards import fetch_category_shard, update_category_shard

    lake = _lake(args)
    s = update_category_shard(lake, args.category, resolution=args.resolution, channels=args.channels,
                              licenses=args.license)
    out = fetch_category_shard(lake, args.category, args.out or f"var/shards/{args.category}")
    kinds = ", ".join(f"{k} {v}" for k, v in s.class_counts.get("figure_kind", {}).items())
    print(f"{args.category}: {s.images} images at {args.resolution} px ({kinds}); {s.parts_built} chunk(s) read, "
          f"{s.parts_reused} unchanged; shard in {out}"
          + (f"; {s.excluded_by_license} figure(s) left out by --license" if args.license else ""))
    return 0


def _corpus(args) -> int:
    from pipeline.dataset.corpus import fetch_field_corpus, update_field_corpus

    lake = _lake(args)
    s = update_field_corpus(lake, args.field, valid_fraction=args.valid_fraction, licenses=args.license)
    out = fetch_field_corpus(lake, args.field, args.out or f"var/corpora/{args.field}")
    print(f"{args.field}: {s.papers} papers, {s.train_lines} train / {s.valid_lines} valid lines; "
          f"{s.parts_built} chunk(s) read, {s.parts_reused} unchanged; corpus in {out}")
    return 0


def _compact(args) -> int:
    from pipeline.dataset.metadata import compact_metadata

    lake = _lake(args)
    n = compact_metadata(lake)
    print(f"{lake.uri('metadata')}: {n} files merged" if n else f"{lake.uri('metadata')}: nothing to compact")
    return 0
