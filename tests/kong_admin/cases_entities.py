"""Cases from Kong's spec/02-integration/04-admin_api: services, routes, consumers, plugins,
upstreams and targets (file names in `src`, relative to that directory)."""
from __future__ import annotations

from kong_cases import ANY, ABSENT, Case, Re, Step, content_types

S = "10-services_routes_spec.lua"
R = "09-routes_routes_spec.lua"
C = "03-consumers_routes_spec.lua"
P = "04-plugins_routes_spec.lua"
U = "07-upstreams_routes_spec.lua"
T = "08-targets_routes_spec.lua"
F = "17-foreign-entity_spec.lua"

SCHEMA = {"code": 2, "name": "schema violation"}
TEN_SERVICES = {"services": [{"name": f"s{i}", "host": f"h{i}.test"} for i in range(10)]}

CASES: list[Case] = []

# ------------------------------------------------------------------------------- services
CASES += content_types("creates a service", f"{S}:53", lambda e: [
    e("POST", "/services", {"protocol": "http", "host": "service.test"}, status=201,
      body={"id": ANY, "created_at": ANY, "updated_at": ANY, "name": None, "protocol": "http",
            "host": "service.test", "port": 80, "connect_timeout": 60000,
            "write_timeout": 60000, "read_timeout": 60000})])
CASES += content_types("creates a service with url", f"{S}:78", lambda e: [
    e("POST", "/services", {"url": "http://service.test/"}, status=201,
      body={"name": None, "protocol": "http", "host": "service.test", "path": "/", "port": 80})])
CASES += content_types("'port' defaults to 443 when 'url' scheme is https", f"{S}:103",
                       lambda e: [e("POST", "/services", {"url": "https://service.test/"},
                                    status=201, body={"protocol": "https", "port": 443,
                                                      "path": "/"})])
CASES += content_types("client error with empty url", f"{S}", lambda e: [
    e("POST", "/services", {"url": ""} if e.__name__ == "enc_json" else {"url": " "},
      status=400)], only=("json",))
CASES += content_types("client error with invalid url", f"{S}:140", lambda e: [
    e("POST", "/services", {"url": " "}, status=400)])
CASES += [
    Case("retrieves the first page", f"{S}:162", config=TEN_SERVICES, steps=[
        Step("GET", "/services", status=200, body={"data": [ANY] * 10, "next": None})]),
    Case("paginates a set", f"{S}:169", config=TEN_SERVICES, steps=[
        Step("GET", "/services?size=3", status=200, body={"data": [ANY] * 3},
             save={"off": "offset"}),
        Step("GET", "/services?size=3&offset=$off", status=200, body={"data": [ANY] * 3},
             save={"off": "offset"}),
        Step("GET", "/services?size=3&offset=$off", status=200, body={"data": [ANY] * 3},
             save={"off": "offset"}),
        Step("GET", "/services?size=3&offset=$off", status=200,
             body={"data": [ANY], "next": None})]),
    Case("propagate in next a page size", f"{S}:195", config=TEN_SERVICES, steps=[
        Step("GET", "/services?size=3", status=200, save={"off": "offset"}),
        Step("GET", "/services?size=3", status=200,
             body={"next": "/services?offset=$off&size=3"})]),
    Case("data property is an empty array and not an empty hash", f"{S}:209", steps=[
        Step("GET", "/services", status=200, text='{"data":[],"next":null}')]),
    Case("handles invalid filters", f"{S}:219", steps=[
        Step("GET", "/services?foo=bar", status=200, body={"data": [], "next": None})]),
    Case("ignores an invalid body", f"{S}:226", steps=[
        Step("GET", "/services", raw=b"this fails if decoded as json",
             headers={"Content-Type": "application/json"}, status=200)]),
    Case("retrieves by id", f"{S}:241", steps=[
        Step("POST", "/services", json={"host": "x.test"}, status=201, save={"id": "id"}),
        Step("GET", "/services/$id", status=200, body={"id": "$id", "host": "x.test"})]),
    Case("retrieves by name", f"{S}:250", config={"services": [{"name": "byname",
                                                                  "host": "x.test"}]},
         steps=[Step("GET", "/services/byname", status=200, body={"name": "byname"})]),
    Case("retrieves by utf-8 name and percent-escaped utf-8 name", f"{S}:259", steps=[
        Step("POST", "/services", json={"name": "\u5186", "host": "x.test"}, status=201),
        Step("GET", "/services/%E5%86%86", status=200, body={"name": "\u5186"})]),
    Case("returns 404 if not found", f"{S}:274", steps=[
        Step("GET", "/services/8a71a4e4-0b35-4e6f-9a32-32dcbd0b4cd5", status=404,
             body={"message": "Not found"})]),
    Case("returns 404 if not found by name", f"{S}:279", steps=[
        Step("GET", "/services/not-found", status=404)]),
]
CASES += content_types("PATCH updates if found", f"{S}", lambda e: [
    Step("POST", "/services", json={"name": "p1", "host": "x.test"}, status=201,
         save={"id": "id"}),
    e("PATCH", "/services/$id", {"name": None, "protocol": "https"}, status=200,
      body={"name": None, "protocol": "https", "id": "$id"})], only=("json", "form"))
CASES += content_types("PATCH updates if found by name", f"{S}", lambda e: [
    Step("POST", "/services", json={"name": "p2", "host": "x.test"}, status=201,
         save={"id": "id"}),
    e("PATCH", "/services/p2", {"protocol": "https"}, status=200,
      body={"protocol": "https", "id": "$id", "name": "p2"})])
CASES += content_types("PATCH updates with url", f"{S}", lambda e: [
    Step("POST", "/services", json={"host": "x.test"}, status=201, save={"id": "id"}),
    e("PATCH", "/services/$id", {"url": "http://example.test:443"}, status=200,
      body={"protocol": "http", "host": "example.test", "port": 443, "path": None}),
    e("PATCH", "/services/$id", {"url": "https://example2.test:80/"}, status=200,
      body={"protocol": "https", "host": "example2.test", "port": 80, "path": "/"}),
    e("PATCH", "/services/$id", {"url": "http://example2.test"}, status=200,
      body={"protocol": "http", "host": "example2.test", "port": 80, "path": None})],
    only=("json", "form"))
CASES += [
    Case("deletes a service", f"{S}:433", steps=[
        Step("POST", "/services", json={"host": "x.test"}, status=201, save={"id": "id"}),
        Step("DELETE", "/services/$id", status=204, text=""),
        Step("GET", "/services/$id", status=404)]),
    Case("deletes a service by name", f"{S}:444",
         config={"services": [{"name": "del", "host": "x.test"}]},
         steps=[Step("DELETE", "/services/del", status=204, text=""),
                Step("GET", "/services/del", status=404)]),
    Case("DELETE returns HTTP 204 even if not found", f"{S}", steps=[
        Step("DELETE", "/services/8a71a4e4-0b35-4e6f-9a32-32dcbd0b4cd5", status=204)]),
    Case("DELETE returns HTTP 204 even if not found by name", f"{S}", steps=[
        Step("DELETE", "/services/not-found", status=204)]),
    Case("lists all routes belonging to service", f"{S}:471", config={"services": [
        {"name": "a", "host": "a.test", "routes": [{"paths": ["/a1"]}, {"paths": ["/a2"]}]},
        {"name": "b", "host": "b.test", "routes": [{"paths": ["/b"]}]}]},
        steps=[Step("GET", "/services/a/routes", status=200, body={"data": [ANY, ANY]})]),
    Case("handles malformed JSON body", f"{S}:858", steps=[
        Step("POST", "/services", raw=b'{"hello": "world"',
             headers={"Content-Type": "application/json"}, status=400,
             text='{"message":"Cannot parse JSON body"}')]),
]
WS = ("fastgw also accepts the ws/wss protocols (Kong Enterprise's WebSocket services), so "
      "the one_of list names them")
CASES += content_types("handles invalid input", f"{S}:867", lambda e: [
    e("POST", "/services", {}, status=400, body={"fields": {"host": "required field missing"}}),
    e("POST", "/services", {"host": "example.test", "protocol": "foo"}, status=400,
      body={"fields": {"protocol": "expected one of: grpc, grpcs, http, https, tcp, tls, "
                                   "tls_passthrough, udp"}})], only=("json", "form"))
for _c in CASES[-2:]:
    _c.deviation = WS
CASES += content_types("handles invalid url", f"{S}", lambda e: [
    e("POST", "/services", {"url": "invalid url"}, status=400, body={
        **SCHEMA, "message": "2 schema violations (host: required field missing; "
                             "path: should start with: /)",
        "fields": {"host": "required field missing", "path": "should start with: /"}})])
CASES += content_types("creates a plugin config for a Service", f"{S}:520", lambda e: [
    Step("POST", "/services", json={"name": "ps", "host": "x.test"}, status=201,
         save={"sid": "id"}),
    e("POST", "/services/ps/plugins", {"name": "key-auth",
                                       "config": {"key_names": ["apikey", "key"]}},
      status=201, body={"name": "key-auth", "service": {"id": "$sid"},
                        "config": {"key_names": ["apikey", "key"]}})])
CASES += content_types("returns 409 on conflict (same plugin name)", f"{S}:585", lambda e: [
    Step("POST", "/services", json={"name": "pc", "host": "x.test"}, status=201),
    e("POST", "/services/pc/plugins", {"name": "key-auth"}, status=201),
    e("POST", "/services/pc/plugins", {"name": "key-auth"}, status=409,
      body={"code": 5, "name": "unique constraint violation"})])
CASES += [
    Case("services/{service}/plugins handles invalid input", f"{S}", steps=[
        Step("POST", "/services", json={"name": "pi", "host": "x.test"}, status=201),
        Step("POST", "/services/pi/plugins", json={"name": "foo"}, status=400,
             body={"fields": {"name": "plugin 'foo' not enabled; add it to the 'plugins' "
                                       "configuration property"}})]),
    Case("updates a plugin (PATCH)", f"{S}", steps=[
        Step("POST", "/services", json={"name": "pu", "host": "x.test"}, status=201),
        Step("POST", "/services/pu/plugins", json={"name": "key-auth"}, status=201,
             save={"pid": "id"}),
        Step("PATCH", "/services/pu/plugins/$pid", json={"enabled": False}, status=200,
             body={"enabled": False, "name": "key-auth"})]),
    Case("PATCH plugin returns 404 if not found", f"{S}", steps=[
        Step("POST", "/services", json={"name": "pn", "host": "x.test"}, status=201),
        Step("PATCH", "/services/pn/plugins/8a71a4e4-0b35-4e6f-9a32-32dcbd0b4cd5",
             json={"enabled": False}, status=404)]),
    Case("retrieves a plugin by instance_name", f"{S}:814", steps=[
        Step("POST", "/services", json={"name": "pin", "host": "x.test"}, status=201),
        Step("POST", "/services/pin/plugins", json={"name": "key-auth",
                                                    "instance_name": "ka-1"}, status=201),
        Step("GET", "/services/pin/plugins/ka-1", status=200,
             body={"instance_name": "ka-1"})]),
    Case("deletes a plugin by instance_name", f"{S}:841", steps=[
        Step("POST", "/services", json={"name": "pdn", "host": "x.test"}, status=201),
        Step("POST", "/services/pdn/plugins", json={"name": "key-auth",
                                                    "instance_name": "ka-2"}, status=201),
        Step("DELETE", "/services/pdn/plugins/ka-2", status=204),
        Step("GET", "/services/pdn/plugins/ka-2", status=404)]),
]

