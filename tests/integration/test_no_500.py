"""No input makes the API answer 5xx. Every route of the app is fed hostile requests generated
from its own OpenAPI schema: malformed and wrongly typed bodies, each field replaced by junk,
unknown or garbled path ids, bad query parameters, missing or garbled tokens, wrong content
types. Every answer must be below 500; a 4xx must be Nova's error body with a message; a 400
caused by a field that breaks the declared schema must name that field. And the barrage must
change nothing: no server, port, group, keypair, quota usage or quota limit is left behind.

The generated requests are deterministic (seeded per route) and meant to be refused: each body
route has a base body that passes validation but is refused by a check that runs last, so a
replaced field is carried as deep into the API as it can go without anything being created.
"""

from __future__ import annotations

import copy
import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from api.app import app
from api.microversion import MAX_VERSION
from novaflow.config import Settings
from novaflow.seed import PRIVATE_NETWORK_ID
from tests.integration.client import CIRROS, TITLES
from workers.devstack import Stack

Schema = dict[str, Any]
Path = tuple[str | int, ...]

OPENAPI: dict[str, Any] = app.openapi()
DEFS: dict[str, Schema] = OPENAPI.get("components", {}).get("schemas", {})
METHODS = ("get", "put", "post", "delete", "patch")
PROJECT = "p-no-500"
USER = f"fuzzer:{PROJECT}"
ADMIN = f"admin:{PROJECT}"
TAKEN_KEYPAIR = "fuzz-taken"  # made before the barrage, so creating it again is refused
UNKNOWN_BODY_FIELD = "bogus_field"


