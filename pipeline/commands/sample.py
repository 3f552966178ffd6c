"""`arxiv-forge sample-bucket`: write the synthetic sample bucket (the demo's data and the tests' fixture)."""

import argparse
import json
import sys
from pathlib import Path

from pipeline.commands import example


def register(sub) -> None:
    p = sub.add_parser(
        "sample-bucket",
        help="write a synthetic bucket laid out like s3://arxiv (manifest, chunk tars, OAI-PMH metadata)",
        description=(
            "Write a deterministic synthetic bucket laid out exactly like s3://arxiv: src/arXiv_src_manifest.xml,\n"
            "chunk tars src/arXiv_src_YYMM_NNN.tar (members YYMM/<id>.gz or YYMM/<id>.pdf), OAI-PMH ListRecords\n"
            "pages under metadata/, and the generator's ground truth in truth/papers.jsonl.\n"
            "The same --papers and --seed give byte-identical files."
        ),
        epilog=example("arxiv-forge sample-bucket var/sample\narxiv-forge sample-bucket /tmp/tiny --papers 40 --seed 1"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="output directory (created; earlier sample files replaced)")
    p.add_argument("--papers", type=int, default=300, metavar="N", help="number of papers (default 300, at least 3)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=None, metavar="W",
                   help="processes that draw figures (default: 2 for 60+ papers, else 1)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=handler)


def handler(args) -> int:
    from pipeline.sample.bucket import write_sample_bucket

    summary = write_sample_bucket(args.dir, papers=args.papers, seed=args.seed, workers=args.workers)
    if args.json:
        print(json.dumps(summary.to_json()))
    else:
        print(summary.format(), file=sys.stdout)
    return 0
