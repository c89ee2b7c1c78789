"""Kong 3.x entities as msgspec Structs, and the validation that builds them.

Rules:
- Field names, defaults and allowed values are Kong's (Admin API reference, kong/db/schema/
  entities/*.lua), so a kong.yml and Admin API calls written for Kong work unchanged.
- Structs are frozen: the live Config is never mutated; changes build a new one.
- Validation collects EVERY error as (path, message) and the caller raises one ConfigError.
  Fields are converted one by one (msgspec.convert per field) so one bad field does not hide
  the next; entity-level checks (Kong's `entity_checks`) run only when the fields are valid.
- Parent references are stored as ids (`Route.service`); the Admin API renders them as
  {"id": ...} like Kong, the declarative dump as names.
"""
from __future__ import annotations

import functools
import ipaddress
import re
import secrets
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec

from fastgw._core.router import RouteSpec, route_errors
from fastgw.config.errors import ErrorList

from fastgw.config.healthchecks import Healthchecks  # the balancer engineer's Structs

# Kong's limits (kong/db/schema/typedefs.lua)
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Timeout = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 2)]  # typedefs.timeout
Retries = Annotated[int, msgspec.Meta(ge=0, le=32767)]
Weight = Annotated[int, msgspec.Meta(ge=0, le=65535)]  # targets.weight
Slots = Annotated[int, msgspec.Meta(ge=10, le=65536)]  # upstreams.slots
RegexPriority = int
Tags = Union[list[str], None]
Timestamp = Union[int, None]

Protocol = Literal["grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp",
                   "ws", "wss"]
HashOn = Literal["none", "consumer", "ip", "header", "cookie", "path", "query_arg",
                 "uri_capture"]
JwtAlgorithm = Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256",
                       "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"]

# ids of declarative entities without an `id`: uuid5 over type + endpoint key, so reloading
# the same file keeps ids stable. Fixed namespace = uuid5(NAMESPACE_DNS, "fastgw").
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "fastgw")

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{12}$")
# typedefs.utf8_name: letters, digits and . - _ ~ (any non-ASCII letter too)
_NAME_RE = re.compile(r"^[\w.\-~]+$")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
# Kong's typedefs.header_name (kong/tools/http.lua validate_header_name)
_KONG_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Kong 3 treats a 2.x path as a regex when it has characters outside this set
_PLAIN_PATH_RE = re.compile(r"^[A-Za-z0-9._~/%\-]*$")


class Entity(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True, gc=False):
    """Base of every Kong entity. ``gc=False``: an entity never references itself or a
    container that references it, so the cycle collector need not track 100,000s of them."""


