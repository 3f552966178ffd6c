"""OAI-PMH metadata throughput: parsing ListRecords pages and building the metadata table.

Pages of 2,500 records (the size arXiv's 2025 server sends) are rendered with `render_list_records`
from generated records with realistic field lengths (abstract ~1,100 chars, 4 authors), then parsed by:
  - `pipeline.source.oai.parse_page` (what the harvester and `arxiv-forge metadata` use);
  - `xml.etree.ElementTree.fromstring` alone: the physical floor (XML parsing without reading fields);
  - `xml.dom.minidom`: the other standard-library route, reading the same fields.
Then the records go into a lake's metadata (`records_from_xml` + `write_metadata`: dedupe + Parquet write).
Prints records/s and saves bench/results/oai_parse.json. Harvest time for all of arXiv is bounded by
arXiv's one request per 3 s, not by parsing: the figure below says by how much.

    nice -n 10 .venv/bin/python bench/oai_parse.py [--pages 4]
"""

import argparse
import json
import platform
import random
import tempfile
import time
import xml.dom.minidom
import xml.etree.ElementTree as ET
from pathlib import Path

from pipeline.dataset.lake import Lake
from pipeline.dataset.metadata import records_from_xml, write_metadata
from pipeline.source.oai import MetadataRecord, default_sets, parse_page, render_list_records

PAGE = 2500
ARXIV_PAPERS = 2_600_000
CATS = [["cs.LG", "stat.ML"], ["math.AG"], ["hep-th"], ["astro-ph.GA"], ["cond-mat.str-el", "quant-ph"]]
WORDS = ("we study the model field theory network data show that results energy quantum graph optimal "
         "random spectrum learning galaxy phase transition bound estimate").split()


def make_page(rng: random.Random, start: int) -> list[MetadataRecord]:
    out = []
    for i in range(start, start + PAGE):
        cats = CATS[i % len(CATS)]
        abstract = " ".join(rng.choice(WORDS) for _ in range(160))
        out.append(MetadataRecord(
            id=f"23{i // 100000 % 100:02d}.{i % 100000:05d}", created="2023-01-02", updated=None,
            title=" ".join(rng.choice(WORDS) for _ in range(10)).capitalize(),
            authors=[f"A{j}. B. Author{i}" for j in range(4)], categories=cats, primary_category=cats[0],
            abstract=abstract, comments="12 pages, 5 figures", journal_ref=None, doi=None,
            license="http://creativecommons.org/licenses/by/4.0/", msc_class=None, acm_class=None,
            datestamp="2023-01-03", sets=default_sets(cats)))
    return out


def minidom_parse(xml_bytes: bytes) -> int:
    doc = xml.dom.minidom.parseString(xml_bytes)
    n = 0
    for meta in doc.getElementsByTagName("arXiv"):
        fields = {}
        for name in ("id", "created", "title", "categories", "abstract", "comments", "license"):
            nodes = meta.getElementsByTagName(name)
            if nodes:
                fields[name] = " ".join("".join(t.data for t in nodes[0].childNodes if t.nodeType == t.TEXT_NODE).split())
        fields["authors"] = [" ".join(a.getElementsByTagName(k)[0].firstChild.data for k in ("forenames", "keyname")
                                      if a.getElementsByTagName(k)) for a in meta.getElementsByTagName("author")]
        n += 1
    return n


def timed(fn, pages: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for p in pages:
            fn(p)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(0)
    pages = [render_list_records(make_page(rng, k * PAGE), resumption_token=f"tok{k}") for k in range(args.pages)]
    n = args.pages * PAGE
    mb = sum(map(len, pages)) / 1e6

    results = {}
    for name, fn in [("parse_page", parse_page), ("etree_floor", ET.fromstring), ("minidom", minidom_parse)]:
        secs = timed(fn, pages, args.repeat)
        results[name] = {"seconds": round(secs, 3), "records_per_s": round(n / secs), "MB_per_s": round(mb / secs, 1)}
        print(f"{name:<12} {n / secs:>9,.0f} records/s  {mb / secs:6.1f} MB/s")

    with tempfile.TemporaryDirectory() as tmp:
        for k, p in enumerate(pages):
            (Path(tmp) / f"{k:05d}.xml").write_bytes(p)
        t0 = time.perf_counter()
        records, _ = records_from_xml([Path(tmp)])
        rows = write_metadata(Lake(Path(tmp) / "lake"), "bench", records)
        secs = time.perf_counter() - t0
    assert rows == n
    results["build_metadata_table"] = {"seconds": round(secs, 3), "records_per_s": round(n / secs)}
    print(f"{'table build':<12} {n / secs:>9,.0f} records/s (parse + dedupe + Parquet write)")

    parse_all = ARXIV_PAPERS / results["parse_page"]["records_per_s"]
    requests_all = ARXIV_PAPERS / PAGE * 3.0
    print(f"all of arXiv ({ARXIV_PAPERS:,} records): parsing {parse_all / 60:.1f} min of CPU vs "
          f"{requests_all / 60:.0f} min of the 3 s/request rate limit ({ARXIV_PAPERS // PAGE} pages)")
    out = {
        "bench": "oai_parse", "records": n, "pages": args.pages, "page_records": PAGE, "mb": round(mb, 1),
        "results": results, "overhead_vs_floor": round(results["parse_page"]["seconds"] / results["etree_floor"]["seconds"], 2),
        "speedup_vs_minidom": round(results["minidom"]["seconds"] / results["parse_page"]["seconds"], 2),
        "all_arxiv_parse_minutes": round(parse_all / 60, 1), "all_arxiv_rate_limit_minutes": round(requests_all / 60),
        "python": platform.python_version(), "machine": platform.machine(),
    }
    dest = Path(__file__).resolve().parent / "results" / "oai_parse.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"saved {dest}")


if __name__ == "__main__":
    main()