# --- the routes, from the app's own OpenAPI schema ----------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    path_params: tuple[str, ...]
    query: tuple[tuple[str, Schema], ...]
    authenticated: bool
    body: Schema | None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def resolve(schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = DEFS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def routes() -> list[Route]:
    found = []
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            params = operation.get("parameters", [])
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            found.append(
                Route(
                    method=method.upper(),
                    path=path,
                    path_params=tuple(p["name"] for p in params if p["in"] == "path"),
                    query=tuple((p["name"], p["schema"]) for p in params if p["in"] == "query"),
                    authenticated=any(p["name"].lower() == "x-auth-token" for p in params),
                    body=resolve(body["schema"]) if body else None,
                )
            )
    return found


ROUTES = routes()


# --- a small JSON-schema checker: does a value break the declared schema? --------------------


def alternatives(schema: Schema) -> list[Schema]:
    schema = resolve(schema)
    return [resolve(s) for s in schema.get("anyOf") or schema.get("oneOf") or [schema]]


def _same(value: Any, wanted: Any) -> bool:
    # JSON schema's const/enum do not equate true with 1, as Python's == does.
    return type(value) is type(wanted) and value == wanted


def _all(results: Iterator[bool | None]) -> bool | None:
    seen = list(results)
    return False if False in seen else None if None in seen else True


_TYPES: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
# Keywords this checker does not understand: a value under one of them is "don't know" (None).
_UNKNOWN_KEYWORDS = {"pattern", "format", "multipleOf", "allOf", "not", "if", "uniqueItems"}


def conforms(value: Any, schema: Schema) -> bool | None:
    """True if `value` is valid under `schema`, False if not, None when this checker cannot
    tell (then the test asks less of the answer)."""
    schema = resolve(schema)
    if "anyOf" in schema or "oneOf" in schema:
        results = [conforms(value, alt) for alt in alternatives(schema)]
        return True if True in results else None if None in results else False
    if "const" in schema:
        return _same(value, schema["const"])
    if "enum" in schema:
        return any(_same(value, e) for e in schema["enum"])
    if _UNKNOWN_KEYWORDS & schema.keys():
        return None
    kind = schema.get("type")
    if kind is None:
        return True
    if not isinstance(kind, str) or kind not in _TYPES:
        return None
    if not _TYPES[kind](value):
        return False
    if kind == "string":
        return schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
    if kind in ("integer", "number"):
        return _in_bounds(value, schema)
    if kind == "array":
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            return False
        return _all(conforms(item, schema.get("items", {})) for item in value)
    if kind == "object":
        return _object_conforms(value, schema)
    return True


def _in_bounds(value: float, schema: Schema) -> bool:
    if value != value:  # NaN is no number a schema means
        return False
    return (
        value >= schema.get("minimum", value)
        and value <= schema.get("maximum", value)
        and ("exclusiveMinimum" not in schema or value > schema["exclusiveMinimum"])
        and ("exclusiveMaximum" not in schema or value < schema["exclusiveMaximum"])
    )


def _object_conforms(value: dict[str, Any], schema: Schema) -> bool | None:
    properties = schema.get("properties", {})
    if any(name not in value for name in schema.get("required", [])):
        return False
    if not schema.get("minProperties", 0) <= len(value) <= schema.get("maxProperties", len(value)):
        return False
    extra = schema.get("additionalProperties", True)
    results: list[bool | None] = []
    for name, item in value.items():
        if name in properties:
            results.append(conforms(item, properties[name]))
        elif extra is False:
            return False
        elif isinstance(extra, dict):
            results.append(conforms(item, extra))
        if "propertyNames" in schema:
            results.append(conforms(name, schema["propertyNames"]))
    return _all(iter(results))


# --- bodies: valid samples, every field's path, and replacing what is at a path -------------


def sample(schema: Schema) -> Any:
    """A small value valid under `schema` (never null when something else is allowed)."""
    options = [s for s in alternatives(schema) if s.get("type") != "null"] or [{"type": "null"}]
    schema = options[0]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string":
        return "fuzz"[: schema.get("maxLength", 4)].ljust(schema.get("minLength", 0), "z")
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return [sample(schema["items"])] if schema.get("minItems", 0) else []
    if kind == "object":
        properties = schema.get("properties", {})
        value = {name: sample(properties[name]) for name in schema.get("required", [])}
        entries = schema.get("additionalProperties")
        if not properties and isinstance(entries, dict) and schema.get("maxProperties") != 0:
            value["fuzz"] = sample(entries)  # a dict (e.g. metadata) with one entry
        return value
    return None


def child_schema(schema: Schema, step: str | int) -> Schema | None:
    """The schema of `step` inside a value of `schema` (the union member that has it)."""
    for option in alternatives(schema):
        if isinstance(step, int) and option.get("type") == "array" and "items" in option:
            return resolve(option["items"])
        if isinstance(step, str) and option.get("type") == "object":
            if step in option.get("properties", {}):
                return resolve(option["properties"][step])
            if isinstance(option.get("additionalProperties"), dict):
                return resolve(option["additionalProperties"])
    return None


def field_paths(schema: Schema, prefix: Path = ()) -> Iterator[tuple[Path, Schema]]:
    """Every field a request may hold: object properties, a dict's entry (key "k") and a
    list's first item, depth first."""
    for option in alternatives(schema):
        steps: list[str | int] = []
        if option.get("type") == "object":
            steps = list(option.get("properties", {}))
            if isinstance(option.get("additionalProperties"), dict):
                steps.append("k")
        elif option.get("type") == "array" and "items" in option:
            steps = [0]
        for step in steps:
            sub = child_schema(option, step)
            if sub is not None:
                yield prefix + (step,), sub
                yield from field_paths(sub, prefix + (step,))


def object_paths(schema: Schema) -> list[Path]:
    """The request's objects with declared properties (where an unknown field can go)."""
    found = [()] if any(o.get("properties") for o in alternatives(schema)) else []
    for path, sub in field_paths(schema):
        if any(o.get("properties") for o in alternatives(sub)) and path not in found:
            found.append(path)
    return found


def dotted(path: Path) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text or "body"


def _container_for(schema: Schema | None, step: str | int) -> Any:
    """A valid value at a point of the body that must hold `step` (a list or an object)."""
    for option in alternatives(schema or {}):
        wanted = "array" if isinstance(step, int) else "object"
        if option.get("type") == wanted:
            value = sample(option)
            if isinstance(step, int) and not value:
                value = [sample(option["items"])]
            return value
    return [] if isinstance(step, int) else {}


def _walk_to_parent(body: Any, path: Path, root: Schema) -> Any:
    """The container holding the last step of `path`, made (validly) where the body lacks it."""
    node, schema = body, root
    for step, following in zip(path, path[1:], strict=False):
        schema = child_schema(schema, step) if schema else None
        missing = (
            step not in node
            if isinstance(node, dict)
            else not isinstance(step, int) or step >= len(node)
        )
        held = None if missing else node[step]
        fits = isinstance(held, list if isinstance(following, int) else dict)
        if not fits:
            node[step] = _container_for(schema, following)
        node = node[step]
    return node


def with_value(body: Any, path: Path, value: Any, root: Schema) -> Any:
    changed = copy.deepcopy(body)
    parent = _walk_to_parent(changed, path, root)
    if isinstance(parent, list):
        parent.extend([None] * (int(path[-1]) + 1 - len(parent)))
    parent[path[-1]] = value
    return changed


def without(body: Any, path: Path, root: Schema) -> Any:
    changed = copy.deepcopy(body)
    _walk_to_parent(changed, path, root).pop(path[-1], None)
    return changed


# --- what is sent, and what it is expected to get ------------------------------------------

HOSTILE_VALUES: list[tuple[str, Any]] = [
    ("null", None),
    ("list", []),
    ("list-of-junk", [1, "x", None]),
    ("dict", {}),
    ("dict-of-junk", {"k": "v"}),
    ("huge-int", 10**30),
    ("int64-overflow", 2**63),
    ("negative", -1),
    ("float", 1.5),
    ("nan", float("nan")),
    ("true", True),
    ("false", False),
    ("empty-string", ""),
    ("blank-string", "   "),
    ("100KB-string", "x" * 100_000),
    ("unicode", "é名🙂\u202e\ufeff"),
    ("lone-surrogate", "a\ud800b"),
    ("nul", "a\x00b"),
    ("control-chars", "\x01\x07\x1b[31m\r\n"),
    ("path-traversal", "../../../etc/passwd"),
    ("encoded-traversal", "..%2F..%2Fetc%2Fpasswd"),
    ("sql", "' OR '1'='1' --"),
]
MALFORMED_BODIES: list[tuple[str, bytes]] = [
    ("truncated", b'{"a": '),
    ("brace", b"{"),
    ("empty", b""),
    ("bare-word", b"nul"),
    ("single-quotes", b"{'a': 1}"),
    ("trailing-garbage", b'{"a": 1} {"b": 2}'),
    ("invalid-utf8", b'{"a": "\xff\xfe"}'),
    ("utf16-bom", b"\xff\xfe{\x00}\x00"),
    ("nul-byte", b"\x00"),
    ("deep-nesting", b"[" * 50_000 + b"]" * 50_000),  # within the body size limit: parsed
    ("1MB-string", b'{"a": "' + b"x" * 1_000_000 + b'"}'),  # past it: 413, never read
]
BODY_LIMIT = Settings().max_request_body_size  # the stack runs with the default
WRONG_TOP_LEVEL: list[tuple[str, Any]] = [
    ("list", []),
    ("list-of-dict", [{}]),
    ("string", "body"),
    ("number", 1),
    ("null", None),
    ("true", True),
]
WRONG_CONTENT_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "application/octet-stream",
]
GARBLED_TOKENS: list[tuple[str, str | None]] = [
    ("no-token", None),
    ("empty-token", ""),
    ("space-not-colon", f"fuzzer {PROJECT}"),
    ("no-colon", "fuzzer"),
    ("no-user", f":{PROJECT}"),
    ("no-project", "fuzzer:"),
    ("only-colon", ":"),
]


