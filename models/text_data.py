"""Text corpora for the language model: read documents, encode them, lay them out for truncated BPTT.

A *source* is one of:
- a path (str or Path) to a UTF-8 text file (one document), a Parquet file with a `text` column
  (one document per row), or a directory holding Parquet files (read as one dataset) or else `*.txt` files;
- a list mixing raw strings (each one document) and Path objects (read as above).

Character counts follow one rule for every tokenizer, so bits per character compare across them:
the characters of each document, plus one for the end-of-document marker when the document does not
already end with a newline.
"""

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

TEXT_COLUMN = "text"
Source = str | Path | Sequence[str | Path]


def iter_documents(source: Source) -> Iterator[str]:
    """Yield the documents of `source` (see module docstring); empty documents are skipped."""
    if isinstance(source, (str, Path)):
        yield from _read_path(Path(source))
        return
    for item in source:
        if isinstance(item, Path):
            yield from _read_path(item)
        elif isinstance(item, str):
            if item:
                yield item
        else:
            raise TypeError(f"expected text or Path, got {type(item).__name__}")


def load_documents(source: Source) -> list[str]:
    docs = list(iter_documents(source))
    if not docs:
        raise ValueError(f"no text found in {_describe(source)}: give a non-empty UTF-8 file or Parquet `text` column")
    return docs


def _describe(source: Source) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return f"{len(source)} given item(s)"


def _read_path(path: Path) -> Iterator[str]:
    if not path.exists():
        raise FileNotFoundError(f"text source {path} does not exist: give a UTF-8 text file, Parquet file or directory")
    if path.is_dir():
        parquet = sorted(path.rglob("*.parquet"))
        if parquet:
            yield from _read_parquet(path)
            return
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise ValueError(f"directory {path} holds no .parquet or .txt files")
        for f in files:
            yield from _read_text_file(f)
    elif path.suffix.lower() == ".parquet":
        yield from _read_parquet(path)
    else:
        yield from _read_text_file(path)


def _read_text_file(path: Path) -> Iterator[str]:
    data = path.read_bytes()
    text = data.decode("utf-8", errors="replace")
    if "\ufffd" in text and b"\xef\xbf\xbd" not in data:
        # Hostile or mis-encoded input is kept (bad bytes become U+FFFD) rather than ending the run.
        log.warning("%s is not valid UTF-8; undecodable bytes were replaced", path)
    if text:
        yield text


def _read_parquet(path: Path) -> Iterator[str]:
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise ValueError(f"cannot read Parquet at {path}: {exc}") from exc
    if TEXT_COLUMN not in dataset.schema.names:
        raise ValueError(f"Parquet at {path} has no `{TEXT_COLUMN}` column (columns: {', '.join(dataset.schema.names)})")
    for batch in dataset.to_batches(columns=[TEXT_COLUMN]):
        for value in batch.column(0).to_pylist():
            if value:
                yield value


def count_chars(documents: Iterable[str]) -> int:
    """Characters for bits-per-character (see module docstring)."""
    return sum(len(d) + (0 if d.endswith("\n") else 1) for d in documents)


@dataclass
class EncodedText:
    """A corpus as one token stream: every document's ids followed by `<eos>`."""

    ids: np.ndarray  # int64, 1-D
    chars: int
    documents: int

    @property
    def tokens(self) -> int:
        return int(self.ids.size)


def encode_documents(tokenizer, documents: Sequence[str], chunk: int = 512) -> EncodedText:
    """Encode documents in chunks (bounded memory for the Python lists) into one int64 array."""
    parts: list[np.ndarray] = []
    for start in range(0, len(documents), chunk):
        batch = list(documents[start:start + chunk])
        for ids in tokenizer.encode_many(batch):
            parts.append(np.asarray(ids, dtype=np.int64))
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return EncodedText(ids=ids, chars=count_chars(documents), documents=len(documents))


def batchify(ids: np.ndarray | torch.Tensor, batch_size: int) -> torch.Tensor:
    """[T, B] LongTensor of B contiguous streams (the tail that does not fill a column is dropped).

    This is the pytorch/examples layout: column b holds tokens b*T .. (b+1)*T-1, so consecutive BPTT
    windows of a column continue each other and the hidden state can be carried across them.
    """
    data = torch.as_tensor(np.asarray(ids), dtype=torch.long)
    n = data.numel() // batch_size
    if n < 2:
        raise ValueError(f"{data.numel()} tokens are too few for batch size {batch_size}: use more text or a smaller batch")
    return data[: n * batch_size].view(batch_size, n).t().contiguous()


def get_batch(data: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs data[i:i+L] and next-token targets data[i+1:i+1+L], L = min(bptt, rows left - 1)."""
    seq_len = min(bptt, data.size(0) - 1 - i)
    return data[i:i + seq_len], data[i + 1:i + 1 + seq_len]


def eval_streams(ids: np.ndarray, eos_id: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets [L, B] in which every token of `ids` is a target exactly once.

    The stream is prefixed with `<eos>` (so the first token is predicted from a document start), cut into
    B contiguous columns that overlap by one token, and the last column is padded with target -100
    (ignored by cross-entropy). Evaluation then counts every token and every character of the text.
    """
    stream = np.concatenate([np.asarray([eos_id], dtype=np.int64), np.asarray(ids, dtype=np.int64)])
    n = stream.size - 1  # targets
    batch_size = max(1, min(batch_size, n))
    length = -(-n // batch_size)
    inputs = torch.zeros(length, batch_size, dtype=torch.long)
    targets = torch.full((length, batch_size), -100, dtype=torch.long)
    s = torch.as_tensor(stream)
    for b in range(batch_size):
        lo = b * length
        hi = min(lo + length, n)
        if hi <= lo:
            break
        inputs[: hi - lo, b] = s[lo:hi]
        targets[: hi - lo, b] = s[lo + 1:hi + 1]
    return inputs, targets
