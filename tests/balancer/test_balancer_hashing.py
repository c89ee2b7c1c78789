"""XXH64 in the core equals the xxhash package's reference implementation."""
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgw._core.hashing import xxh64


@settings(max_examples=600, deadline=None)
@given(data=st.binary(max_size=300), seed=st.integers(min_value=0, max_value=2**64 - 1))
def test_xxh64_matches_xxhash(data: bytes, seed: int) -> None:
    assert xxh64(data, seed) == xxhash.xxh64_intdigest(data, seed)


def test_xxh64_every_length_and_tail_path() -> None:
    # lengths 0..129 cover the <32 path, every 8/4/1-byte tail, and several 32-byte stripes
    blob = bytes(range(256)) * 2
    for n in range(130):
        for off in (0, 1, 3):  # unaligned starts
            chunk = blob[off:off + n]
            assert xxh64(chunk) == xxhash.xxh64_intdigest(chunk), (n, off)
            assert xxh64(chunk, 2**63 + 7) == xxhash.xxh64_intdigest(chunk, 2**63 + 7)


def test_xxh64_accepts_bytes_like_and_defaults_seed_0() -> None:
    assert xxh64(b"abc") == xxh64(bytearray(b"abc")) == xxh64(memoryview(b"abc")) \
        == xxhash.xxh64_intdigest(b"abc", 0)
    assert xxh64.__name__ == "xxh64"
