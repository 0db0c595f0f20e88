"""/v2.1/os-services (admin): each hypervisor host's nova-compute, its state, and the operator's
switches on it (novaflow/services.py says what they do).

The forms follow Nova's microversions:
- 2.1: `PUT /os-services/{enable|disable|disable-log-reason}` with `{"host", "binary"}` (and
  `disabled_reason`) in the body; a service is addressed by its integer id (DELETE).
- 2.11: `PUT /os-services/force-down` with `forced_down`; listings show `forced_down`.
- 2.53: `PUT /os-services/{uuid}` with `{"status", "disabled_reason", "forced_down"}` and the
  whole service in the answer; ids are uuids (the host's) everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, ValidationError

from api.deps import DbDep, SessionDep
from api.microversion import MicroversionDep, Version
from api.policy import rule
from api.schemas import uuid_id
from api.views import iso_micro
from novaflow import services
from novaflow.errors import Invalid, NotFound
from novaflow.models import utcnow

router = APIRouter(prefix="/v2.1/os-services", tags=["services"])

FORCED_DOWN_VERSION = (2, 11)  # force-down, and forced_down in the bodies
UUID_VERSION = (2, 53)  # uuid ids and PUT /os-services/{id}

# Nova's parameter_types.boolean: JSON booleans and these words (any other value is a 400).
_TRUE = {"true", "1", "on", "yes", "y", "t"}
_FALSE = {"false", "0", "off", "no", "n", "f"}


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    if not isinstance(value, bool):
        raise ValueError("must be a boolean (true/false, or 'yes', 'no', 'on', 'off', '1', '0')")
    return value


def _not_null(value: Any) -> Any:
    # Nova's schemas type these fields without null: an explicit null is a 400 (absent is fine).
    if value is None:
        raise ValueError("must not be null")
    return value


NotNull = BeforeValidator(_not_null)
Text255 = Annotated[StrictStr, Field(min_length=1, max_length=255)]
Reason = Annotated[Text255 | None, NotNull]
Boolean = Annotated[bool | None, BeforeValidator(_boolean), NotNull]


class ServiceAction(BaseModel):
    """The body of PUT /os-services/{action} before 2.11."""

    model_config = ConfigDict(extra="forbid")
    host: Annotated[StrictStr, Field(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9-._]*$")]
    binary: Text255
    disabled_reason: Reason = None


class ServiceActionV211(ServiceAction):
    """From 2.11 (to 2.52): `forced_down` too."""

    forced_down: Boolean = None


class ServiceUpdate(BaseModel):
    """The body of PUT /os-services/{uuid} from 2.53: nothing required, something needed."""

    model_config = ConfigDict(extra="forbid")
    status: Annotated[Literal["enabled", "disabled"] | None, NotNull] = None
    disabled_reason: Reason = None
    forced_down: Boolean = None


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], body: Any) -> M:
    """The body as `model`; a 400 naming the field, as the other routes answer it."""
    if not isinstance(body, dict):
        raise Invalid("Invalid input for field/attribute body. Value must be an object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        ) from None


def _down_after(request: Request) -> timedelta:
    return request.app.state.settings.service_down


def service_view(service: services.Service, version: Version) -> dict[str, Any]:
    """A service as Nova shows it at `version` (forced_down from 2.11, a uuid id from 2.53)."""
    host = service.host
    view: dict[str, Any] = {
        "id": host.id if version >= UUID_VERSION else service.number,
        "binary": service.binary,
        "disabled_reason": host.disabled_reason,
        "host": host.name,
        "state": "up" if service.up else "down",
        "status": "enabled" if host.enabled else "disabled",
        "updated_at": iso_micro(host.last_heartbeat or host.created_at),
        "zone": host.availability_zone,
    }
    if version >= FORCED_DOWN_VERSION:
        view["forced_down"] = host.forced_down
    return view


@router.get("", dependencies=[rule("os_compute_api:os-services:list")])
def list_services(
    request: Request,
    session: SessionDep,
    version: MicroversionDep,
    host: Annotated[str | None, Query()] = None,
    binary: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Every compute service (`host`, `binary`: only those). State is up while the host's
    compute worker heartbeats and no operator forced it down."""
    found = services.list_services(session, utcnow(), _down_after(request), host, binary)
    return {"services": [service_view(s, version) for s in found]}


