"""request-transformer cases from Kong's spec/03-plugins/36-request-transformer/02-access_spec.lua.

Kong's spec tells its routes apart by Host (test4.test, test9.test, ...); here each becomes a
path prefix (/t4, /t9, ...) that strip_path removes, so the upstream sees /request."""
from __future__ import annotations

from kong_cases import ABSENT as ABSENT_
from kong_cases import Case, Step

RT = "36-request-transformer/02-access_spec.lua"


def proxy(method: str, path: str, **kw) -> Step:
    return Step(method, path, admin=False, **kw)


def _rt(name: str, config: dict) -> dict:
    return {"name": name, "paths": [f"/{name}"],
            "plugins": [{"name": "request-transformer", "config": config}]}


CONFIG = {"services": [{"name": "echo", "url": "ECHO", "routes": [
    _rt("t1", {"add": {"headers": ["h1:v1", "h2:value:2"], "querystring": ["q1:v1"],
                       "body": ["p1:v1"]}}),
    _rt("t3", {"add": {"headers": ["x-added:a1", "x-added2:b1", "x-added3:c2"],
                       "querystring": ["query-added:newvalue", "p1:anything:1"],
                       "body": ["newformparam:newvalue"]},
               "remove": {"headers": ["x-to-remove"], "querystring": ["toremovequery"]},
               "append": {"headers": ["x-added:a2", "x-added:a3"],
                          "querystring": ["p1:a2", "p2:b1"]},
               "replace": {"headers": ["x-to-replace:false"],
                           "querystring": ["toreplacequery:no"]}}),
    _rt("t4", {"remove": {"headers": ["x-to-remove"], "querystring": ["q1"],
                          "body": ["toremoveform"]}}),
    _rt("t5", {"replace": {"headers": ["h1:v1"], "querystring": ["q1:v1"],
                           "body": ["p1:v1"]}}),
    _rt("t6", {"append": {"headers": ["h1:v1", "h1:v2", "h2:v1"],
                          "querystring": ["q1:v1", "q1:v2", "q2:v1"],
                          "body": ["p1:v1", "p1:v2", "p2:value:1"]}}),
    _rt("t7", {"http_method": "POST"}),
    _rt("t8", {"http_method": "GET"}),
    _rt("t9", {"rename": {"headers": ["x-to-rename:x-is-renamed"],
                          "querystring": ["originalparam:renamedparam"],
                          "body": ["originalparam:renamedparam"]}}),
    _rt("trcap", {"rename": {"headers": ["rename:Rename"]}}),
    _rt("t20", {"http_method": "POST", "add": {"headers": ["Content-Type:application/json"],
                                               "body": ["body:somecontent"]}}),
]}]}

