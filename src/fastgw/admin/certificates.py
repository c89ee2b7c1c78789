"""Admin API: /certificates, /snis, /ca_certificates (Kong kong/api/routes/certificates.lua,
snis.lua; kong/db/dao/certificates.lua).

Rules:
- A certificate's `snis` is Kong's transient shorthand: input creates, replaces or removes
  the certificate's Sni entities in the same atomic change; output lists their names,
  sorted. A duplicate in the list, or a name that belongs to another certificate, is a 400
  schema violation with Kong's wording, and nothing changes.
- /certificates/{x} takes an id or one of its SNI names (404 "SNI not found" for an
  unknown name, except PUT, which creates a certificate with that SNI).
- /snis/{x}/certificate is disabled as in Kong (use /certificates/{sni}).
- A CA certificate still referenced by a service cannot be deleted (400, Kong's message).
- Every change goes through the ConfigStore: the running listeners see the new
  certificates only once the whole change is valid and applied.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import msgspec

from fastgw.config import model
from fastgw.config.certificates import wildcard_host_error
from fastgw.config.errors import ConfigError, EntityNotFound
from fastgw.config.model import Config, entity_to_json, is_uuid

if TYPE_CHECKING:
    from fastgw.admin.app import AdminAPI

#: the URL collections this module serves
COLLECTIONS = ("certificates", "snis", "ca_certificates")

Handlers = dict[str, Callable[[Any], Any]]


def route(api: AdminAPI, segs: list[str]) -> Handlers | None:
    """Handlers for a path under one of COLLECTIONS, or None (404)."""
    s0, n = segs[0], len(segs)
    if s0 == "certificates":
        return _certificates(api, segs)
    if s0 == "snis":
        if n == 1:
            return api._collection("snis", None)
        if n == 2:
            return api._item("snis", segs[1], None)
        if n == 3 and segs[2] == "certificate":
            return {}   # Kong: endpoints.disable -> 405 for every method
        return None
    if n == 1:
        return api._collection("ca_certificates", None)
    if n == 2:
        handlers = api._item("ca_certificates", segs[1], None)
        handlers["DELETE"] = lambda r: _delete_ca(api, segs[1])
        return handlers
    return None


# ------------------------------------------------------------------------- rendering
def _names(cfg: Config, cert_id: str) -> list[str]:
    return sorted(s.name for s in cfg.snis if s.certificate == cert_id)


def render(cfg: Config, cert: Any) -> dict[str, Any]:
    out = entity_to_json("certificates", cert)
    out["snis"] = _names(cfg, cert.id)
    return out


# ------------------------------------------------------------------------- /certificates
def _certificates(api: AdminAPI, segs: list[str]) -> Handlers | None:
    from fastgw.admin.errors import HTTPError
    from fastgw.admin.paging import paginate as _paginate

    store = api.store
    n = len(segs)
    if n == 1:
        def list_(r: Any) -> Any:
            cfg = store.config
            return 200, _paginate([render(cfg, c) for c in cfg.certificates], r)

        def post(r: Any) -> Any:
            return 201, _write(api, None, dict(r.data()), "POST", None)
        return {"GET": list_, "POST": post}

    key = segs[1]

    def lookup(method: str) -> tuple[Any | None, str | None]:
        """(certificate or None, the SNI name the URL used or None)."""
        if is_uuid(key):
            return store.find("certificates", key), None
        name = key.lower()
        sni = store.find("snis", name)
        if sni is None:
            if method != "PUT":
                raise HTTPError(404, {"message": "SNI not found"})
            return None, name
        return store.get_by_id("certificates", sni.certificate), name

    if n == 2:
        def get(r: Any) -> Any:
            cert, _ = lookup("GET")
            if cert is None:
                raise HTTPError(404, {"message": "Not found"})
            return 200, render(store.config, cert)

        def put(r: Any) -> Any:
            cert, name = lookup("PUT")
            return 200, _write(api, cert, dict(r.data()), "PUT", name,
                               new_id=key.lower() if is_uuid(key) else None)

        def patch(r: Any) -> Any:
            cert, name = lookup("PATCH")
            if cert is None:
                raise HTTPError(404, {"message": "Not found"})
            return 200, _write(api, cert, dict(r.data()), "PATCH", name)

        def delete(r: Any) -> Any:
            try:
                cert, _ = lookup("DELETE")
            except HTTPError:
                raise
            if cert is not None:
                store.delete("certificates", cert.id)
            return 204, None
        return {"GET": get, "PUT": put, "PATCH": patch, "DELETE": delete}

    if segs[2] != "snis" or n > 4:
        return None

    def scoped(method: str, fn: Callable[[dict[str, str]], Handlers]) -> Callable[[Any], Any]:
        def h(r: Any) -> Any:
            try:
                cert, _ = lookup(method)
            except HTTPError:
                if method == "DELETE" and n == 4:
                    return 204, None
                raise
            if cert is None:
                if method == "DELETE" and n == 4:
                    return 204, None
                raise HTTPError(404, {"message": "Not found"})
            return fn({"certificate": cert.id})[method](r)
        return h

    if n == 3:
        return {m: scoped(m, lambda sc: api._collection("snis", sc)) for m in ("GET", "POST")}
    return {m: scoped(m, lambda sc: api._item("snis", segs[3], sc))
            for m in ("GET", "PUT", "PATCH", "DELETE")}


def _name_list(raw: Any, method: str, url_name: str | None) -> list[str] | None:
    """Kong dao/certificates.lua parse_name_list + routes/certificates.lua prepare_args:
    None = leave the SNIs alone; [] = remove them all."""
    if isinstance(raw, str):
        raw = [raw]
    if raw is None:
        if method == "PUT":
            raw = []
        else:
            return None
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ConfigError([("snis", "expected an array of strings")])
    names = [x.lower() for x in raw]
    if url_name is not None and method == "PUT" and url_name not in names:
        names.append(url_name)
    errors = [(model.join("snis", i), msg) for i, x in enumerate(names)
              if (msg := wildcard_host_error(x))]
    if errors:
        raise ConfigError(errors)
    seen: set[str] = set()
    for x in names:
        if x in seen:
            raise ConfigError([("snis", f"{x} is duplicated")])
        seen.add(x)
    return sorted(names)


def _write(api: AdminAPI, existing: Any | None, data: dict[str, Any], method: str,
           url_name: str | None, new_id: str | None = None) -> dict[str, Any]:
    """POST / PUT / PATCH of a certificate and its SNI list, as one atomic change."""
    store = api.store
    raw_snis = data.pop("snis", None)
    names = _name_list(raw_snis, method, url_name)
    if method == "PATCH" and existing is not None:
        merged: dict[str, Any] = msgspec.to_builtins(existing)
        merged.update(data)
        data = merged
    if existing is not None:
        data["id"] = existing.id
    elif new_id is not None:
        data["id"] = new_id

    holder: dict[str, Any] = {}

    def change(cfg: Config) -> Config:
        cert = store.build_entity("certificates", data, None, existing)
        store.check_unique("certificates", cert, existing.id if existing else None)
        holder["cert"] = cert
        certs = list(cfg.certificates)
        if existing is not None:
            certs[certs.index(existing)] = cert
        else:
            certs.append(cert)
        snis = list(cfg.snis)
        if names is not None:
            for name in names:
                other = next((s for s in cfg.snis if s.name == name), None)
                if other is not None and other.certificate != cert.id:
                    raise ConfigError([("snis", f"{name} already associated with existing "
                                                f"certificate '{other.certificate}'")])
            keep = {s.name: s for s in cfg.snis if s.certificate == cert.id}
            snis = [s for s in cfg.snis if s.certificate != cert.id]
            for name in names:
                s = keep.get(name) or store.build_entity(
                    "snis", {"name": name}, {"certificate": cert.id}, None)
                snis.append(s)
        return msgspec.structs.replace(cfg, certificates=certs, snis=snis)

    cfg = store.transaction(change)
    return render(cfg, holder["cert"])


# ------------------------------------------------------------------------- /ca_certificates
def _delete_ca(api: AdminAPI, key: str) -> Any:
    from fastgw.admin.errors import HTTPError

    store = api.store
    ca = store.find("ca_certificates", key)
    if ca is None:
        return 204, None
    for svc in store.config.services:
        if ca.id in (svc.ca_certificates or ()):
            raise HTTPError(400, {"message": f"ca certificate {ca.id} is still referenced by "
                                             f"services (id = {svc.id})"})
    try:
        store.delete("ca_certificates", ca.id)
    except EntityNotFound:
        pass
    return 204, None
