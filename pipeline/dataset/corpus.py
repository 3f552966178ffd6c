"""Text corpora for the language models: one field's titles, abstracts, captions and paragraphs.

Output: `train.txt` and `valid.txt` (UTF-8, one text per line), split by paper (a stable hash of the
paper id), so no paper's sentences sit on both sides of the split and re-running gives the same split.
"""

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
DEFAULT_KINDS = ("title", "abstract", "caption", "paragraph")


@dataclass
class CorpusSummary:
    path: str
    field: str
    train_lines: int = 0
    valid_lines: int = 0
    train_chars: int = 0
    valid_chars: int = 0
    papers: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def is_validation(paper_id: str, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha1(paper_id.encode()).digest()[:8], "big")
    return h / 2**64 < fraction


def build_field_corpus(
    data_root: str | Path,
    field_name: str,
    out_dir: str | Path,
    *,
    valid_fraction: float = 0.1,
    kinds: tuple[str, ...] = DEFAULT_KINDS,
) -> CorpusSummary:
    """Write OUT/train.txt and OUT/valid.txt from the `text` table rows of one field."""
    from pipeline.dataset.reader import read_text

    t0 = time.perf_counter()
    table = read_text(data_root, field=field_name, kinds=list(kinds), columns=["paper_id", "kind", "text"])
    table = table.sort_by([("paper_id", "ascending")])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = CorpusSummary(path=str(out_dir), field=field_name)
    tmp = {name: out_dir / f".{name}.txt.tmp-{os.getpid()}" for name in ("train", "valid")}
    papers = set()
    with open(tmp["train"], "w", encoding="utf-8") as tr, open(tmp["valid"], "w", encoding="utf-8") as va:
        for pid, kind, text in zip(*(table.column(c).to_pylist() for c in ("paper_id", "kind", "text")),
                                   strict=True):
            line = " ".join(text.split())  # one text per line: newlines inside a text become spaces
            if not line:
                continue
            papers.add(pid)
            s.by_kind[kind] = s.by_kind.get(kind, 0) + 1
            if is_validation(pid, valid_fraction):
                va.write(line + "\n")
                s.valid_lines += 1
                s.valid_chars += len(line) + 1
            else:
                tr.write(line + "\n")
                s.train_lines += 1
                s.train_chars += len(line) + 1
    for name, path in tmp.items():
        os.replace(path, out_dir / f"{name}.txt")
    s.papers = len(papers)
    s.seconds = time.perf_counter() - t0
    log.info("%s: corpus of %d papers, %d train / %d valid lines", field_name, s.papers, s.train_lines,
             s.valid_lines)
    return s