CASES: list[Case] = [
    # --------------------------------------------------------------- http method
    Case("changes the HTTP method from GET to POST", f"{RT}:539", config=CONFIG, steps=[
        proxy("GET", "/t7/request?hello=world&name=marco", status=200, upstream={
            "method": "POST", "query": {"hello": "world", "name": "marco"}})]),
    Case("changes the HTTP method from POST to GET", f"{RT}:553", config=CONFIG, steps=[
        proxy("POST", "/t8/request?hello=world", form={"name": "marco"}, status=200,
              upstream={"method": "GET", "query": {"hello": "world", "name": "marco"}})]),
    # --------------------------------------------------------------- remove
    Case("remove: specified header", f"{RT}:589", config=CONFIG, steps=[
        proxy("GET", "/t4/request", headers={"x-to-remove": "true", "x-another-header": "true"},
              status=200, upstream={"headers": {"x-to-remove": None,
                                                "x-another-header": "true"}})]),
    Case("remove: parameters on url encoded form POST", f"{RT}:604", config=CONFIG, steps=[
        proxy("POST", "/t4/request", form={"toremoveform": "yes", "nottoremove": "yes"},
              status=200, upstream={"form": {"nottoremove": "yes"}})]),
    Case("remove: parameters from JSON body in POST", f"{RT}:623", config=CONFIG, steps=[
        proxy("POST", "/t4/request", json={"toremoveform": "yes", "nottoremove": "yes"},
              status=200, upstream={"json": {"nottoremove": "yes"}})]),
    Case("remove: does not fail if JSON body is malformed in POST", f"{RT}:642", config=CONFIG,
         steps=[proxy("POST", "/t4/request", raw=b"malformed json body",
                      headers={"Content-Type": "application/json"}, status=200,
                      upstream={"body_contains": "malformed json body"})]),
    Case("does not fail if body is empty and content type is application/json in POST",
         f"{RT}:657", config=CONFIG, steps=[
             proxy("POST", "/t4/request", raw=b"{}", headers={"Content-Type": "application/json"},
                   status=200, upstream={"json": {}, "headers": {"content-length": "2"}})]),
    Case("does not fail if body is empty in POST", f"{RT}:672", config=CONFIG, deviation=(
        "the proxy forwards an empty request body without `Content-Length: 0` (the upstream "
        "sees no body either way)"), steps=[
        proxy("POST", "/t4/request", raw=b"", status=200,
              upstream={"headers": {"content-length": "0"}})]),
    Case("remove: parameters on multipart POST", f"{RT}:688", config=CONFIG, steps=[
        proxy("POST", "/t4/request", multipart=[("toremoveform", "yes"), ("nottoremove", "yes")],
              status=200, upstream={"body_contains": 'name="nottoremove"\r\n\r\nyes'}),
        proxy("POST", "/t4/request", multipart=[("toremoveform", "yes"), ("nottoremove", "yes")],
              status=200, upstream={"body_lacks": "toremoveform"})]),
    Case("remove: args on GET if it exist", f"{RT}:707", config=CONFIG, steps=[
        proxy("GET", "/t4/request?q1=v1&q2=v2&hello=world", status=200,
              upstream={"query": {"q2": "v2", "hello": "world", "q1": ABSENT_}})]),
    Case("remove: preserves empty json array", f"{RT}:729", config=CONFIG, steps=[
        proxy("POST", "/t4/request", raw=b'{"emptyarray":[]}',
              headers={"Content-Type": "application/json"}, status=200,
              upstream={"json": {"emptyarray": []}})]),
    # --------------------------------------------------------------- rename
    Case("rename: specified header", f"{RT}:747", config=CONFIG, steps=[
        proxy("GET", "/t9/request", headers={"x-to-rename": "true", "x-another-header": "true"},
              status=200, upstream={"headers": {"x-to-rename": None, "x-is-renamed": "true",
                                                "x-another-header": "true"}})]),
    Case("rename: does not add as new header if header does not exist", f"{RT}:763",
         config=CONFIG, steps=[proxy("GET", "/t9/request", headers={"x-a-header": "true"},
                                     status=200, upstream={"headers": {
                                         "x-is-renamed": None, "x-a-header": "true"}})]),
    Case("override value if target header already exist: #%s", f"{RT}:779", config=CONFIG,
         steps=[proxy("GET", "/t9/request", headers={"x-to-rename": "new-result",
                                                     "X-Is-Renamed": "old-result"},
                      status=200, upstream={"headers": {"x-to-rename": None,
                                                        "x-is-renamed": "new-result"}})]),
    Case("rename: specified parameters in url encoded body on POST", f"{RT}:813",
         config=CONFIG, steps=[proxy("POST", "/t9/request", form={"originalparam": "yes"},
                                     status=200, upstream={"form": {"renamedparam": "yes",
                                                                    "originalparam": ABSENT_}})]),
    Case("rename: parameters from JSON body in POST", f"{RT}:848", config=CONFIG, steps=[
        proxy("POST", "/t9/request", json={"originalparam": "yes", "nottorename": "yes"},
              status=200, upstream={"json": {"renamedparam": "yes", "nottorename": "yes",
                                             "originalparam": ABSENT_}})]),
    Case("rename: parameters on multipart POST", f"{RT}:884", config=CONFIG, steps=[
        proxy("POST", "/t9/request", multipart=[("originalparam", "yes"),
                                                ("nottorename", "yes")], status=200,
              upstream={"body_contains": 'name="renamedparam"\r\n\r\nyes'})]),
    Case("rename: args on GET if it exists", f"{RT}:905", config=CONFIG, steps=[
        proxy("GET", "/t9/request?originalparam=true&nottorename=true", status=200,
              upstream={"query": {"renamedparam": "true", "nottorename": "true",
                                  "originalparam": ABSENT_}})]),
    Case("rename correctly when only changing capitalization", f"{RT}:941", config=CONFIG,
         steps=[proxy("GET", "/trcap/request", headers={"rename": "true"}, status=200,
                      upstream={"headers": {"Rename": "true"}})]),
    # --------------------------------------------------------------- replace
    Case("replace: specified header if it exist", f"{RT}:987", config=CONFIG, steps=[
        proxy("GET", "/t5/request", headers={"h1": "V", "h2": "v2"}, status=200,
              upstream={"headers": {"h1": "v1", "h2": "v2"}})]),
    Case("replace: does not add as new header if header does not exist", f"{RT}:1005",
         config=CONFIG, steps=[proxy("GET", "/t5/request", headers={"h2": "v2"}, status=200,
                                     upstream={"headers": {"h1": None, "h2": "v2"}})]),
    Case("replace: specified parameters in url encoded body on POST", f"{RT}:1021",
         config=CONFIG, steps=[proxy("POST", "/t5/request", form={"p1": "v", "p2": "v1"},
                                     status=200, upstream={"form": {"p1": "v1", "p2": "v1"}})]),
    Case("replace: does not add as new parameter in url encoded body if parameter does not exist",
         f"{RT}:1040", config=CONFIG, steps=[
             proxy("POST", "/t5/request", form={"p2": "v1"}, status=200,
                   upstream={"form": {"p2": "v1", "p1": ABSENT_}})]),
    Case("replace: specified parameters in json body on POST", f"{RT}:1057", config=CONFIG,
         steps=[proxy("POST", "/t5/request", json={"p1": "v", "p2": "v1"}, status=200,
                      upstream={"json": {"p1": "v1", "p2": "v1"}})]),
    Case("replace: does not add as new parameter in json if parameter does not exist",
         f"{RT}:1090", config=CONFIG, steps=[
             proxy("POST", "/t5/request", json={"p2": "v1"}, status=200,
                   upstream={"json": {"p2": "v1", "p1": ABSENT_}})]),
    Case("replace: specified parameters on multipart POST", f"{RT}:1107", config=CONFIG,
         steps=[proxy("POST", "/t5/request", multipart=[("p1", "v"), ("p2", "v1")],
                      status=200, upstream={"body_contains": 'name="p1"\r\n\r\nv1'})]),
    Case("replace: args on POST if it exist", f"{RT}:1147", config=CONFIG, steps=[
        proxy("POST", "/t5/request?q1=v&q2=v2", form={"hello": "world"}, status=200,
              upstream={"query": {"q1": "v1", "q2": "v2"}})]),
    Case("replace: does not add new args on POST if it does not exist", f"{RT}:1169",
         config=CONFIG, steps=[proxy("POST", "/t5/request?q2=v2", form={"hello": "world"},
                                     status=200, upstream={"query": {"q2": "v2",
                                                                     "q1": ABSENT_}})]),
    # --------------------------------------------------------------- add
    Case("add: new headers", f"{RT}:1247", config=CONFIG, steps=[
        proxy("GET", "/t1/request", status=200, upstream={"headers": {"h1": "v1",
                                                                      "h2": "value:2"}})]),
    Case("add: does not change or append value if header already exists", f"{RT}:1262",
         config=CONFIG, steps=[proxy("GET", "/t1/request", headers={"h1": "v3"}, status=200,
                                     upstream={"headers": {"h1": "v3", "h2": "value:2"}})]),
    Case("add: new parameter in url encoded body on POST", f"{RT}:1278", config=CONFIG,
         steps=[proxy("POST", "/t1/request", form={"hello": "world"}, status=200,
                      upstream={"form": {"hello": "world", "p1": "v1"}})]),
    Case("add: does not change or append value to parameter in url encoded body on POST "
         "when parameter exists", f"{RT}:1296", config=CONFIG, steps=[
             proxy("POST", "/t1/request", form={"p1": "should not change", "hello": "world"},
                   status=200, upstream={"form": {"p1": "should not change"}})]),
    Case("add: new parameter in JSON body on POST", f"{RT}:1315", config=CONFIG, steps=[
        proxy("POST", "/t1/request", json={"hello": "world"}, status=200,
              upstream={"json": {"hello": "world", "p1": "v1"}})]),
    Case("add: does not change or append value to parameter in JSON on POST when parameter "
         "exists", f"{RT}:1332", config=CONFIG, steps=[
             proxy("POST", "/t1/request", json={"p1": "this should not change"}, status=200,
                   upstream={"json": {"p1": "this should not change"}})]),
    Case("add: new parameter on multipart POST", f"{RT}:1365", config=CONFIG, steps=[
        proxy("POST", "/t1/request", multipart=[("hello", "world")], status=200,
              upstream={"body_contains": 'name="p1"\r\n\r\nv1'})]),
    Case("add: new querystring on GET", f"{RT}:1401", config=CONFIG, steps=[
        proxy("GET", "/t1/request?q2=v2", status=200,
              upstream={"query": {"q1": "v1", "q2": "v2"}})]),
    Case("add: does not change or append value to querystring on GET if querystring exists",
         f"{RT}:1419", config=CONFIG, steps=[
             proxy("GET", "/t1/request?q1=v2", status=200, upstream={"query": {"q1": "v2"}})]),
    Case("add: preserves empty json array", f"{RT}:1449", config=CONFIG, steps=[
        proxy("POST", "/t1/request", raw=b'{"emptyarray":[]}',
              headers={"Content-Type": "application/json"}, status=200,
              upstream={"json": {"emptyarray": [], "p1": "v1"}})]),
    # --------------------------------------------------------------- append
    Case("append: new header if header does not exists", f"{RT}:1467", config=CONFIG, steps=[
        proxy("GET", "/t6/request", status=200,
              upstream={"headers": {"h1": ["v1", "v2"], "h2": "v1"}})]),
    Case("append: values to existing headers", f"{RT}:1480", config=CONFIG, steps=[
        proxy("GET", "/t3/request", status=200,
              upstream={"headers": {"x-added": ["a1", "a2", "a3"]}})]),
    Case("append: new querystring if querystring does not exists", f"{RT}:1527", config=CONFIG,
         steps=[proxy("GET", "/t6/request", status=200,
                      upstream={"query": {"q1": ["v1", "v2"], "q2": "v1"}})]),
    Case("append: values to existing querystring", f"{RT}:1543", config=CONFIG, steps=[
        proxy("GET", "/t3/request", status=200,
              upstream={"query": {"p1": ["anything:1", "a2"], "p2": "b1"}})]),
    Case("append: new parameter in url encoded body on POST if it does not exist", f"{RT}:1556",
         config=CONFIG, steps=[proxy("POST", "/t6/request", form={}, status=200,
                                     upstream={"form": {"p1": ["v1", "v2"],
                                                        "p2": "value:1"}})]),
    Case("append: values to existing parameter in url encoded body if parameter already "
         "exist on POST", f"{RT}:1573", config=CONFIG, steps=[
             proxy("POST", "/t6/request", form={"p1": "v0"}, status=200,
                   upstream={"form": {"p1": ["v0", "v1", "v2"], "p2": "value:1"}})]),
    # --------------------------------------------------------------- remove, replace, add, append
    Case("removes a header", f"{RT}:1643", config=CONFIG, steps=[
        proxy("GET", "/t3/request", headers={"x-to-remove": "true"}, status=200,
              upstream={"headers": {"x-to-remove": None}})]),
    Case("replaces value of header, if header exist", f"{RT}:1656", config=CONFIG, steps=[
        proxy("GET", "/t3/request", headers={"x-to-replace": "true"}, status=200,
              upstream={"headers": {"x-to-replace": "false"}})]),
    Case("does not add new header if to be replaced header does not exist", f"{RT}:1670",
         config=CONFIG, steps=[proxy("GET", "/t3/request", status=200,
                                     upstream={"headers": {"x-to-replace": None}})]),
    Case("add new header if missing", f"{RT}:1682", config=CONFIG, steps=[
        proxy("GET", "/t3/request", status=200, upstream={"headers": {"x-added2": "b1"}})]),
    Case("does not add new header if it already exist", f"{RT}:1695", config=CONFIG, steps=[
        proxy("GET", "/t3/request", headers={"x-added3": "c1"}, status=200,
              upstream={"headers": {"x-added3": "c1"}})]),
    Case("removes parameters on GET", f"{RT}:1738", config=CONFIG, steps=[
        proxy("GET", "/t3/request?toremovequery=yes&nottoremove=yes", status=200,
              upstream={"query": {"toremovequery": ABSENT_, "nottoremove": "yes"}})]),
    Case("replaces parameters on GET", f"{RT}:1760", config=CONFIG, steps=[
        proxy("GET", "/t3/request?toreplacequery=yes", status=200,
              upstream={"query": {"toreplacequery": "no"}})]),
    Case("adds parameters on GET if it does not exist", f"{RT}:1791", config=CONFIG, steps=[
        proxy("GET", "/t3/request", status=200, upstream={"query": {"query-added": "newvalue"}})]),
    Case("does not add new parameter if to be added parameters already exist on GET",
         f"{RT}:1804", config=CONFIG, steps=[
             proxy("GET", "/t3/request?query-added=oldvalue", status=200,
                   upstream={"query": {"query-added": "oldvalue"}})]),
    Case("removes a header -- ignore case", f"{RT}:1843", config=CONFIG, steps=[
        proxy("GET", "/t3/request", headers={"X-To-Remove": "true"}, status=200,
              upstream={"headers": {"x-to-remove": None}})]),
    Case("add new header if missing -- keep configured case", f"{RT}:1870", config=CONFIG,
         steps=[proxy("GET", "/t3/request", status=200,
                      upstream={"headers": {"x-added2": "b1"}})]),
    Case("changes the HTTP method from GET to POST and adds JSON body", f"{RT}:571",
         config=CONFIG, steps=[
             proxy("GET", "/t20/request", status=200, upstream={
                 "method": "POST", "headers": {"content-type": "application/json"},
                 "json": {"body": "somecontent"}})]),
]
