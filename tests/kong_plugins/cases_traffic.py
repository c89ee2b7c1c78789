"""Cases from Kong's spec/03-plugins: cors (13), ip-restriction (17), request-size-limiting
(12), request-transformer (36), response-transformer (15), correlation-id (11),
bot-detection (21), rate-limiting (23)."""
from __future__ import annotations

from kong_cases import ANY, Case, Step

CO = "13-cors/01-access_spec.lua"
IP = "17-ip-restriction/02-access_spec.lua"
RS = "12-request-size-limiting/01-access_spec.lua"
RT = "36-request-transformer/02-access_spec.lua"
RX = "15-response-transformer/01-header_transformer_spec.lua"
CI = "11-correlation-id/01-access_spec.lua"
BD = "21-bot-detection/01-access_spec.lua"
RL = "23-rate-limiting/04-access_spec.lua"

METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"


def proxy(method: str, path: str, **kw) -> Step:
    return Step(method, path, admin=False, **kw)


def _route(name: str, plugins: list[dict], **extra) -> dict:
    return {"name": name, "paths": [f"/{name}"], "plugins": plugins, **extra}


def _svc(*routes: dict) -> dict:
    return {"services": [{"name": "echo", "url": "ECHO", "routes": list(routes)}]}


PREFLIGHT = {"Origin": "origin1.test", "Access-Control-Request-Method": "GET"}

CORS = _svc(
    _route("cors1", [{"name": "cors"}]),
    _route("corsempty", [{"name": "cors", "config": {"origins": []}}]),
    _route("corsstar", [{"name": "cors", "config": {"origins": ["*"]}}]),
    _route("corsstarcred", [{"name": "cors", "config": {"origins": ["*"], "credentials": True}}]),
    _route("corsmulti", [{"name": "cors", "config": {"origins": ["http://a.test", "*"]}}]),
    _route("cors2", [{"name": "cors", "config": {
        "origins": ["example.test"], "methods": ["GET"], "headers": ["origin", "type",
                                                                    "accepts"],
        "exposed_headers": ["x-auth-token"], "max_age": 23, "credentials": True}}]),
    _route("corsre", [{"name": "cors", "config": {"origins": [r"http://[a-z]+\.example\.test"]}}]),
    _route("corscont", [{"name": "cors", "config": {"preflight_continue": True}}]),
)

