"""Pydantic models for component recipes and stacks.

A component recipe says how one component (flash-attention, our kernels, ...) is
fetched, built for a list of gfx arches and validated. A stack says which base
image, ROCm, Python and torch the components are built on. Both are strict:
unknown fields are errors, so a typo in a recipe never silently does nothing.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from packaging.version import InvalidVersion, Version
from pydantic import Field, PlainSerializer, PlainValidator, field_validator, model_validator

from rocstack.arches import TargetID, all_arches
from rocstack.arches import parse_target_id as _parse_target_id
from rocstack.errors import ArchError
from rocstack.recipes.toolchain_models import DEB_PINNED, AptLayer, AptPin, AptSource, Toolchain  # noqa: F401 (re-exported)

from rocstack.recipes.strict import NAME_RE as _NAME_RE
from rocstack.recipes.strict import Strict
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def parse_target_id(text: str):
    """The registry's parser, with its one-line error turned into a pydantic field error."""
    try:
        return _parse_target_id(text)
    except ArchError as exc:
        raise ValueError(exc.one_line()) from None


def _target(value) -> TargetID:
    if isinstance(value, TargetID):
        return value
    if not isinstance(value, str):
        raise ValueError(f"an arch is a string such as gfx942, not {type(value).__name__}")
    return parse_target_id(value)


# A target ID parsed once, where the recipe is loaded; it flows down typed (written back as text).
Target = Annotated[TargetID, PlainValidator(_target), PlainSerializer(str, return_type=str)]


def _check_version(text: str) -> str:
    try:
        Version(text)
    except InvalidVersion as exc:
        raise ValueError(f"'{text}' is not a version number") from exc
    return text


# --- sources --------------------------------------------------------------------


class GitSource(Strict):
    kind: Literal["git"]
    url: str
    ref: str = Field(description="full 40-hex commit: tags and branches move")
    tag: str | None = Field(None, description="human-readable name of the commit")
    submodules: bool = True

    @field_validator("ref")
    @classmethod
    def _pinned(cls, ref: str) -> str:
        if not _SHA_RE.match(ref):
            raise ValueError(f"git ref '{ref}' is not pinned: give the full 40-character commit sha")
        return ref


class PyPISource(Strict):
    kind: Literal["pypi"]
    package: str
    version: str
    dist: Literal["sdist", "wheel"] = "sdist"

    _v = field_validator("version")(classmethod(lambda cls, v: _check_version(v)))


class LocalSource(Strict):
    kind: Literal["local"]
    path: str = Field(description="directory relative to the project root, copied into the build")


Source = Annotated[Union[GitSource, PyPISource, LocalSource], Field(discriminator="kind")]


class PyPIInput(Strict):
    """A further file the build reads (flash-attention's sdist for CK's headers and generator), fetched
    into ``/inputs/<package>/`` from the pip index before the commands run, and checked by sha256
    (downloaded as a file: an sdist's metadata is never built, so no setup.py runs)."""

    kind: Literal["pypi"]
    package: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str
    dist: Literal["sdist", "wheel"] = "sdist"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the file: the input is pinned by content")

    _v = field_validator("version")(classmethod(lambda cls, v: _check_version(v)))


# --- build ----------------------------------------------------------------------


class ArchFlag(Strict):
    """How the arch list reaches the component's build system.

    Each upstream spells it differently (PYTORCH_ROCM_ARCH ``;``, GPU_ARCHS ``;``,
    HIP_ARCHITECTURES space-separated, ``-DAMDGPU_TARGETS=``): the recipe says which.
    """

    name: str = Field(description="environment variable or CMake cache variable")
    kind: Literal["env", "cmake"] = "env"
    separator: Literal[";", " ", ","] = ";"
    features: bool = Field(False, description="keep target-ID features (gfx942:xnack-) or strip to the processor")

    def render(self, targets) -> str:
        names = [str(t) if self.features else t.processor for t in targets]
        value = self.separator.join(dict.fromkeys(names))
        if self.kind == "cmake":
            return f"-D{self.name}={value}"
        return value


