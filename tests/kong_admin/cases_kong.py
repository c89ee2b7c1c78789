"""Cases from Kong's spec/02-integration/04-admin_api/02-kong_routes_spec.lua (`/`,
`/endpoints`, `/status`, `/schemas`, unknown paths) and 15-off_spec.lua (`/config`)."""
from __future__ import annotations

from kong_cases import ABSENT, ANY, Case, Step

ABSENT_KEY = ABSENT

K = "02-kong_routes_spec.lua"
O = "15-off_spec.lua"

CASES: list[Case] = [
    Case("returns headers with HEAD method", f"{K}:35", steps=[
        Step("HEAD", "/", status=200, text="")]),
    Case("returns allow and CORS headers with OPTIONS method", f"{K}:59", steps=[
        Step("OPTIONS", "/", status=204, text="", resp_headers={
            "Allow": "GET, HEAD, OPTIONS", "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Allow-Origin": "*"})]),
    Case("returns Kong's version number, edition info and tagline", f"{K}:74", steps=[
        Step("GET", "/", status=200, body={"version": "3.10.0", "edition": "community",
                                           "fastgw_version": ANY, "tagline": ANY})]),
    Case("returns 405 on invalid method", f"{K}:103", steps=[
        Step(m, "/", status=405, body={"message": "Method not allowed"})
        for m in ("POST", "PUT", "DELETE", "PATCH")]),
    Case("exposes the node's configuration", f"{K}:117", steps=[
        Step("GET", "/", status=200, body={"configuration": ANY})]),
    Case("enabled_in_cluster property is an array", f"{K}:126", steps=[
        Step("GET", "/", status=200, body={"plugins": {"enabled_in_cluster": []}})]),
    Case("only returns base, plugin, and custom-plugin endpoints", f"{K}:170", steps=[
        Step("GET", "/endpoints", status=200, body={"data": ANY})]),
    Case("returns status info", f"{K}:197", steps=[
        Step("GET", "/status", status=200, body={"server": {
            "connections_accepted": ANY, "connections_active": ANY,
            "connections_handled": ANY, "connections_reading": ANY,
            "connections_writing": ANY, "connections_waiting": ANY, "total_requests": ANY},
            "configuration_hash": ANY})]),
    *[Case(f"returns the schema of DB entity {e}", f"{K}:431", steps=[
        Step("GET", f"/schemas/{e}", status=200, body={"fields": ANY, "entity_checks": ANY})])
      for e in ("services", "routes", "consumers", "plugins", "upstreams", "targets",
                "keyauth_credentials", "basicauth_credentials", "jwt_secrets", "acls")],
    Case("returns 404 on a missing entity", f"{K}:443", steps=[
        Step("GET", "/schemas/not-present", status=404,
             body={"message": "No entity named 'not-present'"})]),
    Case("returns schema of all plugins", f"{K}:503", steps=[
        Step("GET", f"/schemas/plugins/{p}", status=200, body={"fields": ANY})
        for p in ("key-auth", "basic-auth", "jwt", "acl", "cors", "rate-limiting",
                  "ip-restriction", "request-transformer", "response-transformer",
                  "prometheus", "correlation-id", "request-size-limiting", "bot-detection")]),
    Case("returns 404 on a non-existent plugin", f"{K}:514", steps=[
        Step("GET", "/schemas/plugins/not-a-plugin", status=404,
             body={"message": "No plugin named 'not-a-plugin'"})]),
    Case("validate returns 200 on a valid schema", f"{K}", steps=[
        Step("POST", "/schemas/services/validate", json={"host": "example.com"}, status=200,
             body={"message": "schema validation successful"})]),
    Case("validate returns 200 on a valid plugin schema", f"{K}", steps=[
        Step("POST", "/schemas/plugins/validate", json={
            "name": "key-auth", "config": {"key_names": ["foo", "bar"],
                                           "hide_credentials": True}},
             status=200, body={"message": "schema validation successful"})]),
    Case("validate returns 400 on an invalid plugin subschema", f"{K}", steps=[
        Step("POST", "/schemas/plugins/validate", json={"name": "key-auth",
                                                        "config": {"keys": "foo"}},
             status=400, body={"name": "schema violation"})]),
    Case("/non-existing returns 404 with HEAD", f"{K}", steps=[
        Step("HEAD", "/non-existing", status=404, text="")]),
    *[Case(f"/non-existing returns 404 with {m}", f"{K}:656", steps=[
        Step(m, "/non-existing", status=404, body={"message": "Not found"})])
      for m in ("OPTIONS", "GET", "POST", "PUT", "DELETE")],

    # --------------------------------------------------------------------- /config
    Case("accepts configuration as JSON body", f"{O}:220", steps=[
        Step("POST", "/config", json={"_format_version": "1.1",
                                      "consumers": [{"username": "bobby_in_json_body"}]},
             status=201)]),
    Case("accepts configuration as YAML body", f"{O}:240", steps=[
        Step("POST", "/config", raw=b'_format_version: "1.1"\nconsumers:\n'
                                    b'- username: "bobby_in_yaml_body"\n',
             headers={"Content-Type": "text/yaml"}, status=201)]),
    Case("accepts configuration as a JSON string under `config` JSON key", f"{O}:257", steps=[
        Step("POST", "/config", json={"config": '{"_format_version":"1.1","consumers":'
                                                '[{"username":"bobby_in_json_body"}]}'},
             status=201)]),
    Case("accepts configuration as a YAML string under `config` JSON key", f"{O}:281", steps=[
        Step("POST", "/config", json={"config": '_format_version: "1.1"\nconsumers:\n'
                                                '- username: "bobby_in_yaml_body"\n'},
             status=201)]),
    Case("accepts configuration in a multipart `config` field (curl -F)", f"{O}", steps=[
        Step("POST", "/config", multipart=[("config", '_format_version: "3.0"\nservices:\n'
                                                      '- name: mp\n  host: mp.test\n')],
             status=201),
        Step("GET", "/services/mp", status=200)]),
    Case("accepts configuration in a form `config` field", f"{O}", steps=[
        Step("POST", "/config", form=[("config", '_format_version: "3.0"\n')], status=201)]),
    Case("accepts configuration containing null as a YAML string", f"{O}:392", steps=[
        Step("POST", "/config", json={"config": '_format_version: "1.1"\nroutes:\n'
                                                '- paths:\n  - "/"\n  service: null\n'},
             status=201)]),
    Case("returns 304 if checking hash and configuration is identical", f"{O}:582", steps=[
        Step("POST", "/config?check_hash=1", json={
            "config": '_format_version: "1.1"\nconsumers:\n- username: bobby_tables\n'},
             status=201),
        Step("POST", "/config?check_hash=1", json={
            "config": '_format_version: "1.1"\nconsumers:\n- username: bobby_tables\n'},
             status=304)]),
    Case("returns 400 on an invalid config string", f"{O}:621", steps=[
        Step("POST", "/config", json={"config": "bobby tables"}, status=400, body={
            "code": 14, "name": "invalid declarative configuration",
            "fields": {"error": "failed parsing declarative configuration: expected an object"},
            "message": 'declarative config is invalid: {error="failed parsing declarative '
                       'configuration: expected an object"}'})]),
    Case("returns 400 on a validation error", f"{O}:647", steps=[
        Step("POST", "/config", json={"config": '_format_version: "1.1"\nservices:\n'
                                                '- port: -12\n'}, status=400, body={
            "code": 14, "name": "invalid declarative configuration",
            "fields": {"services": [{"host": "required field missing",
                                     "port": "value should be between 0 and 65535"}]},
            "message": 'declarative config is invalid: {services={{host="required field '
                       'missing",port="value should be between 0 and 65535"}}}'})]),
    Case("returns 400 on an primary key uniqueness error", f"{O}:682", steps=[
        Step("POST", "/config", json={"config": (
            '_format_version: "1.1"\nservices:\n'
            '- id: 0855b320-0dd2-547d-891d-601e9b38647f\n  name: foo\n  host: example.com\n'
            '- id: 0855b320-0dd2-547d-891d-601e9b38647f\n  name: bar\n  host: example.test\n')},
             status=400, body={"code": 14, "fields": {"services": [
                 None, "uniqueness violation: 'services' entity with primary key set to "
                       "'0855b320-0dd2-547d-891d-601e9b38647f' already declared"]}})]),
    Case("returns 400 on an endpoint key uniqueness error", f"{O}:739", steps=[
        Step("POST", "/config", json={"config": (
            '_format_version: "1.1"\nservices:\n- name: foo\n  host: example.com\n'
            '- name: foo\n  host: example.test\n')}, status=400, body={
            "code": 14, "fields": {"services": [
                None, "uniqueness violation: 'services' entity with name set to 'foo' already "
                      "declared"]},
            "message": "declarative config is invalid: {services={[2]=\"uniqueness violation: "
                       "'services' entity with name set to 'foo' already declared\"}}"})]),
    Case("returns 400 when given no input", f"{O}:828", steps=[
        Step("POST", "/config", status=400,
             body={"message": "expected a declarative configuration"})]),
    Case("GET returns back the configuration", f"{O}", steps=[
        Step("POST", "/config", json={"_format_version": "3.0", "consumers": [
            {"username": "c1"}]}, status=201),
        Step("GET", "/config", status=200, body={"config": ANY})]),
    Case("flatten_errors=1 returns flattened_errors", f"{O}", steps=[
        Step("POST", "/config?flatten_errors=1", json={
            "_format_version": "3.0",
            "services": [{"name": "nope", "host": "localhost", "port": 1234,
                          "protocol": "nope", "tags": ["service-01"]}]},
             status=400, body={"code": 14, "flattened_errors": [{
                 "entity_type": "service", "entity_name": "nope",
                 "entity_tags": ["service-01"], "entity": ANY,
                 "errors": [{"type": "field", "field": "protocol", "message": ANY}]}]})]),
    Case("the file `kong config init` writes is accepted", "kong/templates/kong_yml.lua:1",
         steps=[Step("POST", "/config", raw=(
             b'_format_version: "3.0"\n_transform: true\n'
             b'_comment: This is a top level comment, and must be a string\n'
             b'_ignore:\n- This array entry will be ignored\n- as well as this one\n'),
             headers={"Content-Type": "text/yaml"}, status=201)]),
    Case("_comment and _ignore on entities, decK _workspace and _info",
         "kong/db/schema/others/declarative_config.lua:103", steps=[
             Step("POST", "/config", json={
                 "_format_version": "3.0", "_workspace": "default",
                 "_info": {"select_tags": ["team-a"]},
                 "services": [{"name": "ann", "host": "a.test", "_comment": "c",
                               "_ignore": [1, {"x": 2}]}]}, status=201),
             Step("GET", "/services/ann", status=200, body={"tags": ["team-a"]})]),
]
CASES += [
    Case("flattened errors of nested entities and array fields", f"{O}:1412", steps=[
        Step("POST", "/config?flatten_errors=1", json={
            "_format_version": "3.0",
            "consumers": [{"username": "credentials", "tags": ["consumer-04"],
                           "basicauth_credentials": [
                               {"username": "dont-add-extra-fields-yo", "password": "12354",
                                "extra_field": "NO!",
                                "tags": ["basicauth_credentials-02", "consumer-04"]}]}],
            "services": [{"name": "invalid-tags", "url": "https://localhost:1234",
                          "tags": ["service-07", "invalid-tags", [1, 2, 3], True]}]},
             status=400, body={"flattened_errors": [
                 {"entity_type": "service", "entity_name": "invalid-tags",
                  "entity_tags": ABSENT_KEY,
                  "errors": [{"field": "tags.3", "message": "expected a string",
                              "type": "field"},
                             {"field": "tags.4", "message": "expected a string",
                              "type": "field"}]},
                 {"entity_type": "basicauth_credential",
                  "entity_tags": ["basicauth_credentials-02", "consumer-04"],
                  "entity": {"username": "dont-add-extra-fields-yo", "extra_field": "NO!"},
                  "errors": [{"field": "extra_field", "message": "unknown field",
                              "type": "field"}]}]})]),
]
CASES += [
    Case("hides workspace related fields from /config response", f"{O}:413", steps=[
        Step("POST", "/config", json={"config": (
            '_format_version: "1.1"\nservices:\n- name: my-service\n'
            '  id: 0855b320-0dd2-547d-891d-601e9b38647f\n  url: https://example.com\n'
            '  plugins:\n  - name: key-auth\n    id: 661199ff-aa1c-5498-982c-d57a4bd6e48b\n'
            '  routes:\n  - name: my-route\n    id: 481a9539-f49c-51b6-b2e2-fe99ee68866c\n'
            '    paths:\n    - /\nconsumers:\n- username: my-user\n'
            '  id: 4b1b701d-de2b-5588-9aa2-3b97061d9f52\n  keyauth_credentials:\n'
            '  - key: my-key\n    id: 487ab43c-b2c9-51ec-8da5-367586ea2b61\n')},
             status=201, body={
                 "workspaces": ABSENT,
                 "consumers": {"4b1b701d-de2b-5588-9aa2-3b97061d9f52": {"ws_id": ABSENT}},
                 "keyauth_credentials": {"487ab43c-b2c9-51ec-8da5-367586ea2b61": {
                     "ws_id": ABSENT}},
                 "plugins": {"661199ff-aa1c-5498-982c-d57a4bd6e48b": {"ws_id": ABSENT}},
                 "services": {"0855b320-0dd2-547d-891d-601e9b38647f": {"ws_id": ABSENT}},
                 "routes": {"481a9539-f49c-51b6-b2e2-fe99ee68866c": {
                     "ws_id": ABSENT,
                     "service": {"id": "0855b320-0dd2-547d-891d-601e9b38647f"}}}})]),
]
TA = "21-truncated_arguments_spec.lua"
CASES += [
    Case("return 400 if reach maximum post arguments number", f"{TA}:34", steps=[
        Step("POST", "/plugins", raw=("name=ip-restriction&" + "&".join(
            f"config.allow={i}" for i in range(1, 1002))).encode(),
             headers={"Content-Type": "application/x-www-form-urlencoded"}, status=400,
             text='{"message":"Too many arguments"}')]),
    Case("return 400 if reach maximum uri arguments number", f"{TA}:53", steps=[
        Step("GET", "/plugins?" + "&".join(f"a={i}" for i in range(1, 1002)), status=400,
             text='{"message":"Too many arguments"}')]),
    Case("the maximum safe integer can be accurately represented as a decimal number",
         "25-max_safe_integer_spec.lua:79", steps=[
             Step("POST", "/config", json={"config": (
                 '_format_version: "1.1"\nservices:\n- name: my-service\n'
                 '  id: 0855b320-0dd2-547d-891d-601e9b38647f\n  url: https://localhost\n'
                 '  routes:\n  - name: my-route\n    id: 481a9539-f49c-51b6-b2e2-fe99ee68866c\n'
                 '    paths:\n    - /\n    regex_priority: 9007199254740992\n')}, status=201),
             Step("GET", "/routes/481a9539-f49c-51b6-b2e2-fe99ee68866c", status=200,
                  contains=["9007199254740992"])]),
]
