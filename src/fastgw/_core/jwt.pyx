# JSON Web Token verification kernel (rules in jwt.pxd).
#
# Kong's order of checks (kong/plugins/jwt/handler.lua do_authentication and jwt_parser.lua):
# decode (3 parts, base64url, JSON objects, a supported alg) -> the key claim (claims,
# then header) -> the jwt_secret of that key -> alg equals the secret's algorithm -> a usable
# key -> signature -> registered claims (each of claims_to_verify must be a number; exp <= now
# "token expired", nbf > now "token not valid yet") -> maximum_expiration.
import binascii
import hmac
import math

import orjson

from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject

# Bound of the verified-token cache per verifier: 10k tokens of ~1 KiB keep the worst case near
# 10 MiB per worker (nginx's lua_shared_dict kong_db_cache defaults to 128 MiB).
VERIFIED_CACHE_SIZE = 10_000

ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
              "PS256", "PS384", "PS512", "EdDSA")
cdef dict _ALG = {name: i + 1 for i, name in enumerate(ALGORITHMS)}
# digest of each algorithm family member (index 0 = 256, 1 = 384, 2 = 512)
cdef tuple _SHA = ("sha256", "sha384", "sha512")
# ES*: the JWS signature is r || s, each of the curve's size (RFC 7518 3.4)
cdef tuple _ES_SIZE = (32, 48, 66)


cdef inline int _family_index(int alg) noexcept:
    if alg == ALG_EDDSA:
        return 0
    return (alg - ALG_HS256) % 3


cdef bytes _b64url(str s):
    # base64url without padding (RFC 7515 2); binascii rejects non-alphabet input. (4 - n % 4)
    # % 4, not -n % 4: the module is compiled with C division (cdivision)
    return binascii.a2b_base64((s + "=" * ((4 - len(s) % 4) % 4)).replace("-", "+").replace("_", "/")
                               .encode("ascii"), strict_mode=True)


def _load_public_key(pem):
    # rsa_public_key: a PEM public key, or a certificate carrying one (Kong accepts both
    # through lua-resty-openssl's pkey.new)
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    data = pem.encode() if isinstance(pem, str) else bytes(pem)
    try:
        return serialization.load_pem_public_key(data)
    except ValueError:
        return x509.load_pem_x509_certificate(data).public_key()