class BuildSpec(Strict):
    toolchain: Literal["rocm", "triton", "none"] = Field(
        description="rocm: compiled with the stack's ROCm (arch support bounded by its version); "
        "triton: Triton AOT; none: no device code"
    )
    arch_flags: list[ArchFlag] = []
    env: dict[str, str] = {}
    memory_per_job_gb: float = Field(2.0, gt=0, description="peak RSS of one compile job; MAX_JOBS = min(cpus, memory / this)")
    max_jobs: int | None = Field(None, ge=1, description="hard cap on parallel jobs")
    system_packages: list[str] = Field([], description="apt packages the build stage needs")
    pip_packages: list[str] = Field([], description="pip requirements the build stage needs")
    commands: list[str] = Field(min_length=1, description="shell commands run in the source dir; wheels go to $WHEEL_DIR")
    toolchain_flags: str | None = Field(
        None, pattern=_NAME_RE, description="name of a flag set in the stack's toolchain.flags -> $ROCSTACK_TOOLCHAIN_FLAGS "
        "(';'-joined option groups; empty where the stack's toolchain has no such set)",
    )
    offload_compress: bool = Field(False, description="compress the device code: $ROCSTACK_OFFLOAD_COMPRESS=ON / --offload-compress")


class Artifacts(Strict):
    wheels: bool = True
    files: dict[str, str] = Field({}, description="build-stage path -> absolute path in the runtime image")
    libraries: list[str] = Field([], description="globs of the shared libraries the component installs (relative to site-packages)")
    distribution: str | None = Field(
        None, description="pip distribution the wheels install, when its name is not the component's "
        "(flash-attention-ck installs flash_attn): lets validation find it and compare its version",
    )
    env: dict[str, str] = Field(
        {}, description="ENV of the runtime image the component needs to work at all "
        "(flash-attention's Triton backend imports its C++ extension unless FLASH_ATTENTION_TRITON_AMD_ENABLE=TRUE)",
    )


class PythonCheck(Strict):
    """A recipe-declared Python snippet that must exit 0 in the image (an op is registered, a forward pass works)."""

    name: str = Field(pattern=_NAME_RE, description="check name: reported as python:<component>:<name>")
    code: str = Field(min_length=1, description="Python source run with `python -c` under the policy's env; "
                      "an assert message is the evidence when it fails")
    gpu: bool = Field(False, description="needs a GPU: without one it is reported skipped with the reason, never run")


class NativeProgram(Strict):
    """A test program the component installs: exit 0 pass, 77 skip (its last line is the reason), else fail."""

    name: str = Field(pattern=_NAME_RE, description="reported as program:<component>:<name>")
    command: str = Field(min_length=1, description="absolute path in the image, with arguments")
    gpu: bool = Field(True, description="it checks results on a GPU (a 77 without one is the expected skip)")


class ResourcePolicy(Strict):
    """What the code-object resources of the component's kernels may be (registers, scratch)."""

    spills: Literal["fail", "warn", "ignore"] = Field(
        "warn", description="VGPR/SGPR spills: a failure, a warning with the numbers (default), or ignored")
    max_scratch_bytes: int | None = Field(None, ge=0, description="scratch (private) bytes per lane above which a kernel fails")


class JitPolicy(Strict):
    """A library that compiles device code at run time (FlashInfer+ROCm): the image passes when its AOT
    outputs cover every image arch, or when ``compiler`` is in the image and targets every image arch
    (its offload-arch list, and a one-kernel compile per arch)."""

    compiler: str = Field(min_length=1, description="the compiler the library runs (hipcc)")
    arch_env: str | None = Field(None, description="environment variable the library reads its arch list from")
    aot: list[str] = Field([], description="globs (relative to site-packages) of the ahead-of-time outputs")
    probe: Literal["one-kernel"] = "one-kernel"


