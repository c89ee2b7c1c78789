"""certificates / snis / ca_certificates in a declarative file: Kong's nesting, field names,
errors with paths, and the dump round trip."""
from __future__ import annotations

import pytest
from tls_helpers import ca_pem, issue

from fastgw.config import declarative
from fastgw.config.errors import ConfigError


def _errors(doc: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        declarative.load_dict(doc)
    return dict(e.value.errors)


def test_nested_and_top_level_snis_load_and_round_trip(ca):
    a, b = issue(ca, "a.test"), issue(ca, "b.test", ec=True)
    doc = {"_format_version": "3.0",
           "certificates": [{"id": "7d1e0bd1-6a29-4b1c-8f2c-0f0000000001", "cert": a[0],
                             "key": a[1], "cert_alt": b[0], "key_alt": b[1],
                             "snis": [{"name": "A.test"}, {"name": "*.a.test"}]}],
           "snis": [{"name": "a.*", "certificate": "7d1e0bd1-6a29-4b1c-8f2c-0f0000000001"}],
           "ca_certificates": [{"cert": ca_pem(ca)}],
           "services": [{"name": "s", "url": "https://127.0.0.1:9443",
                         "client_certificate": "7d1e0bd1-6a29-4b1c-8f2c-0f0000000001",
                         "tls_verify": True, "tls_verify_depth": 2}]}
    cfg = declarative.load_dict(doc)
    assert sorted(s.name for s in cfg.snis) == ["*.a.test", "a.*", "a.test"]
    assert cfg.ca_certificates[0].cert_digest
    assert cfg.services[0].client_certificate == cfg.certificates[0].id
    again = declarative.load_dict(declarative.dump(cfg))
    assert again == cfg


def test_errors_name_their_paths(ca):
    a = issue(ca, "a.test")
    other = issue(ca, "o.test")
    errs = _errors({"_format_version": "3.0", "certificates": [
        {"cert": a[0], "key": other[1], "snis": [{"name": "x.test"}]},
        {"cert": "garbage", "key": a[1]},
        {"cert": a[0], "key": a[1], "snis": [{"name": "dup.test"}, {"name": "dup.test"},
                                             {"name": "1.2.3.4"}]}]})
    assert errs["certificates[0]"] == "certificate does not match key"
    assert errs["certificates[1].cert"].startswith("invalid certificate")
    assert "uniqueness violation: 'snis' entity with name set to 'dup.test'" in \
        errs["certificates[2].snis[1]"]   # on the entity, as Kong's declarative errors
    assert errs["certificates[2].snis[2].name"] == "must not be an IP"
    errs = _errors({"_format_version": "3.0", "services": [
        {"name": "s", "url": "https://127.0.0.1:1", "ca_certificates": [
            "7d1e0bd1-6a29-4b1c-8f2c-0f0000000009"],
         "client_certificate": "7d1e0bd1-6a29-4b1c-8f2c-0f0000000008"}]})
    assert "no such entry in 'certificates'" in errs["services[0].client_certificate"]
    errs = _errors({"_format_version": "3.0", "services": [
        {"name": "ok", "url": "http://127.0.0.1:1"},
        {"name": "s", "url": "https://127.0.0.1:1", "ca_certificates": [
            "7d1e0bd1-6a29-4b1c-8f2c-0f0000000009"]}]})
    assert "no such entry in 'ca_certificates'" in errs["services[1].ca_certificates[0]"]