class CidrPort(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """routes.sources / routes.destinations element (stream routes)."""
    ip: Union[str, None] = None
    port: Union[Port, None] = None


class Service(Entity, kw_only=True):
    id: str
    name: Union[str, None] = None
    retries: Retries = 5
    protocol: Protocol = "http"
    host: str
    port: Port = 80
    path: Union[str, None] = None
    connect_timeout: Timeout = 60000
    write_timeout: Timeout = 60000
    read_timeout: Timeout = 60000
    tags: Tags = None
    client_certificate: Union[str, None] = None  # certificate id
    tls_verify: Union[bool, None] = None
    tls_verify_depth: Union[Annotated[int, msgspec.Meta(ge=0, le=64)], None] = None
    ca_certificates: Union[list[str], None] = None
    enabled: bool = True
    created_at: Timestamp = None
    updated_at: Timestamp = None


class Route(Entity, kw_only=True):
    id: str
    name: Union[str, None] = None
    protocols: list[Protocol] = msgspec.field(default_factory=lambda: ["http", "https"])
    methods: Union[list[str], None] = None
    hosts: Union[list[str], None] = None
    paths: Union[list[str], None] = None
    headers: Union[dict[str, list[str]], None] = None
    https_redirect_status_code: Literal[426, 301, 302, 307, 308] = 426
    regex_priority: RegexPriority = 0
    strip_path: bool = True
    path_handling: Literal["v0", "v1"] = "v0"
    preserve_host: bool = False
    request_buffering: bool = True
    response_buffering: bool = True
    snis: Union[list[str], None] = None
    sources: Union[list[CidrPort], None] = None
    destinations: Union[list[CidrPort], None] = None
    tags: Tags = None
    service: Union[str, None] = None  # service id
    created_at: Timestamp = None
    updated_at: Timestamp = None


class Upstream(Entity, kw_only=True):
    id: str
    name: str
    algorithm: Literal["round-robin", "consistent-hashing", "least-connections",
                       "latency"] = "round-robin"
    hash_on: HashOn = "none"
    hash_fallback: HashOn = "none"
    hash_on_header: Union[str, None] = None
    hash_fallback_header: Union[str, None] = None
    hash_on_cookie: Union[str, None] = None
    hash_on_cookie_path: str = "/"
    hash_on_query_arg: Union[str, None] = None
    hash_fallback_query_arg: Union[str, None] = None
    hash_on_uri_capture: Union[str, None] = None
    hash_fallback_uri_capture: Union[str, None] = None
    slots: Slots = 10000
    healthchecks: Healthchecks = msgspec.field(default_factory=Healthchecks)
    host_header: Union[str, None] = None
    client_certificate: Union[str, None] = None
    use_srv_name: bool = False
    tags: Tags = None
    created_at: Timestamp = None
    updated_at: Timestamp = None


class Target(Entity, kw_only=True):
    id: str
    upstream: str  # upstream id
    target: str  # normalized "host:port" ("[v6]:port"), default port 8000
    weight: Weight = 100
    tags: Tags = None
    created_at: Timestamp = None
    updated_at: Timestamp = None


class Consumer(Entity, kw_only=True):
    id: str
    username: Union[str, None] = None
    custom_id: Union[str, None] = None
    tags: Tags = None
    created_at: Timestamp = None
    updated_at: Timestamp = None


class Plugin(Entity, kw_only=True):
    id: str
    name: str
    instance_name: Union[str, None] = None
    route: Union[str, None] = None
    service: Union[str, None] = None
    consumer: Union[str, None] = None
    # the plugin's own Config struct, validated and with defaults filled, as builtins
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    enabled: bool = True
    protocols: list[Protocol] = msgspec.field(
        default_factory=lambda: ["grpc", "grpcs", "http", "https"])
    tags: Tags = None
    created_at: Timestamp = None
    updated_at: Timestamp = None


class KeyAuthCredential(Entity, kw_only=True):
    id: str
    consumer: str
    key: str  # generated when absent
    ttl: Union[Annotated[int, msgspec.Meta(ge=0, le=100000000)], None] = None
    tags: Tags = None
    created_at: Timestamp = None


class BasicAuthCredential(Entity, kw_only=True):
    id: str
    consumer: str
    username: str
    password: str  # sha1(password .. consumer_id) hex, as Kong's basic-auth/crypto.lua
    tags: Tags = None
    created_at: Timestamp = None


class JwtSecret(Entity, kw_only=True):
    id: str
    consumer: str
    key: str  # generated when absent
    secret: str  # generated when absent
    algorithm: JwtAlgorithm = "HS256"
    rsa_public_key: Union[str, None] = None
    tags: Tags = None
    created_at: Timestamp = None


class HmacAuthCredential(Entity, kw_only=True):
    id: str
    consumer: str
    username: str
    secret: str  # generated when absent
    tags: Tags = None
    created_at: Timestamp = None


class Oauth2Credential(Entity, kw_only=True):
    id: str
    consumer: str
    name: str
    client_id: str  # generated when absent
    client_secret: str  # generated when absent; PBKDF2 PHC string when hash_secret
    hash_secret: bool = False
    redirect_uris: Union[list[str], None] = None
    client_type: Literal["confidential", "public"] = "confidential"
    tags: Tags = None
    created_at: Timestamp = None


class Acl(Entity, kw_only=True):
    id: str
    consumer: str
    group: str
    tags: Tags = None
    created_at: Timestamp = None


class Certificate(Entity, kw_only=True):
    """Kong's certificates entity. Its `snis` (transient in Kong) are Sni entities; the
    Admin API and the declarative loader turn the shorthand into them."""
    id: str
    cert: str
    key: str
    cert_alt: Union[str, None] = None
    key_alt: Union[str, None] = None
    tags: Tags = None
    created_at: Timestamp = None
    updated_at: Timestamp = None


class Sni(Entity, kw_only=True):
    id: str
    # certificate before name: Kong's schema-violation summary lists fields alphabetically
    certificate: str  # certificate id
    name: str  # typedefs.wildcard_host, stored lowercase
    tags: Tags = None
    created_at: Timestamp = None
    updated_at: Timestamp = None


class CaCertificate(Entity, kw_only=True):
    id: str
    cert: str
    cert_digest: Union[str, None] = None  # sha256 hex of the DER, computed on write
    tags: Tags = None
    created_at: Timestamp = None
    updated_at: Timestamp = None


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The normalized whole: top-level lists, parents referenced by id, in load order."""
    services: list[Service] = msgspec.field(default_factory=list)
    routes: list[Route] = msgspec.field(default_factory=list)
    upstreams: list[Upstream] = msgspec.field(default_factory=list)
    targets: list[Target] = msgspec.field(default_factory=list)
    consumers: list[Consumer] = msgspec.field(default_factory=list)
    plugins: list[Plugin] = msgspec.field(default_factory=list)
    keyauth_credentials: list[KeyAuthCredential] = msgspec.field(default_factory=list)
    basicauth_credentials: list[BasicAuthCredential] = msgspec.field(default_factory=list)
    jwt_secrets: list[JwtSecret] = msgspec.field(default_factory=list)
    acls: list[Acl] = msgspec.field(default_factory=list)
    certificates: list[Certificate] = msgspec.field(default_factory=list)
    snis: list[Sni] = msgspec.field(default_factory=list)
    ca_certificates: list[CaCertificate] = msgspec.field(default_factory=list)
    hmacauth_credentials: list[HmacAuthCredential] = msgspec.field(default_factory=list)
    oauth2_credentials: list[Oauth2Credential] = msgspec.field(default_factory=list)


# ---------------------------------------------------------------------------------------
# entity metadata
# in dependency order: an entity type comes after every type it references (services and
# upstreams name certificates; the database schema is created in this order)
ENTITY_TYPES: tuple[str, ...] = (
    "certificates", "snis", "ca_certificates",
    "services", "routes", "upstreams", "targets", "consumers", "plugins",
    "keyauth_credentials", "basicauth_credentials", "jwt_secrets", "acls",
    "hmacauth_credentials", "oauth2_credentials")

ENTITY_CLASSES: dict[str, type[Entity]] = {
    "services": Service, "routes": Route, "upstreams": Upstream, "targets": Target,
    "consumers": Consumer, "plugins": Plugin, "keyauth_credentials": KeyAuthCredential,
    "basicauth_credentials": BasicAuthCredential, "jwt_secrets": JwtSecret, "acls": Acl,
    "certificates": Certificate, "snis": Sni, "ca_certificates": CaCertificate,
    "hmacauth_credentials": HmacAuthCredential, "oauth2_credentials": Oauth2Credential}

# foreign key field -> parent entity type
FOREIGN: dict[str, dict[str, str]] = {
    "services": {"client_certificate": "certificates"},
    "upstreams": {"client_certificate": "certificates"}, "consumers": {},
    "routes": {"service": "services"},
    "targets": {"upstream": "upstreams"},
    "plugins": {"route": "routes", "service": "services", "consumer": "consumers"},
    "keyauth_credentials": {"consumer": "consumers"},
    "basicauth_credentials": {"consumer": "consumers"},
    "jwt_secrets": {"consumer": "consumers"},
    "acls": {"consumer": "consumers"},
    "certificates": {}, "ca_certificates": {},
    "snis": {"certificate": "certificates"},
    "hmacauth_credentials": {"consumer": "consumers"},
    "oauth2_credentials": {"consumer": "consumers"},
}

# the field an item URL may name instead of the id (Kong's endpoint_key)
ENDPOINT_KEY: dict[str, str | None] = {
    "services": "name", "routes": "name", "upstreams": "name", "targets": "target",
    "consumers": "username", "plugins": "instance_name", "keyauth_credentials": "key",
    "basicauth_credentials": "username", "jwt_secrets": "key", "acls": "group",
    "certificates": None, "snis": "name", "ca_certificates": None,
    "hmacauth_credentials": "username", "oauth2_credentials": "client_id"}

# uniqueness: single fields are global; tuples are composite keys
UNIQUE: dict[str, tuple[tuple[str, ...], ...]] = {
    "services": (("name",),), "routes": (("name",),), "upstreams": (("name",),),
    "targets": (("upstream", "target"),),
    "consumers": (("username",), ("custom_id",)),
    "plugins": (("instance_name",), ("name", "route", "service", "consumer")),
    "keyauth_credentials": (("key",),), "basicauth_credentials": (("username",),),
    "jwt_secrets": (("key",),), "acls": (("consumer", "group"),),
    "certificates": (), "snis": (("name",),), "ca_certificates": (("cert_digest",),),
    "hmacauth_credentials": (("username",),), "oauth2_credentials": (("client_id",),)}

# where a composite uniqueness error is reported
UNIQUE_ERROR_FIELD: dict[str, str] = {"targets": "target", "acls": "group", "plugins": "name"}

# on delete of a parent: children of these types go too (Kong's on_delete = "cascade");
# any other child reference makes the delete a foreign key violation.
CASCADE: dict[tuple[str, str], bool] = {
    ("routes", "service"): False,
    ("targets", "upstream"): True,
    ("plugins", "route"): True, ("plugins", "service"): True, ("plugins", "consumer"): True,
    ("keyauth_credentials", "consumer"): True, ("basicauth_credentials", "consumer"): True,
    ("jwt_secrets", "consumer"): True, ("acls", "consumer"): True,
    ("snis", "certificate"): True,   # Kong dao/certificates.lua delete: its SNIs go too
    ("services", "client_certificate"): False, ("upstreams", "client_certificate"): False,
    ("hmacauth_credentials", "consumer"): True, ("oauth2_credentials", "consumer"): True}


def is_uuid(s: Any) -> bool:
    return isinstance(s, str) and _UUID_RE.match(s) is not None


def stable_id(etype: str, key: str) -> str:
    """Deterministic id for a declarative entity without one."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{etype}:{key}"))


