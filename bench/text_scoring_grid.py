"""How the LSTM's two ways of reading a text as a compressor does were set: a grid on the tuning text only.

`models.lstm.ADAPT_LR` (dynamic evaluation's SGD rate) and `models.lstm.CACHE` (the continuous cache's size,
sharpness and weight) were chosen on the validation text of the arXiv tuning corpus, with the models that
`bench/text_vs_xz.py --tune --model preset --model char-lstm --tag adapt` trains there. This script scores that
validation text under each setting of a grid and saves the figures; the corpora the settings are reported on
(bench/text_vs_xz.py: the Penn Treebank, Python's documentation) are never scored here.

    .venv/bin/python bench/text_scoring_grid.py [--run var/bench/text/runs/arxiv-preset-adapt]

Writes bench/results/text_scoring_grid.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    runs = ROOT / "var" / "bench" / "text" / "runs"
    ap.add_argument("--run", action="append", type=Path, help="trained model directories (default: the --tune ones)")
    ap.add_argument("--text", type=Path, default=ROOT / "var" / "bench" / "text" / "data" / "arxiv" / "valid.txt")
    ap.add_argument("--theta", default="0.1,0.3,1,3", help="cache sharpness values")
    ap.add_argument("--weight", default="0.05,0.1,0.2", help="cache weight values")
    ap.add_argument("--adapt-lr", default="", help="dynamic-evaluation rates (the --tune run already scores "
                                                    "0.03-1 on this text: bench/results/text_tuning.json)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "text_scoring_grid.json")
    args = ap.parse_args()

    import torch

    from forge_common import atomic_write
    from models.lstm import ADAPT_LR, CACHE, evaluate

    torch.set_num_threads(1)
    floats = lambda text: [float(x) for x in text.split(",") if x]   # noqa: E731
    results: dict = {"text": str(args.text.relative_to(ROOT)), "chosen": {"adapt_lr": ADAPT_LR, "cache": CACHE},
                     "runs": {}}
    settings = [{}, *({"adapt_lr": lr} for lr in floats(args.adapt_lr)),
                *({"cache": {"size": CACHE["size"], "theta": t, "weight": w}}
                  for t, w in itertools.product(floats(args.theta), floats(args.weight))),
                {"adapt_lr": ADAPT_LR, "cache": True}]
    for run in args.run or [runs / "arxiv-preset-adapt", runs / "arxiv-char-lstm-adapt"]:
        if not (run / "model.pt").exists():
            raise SystemExit(f"{run}: no trained model; run bench/text_vs_xz.py --tune first (see above)")
        rows = []
        for how in settings:
            t0 = time.monotonic()
            bpc = evaluate(run, str(args.text), record=False, device="cpu", **how)["bpc"]
            rows.append({**how, "bpc": bpc, "seconds": round(time.monotonic() - t0, 1)})
            print(f"{run.name}: {how or 'static'}: {bpc:.4f} bpc", flush=True)
        results["runs"][run.name] = rows
    atomic_write(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
