"""Identity of a locally built (debootstrap) base image.

The tag is a hash of what goes into the base, so `rocstack base` can reuse an
existing image when its inputs are unchanged and rendering stays deterministic.
"""

from __future__ import annotations

import hashlib
import json

from rocstack.recipes.models import Stack

BASE_REPOSITORY = "rocstack-base"


def debootstrap_inputs(stack: Stack) -> dict:
    spec = stack.base.debootstrap
    if spec is None:
        raise ValueError(f"stack {stack.name} has no debootstrap base")
    inputs = {"suite": spec.suite, "variant": spec.variant, "include": sorted(set(spec.include))}
    if spec.apt is not None:
        # the toolchain layer: every source, pin (in order) and package=version changes the base
        inputs["apt"] = spec.apt.model_dump(mode="json")
    return inputs


def debootstrap_tag(stack: Stack) -> str:
    inputs = debootstrap_inputs(stack)
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]
    return f"{BASE_REPOSITORY}/{stack.name}:{inputs['suite']}-{digest}"