def new_id() -> str:
    return str(uuid.uuid4())


def random_key() -> str:
    """Kong's utils.random_string(): 32 hex characters from the CSPRNG."""
    return secrets.token_hex(16)


def hash_basic_auth_password(consumer_id: str, password: str) -> str:
    """Kong basic-auth crypto.lua: sha1 hex of password .. consumer_id."""
    import hashlib
    return hashlib.sha1((password + consumer_id).encode()).hexdigest()


def route_spec(r: Route, key: Any = None, service_path: str | None = None) -> RouteSpec:
    """What the router sees of a Route: the one place the fields are handed over."""
    return RouteSpec(
        r if key is None else key, hosts=r.hosts, paths=r.paths, methods=r.methods,
        headers=r.headers, snis=r.snis, regex_priority=r.regex_priority,
        strip_path=r.strip_path, preserve_host=r.preserve_host,
        path_handling=r.path_handling, service_path=service_path, id=r.id)


def is_regex_path_v2(path: str) -> bool:
    """Kong 3's reading of a 2.x path: regex when it has characters outside the plain set."""
    return _PLAIN_PATH_RE.match(path) is None


# ---------------------------------------------------------------------------------------
# plugin registry (the plugins engineer's fastgw.plugins.registry); tests monkeypatch this
def plugin_class(name: str) -> Any | None:
    """The plugin class for `name` (with a msgspec Struct `Config`), or None if unknown."""
    try:
        from fastgw.plugins import registry  # type: ignore
    except ImportError:
        return None
    try:
        return registry.get(name)
    except (LookupError, ValueError, ImportError):  # unknown, or a built-in not written yet
        return None


