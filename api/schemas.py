"""Request bodies. Unknown attributes are refused (as Nova's JSON schemas do), types are
strict, and every error names the field."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from novaflow import keypairs, server_metadata

Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]


def _server_name_rules(value: str) -> str:
    if value.strip() != value:
        raise ValueError("must not have leading or trailing whitespace")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError("must not contain control characters")
    return value


# A server's name, on create and on rename.
ServerName = Annotated[Name, AfterValidator(_server_name_rules)]


def _metadata_key_rules(value: dict[str, str]) -> dict[str, str]:
    # Checked here rather than on the key's type, so that the error names `metadata`, not the
    # (empty or overlong) key itself.
    longest = server_metadata.MAX_KEY_LENGTH
    for key in value:
        if not 1 <= len(key) <= longest:
            raise ValueError(f"every key must have 1 to {longest} characters (one has {len(key)})")
    return value


# A server's metadata, on create and in /servers/{id}/metadata. The item count is checked
# where the result is known (novaflow.server_metadata.check_item_count: 403, as Nova).
Metadata = Annotated[
    dict[StrictStr, Annotated[StrictStr, Field(max_length=server_metadata.MAX_VALUE_LENGTH)]],
    AfterValidator(_metadata_key_rules),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkEntry(Strict):
    uuid: StrictStr | None = None
    port: StrictStr | None = None
    fixed_ip: StrictStr | None = None
    # novaflow extension: give this port a floating IP from the default pool.
    floating_ip: StrictBool = False


class ServerCreate(Strict):
    name: ServerName
    flavorRef: StrictStr | StrictInt  # noqa: N815  (Nova's field names)
    imageRef: StrictStr  # noqa: N815
    networks: Literal["auto", "none"] | list[NetworkEntry] = "auto"
    key_name: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    user_data: Annotated[StrictStr, Field(max_length=65535)] | None = None
    metadata: Metadata = Field(default_factory=dict)
    availability_zone: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    min_count: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    max_count: Annotated[StrictInt, Field(ge=1, le=100)] | None = None
    return_reservation_id: StrictBool = False
    adminPass: StrictStr | None = None  # noqa: N815
    security_groups: list[dict[str, StrictStr]] | None = None  # accepted, not enforced yet
    config_drive: StrictBool | None = None

    @field_validator("user_data")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 encoded") from None
        return value


class SchedulerHints(Strict):
    group: StrictStr | None = None


class ServerCreateBody(Strict):
    server: ServerCreate
    scheduler_hints: SchedulerHints | None = Field(default=None, alias="os:scheduler_hints")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class QuotaSetUpdate(Strict):
    instances: StrictInt | None = None
    cores: StrictInt | None = None
    ram: StrictInt | None = None
    floating_ips: StrictInt | None = None
    ports: StrictInt | None = None
    server_groups: StrictInt | None = None
    server_group_members: StrictInt | None = None
    force: StrictBool | None = None


class QuotaSetBody(Strict):
    quota_set: QuotaSetUpdate


class ServerGroupCreate(Strict):
    name: Name
    policy: Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]


class ServerGroupBody(Strict):
    server_group: ServerGroupCreate


class FixedIPEntry(Strict):
    ip_address: StrictStr | None = None


class PortCreate(Strict):
    network_id: StrictStr
    fixed_ips: list[FixedIPEntry] = Field(default_factory=list, max_length=1)
    name: StrictStr | None = None


class PortBody(Strict):
    port: PortCreate


class KeypairCreate(Strict):
    name: Name
    # Left out (or null): a keypair is generated and its private key returned once.
    public_key: Annotated[StrictStr, Field(max_length=65535)] | None = None
    type: Literal["ssh", "x509"] = "ssh"

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        problem = keypairs.name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class KeypairBody(Strict):
    keypair: KeypairCreate


class ServerUpdate(Strict):
    # Nova's 2.1 rename. accessIPv4/accessIPv6 are refused as unknown: novaflow keeps none.
    name: ServerName | None = None

    @field_validator("name")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:  # only an explicit null reaches here: leaving it out is fine
            raise ValueError("must be a string")
        return value


class ServerUpdateBody(Strict):
    server: ServerUpdate


class MetadataBody(Strict):
    metadata: Metadata


class MetaItemBody(Strict):
    meta: Metadata

    @field_validator("meta")
    @classmethod
    def _one_item(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 1:
            raise ValueError("Request body contains too many items")
        if not value:
            raise ValueError("must hold exactly one item")
        return value


# --- server actions (POST /servers/{id}/action): one model per action's arguments


def _console_length(value: object) -> object:
    # Nova takes an integer or a string of digits.
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value):
        value = int(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer (-1 or null for the whole log)")
    if value < -1:
        raise ValueError("must be -1 or more (-1 or null for the whole log)")
    return value


class ConsoleOutputAction(Strict):
    """os-getConsoleOutput: the last `length` lines of the console log; -1 or null: all."""

    length: Annotated[int | None, BeforeValidator(_console_length)] = None


class NoArguments(Strict):
    """os-stop, os-start, pause, unpause, suspend, resume, unlock: `null` or `{}`."""


class RebootAction(Strict):
    type: Literal["SOFT", "Soft", "soft", "HARD", "Hard", "hard"]  # as Nova's schema


class LockAction(Strict):
    """lock: `null`, or a reason (Nova 2.73)."""

    locked_reason: Annotated[StrictStr, Field(max_length=255)] | None = None


class ResetStateAction(Strict):
    state: Literal["active", "error"]


class ResizeAction(Strict):
    """resize: the new flavor (Nova also takes OS-DCF:diskConfig, which changes nothing
    here: every disk is grown to its flavor's size)."""

    flavorRef: Annotated[StrictStr, Field(min_length=1, max_length=255)] | StrictInt  # noqa: N815
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(default=None, alias="OS-DCF:diskConfig")


class MigrateAction(Strict):
    """migrate (admin): `null`, or the host to move to (Nova 2.56), which must still pass
    the scheduler's filters."""

    host: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None


class RebuildAction(Strict):
    """rebuild: a new disk from `imageRef` (the same image or another), on the same host with
    the same ports; `name` and `metadata` replace the server's. `adminPass` is returned, never
    stored (the guest is not told of it: no agent here)."""

    imageRef: Annotated[StrictStr, Field(min_length=1, max_length=255)]  # noqa: N815
    name: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    metadata: Metadata | None = None
    adminPass: StrictStr | None = None  # noqa: N815
    preserve_ephemeral: StrictBool = False
    disk_config: Literal["AUTO", "MANUAL"] | None = Field(default=None, alias="OS-DCF:diskConfig")
    accessIPv4: StrictStr | None = None  # noqa: N815
    accessIPv6: StrictStr | None = None  # noqa: N815
