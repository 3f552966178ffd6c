"""LSTM language model: tied embeddings, dropout, truncated BPTT, SGD-with-annealing or AdamW.

Generic API (knows nothing of arXiv):

    metrics = train(texts_or_paths, LSTMConfig(...), out_dir, valid=...)
    evaluate(out_dir, held_out) -> {"bpc", "perplexity", "tokens", "chars", ...}
    generate(out_dir, "We propose", max_tokens=200, temperature=0.8, top_p=0.95, seed=0) -> str

`out_dir` holds everything a later call needs: `tokenizer.json`, `model.pt` (the weights with the best
validation loss, plus the config), `checkpoint.pt` (full training state for resuming after a crash:
model, optimizer, learning rate, data position, carried hidden state, RNG states), `metrics.json`
and `loss_curve.png`. Calling `train` again on the same `out_dir` resumes from `checkpoint.pt` and
continues exactly as an unbroken run would (same batches, same dropout masks).

Bits per character are tokenizer-independent: total negative log-likelihood of the held-out text in
bits divided by its number of characters (`models.text_data.count_chars`). Perplexity is per token of
the model's own tokenizer, so it only compares models with the same tokenizer.

The training step is the pytorch/examples `word_language_model` step (batchified contiguous streams,
hidden state carried and detached between BPTT windows, gradient-norm clipping), so the `ptb-small`
preset reproduces that example's published Penn Treebank figure (see PRESETS).
"""

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from forge_common import format_duration
from models import trainer
from models.text_data import (
    EncodedText,
    Source,
    batchify,
    encode_documents,
    eval_streams,
    get_batch,
    load_documents,
)
from models.tokenizer import TOKENIZER_FILE, Tokenizer, load_tokenizer, train_tokenizer
from models.training import (
    CHECKPOINT_NAME,
    atomic_torch_save,
    autocast,
    count_parameters,
    eval_mode,
    load_latest,
    pick_device,
    read_metrics,
    save_loss_curve,
    seed_everything,
    write_metrics,
)

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
LOSS_CURVE_FILE = "loss_curve.png"
LN2 = math.log(2.0)
# Fields that a resumed run takes from the new call rather than from the checkpoint.
_BUDGET_FIELDS = ("steps", "epochs", "minutes", "checkpoint_every", "log_every_s", "device", "threads")