def available_plugins() -> list[str]:
    """Names the registry knows (best effort: `names()` / `available()` / `PLUGINS`)."""
    try:
        from fastgw.plugins import registry  # type: ignore
    except ImportError:
        return []
    for attr in ("names", "available", "all"):
        fn = getattr(registry, attr, None)
        if callable(fn):
            try:
                return sorted(fn())
            except Exception:  # noqa: BLE001 - informational only
                return []
    table = getattr(registry, "PLUGINS", None) or getattr(registry, "REGISTRY", None)
    return sorted(table) if isinstance(table, dict) else []


# ---------------------------------------------------------------------------------------
# field-by-field building
def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


_KONG_TYPE = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean",
              "array": "an array", "object": "a record", "null": "null", "bytes": "a string"}


def _field_meta(tp: Any) -> msgspec.Meta | None:
    if get_origin(tp) is Union:
        for a in get_args(tp):
            m = _field_meta(a)
            if m is not None:
                return m
        return None
    if get_origin(tp) is Annotated:
        for a in get_args(tp)[1:]:
            if isinstance(a, msgspec.Meta):
                return a
    return None


def _translate(exc: msgspec.ValidationError, tp: Any) -> tuple[str, str]:
    """msgspec's message -> (path suffix, Kong-style message)."""
    msg = str(exc)
    suffix = ""
    m = re.search(r" - at `\$(.*)`$", msg)
    if m:
        msg = msg[: m.start()]
        suffix = m.group(1)
    m = re.match(r"Expected `(\w+)(?: \| null)?`, got `(\w+)`$", msg)
    if m:
        want = m.group(1)
        return suffix, "expected " + _KONG_TYPE.get(want, want)
    if re.match(r"Expected `(int|float)` [<>]=? ", msg) and not suffix:
        meta = _field_meta(tp)
        if meta is not None and meta.ge is not None and meta.le is not None:
            return suffix, f"value should be between {meta.ge} and {meta.le}"
    m = re.match(r"Invalid enum value (.*)$", msg)
    if m:
        return suffix, f"expected one of: {_one_of_text(tp)}" if not suffix else \
            f"invalid value: {m.group(1)}"
    m = re.match(r"Object contains unknown field `(.*)`$", msg)
    if m:
        return (suffix + "." + m.group(1)), "unknown field"
    m = re.match(r"Object missing required field `(.*)`$", msg)
    if m:
        return (suffix + "." + m.group(1)), "required field missing"
    return suffix, msg[0].lower() + msg[1:] if msg else msg


def _one_of_text(tp: Any) -> str:
    vals = _literal_values(tp)
    return ", ".join(str(v) for v in vals) if vals else "?"


def _literal_values(tp: Any) -> list[Any]:
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    if get_origin(tp) in (Union, Annotated):
        out: list[Any] = []
        for a in get_args(tp):
            out.extend(_literal_values(a))
        return out
    return []


def _is_list_type(tp: Any) -> bool:
    o = get_origin(tp)
    if o in (list, set, tuple):
        return True
    if o in (Union, Annotated):
        return any(_is_list_type(a) for a in get_args(tp) if a is not type(None))
    return False


def _list_elem_type(tp: Any) -> Any:
    """X of list[X] (also inside Optional / Annotated), else None."""
    o = get_origin(tp)
    if o is list:
        args = get_args(tp)
        return args[0] if args else None
    if o in (Union, Annotated):
        for a in get_args(tp):
            if a is not type(None):
                e = _list_elem_type(a)
                if e is not None:
                    return e
    return None


def _suffix_to_path(path: str, suffix: str) -> str:
    # msgspec's `$.a[0].b` -> `.a[0].b` appended to our path
    return path + suffix if suffix else path


@functools.lru_cache(maxsize=256)
def struct_fields(cls: type) -> tuple[Any, ...]:
    """msgspec.structs.fields(cls), cached: it re-evaluates annotations on every call."""
    return msgspec.structs.fields(cls)


