"""Request bodies. Unknown attributes are refused (as Nova's JSON schemas do), types are
strict, and every error names the field."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from novaflow import keypairs

Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkEntry(Strict):
    uuid: StrictStr | None = None
    port: StrictStr | None = None
    fixed_ip: StrictStr | None = None
    # novaflow extension: give this port a floating IP from the default pool.
    floating_ip: StrictBool = False


class ServerCreate(Strict):
    name: Name
    flavorRef: StrictStr | StrictInt  # noqa: N815  (Nova's field names)
    imageRef: StrictStr  # noqa: N815
    networks: Literal["auto", "none"] | list[NetworkEntry] = "auto"
    key_name: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    user_data: Annotated[StrictStr, Field(max_length=65535)] | None = None
    metadata: dict[
        Annotated[StrictStr, Field(min_length=1, max_length=255)],
        Annotated[StrictStr, Field(max_length=255)],
    ] = Field(default_factory=dict, max_length=128)
    availability_zone: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    min_count: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    max_count: Annotated[StrictInt, Field(ge=1, le=100)] | None = None
    return_reservation_id: StrictBool = False
    adminPass: StrictStr | None = None  # noqa: N815
    security_groups: list[dict[str, StrictStr]] | None = None  # accepted, not enforced yet
    config_drive: StrictBool | None = None

    @field_validator("name")
    @classmethod
    def _name_rules(cls, value: str) -> str:
        if value.strip() != value:
            raise ValueError("must not have leading or trailing whitespace")
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("must not contain control characters")
        return value

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