@dataclass
class LSTMConfig:
    """Everything that defines a run. Budgets: `steps`, `epochs` and `minutes` (whichever ends first)."""

    tokenizer: str = "bpe"  # bpe | char | word
    vocab_size: int | None = 4096  # BPE target size; cap for char/word (None = every type seen)
    emsize: int = 256
    nhid: int = 256
    nlayers: int = 2
    dropout: float = 0.2
    tied: bool = True  # decoder weight = embedding weight (needs emsize == nhid)
    bptt: int = 64
    batch_size: int = 32
    optimizer: str = "adamw"  # sgd | adamw
    lr: float = 2e-3
    anneal: float = 4.0  # lr /= anneal when validation loss does not improve (1 = never)
    # "plateau": only the anneal rule above (pytorch/examples); "cosine": the lr also follows a cosine from `lr`
    # to 0 over the budget (steps, or minutes of this run), so a fixed-time run ends with small, settled steps
    lr_schedule: str = "plateau"
    weight_decay: float = 0.01  # AdamW only
    clip: float = 0.25  # max gradient norm (0 = no clipping)
    steps: int | None = None
    epochs: float | None = None
    minutes: float | None = 5.0
    eval_every: int | None = 200  # steps between validations; None = once per epoch
    eval_batch_size: int = 10
    max_valid_tokens: int | None = 50_000  # periodic validations use at most this many (final uses all)
    valid_fraction: float = 0.05  # held out from the training text when no validation text is given
    checkpoint_every: int = 200
    seed: int = 1111
    device: str = "auto"
    # CPU threads for torch (None = torch's default, one per core). On a shared, overloaded machine 1 thread
    # is several times faster than 2: torch's OpenMP threads spin-wait on each other when descheduled.
    threads: int | None = None
    log_every_s: float = 10.0
    preset: str | None = None

    def check(self) -> "LSTMConfig":
        if self.tokenizer not in ("bpe", "char", "word"):
            raise ValueError(f"tokenizer must be bpe, char or word, not {self.tokenizer!r}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be sgd or adamw, not {self.optimizer!r}")
        if self.lr_schedule not in ("plateau", "cosine"):
            raise ValueError(f"lr_schedule must be plateau or cosine, not {self.lr_schedule!r}")
        if self.tied and self.emsize != self.nhid:
            raise ValueError(f"tied embeddings need emsize == nhid (got {self.emsize} and {self.nhid})")
        for name in ("emsize", "nhid", "nlayers", "bptt", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if self.steps is None and self.epochs is None and self.minutes is None:
            raise ValueError("give a budget: steps, epochs or minutes")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LSTMConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


PRESETS: dict[str, LSTMConfig] = {
    # pytorch/examples word_language_model defaults with --tied --epochs 6, as in its README at commit
    # bcea1f5 (Mar 2017): "python main.py --epochs 6 --tied  # Test perplexity of 110.44" on PTB.
    # 2 x 200 LSTM, dropout 0.2, bptt 35, batch 20, SGD lr 20 / 4 on no improvement, clip 0.25, seed 1111.
    "ptb-small": LSTMConfig(
        tokenizer="word", vocab_size=None, emsize=200, nhid=200, nlayers=2, dropout=0.2, tied=True,
        bptt=35, batch_size=20, optimizer="sgd", lr=20.0, anneal=4.0, clip=0.25,
        steps=None, epochs=6, minutes=None, eval_every=None, eval_batch_size=10, max_valid_tokens=None,
        checkpoint_every=500, seed=1111, preset="ptb-small",
    ),
    # The same README: "python main.py --cuda --emsize 1500 --nhid 1500 --dropout 0.65 --epochs 40 --tied
    # # Test perplexity of 72.30" (untied: 77.42). A GPU configuration (~66 M parameters with the 10k PTB
    # vocabulary); on this 2-core CPU one epoch would take hours.
    "ptb-large": LSTMConfig(
        tokenizer="word", vocab_size=None, emsize=1500, nhid=1500, nlayers=2, dropout=0.65, tied=True,
        bptt=35, batch_size=20, optimizer="sgd", lr=20.0, anneal=4.0, clip=0.25,
        steps=None, epochs=40, minutes=None, eval_every=None, eval_batch_size=10, max_valid_tokens=None,
        checkpoint_every=1000, seed=1111, preset="ptb-large",
    ),
    # Default: byte-level BPE and a 2 x 256 tied LSTM (~2.1 M parameters at 4096 tokens) with AdamW,
    # five minutes of wall clock on a 2-core CPU.
    "arxiv-cpu": LSTMConfig(preset="arxiv-cpu"),
    # One GPU: a 2 x 1024 tied LSTM over a 16k BPE vocabulary, 10 epochs (the scale of the AWD-LSTM and
    # pytorch/examples large configurations), checkpointed every 2,000 steps.
    "arxiv-gpu": LSTMConfig(preset="arxiv-gpu", vocab_size=16384, emsize=1024, nhid=1024, dropout=0.3, bptt=128,
                            batch_size=64, lr=1e-3, minutes=None, epochs=10, eval_every=2000,
                            max_valid_tokens=500_000, checkpoint_every=2000),
}


def preset_config(name: str = "arxiv-cpu", **overrides: Any) -> LSTMConfig:
    """A copy of preset `name` with `overrides` applied (unknown preset or field -> ValueError)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    names = {f.name for f in fields(LSTMConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown LSTM config field(s): {', '.join(unknown)}")
    return replace(copy.deepcopy(PRESETS[name]), **overrides)


# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------

Hidden = tuple[torch.Tensor, torch.Tensor]


class LSTMLanguageModel(nn.Module):
    """Embedding -> dropout -> multi-layer LSTM -> dropout -> linear decoder (optionally tied)."""

    def __init__(self, vocab_size: int, emsize: int, nhid: int, nlayers: int, dropout: float, tied: bool):
        super().__init__()
        self.vocab_size, self.nhid, self.nlayers = vocab_size, nhid, nlayers
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab_size, emsize)
        self.rnn = nn.LSTM(emsize, nhid, nlayers, dropout=dropout if nlayers > 1 else 0.0)
        self.decoder = nn.Linear(nhid, vocab_size)
        if tied:
            if nhid != emsize:
                raise ValueError("tied embeddings need emsize == nhid")
            self.decoder.weight = self.encoder.weight
        # Same initialisation as pytorch/examples (uniform +-0.1 embeddings/decoder, zero decoder bias).
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if not tied:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    @classmethod
    def from_config(cls, config: LSTMConfig, vocab_size: int) -> "LSTMLanguageModel":
        return cls(vocab_size, config.emsize, config.nhid, config.nlayers, config.dropout, config.tied)

    def forward(self, tokens: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """tokens [T, B] -> logits [T, B, V] and the new hidden state."""
        output, hidden = self.features(tokens, hidden)
        return self.decoder(self.drop(output)), hidden

    def features(self, tokens: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """tokens [T, B] -> the last LSTM layer's outputs [T, B, nhid] (what the decoder reads), new hidden state."""
        output, hidden = self.rnn(self.drop(self.encoder(tokens)), hidden)
        return output, hidden


def detach_hidden(hidden: Hidden | None) -> Hidden | None:
    """Cut the graph between BPTT windows while keeping the state's values (truncated BPTT)."""
    return None if hidden is None else (hidden[0].detach(), hidden[1].detach())


# ---------------------------------------------------------------------------------------------------------
# Evaluation helpers
# ---------------------------------------------------------------------------------------------------------

@torch.no_grad()
def sum_nll(model: LSTMLanguageModel, ids: np.ndarray, eos_id: int, device: torch.device,
            batch_size: int = 10, window: int = 256) -> tuple[float, int]:
    """Total NLL in nats of every token of `ids` (each predicted once) and the number of tokens."""
    inputs, targets = eval_streams(ids, eos_id, batch_size)
    inputs, targets = inputs.to(device), targets.to(device)
    total = torch.zeros((), dtype=torch.float64, device=device)
    hidden = None
    with eval_mode(model):
        for i in range(0, inputs.size(0), window):
            x, y = inputs[i:i + window], targets[i:i + window]
            with autocast(device):
                logits, hidden = model(x, hidden)
            total += F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1),
                                     ignore_index=-100, reduction="sum").double()
    return float(total), int((targets != -100).sum())