def build_struct(cls: type, data: Any, path: str, errors: ErrorList, *,
                 strict: bool = True) -> Any | None:
    """Convert `data` into `cls` field by field, appending every error to `errors`.
    Returns the instance, or None if anything was wrong."""
    if not isinstance(data, dict):
        errors.append((path, "expected a record"))
        return None
    n0 = len(errors)
    fields = struct_fields(cls)
    known = {f.encode_name for f in fields}
    for key in data:
        if key not in known:
            errors.append((join(path, str(key)), "unknown field"))
    values: dict[str, Any] = {}
    for f in fields:
        fpath = join(path, f.encode_name)
        if f.encode_name not in data or data[f.encode_name] is None:
            if f.encode_name in data:  # explicit null
                try:
                    values[f.name] = msgspec.convert(None, f.type)
                    continue
                except msgspec.ValidationError:
                    pass  # null on a non-nullable field means "default", as Kong
            if f.required:
                errors.append((fpath, "required field missing"))
            continue
        value = data[f.encode_name]
        if not strict and isinstance(value, str) and _is_list_type(f.type):
            value = [value]  # form input `methods=GET` means a one-element array, as in Kong
        try:
            values[f.name] = msgspec.convert(value, f.type, strict=strict)
        except msgspec.ValidationError as exc:
            elem = _list_elem_type(f.type) if isinstance(value, list) else None
            if elem is not None:
                # Kong validates every element of an array: report each bad one, not the first
                n1 = len(errors)
                for i, item in enumerate(value):
                    try:
                        msgspec.convert(item, elem, strict=strict)
                    except msgspec.ValidationError as e2:
                        suffix, msg = _translate(e2, elem)
                        errors.append((_suffix_to_path(f"{fpath}[{i}]", suffix), msg))
                if len(errors) > n1:
                    continue
            suffix, msg = _translate(exc, f.type)
            errors.append((_suffix_to_path(fpath, suffix), msg))
    if len(errors) > n0:
        return None
    try:
        return cls(**values)
    except (ValueError, TypeError, msgspec.ValidationError) as exc:
        # a __post_init__ check (plugin Config structs may have them): one naming a field
        # (plugins.base.field_error, msgspec's " - at `$.f`") goes to that field; others are
        # Kong's entity checks of this record, reported under its "@entity" key
        msg = str(exc)
        m = re.search(r" - at `\$(.*)`$", msg)
        if m and m.group(1):
            errors.append((path + m.group(1), msg[:m.start()]))
        else:
            errors.append((join(path, "@entity") if path else "", msg[:m.start()] if m else msg))
        return None


# ---------------------------------------------------------------------------------------
# per-entity preparation (shorthands) and checks (Kong's entity_checks)
def _prepare_service(data: dict[str, Any], path: str, errors: ErrorList) -> dict[str, Any]:
    url = data.get("url")
    if url is None:
        data.pop("url", None)
        return data
    data = dict(data)
    del data["url"]
    if not isinstance(url, str):
        errors.append((join(path, "url"), "expected a string"))
        return data
    from urllib.parse import urlsplit
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError:
        errors.append((join(path, "url"), "missing host in url"))
        return data
    if not u.scheme and not u.netloc:
        # Kong's url shorthand (entities/services.lua) takes what socket.url.parse finds: no
        # scheme and no host, so the text is a path; the usual field checks then report
        # "host: required field missing" and the path's own error
        if url.startswith("/"):
            data["path"] = url
        elif url:
            errors.append((join(path, "path"), "should start with: /"))
        return data
    if not u.scheme or not u.hostname:
        errors.append((join(path, "url"), "missing host in url" if u.scheme else
                       "missing protocol in url"))
        return data
    data["protocol"] = u.scheme.lower()
    data["host"] = u.hostname
    data["port"] = port if port is not None else (
        443 if u.scheme.lower() in ("https", "grpcs", "wss", "tls") else 80)
    p = u.path + ("?" + u.query if u.query else "")
    data["path"] = p or None
    return data


def parse_target(target: str) -> tuple[str, int] | None:
    """'host', 'host:port', 'ip', '[v6]:port', bare v6 -> (host, port); None if invalid."""
    host, port = target, 8000
    if target.startswith("["):
        end = target.find("]")
        if end < 0:
            return None
        host, rest = target[1:end], target[end + 1:]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    elif target.count(":") > 1:
        try:
            ipaddress.IPv6Address(target)
        except ValueError:
            return None
    elif ":" in target:
        host, _, p = target.partition(":")
        if not p.isdigit():
            return None
        port = int(p)
    if not (0 < port <= 65535):
        return None
    if not is_valid_host(host):
        return None
    return host, port


def format_target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def normalize_target(target: str) -> str | None:
    hp = parse_target(target)
    return None if hp is None else format_target(*hp)


def is_valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return _HOSTNAME_RE.match(host) is not None


#: in-process targets (fastgw.inprocess): "asgi:<name>" / "python:<name>", resolved against the
#: Gateway's registered handlers when the snapshot is compiled (a name never starts with a digit,
#: so "asgi:8000" stays a host:port)
_INPROCESS_TARGET_RE = re.compile(r"^(?:asgi|python):[A-Za-z_][\w.\-~]*$")


def _prepare_target(data: dict[str, Any], path: str, errors: ErrorList) -> dict[str, Any]:
    t = data.get("target")
    if isinstance(t, str) and _INPROCESS_TARGET_RE.match(t):
        return data
    if isinstance(t, str):
        norm = normalize_target(t)
        if norm is None:
            errors.append((join(path, "target"),
                           "Invalid target; not a valid hostname or ip address"))
            data = {k: v for k, v in data.items() if k != "target"}
            data["target"] = "invalid:0"  # keep "required" quiet; the error is recorded
        elif norm != t:
            data = dict(data)
            data["target"] = norm
    return data


def _prepare_route(data: dict[str, Any], path: str, errors: ErrorList) -> dict[str, Any]:
    h = data.get("headers")
    if isinstance(h, dict) and any(isinstance(v, str) for v in h.values()):
        data = dict(data)
        data["headers"] = {k: [v] if isinstance(v, str) else v for k, v in h.items()}
    return data