CASES: list[Case] = [
    Case("gives appropriate defaults", f"{CO}:617", config=CORS, steps=[
        proxy("OPTIONS", "/cors1", headers=PREFLIGHT, status=200, text="", resp_headers={
            "Content-Length": "0", "Access-Control-Allow-Methods": METHODS,
            "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": None,
            "Access-Control-Expose-Headers": None, "Access-Control-Allow-Credentials": None,
            "Access-Control-Max-Age": None, "Vary": None})]),
    Case("gives * wildcard when config.origins is empty", f"{CO}:637", config=CORS, steps=[
        proxy("OPTIONS", "/corsempty", headers=PREFLIGHT, status=200, resp_headers={
            "Access-Control-Allow-Origin": "*", "Vary": None})]),
    Case("origins ['*'] answers * (no crash)", f"{CO}", config=CORS, steps=[
        proxy("OPTIONS", "/corsstar", headers=PREFLIGHT, status=200, resp_headers={
            "Access-Control-Allow-Origin": "*"}),
        proxy("GET", "/corsstar/x", headers={"Origin": "http://any.test"}, status=200,
              resp_headers={"Access-Control-Allow-Origin": "*"})]),
    Case("gives appropriate defaults when origin is explicitly set to * and credentials=true",
         f"{CO}", config=CORS, steps=[
             proxy("OPTIONS", "/corsstarcred", headers=PREFLIGHT, status=200, resp_headers={
                 "Access-Control-Allow-Origin": "origin1.test",
                 "Access-Control-Allow-Credentials": "true", "Vary": "Origin"})]),
    Case("gives * wildcard when origin has multiple entries and have * included", f"{CO}:683",
         config=CORS, steps=[proxy("OPTIONS", "/corsmulti", headers=PREFLIGHT, status=200,
                                   resp_headers={"Access-Control-Allow-Origin": "*"})]),
    Case("accepts config options", f"{CO}:702", config=CORS, steps=[
        proxy("OPTIONS", "/cors2", headers={"Origin": "example.test",
                                            "Access-Control-Request-Method": "GET"},
              status=200, resp_headers={
                  "Access-Control-Allow-Methods": "GET",
                  "Access-Control-Allow-Origin": "example.test",
                  "Access-Control-Allow-Headers": "origin,type,accepts",
                  "Access-Control-Expose-Headers": None, "Access-Control-Max-Age": "23",
                  "Access-Control-Allow-Credentials": "true", "Vary": "Origin"})]),
    Case("preflight_continue enabled", f"{CO}:722", config=CORS, steps=[
        proxy("OPTIONS", "/corscont/anything", headers=PREFLIGHT, status=200,
              upstream={"method": "OPTIONS"})]),
    Case("replies with request-headers if present in request", f"{CO}:735", config=CORS,
         steps=[proxy("OPTIONS", "/cors1", headers={**PREFLIGHT,
                                                   "Access-Control-Request-Headers": "origin,accepts"},
                      status=200, resp_headers={"Access-Control-Allow-Headers": "origin,accepts"})]),
    Case("gives appropriate defaults (non-preflight)", f"{CO}", config=CORS, steps=[
        proxy("GET", "/cors1/x", status=200, resp_headers={
            "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": None,
            "Access-Control-Allow-Credentials": None})]),
    Case("proxies a non-preflight OPTIONS request", f"{CO}:822", config=CORS, steps=[
        proxy("OPTIONS", "/cors1/x", status=200, upstream={"method": "OPTIONS"},
              resp_headers={"Access-Control-Allow-Origin": "*"})]),
    Case("accepts config options (non-preflight)", f"{CO}", config=CORS, steps=[
        proxy("GET", "/cors2/x", headers={"Origin": "example.test"}, status=200, resp_headers={
            "Access-Control-Allow-Origin": "example.test",
            "Access-Control-Expose-Headers": "x-auth-token",
            "Access-Control-Allow-Credentials": "true", "Vary": "Origin",
            "Access-Control-Allow-Methods": None})]),
    Case("sets CORS origin based on a regex origin", f"{CO}", config=CORS, steps=[
        proxy("GET", "/corsre/x", headers={"Origin": "http://www.example.test"}, status=200,
              resp_headers={"Access-Control-Allow-Origin": "http://www.example.test",
                            "Vary": "Origin"})]),
    Case("does not set CORS origin if origin is not in the list", f"{CO}", config=CORS,
         steps=[proxy("GET", "/corsre/x", headers={"Origin": "http://evil.test"}, status=200,
                      resp_headers={"Access-Control-Allow-Origin": None})]),
    Case("responds with the requested Origin when config.credentials=true", f"{CO}:1073",
         config=CORS, steps=[proxy("GET", "/corsstarcred/x", headers={"Origin": "http://www.example.net"},
                                   status=200, resp_headers={
                                       "Access-Control-Allow-Origin": "http://www.example.net",
                                       "Access-Control-Allow-Credentials": "true"})]),
    Case("responds with * when origin has multiple entries and have * included", f"{CO}:1115",
         config=CORS, steps=[proxy("GET", "/corsmulti/x", headers={"Origin": "http://www.example.net"},
                                   status=200,
                                   resp_headers={"Access-Control-Allow-Origin": "*"})]),
    Case("works with 40x responses returned by another plugin", f"{CO}:911",
         config=_svc(_route("cors401", [{"name": "cors"}, {"name": "key-auth"}])), steps=[
             proxy("GET", "/cors401/x", status=401,
                   resp_headers={"Access-Control-Allow-Origin": "*"})]),
]

# ------------------------------------------------------------------------------- ip-restriction
IPR = _svc(
    _route("ipdeny", [{"name": "ip-restriction", "config": {"deny": ["127.0.0.1"]}}]),
    _route("ipallow", [{"name": "ip-restriction", "config": {"allow": ["127.0.0.0/8"]}}]),
    _route("ipallow2", [{"name": "ip-restriction", "config": {"allow": ["10.0.0.1"]}}]),
    _route("ipcustom", [{"name": "ip-restriction", "config": {
        "deny": ["127.0.0.1"], "status": 401, "message": "Forbidden"}}]),
)
CASES += [
    Case("blocks a request when the IP is denied", f"{IP}:299", config=IPR, steps=[
        proxy("GET", "/ipdeny/x", status=403,
              body={"message": "IP address not allowed: 127.0.0.1"})]),
    Case("allows a request when the IP is in an allowed CIDR", f"{IP}", config=IPR, steps=[
        proxy("GET", "/ipallow/x", status=200)]),
    Case("blocks a request when the IP is not allowed", f"{IP}:479", config=IPR, steps=[
        proxy("GET", "/ipallow2/x", status=403,
              body={"message": "IP address not allowed: 127.0.0.1"})]),
    Case("blocks with a custom status and message", f"{IP}", config=IPR, steps=[
        proxy("GET", "/ipcustom/x", status=401, body={"message": "Forbidden"})]),
]

