# JSON Web Token verification kernel (Kong's jwt plugin: kong/plugins/jwt/jwt_parser.lua).
#
# Rules:
# - This module is the one place where a token is decoded, its signature checked (OpenSSL
#   through the standard library's hmac for HS*, and cryptography's primitives for RS*/PS*/
#   ES*/EdDSA: no second copy of OpenSSL linked into the core) and its claims checked.
#   The Python plugin (fastgw/plugins/jwt.py) and the compiled chain (native.pyx) both call
#   JwtVerifier.check(); neither re-implements any of it.
# - Keys are prepared once per snapshot (PEM parsed into an EVP_PKEY at build); a request costs
#   a dict lookup for a token seen before (verified tokens are cached until their exp), plus the
#   claim checks against `now`, which are never cached.
# - Sans-IO: `now` is an argument.
cdef enum:
    ALG_NONE = 0
    ALG_HS256
    ALG_HS384
    ALG_HS512
    ALG_RS256
    ALG_RS384
    ALG_RS512
    ALG_ES256
    ALG_ES384
    ALG_ES512
    ALG_PS256
    ALG_PS384
    ALG_PS512
    ALG_EDDSA


cdef class JwtKey:
    # one jwt_secrets credential, prepared
    cdef readonly str key             # the credential's `key` (what key_claim_name names)
    cdef readonly object consumer
    cdef readonly object credential
    cdef int alg
    cdef bytes secret                 # HS*: the raw secret (after base64 when configured)
    cdef object pkey                  # others: a cryptography public key; None: unusable

    cdef bint usable(self)
    cdef bint verify(self, bytes data, bytes sig) except -1


cdef class JwtVerdict:
    # the outcome of one check(): key set on success; else message (401 "message") or
    # errors (401 with Kong's claim errors object)
    cdef readonly JwtKey key
    cdef readonly str message
    cdef readonly dict errors
    cdef readonly dict claims


cdef class _Verified:
    cdef JwtKey key
    cdef dict claims
    cdef double exp                   # NaN when the token has no numeric exp


cdef class JwtVerifier:
    cdef dict keys                    # key str -> JwtKey
    cdef dict cache                   # token str -> _Verified
    cdef readonly str key_claim_name
    cdef readonly tuple claims_to_verify
    cdef readonly long maximum_expiration
    cdef readonly Py_ssize_t cache_size
    cdef readonly long verifications  # tokens decoded and verified (cache misses)

    cpdef JwtVerdict check(self, str token, double now)
    cdef JwtVerdict _verify(self, str token)
    cdef dict _claim_errors(self, dict claims, double now)
