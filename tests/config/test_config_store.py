"""ConfigStore: atomic changes through apply(), persistence modes, cascades; diff."""
from __future__ import annotations

import logging

import pytest

from fastgw.config import declarative, model
from fastgw.config.diff import diff
from fastgw.config.errors import (ConfigError, EntityNotFound, ForeignKeyViolation,
                                  UniqueViolation)
from fastgw.config.store import MEMORY_WARNING, ConfigStore

BASE = {"_format_version": "3.0",
        "services": [{"name": "s", "host": "h", "routes": [{"name": "r", "paths": ["/"]}]}],
        "consumers": [{"username": "c", "keyauth_credentials": [{"key": "k1"}]}]}


def make(persist=None, source=None):
    applied = []
    st = ConfigStore(declarative.load_dict(BASE), applied.append, persist, source_path=source)
    return st, applied


def test_create_applies_a_new_config_and_never_mutates_the_old():
    st, applied = make()
    old = st.config
    old_hash = st.hash
    svc = st.create("services", {"name": "s2", "url": "http://x.com:81"})
    assert applied == [st.config] and st.config is not old
    assert [s.name for s in old.services] == ["s"]
    assert [s.name for s in st.config.services] == ["s", "s2"]
    assert svc.port == 81 and model.is_uuid(svc.id) and svc.created_at is not None
    assert st.hash != old_hash and st.version == 1


def test_apply_failure_changes_nothing():
    def refuse(cfg):
        raise ConfigError([("services[1]", "cannot compile")])

    st = ConfigStore(declarative.load_dict(BASE), refuse)
    before, h = st.config, st.hash
    with pytest.raises(ConfigError):
        st.create("services", {"name": "s2", "host": "x"})
    assert st.config is before and st.hash == h and st.version == 0


def test_unique_and_foreign_key_violations():
    st, applied = make()
    with pytest.raises(UniqueViolation) as ei:
        st.create("services", {"name": "s", "host": "x"})
    assert ei.value.values == {"name": "s"}
    with pytest.raises(ForeignKeyViolation) as ei:
        st.create("routes", {"paths": ["/x"], "service": {"id": model.new_id()}})
    assert ei.value.parent == "services"
    # referenced by name works too
    r = st.create("routes", {"paths": ["/y"], "service": {"name": "s"}})
    assert r.service == st.config.services[0].id
    with pytest.raises(ForeignKeyViolation) as ei:
        st.delete("services", "s")
    assert ei.value.referenced_by == "routes"
    assert len(applied) == 1


def test_delete_cascades_to_credentials_and_plugins():
    st, _ = make()
    st.create("plugins", {"name": "key-auth", "consumer": {"username": "c"}})
    assert st.delete("consumers", "c") is True
    assert st.config.consumers == [] and st.config.keyauth_credentials == []
    assert st.config.plugins == []
    assert st.delete("consumers", "c") is False


def test_upsert_and_patch():
    st, _ = make()
    e, created = st.upsert("services", "new", {"host": "a.com"})
    assert created and e.name == "new"
    e2, created = st.upsert("services", "new", {"host": "b.com", "retries": 1})
    assert not created and e2.id == e.id and e2.retries == 1
    e3, _ = st.upsert("services", "new", {"host": "b.com"})  # PUT replaces: default again
    assert e3.retries == 5 and e3.created_at == e.created_at
    p = st.create("plugins", {"name": "rate-limiting", "config": {"minute": 5}})
    p2 = st.update("plugins", p.id, {"config": {"hour": 50}})
    assert p2.config["minute"] == 5 and p2.config["hour"] == 50  # config merges
    with pytest.raises(EntityNotFound):
        st.update("services", "missing", {"retries": 1})
    with pytest.raises(ConfigError) as ei:
        st.update("services", "new", {"retries": -1})
    assert ei.value.errors[0][0] == "retries"


def test_basic_auth_password_hashed_once():
    st, _ = make()
    cred = st.create("basicauth_credentials", {"username": "u", "password": "pw",
                                               "consumer": "c"})
    want = model.hash_basic_auth_password(st.config.consumers[0].id, "pw")
    assert cred.password == want
    cred2 = st.update("basicauth_credentials", "u", {"tags": ["t"]})
    assert cred2.password == want  # not re-hashed


def test_persistence_file_is_written_atomically(tmp_path):
    path = tmp_path / "kong.yml"
    st, _ = make(persist=str(path))
    assert st.persistence == "file"
    st.create("services", {"name": "s2", "host": "x.com"})
    assert declarative.load_file(str(path)) == st.config
    assert [p.name for p in tmp_path.iterdir()] == ["kong.yml"]  # no temp files left


def test_memory_persistence_warns_per_change(caplog):
    st, _ = make(source="/etc/kong.yml")
    assert st.persistence == "memory" and st.info()["persistence"] == "memory"
    with caplog.at_level(logging.WARNING, logger="fastgw.config"):
        st.create("services", {"name": "a", "host": "x"})
        st.create("services", {"name": "b", "host": "x"})
    assert [r.getMessage() for r in caplog.records].count(MEMORY_WARNING) == 2


def test_replace_checks_integrity():
    st, _ = make()
    bad = model.Config(routes=[model.Route(id=model.new_id(), paths=["/"],
                                           service=model.new_id())])
    with pytest.raises(ConfigError) as ei:
        st.replace(bad)
    assert "invalid reference" in ei.value.errors[0][1]


def test_diff_reports_added_changed_removed():
    old = declarative.load_dict(BASE)
    new_doc = {"_format_version": "3.0",
               "services": [{"name": "s", "host": "h2",
                             "routes": [{"name": "r", "paths": ["/"]}]},
                            {"name": "t", "host": "h"}],
               "consumers": [{"username": "c"}]}
    d = diff(old, declarative.load_dict(new_doc))
    assert [(a["entity"], a["key"]) for a in d["added"]] == [("services", "t")]
    assert [(c["entity"], c["key"], c["fields"]) for c in d["changed"]] == \
        [("services", "s", ["host"])]
    assert [(r["entity"], r["key"]) for r in d["removed"]] == [("keyauth_credentials", "k1")]
    assert d["summary"] == {"added": 1, "changed": 1, "removed": 1, "unchanged": 2}
    # entities matched by name when ids differ (created through the Admin API)
    st, _ = make()
    st.create("services", {"name": "api", "host": "h"})
    doc2 = declarative.dump(st.config)
    doc2["services"][1].pop("id")
    doc2["services"][1].pop("created_at")
    doc2["services"][1].pop("updated_at")
    d2 = diff(st.config, declarative.load_dict(doc2))
    assert d2["added"] == [] and d2["removed"] == []
    assert d2["changed"][0]["fields"] == ["id"]
