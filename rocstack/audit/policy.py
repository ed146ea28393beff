"""What an audit expects of the binaries: ceilings, required symbols, preloads, GPU extensions.

Named policies are JSON files in ``rocstack/data/policies/`` (manylinux tags and
distro runtimes). ``--policy`` also takes a JSON policy file, or a component
recipe whose ``validation:`` block becomes a policy; several specs joined with
commas are merged (lists united, ceilings take the lower version).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from rocstack.errors import RocstackError

VERSION_FAMILIES = ("GLIBC", "GLIBCXX", "CXXABI", "GCC")


def version_key(text: str) -> tuple[int, ...] | None:
    """``3.4.30`` -> (3, 4, 30); None for non-numeric tags like ``PRIVATE`` or ``TM_1``."""
    parts = text.split(".")
    if not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def split_version(tag: str) -> tuple[str, str] | None:
    """``GLIBCXX_3.4.30`` -> ("GLIBCXX", "3.4.30"); None for tags outside the known families."""
    family, sep, rest = tag.partition("_")
    if not sep or family not in VERSION_FAMILIES:
        return None
    return family, rest


@dataclass(frozen=True)
class AuditPolicy:
    """Expectations the checks apply; every field is optional (an empty policy checks the basics).

    A plain dataclass, not pydantic: importing pydantic would double the audit's start-up time.
    """

    name: str = "default"
    description: str = ""
    symbol_ceilings: dict[str, str] = field(default_factory=dict)  # family -> newest allowed version
    required_symbols: list[str] = field(default_factory=list)  # demangled names, prefixes or globs
    required_symbols_in: list[str] = field(default_factory=list)  # globs; empty = every audited library
    allowed_unresolved: list[str] = field(default_factory=list)  # fnmatch on mangled or demangled names
    preload: list[str] = field(default_factory=list)  # packages or library globs loaded before
    gpu_extensions: list[str] = field(default_factory=list)  # globs that must carry HIP code objects
    python_host: bool = True  # Python extensions may use the interpreter's exported symbols
    # the component ships no native code by design (Triton kernels compiled at run time): an input with
    # nothing auditable is what it should be, reported as info instead of the "nothing auditable" error
    pure_python: bool = False

    def __post_init__(self) -> None:
        for name, kind in (("name", str), ("description", str), ("python_host", bool), ("pure_python", bool)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"{name} must be a {kind.__name__}")
        for name in ("required_symbols", "required_symbols_in", "allowed_unresolved", "preload", "gpu_extensions"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a list of strings")
        if not isinstance(self.symbol_ceilings, dict):
            raise ValueError("symbol_ceilings must be a map of family to version")
        for family, version in self.symbol_ceilings.items():
            if family not in VERSION_FAMILIES:
                raise ValueError(f"symbol_ceilings: unknown family {family!r} (known: {', '.join(VERSION_FAMILIES)})")
            if not isinstance(version, str) or version_key(version) is None:
                raise ValueError(f"symbol_ceilings: {family} ceiling {version!r} is not a dotted version")

    @classmethod
    def from_dict(cls, data: dict) -> "AuditPolicy":
        if not isinstance(data, dict):
            raise ValueError("a policy is a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**data)

    def merge(self, other: "AuditPolicy") -> "AuditPolicy":
        ceilings = dict(self.symbol_ceilings)
        for family, version in other.symbol_ceilings.items():
            mine = ceilings.get(family)
            if mine is None or version_key(version) < version_key(mine):
                ceilings[family] = version

        def union(a: list[str], b: list[str]) -> list[str]:
            return list(dict.fromkeys([*a, *b]))

        return AuditPolicy(
            name=other.name if self.name == "default" else f"{self.name}+{other.name}",
            description="; ".join(d for d in (self.description, other.description) if d),
            symbol_ceilings=ceilings,
            required_symbols=union(self.required_symbols, other.required_symbols),
            required_symbols_in=union(self.required_symbols_in, other.required_symbols_in),
            allowed_unresolved=union(self.allowed_unresolved, other.allowed_unresolved),
            preload=union(self.preload, other.preload),
            gpu_extensions=union(self.gpu_extensions, other.gpu_extensions),
            python_host=self.python_host and other.python_host,
            pure_python=self.pure_python or other.pure_python,  # a fact about the component, not a limit
        )

    @classmethod
    def from_validation(cls, validation, name: str = "recipe") -> "AuditPolicy":
        """Policy from a recipe's ``validation`` block (rocstack.recipes.models.ValidationPolicy)."""
        ceilings = {}
        glibcxx_max = getattr(validation, "glibcxx_max", None)
        if glibcxx_max:
            ceilings["GLIBCXX"] = str(glibcxx_max)
        policy = cls(
            name=name,
            symbol_ceilings=ceilings,
            required_symbols=list(getattr(validation, "required_symbols", None) or []),
            required_symbols_in=list(getattr(validation, "required_symbols_in", None) or []),
            allowed_unresolved=list(getattr(validation, "allowed_unresolved", None) or []),
            preload=list(getattr(validation, "preload", None) or []),
            gpu_extensions=list(getattr(validation, "gpu_extensions", None) or []),
            pure_python=bool(getattr(validation, "pure_python", False)),
        )
        manylinux = getattr(validation, "manylinux", None)
        if manylinux:
            policy = dataclasses.replace(load_named_policy(str(manylinux)).merge(policy), name=name)
        return policy


def named_policies() -> list[str]:
    folder = resources.files("rocstack").joinpath("data/policies")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_named_policy(name: str) -> AuditPolicy:
    folder = resources.files("rocstack").joinpath("data/policies")
    entry = folder.joinpath(f"{name}.json")
    if not entry.is_file():
        raise RocstackError(
            f"unknown audit policy '{name}'",
            f"use a policy file or recipe path, or one of: {', '.join(named_policies())}",
        )
    return _policy_from_json(entry.read_text(), f"built-in policy {name}")


def _policy_from_json(text: str, where: str) -> AuditPolicy:
    try:
        return AuditPolicy.from_dict(json.loads(text))
    except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise RocstackError(f"{where} is not a valid audit policy: {exc}",
                            "fix the JSON (fields: see rocstack/audit/policy.py AuditPolicy)") from None


def load_policy(spec: str | None, read_recipe: Callable[[Path], AuditPolicy] | None = None) -> AuditPolicy:
    """``manylinux_2_28``, ``policy.json``, ``recipe.yaml`` or a comma list of those, merged.

    A recipe is read by ``read_recipe`` (``rocstack.recipes.loader.recipe_audit_policy``, passed in by
    the command line): the audit sits below the recipe layer and never imports it.
    """
    policy = AuditPolicy()
    if not spec:
        return policy
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        path = Path(item)
        if path.suffix in (".json", ".yaml", ".yml") or path.exists():
            if not path.is_file():
                raise RocstackError(f"policy file {path} does not exist", "check the --policy path")
            if path.suffix == ".json":
                try:
                    text = path.read_text()
                except OSError as exc:
                    raise RocstackError(f"cannot read policy {path}: {exc.strerror}", "check the path") from None
                policy = policy.merge(_policy_from_json(text, f"policy file {path}"))
            elif read_recipe is None:
                raise RocstackError(f"policy {path} is a recipe, and this caller reads no recipes",
                                    "pass a named policy or a JSON policy file, or use `rocstack audit --policy`")
            else:
                policy = policy.merge(read_recipe(path))
        else:
            policy = policy.merge(load_named_policy(item))
    return policy