def _check_name(name: str | None, path: str, errors: ErrorList) -> None:
    if name is not None and not _NAME_RE.match(name):
        errors.append((join(path, "name"),
                       "invalid value '" + name + "': it must only contain alphanumeric and "
                       "'., -, _, ~' characters"))


def _check_tags(tags: list[str] | None, path: str, errors: ErrorList) -> None:
    for i, t in enumerate(tags or ()):
        if not t or "," in t or "/" in t:
            errors.append((join(join(path, "tags"), i),
                           "invalid tag: must not be empty nor contain ',' or '/'"))


def _check_service(s: Service, path: str, errors: ErrorList) -> Service:
    _check_name(s.name, path, errors)
    if not is_valid_host(s.host):
        errors.append((join(path, "host"), "invalid value: " + s.host))
    if s.path is not None:
        if not s.path.startswith("/"):
            errors.append((join(path, "path"), "should start with: /"))
        if s.protocol not in ("http", "https", "ws", "wss"):
            errors.append((join(path, "path"),
                           "value must be null when protocol is not http/https/ws/wss"))
    if s.protocol not in ("https", "tls"):
        # Kong services.lua: the upstream TLS fields only mean something over TLS
        for f in ("client_certificate", "tls_verify", "tls_verify_depth", "ca_certificates"):
            if getattr(s, f) is not None:
                errors.append((join(path, f), "value must be null"))
    return s


_STREAM_PROTOCOLS = {"tcp", "tls", "tls_passthrough", "udp"}


def _check_route(r: Route, path: str, errors: ErrorList) -> Route:
    # entity-level checks here (protocols and the http/grpc subschemas of
    # kong/db/schema/entities/routes_subschemas.lua); every matching field is checked by the
    # router itself (fastgw._core.router.route_errors), the one source of those rules
    _check_name(r.name, path, errors)
    if not r.protocols:
        errors.append((join(path, "protocols"), "length must be at least 1"))
    protos = set(r.protocols)
    if protos & _STREAM_PROTOCOLS:
        # fastgw proxies HTTP only: a stream route would be accepted and never served
        errors.append((join(path, "protocols"), "stream routes (tcp, tls, tls_passthrough, "
                                                "udp) are not supported by fastgw"))
        return r
    label = "'grpc' or 'grpcs'" if protos & {"grpc", "grpcs"} else "'http' or 'https'"
    for field in ("sources", "destinations"):
        if getattr(r, field):
            errors.append((join(path, field), f"cannot set '{field}' when 'protocols' is "
                                              f"{label}"))
    if r.snis and not protos & {"https", "grpcs", "tls", "tls_passthrough"}:
        errors.append((join(path, "snis"), "'snis' can only be set when 'protocols' is "
                                           "'grpcs', 'https', 'tls' or 'tls_passthrough'"))
    if not (r.methods or r.hosts or r.paths or r.headers or (
            r.snis and protos & {"https", "grpcs"})):
        which = "'methods', 'hosts', 'headers', 'paths'"
        proto = "http"
        for p in ("https", "grpcs", "grpc"):
            if p in protos:
                proto = p
                break
        if proto in ("https", "grpcs"):
            which += ", 'snis'"
        errors.append((path, f"must set one of {which} when 'protocols' is '{proto}'"))
        return r
    for field, message in route_errors(route_spec(r)):
        if field == ():
            continue    # "must set one of": reported above with the route's protocols
        at = path
        for part in field:
            at = join(at, part)
        errors.append((at, message))
    return r


def _check_upstream(u: Upstream, path: str, errors: ErrorList) -> Upstream:
    if not _HOSTNAME_RE.match(u.name) or u.name.replace(".", "").isdigit():
        errors.append((join(path, "name"), f"Invalid name ('{u.name}'); must be a valid "
                                           "hostname"))
    n0 = len(errors)
    for field in ("hash_on_header", "hash_fallback_header"):
        v = getattr(u, field)
        if v is not None and not _KONG_HEADER_NAME_RE.match(v):
            errors.append((join(path, field), f"bad header name '{v}', allowed characters "
                                              "are A-Z, a-z, 0-9, '_', and '-'"))
    if len(errors) == n0:  # Kong runs entity checks on records whose fields are valid
        from fastgw.config.entity_checks import evaluate
        seen: set[tuple[str, str]] = set()
        for field, msg in evaluate("upstreams", msgspec.to_builtins(u)):
            if (field, msg) not in seen:
                seen.add((field, msg))
                errors.append((join(path, field), msg))
    if u.hash_on_cookie_path and not u.hash_on_cookie_path.startswith("/"):
        errors.append((join(path, "hash_on_cookie_path"), "should start with: /"))
    return u


def _check_consumer(c: Consumer, path: str, errors: ErrorList) -> Consumer:
    if not c.username and not c.custom_id:
        errors.append((path, "at least one of these fields must be non-empty: "
                             "'custom_id', 'username'"))
    return c


