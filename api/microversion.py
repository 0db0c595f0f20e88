"""Compute API microversions: which version a request asked for, and the headers that say
which one it was served in. This module owns negotiation; nothing else reads the headers.

It applies to the compute API's paths (`/`, `/v2.1...`); Glance's (`/image/...`) and the
Temporal UI's codec endpoint are no compute API and are left alone.

A request names its version in `OpenStack-API-Version: compute X.Y` (the header may carry
several services, comma-separated: `compute 2.1, volume 3.0`) or, failing a compute entry
there, in the legacy `X-OpenStack-Nova-API-Version: X.Y`. `latest` means the maximum; no
header means the minimum, 2.1 (as Nova). A version that is no `X.Y` is a 400; one outside
[MIN_VERSION, MAX_VERSION] a 406 (`computeFault`, Nova's message). Every response, errors
included, says what it was served in (`OpenStack-API-Version: compute X.Y`,
`X-OpenStack-Nova-API-Version: X.Y`, and `Vary` on both); a refused version is answered in the
minimum.

Handlers read the negotiated version with `MicroversionDep` (or `current.get()`), a `Version`
that compares with tuples: `if version >= (2, 47): ...`.

MAX_VERSION is 2.1, deliberately: announcing 2.N promises every body and behaviour change of
Nova's microversions up to 2.N (2.47's embedded flavor, 2.26's tags, ...). Until the bodies
are exact per version, a higher maximum would lie to clients that negotiate it (openstacksdk,
python-novaclient pick the highest both sides know). Raise it one microversion at a time,
together with the per-version bodies and tests that prove them.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Annotated, NamedTuple

from fastapi import Depends, Request
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors

SERVICE = "compute"
HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
VARY = f"{HEADER}, {LEGACY_HEADER}"


class Version(NamedTuple):
    """A microversion; a tuple, so `version >= (2, 47)` reads as it should."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN_VERSION = Version(2, 1)
MAX_VERSION = Version(2, 1)  # see the module's docstring before raising it

# Nova's APIVersionRequest: no leading zeros, minor 0 allowed.
_VERSION = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")

# The version the current request is served in (set per request by `Negotiate`).
current: ContextVar[Version] = ContextVar("microversion", default=MIN_VERSION)


class VersionRefused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def requested(headers: Headers) -> str | None:
    """The version string the request names for compute, or None (as microversion-parse does:
    an entry of the standard header that is no `<service> <version>` pair is skipped)."""
    standard = ",".join(headers.getlist(HEADER))
    for entry in standard.split(","):
        parts = entry.split()
        if len(parts) == 2 and parts[0].lower() == SERVICE:
            return parts[1]
    legacy = ",".join(headers.getlist(LEGACY_HEADER)).strip()
    return legacy or None


def parse(text: str) -> Version:
    """`X.Y` as a Version; VersionRefused (400) for anything else."""
    found = _VERSION.match(text)
    if found is None:
        raise VersionRefused(
            400,
            f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum.",
        )
    return Version(int(found.group(1)), int(found.group(2)))


def negotiate(headers: Headers) -> Version:
    """The version a request is served in; VersionRefused (400 malformed, 406 out of range)."""
    text = requested(headers)
    if text is None:
        return MIN_VERSION
    if text.lower() == "latest":
        return MAX_VERSION
    version = parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise VersionRefused(
            406,
            f"Version {text} is not supported by the API. Minimum is {MIN_VERSION} and "
            f"maximum is {MAX_VERSION}.",
        )
    return version


def stamp(headers: MutableHeaders, version: Version) -> None:
    """The version headers of a response; `Vary` keeps what another layer put there."""
    headers[HEADER] = f"{SERVICE} {version}"
    headers[LEGACY_HEADER] = str(version)
    vary = headers.get("vary")
    headers["Vary"] = f"{vary}, {VARY}" if vary else VARY


def is_compute(path: str) -> bool:
    return path in ("/", "/v2.1") or path.startswith("/v2.1/")


class Negotiate:
    """Pure ASGI, outermost: negotiates before anything else answers (authentication, the body
    limit), so every response, a refusal of theirs included, carries the version headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_compute(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            version = negotiate(Headers(scope=scope))
        except VersionRefused as refused:
            response = errors.error_response(refused.code, refused.message)
            stamp(response.headers, MIN_VERSION)
            await response(scope, receive, send)
            return

        async def send_stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                stamp(MutableHeaders(scope=message), version)
            await send(message)

        scope.setdefault("state", {})["microversion"] = version
        token = current.set(version)
        try:
            await self.app(scope, receive, send_stamped)
        finally:
            current.reset(token)


def microversion(request: Request) -> Version:
    return getattr(request.state, "microversion", MIN_VERSION)


MicroversionDep = Annotated[Version, Depends(microversion)]