# ------------------------------------------------------------------------------- request-size-limiting
CHUNKED_STREAMED = (
    "a chunked body over the limit is answered 413 while it streams; the request head has "
    "already gone upstream (Kong buffers the body first, request_buffering)")
RSL = _svc(
    _route("rsl", [{"name": "request-size-limiting", "config": {"allowed_payload_size": 10,
                                                                 "size_unit": "bytes"}}]),
    _route("rslcl", [{"name": "request-size-limiting", "config": {
        "allowed_payload_size": 10, "size_unit": "bytes", "require_content_length": True}}]),
    _route("rslkb", [{"name": "request-size-limiting", "config": {"allowed_payload_size": 1,
                                                                   "size_unit": "kilobytes"}}]),
)
CASES += [
    Case("works if size is lower than limit", f"{RS}:83", config=RSL, steps=[
        proxy("POST", "/rsl/x", raw=b"a" * 10, status=200)]),
    Case("blocks if size is greater than limit", f"{RS}:112", config=RSL, steps=[
        proxy("POST", "/rsl/x", raw=b"a" * 11, status=413,
              body={"message": "Request size limit exceeded"})]),
    Case("blocks if size is greater than limit and Expect header", f"{RS}:129", config=RSL,
         steps=[proxy("POST", "/rsl/x", raw=b"a" * 11, headers={"Expect": "100-continue"},
                      status=417, body={"message": "Request size limit exceeded"})]),
    Case("blocks a chunked body greater than the limit", f"{RS}", config=RSL,
         deviation=CHUNKED_STREAMED, steps=[
        proxy("POST", "/rsl/x", headers={"Transfer-Encoding": "chunked"},
              raw=b"b\r\naaaaaaaaaaa\r\n0\r\n\r\n", status=413,
              body={"message": "Request size limit exceeded"})]),
    Case("works with kilobytes", f"{RS}", config=RSL, steps=[
        proxy("POST", "/rslkb/x", raw=b"a" * 1024, status=200),
        proxy("POST", "/rslkb/x", raw=b"a" * 1025, status=413)]),
    Case("require_content_length rejects a body without Content-Length", f"{RS}",
         config=RSL, steps=[proxy("GET", "/rslcl/x", status=411,
                                  body={"message": "A valid Content-Length header is required"})]),
    Case("require_content_length lets a chunked body through", f"{RS}", config=RSL,
         steps=[proxy("POST", "/rslcl/x", headers={"Transfer-Encoding": "chunked"},
                      raw=b"3\r\nabc\r\n0\r\n\r\n", status=200)]),
]

