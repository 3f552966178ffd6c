"""Scale figures for the production path: what running all of arXiv would take.

1. Extraction: papers/s of `extract_chunk` with 1 and 2 worker processes, alternating, best of 2 rounds each,
   on one chunk of real papers (the
   65 real sources of ../shared/corpus, packed as a chunk tar the way arXiv ships them, twice over so the
   run is long enough), images included, written to a local lake. The parent process streams the tar and
   writes Parquet; if it were the bottleneck, 2 workers would not reach ~2x.
2. Training shards: build rate and peak RSS at 1k, 10k and 50k images (64 px), each build in its own process,
   from a figures table of 1,000-figure chunks (synthetic plot-like PNGs, 400 x 300). Compared in the same
   run with the obvious alternative (one `to_table` of the category, all PNGs in memory, then decode: how
   the shard was built before) at the same sizes.
3. Incremental rebuild: after one new chunk of 1,000 figures, the time to bring the 50k shard up to date.
4. S3 writes: MB/s of `Lake.write_bytes` and `Lake.upload` (16 MB objects) to an S3 API on 127.0.0.1
   (moto's server, a Python process: a floor, not what AWS gives).
5. The estimate for all of arXiv from these figures.

    .venv/bin/python bench/scale.py [--sizes 1000,10000,50000] [--skip-extract] [--skip-s3] [--only-extract]

Prints a table and saves bench/results/scale.json.
"""

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPUS = REPO.parent / "shared" / "corpus" / "papers"
CHUNK_FIGURES = 1000


# --- 1. extraction ----------------------------------------------------------------------------------------

def real_chunk(out: Path, copies: int = 2) -> tuple[Path, int]:
    """The corpus bundles as members YYMM/<id>.gz of one chunk tar (arXiv's layout), `copies` times."""
    papers = sorted(CORPUS.glob("*.tar.gz"))
    tar_path = out / "arXiv_src_2401_001.tar"
    n = 0
    with tarfile.open(tar_path, "w") as tar:
        for _ in range(copies):
            for p in papers:
                n += 1
                data = p.read_bytes()
                info = tarfile.TarInfo(f"2401/2401.{n:05d}.gz")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return tar_path, n


def bench_extract(tmp: Path, rounds: int = 2) -> dict:
    """1 and 2 workers alternately, `rounds` times each (the machine is shared: the best round of each counts,
    and the parent process's own CPU time shows whether it is the bottleneck)."""
    import resource

    from pipeline.dataset.lake import Lake
    from pipeline.extract.chunk import extract_chunk

    tar, n = real_chunk(tmp)
    out = {"papers": n, "chunk_bytes": tar.stat().st_size, "rounds": rounds}
    for r in range(rounds):
        for workers in (1, 2):
            lake = Lake(tmp / f"lake-{workers}-{r}", scratch=tmp / "scratch")
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            s = extract_chunk(tar, lake, workers=workers)
            wall = time.perf_counter() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            parent = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
            row = {"seconds": round(wall, 1), "papers_per_s": round(n / wall, 2), "parent_cpu_s": round(parent, 1),
                   "figures": s.figures, "images": s.images, "errors": s.by_status.get("error", 0)}
            out.setdefault(f"workers_{workers}_rounds", []).append(row)
            print(f"extract, {workers} worker(s), round {r + 1}: {n} papers in {wall:.1f} s = {n / wall:.2f} "
                  f"papers/s, {s.images} images; parent process {parent:.1f} CPU-s", flush=True)
            shutil.rmtree(tmp / f"lake-{workers}-{r}", ignore_errors=True)
    for workers in (1, 2):
        out[f"workers_{workers}"] = max(out[f"workers_{workers}_rounds"], key=lambda x: x["papers_per_s"])
    out["speedup_2_vs_1"] = round(out["workers_2"]["papers_per_s"] / out["workers_1"]["papers_per_s"], 2)
    print(f"extract: 2 workers {out['speedup_2_vs_1']}x one worker (best rounds)", flush=True)
    return out


# --- 2./3. shards ---------------------------------------------------------------------------------------

