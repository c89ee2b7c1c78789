"""XXH64 for Python callers (the C-level function is `hashing.xxh64` in hashing.pxd).

The Python function is also named `xxh64`; Cython cannot give a `def` the name of the cdef
inline function it wraps, so it is defined as `_xxh64_py` and published under the public name.
"""
from libc.stdint cimport uint64_t


def _xxh64_py(const unsigned char[::1] data, uint64_t seed=0):
    """xxh64(data: bytes-like, seed: int = 0) -> int: XXH64 digest as an unsigned 64-bit int."""
    cdef Py_ssize_t n = data.shape[0]
    if n == 0:
        return xxh64(<const unsigned char*>b"", 0, seed)
    return xxh64(&data[0], n, seed)


globals()["xxh64"] = _xxh64_py
_xxh64_py.__name__ = _xxh64_py.__qualname__ = "xxh64"