class ValidationPolicy(Strict):
    gpu_extensions: list[str] = []
    required_symbols: list[str] = []
    required_symbols_in: list[str] = []
    allowed_unresolved: list[str] = []
    preload: list[str] = []
    glibcxx_max: str | None = None
    manylinux: str | None = None
    imports: list[str] = []
    pytest: list[str] = []
    pytest_gpu: list[str] = Field(
        [], description="pytest selections that only mean something on a GPU (upstream's own HIP/CK test suites): "
        "without a GPU they are reported skipped with the reason, never run through Triton's interpreter",
    )
    env: dict[str, str] = Field({}, description="environment the component's checks run with (e.g. FBGEMM_TEST_WITH_ROCM=1)")
    benchmark: str | None = Field(
        None, description="command writing this component's metrics JSON ({\"metrics\": {name: value}}) for its perf floors; "
        "fields {python}, {json} (output file), {root} (project root)",
    )
    perf: dict[str, dict[str, float]] = Field({}, description="arch -> metric -> floor")
    pure_python: bool = Field(False, description="the component ships no native code by design (Triton kernels "
                              "compiled at run time): the audit reports its pure-Python wheel as info, not as "
                              "'nothing auditable'")
    python_checks: list[PythonCheck] = Field(
        [], description="Python snippets that must exit 0 in the image (xFormers: its CK attention operators are registered)",
    )
    programs: list[NativeProgram] = Field([], description="native test programs the component installs")
    resources: ResourcePolicy | None = Field(None, description="code-object resource policy (spills, scratch)")
    jit: JitPolicy | None = Field(None, description="the component compiles device code at run time")

    @field_validator("benchmark")
    @classmethod
    def _benchmark_fields(cls, command: str | None) -> str | None:
        if command is None:
            return None
        try:
            command.format(python="python", json="out.json", root=".")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"benchmark command has an unknown field ({exc}): use {{python}}, {{json}}, {{root}}") from None
        if "{json}" not in command:
            raise ValueError("benchmark command must write its metrics to {json}, the file the validation suite reads")
        return command

    @field_validator("python_checks")
    @classmethod
    def _unique_check_names(cls, checks: list[PythonCheck]) -> list[PythonCheck]:
        names = [c.name for c in checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"python_checks names must be unique (repeated: {', '.join(dupes)})")
        return checks

    @field_validator("perf")
    @classmethod
    def _known_perf_arches(cls, perf: dict) -> dict:
        for arch in perf:
            parse_target_id(arch)
        return perf


class ComponentRecipe(Strict):
    name: str = Field(pattern=_NAME_RE)
    version: str
    description: str = ""
    source: Source
    inputs: list[PyPIInput] = Field([], description="further files fetched into /inputs/<package>/ before the commands")
    arches: list[str] = Field(min_length=1, description="gfx arches the component can be built for")
    arch_note: str = Field("", description="why the arch list is what it is, shown when an arch is refused")
    build: BuildSpec
    artifacts: Artifacts = Artifacts()
    validation: ValidationPolicy = ValidationPolicy()

    @field_validator("arches")
    @classmethod
    def _known_arches(cls, arches: list[str]) -> list[str]:
        known = all_arches()
        for arch in arches:
            if arch not in known:
                parse_target_id(arch)  # raises the registry's one-line error with a suggestion
        return arches

    @model_validator(mode="after")
    def _perf_arches_supported(self) -> "ComponentRecipe":
        for arch in self.validation.perf:
            if parse_target_id(arch).processor not in self.arches:
                raise ValueError(f"validation.perf names {arch}, which the component does not support ({', '.join(self.arches)})")
        return self


# --- stacks ---------------------------------------------------------------------


class DebootstrapBase(Strict):
    suite: str = "bookworm"
    variant: str = "minbase"
    include: list[str] = ["python3", "python3-venv", "ca-certificates"]
    apt: AptLayer | None = Field(None, description="pinned packages installed after debootstrap (the toolchain layer)")


