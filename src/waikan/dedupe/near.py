"""Near-duplicates: MinHash over word shingles, banded LSH, our own numpy code.

Why not datasketch: its MinHash can only be persisted through its own
``serialize()`` (raw hash values cannot be re-imported without its hashing
scheme) and it pulls in scipy (~216 MB). Here a signature is a plain
``uint32`` array whose bytes go straight into the store, and it is computed
by a handful of vectorised numpy operations, in bounded memory even for a
500,000-word body. Everything is seeded by fixed constants, so signatures
made by any process, today or after a restart, are comparable.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "NUM_PERM",
    "SCHEME",
    "LSHIndex",
    "containment",
    "jaccard",
    "minhash",
    "shingle_hashes",
    "term_hashes",
    "tokens",
]

NUM_PERM = 128
SHINGLE = 5
SCHEME = f"mh{NUM_PERM}-w{SHINGLE}-v1"  # stored with each signature; change it when these change
_CHUNK = 4096  # shingles hashed per step: 128 x 4096 x 8 bytes = 4 MiB of scratch
_MAX = np.uint32(0xFFFFFFFF)

_rng = np.random.default_rng(0x5EED_DEDE)
_A = _rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)
_POS = _rng.integers(1, 2**63, size=SHINGLE, dtype=np.uint64) * np.uint64(2) + np.uint64(1)

Signature = npt.NDArray[np.uint32]
Hashes = npt.NDArray[np.uint64]

# A run of CJK ideographs, kana or hangul has no spaces: each character is a token,
# so shingles become character n-grams there. Elsewhere a token is a run of letters/digits.
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W_]+")


def tokens(text: str) -> list[str]:
    """Case-folded word tokens; punctuation, markup remnants and spacing are ignored."""
    return _TOKEN.findall(text.casefold())


def _mix(x: Hashes) -> Hashes:
    """splitmix64's finaliser: spreads crc32-sized inputs over 64 bits."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _word_hashes(words: Sequence[str]) -> Hashes:
    codes = map(zlib.crc32, map(str.encode, words))
    return np.fromiter(codes, dtype=np.uint64, count=len(words))


def shingle_hashes(words: Sequence[str], k: int = SHINGLE) -> Hashes:
    """Distinct 64-bit hashes of the ``k``-word shingles (the whole text when shorter)."""
    if not words:
        return np.empty(0, dtype=np.uint64)
    h = _word_hashes(words)
    k = min(k, len(h))
    n = len(h) - k + 1
    acc = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            acc = acc + h[j : j + n] * _POS[j]
    return np.unique(_mix(acc))


def term_hashes(terms: Iterable[str]) -> Hashes:
    """Distinct hashes of single terms (story signatures are sets of terms)."""
    ts = list(terms)
    return np.unique(_mix(_word_hashes(ts))) if ts else np.empty(0, dtype=np.uint64)


def minhash(hashes: Hashes) -> Signature:
    """The MinHash signature: per permutation ``(a*x + b) mod 2**64``, top 32 bits, minimum.

    An empty set gives all-ones, which matches nothing in the index (it is never inserted).
    """
    sig = np.full(NUM_PERM, _MAX, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for start in range(0, len(hashes), _CHUNK):
            x = hashes[start : start + _CHUNK]
            v = (_A[:, None] * x[None, :] + _B[:, None]) >> np.uint64(32)
            np.minimum(sig, v.min(axis=1).astype(np.uint32), out=sig)
    return sig


def jaccard(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity of the two sets."""
    return float(np.count_nonzero(a == b)) / NUM_PERM


def containment(j: float, size_a: int, size_b: int) -> float:
    """Estimated share of the smaller set found in the larger one.

    ``|A∩B| = J/(1+J) * (|A|+|B|)``: a trimmed or extended copy has a low
    Jaccard but nearly all of the shorter text is in the longer one.
    """
    small = min(size_a, size_b)
    if small <= 0:
        return 0.0
    return min(1.0, j / (1.0 + j) * (size_a + size_b) / small)


@dataclass
class LSHIndex:
    """Banded LSH over signatures: ids whose signatures agree on a whole band are candidates.

    ``bands * rows`` must not exceed :data:`NUM_PERM`. The detection threshold is
    about ``(1/bands) ** (1/rows)``. Almost every bucket holds one id, so a bucket is
    that id itself until a second one joins it (then a list): half the memory of a
    list per bucket, which is most of the index at 100,000 articles.
    """

    bands: int = 32
    rows: int = 4
    _buckets: list[dict[bytes, int | list[int]]] = field(default_factory=list)
    _keys: dict[int, tuple[bytes, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.bands * self.rows > NUM_PERM or self.bands < 1 or self.rows < 1:
            raise ValueError(f"bands*rows must be within 1..{NUM_PERM}")
        self._buckets = [{} for _ in range(self.bands)]

    def _band_keys(self, sig: Signature) -> tuple[bytes, ...]:
        raw = sig[: self.bands * self.rows].tobytes()
        step = self.rows * 4
        return tuple(raw[i * step : (i + 1) * step] for i in range(self.bands))

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: int) -> bool:
        return key in self._keys

    def insert(self, key: int, sig: Signature) -> None:
        if key in self._keys or bool(np.all(sig == _MAX)):
            return
        keys = self._band_keys(sig)
        for bucket, k in zip(self._buckets, keys, strict=True):
            found = bucket.get(k)
            if found is None:
                bucket[k] = key
            elif isinstance(found, int):
                bucket[k] = [found, key]
            else:
                found.append(key)
        self._keys[key] = keys

    def remove(self, key: int) -> None:
        keys = self._keys.pop(key, None)
        if keys is None:
            return
        for bucket, k in zip(self._buckets, keys, strict=True):
            found = bucket.get(k)
            if found == key:
                del bucket[k]
            elif isinstance(found, list):
                found.remove(key)
                if len(found) == 1:
                    bucket[k] = found[0]

    def query(self, sig: Signature) -> list[int]:
        """Candidate ids, most shared bands first (then oldest first)."""
        if bool(np.all(sig == _MAX)):
            return []
        hits: dict[int, int] = defaultdict(int)
        for bucket, k in zip(self._buckets, self._band_keys(sig), strict=True):
            found = bucket.get(k)
            if found is None:
                continue
            if isinstance(found, int):
                hits[found] += 1
            else:
                for key in found:
                    hits[key] += 1
        return sorted(hits, key=lambda key: (-hits[key], key))