def hostile_ids(rng: random.Random) -> list[tuple[str, str]]:
    """Path segments, already percent-encoded as a client would send them."""
    return [
        ("random-uuid", str(uuid.UUID(int=rng.getrandbits(128), version=4))),
        ("not-a-uuid", "not-a-uuid"),
        ("zero", "0"),
        ("negative", "-1"),
        ("huge-int", "9" * 40),
        ("60KB-id", "x" * 60_000),  # httpx sends at most 64 KiB of URL
        ("encoded-slash", "a%2Fb"),
        ("encoded-traversal", "..%2F..%2F..%2Fetc%2Fpasswd"),
        ("encoded-dotdot", "%2E%2E"),
        ("nul", "%00"),
        ("newline", "a%0Ab"),
        ("unicode", quote("é名🙂")),
        ("invalid-utf8", "%FF%FE"),
        ("surrogate", "%ED%A0%80"),
        ("percent", "%25"),
        ("space", "%20"),
        ("sql", quote("' OR '1'='1", safe="")),
    ]


def hostile_query_values(schema: Schema, rng: random.Random) -> list[tuple[str, str]]:
    kinds = {o.get("type") for o in alternatives(schema)}
    values = [("empty", ""), ("nul", "%00"), ("invalid-utf8", "%FF"), ("surrogate", "%ED%A0%80")]
    if "integer" in kinds:
        values += [("negative", "-1"), ("word", "abc"), ("float", "1.5"), ("exp", "1e3")]
        values += [("hex", "0x1f"), ("huge", "9" * 40), ("too-many-digits", "9" * 5000)]
    if "boolean" in kinds:
        values += [("maybe", "maybe"), ("two", "2"), ("minus-one", "-1")]
    if "string" in kinds:
        values += [("random-uuid", str(uuid.UUID(int=rng.getrandbits(128), version=4)))]
        values += [("4KB", "x" * 4096), ("unicode", quote("é名🙂"))]
        values += [("traversal", quote("../../etc/passwd", safe="")), ("sql", quote("' OR 1=1"))]
    return values


