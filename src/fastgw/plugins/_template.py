"""Kong's request-transformer templates, `$(expr)`, in a safe expression language.

Kong renders these with Penlight templates over sandboxed Lua
(kong/plugins/request-transformer/access.lua `param_value`). fastgw never evaluates code from
the configuration: a template is parsed ONCE (at config time; a syntax error is a config error
naming the field) into a small tree that is interpreted over the request.

Grammar (the subset of Lua expressions Kong documents and its spec uses):

    expr    := or
    or      := and ("or" and)*
    and     := cmp ("and" cmp)*
    cmp     := concat (("==" | "~=" | "<" | "<=" | ">" | ">=") concat)?
    concat  := sum (".." concat)?                      (right associative, as Lua)
    sum     := term (("+" | "-") term)*
    term    := unary (("*" | "/" | "%") unary)*
    unary   := ("not" | "-" | "#") unary | postfix
    postfix := primary ("." NAME | "[" expr "]" | "(" args ")")*
    primary := NAME | STRING | NUMBER | "nil" | "true" | "false" | "(" expr ")"

Names: `headers`, `query_params`, `uri_captures`, `shared` (read-only, Kong's lazy
environment) and the functions `type`, `tostring`, `tonumber`, `string.sub|lower|upper|len|
format|rep`. Anything else is nil; calling nil, arithmetic on a non-number and the like are
render errors (TemplateError), which the plugin answers with Kong's 500.

Values follow Lua: nil and false are falsy; a multi-valued header or query argument is a table
(Python list, 1-based indexing); `nil` renders as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

# Longest template expression accepted: a config value, not a program (Kong has no limit;
# nginx's large_client_header_buffers 8 KiB bounds what a header value could carry anyway).
MAX_EXPR_LEN = 4096
# string.rep output bound: a template cannot make a header larger than nginx would accept.
MAX_REP_LEN = 8192
# string.format field width/precision bound (same reason: "%99999999s" must not allocate).
MAX_FORMAT_WIDTH = 1024

ROOT_NAMES = ("headers", "query_params", "uri_captures", "shared")


class TemplateError(Exception):
    """A template that cannot be parsed (config time) or rendered (request time)."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>\d+(?:\.\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>\.\.|==|~=|<=|>=|[-+*/%#<>.\[\](),])
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "nil", "true", "false"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _tokenize(src: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    n = len(src)
    while pos < n:
        if src[pos:].strip() == "":
            break
        m = _TOKEN.match(src, pos)
        if m is None:
            raise TemplateError(f"unexpected character {src[pos:].lstrip()[:1]!r}")
        pos = m.end()
        if m.group("num") is not None:
            t = m.group("num")
            out.append(("num", float(t) if "." in t else int(t)))
        elif m.group("str") is not None:
            body = m.group("str")[1:-1]
            out.append(("str", re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), e.group(1)),
                                      body)))
        elif m.group("name") is not None:
            name = m.group("name")
            out.append(("kw", name) if name in _KEYWORDS else ("name", name))
        else:
            out.append(("op", m.group("op")))
    out.append(("end", None))
    return out


