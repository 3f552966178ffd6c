"""Tokenizers for the LSTM LM: exact round trips, vocabulary caps, <eos>/<unk> handling, save/load."""

import pytest

from models.text_data import count_chars, encode_documents
from models.tokenizer import (
    BPETokenizer,
    CharTokenizer,
    WordTokenizer,
    load_tokenizer,
    train_tokenizer,
)

CORPUS = [
    "We propose a new method for learning graph representations.\n\nIt works  well\ton   benchmarks.",
    "Unicode survives: é, ∑_{i=1}^n x_i, 日本語, emoji 🙂, and a literal <eos> and <unk> in text.",
    "Tabs\tand\r\nWindows line ends, trailing spaces   \n",
] * 20


def test_bpe_round_trips_any_text_exactly():
    tok = train_tokenizer("bpe", CORPUS, vocab_size=400)
    assert isinstance(tok, BPETokenizer)
    assert tok.vocab_size <= 400
    for text in CORPUS[:3] + ["never seen: Ωmega ∂x/∂t <eos> \x00 control", ""]:
        assert tok.decode(tok.encode(text)) == text
    # BPE learned merges: far fewer tokens than bytes on the training text.
    assert len(tok.encode(CORPUS[0])) < len(CORPUS[0].encode()) * 0.6


def test_bpe_eos_is_reserved_and_never_produced_by_text():
    tok = train_tokenizer("bpe", CORPUS, vocab_size=400)
    ids = tok.encode("a literal <eos> here")
    assert tok.eos_id not in ids
    doc = tok.encode_document("end")
    assert doc[-1] == tok.eos_id and doc.count(tok.eos_id) == 1
    assert tok.decode(doc) == "end\n"


def test_bpe_long_document_is_split_and_still_round_trips():
    line = "The spectral norm bounds the Lipschitz constant of each layer.\n"
    text = line * 3000  # ~190 K characters: several 64 K pieces
    tok = train_tokenizer("bpe", [text], vocab_size=300)
    (ids,) = tok.encode_many([text])
    assert ids[-1] == tok.eos_id
    assert tok.decode(ids[:-1]) == text
    assert ids == tok.encode_document(text)


def test_char_round_trip_and_unknown_characters():
    tok = train_tokenizer("char", CORPUS)
    assert isinstance(tok, CharTokenizer)
    assert tok.vocab_size == len(set("".join(CORPUS))) + 2
    assert tok.decode(tok.encode(CORPUS[1])) == CORPUS[1]
    assert tok.decode(tok.encode("Z")) == "\ufffd"  # 'Z' never occurs in the corpus
    assert tok.eos_id not in tok.encode("<eos>")


def test_char_vocabulary_cap_keeps_most_frequent():
    tok = train_tokenizer("char", ["aaaa bbb cc d"], vocab_size=5)  # 3 characters + <eos> + <unk>
    assert tok.vocab_size == 5
    assert set(tok.chars) == {"a", "b", " "}


def test_word_tokenizer_ptb_conventions():
    text = " the cat sat \n the dog sat on the mat \n a <unk> ran \n"
    tok = train_tokenizer("word", [text], vocab_size=6)  # <eos>, <unk> + 4 most frequent words
    assert isinstance(tok, WordTokenizer)
    assert tok.vocab_size == 6
    assert tok.words[:2] == ["the", "sat"]
    ids = tok.encode(text)
    assert ids.count(tok.eos_id) == 3  # one per line, as pytorch/examples does
    assert tok.unk_id in ids  # literal <unk> and capped words
    normalised = "the cat sat\nthe dog\n"
    full = train_tokenizer("word", [normalised])
    assert full.decode(full.encode(normalised)) == normalised
    assert full.decode(full.encode_document("the cat")) == "the cat\n"
    assert full.continuation(full.encode("sat"), after="the cat") == " sat"


@pytest.mark.parametrize("kind", ["bpe", "char", "word"])
def test_save_load_gives_identical_encodings(tmp_path, kind):
    tok = train_tokenizer(kind, CORPUS, vocab_size=300)
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert type(again) is type(tok)
    assert again.vocab_size == tok.vocab_size and again.eos_id == tok.eos_id
    for text in CORPUS[:3]:
        assert again.encode(text) == tok.encode(text)
    assert not list(tmp_path.glob("*.tmp"))


def test_load_tokenizer_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_tokenizer(tmp_path)


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="bpe, char, word"):
        train_tokenizer("sentencepiece", CORPUS)


def test_encoded_corpus_counts_characters_the_same_for_every_tokenizer():
    docs = ["abc", "de\n", "fgh\nij"]
    assert count_chars(docs) == 4 + 3 + 7  # a document without a final newline gets one for its end
    for kind in ("bpe", "char", "word"):
        tok = train_tokenizer(kind, docs)
        enc = encode_documents(tok, docs)
        assert enc.chars == 14 and enc.documents == 3
        assert enc.ids[-1] == tok.eos_id
        assert (enc.ids == tok.eos_id).sum() >= 3
