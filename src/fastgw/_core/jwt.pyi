"""JSON Web Token verification kernel (Kong's jwt plugin; see jwt.pxd)."""

from collections.abc import Iterable
from typing import Any

ALGORITHMS: tuple[str, ...]
VERIFIED_CACHE_SIZE: int

class JwtKey:
    key: str
    consumer: Any
    credential: Any
    @property
    def algorithm(self) -> str | None: ...
    def __init__(self, key: str, algorithm: str, *, secret: str | bytes | None = None,
                 rsa_public_key: str | bytes | None = None, consumer: Any = None,
                 credential: Any = None) -> None: ...

class JwtVerdict:
    key: JwtKey | None
    message: str | None
    errors: dict[str, str] | None
    claims: dict[str, Any] | None

class JwtVerifier:
    key_claim_name: str
    claims_to_verify: tuple[str, ...]
    maximum_expiration: int
    cache_size: int
    verifications: int
    def __init__(self, keys: Iterable[JwtKey], *, key_claim_name: str = "iss",
                 claims_to_verify: Iterable[str] = (), maximum_expiration: int = 0,
                 cache_size: int = ...) -> None: ...
    def check(self, token: str, now: float) -> JwtVerdict: ...
    def cached_tokens(self) -> list[str]: ...