# ------------------------------------------------------------------------------- routes
CASES += [
    Case("OPTIONS /routes", f"{R}", steps=[
        Step("OPTIONS", "/routes", status=204, text="", resp_headers={
            "Allow": "GET, HEAD, OPTIONS, POST",
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS, POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Allow-Origin": "*"})]),
]
CASES += content_types("creates a route", f"{R}:69", lambda e: [
    Step("POST", "/services", json={"host": "x.test"}, status=201, save={"sid": "id"}),
    e("POST", "/routes", {"protocols": ["http"], "hosts": ["my.route.test"],
                          "headers": {"location": ["my-location"]},
                          "service": {"id": "$sid"}}, status=201,
      body={"hosts": ["my.route.test"], "headers": {"location": ["my-location"]},
            "regex_priority": 0, "name": None, "paths": None, "preserve_host": False,
            "strip_path": True, "service": {"id": "$sid"}})], only=("json", "form"))
CASES += content_types("creates a route without service", f"{R}:128", lambda e: [
    e("POST", "/routes", {"protocols": ["http"], "hosts": ["my.route.test"]}, status=201,
      body={"hosts": ["my.route.test"], "service": None, "strip_path": True})],
    only=("json", "form"))
CASES += content_types("creates a complex route", f"{R}:185", lambda e: [
    Step("POST", "/services", json={"host": "x.test"}, status=201, save={"sid": "id"}),
    e("POST", "/routes", {"protocols": ["http"], "methods": ["GET", "POST", "PATCH"],
                          "hosts": ["foo.api.test", "bar.api.test"], "paths": ["/foo", "/bar"],
                          "service": {"id": "$sid"}}, status=201,
      body={"hosts": ["foo.api.test", "bar.api.test"], "paths": ["/foo", "/bar"],
            "methods": ["GET", "POST", "PATCH"], "service": {"id": "$sid"}})],
    only=("json", "form"))
CASES += content_types("creates a complex route by referencing a service by name", f"{R}:240",
                       lambda e: [
    Step("POST", "/services", json={"name": "rs", "host": "x.test"}, status=201,
         save={"sid": "id"}),
    e("POST", "/routes", {"protocols": ["http"], "paths": ["/foo"],
                          "service": {"name": "rs"}}, status=201,
      body={"service": {"id": "$sid"}})], only=("json", "form"))
CASES += [
    Case("routes: handles invalid input (must set one of)", f"{R}", steps=[
        Step("POST", "/routes", json={"protocols": ["http"]}, status=400, body={
            **SCHEMA, "fields": {"@entity": [ANY]}})]),
    Case("routes: invalid path", f"{R}", steps=[
        Step("POST", "/routes", json={"paths": ["nope"]}, status=400, body={
            **SCHEMA, "fields": {"paths": ["should start with: / (fixed path) or ~/ "
                                           "(regex path)"]}})]),
    Case("routes: foreign key violation", f"{R}", steps=[
        Step("POST", "/routes", json={"paths": ["/x"],
                                      "service": {"id": "8a71a4e4-0b35-4e6f-9a32-32dcbd0b4cd5"}},
             status=400, body={"code": 4, "name": "foreign key violation",
                               "fields": {"service": {
                                   "id": "8a71a4e4-0b35-4e6f-9a32-32dcbd0b4cd5"}}})]),
    Case("GET /routes/{route}/service retrieves by name", f"{R}", config={"services": [
        {"name": "fs", "host": "x.test", "routes": [{"name": "fr", "paths": ["/f"]}]}]},
        steps=[Step("GET", "/routes/fr/service", status=200, body={"name": "fs"})]),
    Case("GET /routes/{route}/service returns 404 if not found", f"{R}", steps=[
        Step("GET", "/routes/8a71a4e4-0b35-4e6f-9a32-32dcbd0b4cd5/service", status=404)]),
    Case("PATCH /routes/{route}/service updates with url", f"{R}",
         config={"services": [{"name": "pu", "host": "x.test",
                               "routes": [{"name": "pr", "paths": ["/f"]}]}]},
         steps=[Step("PATCH", "/routes/pr/service", json={"url": "http://edited2.test:1234/foo"},
                     status=200, body={"host": "edited2.test", "port": 1234, "path": "/foo"})]),
    Case("PATCH /routes/{route}/service handles invalid input", f"{R}",
         config={"services": [{"name": "pi", "host": "x.test",
                               "routes": [{"name": "pri", "paths": ["/f"]}]}]},
         steps=[Step("PATCH", "/routes/pri/service", json={"connect_timeout": "foobar"},
                     status=400, body={**SCHEMA, "message": "schema violation (connect_timeout: "
                                                            "expected an integer)",
                                       "fields": {"connect_timeout": "expected an integer"}})]),
    Case("DELETE /routes/{route}/service is 405 when referenced", f"{R}",
         config={"services": [{"name": "dr", "host": "x.test",
                               "routes": [{"name": "drr", "paths": ["/f"]}]}]},
         steps=[Step("DELETE", "/routes/drr/service", status=405,
                     body={"message": "Method not allowed"})]),
    Case("DELETE /routes/{route}/service 404 with non-existing route", f"{R}", steps=[
        Step("DELETE", "/routes/in-existent-route/service", status=404)]),
    Case("PUT /routes/{route}/service creates and associates", f"{R}",
         config={"routes": [{"name": "lone", "paths": ["/lone"]}]},
         steps=[Step("PUT", "/routes/lone/service", json={"name": "made", "host": "m.test"},
                     status=200, body={"name": "made", "host": "m.test"}, save={"sid": "id"}),
                Step("GET", "/routes/lone", status=200, body={"service": {"id": "$sid"}})]),
    Case("PUT /routes/{route}/service replaces the referenced service", f"{R}",
         config={"services": [{"name": "old", "host": "o.test",
                               "routes": [{"name": "pr2", "paths": ["/f"]}]}]},
         steps=[Step("PUT", "/routes/pr2/service", json={"name": "new", "host": "n.test"},
                     status=200, body={"name": "new", "host": "n.test", "port": 80}),
                Step("GET", "/services/new", status=200)]),
]
CASES += [
    Case("nested DELETE of an unknown route answers 404", f"{F}",
         config={"services": [{"name": "ns", "host": "x.test"}]},
         steps=[Step("DELETE", "/services/ns/routes/8a71a4e4-0b35-4e6f-9a32-32dcbd0b4cd5",
                     status=404, body={"message": "Not found"})]),
    Case("nested DELETE under an unknown parent answers 404", f"{F}", steps=[
        Step("DELETE", "/consumers/nobody/key-auth/8a71a4e4-0b35-4e6f-9a32-32dcbd0b4cd5",
             status=404)]),
]

# ------------------------------------------------------------------------------- consumers
CASES += content_types("creates a Consumer", f"{C}:62", lambda e: [
    e("POST", "/consumers", {"username": "consumer-1"}, status=201,
      body={"username": "consumer-1", "custom_id": None, "id": ANY})])
CASES += content_types("returns 409 on conflicting username", f"{C}:98", lambda e: [
    e("POST", "/consumers", {"username": "dup"}, status=201),
    e("POST", "/consumers", {"username": "dup"}, status=409, body={
        "code": 5, "name": "unique constraint violation",
        "message": "UNIQUE violation detected on '{username=\"dup\"}'",
        "fields": {"username": "dup"}})])
CASES += [
    Case("consumers: requires username or custom_id", f"{C}", steps=[
        Step("POST", "/consumers", json={}, status=400, body={
            **SCHEMA, "fields": {"@entity": ["at least one of these fields must be non-empty: "
                                             "'custom_id', 'username'"]}})]),
    Case("consumers: filter by custom_id", f"{C}", config={"consumers": [
        {"username": "a", "custom_id": "ca"}, {"username": "b", "custom_id": "cb"}]},
        steps=[Step("GET", "/consumers?custom_id=cb", status=200,
                    body={"data": [{"username": "b"}]})]),
    Case("consumers: paginates", f"{C}", config={"consumers": [
        {"username": f"u{i}"} for i in range(5)]},
        steps=[Step("GET", "/consumers?size=2", status=200, body={"data": [ANY, ANY],
                                                                  "offset": ANY})]),
    Case("consumers: invalid size", f"{C}", steps=[
        Step("GET", "/consumers?size=0", status=400, body={
            "code": 9, "name": "invalid size",
            "message": "size must be an integer between 1 and 1000"})]),
    Case("consumers: invalid offset", f"{C}", steps=[
        Step("GET", "/consumers?offset=x", status=400, body={
            "code": 7, "name": "invalid offset"})]),
    Case("PUT creates a consumer by username", f"{C}", steps=[
        Step("PUT", "/consumers/put-user", json={}, status=200,
             body={"username": "put-user"}),
        Step("GET", "/consumers/put-user", status=200)]),
    Case("consumer key-auth credential with ttl expires", "09-key-auth/01-api_spec.lua:120",
         config={"consumers": [{"username": "ttl"}]},
         # created_at is in whole seconds (as Kong's), so a ttl of 2 lasts between 1 and 2 s
         steps=[Step("POST", "/consumers/ttl/key-auth", json={"key": "tk", "ttl": 2},
                     status=201, body={"key": "tk", "ttl": ANY}),
                Step("GET", "/consumers/ttl/key-auth/tk", status=200),
                Step("GET", "/consumers/ttl/key-auth/tk", status=404, sleep=2.2)]),
]

# ------------------------------------------------------------------------------- plugins
CASES += [
    Case("plugins: unknown plugin name", f"{P}", steps=[
        Step("POST", "/plugins", json={"name": "nope"}, status=400, body={
            **SCHEMA, "fields": {"name": "plugin 'nope' not enabled; add it to the 'plugins' "
                                         "configuration property"}})]),
    Case("plugins: nested config field error", f"{P}", steps=[
        Step("POST", "/plugins", json={"name": "rate-limiting", "config": {"minute": "x"}},
             status=400, body={**SCHEMA, "fields": {"config": {"minute": "expected a number"}}})]),
    Case("plugins: config entity check is an @entity array", f"{P}", steps=[
        Step("POST", "/plugins", json={"name": "rate-limiting", "config": {}}, status=400,
             body={**SCHEMA, "fields": {"config": {"@entity": [
                 "at least one of these fields must be non-empty: 'config.second', "
                 "'config.minute', 'config.hour', 'config.day', 'config.month', "
                 "'config.year'"]}}})]),
    Case("plugins: unknown config field", f"{P}", steps=[
        Step("POST", "/plugins", json={"name": "key-auth", "config": {"nope": 1}}, status=400,
             body={**SCHEMA, "fields": {"config": {"nope": "unknown field"}}})]),
    Case("plugins: retrieves a plugin by id", f"{P}", steps=[
        Step("POST", "/plugins", json={"name": "cors"}, status=201, save={"id": "id"}),
        Step("GET", "/plugins/$id", status=200, body={"name": "cors", "id": "$id"})]),
    Case("plugins: PATCH config merges", f"{P}", steps=[
        Step("POST", "/plugins", json={"name": "rate-limiting", "config": {"minute": 5}},
             status=201, save={"id": "id"}),
        Step("PATCH", "/plugins/$id", json={"config": {"hour": 100}}, status=200,
             body={"config": {"minute": 5, "hour": 100}})]),
    Case("plugins: cors with origins *", "13-cors/01-access_spec.lua:300", steps=[
        Step("POST", "/plugins", json={"name": "cors", "config": {"origins": ["*"]}},
             status=201, body={"config": {"origins": ["*"]}})]),
    Case("plugins: /plugins/enabled", f"{P}", steps=[
        Step("GET", "/plugins/enabled", status=200, body={"enabled_plugins": ANY})]),
    Case("plugins: rate-limiting sync_rate outside redis", "23-rate-limiting/01-schema_spec.lua:90",
         steps=[Step("POST", "/plugins", json={"name": "rate-limiting",
                                                "config": {"minute": 5, "sync_rate": 10}},
                     status=400, body={**SCHEMA, "fields": {"config": {"@entity": [
                         "sync_rate can only be used with the redis policy"]}}})]),
]

# ------------------------------------------------------------------------------- upstreams
CASES += content_types("creates an upstream with defaults", f"{U}:43", lambda e: [
    e("POST", "/upstreams", {"name": "my.upstream"}, status=201, body={
        "name": "my.upstream", "algorithm": "round-robin", "hash_on": "none",
        "hash_fallback": "none", "slots": 10000})])
CASES += [
    Case("upstreams: invalid name", f"{U}", steps=[
        Step("POST", "/upstreams", json={"name": "invalid name"}, status=400,
             body={**SCHEMA})]),
    Case("upstreams: unique name", f"{U}", steps=[
        Step("POST", "/upstreams", json={"name": "u1"}, status=201),
        Step("POST", "/upstreams", json={"name": "u1"}, status=409,
             body={"code": 5, "fields": {"name": "u1"}})]),
    Case("upstreams: hash_on header requires hash_on_header", f"{U}", steps=[
        Step("POST", "/upstreams", json={"name": "hh", "hash_on": "header"}, status=400,
             body={**SCHEMA})]),
    Case("upstreams: GET by name", f"{U}", config={"upstreams": [{"name": "gu"}]}, steps=[
        Step("GET", "/upstreams/gu", status=200, body={"name": "gu"})]),
    Case("upstreams: DELETE cascades targets", f"{U}", config={"upstreams": [
        {"name": "du", "targets": [{"target": "127.0.0.1:9"}]}]}, steps=[
        Step("DELETE", "/upstreams/du", status=204),
        Step("GET", "/upstreams/du", status=404)]),
]

# ------------------------------------------------------------------------------- targets
TU = {"upstreams": [{"name": "tu", "targets": [{"target": "api-1:80", "weight": 10},
                                               {"target": "api-2:80", "weight": 10}]}]}
CASES += [
    Case("/targets returns a 404", f"{T}", steps=[Step("GET", "/targets", status=404)]),
]
CASES += content_types("creates a target with defaults", f"{T}:79", lambda e: [
    Step("POST", "/upstreams", json={"name": "tdu"}, status=201),
    e("POST", "/upstreams/tdu/targets", {"target": "mashape.test"}, status=201,
      body={"target": "mashape.test:8000", "weight": 100})])
CASES += content_types("creates a target with weight = 0", f"{T}:115", lambda e: [
    Step("POST", "/upstreams", json={"name": "tw0"}, status=201),
    e("POST", "/upstreams/tw0/targets", {"target": "zero.test:8080", "weight": 0},
      status=201, body={"weight": 0})])
CASES += content_types("targets: handles invalid input", f"{T}", lambda e: [
    Step("POST", "/upstreams", json={"name": "tiv"}, status=201),
    e("POST", "/upstreams/tiv/targets", {"target": "a.test", "weight": 65536 * 100},
      status=400, body={**SCHEMA, "fields": {"weight": "value should be between 0 and 65535"}})],
    only=("json",))
for _m in ("PUT", "PATCH", "DELETE"):
    CASES.append(Case(f"targets collection returns 405 on {_m}", f"{T}:196", config=TU, steps=[
        Step(_m, "/upstreams/tu/targets/", json={"target": "konghq.test"}, status=405)]))
CASES += [
    Case("fails to create duplicated targets", f"{T}:212", config={"upstreams": [{"name": "tdup"}]},
         steps=[Step("POST", "/upstreams/tdup/targets", json={"target": "single-target.test:8080",
                                                               "weight": 1}, status=201),
                Step("POST", "/upstreams/tdup/targets", json={"target": "single-target.test:8080",
                                                               "weight": 100}, status=409)]),
    Case("targets: GET lists", f"{T}", config=TU, steps=[
        Step("GET", "/upstreams/tu/targets", status=200, body={"data": [ANY, ANY]})]),
    Case("targets/all paginates with next ending in /targets/all", f"{T}", config=TU,
         steps=[Step("GET", "/upstreams/tu/targets/all?size=1", status=200,
                     body={"data": [ANY], "next": ANY}, save={"off": "offset"}),
                Step("GET", "/upstreams/tu/targets/all?size=1", status=200,
                     body={"next": "/upstreams/tu/targets/all?offset=$off&size=1"})]),
    Case("targets: GET returns target entity", f"{T}", config=TU, steps=[
        Step("GET", "/upstreams/tu/targets/api-1:80", status=200,
             body={"target": "api-1:80", "weight": 10, "upstream": {"id": ANY}})]),
    Case("targets: PATCH is allowed and works", f"{T}", config=TU, steps=[
        Step("PATCH", "/upstreams/tu/targets/api-1:80", json={"weight": 659}, status=200,
             body={"weight": 659, "target": "api-1:80"})]),
    Case("targets: PUT updates target (by id)", f"{T}", config=TU, steps=[
        Step("GET", "/upstreams/tu/targets/api-2:80", status=200, save={"tid": "id"}),
        Step("PUT", "/upstreams/tu/targets/$tid", json={"target": "api-2:801"}, status=200),
        Step("GET", "/upstreams/tu/targets/$tid", status=200,
             body={"target": "api-2:801", "id": "$tid"})]),
    Case("targets: PUT updates target (by target)", f"{T}", config=TU, steps=[
        Step("PUT", "/upstreams/tu/targets/api-2:80", json={"target": "api-2:801"},
             status=200, body={"target": "api-2:801"}),
        Step("GET", "/upstreams/tu/targets/api-2:80", status=404),
        Step("GET", "/upstreams/tu/targets/api-2:801", status=200)]),
    Case("targets: DELETE by target", f"{T}", config=TU, steps=[
        Step("DELETE", "/upstreams/tu/targets/api-1:80", status=204),
        Step("GET", "/upstreams/tu/targets/api-1:80", status=404)]),
    Case("targets: DELETE by id", f"{T}", config=TU, steps=[
        Step("GET", "/upstreams/tu/targets/api-1:80", status=200, save={"tid": "id"}),
        Step("DELETE", "/upstreams/tu/targets/$tid", status=204),
        Step("GET", "/upstreams/tu/targets/$tid", status=404)]),
    Case("healthcheck endpoints listed in /endpoints", f"{T}", steps=[
        Step("GET", "/endpoints", status=200, body={"data": ANY})]),
]

__all__ = ["CASES", "ABSENT"]

# ------------------------------------------------------------------------------- consumers (2)
ONE_CONSUMER = {"consumers": [{"username": "bob", "custom_id": "bob-1"}]}
TEN_CONSUMERS = {"consumers": [{"username": f"c{i}"} for i in range(10)]}
AT_LEAST = "at least one of these fields must be non-empty: 'custom_id', 'username'"
CASES += content_types("consumers: handles invalid input", f"{C}:81", lambda e: [
    e("POST", "/consumers", {}, status=400, body={
        "name": "schema violation", "fields": {"@entity": [AT_LEAST]}})], only=("form", "multipart"))
CASES += content_types("returns 400 on conflicting custom_id", f"{C}:116", lambda e: [
    e("POST", "/consumers", {"username": "tom", "custom_id": "bob-1"}, status=409, body={
        "name": "unique constraint violation",
        "message": "UNIQUE violation detected on '{custom_id=\"bob-1\"}'"})], config=ONE_CONSUMER)
CASES += content_types("consumers: updates by username", f"{C}:390", lambda e: [
    e("PATCH", "/consumers/bob", {"username": "bobby"}, status=200,
      body={"username": "bobby", "custom_id": "bob-1"})], config=ONE_CONSUMER)
CASES += content_types("updates by username and custom_id with previous values", f"{C}:411",
                       lambda e: [e("PATCH", "/consumers/bob", {"username": "bob",
                                                                "custom_id": "bob-1"},
                                    status=200, body={"username": "bob", "custom_id": "bob-1"})],
                       config=ONE_CONSUMER)
CASES += content_types("consumers: PATCH returns 404 if not found", f"{C}:435", lambda e: [
    e("PATCH", "/consumers/_inexistent_", {"username": "x"}, status=404)])
CASES += content_types("creates if not exists", f"{C}:482", lambda e: [
    e("PUT", "/consumers/0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c4f", {"custom_id": "cid"},
      status=200, body={"custom_id": "cid", "id": "0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c4f"})])
CASES += content_types("creates if not exists by username", f"{C}:497", lambda e: [
    e("PUT", "/consumers/new-name", {}, status=200, body={"username": "new-name",
                                                          "custom_id": None})])
CASES += content_types("replaces if found by username", f"{C}:529", lambda e: [
    e("PUT", "/consumers/bob", {"custom_id": "new-cid"}, status=200,
      body={"username": "bob", "custom_id": "new-cid"}, save={"id": "id"}),
    e("PUT", "/consumers/bob", {}, status=200,
      body={"id": "$id", "username": "bob", "custom_id": None})], config=ONE_CONSUMER)
CASES += content_types("consumers: PUT handles invalid input", f"{C}:566", lambda e: [
    e("PUT", "/consumers/0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c4f", {}, status=400, body={
        "code": 2, "name": "schema violation", "fields": {"@entity": [AT_LEAST]},
        "message": f"schema violation ({AT_LEAST})"})], only=("json",))
CASES += [
    Case("returns 415 on invalid content-type", f"{C}:135", steps=[
        Step("POST", "/consumers", raw=b'{"hello": "world"}', headers={"Content-Type": "invalid"},
             status=415)]),
    Case("returns 415 on missing content-type with body", f"{C}:144", steps=[
        Step("POST", "/consumers", raw=b"invalid", status=415)]),
    Case("returns 400 on missing body with application/json", f"{C}:152", steps=[
        Step("POST", "/consumers", headers={"Content-Type": "application/json"}, status=400,
             body={"message": "Cannot parse JSON body"})]),
    Case("returns 400 on missing body with multipart/form-data", f"{C}:162", steps=[
        Step("POST", "/consumers", headers={"Content-Type": "multipart/form-data"}, status=400,
             body={"name": "schema violation", "fields": {"@entity": [AT_LEAST]}})]),
    Case("returns 400 on missing body with multipart/x-www-form-urlencoded", f"{C}:175", steps=[
        Step("POST", "/consumers", headers={"Content-Type": "application/x-www-form-urlencoded"},
             status=400, body={"name": "schema violation", "fields": {"@entity": [AT_LEAST]}})]),
    Case("returns 400 on missing body with no content-type header", f"{C}:188", steps=[
        Step("POST", "/consumers", status=400,
             body={"name": "schema violation", "fields": {"@entity": [AT_LEAST]}})]),
    Case("consumers: retrieves the first page", f"{C}:213", config=TEN_CONSUMERS, steps=[
        Step("GET", "/consumers", status=200, body={"data": [ANY] * 10})]),
    Case("not crashed by empty custom_id #KAG-867", f"{C}:250", steps=[
        Step("GET", "/consumers?custom_id=", status=400),
        Step("GET", "/consumers?custom_id", status=400)]),
    Case("allows filtering by uuid-like custom_id", f"{C}:269", config={"consumers": [
        {"custom_id": "5f5bf33a-9d46-4f4c-b1cf-0bfbcb5b3d39"}, {"username": "other"}]}, steps=[
        Step("GET", "/consumers?custom_id=5f5bf33a-9d46-4f4c-b1cf-0bfbcb5b3d39", status=200,
             body={"data": [{"custom_id": "5f5bf33a-9d46-4f4c-b1cf-0bfbcb5b3d39"}]})]),
    Case("returns empty json array when consumer does not exist", f"{C}:280", steps=[
        Step("GET", "/consumers?custom_id=does-not-exist", status=200,
             text='{"data":[],"next":null}')]),
    Case("returns bad request for empty tags", f"{C}:285", steps=[
        Step("GET", "/consumers?tags=", status=400,
             body={"message": "invalid option (tags: cannot be null)"})]),
    Case("consumers: returns 405 on invalid method", f"{C}:296", steps=[
        Step(m, "/consumers", json={}, status=405, body={"message": "Method not allowed"})
        for m in ("DELETE", "PATCH")]),
    Case("retrieves by urlencoded username", f"{C}:333", config={"consumers": [
        {"username": "a b/c"}]}, steps=[
        Step("GET", "/consumers/a%20b%2Fc", status=200, body={"username": "a b/c"})]),
    Case("consumers: returns 404 if not found", f"{C}:357", steps=[
        Step("GET", "/consumers/_inexistent_", status=404)]),
    Case("consumers: PATCH returns 415 on missing content-type with body", f"{C}:458",
         config=ONE_CONSUMER, steps=[Step("PATCH", "/consumers/bob", raw=b"invalid",
                                          status=415)]),
    Case("consumers: PATCH returns 400 on missing body with application/json", f"{C}:467",
         config=ONE_CONSUMER, steps=[Step("PATCH", "/consumers/bob",
                                          headers={"Content-Type": "application/json"},
                                          status=400, body={"message": "Cannot parse JSON body"})]),
    Case("consumers: PUT handles malformed JSON body", f"{C}:556", config=ONE_CONSUMER, steps=[
        Step("PUT", "/consumers/bob", raw=b'{"hello": "world"',
             headers={"Content-Type": "application/json"}, status=400,
             text='{"message":"Cannot parse JSON body"}')]),
    Case("consumers: deletes by username", f"{C}:599", config=ONE_CONSUMER, steps=[
        Step("DELETE", "/consumers/bob", status=204, text=""),
        Step("GET", "/consumers/bob", status=404)]),
    Case("consumer plugins: creates a plugin config using a consumer username", f"{C}:644",
         config=ONE_CONSUMER, steps=[
             Step("POST", "/consumers/bob/plugins", json={"name": "rate-limiting",
                                                          "config": {"minute": 10}},
                  status=201, body={"name": "rate-limiting", "consumer": {"id": ANY},
                                    "config": {"minute": 10}})]),
    Case("consumer plugins: returns 409 on conflict", f"{C}:681", config=ONE_CONSUMER, steps=[
        Step("POST", "/consumers/bob/plugins", json={"name": "rate-limiting",
                                                     "config": {"minute": 10}}, status=201),
        Step("POST", "/consumers/bob/plugins", json={"name": "rate-limiting",
                                                     "config": {"minute": 10}}, status=409,
             body={"name": "unique constraint violation"})]),
    Case("only retrieves if associated to the correct consumer", f"{C}:784", config={
        "consumers": [{"username": "a", "plugins": [{"name": "rate-limiting",
                                                      "config": {"minute": 1}}]},
                      {"username": "b"}]}, steps=[
        Step("GET", "/consumers/a/plugins", status=200, body={"data": [ANY]},
             save={"pid": "data.0.id"}),
        Step("GET", "/consumers/a/plugins/$pid", status=200),
        Step("GET", "/consumers/b/plugins/$pid", status=404)]),
    Case("doesn't override a plugin config if partial", f"{C}:851", config={
        "consumers": [{"username": "a", "plugins": [
            {"name": "rate-limiting", "config": {"minute": 5, "hour": 100}}]}]}, steps=[
        Step("GET", "/consumers/a/plugins", status=200, save={"pid": "data.0.id"}),
        Step("PATCH", "/consumers/a/plugins/$pid", json={"config": {"minute": 7}}, status=200,
             body={"config": {"minute": 7, "hour": 100}})]),
    Case("consumer plugins: updates the enabled property", f"{C}:890", config={
        "consumers": [{"username": "a", "plugins": [
            {"name": "rate-limiting", "config": {"minute": 5}}]}]}, steps=[
        Step("GET", "/consumers/a/plugins", status=200, save={"pid": "data.0.id"}),
        Step("PATCH", "/consumers/a/plugins/$pid", json={"enabled": False}, status=200,
             body={"enabled": False})]),
    Case("consumer plugins: PUT creates if not found", f"{C}:965", config=ONE_CONSUMER, steps=[
        Step("PUT", "/consumers/bob/plugins/0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c4e",
             json={"name": "rate-limiting", "config": {"minute": 3}}, status=200,
             body={"id": "0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c4e", "consumer": {"id": ANY}})]),
]

# ------------------------------------------------------------------------------- plugins (2)
FOUR_PLUGINS = {"services": [
    {"name": f"service-{i}", "host": "127.0.0.1", "port": 15555,
     "routes": [{"hosts": [f"route_{i}.test"]}],
     "plugins": [{"name": "key-auth", "instance_name": f"key-auth-{i}",
                  "config": {"key_names": ["testkey"]}}]} for i in (1, 2, 3)] + [
    {"name": "service-4", "host": "127.0.0.1", "port": 15555,
     "plugins": [{"name": "key-auth", "instance_name": "\u5186",
                  "config": {"key_names": ["testkey"]}}]}]}
CASES += [
    Case("returns a list of enabled plugins on this node", f"{P}:41", steps=[
        Step("GET", "/plugins/enabled", status=200, body={"enabled_plugins": ANY})]),
    Case("retrieves all plugins configured", f"{P}:105", config=FOUR_PLUGINS, steps=[
        Step("GET", "/plugins", status=200, body={"data": [ANY] * 4})]),
    Case("plugins: returns 405 on invalid method", f"{P}:115", steps=[
        Step(m, "/plugins", json={}, status=405, body={"message": "Method not allowed"})
        for m in ("DELETE", "PATCH")]),
    Case("plugins: retrieves a plugin by instance_name", f"{P}:141", config=FOUR_PLUGINS, steps=[
        Step("GET", "/plugins/key-auth-1", status=200, body={"instance_name": "key-auth-1"})]),
    Case("plugins: returns 404 if not found", f"{P}:151", steps=[
        Step("GET", "/plugins/f4aecadc-05c7-11e6-8d41-1f3b3d5fa15c", status=404)]),
    Case("plugins: returns 404 if not found by instance_name", f"{P}:158", steps=[
        Step("GET", "/plugins/not-found", status=404)]),
    Case("plugins: retrieves by utf-8 name and percent-escaped utf-8 name", f"{P}:165",
         config=FOUR_PLUGINS, steps=[Step("GET", "/plugins/%E5%86%86", status=200,
                                          body={"instance_name": "\u5186"})]),
    Case("plugins: can create a plugin (PUT)", f"{P}:182", config=FOUR_PLUGINS, steps=[
        Step("GET", "/services/service-1", status=200, save={"sid": "id"}),
        Step("PUT", "/plugins/0f0bd3a4-4ff0-4ed6-9c54-2a2d81bd9c41", json={
            "name": "rate-limiting", "config": {"minute": 1}, "service": {"id": "$sid"}},
             status=200)]),
    Case("plugins: can create a plugin by instance_name", f"{P}:202", config=FOUR_PLUGINS, steps=[
        Step("GET", "/services/service-1", status=200, save={"sid": "id"}),
        Step("PUT", "/plugins/name-x", json={"name": "rate-limiting", "config": {"minute": 1},
                                             "service": {"id": "$sid"}},
             status=200, body={"instance_name": "name-x"})]),
    Case("plugins: can upsert a plugin by instance_name", f"{P}:221", config=FOUR_PLUGINS, steps=[
        Step("GET", "/services/service-4", status=200, save={"sid": "id"}),
        Step("PUT", "/plugins/name-y", json={"name": "cors", "service": {"id": "$sid"},
                                             "config": {"origins": ["a.test"]}},
             status=200, save={"pid": "id"}),
        Step("PUT", "/plugins/name-y", json={"name": "cors", "service": {"id": "$sid"},
                                             "config": {"origins": ["b.test"]}},
             status=200, body={"id": "$pid", "config": {"origins": ["b.test"]}})]),
    Case("plugins: updates a plugin by instance_name", f"{P}:282", config=FOUR_PLUGINS, steps=[
        Step("PATCH", "/plugins/key-auth-2", json={"enabled": False}, status=200,
             body={"enabled": False})]),
    Case("updates a plugin (removing foreign key reference)", f"{P}:313", config=FOUR_PLUGINS,
         steps=[Step("PATCH", "/plugins/key-auth-2", json={"service": None}, status=200,
                     body={"service": None})]),
    Case("does not infer json input", f"{P}:331", config=FOUR_PLUGINS, steps=[
        Step("PATCH", "/plugins/key-auth-2", json={"tags": None}, status=200)]),
    Case("plugins: PATCH handles invalid input", f"{P}:343", config=FOUR_PLUGINS, steps=[
        Step("PATCH", "/plugins/key-auth-1", json={"foo": "bar"}, status=400, body={
            "message": "schema violation (foo: unknown field)", "name": "schema violation",
            "fields": {"foo": "unknown field"}, "code": 2}),
        Step("GET", "/plugins/key-auth-1", status=200,
             body={"config": {"key_names": ["testkey"]}})]),
    Case("handles invalid config, see #9224", f"{P}:365", config=FOUR_PLUGINS, steps=[
        Step("PATCH", "/plugins/key-auth-1", json={"config": "bar"}, status=400, body={
            "message": "schema violation (config: expected a record)",
            "name": "schema violation", "fields": {"config": "expected a record"}, "code": 2})]),
    Case("plugins: PATCH returns 404 if not found", f"{P}:388", steps=[
        Step("PATCH", "/plugins/f4aecadc-05c7-11e6-8d41-1f3b3d5fa15c", json={"enabled": False},
             status=404)]),
    Case("plugins: deletes by instance_name", f"{P}:408", config=FOUR_PLUGINS, steps=[
        Step("DELETE", "/plugins/%E5%86%86", status=204, text=""),
        Step("GET", "/plugins/%E5%86%86", status=404)]),
    Case("plugins: DELETE returns 204 if not found", f"{P}:417", steps=[
        Step("DELETE", "/plugins/f4aecadc-05c7-11e6-8d41-1f3b3d5fa15c", status=204)]),
    Case("plugins: DELETE returns 204 if not found by instance_name", f"{P}:425", steps=[
        Step("DELETE", "/plugins/not-found", status=204)]),
    Case("returns the schema of all bundled plugins", f"{P}:436", steps=[
        Step("GET", f"/schemas/plugins/{p}", status=200, body={"fields": ANY,
                                                                "entity_checks": ANY})
        for p in ("key-auth", "basic-auth", "jwt", "acl", "cors", "rate-limiting",
                  "ip-restriction", "request-transformer", "response-transformer",
                  "prometheus", "correlation-id", "request-size-limiting", "bot-detection",
                  "file-log", "http-log", "opentelemetry")]),
    Case("returns nested records and empty array defaults as arrays", f"{P}:448", steps=[
        Step("GET", "/schemas/plugins/request-transformer", status=200,
             contains=['"default":[]'])]),
    Case("plugins schema: returns 404 on invalid plugin", f"{P}:460", steps=[
        Step("GET", "/schemas/plugins/foobar", status=404,
             body={"message": "No plugin named 'foobar'"})]),
]

# ------------------------------------------------------------------------------- upstreams (2)
COND_ON = "failed conditional validation given value of field 'hash_on'"
COND_FB = "failed conditional validation given value of field 'hash_fallback'"
BAD_HDR = ("bad header name 'not a <> valid <> header name', allowed characters are A-Z, "
           "a-z, 0-9, '_', and '-'")
CASES += content_types("creates an upstream without defaults", f"{U}:61", lambda e: [
    e("POST", "/upstreams", {"name": "my.upstream", "slots": 10, "hash_on": "consumer",
                             "hash_fallback": "ip", "hash_on_header": "HeaderName",
                             "hash_fallback_header": "HeaderFallback"}, status=201,
      body={"slots": 10, "hash_on": "consumer", "hash_fallback": "ip",
            "hash_on_header": "HeaderName", "hash_fallback_header": "HeaderFallback"})])
CASES += content_types("creates an upstream with hash_on cookie parameters", f"{U}:88",
                       lambda e: [e("POST", "/upstreams", {
                           "name": "my.upstream", "hash_on": "cookie",
                           "hash_on_cookie": "CookieName1", "hash_on_cookie_path": "/foo"},
                           status=201, body={"hash_on": "cookie", "hash_on_cookie": "CookieName1",
                                             "hash_on_cookie_path": "/foo"})])
CASES += content_types("creates an upstream with 2 header hashes", f"{U}:111", lambda e: [
    e("POST", "/upstreams", {"name": "my.upstream", "slots": 10, "hash_on": "header",
                             "hash_fallback": "header", "hash_on_header": "HeaderName1",
                             "hash_fallback_header": "HeaderName2"}, status=201,
      body={"hash_on_header": "HeaderName1", "hash_fallback_header": "HeaderName2"})])
CASES += content_types("creates an upstream with 65536 slots", f"{U}:138", lambda e: [
    e("POST", "/upstreams", {"name": "my.upstream", "slots": 65536}, status=201,
      body={"slots": 65536})])
CASES += content_types("creates an upstream with host header", f"{U}:157", lambda e: [
    e("POST", "/upstreams", {"name": "my.upstream", "host_header": "localhost"}, status=201,
      body={"host_header": "localhost", "hash_on_header": None})])
_UP_INVALID = [
    ({"slots": 50}, {"name": "required field missing"}),
    ({"name": "some invalid host name"},
     {"name": "Invalid name ('some invalid host name'); must be a valid hostname"}),
    ({"name": "my.upstream", "slots": 2 ** 16 + 1},
     {"slots": "value should be between 10 and 65536"}),
    ({"name": "my.upstream", "hash_on": "something that is invalid"},
     {"hash_on": "expected one of: none, consumer, ip, header, cookie, path, query_arg, "
                 "uri_capture"}),
    ({"name": "my.upstream", "hash_on": "consumer", "hash_fallback": "consumer"},
     {"@entity": [COND_ON], "hash_fallback": "expected one of: none, ip, header, cookie, "
                                              "path, query_arg, uri_capture"}),
    ({"name": "my.upstream", "hash_on": "header", "hash_fallback": "consumer",
      "hash_on_header": "not a <> valid <> header name"}, {"hash_on_header": BAD_HDR}),
    ({"name": "my.upstream", "hash_on": "header", "hash_fallback": "header",
      "hash_on_header": "headername", "hash_fallback_header": "headername"},
     {"@entity": ["values of these fields must be distinct: 'hash_on_header', "
                  "'hash_fallback_header'"]}),
    ({"name": "my.upstream", "hash_on": "cookie", "hash_on_cookie": "cookiename",
      "hash_fallback": "header", "hash_fallback_header": "Cool-Header"},
     {"@entity": [COND_ON], "hash_fallback": "expected one of: none"}),
    ({"name": "my.upstream", "hash_on": "header", "hash_fallback": "header",
      "hash_fallback_header": "HeaderName"},
     {"@entity": [COND_ON], "hash_on_header": "required field missing"}),
    ({"name": "my.upstream", "hash_on": "consumer", "hash_fallback": "header"},
     {"@entity": [COND_FB], "hash_fallback_header": "required field missing"}),
]
for _i, (_body, _fields) in enumerate(_UP_INVALID):
    CASES.append(Case(f"upstreams: handles invalid input #{_i + 1}", f"{U}:187", steps=[
        Step("POST", "/upstreams", json=_body, status=400,
             body={"name": "schema violation", "fields": _fields})]))
CASES += [
    Case("upstreams: handles malformed JSON body", f"{U}:177", steps=[
        Step("POST", "/upstreams", raw=b'{"hello": "world"',
             headers={"Content-Type": "application/json"}, status=400,
             text='{"message":"Cannot parse JSON body"}')]),
    Case("upstreams: returns 409 on conflict", f"{U}:462", config={"upstreams": [
        {"name": "my.upstream"}]}, steps=[
        Step("POST", "/upstreams", json={"name": "my.upstream"}, status=409,
             body={"name": "unique constraint violation"})]),
    Case("upstreams: PUT creates if not exists", f"{U}:496", steps=[
        Step("PUT", "/upstreams/my-upstream", json={}, status=200,
             body={"name": "my-upstream"})]),
    Case("upstreams: PUT replaces if exists", f"{U}:514", config={"upstreams": [
        {"name": "my-upstream", "slots": 100}]}, steps=[
        Step("PUT", "/upstreams/my-upstream", json={"slots": 200}, status=200,
             body={"name": "my-upstream", "slots": 200}),
        Step("PUT", "/upstreams/my-upstream", json={}, status=200,
             body={"slots": 10000})]),
    Case("upstreams: returns bad request for empty tags", f"{U}:640", steps=[
        Step("GET", "/upstreams?tags=", status=400,
             body={"message": "invalid option (tags: cannot be null)"})]),
    Case("upstreams: data property is an empty array", f"{U}:656", steps=[
        Step("GET", "/upstreams", status=200, text='{"data":[],"next":null}')]),
    Case("upstreams: deletes by name", f"{U}:691", config={"upstreams": [{"name": "d1"}]},
         steps=[Step("DELETE", "/upstreams/d1", status=204),
                Step("GET", "/upstreams/d1", status=404)]),
    Case("can delete an upstream with targets", f"{U}:780", config={"upstreams": [
        {"name": "d2", "targets": [{"target": "127.0.0.1:8000"}, {"target": "127.0.0.1:8001"}]}]},
        steps=[Step("DELETE", "/upstreams/d2", status=204),
               Step("GET", "/upstreams/d2/targets", status=404)]),
    Case("upstreams: returns 405 on invalid method", f"{U}:823", steps=[
        Step(m, "/upstreams", json={}, status=405, body={"message": "Method not allowed"})
        for m in ("DELETE", "PATCH")]),
]

# ------------------------------------------------------------------------------- routes (2)
TEN_ROUTES = {"routes": [{"paths": [f"/route-{i}"]} for i in range(10)]}
ONE_ROUTE = {"services": [{"name": "rsvc", "host": "x.test", "routes": [
    {"name": "my-route", "paths": ["/my-route"], "hosts": ["my.route.test"]}]}]}
PROTO_ONE_OF = "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp"
CASES += [
    Case("routes: handles malformed JSON body", f"{R}:296", steps=[
        Step("POST", "/routes", raw=b'{"hello": "world"',
             headers={"Content-Type": "application/json"}, status=400,
             text='{"message":"Cannot parse JSON body"}')]),
    Case("routes: handles invalid input (unknown protocol)", f"{R}:305", deviation=WS, steps=[
        Step("POST", "/routes", json={"methods": ["GET"], "protocols": ["foo", "http"]},
             status=400, body={"code": 2, "name": "schema violation",
                               "message": f"schema violation (protocols.1: {PROTO_ONE_OF})",
                               "fields": {"protocols": [PROTO_ONE_OF]}})]),
    Case("routes: handles invalid input (service name unresolved)", f"{R}:305", steps=[
        Step("POST", "/routes", json={"methods": ["GET"], "service": {"name": "non-existing"}},
             status=400, body={
                 "code": 13, "name": "foreign keys unresolved",
                 "message": "foreign key unresolved (service.name: the foreign key cannot be "
                            "resolved with '{name=\"non-existing\"}' for an existing "
                            "'services' entity)",
                 "fields": {"service": {"name": "the foreign key cannot be resolved with "
                                                "'{name=\"non-existing\"}' for an existing "
                                                "'services' entity"}}})]),
    Case("routes: handles invalid input (service without primary key)", f"{R}:305", steps=[
        Step("POST", "/routes", json={"methods": ["GET"], "service": {"name": None}},
             status=400, body={"code": 2, "name": "schema violation",
                               "message": "schema violation (service.id: missing primary key)",
                               "fields": {"service": {"id": "missing primary key"}}})]),
    Case("routes: retrieves the first page", f"{R}:476", config=TEN_ROUTES, steps=[
        Step("GET", "/routes", status=200, body={"data": [ANY] * 10})]),
    Case("routes: paginates a set", f"{R}:486", config=TEN_ROUTES, steps=[
        Step("GET", "/routes?size=3", status=200, body={"data": [ANY] * 3},
             save={"off": "offset"}),
        Step("GET", "/routes?size=3&offset=$off", status=200, body={"data": [ANY] * 3})]),
    Case("routes: data property is an empty array and not an empty hash", f"{R}:520", steps=[
        Step("GET", "/routes", status=200, text='{"data":[],"next":null}')]),
    Case("routes: handles invalid size", f"{R}:544", steps=[
        Step("GET", "/routes?size=0", status=400, body={
            "code": 9, "name": "invalid size",
            "message": "size must be an integer between 1 and 1000"}),
        Step("GET", "/routes?size=potato", status=400, body={"code": 9})]),
    Case("routes: handles invalid offsets", "15-off_spec.lua:133", steps=[
        Step("GET", "/routes?offset=x", status=400, body={
            "code": 7, "name": "invalid offset",
            "message": "'x' is not a valid offset: bad base64 encoding"}),
        Step("GET", "/routes?offset=|potato|", status=400,
             body={"code": 7, "name": "invalid offset"})]),
    Case("routes: returns HTTP 405 on invalid method", f"{R}:600", steps=[
        Step(m, "/routes", json={"paths": ["/"]}, status=405,
             body={"message": "Method not allowed"}) for m in ("DELETE", "PUT", "PATCH")]),
    Case("routes/{route}: returns allow and CORS headers with OPTIONS method", f"{R}:620",
         config=ONE_ROUTE, steps=[Step("OPTIONS", "/routes/my-route", status=204, resp_headers={
             "Allow": "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"})]),
    Case("routes: retrieves by name", f"{R}:646", config=ONE_ROUTE, steps=[
        Step("GET", "/routes/my-route", status=200, body={"name": "my-route",
                                                          "paths": ["/my-route"]})]),
    Case("routes: returns 404 if not found by name", f"{R}:675", steps=[
        Step("GET", "/routes/my-in-existent-route", status=404)]),
]
CASES += content_types("routes PUT: creates if not found", f"{R}:704", lambda e: [
    Step("POST", "/services", json={"host": "x.test"}, status=201, save={"sid": "id"}),
    e("PUT", "/routes/0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c40", {
        "paths": ["/my-route"], "service": {"id": "$sid"}}, status=200,
      body={"id": "0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c40", "paths": ["/my-route"],
            "service": {"id": "$sid"}})], only=("json", "form"))
CASES += content_types("routes PUT: creates without service if not found", f"{R}:734",
                       lambda e: [e("PUT", "/routes/0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c40",
                                    {"paths": ["/my-route"]}, status=200,
                                    body={"service": None})], only=("json", "form"))
CASES += content_types("routes PUT: creates if not found by name", f"{R}:763", lambda e: [
    e("PUT", "/routes/my-put-route", {"paths": ["/my-route"]}, status=200,
      body={"name": "my-put-route"})], only=("json", "form"))
CASES += content_types("routes PUT: updates if found by name", f"{R}:822", lambda e: [
    e("PUT", "/routes/my-route", {"paths": ["/updated"]}, status=200,
      body={"name": "my-route", "paths": ["/updated"], "hosts": None, "service": None})],
    only=("json", "form"), config=ONE_ROUTE)
CASES += content_types("handles same parameter in url and params gracefully", f"{R}:857",
                       lambda e: [e("PUT", "/routes/my-route", {"name": "my-route",
                                                                "paths": ["/x"]},
                                    status=200, body={"name": "my-route"})],
                       only=("json", "form"), config=ONE_ROUTE)
CASES += content_types("routes PATCH: updates if found by name", f"{R}:1066", lambda e: [
    e("PATCH", "/routes/my-route", {"methods": ["GET"]}, status=200,
      body={"methods": ["GET"], "paths": ["/my-route"], "hosts": ["my.route.test"]})],
    only=("json", "form"), config=ONE_ROUTE)
CASES += content_types("routes PATCH: updates strip_path if not previously set", f"{R}:1101",
                       lambda e: [e("PATCH", "/routes/my-route", {"strip_path": False},
                                    status=200, body={"strip_path": False})],
                       only=("json", "form"), config=ONE_ROUTE)
CASES += content_types("routes PATCH: updates multiple fields at once", f"{R}:1122",
                       lambda e: [e("PATCH", "/routes/my-route", {
                           "methods": ["PUT"], "hosts": ["edited.test"]}, status=200,
                           body={"methods": ["PUT"], "hosts": ["edited.test"],
                                 "paths": ["/my-route"]})], only=("json", "form"),
                       config=ONE_ROUTE)
CASES += [
    Case("with application/json removes optional field with ngx.null", f"{R}:1152",
         config=ONE_ROUTE, steps=[Step("PATCH", "/routes/my-route", json={"hosts": None},
                                       status=200, body={"hosts": None,
                                                         "paths": ["/my-route"]})]),
    Case("allows updating sets and arrays with en empty array", f"{R}:1175", config=ONE_ROUTE,
         steps=[Step("PATCH", "/routes/my-route", json={"hosts": []}, status=200,
                     body={"paths": ["/my-route"]})]),
]
CASES += content_types("routes PATCH: removes service association", f"{R}:1200", lambda e: [
    e("PATCH", "/routes/my-route", {"service": None}, status=200, body={"service": None})],
    only=("json", "form"), config=ONE_ROUTE)
CASES += content_types("routes PATCH: returns 404 if not found", f"{R}:1238", lambda e: [
    e("PATCH", "/routes/0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c40", {"methods": ["PUT"]},
      status=404)], only=("json", "form"))
CASES += [
    Case("routes: deletes a route by name", f"{R}:1296", config=ONE_ROUTE, steps=[
        Step("DELETE", "/routes/my-route", status=204, text=""),
        Step("GET", "/routes/my-route", status=404)]),
    Case("routes: DELETE returns HTTP 204 even if not found", f"{R}:1311", steps=[
        Step("DELETE", "/routes/0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c40", status=204)]),
    Case("routes/{route}/plugins: creates a plugin config on a Route", f"{R}:1691",
         config=ONE_ROUTE, steps=[Step("POST", "/routes/my-route/plugins", json={
             "name": "key-auth", "config": {"key_names": ["apikey", "key"]}}, status=201,
             body={"name": "key-auth", "route": {"id": ANY},
                   "config": {"key_names": ["apikey", "key"]}})]),
    Case("routes/{route}/plugins: returns 409 on conflict (same plugin name)", f"{R}:1748",
         config=ONE_ROUTE, steps=[
             Step("POST", "/routes/my-route/plugins", json={"name": "key-auth"}, status=201),
             Step("POST", "/routes/my-route/plugins", json={"name": "key-auth"}, status=409)]),
    Case("routes/{route}/plugins: returns 409 on id conflict (same plugin id)", f"{R}:1792",
         config=ONE_ROUTE, steps=[
             Step("POST", "/routes/my-route/plugins", json={"name": "key-auth"}, status=201,
                  save={"pid": "id"}),
             Step("POST", "/routes/my-route/plugins", json={"name": "cors", "id": "$pid"},
                  status=409, body={"name": "unique constraint violation",
                                    "message": "UNIQUE violation detected on '{id=\"$pid\"}'"})]),
    Case("routes/{route}/plugins: retrieves the first page by name", f"{R}:1849",
         config={"services": [{"name": "rs", "host": "x.test", "routes": [
             {"name": "pr", "paths": ["/p"], "plugins": [{"name": "key-auth"}]}]}]},
         steps=[Step("GET", "/routes/pr/plugins", status=200, body={"data": [ANY]})]),
    Case("routes/{route}/plugins: deletes a plugin by instance_name", f"{R}:1929",
         config={"services": [{"name": "rs", "host": "x.test", "routes": [
             {"name": "pr", "paths": ["/p"], "plugins": [
                 {"name": "key-auth", "instance_name": "ka-r"}]}]}]},
         steps=[Step("DELETE", "/routes/pr/plugins/ka-r", status=204),
                Step("GET", "/routes/pr/plugins/ka-r", status=404)]),
]

# ------------------------------------------------------------------------------- tags
TG = "14-tags_spec.lua"
GORILLA = "\U0001f98d"
TAGGED = {"consumers": [
    {"username": f"adminapi-filter-by-tag-{i}", "tags": ["corp_ a", f"consumer_ {i}", GORILLA],
     "plugins": [{"name": "file-log", "config": {"path": f"/tmp/fastgw-tags-{i}.log"},
                  "tags": ["corp_ a", f"consumer_ {i}"]}]} for i in (1, 2)]}
TAGGED2 = {"consumers": [{"username": f"adminapi-filter-by-tag-{i}",
                          "tags": ["corp_ a", f"consumer_ {i}"]} for i in (1, 2)]}
CASES += [
    Case("filter by single tag", f"{TG}:50", config=TAGGED, steps=[
        Step("GET", "/consumers?tags=corp_%20a", status=200, body={"data": [ANY, ANY]})]),
    Case("filter by single unicode tag", f"{TG}:63", config=TAGGED, steps=[
        Step("GET", "/consumers?tags=%F0%9F%A6%8D", status=200, body={"data": [ANY, ANY]})]),
    Case("filter by empty tag", f"{TG}:76", config=TAGGED, steps=[
        Step("GET", "/consumers?tags=", status=400,
             body={"message": "invalid option (tags: cannot be null)"})]),
    Case("filter by empty string tag", f"{TG}:86", config=TAGGED, steps=[
        Step("GET", "/consumers?tags=''", status=200, body={"data": []})]),
    Case("filter by multiple tags with AND", f"{TG}:96", config=TAGGED, steps=[
        Step("GET", "/consumers?tags=corp_%20a,consumer_%201", status=200,
             body={"data": [{"tags": ["corp_ a", "consumer_ 1", GORILLA]}]})]),
    Case("filter by multiple tags with OR", f"{TG}:110", config=TAGGED, steps=[
        Step("GET", "/consumers?tags=consumer_%202/consumer_%201", status=200,
             body={"data": [ANY, ANY]})]),
    Case("ignores tags when filtering by multiple filters #6779", f"{TG}:120", config=TAGGED,
         steps=[Step("GET", "/consumers/adminapi-filter-by-tag-1/plugins?tags=consumer_%202",
                     status=200, body={"data": [{"tags": ["corp_ a", "consumer_ 1"]}]})]),
    Case("errors if filter by mix of AND and OR", f"{TG}:131", config=TAGGED, steps=[
        Step("GET", "/consumers?tags=consumer_%203,consumer_%202/consumer_%201", status=400,
             body={"message": "invalid option (tags: invalid filter syntax)"}),
        Step("GET", "/consumers?tags=consumer_%203/consumer_%202,consumer_%201", status=400,
             body={"message": "invalid option (tags: invalid filter syntax)"})]),
    Case("returns the correct 'next' arg", f"{TG}:159", config=TAGGED, steps=[
        Step("GET", "/consumers?tags=corp_%20a&size=1", status=200,
             body={"data": [ANY], "next": ANY}, save={"next": "next"})]),
    Case("/tags", f"{TG}:226", config=TAGGED2, steps=[
        Step("GET", "/tags", status=200, body={"data": [ANY] * 4})]),
    Case("/tags/:tags", f"{TG}:231", config=TAGGED2, steps=[
        Step("GET", "/tags/corp_%20a", status=200, body={"data": [
            {"entity_name": "consumers", "entity_id": ANY, "tag": "corp_ a"}, ANY]})]),
    Case("/tags/:tags with a not exist tag", f"{TG}:236", config=TAGGED2, steps=[
        Step("GET", "/tags/does-not-exist", status=200, body={"data": []})]),
    Case("/tags ignores ?tags= query", f"{TG}:251", config=TAGGED2, steps=[
        Step("GET", "/tags?tags=not_a_tag", status=200, body={"data": [ANY] * 4}),
        Step("GET", "/tags?tags=invalid@tag", status=200, body={"data": [ANY] * 4})]),
    Case("/tags/:tags ignores ?tags= query", f"{TG}:259", config=TAGGED2, steps=[
        Step("GET", "/tags/corp_%20a?tags=not_a_tag", status=200, body={"data": [ANY] * 2})]),
]

# ------------------------------------------------------------------------------- key-auth API
KAA = "09-key-auth/01-api_spec.lua"
BOB = {"consumers": [{"username": "bob"}]}
BOB_KEY = {"consumers": [{"username": "bob", "keyauth_credentials": [{"key": "bob-key"}]},
                         {"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]}]}
CASES += [
    Case("creates a key-auth credential with key", f"{KAA}:57", config=BOB, steps=[
        Step("GET", "/consumers/bob", status=200, save={"cid": "id"}),
        Step("POST", "/consumers/bob/key-auth", json={"key": "1234"}, status=201,
             body={"key": "1234", "consumer": {"id": "$cid"}})]),
    Case("creates a key-auth auto-generating a unique key", f"{KAA}:73", config=BOB, steps=[
        Step("POST", "/consumers/bob/key-auth", json={}, status=201, body={"key": ANY},
             save={"k1": "key"}),
        Step("POST", "/consumers/bob/key-auth", json={}, status=201, body={"key": ANY}),
    ]),
    Case("creates a key-auth credential with tags", f"{KAA}:105", config=BOB, steps=[
        Step("POST", "/consumers/bob/key-auth", json={"key": "t", "tags": ["tag1", "tag2"]},
             status=201, body={"tags": ["tag1", "tag2"]})]),
    Case("key-auth: retrieves the first page", f"{KAA}:161", config=BOB_KEY, steps=[
        Step("GET", "/consumers/bob/key-auth", status=200, body={"data": [{"key": "bob-key"}]})]),
    Case("retrieves key-auth credential by key", f"{KAA}:217", config=BOB_KEY, steps=[
        Step("GET", "/consumers/bob/key-auth/bob-key", status=200, body={"key": "bob-key"})]),
    Case("retrieves credential by id only if the credential belongs to the specified consumer",
         f"{KAA}:226", config=BOB_KEY, steps=[
             Step("GET", "/consumers/alice/key-auth/alice-key", status=200, save={"kid": "id"}),
             Step("GET", "/consumers/bob/key-auth/$kid", status=404),
             Step("GET", "/consumers/alice/key-auth/$kid", status=200)]),
    Case("key-auth PUT: creates a key-auth credential with key", f"{KAA}:262", config=BOB, steps=[
        Step("PUT", "/consumers/bob/key-auth/1234", json={}, status=200, body={"key": "1234"})]),
    Case("key-auth PATCH: updates a credential by key", f"{KAA}:306", config=BOB_KEY, steps=[
        Step("PATCH", "/consumers/bob/key-auth/bob-key", json={"key": "4321"}, status=200,
             body={"key": "4321"})]),
    Case("key-auth PATCH: handles invalid input", f"{KAA}:320", config=BOB_KEY, steps=[
        Step("PATCH", "/consumers/bob/key-auth/bob-key", json={"key": 123}, status=400,
             body={"fields": {"key": "expected a string"}})]),
    Case("key-auth: deletes a credential", f"{KAA}:337", config=BOB_KEY, steps=[
        Step("DELETE", "/consumers/bob/key-auth/bob-key", status=204),
        Step("GET", "/consumers/bob/key-auth/bob-key", status=404)]),
    Case("key-auth DELETE: returns 404 if not found", f"{KAA}:352", config=BOB, steps=[
        Step("DELETE", "/consumers/bob/key-auth/blah", status=404),
        Step("DELETE", "/consumers/bob/key-auth/00000000-0000-0000-0000-000000000000",
             status=404)]),
    Case("fails with invalid key_names", f"{KAA}:363", steps=[
        Step("POST", "/plugins", json={"name": "key-auth",
                                       "config": {"key_names": ["hello\\world"]}},
             status=400, body={"fields": {"config": {"key_names": [
                 "bad header name 'hello\\world', allowed characters are A-Z, a-z, 0-9, "
                 "'_', and '-'"]}}})]),
    Case("succeeds with valid key_names", f"{KAA}:384", steps=[
        Step("POST", "/plugins", json={"name": "key-auth",
                                       "config": {"key_names": ["hello-world"]}},
             status=201, body={"config": {"key_names": ["hello-world"]}})]),
    Case("retrieves all the key-auths with trailing slash", f"{KAA}:429", config=BOB_KEY, steps=[
        Step("GET", "/key-auths/", status=200, body={"data": [ANY, ANY]})]),
    Case("paginates through the key-auths", f"{KAA}:449", config=BOB_KEY, steps=[
        Step("GET", "/key-auths?size=1", status=200, body={"data": [ANY]},
             save={"off": "offset"}),
        Step("GET", "/key-auths?size=1&offset=$off", status=200,
             body={"data": [ANY], "offset": ABSENT})]),
    Case("does not create key-auth credential when missing consumer", f"{KAA}:482", steps=[
        Step("POST", "/key-auths", json={"key": "1234"}, status=400,
             body={"message": "schema violation (consumer: required field missing)"})]),
    Case("/key-auths POST: creates key-auth credential", f"{KAA}:498", config=BOB, steps=[
        Step("GET", "/consumers/bob", status=200, save={"cid": "id"}),
        Step("POST", "/key-auths", json={"key": "1234", "consumer": {"id": "$cid"}},
             status=201, body={"key": "1234"})]),
    Case("/key-auths PUT: does not create key-auth credential when missing consumer",
         f"{KAA}:525", steps=[
             Step("PUT", "/key-auths/1234", json={}, status=400,
                  body={"message": "schema violation (consumer: required field missing)"})]),
    Case("/key-auths PUT: creates key-auth credential", f"{KAA}:539", config=BOB, steps=[
        Step("GET", "/consumers/bob", status=200, save={"cid": "id"}),
        Step("PUT", "/key-auths/1234", json={"consumer": {"id": "$cid"}}, status=200,
             body={"key": "1234"})]),
    Case("retrieve a Consumer from a credential's key", f"{KAA}:579", config=BOB_KEY, steps=[
        Step("GET", "/key-auths/bob-key/consumer", status=200, body={"username": "bob"})]),
    Case("returns 404 for a random non-existing key", f"{KAA}:595", steps=[
        Step("GET", "/key-auths/nope/consumer", status=404)]),
]

# ------------------------------------------------------------------------------- basic-auth API
import hashlib as _hashlib  # noqa: E402

BAA = "10-basic-auth/02-api_spec.lua"
BOB_ID = "0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c77"
CID2 = "0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c78"
BOB_BA = {"consumers": [{"id": BOB_ID, "username": "bob", "basicauth_credentials": [
    {"username": "bob-user", "password": "kong"}]}, {"id": CID2, "username": "other"}]}
CASES += [
    Case("creates a basic-auth credential", f"{BAA}:50", config={"consumers": [
        {"id": BOB_ID, "username": "bob"}]}, steps=[
        Step("POST", "/consumers/bob/basic-auth", json={"username": "bob", "password": "kong"},
             status=201, body={"username": "bob", "consumer": {"id": BOB_ID}})]),
    Case("hashes the password", f"{BAA}:86", config={"consumers": [
        {"id": BOB_ID, "username": "bob"}]}, steps=[
        Step("POST", "/consumers/bob/basic-auth", json={"username": "bob", "password": "kong"},
             status=201, body={"password": _hashlib.sha1(
                 ("kong" + BOB_ID).encode()).hexdigest()})]),
    Case("hashes the password without trimming whitespace", f"{BAA}:107", config={"consumers": [
        {"id": BOB_ID, "username": "bob"}]}, steps=[
        Step("POST", "/consumers/bob/basic-auth", json={"username": "bob",
                                                       "password": " kong "},
             status=201, body={"password": _hashlib.sha1(
                 (" kong " + BOB_ID).encode()).hexdigest()})]),
    Case("basic-auth POST: returns bad request", f"{BAA}:129", config=BOB_BA, steps=[
        Step("POST", "/consumers/bob/basic-auth", json={}, status=400, body={"fields": {
            "username": "required field missing", "password": "required field missing"}})]),
    Case("cannot create two identical usernames", f"{BAA}:145", config=BOB_BA, steps=[
        Step("POST", "/consumers/bob/basic-auth", json={"username": "bob-user",
                                                       "password": "x"}, status=409)]),
    Case("retrieves basic-auth credential by username", f"{BAA}:222", config=BOB_BA, steps=[
        Step("GET", "/consumers/bob/basic-auth/bob-user", status=200,
             body={"username": "bob-user"})]),
    Case("basic-auth PATCH: updates a credential by username", f"{BAA}:325", config=BOB_BA,
         steps=[Step("GET", "/consumers/bob/basic-auth/bob-user", status=200,
                     save={"h": "password"}),
                Step("PATCH", "/consumers/bob/basic-auth/bob-user", json={"password": "upd4321"},
                     status=200, body={"password": _hashlib.sha1(
                         ("upd4321" + BOB_ID).encode()).hexdigest()})]),
    Case("ignores a nil password when updated by username", f"{BAA}:342", config=BOB_BA, steps=[
        Step("GET", "/consumers/bob/basic-auth/bob-user", status=200, save={"h": "password"}),
        Step("PATCH", "/consumers/bob/basic-auth/bob-user", json={"username": "Tyrion"},
             status=200, body={"username": "Tyrion", "password": "$h"})]),
    Case("basic-auth DELETE: returns 404 on missing username", f"{BAA}:388", config=BOB_BA,
         steps=[Step("DELETE", "/consumers/bob/basic-auth/blah", status=404)]),
    Case("does not allow updating consumer as it would invalidate the password", f"{BAA}:525",
         config=BOB_BA, steps=[
             Step("GET", "/consumers/bob/basic-auth/bob-user", status=200, save={"id": "id"}),
             Step("PATCH", "/basic-auths/$id", json={"consumer": {"id": CID2}}, status=400,
                  body={"message": "schema violation (all or none of these fields must be set: "
                                   "'password', 'consumer.id')"})]),
    Case("does not create basic-auth credential when missing consumer", f"{BAA}:477", steps=[
        Step("POST", "/basic-auths", json={"username": "bob", "password": "kong"}, status=400,
             body={"message": "schema violation (consumer: required field missing)"})]),
    Case("retrieve consumer from a basic-auth username", f"{BAA}:606", config=BOB_BA, steps=[
        Step("GET", "/basic-auths/bob-user/consumer", status=200, body={"username": "bob"})]),
]

# ------------------------------------------------------------------------------- jwt API
JWA = "16-jwt/02-api_spec.lua"
COND_ALG = "failed conditional validation given value of field 'algorithm'"
CASES += [
    Case("creates a jwt secret", f"{JWA}:57", config=BOB, steps=[
        Step("GET", "/consumers/bob", status=200, save={"cid": "id"}),
        Step("POST", "/consumers/bob/jwt", json={}, status=201,
             body={"consumer": {"id": "$cid"}, "key": ANY, "secret": ANY})]),
    Case("accepts any given `secret` and `key` parameters", f"{JWA}:87", config=BOB, steps=[
        Step("POST", "/consumers/bob/jwt", json={"key": "bob2", "secret": "tooshort"},
             status=201, body={"key": "bob2", "secret": "tooshort"})]),
    Case("fails with missing `rsa_public_key` parameter for RS256 algorithms", f"{JWA}:181",
         config=BOB, steps=[Step("POST", "/consumers/bob/jwt/", json={
             "key": "bob5", "algorithm": "RS256"}, status=400, body={"fields": {
                 "rsa_public_key": "required field missing", "@entity": [COND_ALG]}})]),
    Case("fails with an invalid rsa_public_key for RS256 algorithms", f"{JWA}:202",
         config=BOB, steps=[Step("POST", "/consumers/bob/jwt/", json={
             "key": "bob5", "algorithm": "RS256", "rsa_public_key": "test"}, status=400,
             body={"fields": {"rsa_public_key": "invalid key", "@entity": [COND_ALG]}})]),
    Case("does not fail when `secret` parameter for HS256 algorithms is missing", f"{JWA}:224",
         config=BOB, steps=[Step("POST", "/consumers/bob/jwt/", json={
             "key": "bob5", "algorithm": "HS256"}, status=201,
             body={"secret": Re(r"[A-Za-z0-9]{32}")})]),
    Case("jwt: returns proper errors", f"{JWA}:347", config=BOB, steps=[
        Step("DELETE", "/consumers/bob/jwt/blah", json={}, status=404),
        Step("DELETE", "/consumers/bob/jwt/00000000-0000-0000-0000-000000000000", json={},
             status=404)]),
    Case("does not create jwt credential when missing consumer", f"{JWA}:441", steps=[
        Step("POST", "/jwts", json={"key": "1234"}, status=400,
             body={"message": "schema violation (consumer: required field missing)"})]),
    Case("retrieve consumer from a JWT key", f"{JWA}:536", config={"consumers": [
        {"username": "bob", "jwt_secrets": [{"key": "jk", "secret": "s"}]}]}, steps=[
        Step("GET", "/jwts/jk/consumer", status=200, body={"username": "bob"})]),
]

# ------------------------------------------------------------------------------- acl API
ACA = "18-acl/01-api_spec.lua"
ACL2 = {"consumers": [{"username": "bob", "acls": [{"group": "admin"}, {"group": "foo"}]},
                      {"username": "alice", "acls": [{"group": "foo"}]}]}
CASES += [
    Case("creates an ACL association", f"{ACA}:48", config=BOB, steps=[
        Step("POST", "/consumers/bob/acls", json={"group": "admin"}, status=201,
             body={"group": "admin", "consumer": {"id": ANY}})]),
    Case("acls: returns bad request", f"{ACA}:81", config=BOB, steps=[
        Step("POST", "/consumers/bob/acls", json={}, status=400,
             body={"fields": {"group": "required field missing"}})]),
    Case("retrieves by group", f"{ACA}:131", config=ACL2, steps=[
        Step("GET", "/consumers/bob/acls/admin", status=200, body={"group": "admin"})]),
    Case("retrieves ACL by group only if the ACL belongs to the specified consumer",
         f"{ACA}:148", config=ACL2, steps=[
             Step("GET", "/consumers/alice/acls/admin", status=404)]),
    Case("retrieves right ACL by group when multiple consumers share the same group name "
         "created with POST", f"{ACA}:155", config=ACL2, steps=[
             Step("GET", "/consumers/bob/acls/foo", status=200, save={"b": "id"}),
             Step("GET", "/consumers/alice/acls/foo", status=200, save={"a": "id"}),
             Step("GET", "/consumers/bob/acls/$a", status=404),
             Step("DELETE", "/consumers/bob/acls/foo", status=204),
             Step("GET", "/consumers/alice/acls/foo", status=200, body={"id": "$a"})]),
    Case("upserts an ACL's groupname", f"{ACA}:262", config=BOB, steps=[
        Step("PUT", "/consumers/bob/acls/pro", json={}, status=200, body={"group": "pro"})]),
    Case("acls PUT: returns bad request", f"{ACA}:275", config=BOB, steps=[
        Step("PUT", "/consumers/bob/acls/f7852533-9160-4f5a-ae12-1b0d1c6e7d4f",
             json={"group": 123}, status=400, body={"fields": {"group": "expected a string"}})]),
    Case("updates an ACL group by group", f"{ACA}:307", config=ACL2, steps=[
        Step("PATCH", "/consumers/bob/acls/admin", json={"group": "updatedGroup2"},
             status=200, body={"group": "updatedGroup2"})]),
    Case("acls PATCH: handles invalid input", f"{ACA}:323", config=ACL2, steps=[
        Step("PATCH", "/consumers/bob/acls/admin", json={"group": 123}, status=400,
             body={"fields": {"group": "expected a string"}})]),
    Case("deletes an ACL group by group", f"{ACA}:344", config=ACL2, steps=[
        Step("DELETE", "/consumers/bob/acls/admin", status=204),
        Step("GET", "/consumers/bob/acls/admin", status=404)]),
    Case("acls DELETE: returns 404 on missing group", f"{ACA}:349", config=ACL2, steps=[
        Step("DELETE", "/consumers/bob/acls/blah", status=404)]),
    Case("retrieves all the acls with trailing slash", f"{ACA}:387", config=ACL2, steps=[
        Step("GET", "/acls/", status=200, body={"data": [ANY, ANY, ANY]})]),
    Case("does not create acl when missing consumer", f"{ACA}:429", steps=[
        Step("POST", "/acls", json={"group": "test-group"}, status=400,
             body={"message": "schema violation (consumer: required field missing)"})]),
]

# ------------------------------------------------------------------------------- form encodings
CASES += [
    Case("form: indexed arrays and dotted records", "01-admin_api_spec.lua", steps=[
        Step("POST", "/services", form=[("name", "fs"), ("host", "x.test")], status=201),
        Step("POST", "/services/fs/routes",
             form=[("paths[1]", "/a"), ("paths[2]", "/b"), ("methods", "GET"),
                   ("headers.x-tenant[1]", "acme")], status=201,
             body={"paths": ["/a", "/b"], "methods": ["GET"],
                   "headers": {"x-tenant": ["acme"]}}),
        Step("POST", "/services/fs/plugins",
             form=[("name", "key-auth"), ("config.key_names[1]", "a"),
                   ("config.key_names[2]", "b"), ("config.hide_credentials", "true")],
             status=201, body={"config": {"key_names": ["a", "b"], "hide_credentials": True}})]),
    Case("multipart: indexed arrays and dotted records", "01-admin_api_spec.lua", steps=[
        Step("POST", "/services", multipart=[("name", "ms"), ("url", "http://x.test:8080/p")],
             status=201, body={"port": 8080, "path": "/p"}),
        Step("POST", "/services/ms/plugins",
             multipart=[("name", "rate-limiting"), ("config.minute", "10"),
                        ("config.policy", "local")],
             status=201, body={"config": {"minute": 10, "policy": "local"}})]),
]
