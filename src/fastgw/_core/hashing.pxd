# XXH64 (Yann Collet's xxHash, 64-bit variant) in C-level Cython, for the consistent-hashing
# ring and the proxy's hash_on inputs. `cimport` it: the inline function is compiled into every
# module that uses it, so hashing a key costs no Python call.
#
# Rules: reads are little-endian whatever the host (the ring must be identical on x86_64 and
# aarch64, in every process and after restarts); no allocation; nogil.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* XXH64 primes (xxhash.h, XXH_PRIME64_1..5). */
    #define FASTGW_XXH_P1 0x9E3779B185EBCA87ULL
    #define FASTGW_XXH_P2 0xC2B2AE3D27D4EB4FULL
    #define FASTGW_XXH_P3 0x165667B19E3779F9ULL
    #define FASTGW_XXH_P4 0x85EBCA77C2B2AE63ULL
    #define FASTGW_XXH_P5 0x27D4EB2F165667C5ULL
    /* Unaligned little-endian loads: memcpy compiles to one mov on x86_64/aarch64. */
    static inline uint64_t fastgw_le64(const unsigned char *p) {
        uint64_t v; memcpy(&v, p, 8);
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap64(v);
    #endif
        return v;
    }
    static inline uint32_t fastgw_le32(const unsigned char *p) {
        uint32_t v; memcpy(&v, p, 4);
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap32(v);
    #endif
        return v;
    }
    static inline uint64_t fastgw_rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
    """
    const uint64_t XXH_P1 "FASTGW_XXH_P1"
    const uint64_t XXH_P2 "FASTGW_XXH_P2"
    const uint64_t XXH_P3 "FASTGW_XXH_P3"
    const uint64_t XXH_P4 "FASTGW_XXH_P4"
    const uint64_t XXH_P5 "FASTGW_XXH_P5"
    uint64_t le64 "fastgw_le64"(const unsigned char* p) noexcept nogil
    uint32_t le32 "fastgw_le32"(const unsigned char* p) noexcept nogil
    uint64_t rotl64 "fastgw_rotl64"(uint64_t x, int r) noexcept nogil


cdef inline uint64_t _xxh_round(uint64_t acc, uint64_t lane) noexcept nogil:
    acc += lane * XXH_P2
    acc = rotl64(acc, 31)
    return acc * XXH_P1


cdef inline uint64_t _xxh_merge(uint64_t acc, uint64_t v) noexcept nogil:
    acc ^= _xxh_round(0, v)
    return acc * XXH_P1 + XXH_P4


cdef inline uint64_t xxh64(const unsigned char* p, Py_ssize_t n, uint64_t seed) noexcept nogil:
    """XXH64 of n bytes at p; equal to xxhash.xxh64_intdigest(data, seed)."""
    cdef const unsigned char* end = p + n
    cdef uint64_t h, v1, v2, v3, v4
    if n >= 32:
        # four independent lanes over 32-byte stripes
        v1 = seed + XXH_P1 + XXH_P2
        v2 = seed + XXH_P2
        v3 = seed
        v4 = seed - XXH_P1
        while end - p >= 32:
            v1 = _xxh_round(v1, le64(p))
            v2 = _xxh_round(v2, le64(p + 8))
            v3 = _xxh_round(v3, le64(p + 16))
            v4 = _xxh_round(v4, le64(p + 24))
            p += 32
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18)
        h = _xxh_merge(h, v1)
        h = _xxh_merge(h, v2)
        h = _xxh_merge(h, v3)
        h = _xxh_merge(h, v4)
    else:
        h = seed + XXH_P5
    h += <uint64_t>n
    while end - p >= 8:
        h ^= _xxh_round(0, le64(p))
        h = rotl64(h, 27) * XXH_P1 + XXH_P4
        p += 8
    if end - p >= 4:
        h ^= <uint64_t>le32(p) * XXH_P1
        h = rotl64(h, 23) * XXH_P2 + XXH_P3
        p += 4
    while p < end:
        h ^= <uint64_t>p[0] * XXH_P5
        h = rotl64(h, 11) * XXH_P1
        p += 1
    # avalanche
    h ^= h >> 33
    h *= XXH_P2
    h ^= h >> 29
    h *= XXH_P3
    h ^= h >> 32
    return h