# ------------------------------------------------------------------------------- request-transformer
RTC = {"services": [{"name": "echo", "url": "ECHO", "routes": [
    _route("rt1", [{"name": "request-transformer", "config": {
        "add": {"headers": ["h1:v1", "h2:value:2"], "querystring": ["q1:v1"]},
        "remove": {"headers": ["h-remove"], "querystring": ["qr"]}}}]),
    _route("rtbody", [{"name": "request-transformer", "config": {
        "add": {"body": ["p1:v1"]}, "remove": {"body": ["toremove"]},
        "replace": {"body": ["p2:v2"]}, "rename": {"body": ["old:new"]}}}]),
    {"name": "rtcap", "paths": [r"~/rtcap/user1/(?<user1>\w+)/user2/(?<user2>\S+)"],
     "plugins": [{"name": "request-transformer", "config": {
         "add": {"querystring": ["uri_param1:$(uri_captures.user1)",
                                 "uri_param2:$(uri_captures.user2 or 'default2')"]}}}]},
    {"name": "rturi", "paths": [r"~/rturi/user1/(?<user1>\w+)/user2/(?<user2>\S+)"],
     "plugins": [{"name": "request-transformer", "config": {
         "replace": {"uri": "/requests/user2/$(uri_captures.user2)/user1/$(uri_captures.user1)"}}}]},
    _route("rttpl", [{"name": "request-transformer", "config": {
        "remove": {"headers": ["x-remove-header"]},
        "add": {"querystring": ["q2:$(headers['x-remove-header'])"],
                "headers": ["x-test-header:$(query_params.q1)"]}}}]),
    _route("rtesc", [{"name": "request-transformer", "config": {
        "add": {"querystring": ["q1:$('$(uri_captures.user1)')"]}}}]),
    _route("rterr", [{"name": "request-transformer", "config": {
        "add": {"querystring": ["q1:$(10 * uri_captures.user1)"]}}}]),
    _route("rttype", [{"name": "request-transformer", "config": {
        "add": {"headers": ['X-Foo-Transformed:$(type(headers["X-Foo"]) == "table" and '
                            'headers["X-Foo"][1] .. "-first" or headers["X-Foo"])']}}}]),
    _route("rtmethod", [{"name": "request-transformer", "config": {"http_method": "POST"}}]),
    _route("rtrepl", [{"name": "request-transformer", "config": {
        "replace": {"headers": ["x-replace-header:the new value"],
                    "querystring": ["q2:$(headers['x-replace-header'])"]}}}]),
]}]}
CASES += [
    Case("adds new headers and querystring", f"{RT}", config=RTC, steps=[
        proxy("GET", "/rt1/request?qr=1&keep=2", headers={"h-remove": "x"}, status=200,
              upstream={"headers": {"h1": "v1", "h2": "value:2", "h-remove": None},
                        "query": {"q1": "v1", "keep": "2"}})]),
    Case("transforms a JSON body", f"{RT}", config=RTC, steps=[
        proxy("POST", "/rtbody/request", json={"toremove": 1, "p2": "x", "old": "o"},
              status=200, upstream={"json": {"p1": "v1", "p2": "v2", "new": "o"}})]),
    Case("transforms a form body", f"{RT}", config=RTC, steps=[
        proxy("POST", "/rtbody/request", form={"toremove": "1", "p2": "x"}, status=200,
              upstream={"form": {"p1": "v1", "p2": "v2"}})]),
    Case("transforms a multipart body", f"{RT}", config=RTC, steps=[
        proxy("POST", "/rtbody/request", multipart=[("toremove", "1"), ("p2", "x")],
              status=200, upstream={"body_contains": 'name="p1"\r\n\r\nv1'})]),
    Case("renders uri_captures templates", f"{RT}", config=RTC, steps=[
        proxy("GET", "/rtcap/user1/foo/user2/bar", status=200,
              upstream={"query": {"uri_param1": "foo", "uri_param2": "bar"}})]),
    Case("renders the uri from captures", f"{RT}", config=RTC, steps=[
        proxy("GET", "/rturi/user1/foo/user2/bar", status=200,
              upstream={"path": "/requests/user2/bar/user1/foo"})]),
    Case("validate that removed header can be used as template", f"{RT}:2162", config=RTC,
         steps=[proxy("GET", "/rttpl/x?q1=20", headers={"x-remove-header": "its a test"},
                      status=200, upstream={"headers": {"x-remove-header": None,
                                                        "x-test-header": "20"},
                                            "query": {"q1": "20", "q2": "its a test"}})]),
    Case("validate template will be rendered with old value of replaced header", f"{RT}:2184",
         config=RTC, steps=[proxy("GET", "/rtrepl/x?q2=1",
                                  headers={"x-replace-header": "the old value"}, status=200,
                                  upstream={"headers": {"x-replace-header": "the new value"},
                                            "query": {"q2": "the old value"}})]),
    Case("validate template can be escaped", f"{RT}:2208", config=RTC, steps=[
        proxy("GET", "/rtesc/x", status=200,
              upstream={"query": {"q1": "$(uri_captures.user1)"}})]),
    Case("rendering error (query) should fail when rendering errors out", f"{RT}:2228",
         config=RTC, steps=[proxy("GET", "/rterr/x", status=500)]),
    Case("type function is available in template environment", f"{RT}:2261", config=RTC,
         steps=[proxy("GET", "/rttype/x", headers={"X-Foo": "1"}, status=200,
                      upstream={"headers": {"x-foo-transformed": "1"}})]),
    Case("changes the http method", f"{RT}", config=RTC, steps=[
        proxy("GET", "/rtmethod/x", status=200, upstream={"method": "POST"})]),
    Case("a template that cannot be parsed is a schema violation", "36-request-transformer/01-schema_spec.lua:40",
         steps=[Step("POST", "/plugins", json={"name": "request-transformer", "config": {
             "add": {"headers": ["x:$(shared.written = true)"]}}}, status=400,
             body={"code": 2, "fields": {"config": {"add": {"headers": [ANY]}}}})]),
]

