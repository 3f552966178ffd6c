"""`arxiv-forge train|generate|evaluate gan|vae|lstm`: the same functions the Dagster assets call.

The image models (gan, vae) register in `pipeline.commands.image_models`, the text model (lstm) in
`pipeline.commands.text_models`; both import torch only inside the command.
"""

import importlib


def register(sub) -> None:
    train = sub.add_parser("train", help="train a model (gan, vae, lstm)",
                           description="Train a generative model on a training shard or a text corpus.")
    generate = sub.add_parser("generate", help="sample from a trained model",
                              description="Sample images or text from a trained checkpoint.")
    evaluate = sub.add_parser("evaluate", help="evaluate a trained model (KID, accuracy, bpc, perplexity)",
                              description="Evaluate a trained checkpoint and write metrics.json.")
    subs = tuple(p.add_subparsers(dest="model", metavar="MODEL", required=True) for p in (train, generate, evaluate))
    for name in ("pipeline.commands.image_models", "pipeline.commands.text_models"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(*subs)
