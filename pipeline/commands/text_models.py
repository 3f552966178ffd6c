"""`arxiv-forge train|generate|evaluate lstm`: the LSTM language model from `models.lstm`.

Registered by `pipeline.commands.models`; torch and `models` are imported inside the handlers only.
"""

import argparse
import json
import logging
from pathlib import Path

from pipeline.commands import example
from pipeline.errors import UserError

log = logging.getLogger(__name__)

PRESET_NAMES = ("arxiv-cpu", "arxiv-gpu", "ptb-small", "ptb-large")  # kept in step with models.lstm.PRESETS (tested)
_FMT = argparse.RawDescriptionHelpFormatter


def register(train_sub, generate_sub, evaluate_sub) -> None:
    _add_train(train_sub)
    _add_generate(generate_sub)
    _add_evaluate(evaluate_sub)


def _add_train(sub) -> None:
    p = sub.add_parser(
        "lstm", help="train an LSTM language model on text", formatter_class=_FMT,
        description="Train (or resume) an LSTM language model on UTF-8 text files or a Parquet `text` column.\n"
                    "OUT gets tokenizer.json, model.pt (best validation weights), checkpoint.pt (resume state),\n"
                    "metrics.json (perplexity, bits per character) and loss_curve.png. Running the same\n"
                    "command again resumes from checkpoint.pt; a budget flag replaces the preset's budget.\n"
                    "Presets: arxiv-cpu (default; byte-level BPE, 2x256, AdamW, 5 minutes), ptb-small\n"
                    "(pytorch/examples small tied LSTM, 6 epochs; test ppl 110.44 published), ptb-large\n"
                    "(2x1500, dropout 0.65, 40 epochs, a GPU config; 72.30 published).",
        epilog=example("""
arxiv-forge train lstm --text var/corpus/cs.parquet --valid var/corpus/cs-valid.txt --out var/models/lstm-cs --minutes 10
arxiv-forge train lstm --text ptb.train.txt --valid ptb.valid.txt --out var/models/ptb --preset ptb-small
arxiv-forge train lstm --text notes.txt --out var/models/char --tokenizer char --steps 2000 --set nhid=512 --set emsize=512"""),
    )
    p.add_argument("--text", required=True, nargs="+", type=Path, metavar="FILE_OR_PARQUET",
                   help="training text: UTF-8 file(s), Parquet file(s) with a `text` column, or a directory")
    p.add_argument("--valid", nargs="+", type=Path, metavar="FILE",
                   help="held-out text for validation (default: the last 5%% of the training text)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory for the model and metrics")
    p.add_argument("--preset", default="arxiv-cpu", choices=PRESET_NAMES, help="base configuration (default arxiv-cpu)")
    p.add_argument("--tokenizer", choices=("bpe", "char", "word"), help="override the preset's tokenizer")
    p.add_argument("--vocab-size", type=int, help="BPE vocabulary size / cap for char and word vocabularies")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="number of training steps (BPTT windows)")
    budget.add_argument("--epochs", type=float, help="passes over the training text")
    budget.add_argument("--minutes", type=float, help="wall-clock budget; stops cleanly, checkpoints, evaluates")
    p.add_argument("--batch-size", type=int, help="number of parallel text streams")
    p.add_argument("--seed", type=int, help="random seed (default 1111)")
    p.add_argument("--device", default=None, help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: one per core; 1 helps on a busy machine)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other config field, e.g. --set nhid=512 --set optimizer=sgd (repeatable)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in OUT and start over")
    p.set_defaults(func=_train)


def _add_generate(sub) -> None:
    p = sub.add_parser(
        "lstm", help="sample text from a trained LSTM", formatter_class=_FMT,
        description="Continue a prompt with text sampled from a trained LSTM (temperature, then top-p).",
        epilog=example('arxiv-forge generate lstm --checkpoint var/models/lstm-cs --prompt "We propose" --max-tokens 200'),
    )
    p.add_argument("--checkpoint", required=True, type=Path, metavar="DIR", help="directory written by `train lstm`")
    p.add_argument("--prompt", default="", help="text to continue (default: start of a document)")
    p.add_argument("--max-tokens", type=int, default=200, help="tokens to sample at most (default 200)")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy (default 0.8)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95; 1 = off)")
    p.add_argument("-n", "--num-samples", type=int, default=1, help="number of samples (default 1)")
    p.add_argument("--seed", type=int, help="random seed for reproducible samples")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_generate)


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "lstm", help="bits per character and perplexity of held-out text", formatter_class=_FMT,
        description="Score held-out text with a trained LSTM: bits per character (comparable across tokenizers)\n"
                    "and per-token perplexity. The result is also stored in DIR/metrics.json under `evaluations`.",
        epilog=example("arxiv-forge evaluate lstm --checkpoint var/models/lstm-cs --text var/corpus/cs-test.txt --json"),
    )
    p.add_argument("--checkpoint", required=True, type=Path, metavar="DIR", help="directory written by `train lstm`")
    p.add_argument("--text", required=True, nargs="+", type=Path, metavar="FILE", help="held-out text (file, Parquet, directory)")
    p.add_argument("--batch-size", type=int, default=10, help="parallel streams while scoring (default 10)")
    p.add_argument("--adapt", action="store_true",
                   help="dynamic evaluation: the model keeps learning from the text it has already scored, as a "
                        "compressor does (one stream, slower; the checkpoint is not changed)")
    p.add_argument("--adapt-lr", type=float, metavar="LR", help="its SGD rate (default: models.lstm.ADAPT_LR)")
    p.add_argument("--cache", action="store_true",
                   help="mix in a continuous cache of the text already read (Grave et al. 2017; models.lstm.CACHE); "
                        "with --adapt, both")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_evaluate)


