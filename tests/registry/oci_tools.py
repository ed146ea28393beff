"""The cosign and oras builds pinned in scripts/oci-tools.txt, as scripts/fetch-oci-tools.sh unpacks them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PINS = REPO / "scripts" / "oci-tools.txt"


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    suite: str

    @property
    def label(self) -> str:
        return f"{self.package}-{self.version}"

    @property
    def binary(self) -> Path:
        cache = Path(os.environ.get("ROCSTACK_TEST_CACHE") or Path.home() / ".cache" / "rocstack-tests")
        return cache / "oci-tools" / f"{self.package}_{self.version}" / "usr" / "bin" / self.package

    def require(self) -> Path:
        if not os.access(self.binary, os.X_OK):
            pytest.skip(f"{self.package} {self.version} ({self.suite}) is not in the test cache: "
                        "run bash scripts/fetch-oci-tools.sh (scripts/setup.sh does)")
        return self.binary


def pins(package: str) -> list[Pin]:
    out = []
    for line in PINS.read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#") and fields[0] == package:
            out.append(Pin(fields[0], fields[1], fields[2]))
    return out
