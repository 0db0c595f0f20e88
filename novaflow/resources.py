"""An amount of compute resources, as one value from the flavor to the claim to the domain.

Pure data (no imports): the workflows' contracts carry it too, so the flavor's numbers are not
copied field by field on their way from the API to libvirt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    vcpus: int
    memory_mb: int
    disk_gb: int

    def __str__(self) -> str:
        return f"{self.vcpus} vCPU/{self.memory_mb} MiB/{self.disk_gb} GiB"

    def __bool__(self) -> bool:
        return bool(self.vcpus or self.memory_mb or self.disk_gb)


NOTHING = Resources(0, 0, 0)