cdef bint _verify_pkey(int alg, object key, bytes data, bytes sig) except -1:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

    cdef int i = _family_index(alg)
    cdef int n
    h = (hashes.SHA256, hashes.SHA384, hashes.SHA512)[i]()
    try:
        if alg == ALG_EDDSA:
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return False
            key.verify(sig, data)
        elif ALG_RS256 <= alg <= ALG_RS512:
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(sig, data, padding.PKCS1v15(), h)
        elif ALG_PS256 <= alg <= ALG_PS512:
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(sig, data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
        else:
            n = _ES_SIZE[i]
            if not isinstance(key, ec.EllipticCurvePublicKey) or len(sig) != 2 * n:
                return False
            der = utils.encode_dss_signature(int.from_bytes(sig[:n], "big"),
                                             int.from_bytes(sig[n:], "big"))
            key.verify(der, data, ec.ECDSA(h))
    except InvalidSignature:
        return False
    return True


cdef class JwtKey:
    def __init__(self, str key, str algorithm, *, secret=None, rsa_public_key=None,
                 consumer=None, credential=None):
        """``secret``: the HS* secret as stored (already base64-decoded when the plugin says
        so); ``rsa_public_key``: the PEM of the other algorithms. An unusable key is kept: its
        requests answer Kong's "Invalid key/secret" instead of failing the whole snapshot."""
        self.key = key
        self.alg = _ALG.get(algorithm, ALG_NONE)
        self.consumer = consumer
        self.credential = credential
        self.secret = None
        self.pkey = None
        if ALG_HS256 <= self.alg <= ALG_HS512:
            if secret is not None:
                self.secret = secret.encode() if isinstance(secret, str) else bytes(secret)
        elif self.alg != ALG_NONE and rsa_public_key:
            try:
                self.pkey = _load_public_key(rsa_public_key)
            except (ValueError, TypeError):
                self.pkey = None

    @property
    def algorithm(self):
        return ALGORITHMS[self.alg - 1] if self.alg else None

    cdef bint usable(self):
        return self.secret is not None or self.pkey is not None

    cdef bint verify(self, bytes data, bytes sig) except -1:
        if self.secret is not None:
            return hmac.compare_digest(
                hmac.digest(self.secret, data, _SHA[_family_index(self.alg)]), sig)
        return _verify_pkey(self.alg, self.pkey, data, sig)


cdef class JwtVerdict:
    def __repr__(self):
        return f"<JwtVerdict key={self.key and self.key.key!r} message={self.message!r} errors={self.errors!r}>"


cdef inline JwtVerdict _fail(str message):
    cdef JwtVerdict v = JwtVerdict.__new__(JwtVerdict)
    v.message = message
    return v


cdef class _Verified:
    pass


cdef class JwtVerifier:
    """Verifies tokens against the jwt_secrets of one plugin instance (Kong's jwt plugin)."""

    def __init__(self, keys, *, str key_claim_name="iss", claims_to_verify=(),
                 long maximum_expiration=0, Py_ssize_t cache_size=VERIFIED_CACHE_SIZE):
        cdef JwtKey k
        self.keys = {}
        for k in keys:
            self.keys[k.key] = k
        self.cache = {}
        self.key_claim_name = key_claim_name
        self.claims_to_verify = tuple(claims_to_verify)
        self.maximum_expiration = maximum_expiration
        self.cache_size = cache_size
        self.verifications = 0

    def cached_tokens(self):
        """The tokens whose verification is cached, oldest first (tests, tools)."""
        return list(self.cache)

    cpdef JwtVerdict check(self, str token, double now):
        """The verdict on ``token`` at ``now`` (seconds). Only successes are cached, so a
        forged token is verified every time; the claims are checked on every call."""
        cdef PyObject* hit = PyDict_GetItem(self.cache, token)
        cdef _Verified ver
        cdef JwtVerdict out
        cdef dict errors
        if hit is not NULL:
            ver = <_Verified>hit
            if not math.isnan(ver.exp) and ver.exp <= now:
                # cached until expiry: an expired token is verified again (and evicted)
                del self.cache[token]
                hit = NULL
        if hit is NULL:
            out = self._verify(token)
            if out.key is None:
                return out
            ver = _Verified.__new__(_Verified)
            ver.key = out.key
            ver.claims = out.claims
            e = out.claims.get("exp")
            ver.exp = <double>e if isinstance(e, (int, float)) and not isinstance(e, bool) \
                else math.nan
        errors = self._claim_errors(ver.claims, now)
        if errors is not None:
            self.cache.pop(token, None)
            out = JwtVerdict.__new__(JwtVerdict)
            out.errors = errors
            out.claims = ver.claims
            return out
        if hit is NULL:
            if len(self.cache) >= self.cache_size:
                # FIFO eviction (dicts keep insertion order): O(1), no per-hit bookkeeping
                del self.cache[next(iter(self.cache))]
            self.cache[token] = ver
        out = JwtVerdict.__new__(JwtVerdict)
        out.key = ver.key
        out.claims = ver.claims
        return out

    cdef JwtVerdict _verify(self, str token):
        cdef list parts = token.split(".")
        cdef JwtKey k
        cdef JwtVerdict out
        cdef str kname = self.key_claim_name
        self.verifications += 1
        if len(parts) != 3:
            # Kong's decode_token: a missing part fails the base64/JSON decoding
            return _fail("Bad token; invalid JSON")
        try:
            header = orjson.loads(_b64url(parts[0]))
            claims = orjson.loads(_b64url(parts[1]))
            sig = _b64url(parts[2])
        except (ValueError, binascii.Error, UnicodeEncodeError):
            return _fail("Bad token; invalid JSON")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return _fail("Bad token; invalid JSON")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in _ALG:
            return _fail("Bad token; invalid alg")
        key = claims.get(kname)
        if key is None:
            key = header.get(kname)
        if key is None:
            return _fail(f"No mandatory '{kname}' in claims")
        if key == "" or isinstance(key, bool) or not isinstance(key, (str, int)):
            return _fail(f"Invalid '{kname}' in claims")
        o = self.keys.get(str(key))
        if o is None:
            return _fail(f"No credentials found for given '{kname}'")
        k = <JwtKey>o
        if _ALG[alg] != k.alg:
            return _fail("Invalid algorithm")
        if not k.usable():
            return _fail("Invalid key/secret")
        if not k.verify((parts[0] + "." + parts[1]).encode("ascii"), sig):
            return _fail("Invalid signature")
        out = JwtVerdict.__new__(JwtVerdict)
        out.key = k
        out.claims = claims
        return out

    cdef dict _claim_errors(self, dict claims, double now):
        cdef dict errors = None
        cdef str name
        for name in self.claims_to_verify:
            v = claims.get(name)
            # Kong's verify_registered_claims: a claim to verify must be a number, present
            if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
                err = "must be a number"
            elif name == "exp":
                err = "token expired" if v <= now else None
            else:
                err = "token not valid yet" if v > now else None
            if err is not None:
                if errors is None:
                    errors = {}
                errors[name] = err
        if errors is None and self.maximum_expiration > 0:
            exp = claims.get("exp")
            if not isinstance(exp, (int, float)) or isinstance(exp, bool) \
                    or exp - now > self.maximum_expiration:
                errors = {"exp": "exceeds maximum allowed expiration"}
        return errors
