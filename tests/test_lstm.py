"""LSTM language model: real torch training on tiny configs (CPU), resume after a SIGKILL, honest metrics, CLI."""

import json
import math
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from models.lstm import (
    PRESETS,
    LSTMLanguageModel,
    adaptive_nll,
    cache_nll,
    evaluate,
    generate,
    preset_config,
    sample_next,
    save_model,
    sum_nll,
    train,
)
from models.text_data import batchify, count_chars, eval_streams, load_documents
from models.tokenizer import train_tokenizer
from pipeline.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]


def corpus(n_docs: int, seed: int) -> list[str]:
    """A small fixed corpus with real structure (a toy grammar), so a model can learn it."""
    rng = random.Random(seed)
    subj = ["we", "the model", "our method", "this paper", "the network", "a baseline"]
    verb = ["propose", "study", "improve", "train", "evaluate", "compare"]
    obj = ["a new loss", "deep networks", "graph models", "language models", "the encoder"]
    return [" ".join(f"{rng.choice(subj)} {rng.choice(verb)} {rng.choice(obj)}." for _ in range(6))
            for _ in range(n_docs)]


TRAIN, VALID = corpus(40, 0), corpus(6, 1)


def tiny(**overrides):
    base = dict(vocab_size=160, emsize=24, nhid=24, bptt=12, batch_size=4, steps=30, minutes=None,
                eval_every=10, checkpoint_every=10, log_every_s=600.0, device="cpu", threads=1)
    return preset_config("arxiv-cpu", **{**base, **overrides})


def loss_history(out: Path) -> list[float]:
    """The checkpoint's training-loss history: one point per 10 steps (the shared trainer's layout)."""
    return torch.load(out / "checkpoint.pt", weights_only=False)["history"]["loss"]


def test_training_decreases_loss_and_writes_outputs(tmp_path):
    metrics = train(TRAIN, tiny(steps=60, lr=1e-2), tmp_path, valid=VALID)
    losses = loss_history(tmp_path)
    assert len(losses) == 6
    assert losses[-1] < losses[0] - 0.5
    first_valid = metrics["validations"][0]["loss"]
    assert metrics["valid"]["loss"] < first_valid
    assert metrics["valid"]["loss"] < math.log(metrics["vocab_size"])  # better than uniform
    for name in ("model.pt", "checkpoint.pt", "tokenizer.json", "metrics.json", "loss_curve.png"):
        assert (tmp_path / name).is_file(), name
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["steps"] == 60 and on_disk["valid"]["bpc"] == pytest.approx(metrics["valid"]["bpc"])
    assert (tmp_path / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("kind", ["char", "word"])
def test_other_tokenizers_train(tmp_path, kind):
    metrics = train(TRAIN, tiny(tokenizer=kind, steps=20, eval_every=None), tmp_path, valid=VALID)
    assert metrics["tokenizer"] == kind and math.isfinite(metrics["valid"]["bpc"])


_CRASHING_RUN = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    import models.lstm as lstm
    import models.training as training
    from tests.test_lstm import TRAIN, VALID, tiny

    original = training.CheckpointManager.save
    def save_then_die(self, step, state):
        path = original(self, step, state)
        if step == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)  # a hard crash right after a checkpoint
        return path
    training.CheckpointManager.save = save_then_die
    lstm.train(TRAIN, tiny(steps={steps}), {out!r}, valid=VALID)
