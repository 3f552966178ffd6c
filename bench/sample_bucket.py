"""Sample-bucket build time: one process against two worker processes, on the default 300 papers.

    nice -n 10 .venv/bin/python bench/sample_bucket.py [--papers 300] [--seed 0]

For each worker count: wall time, CPU seconds (this process plus its workers), papers/s, graphics/s and
bytes written; also the 1-minute load average, because the build is CPU-bound and the machine is shared.
Both builds must produce byte-identical buckets (checked). Prints a table and writes
bench/results/sample_bucket.json.
"""

import argparse
import hashlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.sample.bucket import write_sample_bucket  # noqa: E402


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _digest(root: Path) -> str:
    h = hashlib.md5()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--papers", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            out = Path(tmp) / f"w{workers}"
            load = os.getloadavg()[0]
            cpu0, t0 = _cpu(), time.perf_counter()
            s = write_sample_bucket(out, papers=args.papers, seed=args.seed, workers=workers)
            wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
            if workers > 1 and cpu < wall / 10:  # forkserver grandchildren are not in RUSAGE_CHILDREN
                cpu = None
            rows.append({
                "method": f"{workers} process{'es' if workers > 1 else ''}", "workers": workers,
                "wall_s": round(wall, 2), "cpu_s": round(cpu, 2) if cpu is not None else None, "papers": s.papers, "graphics": s.n_graphics,
                "papers_per_s": round(s.papers / wall, 2), "graphics_per_s": round(s.n_graphics / wall, 1),
                "bytes": s.bytes, "load_avg_1min_before": round(load, 2), "digest": _digest(out),
            })
    assert rows[0]["digest"] == rows[1]["digest"], "worker count changed the bucket's bytes"
    print(f"{'method':<12} {'wall s':>7} {'cpu s':>7} {'papers/s':>9} {'graphics/s':>11} {'MB':>6} {'load':>5}")
    for r in rows:
        print(f"{r['method']:<12} {r['wall_s']:>7.1f} {r['cpu_s'] if r['cpu_s'] is not None else float('nan'):>7.1f} {r['papers_per_s']:>9.2f} "
              f"{r['graphics_per_s']:>11.1f} {r['bytes'] / 1e6:>6.1f} {r['load_avg_1min_before']:>5.1f}")
    result = {
        "benchmark": "sample_bucket", "papers": args.papers, "seed": args.seed, "cpus": os.cpu_count(),
        "python": platform.python_version(), "results": rows,
        "speedup_2_vs_1": round(rows[0]["wall_s"] / rows[1]["wall_s"], 2),
        "ideal_wall_s_on_2_idle_cores": round(rows[0]["cpu_s"] / 2, 1),
    }
    path = REPO / "bench" / "results" / "sample_bucket.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"speedup 2 vs 1 process: {result['speedup_2_vs_1']}x; wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
