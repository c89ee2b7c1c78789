# Route validation and compile-time helpers (included by router.pyx; Python, never per request).
#
# Rule: every message is Kong 3.x's own for the same mistake (file:function named at each check),
# so an error reads the same in fastgw and in Kong; fields are tuples ("paths", 0) that the
# caller joins to its own path ("routes[3].paths[0]").
import ipaddress
import re as _pyre   # only for the checks below; route regexes never run on Python's re


# kong/tools/http.lua validate_header_name
_HEADER_NAME = _pyre.compile(r"^[a-zA-Z0-9_-]+$")
# kong/db/schema/typedefs.lua http_method: match = "^%u+$"
_METHOD = _pyre.compile(r"^[A-Z]+$")
# kong/tools/ip.lua check_hostname: [%d%a%-%.%_]
_HOST_CHARS = _pyre.compile(r"^[0-9A-Za-z._-]+$")
_IPV4ISH = _pyre.compile(r"^[0-9.]+(?::[0-9]+)?$")
_PERCENT_BAD = _pyre.compile(r"%(?![0-9A-Fa-f]{2})")
# kong/db/schema/typedefs.lua validate_path: unreserved, "%", ":", "@" and the sub-delims
_RFC3986_PATH = _pyre.compile(r"^/[A-Za-z0-9._~/%:@!$&'()*+,;=-]*$")
_REGEX_META = frozenset(".^$*+?{}[]\\|()")


def _host_error(str host):
    """kong/tools/ip.lua normalize_ip (hostname_type, then the matching check), or None."""
    if host.count(":") > 1:
        h = host
        if h.startswith("["):
            end = h.find("]")
            if end < 0:
                return "invalid ipv6 address: " + host
            rest = h[end + 1:]
            if rest and not (rest.startswith(":") and rest[1:].isdigit()):
                return "invalid ipv6 address: " + host
            if rest and int(rest[1:]) > 65535:
                return "invalid port number"
            h = h[1:end]
        try:
            ipaddress.IPv6Address(h)
        except ValueError:
            return "invalid ipv6 address: " + host
        return None
    if _IPV4ISH.match(host):
        addr, _, port = host.partition(":")
        try:
            ipaddress.IPv4Address(addr)
        except ValueError:
            return "invalid ipv4 address: " + host
        if port and int(port) > 65535:
            return "invalid port number"
        return None
    name, port = host, None
    colon = host.rfind(":")
    if colon >= 0 and host[colon + 1:].isdigit():
        name, port = host[:colon], int(host[colon + 1:])
        if port > 65535:
            return "invalid port number"
    if not _HOST_CHARS.match(name):
        return "invalid hostname: " + host
    segs = name.split(".")
    for i, seg in enumerate(segs):
        if seg.endswith("-") or (seg == "" and i != len(segs) - 1):
            return "invalid hostname: " + host
    return None


def _wildcard_error(str h):
    # kong/db/schema/typedefs.lua hosts: match_all / match_any, then validate_host_with_wildcards
    if h.count("*") > 1:
        return "invalid wildcard: must have at most one wildcard"
    if "*" in h and not (h.startswith("*.") or h.endswith(".*")):
        return "invalid wildcard: must be placed at leftmost or rightmost label"
    return _host_error(h.replace("*", "abc"))


def _path_error(str p):
    """kong/db/schema/typedefs.lua router_path + validate_path_with_regexes, or None."""
    if not (p.startswith("/") or p.startswith("~/")):
        return "should start with: / (fixed path) or ~/ (regex path)"
    if "//" in p:
        return "must not have empty segments"
    # validate_path checks the character set first and the percent-encoding only when the set
    # is fine; validate_path_with_regexes then only reports the percent error (so a regex
    # path, starting with "~", never gets it)
    bad = _PERCENT_BAD.search(p) if _RFC3986_PATH.match(p) else None
    if bad is not None:
        return "invalid url-encoded value: '" + p[bad.start():bad.start() + 3] + "'"
    if not p.startswith("~"):
        pb = p.encode("utf-8", "surrogatepass")
        norm = normalize(pb)
        if norm != pb:
            return ("non-normalized path, consider use '" + norm.decode("utf-8", "replace")
                    + "' instead")
        return None
    try:
        compile_regex(p[1:], False)
    except RegexError as err:
        return f"invalid regex: '{p[1:]}' (PCRE returned: {err.message})"
    return None


def header_field(str name) -> bytes:
    """The request header a route header name reads (Rule 1: lowercase, "_" read as "-")."""
    return name.lower().replace("_", "-").encode("latin-1")


