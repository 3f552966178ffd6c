"""CLI command groups; each module has `register(subparsers)`. See pipeline/cli.py."""


def example(text: str) -> str:
    """Epilog for a command's --help: the example(s) a user can paste."""
    return "example:\n  " + "\n  ".join(text.strip().splitlines())