# ------------------------------------------------------------------------------- response-transformer
RXC = _svc(_route("rx", [{"name": "response-transformer", "config": {
    "add": {"headers": ["h1:v1"]}, "remove": {"headers": ["x-echo-conn"]},
    "append": {"headers": ["h2:v2"]}}}]))
CASES += [
    Case("adds, appends and removes response headers", f"{RX}", config=RXC, steps=[
        proxy("GET", "/rx/x", status=200, resp_headers={"h1": "v1", "h2": "v2",
                                                        "x-echo-conn": None})]),
]

# ------------------------------------------------------------------------------- correlation-id
CIC = _svc(
    _route("ci", [{"name": "correlation-id"}]),
    _route("ciecho", [{"name": "correlation-id", "config": {"echo_downstream": True,
                                                            "header_name": "Kong-Request-ID"}}]),
)
CASES += [
    Case("increments the counter part / sets a uuid upstream", f"{CI}", config=CIC, steps=[
        proxy("GET", "/ci/x", status=200, upstream={"headers": {"Kong-Request-ID": [ANY]}})]),
    Case("preserves an existing correlation id", f"{CI}", config=CIC, steps=[
        proxy("GET", "/ci/x", headers={"Kong-Request-ID": "foobar"}, status=200,
              upstream={"headers": {"kong-request-id": "foobar"}})]),
    Case("echo_downstream sends the id back", f"{CI}", config=CIC, steps=[
        proxy("GET", "/ciecho/x", headers={"Kong-Request-ID": "abc"}, status=200,
              resp_headers={"Kong-Request-ID": "abc"})]),
]

# ------------------------------------------------------------------------------- bot-detection
BDC = _svc(
    _route("bd", [{"name": "bot-detection"}]),
    _route("bdallow", [{"name": "bot-detection", "config": {"allow": ["facebookexternalhit"]}}]),
    _route("bddeny", [{"name": "bot-detection", "config": {"deny": ["helloworld"]}}]),
)
CASES += [
    Case("allows regular requests", f"{BD}:121", config=BDC, steps=[
        proxy("GET", "/bd/x", headers={"User-Agent": "Mozilla/5.0"}, status=200)]),
    Case("blocks bots", f"{BD}:201", config=BDC, steps=[
        proxy("GET", "/bd/x", headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"},
              status=403, body={"message": "Forbidden"})]),
    Case("allows an allowed bot", f"{BD}", config=BDC, steps=[
        proxy("GET", "/bdallow/x", headers={"User-Agent": "facebookexternalhit/1.1"},
              status=200)]),
    Case("blocks a denied user agent", f"{BD}", config=BDC, steps=[
        proxy("GET", "/bddeny/x", headers={"User-Agent": "helloworld"}, status=403)]),
]

# ------------------------------------------------------------------------------- rate-limiting
RLC = _svc(_route("rl", [{"name": "rate-limiting", "config": {"minute": 2}}]),
           _route("rlhide", [{"name": "rate-limiting", "config": {"minute": 2,
                                                                  "hide_client_headers": True}}]),
           _route("rlcode", [{"name": "rate-limiting", "config": {
               "minute": 1, "error_code": 404, "error_message": "Fake Not Found"}}]))
CASES += [
    Case("blocks if exceeding limit", f"{RL}:1298", config=RLC, steps=[
        proxy("GET", "/rl/x", status=200, resp_headers={
            "X-RateLimit-Limit-Minute": "2", "X-RateLimit-Remaining-Minute": "1",
            "RateLimit-Limit": "2", "RateLimit-Remaining": "1"}),
        proxy("GET", "/rl/x", status=200, resp_headers={"X-RateLimit-Remaining-Minute": "0"}),
        proxy("GET", "/rl/x", status=429, body={"message": "API rate limit exceeded"},
              resp_headers={"X-RateLimit-Remaining-Minute": "0"})]),
    Case("hide_client_headers", f"{RL}", config=RLC, steps=[
        proxy("GET", "/rlhide/x", status=200, resp_headers={
            "X-RateLimit-Limit-Minute": None, "RateLimit-Limit": None})]),
    Case("custom error_code and error_message", f"{RL}", config=RLC, steps=[
        proxy("GET", "/rlcode/x", status=200),
        proxy("GET", "/rlcode/x", status=404, body={"message": "Fake Not Found"})]),
]

# ------------------------------------------------------------------------------- prometheus
PM = "26-prometheus/02-access_spec.lua"
PMC = _svc(_route("pm", [{"name": "prometheus", "config": {
    "status_code_metrics": True, "latency_metrics": True, "bandwidth_metrics": True}}]))
