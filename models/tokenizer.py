"""Tokenizers for the LSTM language model: byte-level BPE, characters, whitespace words.

All three share one small interface (`encode`, `decode`, `vocab_size`, `eos_id`, `save`) and are saved
as one JSON file beside the checkpoint (`tokenizer.json`), so a checkpoint directory is self-contained.

- `bpe`: byte-level BPE trained on the corpus with HF `tokenizers` (GPT-2 style pre-tokenisation).
  Every string round-trips exactly; there is no unknown token.
- `char`: one token per Unicode character seen in training (optionally the most frequent `vocab_size`);
  unseen characters map to `<unk>` and decode as U+FFFD.
- `word`: whitespace-separated words with a vocabulary cap, `<unk>` for the rest and `<eos>` at the end
  of every line (the Penn Treebank / pytorch-examples convention). Decoding joins words with single
  spaces, so only whitespace-normalised text round-trips.

`<eos>` ends every document (and, for `word`, every line). For `bpe` and `char` it is an id outside the
learned vocabulary and never matched inside text, so a literal "<eos>" in a paper stays text.
"""

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from forge_common import atomic_write

TOKENIZER_FILE = "tokenizer.json"
KINDS = ("bpe", "char", "word")
EOS = "<eos>"
UNK = "<unk>"
# Long documents are cut at line ends into pieces of about this many characters before BPE encoding,
# so `encode_batch` can spread one big file over the cores.
_BPE_PIECE_CHARS = 1 << 16