def query_conforms(raw: str, schema: Schema) -> bool | None:
    """Whether a query string value is valid for the parameter (as pydantic parses it)."""
    text = unquote(raw, errors="replace")  # as the server decodes it
    results: list[bool | None] = []
    for option in alternatives(schema):
        kind = option.get("type")
        if kind == "integer":
            ok = re.fullmatch(r"[+-]?\d{1,4300}", text) is not None
            results.append(ok and _in_bounds(int(text), option))
        elif kind == "boolean":
            results.append(text.lower() in {"0", "1", "true", "false", "yes", "no", "on", "off"})
        elif kind == "string":
            results.append(conforms(text, option))
        elif kind != "null":
            results.append(None)
    return True if True in results else None if None in results else False


@dataclass(frozen=True)
class Expect:
    refused: bool = True  # a 4xx; else a 2xx is fine too
    status: int | None = None  # exactly this status
    field: str | None = None  # a 400 must name this field (or one inside it)


@dataclass(frozen=True)
class Probe:
    what: str
    method: str
    url: str
    token: str | None
    expect: Expect
    body: bytes | None = None
    content_type: str | None = None


def encode(body: Any) -> bytes:
    # Not httpx's json=: it refuses NaN and writes non-ASCII raw; this keeps escapes such as a
    # lone surrogate (\ud800) for the server's JSON parser to meet.
    return json.dumps(body).encode()


# --- per-route plans: a valid body refused by the check that runs last -----------------------


@dataclass(frozen=True)
class BodyPlan:
    """`base` passes validation and is refused by a check that runs last, so that a replaced
    field goes as deep as it can. Replacing a field on a path related to `guards` (inside one,
    or holding one) could lift that refusal: such a request is made on `fallback` instead,
    refused some other way (that a field related to `fallback_guards` could lift). A request
    neither can refuse may be accepted: what it creates is deleted again."""

    base: Any
    guards: tuple[Path, ...] = ()
    fallback: Any = None
    fallback_guards: tuple[Path, ...] = ()
    extra: tuple[Probe, ...] = ()

    def body_for(self, path: Path) -> tuple[Any, bool]:
        """The body to change at `path`, and whether the changed request must be refused."""
        if not related(path, self.guards):
            return self.base, True
        if self.fallback is not None and not related(path, self.fallback_guards):
            return self.fallback, True
        return self.base, False


def related(path: Path, guards: tuple[Path, ...]) -> bool:
    return any(path[: len(g)] == g or g[: len(path)] == path for g in guards)


def unknown_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def server_plan(_: Route, rng: random.Random) -> BodyPlan:
    # The scheduler-hint group is checked after everything else (flavor, image, key, networks,
    # ports, fixed IPs, zone): an unknown one refuses an otherwise bootable server.
    server = {
        "name": "fuzz",
        "flavorRef": "1",
        "imageRef": CIRROS,
        "networks": [{"uuid": PRIVATE_NETWORK_ID}],
    }
    hints = ("os:scheduler_hints",)
    return BodyPlan(
        base={"server": server, "os:scheduler_hints": {"group": unknown_id(rng)}},
        guards=(hints,),
        fallback={"server": {**server, "flavorRef": "fuzz-no-such-flavor"}},
        fallback_guards=(("server", "flavorRef"),),
    )


def keypair_plan(_: Route, __: random.Random) -> BodyPlan:
    # A name the user already holds is refused after the name, type and key are checked.
    return BodyPlan(
        base={"keypair": {"name": TAKEN_KEYPAIR}},
        guards=(("keypair", "name"),),
        fallback={"keypair": {"name": TAKEN_KEYPAIR, "public_key": "ssh-rsa not-a-key"}},
        fallback_guards=(("keypair", "public_key"),),
    )


def port_plan(_: Route, rng: random.Random) -> BodyPlan:
    # An address outside the subnet is refused by IPAM, after the network is looked up and the
    # port quota reserved (which must roll back).
    return BodyPlan(
        base={
            "port": {"network_id": PRIVATE_NETWORK_ID, "fixed_ips": [{"ip_address": "192.0.2.7"}]}
        },
        guards=(("port", "fixed_ips"),),
        fallback={"port": {"network_id": unknown_id(rng)}},
        fallback_guards=(("port", "network_id"),),
    )