def plot_pngs(k: int = 300) -> list[bytes]:
    """Plot-like figures: axes, a few coloured curves, tick labels; 400 x 300 PNG, ~10-20 KB each."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    out = []
    for i in range(k):
        img = Image.new("RGB", (400, 300), "white")
        d = ImageDraw.Draw(img)
        d.line([(40, 20), (40, 270), (390, 270)], fill="black", width=2)
        for t in range(5):
            d.text((5, 30 + 55 * t), f"{rng.integers(0, 100)}", fill="black")
        for _ in range(1 + i % 3):
            ys = 150 + np.cumsum(rng.normal(0, 8, 35))
            colour = tuple(int(v) for v in rng.integers(0, 200, 3))
            d.line([(45 + 10 * x, float(np.clip(y, 25, 265))) for x, y in enumerate(ys)], fill=colour, width=2)
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
        out.append(buf.getvalue())
    return out


def write_figures(lake_dir: Path, chunks: list[str], pngs: list[bytes], start: int = 0) -> None:
    from pipeline.dataset.lake import Lake
    from pipeline.dataset.writer import ChunkWriter

    lake = Lake(lake_dir)
    k = start
    for chunk in chunks:
        with ChunkWriter(lake, chunk) as w:
            for i in range(CHUNK_FIGURES):
                pid = f"{chunk[-8:]}.{i:05d}"
                png = pngs[k % len(pngs)]
                k += 1
                w.add_figure({"figure_id": f"{pid}/f1", "paper_id": pid, "primary_category": "cs.CV",
                              "figure_kind": "plot", "section_kind": "results", "caption_text": "A plot.",
                              "image": {"bytes": png, "path": f"{pid}/f1.png"}})
            w.commit()


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
mode, root = sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
if mode == "ours":
    from pipeline.dataset.lake import Lake
    from pipeline.dataset.shards import update_category_shard
    s = update_category_shard(Lake(root, scratch=root + "-scratch"), "cs.CV", resolution=64)
    images, built = s.images, s.parts_built
else:  # the old way: one to_table of the category (every PNG in memory), then decode into a memmap
    import io
    import numpy as np
    from PIL import Image
    from pipeline.dataset.reader import dataset
    from pipeline.dataset.shards import trim_and_letterbox
    t = dataset(root, "figures", category="cs.CV").to_table(columns=["figure_id", "image"])
    blobs = t.column("image").combine_chunks().field("bytes")
    arr = np.lib.format.open_memmap(root + "-old.npy", mode="w+", dtype=np.uint8, shape=(t.num_rows, 3, 64, 64))
    for i in range(t.num_rows):
        with Image.open(io.BytesIO(blobs[i].as_py())) as im:
            arr[i] = np.asarray(trim_and_letterbox(im, 64)).transpose(2, 0, 1)
    arr.flush()
    images, built = t.num_rows, 0
print(json.dumps({"seconds": time.perf_counter() - t0, "images": images, "parts_built": built,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(mode: str, root: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(REPO), mode, str(root)], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_shards(tmp: Path, sizes: list[int]) -> dict:
    pngs = plot_pngs()
    out = {"png_bytes_mean": round(sum(map(len, pngs)) / len(pngs)), "chunk_figures": CHUNK_FIGURES, "sizes": {}}
    for n in sizes:
        root = tmp / f"lake-{n}"
        chunks = [f"arXiv_src_{2001 + k // 100:04d}_{k % 100 + 1:03d}" for k in range(n // CHUNK_FIGURES)]
        write_figures(root, chunks, pngs)
        old = child("old", root)
        ours = child("ours", root)
        row = {"ours": ours, "old": old, "ours_images_per_s": round(ours["images"] / ours["seconds"], 1),
               "old_images_per_s": round(old["images"] / old["seconds"], 1)}
        print(f"shard {n:>6} images: ours {row['ours_images_per_s']:.0f} img/s, peak {ours['peak_rss_mb']:.0f} MB; "
              f"whole-table read {row['old_images_per_s']:.0f} img/s, peak {old['peak_rss_mb']:.0f} MB", flush=True)
        if n == max(sizes):
            write_figures(root, ["arXiv_src_2999_001"], pngs, start=7)
            inc = child("ours", root)
            row["incremental_one_chunk"] = inc
            print(f"  incremental: one new chunk of {CHUNK_FIGURES} figures brought the {n + CHUNK_FIGURES}-image "
                  f"shard up to date in {inc['seconds']:.1f} s ({inc['parts_built']} part built), against "
                  f"{ours['seconds']:.1f} s for the full build", flush=True)
        out["sizes"][str(n)] = row
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(str(root) + "-scratch", ignore_errors=True)
        Path(str(root) + "-old.npy").unlink(missing_ok=True)
    return out


# --- 4. S3 ----------------------------------------------------------------------------------------------

def bench_s3(tmp: Path) -> dict:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from pipeline.dataset.lake import Lake

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bench")
        lake = Lake("s3://bench/lake", endpoint_url=endpoint, scratch=tmp / "s3-scratch")
        blob = os.urandom(16 << 20)
        (tmp / "blob.bin").write_bytes(blob)
        out = {}
        for name, op in (("write_bytes", lambda k: lake.write_bytes(k, blob)),
                         ("upload", lambda k: lake.upload(tmp / "blob.bin", k))):
            t0 = time.perf_counter()
            for i in range(8):
                op(f"{name}/{i}.bin")
            wall = time.perf_counter() - t0
            out[f"{name}_MB_per_s"] = round(8 * 16 / wall, 1)
        t0 = time.perf_counter()
        for i in range(8):
            lake.fetch(f"upload/{i}.bin", tmp / "down" / f"{i}.bin")
        out["fetch_MB_per_s"] = round(8 * 16 / (time.perf_counter() - t0), 1)
        print(f"S3 API on 127.0.0.1 (moto): write_bytes {out['write_bytes_MB_per_s']} MB/s, upload "
              f"{out['upload_MB_per_s']} MB/s, fetch {out['fetch_MB_per_s']} MB/s", flush=True)
        return out
    finally:
        server.stop()


# --- 5. the estimate ----------------------------------------------------------------------------------------

ARXIV_PAPERS = 2_600_000
ARXIV_BYTES = 4.8e12
# Assumed prices (us-east-1 on-demand, stated so the reader can redo the sum): a 2-vCPU compute-optimised
# instance at $0.085/h; requester-pays transfer is free inside us-east-1, $0.09/GB to the internet.
PRICE_2VCPU_HOUR = 0.085
EGRESS_PER_GB = 0.09


def estimate(extract: dict | None, shards: dict) -> dict:
    out = {"papers": ARXIV_PAPERS, "source_tb": ARXIV_BYTES / 1e12, "price_2vcpu_hour": PRICE_2VCPU_HOUR}
    if extract:
        rate = extract["workers_2"]["papers_per_s"]  # one 2-core machine
        hours = ARXIV_PAPERS / rate / 3600
        out.update(extract_papers_per_s_2core=rate, extract_machine_hours_2core=round(hours),
                   extract_cost_usd=round(hours * PRICE_2VCPU_HOUR), wall_days_on_100_machines=round(hours / 100 / 24, 1),
                   egress_if_outside_us_east_1_usd=round(ARXIV_BYTES / 1e9 * EGRESS_PER_GB))
    big = shards["sizes"][max(shards["sizes"], key=int)]
    rate = big["ours_images_per_s"]
    out["shard_images_per_s"] = rate
    out["shard_hours_for_10M_figures"] = round(10_000_000 / rate / 3600, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--skip-extract", action="store_true")
    ap.add_argument("--skip-s3", action="store_true")
    ap.add_argument("--only-extract", action="store_true",
                    help="re-measure extraction only; the other figures are kept from the results file")
    ap.add_argument("--results", default=str(REPO / "bench" / "results" / "scale.json"))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "processor": platform.processor() or platform.machine()}}
    if args.only_extract:
        results = {**json.loads(Path(args.results).read_text()), **results}
    with tempfile.TemporaryDirectory(prefix="af-scale-") as d:
        tmp = Path(d)
        if args.skip_extract or not CORPUS.is_dir():
            print(f"extraction skipped ({'--skip-extract' if args.skip_extract else f'no corpus at {CORPUS}'})")
            results["extract"] = None
        else:
            results["extract"] = bench_extract(tmp)
        if not args.only_extract:
            results["shards"] = bench_shards(tmp, sizes)
            results["s3"] = None if args.skip_s3 else bench_s3(tmp)
    results["estimate"] = est = estimate(results["extract"], results["shards"])
    print(json.dumps(est, indent=1))
    Path(args.results).write_text(json.dumps(results, indent=1) + "\n")
    print(f"saved {args.results}")


if __name__ == "__main__":
    main()