class Tokenizer:
    """Common interface; see the subclasses."""

    kind = ""

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def eos_id(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` without a trailing `<eos>` (word: `<eos>` for each newline)."""
        raise NotImplementedError

    def encode_document(self, text: str) -> list[int]:
        """Token ids of one document, always ending in `<eos>`."""
        ids = self.encode(text)
        if not ids or ids[-1] != self.eos_id:
            ids.append(self.eos_id)
        return ids

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        return [self.encode_document(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def continuation(self, ids: Iterable[int], after: str) -> str:
        """Text of `ids` as it continues `after` (adds the separator word tokens need)."""
        return self.decode(ids)

    def to_dict(self) -> dict:
        raise NotImplementedError

    def save(self, directory: str | Path) -> Path:
        """Write `tokenizer.json` into `directory` atomically and return its path."""
        return atomic_write(Path(directory) / TOKENIZER_FILE, json.dumps(self.to_dict(), ensure_ascii=False))


class CharTokenizer(Tokenizer):
    kind = "char"

    def __init__(self, chars: list[str]):
        # ids: 0 = <eos>, 1 = <unk>, then the characters.
        self.chars = list(chars)
        self._index = {c: i + 2 for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None = None) -> "CharTokenizer":
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        keep = counts.most_common(None if vocab_size is None else max(vocab_size - 2, 1))
        return cls(sorted(c for c, _ in keep))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 2

    @property
    def eos_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def encode(self, text: str) -> list[int]:
        index, unk = self._index, self.unk_id
        return [index.get(c, unk) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == 0:
                out.append("\n")
            elif i == 1 or i >= self.vocab_size or i < 0:
                out.append("\ufffd")
            else:
                out.append(self.chars[i - 2])
        return "".join(out)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}


class WordTokenizer(Tokenizer):
    kind = "word"

    def __init__(self, words: list[str]):
        # ids: 0 = <eos>, 1 = <unk>, then the words (most frequent first).
        self.words = [w for w in words if w not in (EOS, UNK)]
        self._index = {w: i + 2 for i, w in enumerate(self.words)}
        self._index[EOS] = 0
        self._index[UNK] = 1

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None = None) -> "WordTokenizer":
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text.split())
        counts.pop(EOS, None)
        counts.pop(UNK, None)
        # most_common breaks ties by first occurrence, so the vocabulary is deterministic.
        keep = counts.most_common(None if vocab_size is None else max(vocab_size - 2, 0))
        return cls([w for w, _ in keep])

    @property
    def vocab_size(self) -> int:
        return len(self.words) + 2

    @property
    def eos_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def encode(self, text: str) -> list[int]:
        index, unk, ids = self._index, self.unk_id, []
        lines = text.split("\n")
        for n, line in enumerate(lines):
            ids.extend(index.get(w, unk) for w in line.split())
            if n < len(lines) - 1:
                ids.append(0)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        out, line = [], []
        for i in ids:
            i = int(i)
            if i == 0:
                out.append(" ".join(line) + "\n")
                line = []
            else:
                line.append(self.words[i - 2] if 2 <= i < self.vocab_size else UNK)
        return "".join(out) + " ".join(line)

    def continuation(self, ids: Iterable[int], after: str) -> str:
        text = self.decode(ids)
        if text and after and not after[-1].isspace() and not text.startswith("\n"):
            return " " + text
        return text

    def to_dict(self) -> dict:
        return {"kind": self.kind, "words": self.words}


class BPETokenizer(Tokenizer):
    kind = "bpe"

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        self._n = hf_tokenizer.get_vocab_size(with_added_tokens=True)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int | None = 4096) -> "BPETokenizer":
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        # One id is kept for <eos>, which lives outside the HF vocabulary (see module docstring).
        trainer = trainers.BpeTrainer(
            vocab_size=max((vocab_size or 4096) - 1, 257),
            min_frequency=2,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        hf.train_from_iterator(_pieces(texts), trainer=trainer)
        return cls(hf)

    @property
    def vocab_size(self) -> int:
        return self._n + 1

    @property
    def eos_id(self) -> int:
        return self._n

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for enc in self.hf.encode_batch(list(_pieces([text])), add_special_tokens=False):
            ids.extend(enc.ids)
        return ids

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        # Cut every document into pieces, encode all pieces in one parallel call, then regroup.
        pieces, owner = [], []
        for n, text in enumerate(texts):
            for piece in _pieces([text]):
                pieces.append(piece)
                owner.append(n)
        out: list[list[int]] = [[] for _ in texts]
        for n, enc in zip(owner, self.hf.encode_batch(pieces, add_special_tokens=False), strict=True):
            out[n].extend(enc.ids)
        for ids in out:
            ids.append(self.eos_id)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        # <eos> ends a document; show it as a newline rather than dropping it silently.
        out, run = [], []
        for i in ids:
            i = int(i)
            if i == self._n:
                out.append(self.hf.decode(run, skip_special_tokens=False) + "\n")
                run = []
            elif 0 <= i < self._n:
                run.append(i)
        out.append(self.hf.decode(run, skip_special_tokens=False) if run else "")
        return "".join(out)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "hf": json.loads(self.hf.to_str())}


def _pieces(texts: Iterable[str]) -> Iterator[str]:
    """Each text, cut after newlines into pieces of at most ~64 K characters (BPE never merges across)."""
    for text in texts:
        start = 0
        while len(text) - start > _BPE_PIECE_CHARS:
            cut = text.rfind("\n", start, start + _BPE_PIECE_CHARS)
            cut = start + _BPE_PIECE_CHARS if cut <= start else cut + 1
            yield text[start:cut]
            start = cut
        if start < len(text) or not text:
            yield text[start:]


def train_tokenizer(kind: str, texts: Iterable[str], vocab_size: int | None = None) -> Tokenizer:
    """Learn a tokenizer of `kind` (bpe, char, word) from `texts`; `vocab_size` caps the vocabulary."""
    if kind == "bpe":
        return BPETokenizer.train(texts, vocab_size or 4096)
    if kind == "char":
        return CharTokenizer.train(texts, vocab_size)
    if kind == "word":
        return WordTokenizer.train(texts, vocab_size)
    raise ValueError(f"unknown tokenizer {kind!r}: use one of {', '.join(KINDS)}")


def tokenizer_from_dict(data: dict) -> Tokenizer:
    kind = data.get("kind")
    if kind == "char":
        return CharTokenizer(data["chars"])
    if kind == "word":
        return WordTokenizer(data["words"])
    if kind == "bpe":
        from tokenizers import Tokenizer as HFTokenizer

        return BPETokenizer(HFTokenizer.from_str(json.dumps(data["hf"])))
    raise ValueError(f"unknown tokenizer kind {kind!r} in tokenizer file")


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Read `tokenizer.json` from a checkpoint directory (or the file itself)."""
    path = Path(directory)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer at {path}: train a model into that directory first")
    return tokenizer_from_dict(json.loads(path.read_text(encoding="utf-8")))