def quota_plan(route: Route, rng: random.Random) -> BodyPlan:
    # A limit below -1 is refused. Replacing the whole quota_set lifts both refusals: {} is a
    # valid update that changes nothing.
    url = fill(route, rng)  # the fuzzing project's own quota (FIXED_PATHS)
    return BodyPlan(
        base={"quota_set": {"ports": -5}},
        guards=(("quota_set", "ports"),),
        fallback={"quota_set": {"instances": -5}},
        fallback_guards=(("quota_set", "instances"),),
        extra=tuple(
            beyond_the_database(url, name, value)
            for name in integer_fields(route, "quota_set")
            for value in (2**31, 2**63)
        ),
    )


def integer_fields(route: Route, envelope: str) -> list[str]:
    """The fields of the body's envelope that take an integer (1 is valid for them)."""
    inside = child_schema(route.body or {}, envelope) or {}
    return [name for name, s in inside.get("properties", {}).items() if conforms(1, s)]


def beyond_the_database(url: str, name: str, value: int) -> Probe:
    """A limit no limit column holds (PostgreSQL's INTEGER stops at 2**31 - 1, SQLite's at
    2**63 - 1), alone in the body: nothing else refuses it."""
    return Probe(
        what=f"quota_set.{name}={value} alone",
        method="PUT",
        url=url,
        token=ADMIN,
        body=encode({"quota_set": {name: value}}),
        content_type="application/json",
        expect=Expect(status=400, field=f"quota_set.{name}"),
    )


PLANS: dict[str, Callable[[Route, random.Random], BodyPlan]] = {
    "POST /v2.1/servers": server_plan,
    "POST /v2.1/os-keypairs": keypair_plan,
    "POST /v2.1/ports": port_plan,
    "PUT /v2.1/os-quota-sets/{project_id}": quota_plan,
}
# Path ids these routes must be given for their body to be refused as planned.
FIXED_PATHS = {"PUT /v2.1/os-quota-sets/{project_id}": {"project_id": PROJECT}}


def plan_for(route: Route, rng: random.Random) -> BodyPlan:
    if route.key in PLANS:
        return PLANS[route.key](route, rng)
    assert route.body is not None
    # Any other route with a path id gets an unknown one: a valid body is refused with a 404.
    # One without (e.g. POST /os-server-groups) may accept a valid body: it is deleted again.
    guards: tuple[Path, ...] = () if route.path_params else ((),)
    return BodyPlan(base=sample(route.body), guards=guards)


# --- building every probe of a route ----------------------------------------------------------


def fill(route: Route, rng: random.Random, **given: str) -> str:
    url = route.path
    fixed = FIXED_PATHS.get(route.key, {})
    for name in route.path_params:
        url = url.replace("{" + name + "}", given.get(name) or fixed.get(name) or unknown_id(rng))
    return url


def writer(admin_only: bool) -> str:
    return ADMIN if admin_only else USER


def callers(route: Route, admin_only: bool) -> list[str]:
    # Reads are harmless for both (unless only an admin may read it); writes go as the user
    # unless the route is admin's alone.
    if route.method == "GET":
        return [ADMIN] if admin_only else [USER, ADMIN]
    return [writer(admin_only)]


def auth_probes(route: Route, rng: random.Random, body: bytes | None) -> list[Probe]:
    if not route.authenticated:
        return []
    return [
        Probe(
            what=f"token {name}",
            method=route.method,
            url=fill(route, rng),
            token=token,
            body=body,
            content_type="application/json" if body is not None else None,
            expect=Expect(status=401),
        )
        for name, token in GARBLED_TOKENS
    ]


def path_probes(
    route: Route, rng: random.Random, admin_only: bool, body: bytes | None
) -> list[Probe]:
    # A read of an odd id may find nothing or something (quota sets of any project exist); a
    # write must be refused; a NUL, which no database stores, is a 400 whatever the method.
    any_read_or_refused = Expect(refused=route.method != "GET")
    probes = []
    for param in route.path_params:
        for name, value in hostile_ids(rng):
            url = fill(route, rng, **{param: value})
            for token in callers(route, admin_only):
                probes.append(
                    Probe(
                        what=f"path {param}={name}",
                        method=route.method,
                        url=url,
                        token=token,
                        body=body,
                        content_type="application/json" if body is not None else None,
                        expect=Expect(status=400) if value == "%00" else any_read_or_refused,
                    )
                )
    return probes


