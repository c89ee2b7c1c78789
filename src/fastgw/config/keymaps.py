"""key-auth key maps changed in place when only consumers and key-auth credentials change
(fastgw.config.snapshot, "Consumers and key-auth credentials" rule): the new key -> (consumer,
credential) map computed from the splices of the two lists, in work proportional to the change,
and installed into the running instances at the snapshot swap."""
from __future__ import annotations

from typing import Any

from fastgw.config.delta import splice
from fastgw.config.model import Config


def key_delta(old_cfg: Config, config: Config, prev: Any, memo: Any,
               old_keys: dict[str, tuple[Any, Any]]) -> tuple[dict, dict]:
    """key-auth's key -> (consumer, credential) map for `config`, from the one of `old_cfg`
    and the splices of the consumer and credential lists: (new map, changed keys -> pair or
    None). Work is proportional to the change plus two dict copies."""
    cons = prev.consumers_by_id
    by_c = prev.creds_by_consumer
    if cons is None or by_c is None:
        cons = {c.id: c for c in old_cfg.consumers}
        by_c = {}
        for cred in old_cfg.keyauth_credentials:
            by_c[cred.consumer] = by_c.get(cred.consumer, ()) + (cred,)
    sp_c = splice(old_cfg.consumers, config.consumers)
    sp_k = splice(old_cfg.keyauth_credentials, config.keyauth_credentials)
    keys = dict(old_keys)
    changes: dict[str, tuple[Any, Any] | None] = {}

    def drop(k: str) -> None:
        if k in keys:
            del keys[k]
            changes[k] = None

    if sp_k is not None:
        by_c = dict(by_c)
        for cred in old_cfg.keyauth_credentials[sp_k[0]:sp_k[1]]:
            rest = tuple(x for x in by_c.get(cred.consumer, ()) if x is not cred)
            if rest:
                by_c[cred.consumer] = rest
            else:
                by_c.pop(cred.consumer, None)
            if cred.key:
                was = keys.get(str(cred.key))
                if was is not None and was[1] is cred:
                    drop(str(cred.key))
    if sp_c is not None:
        cons = dict(cons)
        gone = [c for c in old_cfg.consumers[sp_c[0]:sp_c[1]]]
        for c in gone:
            if cons.get(c.id) is c:
                del cons[c.id]
        for c in sp_c[2]:
            cons[c.id] = c
        for c in gone:   # a consumer that left takes its keys along
            if c.id not in cons:
                for cred in by_c.get(c.id, ()):
                    if cred.key:
                        drop(str(cred.key))
    if sp_k is not None:
        for cred in sp_k[2]:
            by_c[cred.consumer] = by_c.get(cred.consumer, ()) + (cred,)
            consumer = cons.get(cred.consumer)
            if cred.key and consumer is not None:
                keys[str(cred.key)] = changes[str(cred.key)] = (consumer, cred)
    if sp_c is not None:
        for c in sp_c[2]:   # new or changed consumers: their keys point at them
            for cred in by_c.get(c.id, ()):
                if cred.key:
                    k = str(cred.key)
                    was = keys.get(k)
                    if was is None or (was[1] is cred and was[0] is not c):
                        keys[k] = changes[k] = (c, cred)
    memo.consumers_by_id, memo.creds_by_consumer = cons, by_c
    return keys, changes


def install_keys(plugin: Any, keys: dict[str, tuple[Any, Any]],
                  changes: dict[str, tuple[Any, Any] | None]) -> None:
    """Make a key-auth instance answer with `keys`: its own map (which the compiled chain's
    kernel reads too) changes in place, only at the keys in `changes`."""
    own = plugin.keys
    for k, pair in changes.items():
        if pair is None:
            own.pop(k, None)
        else:
            own[k] = pair
    for k in changes:
        plugin.expiry.pop(k, None)   # the new pairs have no ttl (Compiler._chains)
