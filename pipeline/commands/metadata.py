"""`arxiv-forge metadata | harvest | taxonomy`: arXiv metadata from OAI-PMH files or the live endpoint."""

import argparse
import json
import sys

from pipeline.commands import example


def register(sub) -> None:
    p = sub.add_parser(
        "metadata", help="print the records in OAI-PMH XML files (ListRecords pages, GetRecord, per-paper)",
        description="Parse arXiv OAI-PMH XML (arXiv or arXivRaw format) and print one line per record. "
                    "Directories are searched for *.xml and *.xml.gz. Deleted records are counted, not printed.",
        epilog=example("arxiv-forge metadata var/harvest/pages --json | head\n"
                       "arxiv-forge metadata record.xml"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    p.add_argument("--json", action="store_true", help="one JSON object per record")
    p.set_defaults(func=_metadata)

    h = sub.add_parser(
        "harvest", help="harvest arXiv metadata over OAI-PMH into a Parquet table (resumable)",
        description="ListRecords from an OAI-PMH endpoint by date range and set, one request per "
                    "--min-interval seconds, Retry-After honoured. Pages are saved under OUT/pages and the "
                    "state in OUT/state.json, so rerunning the same command after a crash continues where it "
                    "stopped. The table is OUT/metadata.parquet (one row per paper id).",
        epilog=example("arxiv-forge harvest --from 2024-01-01 --until 2024-01-02 --set cs --out var/harvest/2024-01-01"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    h.add_argument("--from", dest="from_date", metavar="DATE", help="first datestamp, YYYY-MM-DD")
    h.add_argument("--until", dest="until_date", metavar="DATE", help="last datestamp, YYYY-MM-DD")
    h.add_argument("--set", dest="set_spec", metavar="SET", help="OAI set, e.g. cs, math, physics:hep-th")
    h.add_argument("--out", required=True, metavar="DIR", help="output directory (pages, state, table)")
    h.add_argument("--endpoint", metavar="URL", help="OAI-PMH base URL (default https://oaipmh.arxiv.org/oai)")
    h.add_argument("--metadata-prefix", default="arXiv", choices=["arXiv", "arXivRaw"])
    h.add_argument("--min-interval", type=float, default=3.0, metavar="S",
                   help="seconds between requests (arXiv asks for at least 3)")
    h.add_argument("--max-retries", type=int, default=8, metavar="N")
    h.add_argument("--json", action="store_true", help="print the summary as JSON")
    h.set_defaults(func=_harvest)

    t = sub.add_parser(
        "taxonomy", help="list arXiv categories with their archive, group and text-model field",
        description="The arXiv category taxonomy (active categories unless --all) and the field each "
                    "category's text goes to.",
        epilog=example("arxiv-forge taxonomy --field hep\narxiv-forge taxonomy --all --json"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--field", metavar="F", help="only categories of this field (cs, math, hep, ...)")
    t.add_argument("--all", action="store_true", help="include inactive (defunct and archive-only) categories")
    t.add_argument("--json", action="store_true", help="one JSON object per category")
    t.set_defaults(func=_taxonomy)


def _short(text: str | None, width: int) -> str:
    text = text or ""
    return text if len(text) <= width else text[: width - 1] + "…"


def _metadata(args) -> int:
    from pipeline.source.oai import read_records

    records, problems = read_records(args.paths)
    deleted = 0
    for rec in records:
        if rec.deleted:
            deleted += 1
            continue
        if args.json:
            print(json.dumps(rec.to_json(), ensure_ascii=False))
        else:
            first = rec.authors[0] + (" et al." if len(rec.authors) > 1 else "") if rec.authors else ""
            print(f"{rec.id:<18} {rec.primary_category or '-':<18} {rec.datestamp or '-':<10}  "
                  f"{_short(rec.title, 60):<60}  {_short(first, 30)}")
    for path, reason in problems:
        print(f"arxiv-forge: skipped {path}: {reason}", file=sys.stderr)
    if deleted:
        print(f"arxiv-forge: {deleted} deleted record(s) not printed", file=sys.stderr)
    return 1 if problems and not records else 0


def _harvest(args) -> int:
    from pathlib import Path

    from pipeline.dataset.metadata import read_metadata_file, records_from_xml, write_metadata_file
    from pipeline.source.harvest import harvest, page_files, summary_json

    summary = harvest(
        args.endpoint, args.out, from_date=args.from_date, until_date=args.until_date, set_spec=args.set_spec,
        metadata_prefix=args.metadata_prefix, min_interval=args.min_interval, max_retries=args.max_retries,
    )
    records, problems = records_from_xml(page_files(args.out))
    table = write_metadata_file(Path(args.out) / "metadata.parquet", records)
    written = read_metadata_file(table, include_deleted=True)
    rows, deleted = written.num_rows, sum(written.column("deleted").to_pylist())
    if args.json:
        print(json.dumps({**summary_json(summary), "table": str(table), "rows": rows,
                          "unreadable_pages": len(problems)}))
    else:
        print(f"{rows} papers ({deleted} deleted) in {table}; "
              f"{summary.pages} pages, {summary.requests} requests this run, {summary.retries} retries"
              + (", resumed" if summary.resumed else ""))
    return 0


def _taxonomy(args) -> int:
    from pipeline.errors import UserError
    from pipeline.source import taxonomy as tx

    if args.field and args.field not in tx.FIELDS:
        raise UserError(f"unknown field {args.field!r}; fields are {', '.join(tx.FIELDS)}")
    ids = sorted(tx.CATEGORIES) if args.all else tx.active_categories()
    for cid in ids:
        cat = tx.CATEGORIES[cid]
        try:
            field = tx.field_of(cid)
        except KeyError:
            field = None
        if args.field and field != args.field:
            continue
        if args.json:
            print(json.dumps({"id": cat.id, "name": cat.name, "archive": cat.archive, "group": cat.group,
                              "active": cat.active, "alias": cat.alias, "canonical": tx.canonical(cid),
                              "field": field}))
        else:
            alias = f" (= {cat.alias})" if cat.alias else ""
            print(f"{cat.id:<20} {field or '-':<9} {cat.name}{alias}{'' if cat.active else ' [inactive]'}")
    return 0