def query_probes(route: Route, rng: random.Random, admin_only: bool) -> list[Probe]:
    base = fill(route, rng)
    probes = []
    for param, schema in route.query:
        for name, raw in hostile_query_values(schema, rng):
            verdict = query_conforms(raw, schema)
            expect = Expect(refused=route.method != "GET")
            if verdict is False or raw == "%00":
                expect = Expect(status=400, field=f"query.{param}")
            for token in callers(route, admin_only):
                probes.append(
                    Probe(
                        f"query {param}={name}",
                        route.method,
                        f"{base}?{param}={raw}",
                        token,
                        expect,
                    )
                )
        for token in callers(route, admin_only):
            twice = f"{base}?{param}=1&{param}=abc"
            probes.append(
                Probe(
                    f"query {param} twice",
                    route.method,
                    twice,
                    token,
                    Expect(refused=route.method != "GET"),
                )
            )
    if route.query:
        odd = f"{base}?{UNKNOWN_BODY_FIELD}=1&=x&&novalue"
        probes.append(
            Probe("query junk", route.method, odd, USER, Expect(refused=route.method != "GET"))
        )
    return probes


def body_probes(route: Route, plan: BodyPlan, rng: random.Random, admin_only: bool) -> list[Probe]:
    assert route.body is not None
    url = fill(route, rng)
    token = writer(admin_only)
    schema = route.body

    def probe(
        what: str, body: bytes, expect: Expect, content_type: str = "application/json"
    ) -> Probe:
        return Probe(what, route.method, url, token, expect, body, content_type)

    probes = [
        probe(f"malformed {name}", raw, Expect(status=413 if len(raw) > BODY_LIMIT else 400))
        for name, raw in MALFORMED_BODIES
    ]
    probes += [
        probe(f"top-level {name}", encode(value), Expect(status=400, field="body"))
        for name, value in WRONG_TOP_LEVEL
    ]
    base, refused = plan.body_for(())
    probes += [
        probe(f"content-type {ct}", encode(base), Expect(refused=refused), ct)
        for ct in WRONG_CONTENT_TYPES
    ]
    probes.append(probe("no content-type", encode(base), Expect(refused=refused), ""))
    probes.append(probe("valid-looking base", encode(base), Expect(refused=refused)))
    for path, _ in field_paths(schema):
        body, refused = plan.body_for(path)
        for name, value in HOSTILE_VALUES:
            changed = with_value(body, path, value, schema)
            probes.append(
                probe(
                    f"{dotted(path)}={name}",
                    encode(changed),
                    judged(changed, schema, path, value, refused),
                )
            )
        if path[-1] in _required_of(schema, path[:-1]):
            changed = without(body, path, schema)
            probes.append(
                probe(
                    f"{dotted(path)} missing",
                    encode(changed),
                    Expect(status=400, field=dotted(path)),
                )
            )
    for path in object_paths(schema):
        body, refused = plan.body_for(path)
        extra = path + (UNKNOWN_BODY_FIELD,)
        changed = with_value(body, extra, 1, schema) if path else {**body, UNKNOWN_BODY_FIELD: 1}
        probes.append(
            probe(
                f"unknown {dotted(extra)}", encode(changed), Expect(status=400, field=dotted(extra))
            )
        )
    return probes + list(plan.extra)


def _required_of(schema: Schema, path: Path) -> set[str]:
    node: Schema | None = schema
    for step in path:
        node = child_schema(node, step) if node else None
    return {name for o in alternatives(node or {}) for name in o.get("required", [])}


def judged(body: Any, schema: Schema, path: Path, value: Any, refused: bool) -> Expect:
    """A body that breaks the schema, or holds text no database stores, must get a 400 naming
    the field; any other is refused by the plan's last check (or, unguarded, may be accepted)."""
    if conforms(body, schema) is False or unstorable(value):
        return Expect(status=400, field=dotted(path))
    return Expect(refused=refused)


def unstorable(value: Any) -> bool:
    """Text the API refuses wherever it is: with a NUL, or a lone surrogate."""
    return isinstance(value, str) and any(
        ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF for ch in value
    )


def probes_for(route: Route, admin_only: bool) -> list[Probe]:
    rng = random.Random(route.key)  # deterministic: the same requests on every run
    plan = plan_for(route, rng) if route.body is not None else None
    body = encode(plan.base) if plan is not None else None
    probes = auth_probes(route, rng, body)
    probes += path_probes(route, rng, admin_only, body)
    probes += query_probes(route, rng, admin_only)
    if plan is not None:
        probes += body_probes(route, plan, rng, admin_only)
    if route.method == "GET" and not route.path_params and not route.query:
        probes += [
            Probe("plain", route.method, route.path, t, Expect(refused=False))
            for t in callers(route, admin_only)
        ]
    return probes


# --- sending and judging --------------------------------------------------------------------