""")


def test_resume_after_kill_continues_exactly(tmp_path):
    steps = 30
    straight = tmp_path / "straight"
    train(TRAIN, tiny(steps=steps), straight, valid=VALID)

    crashed = tmp_path / "crashed"
    code = _CRASHING_RUN.format(repo=str(REPO), kill_at=20, steps=steps, out=str(crashed))
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert torch.load(crashed / "checkpoint.pt", weights_only=False)["step"] == 20

    metrics = train(TRAIN, tiny(steps=steps), crashed, valid=VALID)
    assert metrics["steps"] == steps
    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(crashed / "checkpoint.pt", weights_only=False)
    assert a["history"] == b["history"]
    for key, value in a["model"]["model"].items():
        assert torch.equal(value, b["model"]["model"][key]), key
    assert a["model"]["run"]["lr"] == b["model"]["run"]["lr"] and a["model"]["run"]["pos"] == b["model"]["run"]["pos"]


def test_checkpoint_of_the_layout_before_the_shared_trainer_still_resumes(tmp_path):
    """Checkpoints written before models.trainer (model/optimizer/run/hidden at the top level, per-step losses in
    run) are converted on load: the run continues from their step with their weights."""
    train(TRAIN, tiny(steps=20), tmp_path, valid=VALID)
    new = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    inner = new["model"]
    old = {"config": new["config"], "step": new["step"], "rng": new["rng"], "model": inner["model"],
           "optimizer": inner["optimizer"], "hidden": inner["hidden"],
           "run": {**inner["run"], "step": 20, "losses": [3.0] * 20, "train_seconds": 1.0, "train_cpu_seconds": 1.0}}
    torch.save(old, tmp_path / "checkpoint.pt")
    metrics = train(TRAIN, tiny(steps=30), tmp_path, valid=VALID)
    assert metrics["resumed"] and metrics["steps"] == 30 and metrics["steps_this_run"] == 10
    assert loss_history(tmp_path)[:2] == [3.0, 3.0]


def test_sgd_annealing_divides_lr_when_validation_does_not_improve(tmp_path):
    # lr 200 makes SGD diverge, so validation stops improving and the lr must be divided by 4.
    metrics = train(TRAIN, tiny(optimizer="sgd", lr=200.0, clip=0.0, steps=40, eval_every=5), tmp_path, valid=VALID)
    lrs = [v["lr"] for v in metrics["validations"]]
    losses = [v["loss"] for v in metrics["validations"]]
    worse = sum(1 for i in range(1, len(losses)) if losses[i] >= min(losses[:i]))
    assert metrics["final_lr"] == pytest.approx(200.0 / 4 ** worse)
    assert worse >= 1 and lrs == sorted(lrs, reverse=True)


@pytest.mark.parametrize("kind", ["bpe", "char", "word"])
def test_bpc_of_uniform_model_is_log2_vocab_over_chars_per_token(tmp_path, kind):
    tok = train_tokenizer(kind, TRAIN, vocab_size=200)
    tok.save(tmp_path)
    config = tiny(tokenizer=kind)
    model = LSTMLanguageModel.from_config(config, tok.vocab_size)
    with torch.no_grad():  # tied: zero embedding = zero decoder weight; with zero bias every logit is 0
        model.encoder.weight.zero_()
        model.decoder.bias.zero_()
    save_model(tmp_path, model, config)
    result = evaluate(tmp_path, VALID, batch_size=3)
    tokens = sum(len(tok.encode_document(d)) for d in VALID)
    chars = sum(len(d) + 1 for d in VALID)  # no document ends with a newline
    assert result["tokens"] == tokens and result["chars"] == chars
    assert result["bpc"] == pytest.approx(math.log2(tok.vocab_size) / (chars / tokens), rel=1e-6)  # float32 logits
    assert result["perplexity"] == pytest.approx(tok.vocab_size, rel=1e-5)
    recorded = json.loads((tmp_path / "metrics.json").read_text())["evaluations"]["texts"]
    assert recorded["bpc"] == pytest.approx(result["bpc"])


def test_batched_evaluation_scores_every_token_once(tmp_path):
    train(TRAIN, tiny(steps=10), tmp_path, valid=VALID)
    model = torch.load(tmp_path / "model.pt", weights_only=False)
    net = LSTMLanguageModel.from_config(tiny(), model["vocab_size"])
    net.load_state_dict(model["state_dict"])
    net.eval()
    ids = np.arange(1, 101) % (model["vocab_size"] - 1)
    # Batch 1 with 7-token windows (hidden state carried) must equal one pass over the whole stream.
    nll, n = sum_nll(net, ids, eos_id=0, device=torch.device("cpu"), batch_size=1, window=7)
    with torch.no_grad():
        stream = torch.tensor(np.concatenate([[0], ids]))
        logits, _ = net(stream[:-1].view(-1, 1))
        reference = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), stream[1:], reduction="sum")
    assert n == 100 and nll == pytest.approx(float(reference), rel=1e-5)
    for b in (3, 7, 100, 500):
        inputs, targets = eval_streams(ids, 0, b)
        assert int((targets != -100).sum()) == 100
        assert sorted(targets[targets != -100].tolist()) == sorted(ids.tolist())


def test_dynamic_evaluation_scores_before_it_learns_and_gains_on_repeated_text(tmp_path):
    train(TRAIN, tiny(steps=10), tmp_path, valid=VALID)
    saved = torch.load(tmp_path / "model.pt", weights_only=False)
    net = LSTMLanguageModel.from_config(tiny(), saved["vocab_size"])
    net.load_state_dict(saved["state_dict"])
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cpu = torch.device("cpu")
    ids = np.random.default_rng(0).integers(1, saved["vocab_size"], 60)
    # one segment: scored with the trained weights, before any update
    nll, n = adaptive_nll(net, ids[:19], eos_id=0, device=cpu, lr=10.0, segment=20)
    assert n == 19 and nll == pytest.approx(sum_nll(net, ids[:19], 0, cpu, batch_size=1)[0], rel=1e-5)
    # a text that repeats itself: the adapting model has read the first copy when it scores the second
    repeated = np.concatenate([ids] * 8)
    static, n_static = sum_nll(net, repeated, 0, cpu, batch_size=1)
    adapted, n_adapted = adaptive_nll(net, repeated, eos_id=0, device=cpu, lr=3.0, segment=20)
    assert n_adapted == n_static == 480
    assert adapted < 0.9 * static            # measured 0.87 (lr 1: 0.94)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())   # the caller's model is untouched
    result = evaluate(tmp_path, [" ".join(TRAIN)] * 2, adapt_lr=0.5)
    assert result["adapt_lr"] == 0.5
    assert "texts adapt=0.5" in json.loads((tmp_path / "metrics.json").read_text())["evaluations"]


def test_cache_reads_only_the_text_before_each_token_and_copies_repeats(tmp_path):
    train(TRAIN, tiny(steps=10), tmp_path, valid=VALID)
    saved = torch.load(tmp_path / "model.pt", weights_only=False)
    net = LSTMLanguageModel.from_config(tiny(), saved["vocab_size"])
    net.load_state_dict(saved["state_dict"])
    cpu = torch.device("cpu")
    ids = np.random.default_rng(0).permutation(np.arange(1, saved["vocab_size"]))[:100]   # no token twice
    static, n = sum_nll(net, ids, 0, cpu, batch_size=1)
    assert cache_nll(net, ids, 0, cpu, weight=0.0, window=7)[0] == pytest.approx(static, rel=1e-5)
    # no token has been seen before it, so the cache's half of the mixture is always wrong: each token but the
    # first (the cache is empty there) costs exactly ln 2 more. A cache that saw the token it predicts would not.
    cached, n_cached = cache_nll(net, ids, 0, cpu, weight=0.5, window=7)
    assert n_cached == n == 100 and cached == pytest.approx(static + 99 * math.log(2), rel=1e-5)
    # a text that repeats itself, under a model whose output is the current input token (one-hot), so the
    # cache matches exactly the position one copy earlier: each token of the second copy after its first costs
    # at most ln 2 (half of the mixture is the cache, sure of the copied token); the first has no match (the
    # token before it never came before), the cache is uniform over 49 entries, at most ln 98. Windows and the
    # cache's size cut across the copies.
    class InputEcho(LSTMLanguageModel):
        def features(self, tokens, hidden=None):
            return torch.nn.functional.one_hot(tokens, self.nhid).float(), hidden

    echo = InputEcho(vocab_size=50, emsize=64, nhid=64, nlayers=1, dropout=0.0, tied=False)
    first = np.random.default_rng(1).permutation(np.arange(1, 50))
    once = cache_nll(echo, first, 0, cpu, size=60, theta=30.0, weight=0.5, window=16)[0]
    twice = cache_nll(echo, np.concatenate([first, first]), 0, cpu, size=60, theta=30.0, weight=0.5, window=16)[0]
    assert twice - once <= 48 * math.log(2) + math.log(98) + 1e-3
    assert twice < 0.75 * sum_nll(echo, np.concatenate([first, first]), 0, cpu, batch_size=1)[0]
    # with dynamic evaluation: the updates follow the model's own loss, so the cache adds exactly the same cost
    adapted = adaptive_nll(net, ids, 0, cpu, lr=1.0, segment=7)[0]
    both = adaptive_nll(net, ids, 0, cpu, lr=1.0, segment=7, cache={"weight": 0.5})[0]
    assert both == pytest.approx(adapted + 99 * math.log(2), rel=1e-5)
    result = evaluate(tmp_path, [" ".join(TRAIN)] * 2, cache=True)
    assert result["cache"]["size"] > 0
    assert "texts cache" in json.loads((tmp_path / "metrics.json").read_text())["evaluations"]


def test_batchify_makes_contiguous_columns():
    data = batchify(np.arange(23), 4)
    assert data.shape == (5, 4)
    assert data[:, 1].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="too few"):
        batchify(np.arange(5), 4)


def test_generate_continues_prompt_reproducibly(tmp_path):
    train(TRAIN, tiny(steps=40, lr=1e-2), tmp_path, valid=VALID)
    a = generate(tmp_path, "we propose", max_tokens=25, temperature=0.8, top_p=0.9, seed=3)
    b = generate(tmp_path, "we propose", max_tokens=25, temperature=0.8, top_p=0.9, seed=3)
    assert a == b and a.startswith("we propose") and len(a) > len("we propose")
    greedy = generate(tmp_path, "the model", max_tokens=10, temperature=0, seed=1)
    assert greedy == generate(tmp_path, "the model", max_tokens=10, temperature=0, seed=2)
    assert isinstance(generate(tmp_path, "", max_tokens=5, seed=0), str)  # an empty prompt starts a document


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    g = torch.Generator().manual_seed(0)
    draws = {sample_next(logits, 1.0, 0.7, g) for _ in range(300)}
    assert draws == {0, 1}
    draws = {sample_next(logits, 1.0, 1.0, g) for _ in range(300)}
    assert draws == {0, 1, 2, 3}
    assert sample_next(logits, 0.0, 0.9, g) == 0


def test_time_budget_stops_cleanly(tmp_path):
    threads = torch.get_num_threads()
    metrics = train(TRAIN, tiny(steps=None, minutes=0.01, eval_every=None), tmp_path, valid=VALID)
    assert metrics["stop_reason"].startswith("time budget")
    assert (tmp_path / "model.pt").is_file() and math.isfinite(metrics["valid"]["bpc"])
    assert torch.get_num_threads() == threads  # tiny() asks for 1 thread; train() restores the caller's


def test_parquet_text_column_and_bad_sources(tmp_path):
    path = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"paper_id": ["1", "2", "3"], "text": ["first doc", None, "third doc"]}), path)
    assert load_documents(path) == ["first doc", "third doc"]
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "nocol.parquet")
    with pytest.raises(ValueError, match="no `text` column"):
        load_documents(tmp_path / "nocol.parquet")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_documents(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 na\xefve".encode("latin-1"))
    assert load_documents(bad) == ["caf\ufffd na\ufffdve"]
    assert count_chars(["ab\n", "c"]) == 5


def test_holdout_used_when_no_validation_text(tmp_path):
    metrics = train(TRAIN, tiny(steps=5), tmp_path)
    # the last 5 % of the documents (2 of 40) are held out, whole, and the validation figures are theirs
    assert metrics["train_chars"] == count_chars(TRAIN[:-2]) and metrics["valid"]["chars"] == count_chars(TRAIN[-2:])
    assert metrics["valid"]["bpc"] == pytest.approx(evaluate(tmp_path, TRAIN[-2:])["bpc"], rel=1e-5)


def test_cli_train_generate_evaluate_end_to_end(tmp_path, capsys):
    train_file, valid_file = tmp_path / "train.txt", tmp_path / "valid.txt"
    train_file.write_text("\n".join(TRAIN) + "\n", encoding="utf-8")
    valid_file.write_text("\n".join(VALID) + "\n", encoding="utf-8")
    out = tmp_path / "model"
    rc = cli_main(["train", "lstm", "--text", str(train_file), "--valid", str(valid_file), "--out", str(out),
                   "--steps", "20", "--vocab-size", "160", "--batch-size", "4", "--seed", "7",
                   "--set", "emsize=24", "--set", "nhid=24", "--set", "bptt=12", "--set", "eval_every=10"])
    assert rc == 0
    assert "valid perplexity" in capsys.readouterr().out
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["seed"] == 7 and config["minutes"] is None and config["nhid"] == 24

    assert cli_main(["generate", "lstm", "--checkpoint", str(out), "--prompt", "We propose",
                     "--max-tokens", "15", "--top-p", "0.9", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("We propose")

    assert cli_main(["evaluate", "lstm", "--checkpoint", str(out), "--text", str(valid_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["chars"] == len(valid_file.read_text(encoding="utf-8"))
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["evaluations"][str(valid_file)]["bpc"] == result["bpc"]
    # the same text as training's validation: the same figure, and 20 steps beat a uniform guess over the vocabulary
    assert result["bpc"] == pytest.approx(saved["valid"]["bpc"], rel=1e-5)
    uniform_bpc = math.log2(saved["vocab_size"]) * result["tokens"] / result["chars"]
    assert result["bpc"] < 0.93 * uniform_bpc, (result["bpc"], uniform_bpc)   # measured: 6.8 against 7.8

    # dynamic evaluation from the CLI: recorded beside the static figure, which it does not replace
    assert cli_main(["evaluate", "lstm", "--checkpoint", str(out), "--text", str(valid_file), "--adapt-lr", "0.5"]) == 0
    assert "adapting at lr 0.5" in capsys.readouterr().out
    saved = json.loads((out / "metrics.json").read_text())["evaluations"]
    assert saved[f"{valid_file} adapt=0.5"]["adapt_lr"] == 0.5 and saved[str(valid_file)]["bpc"] == result["bpc"]
    assert cli_main(["evaluate", "lstm", "--checkpoint", str(out), "--text", str(valid_file), "--cache"]) == 0
    assert "with the cache" in capsys.readouterr().out
    assert cli_main(["evaluate", "lstm", "--checkpoint", str(out), "--text", str(valid_file), "--cache", "--adapt"]) == 0
    assert "adapting at lr 0.3, with the cache" in capsys.readouterr().out


def test_cli_user_errors_exit_2(tmp_path, capsys):
    assert cli_main(["train", "lstm", "--text", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "m")]) == 2
    assert "nope.txt" in capsys.readouterr().err
    assert cli_main(["generate", "lstm", "--checkpoint", str(tmp_path), "--prompt", "x"]) == 2
    assert "no trained LSTM" in capsys.readouterr().err
    (tmp_path / "t.txt").write_text("some text\n")
    assert cli_main(["train", "lstm", "--text", str(tmp_path / "t.txt"), "--out", str(tmp_path / "m"),
                     "--set", "emsize=10", "--set", "nhid=20"]) == 2
    assert "emsize == nhid" in capsys.readouterr().err


def test_cli_presets_match_models():
    from pipeline.commands.text_models import PRESET_NAMES

    assert set(PRESET_NAMES) == set(PRESETS)
    small = PRESETS["ptb-small"]
    assert (small.nlayers, small.nhid, small.dropout, small.bptt, small.batch_size, small.lr, small.clip,
            small.tied, small.epochs, small.optimizer, small.tokenizer) == (
        2, 200, 0.2, 35, 20, 20.0, 0.25, True, 6, "sgd", "word")


def test_importing_pipeline_commands_does_not_load_torch():
    code = "import sys; import pipeline.commands.text_models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_cosine_schedule_takes_the_lr_to_near_zero_by_the_end_of_the_budget(tmp_path):
    train(TRAIN, tiny(steps=20, lr_schedule="cosine", lr=1e-2, eval_every=None), tmp_path, valid=VALID)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    last = ckpt["model"]["optimizer"]["param_groups"][0]["lr"]   # the lr of step 20 of 20
    assert last == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 19 / 20)))
    with pytest.raises(ValueError, match="lr_schedule must be plateau or cosine"):
        tiny(lr_schedule="linear").check()
