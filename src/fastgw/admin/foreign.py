"""`/{children}/{child}/{parent}` endpoints, e.g. `/routes/{route}/service` (Kong's foreign
entity endpoints, kong/api/endpoints.lua):

- GET: the parent; 404 when the child or its reference is missing.
- PATCH: changes the parent.
- PUT: replaces the parent the child references; when the child references none, creates it
  and points the child at it (put_entity_endpoint's `associate`).
- DELETE: 404 for an unknown child; otherwise 405, since the parent is referenced by the child
  (Kong: "returns HTTP 405 when trying to delete a service that is referenced").
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastgw.admin.errors import HTTPError, not_found
from fastgw.config import model
from fastgw.config.model import FOREIGN, entity_to_json
from fastgw.config.store import ConfigStore

Handler = Callable[[Any], Any]


def foreign_handlers(store: ConfigStore, etype: str, key: str, field: str
                     ) -> dict[str, Handler]:
    parent_type = FOREIGN[etype][field]

    def child() -> Any:
        c = store.find(etype, key)
        if c is None:
            raise not_found()
        return c

    def parent_id() -> str:
        pid = getattr(child(), field)
        if pid is None:
            raise not_found()
        return str(pid)

    def get(r: Any) -> Any:
        p = store.get_by_id(parent_type, parent_id())
        if p is None:
            raise not_found()
        return 200, entity_to_json(parent_type, p)

    def patch(r: Any) -> Any:
        return 200, entity_to_json(parent_type, store.update(parent_type, parent_id(), r.data()))

    def put(r: Any) -> Any:
        c = child()
        pid = getattr(c, field)
        if pid is not None:
            ent, _ = store.upsert(parent_type, str(pid), r.data())
            return 200, entity_to_json(parent_type, ent)
        new_id = model.new_id()
        ent, _ = store.upsert(parent_type, new_id, r.data())
        store.update(etype, c.id, {field: {"id": ent.id}})
        return 200, entity_to_json(parent_type, ent)

    def delete(r: Any) -> Any:
        child()
        raise HTTPError(405, {"message": "Method not allowed"})

    return {"GET": get, "PATCH": patch, "PUT": put, "DELETE": delete}