def route_errors(RouteSpec spec) -> list:
    """Rule 0: every problem of `spec` as ((field, index...), message); [] when it is valid."""
    out = []
    if not (spec.hosts or spec.paths or spec.methods or spec.headers or spec.snis):
        out.append(((), "must set one of 'methods', 'hosts', 'headers', 'paths' when "
                        "'protocols' is 'http'"))
    for i, m in enumerate(spec.methods):
        if not isinstance(m, str) or not _METHOD.match(m):
            out.append((("methods", i), f"invalid value: {m}"))
    for i, h in enumerate(spec.hosts):
        err = _wildcard_error(h) if isinstance(h, str) and h else "invalid value: " + str(h)
        if err is not None:
            out.append((("hosts", i), err))
    for i, h in enumerate(spec.snis):
        err = _wildcard_error(h) if isinstance(h, str) and h else "invalid value: " + str(h)
        if err is None and ":" in h:
            err = "must not have a port"
        if err is not None:
            out.append((("snis", i), err))
    for i, p in enumerate(spec.paths):
        err = _path_error(p) if isinstance(p, str) else "expected a string"
        if err is not None:
            out.append((("paths", i), err))
    for name, values in spec.headers.items():
        if name.lower() == "host":
            out.append((("headers", name), "cannot contain 'host' header, which must be "
                                           "specified in the 'hosts' attribute"))
        elif not _HEADER_NAME.match(name):
            out.append((("headers", name), f"bad header name '{name}', allowed characters "
                                           "are A-Z, a-z, 0-9, '_', and '-'"))
        if not values:
            out.append((("headers", name), "length must be at least 1"))
        for j, v in enumerate(values):
            if not isinstance(v, str):
                out.append((("headers", name, j), "expected a string"))
            elif v.startswith("~*"):
                try:
                    compile_regex(v[2:], True)
                except RegexError as err:
                    out.append((("headers", name, j),
                                f"invalid regex: '{v[2:]}' (PCRE returned: {err.message})"))
                continue
            else:
                try:
                    v.encode("latin-1")
                except UnicodeEncodeError:
                    out.append((("headers", name, j), "must be a latin-1 string"))
    if spec.path_handling not in ("v0", "v1"):
        out.append((("path_handling",), "expected one of: v0, v1"))
    sp = spec.service_path
    if sp is not None and sp != "" and not (isinstance(sp, str) and sp.startswith("/")):
        out.append((("service_path",), "should start with: /"))
    return out


class RouteError(ValueError):
    """Router() on a RouteSpec that route_errors() refuses: key, field and Kong's message."""

    def __init__(self, key, tuple field, str message):
        where = ".".join(str(f) if isinstance(f, str) else f"[{f}]" for f in field)
        where = where.replace(".[", "[")
        super().__init__(f"route {key!r}: {where + ': ' if where else ''}{message}")
        self.key = key
        self.field = field
        self.message = message


def _regex_literal_lead(str pat) -> str:
    """The literal text every match of `pat` starts with ("" when unknown): a cheap prefilter."""
    if "|" in pat:
        return ""
    cdef list out = []
    cdef Py_ssize_t i = 0, n = len(pat), step
    while i < n:
        ch = pat[i]
        if ch == "\\":
            if i + 1 < n and not pat[i + 1].isalnum() and pat[i + 1].isascii():
                lit = pat[i + 1]
                step = 2
            else:
                break
        elif ch in _REGEX_META or not ch.isascii():
            break
        else:
            lit = ch
            step = 1
        nxt = pat[i + step] if i + step < n else ""
        if nxt in ("*", "?", "{"):
            break
        out.append(lit)
        i += step
        if nxt == "+":
            break
    return "".join(out)


def _split_host_port(str h):
    # "example.com:8080" -> ("example.com", 8080); "[::1]:80" -> ("[::1]", 80); no port -> -1
    if h.startswith("["):
        end = h.find("]")
        if end >= 0 and h[end + 1:end + 2] == ":" and h[end + 2:].isdigit():
            return h[:end + 1], int(h[end + 2:])
        return h, -1
    colon = h.rfind(":")
    if colon >= 0 and h[colon + 1:].isdigit() and h.count(":") == 1:
        return h[:colon], int(h[colon + 1:])
    return h, -1


def _host_rows(list hosts):
    """[(HostKind, bytes, port)] for route hosts (or snis): lowercased, wildcard split off."""
    rows = []
    for h in hosts:
        hp, port = _split_host_port(h.strip().lower())
        if hp.startswith("*"):
            rows.append((HK_SUFFIX, hp[1:].encode("latin-1"), port))
        elif hp.endswith("*"):
            rows.append((HK_PREFIX, hp[:len(hp) - 1].encode("latin-1"), port))
        else:
            rows.append((HK_ANY, hp.encode("latin-1"), port))
    return rows


def _desc(str s) -> tuple:
    # sorts strings in DESCENDING order inside an ascending tuple sort (Rule 2.6)
    return tuple(-ord(ch) for ch in s) + (1,)