# Routes Nova added after 2.1 (tags 2.26, a server's migrations 2.23): asked for at the
# maximum, where they exist (every other route at 2.1, the default).
# Routes that exist only from a later microversion (at 2.1 a service's id is an action name).
LATER_ROUTES = re.compile(
    r"^/v2\.1/(servers/[^/?]+/(tags|migrations)(/|\?|$)|os-services/[0-9a-f-]{36}$)"
)


@dataclass
class Fuzzer:
    client: httpx.Client

    def send(self, probe: Probe) -> httpx.Response:
        headers = {}
        if LATER_ROUTES.match(probe.url):
            headers["OpenStack-API-Version"] = f"compute {MAX_VERSION}"
        if probe.token is not None:
            headers["X-Auth-Token"] = probe.token
        if probe.content_type:
            headers["Content-Type"] = probe.content_type
        return self.client.request(probe.method, probe.url, content=probe.body, headers=headers)

    def check(self, probe: Probe) -> str | None:
        """What is wrong with the answer to `probe`, or None."""
        try:
            response = self.send_again_if_dropped(probe)
        except httpx.TransportError as error:
            return describe(probe, f"no answer: {type(error).__name__}: {error}")
        problem = judge(probe.expect, response)
        if problem is None and response.is_success and probe.method == "POST":
            self.delete_created(probe, response)
        if problem is None:
            return None
        return describe(probe, f"-> {response.status_code} {response.text[:300]}\n    {problem}")

    def send_again_if_dropped(self, probe: Probe) -> httpx.Response:
        # The server closes a connection after it answered a 500: the request that next takes
        # that connection from the pool finds it reset. Sent again on a fresh one, it gets its
        # own answer (a request that really kills its connection fails twice).
        try:
            return self.send(probe)
        except httpx.TransportError:
            return self.send(probe)

    def delete_created(self, probe: Probe, response: httpx.Response) -> None:
        """An unguarded valid body may be accepted; what it made is deleted at once."""
        body = response.json()
        # Nova wraps the record ({"server": {...}}); Glance does not ({"id": ..., ...}).
        view = body if "id" in body else next(iter(body.values()))
        url = f"{probe.url.split('?')[0]}/{view['id']}"
        deleted = self.send(Probe("cleanup", "DELETE", url, probe.token, Expect()))
        assert deleted.is_success, f"could not delete {url}: {deleted.text}"


def describe(probe: Probe, outcome: str) -> str:
    body = probe.body or b""
    shown = body[:120].decode(errors="replace")
    if len(body) > 120:
        shown += f"... ({len(body)} bytes)"
    return (
        f"{probe.method} {probe.url[:160]} [{probe.what}] as {probe.token!r}"
        f"{' body ' + shown if body else ''}\n    {outcome}"
    )


def judge(expect: Expect, response: httpx.Response) -> str | None:
    status = response.status_code
    if status >= 500:
        return "a 5xx"
    if 200 <= status <= 300:  # 300: Glance's and Keystone's version lists (Multiple Choices)
        return "accepted: expected a 4xx" if expect.refused or expect.status else None
    if not 400 <= status < 500:
        return f"expected a 4xx or 2xx, got {status}"
    if expect.status is not None and status != expect.status:
        return f"expected {expect.status}"
    problem = error_shape_problem(response)
    if problem is None and expect.field is not None and status == 400:
        return naming_problem(response.json()["badRequest"]["message"], expect.field)
    return problem


def error_shape_problem(response: httpx.Response) -> str | None:
    """Nova's error body: {"<title>": {"code": <status>, "message": "<something>"}}."""
    try:
        body = response.json()
    except ValueError:
        return "the error body is not JSON"
    title = TITLES.get(response.status_code)
    if not isinstance(body, dict) or list(body) != [title]:
        return f"the error body is not {{{title!r}: ...}}"
    inner = body[title]
    if not isinstance(inner, dict) or inner.get("code") != response.status_code:
        return "the error body's code is not the status"
    message = inner.get("message")
    if not isinstance(message, str) or not message.strip():
        return "the error body has no message"
    return None


NAMED = re.compile(r"field/attribute (\S+?)\.(?:\s|$)")


def naming_problem(message: str, wanted: str) -> str | None:
    """The message names `wanted`, a field inside it, or `wanted` without its envelope (as
    the domain's own checks say `instances` for `quota_set.instances`)."""
    found = NAMED.search(message)
    if found is None:
        return f"the message names no field; expected {wanted}"
    named = found.group(1)
    if named == wanted or named.startswith((wanted + ".", wanted + "[")):
        return None
    if wanted.endswith("." + named):
        return None
    return f"the message names {named}, expected {wanted}"