def _check_plugin(p: Plugin, path: str, errors: ErrorList, strict: bool = True) -> Plugin | None:
    if p.instance_name is not None and not _NAME_RE.match(p.instance_name):
        errors.append((join(path, "instance_name"), "invalid value '" + p.instance_name + "'"))
    cls = plugin_class(p.name)
    if cls is None:
        errors.append((join(path, "name"), f"plugin '{p.name}' not enabled; add it to the "
                                           "'plugins' configuration property"))
        return None
    conf_cls = getattr(cls, "Config", None)
    if conf_cls is None:
        return p
    n0 = len(errors)
    conf = build_struct(conf_cls, p.config, join(path, "config"), errors, strict=strict)
    if conf is None or len(errors) > n0:
        return None
    for flag, field in (("no_route", "route"), ("no_service", "service"),
                        ("no_consumer", "consumer")):
        if getattr(cls, flag, False) and getattr(p, field) is not None:
            errors.append((join(path, field), "value must be null"))
    return msgspec.structs.replace(p, config=msgspec.to_builtins(conf))


def _check_keyauth(k: KeyAuthCredential, path: str, errors: ErrorList) -> KeyAuthCredential:
    if not k.key:
        errors.append((join(path, "key"), "length must be at least 1"))
    return k


def _check_jwt(j: JwtSecret, path: str, errors: ErrorList) -> JwtSecret:
    # Kong's jwt_secrets conditional (plugins/jwt/daos.lua): an asymmetric algorithm needs a
    # valid rsa_public_key; a failure is reported on the field and on the entity
    problem = None
    if j.algorithm[:2] in ("RS", "ES", "PS", "Ed") and not j.rsa_public_key:
        problem = "required field missing"
    elif j.rsa_public_key:
        try:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
            load_pem_public_key(j.rsa_public_key.encode())
        except Exception:  # noqa: BLE001 - any parse failure is the same user error
            problem = "invalid key"
    if problem:
        errors.append((join(path, "@entity"),
                       "failed conditional validation given value of field 'algorithm'"))
        errors.append((join(path, "rsa_public_key"), problem))
    return j


def _check_oauth2(o: Oauth2Credential, path: str, errors: ErrorList) -> Oauth2Credential:
    from urllib.parse import urlsplit
    for i, uri in enumerate(o.redirect_uris or ()):
        try:
            u = urlsplit(uri)
            ok = bool(u.scheme and u.hostname)
        except ValueError:
            ok = False
        if not ok:  # Kong's daos.lua validate_uri messages
            errors.append((join(path, f"redirect_uris[{i}]"), f"cannot parse '{uri}'"))
        elif "#" in uri:
            errors.append((join(path, f"redirect_uris[{i}]"), f"fragment not allowed in '{uri}'"))
    return o


def _check_acl(a: Acl, path: str, errors: ErrorList) -> Acl:
    if not a.group:
        errors.append((join(path, "group"), "length must be at least 1"))
    return a


_PREPARE: dict[str, Callable[[dict[str, Any], str, ErrorList], dict[str, Any]]] = {
    "services": _prepare_service, "targets": _prepare_target, "routes": _prepare_route}
_CHECK: dict[str, Callable[..., Any]] = {
    "services": _check_service, "routes": _check_route, "upstreams": _check_upstream,
    "consumers": _check_consumer, "keyauth_credentials": _check_keyauth,
    "jwt_secrets": _check_jwt, "acls": _check_acl, "oauth2_credentials": _check_oauth2}


def build_entity(etype: str, data: Any, path: str, errors: ErrorList, *,
                 strict: bool = True) -> Entity | None:
    """Validate one entity record (parents already resolved to ids, `id` present).
    Appends every problem to `errors`; returns the entity or None."""
    if not isinstance(data, dict):
        errors.append((path, "expected a record"))
        return None
    n0 = len(errors)
    prep = _PREPARE.get(etype)
    if prep is not None:
        data = prep(data, path, errors)
    ent = build_struct(ENTITY_CLASSES[etype], data, path, errors, strict=strict)
    if ent is None:
        return None
    if ent.id and not is_uuid(ent.id):  # type: ignore[attr-defined]
        errors.append((join(path, "id"), "expected a valid UUID"))
    _check_tags(getattr(ent, "tags", None), path, errors)
    if etype == "plugins":
        ent = _check_plugin(ent, path, errors, strict)  # type: ignore[arg-type]
    else:
        check = _CHECK.get(etype)
        if check is not None:
            ent = check(ent, path, errors)
    if len(errors) > n0:
        return None
    return ent


def entity_key(etype: str, ent: Any) -> str:
    """A short human label for an entity: its endpoint key if set, else its id."""
    k = ENDPOINT_KEY.get(etype)
    v = getattr(ent, k, None) if k else None
    if etype == "consumers" and v is None:
        v = ent.custom_id
    return str(v) if v is not None else ent.id


def unique_values(etype: str, ent: Any) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
    """(fields, values) of each unique constraint this entity takes part in (nulls skipped)."""
    out = []
    for fields in UNIQUE[etype]:
        vals = tuple(getattr(ent, f) for f in fields)
        if len(fields) == 1 and vals[0] is None:
            continue
        out.append((fields, vals))
    return out


