"""Helpers that turn results into Dagster UI metadata: markdown tables and inline images."""

import base64
from pathlib import Path

import dagster as dg


def md_table(rows: list[dict], max_cell: int = 80) -> str:
    """A markdown table from a list of dicts (the UI renders it in the asset's metadata panel)."""
    if not rows:
        return "_(empty)_"
    cols = list(rows[0])

    def cell(v) -> str:
        s = "" if v is None else str(v)
        s = s.replace("|", "\\|").replace("\n", " ")
        return s if len(s) <= max_cell else s[: max_cell - 1] + "…"

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def md_image(path: str | Path, alt: str = "image") -> dg.MetadataValue:
    """A PNG shown inline in the UI (base64 in markdown: works without serving files)."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")