CASES += [
    Case("increments the count for proxied requests, with Kong's labels", f"{PM}",
         config=PMC, steps=[
             proxy("GET", "/pm/x", status=200),
             # the log phase runs after the response is sent: give it a moment
             # labels come out sorted (prometheus_client); Kong writes them in definition
             # order: the same series for Prometheus and the dashboard's queries
             Step("GET", "/metrics", status=200, sleep=0.3, contains=[
                 'kong_http_requests_total{code="200",consumer="",route="pm",service="echo",'
                 'source="service",workspace="default"} 1.0',
                 'kong_kong_latency_ms_bucket{le="1.0",route="pm",service="echo",'
                 'workspace="default"}',
                 'kong_request_latency_ms_count{route="pm",service="echo",'
                 'workspace="default"} 1.0',
                 'kong_upstream_latency_ms_count{route="pm",service="echo",'
                 'workspace="default"} 1.0',
                 'kong_bandwidth_bytes{consumer="",direction="ingress",route="pm",'
                 'service="echo",workspace="default"}',
                 "kong_nginx_connections_total{", "kong_datastore_reachable 1",
                 "kong_nginx_timers{state=\"running\"}",
                 "kong_memory_lua_shared_dict_bytes{",
                 "kong_memory_workers_lua_vms_bytes{"])]),
]

# ------------------------------------------------------------------------------- fields fastgw
# does not implement are refused (never accepted and ignored)
CASES += [
    Case("rate-limiting sync_rate below 0.02 with redis", "23-rate-limiting/01-schema_spec.lua",
         steps=[Step("POST", "/plugins", json={"name": "rate-limiting", "config": {
             "minute": 5, "policy": "redis", "redis": {"host": "127.0.0.1"},
             "sync_rate": 0.01}}, status=400, body={"fields": {"config": {"@entity": [
                 "sync_rate must be greater than 0.02, or -1 to disable"]}}})]),
    Case("rate-limiting batched sync_rate is refused", "23-rate-limiting/01-schema_spec.lua",
         steps=[Step("POST", "/plugins", json={"name": "rate-limiting", "config": {
             "minute": 5, "policy": "redis", "redis": {"host": "127.0.0.1"},
             "sync_rate": 10}}, status=400, body={"fields": {"config": {"sync_rate": ANY}}})]),
    Case("prometheus ai_metrics true is refused", "26-prometheus/07-optional_fields_spec.lua",
         steps=[Step("POST", "/plugins", json={"name": "prometheus",
                                                "config": {"ai_metrics": True}},
                     status=400, body={"fields": {"config": {"ai_metrics": ANY}}})]),
    Case("http-log queue.max_bytes is refused", "03-http-log/02-schema_spec.lua", steps=[
        Step("POST", "/plugins", json={"name": "http-log", "config": {
            "http_endpoint": "http://127.0.0.1:9/", "queue": {"max_bytes": 1000}}},
             status=400, body={"fields": {"config": {"queue": {"max_bytes": ANY}}}})]),
]

IPR2 = _svc(
    _route("ipcidr", [{"name": "ip-restriction", "config": {"deny": ["127.0.0.0/24"]}}]),
    _route("ipcidrallow", [{"name": "ip-restriction", "config": {
        "allow": ["127.0.0.0/24"], "deny": ["127.0.0.1"]}}]),
    _route("ipprec", [{"name": "ip-restriction", "config": {
        "allow": ["127.0.0.1"], "deny": ["127.0.0.1"]}}]),
    _route("ipall", [{"name": "ip-restriction", "config": {"deny": ["0.0.0.0/0"]}}]),
    _route("ipother", [{"name": "ip-restriction", "config": {"deny": ["127.0.0.2"]}}]),
    _route("ipcfg", [{"name": "ip-restriction", "instance_name": "ipcfg",
                      "config": {"deny": ["127.0.0.2"]}}]),
)
NOT_ALLOWED = {"message": "IP address not allowed: 127.0.0.1"}
CASES += [
    Case("blocks a request when the IP is denied with status/message", f"{IP}:311",
         config=IPR, steps=[proxy("GET", "/ipcustom/x", status=401,
                                  body={"message": "Forbidden"})]),
    Case("allows a request when the IP is not denied", f"{IP}:353", config=IPR2, steps=[
        proxy("GET", "/ipother/x", status=200)]),
    Case("blocks IP with CIDR", f"{IP}:392", config=IPR2, steps=[
        proxy("GET", "/ipcidr/x", status=403, body=NOT_ALLOWED)]),
    Case("blocks an IP on a allowed CIDR range", f"{IP}:403", config=IPR2, steps=[
        proxy("GET", "/ipcidrallow/x", status=403, body=NOT_ALLOWED)]),
    Case("takes precedence over an allowed IP", f"{IP}:414", config=IPR2, steps=[
        proxy("GET", "/ipprec/x", status=403, body=NOT_ALLOWED)]),
    Case("allows a allowed IP", f"{IP}:490", config=IPR, steps=[
        proxy("GET", "/ipallow/x", status=200)]),
    Case("handles a CIDR entry with 0.0.0.0/0", f"{IP}:630", config=IPR2, steps=[
        proxy("GET", "/ipall/x", status=403, body=NOT_ALLOWED)]),
    Case("supports config changes without restarting", f"{IP}:571", config=IPR2, steps=[
        proxy("GET", "/ipcfg/x", status=200),
        Step("PATCH", "/plugins/ipcfg", json={"config": {"deny": ["127.0.0.1", "127.0.0.2"]}},
             status=200),
        proxy("GET", "/ipcfg/x", status=403, body=NOT_ALLOWED)]),
]