# ---------------------------------------------------------------------------------------------------------

def _existing(paths: list[Path], what: str) -> list[Path]:
    for path in paths:
        if not path.exists():
            raise UserError(f"{what} {path} does not exist: give a UTF-8 text file, a Parquet file or a directory")
    return paths


def _checkpoint_dir(path: Path) -> Path:
    if not (path / "model.pt").is_file():
        raise UserError(f"{path} holds no trained LSTM (no model.pt): run `arxiv-forge train lstm --out {path}` first")
    return path


def _parse_set(items: list[str]) -> dict:
    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: use KEY=VALUE, e.g. --set nhid=512")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = {"none": None, "true": True, "false": False}.get(raw.lower(), raw)
        overrides[key.strip().replace("-", "_")] = value
    return overrides


def build_config(args: argparse.Namespace):
    """The LSTMConfig a `train lstm` command line asks for (preset, then flags, then --set), by the same rules as
    the assets and benchmarks (models.config.build)."""
    from models.config import build

    overrides = _parse_set(args.set)
    for name in ("tokenizer", "vocab_size", "batch_size", "seed", "checkpoint_every", "threads", "steps", "epochs",
                 "minutes"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    device = overrides.pop("device", None) or args.device or "auto"
    try:
        return build("lstm", args.preset, device, **overrides)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad LSTM configuration: {exc}") from exc


def _train(args: argparse.Namespace) -> int:
    config = build_config(args)
    texts = _existing(args.text, "--text")
    valid = _existing(args.valid, "--valid") if args.valid else None
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} is a file: give a directory")

    from models.lstm import train

    try:
        metrics = train(texts, config, args.out, valid=valid, resume=not args.fresh)
    except (FileNotFoundError, ValueError, UnicodeError) as exc:
        raise UserError(str(exc)) from exc
    v = metrics["valid"]
    print(f"trained {metrics['steps']} steps ({metrics['epochs']:.2f} epochs, {metrics['stop_reason']}); "
          f"valid perplexity {v['perplexity']:.2f}, bits/char {v['bpc']:.4f}")
    print(f"model, metrics.json and loss_curve.png in {args.out}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    directory = _checkpoint_dir(args.checkpoint)
    if args.max_tokens < 0 or args.num_samples < 1:
        raise UserError("--max-tokens must be >= 0 and -n >= 1")
    if not 0 < args.top_p <= 1:
        raise UserError("--top-p must be in (0, 1]")

    from models.lstm import generate

    for k in range(args.num_samples):
        seed = None if args.seed is None else args.seed + k
        try:
            text = generate(directory, args.prompt, max_tokens=args.max_tokens, temperature=args.temperature,
                            top_p=args.top_p, seed=seed, device=args.device)
        except (FileNotFoundError, ValueError) as exc:
            raise UserError(str(exc)) from exc
        if k:
            print("-" * 40)
        print(text)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    directory = _checkpoint_dir(args.checkpoint)
    texts = _existing(args.text, "--text")

    from models.lstm import ADAPT_LR, evaluate

    if args.adapt_lr is not None and args.adapt_lr <= 0:
        raise UserError("--adapt-lr must be > 0")
    adapt_lr = (args.adapt_lr or ADAPT_LR) if (args.adapt or args.adapt_lr) else 0.0
    try:
        result = evaluate(directory, texts[0] if len(texts) == 1 else texts, batch_size=args.batch_size,
                          device=args.device, adapt_lr=adapt_lr, cache=args.cache)
    except (FileNotFoundError, ValueError, UnicodeError) as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        how = (f", adapting at lr {adapt_lr:g}" if adapt_lr else "") + (", with the cache" if args.cache else "")
        print(f"bits per character {result['bpc']:.4f}  perplexity {result['perplexity']:.2f}  "
              f"({result['tokens']} tokens, {result['chars']} characters{how})")
        print(f"written to {directory / 'metrics.json'}")
    return 0