class BaseImage(Strict):
    image: str | None = Field(None, description="image reference, e.g. rocm/dev-ubuntu-22.04:6.4")
    digest: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$")
    debootstrap: DebootstrapBase | None = Field(None, description="build the base locally (no registry needed)")

    @model_validator(mode="after")
    def _one_kind(self) -> "BaseImage":
        if (self.image is None) == (self.debootstrap is None):
            raise ValueError("base needs exactly one of 'image' (a registry image) or 'debootstrap' (built locally)")
        if self.digest and not self.image:
            raise ValueError("base.digest pins a registry image: give base.image too")
        return self


class OSInfo(Strict):
    name: Literal["debian", "ubuntu", "rhel"]
    version: str


class TorchSpec(Strict):
    version: str
    variant: Literal["cpu", "rocm"]
    index_url: str | None = Field(None, description="pip index serving this torch build (ROCm wheels)")
    wheelhouse: bool = Field(False, description="take torch from --wheelhouse instead of an index")
    apt: str | None = Field(None, description="the distribution's own build, name=version (Debian's python3-torch)")

    _v = field_validator("version")(classmethod(lambda cls, v: _check_version(v)))

    @field_validator("apt")
    @classmethod
    def _apt_pinned(cls, value: str | None) -> str | None:
        if value is not None and not DEB_PINNED.match(value):
            raise ValueError(f"torch.apt '{value}' is not name=version (e.g. python3-torch=2.14.1+dfsg-1)")
        return value

    @model_validator(mode="after")
    def _has_source(self) -> "TorchSpec":
        sources = [name for name, on in (("index_url", self.index_url), ("wheelhouse", self.wheelhouse), ("apt", self.apt)) if on]
        if not sources:
            raise ValueError("torch needs index_url, wheelhouse: true or apt; a bare PyPI fallback is how a CPU-only torch slips in")
        if len(sources) > 1:
            raise ValueError(f"torch takes one source, not {' and '.join(sources)}")
        return self


class Stack(Strict):
    name: str = Field(pattern=_NAME_RE)
    description: str = ""
    base: BaseImage
    os: OSInfo
    rocm: str | None = Field(None, description="ROCm version of the base image; none for CPU-only stacks")
    python: str
    torch: TorchSpec
    triton: str | None = Field(None, description="triton version pinned in the Python env")
    system_packages: list[str] = Field([], description="apt packages of the Python env stage")
    components: list[str] = Field(min_length=1)
    component_env: dict[str, dict[str, str]] = Field(
        {}, description="component -> build environment over its recipe's build.env (e.g. a smaller CK instance set)")
    toolchain: Toolchain | None = Field(None, description="the stack's device compiler, what it targets and refuses")
    default_arches: tuple[Target, ...] = Field((_parse_target_id("gfx942"),), min_length=1)
    template: str | None = Field(None, description="template (relative to images/) that extends Dockerfile.j2")
    ci: Literal["build", "render"] = Field(
        "render", description="what CI proves for this stack: built and validated, or rendered only"
    )

    @field_validator("rocm", "python", "triton")
    @classmethod
    def _versions(cls, value: str | None) -> str | None:
        return None if value is None else _check_version(value)

    @model_validator(mode="after")
    def _rocm_matches_torch(self) -> "Stack":
        if self.torch.variant == "rocm" and self.rocm is None:
            raise ValueError("torch.variant is rocm but the stack sets no rocm version")
        if self.torch.apt and self.base.debootstrap is None:
            raise ValueError("torch.apt installs the distribution's torch: it needs a debootstrap base whose apt serves it")
        if self.rocm and self.base.debootstrap is not None and self.toolchain is None:
            raise ValueError("a ROCm stack on a debootstrap base must say what its compiler targets (toolchain)")
        unknown = sorted(set(self.component_env) - set(self.components))
        if unknown:
            raise ValueError(f"component_env names {', '.join(unknown)}, not among the stack's components")
        return self
