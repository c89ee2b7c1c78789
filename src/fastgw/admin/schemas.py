"""`GET /schemas/...`: fastgw's msgspec entity and plugin Structs described the way Kong's
schema endpoint describes its Lua schemas (kong/api/routes/kong.lua)."""
from __future__ import annotations

from typing import Any, Union, get_args, get_origin

import msgspec

from fastgw.config import model
from fastgw.config.model import FOREIGN


def _type_schema(tp: Any) -> dict[str, Any]:
    """A msgspec field type as a Kong-style schema description."""
    origin = get_origin(tp)
    if origin is Union:
        args = [a for a in get_args(tp) if a is not type(None)]
        return _type_schema(args[0]) if len(args) == 1 else {"type": "any"}
    from typing import Annotated, Literal
    if origin is Annotated:
        base, *metas = get_args(tp)
        out = _type_schema(base)
        for m in metas:
            if isinstance(m, msgspec.Meta):
                if m.ge is not None and m.le is not None:
                    out["between"] = [m.ge, m.le]
                elif m.ge is not None:
                    out["gt"] = m.ge - 1 if isinstance(m.ge, int) else m.ge
                if m.description:
                    out["description"] = m.description
        return out
    if origin is Literal:
        vals = list(get_args(tp))
        return {"type": "integer" if all(isinstance(v, int) for v in vals) else "string",
                "one_of": vals}
    if origin in (list, tuple, set, frozenset):
        args = get_args(tp)
        return {"type": "set" if origin in (set, frozenset) else "array",
                "elements": _type_schema(args[0]) if args else {"type": "any"}}
    if origin is dict:
        k, v = get_args(tp) or (str, Any)
        if v is Any:
            return {"type": "record", "fields": []}
        return {"type": "map", "keys": _type_schema(k), "values": _type_schema(v)}
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return {"type": "record", "fields": struct_fields_schema(tp)}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", bytes: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    return {"type": "any"}


def struct_fields_schema(cls: type, etype: str | None = None) -> list[dict[str, Any]]:
    out = []
    for f in model.struct_fields(cls):
        if etype and f.name in FOREIGN.get(etype, {}):
            d: dict[str, Any] = {"type": "foreign", "reference": FOREIGN[etype][f.name]}
        elif etype and f.name == "id":
            d = {"type": "string", "uuid": True, "auto": True}
        elif f.name in ("created_at", "updated_at"):
            d = {"type": "integer", "timestamp": True, "auto": True}
        else:
            d = _type_schema(f.type)
        if f.required and not (etype and f.name == "id"):  # ids are generated when absent
            d["required"] = True
        else:
            default = f.default if f.default is not msgspec.NODEFAULT else (
                f.default_factory() if f.default_factory is not msgspec.NODEFAULT else None)
            if default is not None:
                d["default"] = msgspec.to_builtins(default)
        if etype and model.ENDPOINT_KEY.get(etype) == f.name or \
                (etype and any(fs == (f.name,) for fs in model.UNIQUE.get(etype, ()))):
            d["unique"] = True
        out.append({f.encode_name: d})
    return out