# --- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzer(stack: Stack) -> Iterator[Fuzzer]:
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        fuzzer = Fuzzer(client)
        taken = fuzzer.send(
            Probe(
                "setup",
                "POST",
                "/v2.1/os-keypairs",
                USER,
                Expect(),
                encode({"keypair": {"name": TAKEN_KEYPAIR}}),
                "application/json",
            )
        )
        assert taken.status_code == 200, taken.text
        yield fuzzer


def is_admin_only(fuzzer: Fuzzer, route: Route) -> bool:
    """A route the user is forbidden outright (403 before the body or the query is read, e.g.
    os-migrations) is fuzzed as the admin: as the user every request would stop at the same
    403. The body asked with, {}, is refused by validation whenever the user is allowed, so
    this creates nothing."""
    body = b"{}" if route.body is not None else None
    url = fill(route, random.Random(route.key))
    probe = Probe("as user", route.method, url, USER, Expect(), body, "application/json")
    return fuzzer.send(probe).status_code == 403


def route_params() -> list[Any]:
    # One test per route, named by it. A route known to answer 5xx until a fix lands would be
    # marked here with pytest.mark.xfail(strict=True, reason=<the request>): none is.
    return [pytest.param(route, id=route.key) for route in ROUTES]


@pytest.mark.parametrize("route", route_params())
def test_route_answers_hostile_input_with_a_clear_4xx(fuzzer: Fuzzer, route: Route) -> None:
    probes = probes_for(route, is_admin_only(fuzzer, route))
    failures = [problem for probe in probes if (problem := fuzzer.check(probe))]
    assert not failures, f"{len(failures)} of {len(probes)} requests:\n" + "\n".join(failures)


def test_the_served_api_is_the_one_fuzzed(fuzzer: Fuzzer) -> None:
    served = fuzzer.client.get("/openapi.json").json()["paths"]
    assert {p: sorted(ops) for p, ops in served.items()} == {
        p: sorted(ops) for p, ops in OPENAPI["paths"].items()
    }


def test_unknown_paths_and_methods(fuzzer: Fuzzer) -> None:
    probes = [
        Probe("unknown path", "GET", "/v2.1/no-such-thing", USER, Expect(status=404)),
        Probe("unknown version", "GET", "/v3/servers", USER, Expect(status=404)),
        Probe("too deep", "GET", "/v2.1/servers/a/b/c/d/e", USER, Expect(status=404)),
    ]
    # A method no route has: every path answers 405, whatever other templates match it.
    used = {method for operations in OPENAPI["paths"].values() for method in operations}
    for unused in (m for m in METHODS if m not in used):
        for path in OPENAPI["paths"]:
            url = path.replace("{", "").replace("}", "")  # any id will do
            probes.append(Probe(f"method {unused}", unused.upper(), url, USER, Expect(status=405)))
    failures = [problem for probe in probes if (problem := fuzzer.check(probe))]
    assert not failures, "\n".join(failures)


def get_json(fuzzer: Fuzzer, url: str, token: str = USER) -> Any:
    response = fuzzer.client.get(url, headers={"X-Auth-Token": token})
    assert response.status_code == 200, f"{url}: {response.text}"
    return response.json()


def test_the_barrage_changed_nothing(fuzzer: Fuzzer) -> None:
    """Runs after the route tests (pytest keeps file order): none of their requests left
    anything behind in the fuzzing project."""
    absolute = get_json(fuzzer, "/v2.1/limits")["limits"]["absolute"]
    used = {name: value for name, value in absolute.items() if name.endswith("Used")}
    assert set(used.values()) == {0}, used
    assert get_json(fuzzer, "/v2.1/servers")["servers"] == []
    assert get_json(fuzzer, "/v2.1/servers/detail")["servers"] == []
    assert get_json(fuzzer, "/v2.1/ports")["ports"] == []
    assert get_json(fuzzer, "/v2.1/os-server-groups")["server_groups"] == []
    quota = get_json(fuzzer, f"/v2.1/os-quota-sets/{PROJECT}", ADMIN)["quota_set"]
    defaults = get_json(fuzzer, f"/v2.1/os-quota-sets/{PROJECT}/defaults")["quota_set"]
    assert quota == defaults
    keypairs = get_json(fuzzer, "/v2.1/os-keypairs")["keypairs"]
    assert [k["keypair"]["name"] for k in keypairs] == [TAKEN_KEYPAIR]

    deleted = fuzzer.client.delete(
        f"/v2.1/os-keypairs/{TAKEN_KEYPAIR}", headers={"X-Auth-Token": USER}
    )
    assert deleted.status_code == 202, deleted.text
    assert get_json(fuzzer, "/v2.1/os-keypairs")["keypairs"] == []