from kong_cases import Re  # noqa: E402

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CIC2 = _svc(
    _route("corr1", [{"name": "correlation-id", "config": {"generator": "uuid#counter"}}]),
    _route("corr2", [{"name": "correlation-id"}]),
    _route("corr3", [{"name": "correlation-id", "config": {"generator": "uuid"}}]),
    _route("corr4", [{"name": "correlation-id", "config": {"header_name": "Foo-Bar-Id",
                                                           "generator": "uuid"}}]),
    _route("corr5", [{"name": "correlation-id", "config": {"echo_downstream": True,
                                                           "generator": "uuid"}}]),
)
CASES += [
    Case("increments the counter part", f"{CI}:204", config=CIC2, steps=[
        proxy("GET", "/corr1/request", status=200,
              upstream={"headers": {"kong-request-id": Re(UUID_RE + r"#\d+")}})]),
    Case("generates a unique UUID for every request", f"{CI}:272", config=CIC2, steps=[
        proxy("GET", "/corr3/request", status=200,
              upstream={"headers": {"kong-request-id": Re(UUID_RE)}})]),
    Case("echo_downstream sends uuid back to client", f"{CI}:330", config=CIC2, steps=[
        proxy("GET", "/corr5/request", status=200,
              resp_headers={"kong-request-id": Re(UUID_RE)})]),
    Case("echo_downstream does not send uuid back to client if not asked", f"{CI}:367",
         config=CIC2, steps=[proxy("GET", "/corr3/request", status=200,
                                   resp_headers={"kong-request-id": None})]),
    Case("uses a custom header name", f"{CI}:378", config=CIC2, steps=[
        proxy("GET", "/corr4/request", status=200,
              upstream={"headers": {"foo-bar-id": Re(UUID_RE)}})]),
    Case("preserves an already existing header", f"{CI}:393", config=CIC2, steps=[
        proxy("GET", "/corr2/request", headers={"Kong-Request-ID": "foobar"}, status=200,
              upstream={"headers": {"kong-request-id": "foobar"}})]),
    Case("does not preserve an already existing empty header", f"{CI}:408", config=CIC2,
         steps=[proxy("GET", "/corr2/request", headers={"Kong-Request-ID": ""}, status=200,
                      upstream={"headers": {"kong-request-id": Re(r".+")}})]),
    Case("does not preserve an already existing header with space only", f"{CI}:423",
         config=CIC2, steps=[proxy("GET", "/corr2/request", headers={"Kong-Request-ID": " "},
                                   status=200, upstream={"headers": {
                                       "kong-request-id": Re(r"\S.*")}})]),
]

