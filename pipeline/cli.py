"""`arxiv-forge`: the command line.

Each command group lives in `pipeline/commands/<group>.py` and exposes `register(subparsers)`.
Commands import their heavy dependencies (torch, Dagster) inside the command, so `arxiv-forge --help`
and `import pipeline` stay fast and never load Dagster or torch.
"""

import argparse
import importlib
import logging
import sys

from pipeline.errors import UserError

# Order here is the order in `arxiv-forge --help`.
COMMAND_MODULES = [
    "pipeline.commands.source",
    "pipeline.commands.metadata",
    "pipeline.commands.sample",
    "pipeline.commands.extract",
    "pipeline.commands.dataset",
    "pipeline.commands.publish",
    "pipeline.commands.models",
    "pipeline.commands.orchestration",
]


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arxiv-forge",
        description="Turn arXiv sources and metadata into figure/caption/text datasets and generative models.",
        formatter_class=_HelpFormatter,
        epilog="Run `arxiv-forge COMMAND --help` for a command's options and an example.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command group is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"arxiv-forge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("arxiv-forge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `arxiv-forge chunk-list x.tar | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
