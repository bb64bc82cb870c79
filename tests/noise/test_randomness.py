"""Random sources: exact uniformity of the derived integers, seeding, and labels."""

from __future__ import annotations

import numpy as np
import pytest

from dpsynth.noise import RandomSource, SecureRandomSource, SeededRandomSource
from tests.noise.chi_square import chi_square_pvalue


def test_integers_below_one_are_zero():
    assert not SeededRandomSource(0).integers(1, 100).any()


@pytest.mark.parametrize("high", [2, 3, 7, 100, 1000])
def test_integers_are_uniform(high):
    draws = SeededRandomSource(high).integers(high, 100_000)
    assert draws.dtype == np.int64 and draws.min() >= 0 and draws.max() < high
    assert chi_square_pvalue(draws, {x: 1 / high for x in range(high)}) > 1e-20


def test_integers_reject_out_of_range_bounds():
    with pytest.raises(ValueError):
        SeededRandomSource(0).integers(0, 5)
    with pytest.raises(ValueError):
        SeededRandomSource(0).integers(2**63 + 1, 5)
    big = SeededRandomSource(0).integers(2**63, 1000)
    assert big.min() >= 0 and (big > 2**62).any()


@pytest.mark.parametrize("bits", [1, 3, 8, 9, 32, 33, 64])
def test_random_bits_cover_their_range(bits):
    draws = SeededRandomSource(bits).random_bits(bits, 20_000)
    assert draws.dtype == np.uint64 and draws.shape == (20_000,)
    assert int(draws.max()) < 2**bits
    if bits <= 3:
        assert chi_square_pvalue(draws.astype(np.int64), {x: 2.0**-bits for x in range(2**bits)}) > 1e-20
    else:  # the top bit is a fair coin
        assert 0.45 < float(np.mean(draws >> np.uint64(bits - 1))) < 0.55


def test_randbelow_handles_big_integers_uniformly():
    source = SeededRandomSource(5)
    n = 3 * 2**100 + 1
    values = [source.randbelow(n) for _ in range(3000)]
    assert all(0 <= v < n for v in values)
    # thirds of the range are equally likely
    thirds = np.array([3 * v // n for v in values])
    assert chi_square_pvalue(thirds, {0: 1 / 3, 1: 1 / 3, 2: 1 / 3}) > 1e-20
    assert source.randbelow(1) == 0
    with pytest.raises(ValueError):
        source.randbelow(0)


def test_seeded_source_is_reproducible_and_labelled_for_tests():
    a, b = SeededRandomSource(42), SeededRandomSource(42)
    assert np.array_equal(a.words(100), b.words(100))
    assert not np.array_equal(SeededRandomSource(43).words(100), SeededRandomSource(42).words(100))
    assert a.is_seeded is True and a.noise_source == "seeded-test"


def test_secure_source_is_not_seeded_and_not_repeating():
    source = SecureRandomSource()
    assert isinstance(source, RandomSource)
    assert source.is_seeded is False and source.noise_source == "secure"
    assert not np.array_equal(source.words(4), source.words(4))
    big = source.words(100_000)  # the ChaCha20 path (>= 4096 bytes)
    assert big.dtype == np.uint64 and np.unique(big).size == big.size
    bits = np.unpackbits(big.view(np.uint8))
    assert abs(bits.mean() - 0.5) < 0.005
    assert SecureRandomSource().words(0).size == 0