# The SGD rate of dynamic evaluation (`evaluate(adapt_lr=...)`), chosen on the validation text of the arXiv
# tuning corpus (bench/text_vs_xz.py --tune --adapt-lr ...), never on the corpora it is reported on.
ADAPT_LR = 0.3
# The continuous cache (`evaluate(cache=True)`): how many recent positions it holds, the sharpness of its match
# on hidden states and its share of the mixture; chosen the same way (a grid on the arXiv validation text).
CACHE = {"size": 2000, "theta": 1.0, "weight": 0.1}


class ContinuousCache:
    """Grave et al. 2017: for the last `size` positions of the text already read, the LSTM's output there and
    the token that followed; each such token is proposed with weight softmax(theta * h_now . h_then), and the
    final probability is (1 - weight) * model + weight * cache. A passage that repeats (a boilerplate sentence,
    a code idiom, a name) becomes cheap the second time, as it is for a compressor. Nothing is trained."""

    def __init__(self, nhid: int, device: torch.device, size: int = 2000, theta: float = 1.0, weight: float = 0.1):
        self.size, self.theta, self.weight = size, theta, weight
        self.keys = torch.zeros(0, nhid, device=device)
        self.values = torch.zeros(0, dtype=torch.long, device=device)

    @torch.no_grad()
    def nll(self, probs: torch.Tensor, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Summed NLL of the scored targets `y` [T] (-100 = none) of consecutive positions with model
        probabilities `probs` [T, V] and outputs `h` [T, nhid]; then the positions join the cache."""
        keys, values = torch.cat([self.keys, h.float()]), torch.cat([self.values, y])
        held, steps = self.keys.size(0), torch.arange(h.size(0), device=h.device)
        scores = self.theta * h.float() @ keys.T                     # [T, held + T]
        # position t may use the entries before it: its own entry's token is the one it is predicting
        later = torch.arange(keys.size(0), device=h.device)[None, :] >= held + steps[:, None]
        scores = scores.masked_fill(later | (values < 0)[None, :], float("-inf"))
        usable = torch.isfinite(scores).any(1, keepdim=True)          # the very first position has no entries
        attn = torch.where(usable, F.softmax(scores.masked_fill(~usable, 0.0), dim=1), 0.0)
        cached = torch.zeros_like(probs).scatter_add_(1, values.clamp(min=0)[None, :].expand(h.size(0), -1), attn)
        mixed = torch.where(usable, (1 - self.weight) * probs + self.weight * cached, probs)
        scored = y >= 0
        self.keys, self.values = keys[-self.size:], values[-self.size:]
        return -torch.log(mixed[scored].gather(1, y[scored, None]).clamp_min(1e-30)).double().sum()


def adaptive_nll(model: LSTMLanguageModel, ids: np.ndarray, eos_id: int, device: torch.device, lr: float,
                 segment: int = 20, clip: float = 0.25, cache: dict[str, float] | None = None) -> tuple[float, int]:
    """Total NLL in nats of `ids` under dynamic evaluation (Krause et al. 2018, the SGD variant): the text is
    read in order, each segment of `segment` tokens is scored first and then taught to a copy of the model
    with one SGD step of rate `lr` on the model's own loss, so later segments are predicted by a model that
    has read the earlier ones, as a compressor has. With `cache` (ContinuousCache settings) the scores are
    those of the model mixed with the cache. Every token is scored before the model sees it; the caller's
    model is unchanged."""
    model = copy.deepcopy(model)
    model.eval()                 # no dropout: the updates follow the scored predictions exactly
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    memory = ContinuousCache(model.nhid, device, **cache) if cache else None
    inputs, targets = eval_streams(ids, eos_id, 1)
    inputs, targets = inputs.to(device), targets.to(device)
    total = torch.zeros((), dtype=torch.float64, device=device)
    hidden = None
    for i in range(0, inputs.size(0), segment):
        x, y = inputs[i:i + segment], targets[i:i + segment]
        with torch.backends.cudnn.flags(enabled=False):   # cuDNN's LSTM backward refuses eval mode
            out, hidden = model.features(x, hidden)
        logits = model.decoder(out).float().reshape(-1, model.vocab_size)
        nll = F.cross_entropy(logits, y.reshape(-1), ignore_index=-100, reduction="sum")
        if memory is None:
            total += nll.detach().double()
        else:
            total += memory.nll(F.softmax(logits.detach(), -1), out.detach()[:, 0], y[:, 0])
        opt.zero_grad(set_to_none=True)
        (nll / max(int((y != -100).sum()), 1)).backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        hidden = detach_hidden(hidden)
    return float(total), int((targets != -100).sum())


@torch.no_grad()
def cache_nll(model: LSTMLanguageModel, ids: np.ndarray, eos_id: int, device: torch.device, size: int = 2000,
              theta: float = 1.0, weight: float = 0.1, window: int = 256) -> tuple[float, int]:
    """Total NLL in nats of `ids` under the model mixed with a `ContinuousCache` of the text already read."""
    inputs, targets = eval_streams(ids, eos_id, 1)          # one stream: the cache holds the text just read
    inputs, targets = inputs.to(device), targets.to(device)
    memory = ContinuousCache(model.nhid, device, size, theta, weight)
    total = torch.zeros((), dtype=torch.float64, device=device)
    hidden = None
    with eval_mode(model):
        for i in range(0, inputs.size(0), window):
            out, hidden = model.features(inputs[i:i + window], hidden)
            probs = F.softmax(model.decoder(out[:, 0]).float(), dim=-1)
            total += memory.nll(probs, out[:, 0], targets[i:i + window, 0])
    return float(total), int((targets != -100).sum())


def text_metrics(nll_nats: float, tokens: int, chars: int) -> dict[str, float]:
    loss = nll_nats / max(tokens, 1)
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 700.0)),
        "bpc": nll_nats / LN2 / max(chars, 1),
        "bits_per_token": loss / LN2,
        "tokens": tokens,
        "chars": chars,
    }


def _truncate(enc: EncodedText, max_tokens: int | None) -> EncodedText:
    """First `max_tokens` tokens, with the character count scaled to match (for periodic validation only)."""
    if max_tokens is None or enc.tokens <= max_tokens:
        return enc
    chars = round(enc.chars * max_tokens / enc.tokens)
    return EncodedText(ids=enc.ids[:max_tokens], chars=chars, documents=enc.documents)


# ---------------------------------------------------------------------------------------------------------
# Saving and loading a trained model
# ---------------------------------------------------------------------------------------------------------

def save_model(out_dir: Path, model: LSTMLanguageModel, config: LSTMConfig, **extra: Any) -> Path:
    path = Path(out_dir) / MODEL_FILE
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_torch_save({"config": asdict(config), "vocab_size": model.vocab_size, "state_dict": state, **extra}, path)
    return path


def load_model(checkpoint_dir: str | Path, device: str | torch.device = "auto"
               ) -> tuple[LSTMLanguageModel, Tokenizer, LSTMConfig, torch.device]:
    """Model (eval mode, on the device), tokenizer and config from a directory written by `train`."""
    directory = Path(checkpoint_dir)
    path = directory / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {MODEL_FILE} in {directory}: train an LSTM into that directory first")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    data = torch.load(path, map_location="cpu", weights_only=False)
    config = LSTMConfig.from_dict(data["config"])
    model = LSTMLanguageModel.from_config(config, int(data["vocab_size"]))
    model.load_state_dict(data["state_dict"])
    tokenizer = load_tokenizer(directory)
    if tokenizer.vocab_size != model.vocab_size:
        raise ValueError(f"{directory}: tokenizer has {tokenizer.vocab_size} tokens but the model {model.vocab_size}")
    return model.to(dev).eval(), tokenizer, config, dev


# ---------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------

@dataclass
class _RunState:
    """The LSTM's own position in training (the shared loop in models.trainer keeps step, time and history)."""
    epoch: int = 0
    pos: int = 0  # row of the batchified training data where the next BPTT window starts
    lr: float = 0.0
    best_val: float | None = None
    tokens_seen: int = 0
    # time spent validating, so throughput figures count training steps only
    validation_seconds: float = 0.0
    validation_cpu_seconds: float = 0.0
    validations: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "_RunState":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def holdout(documents: list[str], fraction: float) -> tuple[list[str], list[str]]:
    """Split off the last `fraction` of the text for validation (whole documents when there are many)."""
    fraction = min(max(fraction, 0.001), 0.5)
    if len(documents) >= 20:
        k = max(1, round(len(documents) * fraction))
        return documents[:-k], documents[-k:]
    last = documents[-1]
    cut = int(len(last) * (1 - fraction))
    newline = last.rfind("\n", 0, cut)
    cut = newline + 1 if newline > len(last) // 2 else cut
    return documents[:-1] + [last[:cut]], [last[cut:]]


HISTORY_EVERY = 10  # steps averaged into one loss-history point


def upgrade_checkpoint(saved: dict[str, Any]) -> dict[str, Any] | None:
    """A checkpoint of the layout before the shared trainer (no `kind`; model, optimizer, run and hidden at the
    top level; per-step losses in `run`) in today's layout, so such a run still resumes; None if already new."""
    if "kind" in saved or "run" not in saved:
        return None
    run = saved["run"]
    losses = list(run.get("losses", []))
    points = [float(np.mean(losses[i:i + HISTORY_EVERY])) for i in range(0, len(losses), HISTORY_EVERY)]
    config = LSTMConfig.from_dict(saved["config"])
    return {**saved, "kind": "lstm", "arch": _arch(config), "history": {"loss": points},
            "train_seconds": float(run.get("train_seconds", 0.0)),
            "cpu_seconds": float(run.get("train_cpu_seconds", 0.0)),
            "model": {"model": saved["model"], "optimizer": saved["optimizer"], "run": run,
                      "hidden": saved["hidden"]}}


def _arch(config: LSTMConfig) -> dict[str, Any]:
    return {k: getattr(config, k) for k in ("tokenizer", "vocab_size", "emsize", "nhid", "nlayers", "tied")}


def train(texts_or_paths: Source, config: LSTMConfig | None = None, out_dir: str | Path = "lstm-out",
          valid: Source | None = None, resume: bool = True,
          on_checkpoint: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Train (or resume) a language model into `out_dir` and return the metrics written to metrics.json.
    `on_checkpoint(path)` is called after every checkpoint is written."""
    config = (config or preset_config()).check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = load_latest(out) if resume else None
    if saved is not None:
        saved = upgrade_checkpoint(saved) or saved
        # The model's shape and data layout come from the checkpoint; only budgets may change.
        old = LSTMConfig.from_dict(saved["config"])
        changed = sorted(k for k, v in asdict(config).items()
                         if k not in _BUDGET_FIELDS and k != "preset" and asdict(old)[k] != v)
        if changed:
            log.warning("resuming %s with its saved settings; ignoring new values for %s (start over with "
                        "resume=False / --fresh to use them)", out, ", ".join(changed))
        config = replace(old, **{k: getattr(config, k) for k in _BUDGET_FIELDS}).check()
    elif (out / CHECKPOINT_NAME).exists():
        (out / CHECKPOINT_NAME).unlink()   # a fresh run: the loop must not resume the old checkpoint
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _train(texts_or_paths, config, out, valid, saved is not None, on_checkpoint)
    finally:
        torch.set_num_threads(previous_threads)  # a library call must not change the caller's setting


def _train(texts_or_paths: Source, config: LSTMConfig, out: Path, valid: Source | None, resuming: bool,
           on_checkpoint: Callable[[Path], None] | None) -> dict[str, Any]:
    device = pick_device(config.device)
    documents = load_documents(texts_or_paths)
    if valid is not None:
        valid_docs = load_documents(valid)
    else:
        documents, valid_docs = holdout(documents, config.valid_fraction)
        log.info("no validation text given: holding out the last %.0f%% of the training text", 100 * config.valid_fraction)

    if resuming and (out / TOKENIZER_FILE).is_file():
        tokenizer = load_tokenizer(out)
    else:
        t0 = time.monotonic()
        tokenizer = train_tokenizer(config.tokenizer, documents, config.vocab_size)
        tokenizer.save(out)
        log.info("%s tokenizer: %d tokens (%.1fs)", config.tokenizer, tokenizer.vocab_size, time.monotonic() - t0)

    train_enc = encode_documents(tokenizer, documents)
    valid_enc = encode_documents(tokenizer, valid_docs)
    train_data = batchify(train_enc.ids, config.batch_size).to(device)
    batches_per_epoch = len(range(0, train_data.size(0) - 1, config.bptt))
    log.info("train %d tokens (%d chars), valid %d tokens; %d BPTT windows per epoch",
             train_enc.tokens, train_enc.chars, valid_enc.tokens, batches_per_epoch)

    seed_everything(config.seed)
    model = LSTMLanguageModel.from_config(config, tokenizer.vocab_size).to(device)
    optimizer = _make_optimizer(model, config)
    run = _RunState(lr=config.lr)
    hidden: Hidden | None = None
    _set_lr(optimizer, run.lr)

    total_steps = _step_budget(config, batches_per_epoch)
    n_params = count_parameters(model)
    log.info("LSTM %d x %d, %d parameters, %s, device %s, budget: %s", config.nlayers, config.nhid, n_params,
             config.optimizer, device, _describe_budget(total_steps, config.minutes))

    def validate(final: bool = False) -> dict[str, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        enc = valid_enc if final else _truncate(valid_enc, config.max_valid_tokens)
        nll, n = sum_nll(model, enc.ids, tokenizer.eos_id, device, config.eval_batch_size)
        run.validation_seconds += time.perf_counter() - t0
        run.validation_cpu_seconds += time.process_time() - c0
        return text_metrics(nll, n, enc.chars)

    def after_validation(result: dict[str, float], step: int, where: str) -> None:
        # pytorch/examples rule: keep the best weights; divide the lr when validation does not improve.
        run.validations.append({"step": step, "epoch": run.epoch, "lr": run.lr, **result})
        improved = run.best_val is None or result["loss"] < run.best_val
        if improved:
            run.best_val = result["loss"]
            save_model(out, model, config, step=step, valid=result)
        elif config.anneal and config.anneal != 1:
            run.lr /= config.anneal
            _set_lr(optimizer, run.lr)
        log.info("%s: valid loss %.4f, ppl %.2f, bpc %.4f, lr %.4g%s", where, result["loss"],
                 result["perplexity"], result["bpc"], run.lr, "" if improved else " (annealed)")

    t_run = time.monotonic()

    def step(i: int) -> dict[str, Any]:
        nonlocal hidden
        if config.lr_schedule == "cosine":
            done = max(i / total_steps if total_steps else 0.0,
                       (time.monotonic() - t_run) / (60 * config.minutes) if config.minutes else 0.0)
            _set_lr(optimizer, run.lr * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))
        x, y = get_batch(train_data, run.pos, config.bptt)
        hidden = detach_hidden(hidden)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device):
            logits, hidden = model(x, hidden)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        if config.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        run.pos += x.size(0)
        run.tokens_seen += x.numel()
        if run.pos >= train_data.size(0) - 1:  # end of epoch
            run.epoch += 1
            run.pos = 0
            hidden = None  # pytorch/examples starts every epoch from a zero state
            if config.eval_every is None:
                after_validation(validate(), i + 1, f"epoch {run.epoch}")
                model.train()
        if config.eval_every and (i + 1) % config.eval_every == 0:
            after_validation(validate(), i + 1, f"step {i + 1}")
            model.train()
        return {"loss": loss.detach()}

    def state() -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "run": asdict(run),
                "hidden": None if hidden is None else tuple(h.detach().cpu() for h in hidden)}

    def load(saved_state: dict[str, Any]) -> None:
        nonlocal run, hidden
        model.load_state_dict(saved_state["model"])
        optimizer.load_state_dict(saved_state["optimizer"])
        run = _RunState.from_dict(saved_state["run"])
        hidden = None if saved_state["hidden"] is None else tuple(h.to(device) for h in saved_state["hidden"])
        _set_lr(optimizer, run.lr)

    def shown(history: dict[str, list[float]]) -> dict[str, float]:
        losses = history.get("loss", [])
        return {"loss": float(np.mean(losses[-5:])) if losses else float("nan"),
                "epoch": run.epoch + run.pos / max(train_data.size(0) - 1, 1)}

    job = trainer.Job(kind="lstm", step=step, state=state, load=load, config=asdict(config), arch=_arch(config),
                      upgrade=upgrade_checkpoint, progress_values=shown)
    schedule = trainer.Schedule(steps=config.steps, minutes=config.minutes, checkpoint_every=config.checkpoint_every,
                                history_every=HISTORY_EVERY, log_interval_s=config.log_every_s)
    model.train()
    result = trainer.run(job, out, schedule, device=device, items_per_step=config.bptt * config.batch_size,
                         on_checkpoint=on_checkpoint, total_steps=total_steps)
    losses = result.history.get("loss", [])

    # The final weights count as one more validation; model.pt ends as the best weights seen.
    # (skipped when the last step was just validated, e.g. at the end of an epoch).
    if not run.validations or run.validations[-1]["step"] != result.step or not (out / MODEL_FILE).is_file():
        final_weights = validate()
        if run.best_val is None or final_weights["loss"] < run.best_val or not (out / MODEL_FILE).is_file():
            run.best_val = min(final_weights["loss"], run.best_val or math.inf)
            save_model(out, model, config, step=result.step, valid=final_weights)
    best, _, _, _ = load_model(out, device)
    nll, n = sum_nll(best, valid_enc.ids, tokenizer.eos_id, device, config.eval_batch_size)
    train_seconds = max(result.train_seconds - run.validation_seconds, 1e-9)
    train_cpu_seconds = max(result.cpu_seconds - run.validation_cpu_seconds, 1e-9)
    metrics = {
        "model": "lstm",
        "preset": config.preset,
        "config": asdict(config),
        "tokenizer": tokenizer.kind,
        "vocab_size": tokenizer.vocab_size,
        "parameters": n_params,
        "device": str(device),
        "steps": result.step,
        "steps_this_run": result.steps_this_run,
        "resumed": result.resumed,
        "epochs": run.epoch + run.pos / max(train_data.size(0) - 1, 1),
        "tokens_trained": run.tokens_seen,
        "train_tokens": train_enc.tokens,
        "train_chars": train_enc.chars,
        "train_loss": float(np.mean(losses[-10:])) if losses else None,
        "valid": text_metrics(nll, n, valid_enc.chars),
        "final_lr": run.lr,
        "train_seconds": train_seconds,
        "train_tokens_per_s": run.tokens_seen / train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "train_tokens_per_cpu_s": run.tokens_seen / train_cpu_seconds,
        "stop_reason": result.stop_reason,
        "validations": run.validations,
    }
    previous = read_metrics(out)
    if "evaluations" in previous:
        metrics["evaluations"] = previous["evaluations"]
    write_metrics(out, metrics)
    save_loss_curve({f"train loss (nats/token, mean of {HISTORY_EVERY} steps)": losses}, out / LOSS_CURVE_FILE,
                    title=f"LSTM {config.nlayers}x{config.nhid} ({tokenizer.kind})",
                    smooth=min(10, max(1, len(losses) // 20)))
    log.info("done: valid ppl %.2f, bpc %.4f, %d steps in %s (%.0f tokens/s)", metrics["valid"]["perplexity"],
             metrics["valid"]["bpc"], result.step, format_duration(train_seconds), metrics["train_tokens_per_s"])
    return metrics


def _make_optimizer(model: nn.Module, config: LSTMConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr)
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _step_budget(config: LSTMConfig, batches_per_epoch: int) -> int | None:
    candidates = []
    if config.steps is not None:
        candidates.append(int(config.steps))
    if config.epochs is not None:
        candidates.append(math.ceil(config.epochs * batches_per_epoch))
    return min(candidates) if candidates else None


def _describe_budget(steps: int | None, minutes: float | None) -> str:
    parts = ([f"{steps} steps"] if steps is not None else []) + ([f"{minutes:g} min"] if minutes else [])
    return " or ".join(parts)


# ---------------------------------------------------------------------------------------------------------
# Evaluation and generation
# ---------------------------------------------------------------------------------------------------------

def evaluate(checkpoint_dir: str | Path, text_path_or_texts: Source, batch_size: int = 10,
             device: str = "auto", record: bool = True, adapt_lr: float = 0.0,
             cache: bool | dict[str, float] = False) -> dict[str, Any]:
    """Bits per character and per-token perplexity of a held-out text under the trained model.

    `adapt_lr` > 0 scores with dynamic evaluation (`adaptive_nll`: the model keeps learning from the text it
    has scored, as a compressor does) instead of frozen weights; `cache` (True for `CACHE`, or its settings)
    mixes in a continuous cache of the text already read (`ContinuousCache`); both together do both. With
    `record`, the result is also stored in the directory's metrics.json under `evaluations[<source>]`
    (with ` adapt=LR` and/or ` cache` appended to the source).
    """
    model, tokenizer, _, dev = load_model(checkpoint_dir, device)
    documents = load_documents(text_path_or_texts)
    enc = encode_documents(tokenizer, documents)
    cache_settings = (CACHE if cache is True else cache) or None
    if adapt_lr > 0:
        nll, n = adaptive_nll(model, enc.ids, tokenizer.eos_id, dev, adapt_lr, cache=cache_settings)
    elif cache_settings:
        nll, n = cache_nll(model, enc.ids, tokenizer.eos_id, dev, **cache_settings)
    else:
        nll, n = sum_nll(model, enc.ids, tokenizer.eos_id, dev, batch_size)
    result: dict[str, Any] = {**text_metrics(nll, n, enc.chars), "nll_bits": nll / LN2, "documents": enc.documents,
                              "adapt_lr": adapt_lr, "cache": cache_settings}
    if record:
        label = str(text_path_or_texts) if isinstance(text_path_or_texts, (str, Path)) else "texts"
        label += (f" adapt={adapt_lr:g}" if adapt_lr > 0 else "") + (" cache" if cache_settings else "")
        metrics = read_metrics(checkpoint_dir)
        metrics.setdefault("evaluations", {})[label] = result
        write_metrics(checkpoint_dir, metrics)
    return result


def sample_next(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> int:
    """One token id from logits [V]: temperature scaling, then nucleus (top-p) truncation."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if 0 < top_p < 1:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p  # smallest set reaching top_p
        keep[0] = True
        probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))


@torch.no_grad()
def generate(checkpoint_dir: str | Path, prompt: str, max_tokens: int = 200, temperature: float = 0.8,
             top_p: float = 0.95, seed: int | None = None, device: str = "auto") -> str:
    """The prompt followed by up to `max_tokens` sampled tokens (stops at end of document for bpe/char)."""
    model, tokenizer, _, dev = load_model(checkpoint_dir, device)
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    context = [tokenizer.eos_id] + tokenizer.encode(prompt)
    banned = getattr(tokenizer, "unk_id", None)  # never emit <unk>: it is not text
    logits, hidden = model(torch.tensor(context, device=dev).view(-1, 1))
    last = logits[-1, 0].float().cpu()
    new: list[int] = []
    for _ in range(max_tokens):
        if banned is not None:
            last[banned] = -math.inf
        token = sample_next(last, temperature, top_p, generator)
        if token == tokenizer.eos_id and tokenizer.kind != "word":
            break
        new.append(token)
        logits, hidden = model(torch.tensor([[token]], device=dev), hidden)
        last = logits[-1, 0].float().cpu()
    return prompt + tokenizer.continuation(new, prompt)