# Nodes are tuples: ("lit", v) ("name", n) ("index", obj, key) ("call", fn, args)
# ("bin", op, a, b) ("not", a) ("neg", a) ("len", a) ("and", a, b) ("or", a, b)
class _Parser:
    def __init__(self, src: str) -> None:
        self.toks = _tokenize(src)
        self.i = 0

    def peek(self) -> tuple[str, Any]:
        return self.toks[self.i]

    def take(self) -> tuple[str, Any]:
        t = self.toks[self.i]
        self.i += 1
        return t

    def accept(self, kind: str, value: Any) -> bool:
        if self.toks[self.i] == (kind, value):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, value: Any) -> None:
        if not self.accept(kind, value):
            got = self.peek()[1]
            raise TemplateError(f"expected '{value}' near '{got if got is not None else '<eof>'}'")

    def parse(self) -> tuple[Any, ...]:
        node = self.expr()
        if self.peek()[0] != "end":
            raise TemplateError(f"unexpected '{self.peek()[1]}'")
        return node

    def expr(self) -> tuple[Any, ...]:
        node = self.and_()
        while self.accept("kw", "or"):
            node = ("or", node, self.and_())
        return node

    def and_(self) -> tuple[Any, ...]:
        node = self.cmp()
        while self.accept("kw", "and"):
            node = ("and", node, self.cmp())
        return node

    def cmp(self) -> tuple[Any, ...]:
        node = self.concat()
        t = self.peek()
        if t[0] == "op" and t[1] in ("==", "~=", "<", "<=", ">", ">="):
            self.take()
            node = ("bin", t[1], node, self.concat())
        return node

    def concat(self) -> tuple[Any, ...]:
        node = self.sum()
        if self.accept("op", ".."):
            node = ("bin", "..", node, self.concat())
        return node

    def sum(self) -> tuple[Any, ...]:
        node = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            node = ("bin", op, node, self.term())
        return node

    def term(self) -> tuple[Any, ...]:
        node = self.unary()
        while self.peek() in (("op", "*"), ("op", "/"), ("op", "%")):
            op = self.take()[1]
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> tuple[Any, ...]:
        if self.accept("kw", "not"):
            return ("not", self.unary())
        if self.accept("op", "-"):
            return ("neg", self.unary())
        if self.accept("op", "#"):
            return ("len", self.unary())
        return self.postfix()

    def postfix(self) -> tuple[Any, ...]:
        node = self.primary()
        while True:
            if self.accept("op", "."):
                t = self.take()
                if t[0] not in ("name", "kw"):
                    raise TemplateError("expected a name after '.'")
                node = ("index", node, ("lit", t[1]))
            elif self.accept("op", "["):
                key = self.expr()
                self.expect("op", "]")
                node = ("index", node, key)
            elif self.accept("op", "("):
                args: list[tuple[Any, ...]] = []
                if not self.accept("op", ")"):
                    args.append(self.expr())
                    while self.accept("op", ","):
                        args.append(self.expr())
                    self.expect("op", ")")
                node = ("call", node, tuple(args))
            else:
                return node

    def primary(self) -> tuple[Any, ...]:
        kind, v = self.take()
        if kind in ("num", "str"):
            return ("lit", v)
        if kind == "kw" and v in ("nil", "true", "false"):
            return ("lit", {"nil": None, "true": True, "false": False}[v])
        if kind == "name":
            return ("name", v)
        if (kind, v) == ("op", "("):
            node = self.expr()
            self.expect("op", ")")
            return node
        raise TemplateError(f"unexpected '{v if v is not None else '<eof>'}'")