CORS3 = _svc(
    _route("corsup", [{"name": "cors", "config": {"origins": ["example.test"]}}]),
    _route("cors6", [{"name": "cors", "config": {"origins": ["example.test", "example.org"]}}]),
    _route("cors11", [{"name": "cors", "config": {"origins": [
        "http://my-site.test", "https://my-other-site.test:9000"]}}]),
    _route("cors12", [{"name": "cors", "config": {"origins": ["a.xxx.test",
                                                              "allowed-domain.test"],
                                                  "credentials": True}}]),
    _route("cors15", [{"name": "cors", "config": {
        "origins": ["foo.bar"], "credentials": True, "exposed_headers": ["x-auth-token"],
        "allow_origin_absent": False}}]),
    _route("cors16", [{"name": "cors", "config": {
        "origins": ["foo.bar"], "credentials": True, "exposed_headers": ["x-auth-token"],
        "allow_origin_absent": True}}]),
)
CASES += [
    Case("sets Vary and don't override existing Vary header", f"{CO}:963", config=CORS3,
         upstream_headers=(("Vary", "Accept-Encoding"),), steps=[
             proxy("GET", "/corsup/x", headers={"Origin": "example.test"}, status=200,
                   resp_headers={"Vary": "Accept-Encoding, Origin"})]),
    Case("does not automatically parse the host", f"{CO}:976", config=CORS3, steps=[
        proxy("GET", "/cors6/x", headers={"Origin": "http://example.test"}, status=200,
              resp_headers={"Access-Control-Allow-Origin": None}),
        proxy("GET", "/cors6/x", headers={"Origin": "https://example.test"}, status=200,
              resp_headers={"Access-Control-Allow-Origin": None})]),
    Case("validates scheme and port", f"{CO}:999", config=CORS3, steps=[
        proxy("GET", "/cors11/x", headers={"Origin": o}, status=200,
              resp_headers={"Access-Control-Allow-Origin": acao})
        for o, acao in (("http://my-site.test", "http://my-site.test"),
                        ("http://my-site.test:80", "http://my-site.test"),
                        ("http://my-site.test:8000", None), ("https://my-site.test", None),
                        ("https://my-other-site.test:9000", "https://my-other-site.test:9000"),
                        ("https://my-other-site.test:9001", None))]),
    Case("removes upstream ACAO header when no match is found", f"{CO}:1127", config=CORS3,
         upstream_headers=(("Response-Header", "is-added"),
                           ("Access-Control-Allow-Origin", "*")), steps=[
             proxy("GET", "/cors12/response-headers", headers={"Origin": "allowed-domain.test"},
                   status=200, resp_headers={
                       "Response-Header": "is-added",
                       "Access-Control-Allow-Origin": "allowed-domain.test",
                       "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}),
             proxy("GET", "/cors12/response-headers",
                   headers={"Origin": "disallowed-domain.test"}, status=200, resp_headers={
                       "Response-Header": "is-added", "Access-Control-Allow-Origin": None,
                       "Access-Control-Allow-Credentials": "true"})]),
    Case("when allow_origin_absent is disabled with missing Origin header value, no ACAO is "
         "returned", f"{CO}:1170", config=CORS3, steps=[
             proxy("GET", "/cors15/x", status=200, resp_headers={
                 "Access-Control-Allow-Origin": None, "Access-Control-Allow-Credentials": None,
                 "Access-Control-Expose-Headers": None})]),
    Case("when allow_origin_absent is enabled with missing Origin header value, ACAO is "
         "returned", f"{CO}:1185", config=CORS3, steps=[
             proxy("GET", "/cors16/x", status=200, resp_headers={
                 "Access-Control-Allow-Origin": "foo.bar",
                 "Access-Control-Allow-Credentials": "true",
                 "Access-Control-Expose-Headers": "x-auth-token"})]),
]

CASES += [
    Case("works if size is lower than limit and Expect header", f"{RS}:97", config=RSL, steps=[
        proxy("POST", "/rsl/x", raw=b"a" * 10, headers={"Expect": "100-continue"},
              status=200)]),
    Case("blocks if size is greater than limit when unit in kilobytes", f"{RS}:148",
         config=RSL, steps=[proxy("POST", "/rslkb/x", raw=b"a" * 1025, status=413,
                                  body={"message": "Request size limit exceeded"})]),
    Case("chunked: works if size is lower than limit", f"{RS}:255", config=RSL, steps=[
        proxy("POST", "/rsl/x", headers={"Transfer-Encoding": "chunked"},
              raw=b"a\r\naaaaaaaaaa\r\n0\r\n\r\n", status=200)]),
    Case("chunked: blocks if size is greater than limit and Expect header", f"{RS}:304",
         config=RSL, deviation=(
             "a chunked body is counted while it streams: the 100 Continue has been sent, "
             "the answer is 413 (Kong reads the body first and answers 417)"), steps=[
             proxy("GET", "/rsl/x", headers={"Transfer-Encoding": "chunked",
                                             "Expect": "100-continue"},
                   raw=b"b\r\naaaaaaaaaaa\r\n0\r\n\r\n", status=417)]),
    Case("Content-Length header required: blocks if header is not provided", f"{RS}:363",
         config=RSL, steps=[proxy("GET", "/rslcl/x", status=411, body={
             "message": "A valid Content-Length header is required"})]),
]