@router.put("/{service_id}", dependencies=[rule("os_compute_api:os-services:update")])
def update_service(
    service_id: str,
    body: Annotated[Any, Body()],
    request: Request,
    db: DbDep,
    version: MicroversionDep,
) -> dict[str, Any]:
    """Before 2.53 `service_id` is the action (`_update_by_action`); from 2.53 it is the
    service's uuid (`_update_by_uuid`)."""
    if version >= UUID_VERSION:
        return _update_by_uuid(service_id, body, request, db, version)
    return _update_by_action(service_id, body, request, db, version)


def _update_by_action(
    action_name: str, body: Any, request: Request, db: DbDep, version: Version
) -> dict[str, Any]:
    """Before 2.53: `enable`, `disable`, `disable-log-reason`, or (2.11) `force-down` the
    service named by the body's host and binary."""
    if action_name not in _ACTIONS or (
        action_name == "force-down" and version < FORCED_DOWN_VERSION
    ):
        raise NotFound("Unknown action")
    model = ServiceActionV211 if version >= FORCED_DOWN_VERSION else ServiceAction
    action = _parse(model, body)
    change, answer = _ACTIONS[action_name](action)
    with db.write() as session:
        service = services.by_host(
            session, action.host, action.binary, utcnow(), _down_after(request)
        )
        services.update(session, service.host, change)
    return {"service": {"host": action.host, "binary": action.binary, **answer}}


def _update_by_uuid(
    service_id: str, body: Any, request: Request, db: DbDep, version: Version
) -> dict[str, Any]:
    """2.53's update: status and/or forced_down of the service with this uuid."""
    uuid_id(service_id)
    update = _parse(ServiceUpdate, body)
    if update.status == "enabled" and update.disabled_reason:
        raise Invalid("Specifying 'disabled_reason' with status 'enabled' is invalid.")
    if update.status is None and update.forced_down is None:
        raise Invalid(
            "No updates were requested. Fields 'status' or 'forced_down' should be specified."
        )
    down_after = _down_after(request)
    change = services.Change(
        enabled=None if update.status is None else update.status == "enabled",
        disabled_reason=update.disabled_reason,
        forced_down=update.forced_down,
    )
    with db.write() as session:
        service = services.by_uuid(session, service_id, utcnow(), down_after)
        services.update(session, service.host, change)
        service = services.by_uuid(session, service_id, utcnow(), down_after)
        return {"service": service_view(service, version)}


Answer = tuple[services.Change, dict[str, Any]]


def _enable(_: ServiceAction) -> Answer:
    return services.Change(enabled=True), {"status": "enabled"}


def _disable(_: ServiceAction) -> Answer:
    # A plain disable keeps no reason, even one given in the body (Nova's).
    return services.Change(enabled=False), {"status": "disabled"}


def _disable_log_reason(action: ServiceAction) -> Answer:
    reason = action.disabled_reason
    if reason is None:
        raise Invalid("Missing disabled reason field")
    answer = {"status": "disabled", "disabled_reason": reason}
    return services.Change(enabled=False, disabled_reason=reason), answer


def _force_down(action: ServiceAction) -> Answer:
    forced_down = getattr(action, "forced_down", None)
    if forced_down is None:
        raise Invalid("Missing forced_down field")
    return services.Change(forced_down=forced_down), {"forced_down": forced_down}


_ACTIONS: dict[str, Callable[[ServiceAction], Answer]] = {
    "enable": _enable,
    "disable": _disable,
    "disable-log-reason": _disable_log_reason,
    "force-down": _force_down,
}


@router.delete(
    "/{service_id}", status_code=204, dependencies=[rule("os_compute_api:os-services:delete")]
)
def delete_service(
    service_id: str, request: Request, db: DbDep, version: MicroversionDep
) -> Response:
    """Forget a compute service and its host: 409 while it holds servers or an unfinished
    move. Its id is an integer before 2.53, a uuid from then on."""
    down_after = _down_after(request)
    with db.write() as session:
        try:
            if version >= UUID_VERSION:
                service = services.by_uuid(session, uuid_id(service_id), utcnow(), down_after)
            else:
                service = services.by_number(session, _integer(service_id), utcnow(), down_after)
        except NotFound:
            raise NotFound(f"Service {service_id} not found.") from None
        services.delete(session, service.host)
    return Response(status_code=204)


def _integer(text: str) -> int:
    """An id before 2.53: an integer (else 400, as Nova); one no database row can have is
    simply not found (and never reaches a query that cannot hold it)."""
    try:
        number = int(text)
    except ValueError:
        raise Invalid("Invalid input received: id must be an integer") from None
    if not 1 <= number <= 2**31 - 1:
        raise NotFound(f"Service {text} not found.")
    return number
