"""Tokenizers for the Long Range Arena token tasks (arXiv:2011.04006).

ListOps: LRA's input pipeline drops the parenthesis characters that its generator writes around every
binary sub-expression and splits the rest on whitespace, so a sequence holds only operators (``[MAX``,
``[MIN``, ``[MED``, ``[SM``), closing brackets ``]`` and single digits. The vocabulary is fixed (not
built from data) so that token ids never depend on which split was read first:

    0 <pad>, 1 <unk>, 2..11 digits 0..9, 12 [MAX, 13 [MIN, 14 [MED, 15 [SM, 16 ]

Text and Retrieval work on UTF-8 bytes: byte ``b`` becomes token ``b + 1`` and 0 is padding (vocabulary
size 257, as LRA's byte encoder).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PAD",
    "LISTOPS_VOCAB",
    "LISTOPS_VOCAB_SIZE",
    "BYTE_VOCAB_SIZE",
    "listops_tokens",
    "encode_listops",
    "decode_listops",
    "encode_bytes",
    "encode_listops_fast",
]

PAD = 0
_LISTOPS_WORDS = ["<pad>", "<unk>"] + [str(d) for d in range(10)] + ["[MAX", "[MIN", "[MED", "[SM", "]"]
LISTOPS_VOCAB: dict[str, int] = {w: i for i, w in enumerate(_LISTOPS_WORDS)}
LISTOPS_VOCAB_SIZE = len(_LISTOPS_WORDS)
BYTE_VOCAB_SIZE = 257
_UNK = LISTOPS_VOCAB["<unk>"]
_DROP_PARENS = str.maketrans({"(": " ", ")": " "})


def listops_tokens(source: str) -> list[str]:
    """Split a ListOps ``Source`` string into tokens the way LRA counts them (parentheses removed)."""
    return source.translate(_DROP_PARENS).split()


def encode_listops(source: str, strict: bool = True) -> np.ndarray:
    """Token ids (int64, (L,)) of a ListOps expression.

    Args:
        source: the ``Source`` column, e.g. ``"( ( [MAX 2 ) 9 ) ]"`` (parentheses optional).
        strict: raise ``ValueError`` on a word outside the vocabulary instead of mapping it to <unk>.
    """
    words = listops_tokens(source)
    if strict:
        bad = [w for w in words if w not in LISTOPS_VOCAB or LISTOPS_VOCAB[w] < 2]
        if bad:
            raise ValueError(f"unknown ListOps token(s) {sorted(set(bad))[:5]}; expected digits, "
                             "[MAX, [MIN, [MED, [SM, ] and parentheses")
    return np.array([LISTOPS_VOCAB.get(w, _UNK) for w in words], dtype=np.int64)


def decode_listops(ids: np.ndarray) -> str:
    """Inverse of :func:`encode_listops` (without parentheses); padding is dropped."""
    return " ".join(_LISTOPS_WORDS[i] for i in np.asarray(ids).tolist() if i != PAD)


def encode_bytes(text: str | bytes, max_length: int | None = None) -> np.ndarray:
    """Byte-level token ids (int64, (L,)): UTF-8 byte ``b`` -> ``b + 1``; truncated to ``max_length``."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if max_length is not None:
        raw = raw[:max_length]
    return np.frombuffer(raw, dtype=np.uint8).astype(np.int64) + 1


# Fast path for whole files: operators become one control character each, so after dropping parentheses
# and whitespace every remaining character is one token and a 256-entry table maps it to its id.
_OPS = {"[MAX": "\x01", "[MIN": "\x02", "[MED": "\x03", "[SM": "\x04"}
_TABLE = np.full(256, 255, dtype=np.uint8)
for _w, _c in list(_OPS.items()) + [(str(d), str(d)) for d in range(10)] + [("]", "]")]:
    _TABLE[ord(_c)] = LISTOPS_VOCAB[_w]


def encode_listops_fast(source: str) -> np.ndarray:
    """Same ids as :func:`encode_listops` (strict), as uint8, without a per-token Python loop.

    Raises ``ValueError`` on any word outside the vocabulary.
    """
    if any(c in source for c in "\x01\x02\x03\x04"):
        raise ValueError("control characters are not valid in a ListOps expression")
    s = source
    for w, c in _OPS.items():
        s = s.replace(w, c)
    words = s.translate(_DROP_PARENS).split()
    joined = "".join(words)
    if len(joined) != len(words):
        back = {c: w for w, c in _OPS.items()}
        bad = sorted({"".join(back.get(ch, ch) for ch in w) for w in words if len(w) != 1})[:5]
        raise ValueError(f"unknown ListOps token(s) {bad}; expected digits, [MAX, [MIN, [MED, [SM, ]")
    try:
        raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError as e:
        raise ValueError(f"non-ASCII character in a ListOps expression: {e}") from None
    ids = _TABLE[raw]
    if (ids == 255).any():
        bad = sorted({joined[i] for i in np.flatnonzero(ids == 255)[:5]})
        raise ValueError(f"unknown ListOps token(s) {bad}; expected digits, [MAX, [MIN, [MED, [SM, ]")
    return ids
