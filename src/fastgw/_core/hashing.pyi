def xxh64(data: bytes | bytearray | memoryview, seed: int = 0) -> int:
    """XXH64 digest of `data` (any contiguous bytes-like object) as an unsigned 64-bit int."""
