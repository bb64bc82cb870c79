"""Sources of uniform random bits for the exact samplers.

Every sampler in :mod:`dpsynth.noise` consumes randomness only through
:class:`RandomSource`, whose one primitive is a batch of independent uniform 64-bit
words.  Everything else (uniform integers below a bound, single big integers for the
rare exact tie-breaks) is derived here by rejection, so it is exactly uniform whatever
the bound.

* :class:`SecureRandomSource` is a CSPRNG keyed by the operating system's
  (``os.urandom``): every call draws a fresh 256-bit key and 128-bit nonce from
  ``os.urandom`` and expands them with the ChaCha20 stream cipher (``cryptography``),
  the same construction the Linux kernel uses behind ``getrandom``; it is about 3x faster
  than reading ``os.urandom`` for millions of words, and re-keying per call keeps forked
  processes from sharing a stream.  Without ``cryptography`` it reads ``os.urandom``
  directly.  It is the default everywhere and the only source a production run may use.
* :class:`SeededRandomSource` is a NumPy PCG64 stream: reproducible and **for tests
  only**.  ``is_seeded`` is True, and the ledger records any run using it with
  ``noise_source="seeded-test"`` so an auditor sees that its noise was predictable.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

import numpy as np

try:  # a fast CSPRNG expansion of os.urandom; optional
    from cryptography.hazmat.primitives.ciphers import Cipher as _Cipher
    from cryptography.hazmat.primitives.ciphers.algorithms import ChaCha20 as _ChaCha20
except ImportError:  # pragma: no cover - cryptography is a dependency of the ledger
    _Cipher = _ChaCha20 = None

_WORD_BITS = 64


class RandomSource(ABC):
    """Uniform random bits for the samplers.  Subclasses implement :meth:`words`."""

    #: True when the stream is reproducible from a seed (tests only).
    is_seeded: bool = False

    @property
    def noise_source(self) -> str:
        """The label the ledger records for draws from this source."""
        return "seeded-test" if self.is_seeded else "secure"

    @abstractmethod
    def words(self, size: int) -> np.ndarray:
        """``size`` independent uniform words, ``np.ndarray[uint64]``."""

    def random_bits(self, bits: int, size: int) -> np.ndarray:
        """``size`` independent uniform integers in ``[0, 2**bits)``, uint64, 0 < bits <= 64.

        Narrow requests are cut from fewer words (a word is 64 independent uniform bits):
        one bit per draw for ``bits == 1``, a byte for <= 8, half a word for <= 32.
        """
        if not 0 < bits <= _WORD_BITS:
            raise ValueError(f"bits must be in 1..64, got {bits}")
        if size <= 0:
            return np.zeros(0, dtype=np.uint64)
        if bits == 1:
            raw = np.unpackbits(self.words(-(-size // 64)).view(np.uint8))[:size]
            return raw.astype(np.uint64)
        for width, dtype in ((8, np.uint8), (32, np.uint32)):
            if bits <= width:
                per_word = _WORD_BITS // width
                raw = self.words(-(-size // per_word)).view(dtype)[:size]
                return raw.astype(np.uint64) >> np.uint64(width - bits)
        return self.words(size) >> np.uint64(_WORD_BITS - bits)

    def integers(self, high: int, size: int) -> np.ndarray:
        """``size`` independent uniform integers in ``[0, high)``, ``np.ndarray[int64]``.

        Exact: draws ``bit_length(high - 1)`` bits and rejects values ``>= high`` (each
        round keeps more than half the lanes).  Requires ``1 <= high <= 2**63``.
        """
        high = int(high)
        if not 1 <= high <= 2**63:
            raise ValueError(f"high must be in 1..2**63, got {high}")
        out = np.zeros(size, dtype=np.int64)
        if high == 1 or size == 0:
            return out
        bits = (high - 1).bit_length()
        pending = np.arange(size)
        while pending.size:
            draw = self.random_bits(bits, pending.size)
            ok = draw < np.uint64(high)
            out[pending[ok]] = draw[ok].astype(np.int64)
            pending = pending[~ok]
        return out

    def randbelow(self, n: int) -> int:
        """One uniform integer in ``[0, n)`` for any positive Python int ``n`` (exact)."""
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        bits = (n - 1).bit_length()
        if bits == 0:
            return 0
        n_words = -(-bits // _WORD_BITS)
        while True:
            value = 0
            for word in self.words(n_words):
                value = (value << _WORD_BITS) | int(word)
            value >>= n_words * _WORD_BITS - bits
            if value < n:
                return value


class SecureRandomSource(RandomSource):
    """Cryptographically secure words: ChaCha20 keyed afresh from ``os.urandom`` on every
    call (plain ``os.urandom`` when the ``cryptography`` package is missing)."""

    is_seeded = False

    def words(self, size: int) -> np.ndarray:
        if size <= 0:
            return np.zeros(0, dtype=np.uint64)
        n_bytes = 8 * size
        if _ChaCha20 is None or n_bytes < 4096:
            data = os.urandom(n_bytes)
        else:
            cipher = _Cipher(_ChaCha20(os.urandom(32), os.urandom(16)), mode=None)
            data = cipher.encryptor().update(bytes(n_bytes))  # keystream XOR zeros
        return np.frombuffer(data, dtype=np.uint64).copy()


class SeededRandomSource(RandomSource):
    """A reproducible PCG64 stream.  FOR TESTS ONLY: its noise is predictable from the
    seed, so it gives no privacy; runs using it are recorded as ``"seeded-test"``."""

    is_seeded = True

    def __init__(self, seed: int) -> None:
        self._bit_generator = np.random.PCG64(seed)

    def words(self, size: int) -> np.ndarray:
        if size <= 0:
            return np.zeros(0, dtype=np.uint64)
        return self._bit_generator.random_raw(size).astype(np.uint64, copy=False)