def check_integrity(config: Config, paths: dict[tuple[str, int], str] | None = None
                    ) -> ErrorList:
    """References exist, ids and unique keys are unique. Paths default to `services[3]`."""
    errors: ErrorList = []
    ids: dict[str, dict[str, Any]] = {}

    def where(etype: str, i: int) -> str:
        if paths is not None and (etype, i) in paths:
            return paths[(etype, i)]
        return f"{etype}[{i}]"

    for etype in ENTITY_TYPES:
        seen_id: dict[str, Any] = {}
        seen_unique: dict[tuple[tuple[str, ...], tuple[Any, ...]], int] = {}
        for i, ent in enumerate(getattr(config, etype)):
            if ent.id in seen_id:
                errors.append((join(where(etype, i), "id"),
                               f"uniqueness violation: '{etype}' entity with primary key "
                               f"set to '{ent.id}' already declared"))
            seen_id[ent.id] = ent
            for fields, vals in unique_values(etype, ent):
                key = (fields, vals)
                if key in seen_unique:
                    shown = " and ".join(f"{f} set to '{_show(etype, f, v, config)}'"
                                         for f, v in zip(fields, vals))
                    errors.append((join(where(etype, i), fields[0] if len(fields) == 1
                                        else UNIQUE_ERROR_FIELD.get(etype, fields[0])),
                                   f"uniqueness violation: '{etype}' entity with {shown} "
                                   "already declared"))
                seen_unique[key] = i
        ids[etype] = seen_id
    for etype in ENTITY_TYPES:
        for i, ent in enumerate(getattr(config, etype)):
            for field, parent in FOREIGN[etype].items():
                ref = getattr(ent, field)
                if ref is not None and ref not in ids[parent]:
                    errors.append((join(where(etype, i), field),
                                   f"invalid reference '{field}: {ref}' (no such entry in "
                                   f"'{parent}')"))
    from fastgw.config.certificates import check_ca_refs

    errors.extend(check_ca_refs(config, where))
    return errors


def _show(etype: str, field: str, value: Any, config: Config) -> Any:
    if value is None:
        return "null"
    parent = FOREIGN[etype].get(field)
    if parent:
        for p in getattr(config, parent):
            if p.id == value:
                return entity_key(parent, p)
    return value


# ---------------------------------------------------------------------------------------
# encodings
CONFIG_JSON_DECODER = msgspec.json.Decoder(Config)
_MSGPACK_ENCODER = msgspec.msgpack.Encoder()
CONFIG_MSGPACK_DECODER = msgspec.msgpack.Decoder(Config)


def config_hash(config: Config) -> str:
    """md5 hex over per-entity digests (fastgw.config.digest), as Kong's configuration_hash:
    the same content gives the same hash; a one-entity change costs one entity's digest."""
    from fastgw.config.digest import config_hash as _hash

    return _hash(config, ENTITY_TYPES)


def encode_config(config: Config) -> bytes:
    """Compact binary form for handing a config to worker processes."""
    return _MSGPACK_ENCODER.encode(config)


def decode_config(data: bytes) -> Config:
    return CONFIG_MSGPACK_DECODER.decode(data)


EMPTY_HASH = "00000000000000000000000000000000"  # Kong reports this before any config


def entity_to_json(etype: str, ent: Any) -> dict[str, Any]:
    """Kong's Admin API form: every field (nulls included), parents as {"id": ...}."""
    d: dict[str, Any] = msgspec.to_builtins(ent)
    for field in FOREIGN[etype]:
        v = d.get(field)
        d[field] = {"id": v} if v is not None else None
    return d


def fill_credential_defaults(etype: str, data: dict[str, Any], hash_password: bool) -> None:
    """Kong's credential defaults, in place: a generated key-auth key and jwt key/secret when
    absent, and the basic-auth password hashed (sha1 of password + consumer id) unless the
    input is already hashed (declarative `_transform: false`)."""
    if etype == "keyauth_credentials" and data.get("key") is None:
        data["key"] = random_key()
    elif etype == "jwt_secrets":
        if data.get("key") is None:
            data["key"] = random_key()
        if data.get("secret") is None:
            data["secret"] = random_key()
    elif etype == "hmacauth_credentials" and data.get("secret") is None:
        data["secret"] = random_key()
    elif etype == "oauth2_credentials":
        if data.get("client_id") is None:
            data["client_id"] = random_key()
        if data.get("client_secret") is None:
            data["client_secret"] = random_key()
        # Kong's on_write transformation: hash_secret stores the PBKDF2 hash
        secret = data.get("client_secret")
        if data.get("hash_secret") is True and isinstance(secret, str):
            from fastgw.config.oauth2_secret import hash_secret, is_hashed
            if not is_hashed(secret):
                data["client_secret"] = hash_secret(secret)
    elif etype == "basicauth_credentials" and hash_password:
        pw, cid = data.get("password"), data.get("consumer")
        if isinstance(pw, str) and isinstance(cid, str):
            data["password"] = hash_basic_auth_password(cid, pw)



def _certificate_check(etype: str) -> Callable[..., Any]:
    # the certificate entities' checks live in fastgw.config.certificates, which imports this
    # module: resolved at call time
    def run(ent: Any, path: str, errors: ErrorList) -> Any:
        from fastgw.config.certificates import CHECKS

        return CHECKS[etype](ent, path, errors)
    return run


_CHECK.update({t: _certificate_check(t) for t in ("certificates", "snis", "ca_certificates")})
