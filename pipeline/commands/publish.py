"""`arxiv-forge card|gallery`: publish the lake: a dataset card at its root, a figure browser per category.

The same functions the `dataset_card` and `figure_gallery` assets call (pipeline/dataset/card.py, gallery.py).
"""

from pipeline.commands import example


def _root_args(p) -> None:
    p.add_argument("data_root", metavar="DATA_ROOT", help="data root: a folder or s3://bucket/prefix")
    p.add_argument("--endpoint-url", metavar="URL", help="S3-compatible endpoint of the data root (MinIO)")


def register(sub) -> None:
    c = sub.add_parser("card", help="write the dataset card (Hugging Face README.md) at the data root",
                       description="Write README.md at the data root: a Hugging Face dataset card whose YAML names "
                                   "the figures (default), papers and text configs, so that "
                                   "datasets.load_dataset(DATA_ROOT) loads the figures; with counts per licence, "
                                   "category and figure kind, and what the columns mean.",
                       epilog=example("arxiv-forge card var/data\n"
                                      "python -c 'import datasets; print(datasets.load_dataset(\"var/data\"))'"))
    _root_args(c)
    c.set_defaults(func=_card)

    g = sub.add_parser("gallery", help="write a static figure browser (HTML + thumbnails) per category",
                       description="Write a static HTML page per category: thumbnails, captions, filters by figure "
                                   "kind and licence, links to the papers on arXiv. Without --out the pages go to "
                                   "the lake's gallery/<category>/; with --out to DIR/<category>/.",
                       epilog=example("arxiv-forge gallery var/data --category cs.CV --out var/gallery\n"
                                      "xdg-open var/gallery/cs.CV/index.html"))
    _root_args(g)
    g.add_argument("--category", action="append", metavar="CAT",
                   help="arXiv category (repeatable; default: every category with figures)")
    g.add_argument("--out", metavar="DIR", help="local folder for the pages (default: the lake's gallery/)")
    g.add_argument("--limit", type=int, default=None, metavar="N",
                   help="newest figures per page (default 5000)")
    g.set_defaults(func=_gallery)


def _lake(args):
    import os

    from pipeline.dataset.lake import lake_from_env

    if args.endpoint_url:
        os.environ["ARXIV_FORGE_DATA_ENDPOINT"] = args.endpoint_url
    return lake_from_env(args.data_root)


def _card(args) -> int:
    from pipeline.dataset.card import write_card

    s = write_card(_lake(args))
    licences = ", ".join(f"{k} {v}" for k, v in s.licences.items())
    print(f"{s.uri}: {s.figures} figures ({s.images} with images), {s.papers} papers, {s.text_rows} text rows; "
          f"configs {', '.join(s.configs)}; licences: {licences}")
    return 0


def _gallery(args) -> int:
    from pipeline.dataset.gallery import DEFAULT_LIMIT, build_gallery
    from pipeline.dataset.lake import Lake
    from pipeline.dataset.reader import categories
    from pipeline.errors import UserError

    lake = _lake(args)
    out = Lake(args.out) if args.out else None
    chosen = args.category or categories(lake)
    if not chosen:
        raise UserError(f"no figures under {lake.uri('figures')}; extract chunks first (arxiv-forge extract-chunk)")
    for category in chosen:
        s = build_gallery(lake, category, out, category if out else None, limit=args.limit or DEFAULT_LIMIT)
        print(f"{s.page}: {s.shown} of {s.total} figures, {s.thumbs_written} thumbnails written")
    return 0