# ------------------------------------------------------------------------------ values
def _lua_type(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if callable(v):
        return "function"
    return "table"


def _tostring(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (int, float, str)):
        return str(v)
    raise TemplateError(f"cannot render a {_lua_type(v)}")


def _tonumber(v: Any) -> int | float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        s = v.strip()
        try:
            return int(s, 0) if s.lower().startswith("0x") else int(s)
        except ValueError:
            try:
                return float(s)
            except ValueError:
                return None
    return None


def _arith_operand(v: Any) -> int | float:
    n = _tonumber(v)
    if n is None:
        raise TemplateError(f"attempt to perform arithmetic on a {_lua_type(v)} value")
    return n


def _truthy(v: Any) -> bool:
    return v is not None and v is not False


def _str_sub(s: Any, i: Any = 1, j: Any = -1) -> str:
    s = _concat_operand(s)
    n = len(s)
    a, b = int(_arith_operand(i)), int(_arith_operand(j))
    if a < 0:
        a = max(n + a + 1, 1)
    elif a == 0:
        a = 1
    if b < 0:
        b = n + b + 1
    elif b > n:
        b = n
    return s[a - 1:b] if a <= b else ""


def _str_rep(s: Any, k: Any) -> str:
    s = _concat_operand(s)
    count = int(_arith_operand(k))
    if count <= 0:
        return ""
    if len(s) * count > MAX_REP_LEN:
        raise TemplateError("string.rep result too large")
    return s * count


_FORMAT_SPEC = re.compile(r"%([-0-9.]*)([sdifx%])")


def _str_format(fmt: Any, *args: Any) -> str:
    fmt = _concat_operand(fmt)
    it = iter(args)

    def one(m: re.Match[str]) -> str:
        flags, conv = m.group(1), m.group(2)
        if conv == "%":
            return "%"
        if any(int(n) > MAX_FORMAT_WIDTH for n in re.findall(r"\d+", flags)):
            raise TemplateError(f"format width larger than {MAX_FORMAT_WIDTH}")
        try:
            v = next(it)
        except StopIteration:
            raise TemplateError("bad argument to 'format' (no value)") from None
        if conv == "s":
            return ("%" + flags + "s") % _tostring(v)
        num = _arith_operand(v)
        if conv in ("d", "i", "x"):
            return ("%" + flags + ("x" if conv == "x" else "d")) % int(num)
        return ("%" + flags + "f") % float(num)

    return _FORMAT_SPEC.sub(one, fmt)


def _concat_operand(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _tostring(v)
    raise TemplateError(f"attempt to concatenate a {_lua_type(v)} value")


_STRING_LIB: dict[str, Callable[..., Any]] = {
    "sub": _str_sub, "lower": lambda s: _concat_operand(s).lower(),
    "upper": lambda s: _concat_operand(s).upper(), "len": lambda s: len(_concat_operand(s)),
    "format": _str_format, "rep": _str_rep,
}
_GLOBALS: dict[str, Any] = {"type": _lua_type, "tostring": _tostring, "tonumber": _tonumber,
                            "string": _STRING_LIB}


def _index(obj: Any, key: Any) -> Any:
    if obj is None:
        raise TemplateError("attempt to index a nil value")
    if isinstance(obj, list):
        if isinstance(key, (int, float)) and not isinstance(key, bool) and \
                float(key).is_integer() and 1 <= key <= len(obj):
            return obj[int(key) - 1]
        return None
    if isinstance(obj, Mapping):
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        return obj.get(key)
    raise TemplateError(f"attempt to index a {_lua_type(obj)} value")


def _eval(node: tuple[Any, ...], env: Mapping[str, Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "name":
        name = node[1]
        if name in ROOT_NAMES:
            return env.get(name)
        return _GLOBALS.get(name)
    if kind == "index":
        return _index(_eval(node[1], env), _eval(node[2], env))
    if kind == "call":
        fn = _eval(node[1], env)
        if not callable(fn):
            raise TemplateError(f"attempt to call a {_lua_type(fn)} value")
        try:
            return fn(*(_eval(a, env) for a in node[2]))
        except TypeError:
            raise TemplateError("bad arguments to a template function") from None
    if kind == "and":
        a = _eval(node[1], env)
        return _eval(node[2], env) if _truthy(a) else a
    if kind == "or":
        a = _eval(node[1], env)
        return a if _truthy(a) else _eval(node[2], env)
    if kind == "not":
        return not _truthy(_eval(node[1], env))
    if kind == "neg":
        return -_arith_operand(_eval(node[1], env))
    if kind == "len":
        v = _eval(node[1], env)
        if isinstance(v, (str, list)):
            return len(v)
        raise TemplateError(f"attempt to get length of a {_lua_type(v)} value")
    op, a, b = node[1], _eval(node[2], env), _eval(node[3], env)
    if op == "..":
        return _concat_operand(a) + _concat_operand(b)
    if op == "==":
        return a == b and _lua_type(a) == _lua_type(b)
    if op == "~=":
        return not (a == b and _lua_type(a) == _lua_type(b))
    if op in ("<", "<=", ">", ">="):
        if not ((isinstance(a, str) and isinstance(b, str)) or
                (_lua_type(a) == "number" and _lua_type(b) == "number")):
            raise TemplateError(f"attempt to compare {_lua_type(a)} with {_lua_type(b)}")
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    x, y = _arith_operand(a), _arith_operand(b)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if y == 0:
        raise TemplateError("division by zero")
    return x / y if op == "/" else x % y


# ------------------------------------------------------------------------------ templates
class Template:
    """A value with `$(expr)` parts, parsed once. `render(env)` -> str."""

    __slots__ = ("parts", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str | tuple[Any, ...]] = _split(source)

    @property
    def is_static(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(self, env: Mapping[str, Any]) -> str:
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
            else:
                v = _eval(p, env)
                out.append("" if v is None else _tostring(v))
        return "".join(out)


def _split(src: str) -> list[str | tuple[Any, ...]]:
    """Literal text and parsed `$(...)` expressions. The expression ends at the `)` that
    balances its `(`, skipping parentheses inside string literals (Penlight's inline escape
    does the same balancing)."""
    parts: list[str | tuple[Any, ...]] = []
    i = 0
    n = len(src)
    buf = []
    while i < n:
        j = src.find("$(", i)
        if j < 0:
            buf.append(src[i:])
            break
        buf.append(src[i:j])
        k = j + 2
        depth = 1
        quote: str | None = None
        while k < n and depth:
            ch = src[k]
            if quote:
                if ch == "\\":
                    k += 1
                elif ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            k += 1
        if depth:
            raise TemplateError("unbalanced '$(' in template")
        expr = src[j + 2:k - 1]
        if len(expr) > MAX_EXPR_LEN:
            raise TemplateError(f"template expression longer than {MAX_EXPR_LEN} characters")
        if "".join(buf):
            parts.append("".join(buf))
        buf = []
        parts.append(_Parser(expr).parse())
        i = k
    if "".join(buf):
        parts.append("".join(buf))
    return parts


def compile_template(value: str) -> Template:
    """Parse `value`; TemplateError with the reason when it is not a valid template."""
    return Template(value)
