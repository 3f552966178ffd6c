"""models.config.build: the one set of rules the CLI, the assets and the benchmarks use to make a config."""

import copy

import pytest

from models import config as C
from models import gan, lstm, vae


def test_auto_picks_the_hardware_preset_and_the_size_preset():
    # this machine has no CUDA: the CPU presets
    assert C.build("gan").preset == "cpu-64" and C.build("vae").preset == "cpu-64"
    assert C.build("lstm").preset == "arxiv-cpu"
    assert C.build("gan", resolution=32).preset == "cpu-small"
    assert C.build("vae", "auto", "cpu", resolution=64).preset == "cpu-64"
    assert C.build("gan", "gpu-128", "cpu").resolution == 128   # a named preset is taken as given


def test_a_budget_replaces_the_presets_whole_budget():
    before = copy.deepcopy((gan.PRESETS, vae.PRESETS, lstm.PRESETS))
    preset = gan.PRESETS["cpu-64"]
    assert (C.build("gan").steps, C.build("gan").minutes) == (preset["steps"], preset["minutes"])
    assert (C.build("gan", minutes=3).steps, C.build("gan", minutes=3).minutes) == (None, 3)
    assert (C.build("vae", steps=10).steps, C.build("vae", steps=10).minutes) == (10, None)
    text = C.build("lstm", "arxiv-gpu", "cpu", minutes=2)
    assert (text.steps, text.epochs, text.minutes) == (None, None, 2)
    assert (gan.PRESETS, vae.PRESETS, lstm.PRESETS) == before   # the presets themselves are untouched


def test_overrides_none_means_not_given_and_the_config_records_its_preset():
    cfg = C.build("vae", "cpu-small", "cpu", batch_size=None, seed=7, prior="standard")
    assert cfg.batch_size == vae.PRESETS["cpu-small"]["batch_size"] and cfg.seed == 7
    assert (cfg.prior, cfg.preset, cfg.device) == ("standard", "cpu-small", "cpu")


@pytest.mark.parametrize("kind, kwargs, message", [
    ("gan", {"preset": "huge"}, "unknown gan preset 'huge'; choose one of auto, tiny"),
    ("gan", {"g_chanels": 8}, "unknown gan config field(s) g_chanels"),
    ("vae", {"prior": "flat"}, "unknown prior 'flat'; choose one of conditional, standard"),
    ("lstm", {"tokenizer": "bytes"}, "tokenizer must be bpe, char or word"),
    ("gan", {"device": "cuda"}, "CUDA is not available"),
    ("gan", {"minutes": 0}, "minutes must be > 0"),
    ("robot", {}, "unknown model kind 'robot'"),
])
def test_mistakes_are_one_line_errors_naming_the_choices(kind, kwargs, message):
    with pytest.raises(ValueError) as err:
        C.build(kind, **kwargs)
    assert message in str(err.value)


def test_the_cli_and_the_assets_get_the_same_config(tmp_path):
    """The CLI's `train lstm` flags and the asset's run config go through the same builder."""
    import argparse

    from assets.training import build_config
    from pipeline.commands.text_models import build_config as cli_build

    args = argparse.Namespace(set=[], tokenizer=None, vocab_size=None, batch_size=None, seed=3,
                              checkpoint_every=None, threads=None, steps=None, epochs=None, minutes=4.0,
                              device="cpu", preset="arxiv-cpu")
    assert cli_build(args) == build_config("lstm", "arxiv-cpu", "cpu", minutes=4.0, seed=3)
