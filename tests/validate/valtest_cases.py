"""The failure cases validation must catch, each reproducing a row of
shared/reference/upstream-builds.md, plus one healthy component that must pass.

Every native library is compiled on the host by the real toolchain (g++ 12, Debian's
hipcc) when the image is built; nothing is a hand-made binary blob.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PY_MODULE = """
#include <Python.h>
static PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&mod); }
"""

OLD_LIBSTDCXX_DEB = "http://deb.debian.org/debian/pool/main/g/gcc-10/libstdc++6_10.2.1-6_amd64.deb"

CPU_STACK = "valtest-cpu"
ROCM_STACK = "valtest-rocm"


@dataclass(frozen=True)
class Case:
    name: str  # image suffix and pytest id
    component: str  # recipe / distribution name
    package: str  # import name
    sources: dict[str, str]  # file -> text, compiled in the package's build dir
    build: list[str]  # shell commands run there; {pkg} = package dir, {pyinc} = Python include flags
    validation: dict
    expected: dict[str, list[str]]  # failing check -> substrings its evidence must contain
    stack: str = CPU_STACK
    arches: tuple[str, ...] = ("gfx942",)
    dockerfile: tuple[str, ...] = ()  # extra lines before the component is installed
    needs: tuple[str, ...] = ()  # host tools the case compiles with
    tests: dict[str, str] = field(default_factory=dict)  # /opt/rocstack/src/<path> -> text
    thread: str = ""


def _ext(body: str) -> dict[str, str]:
    return {"ext.cpp": body + PY_MODULE}


GOOD = Case(
    name="good", component="valtest-good", package="valtest_good",
    sources=_ext('extern "C" int valtest_answer() { return 42; }\n'),
    build=["g++ -shared -fPIC -O1 {pyinc} ext.cpp -o {pkg}/_C.so"],
    validation={"imports": ["valtest_good"], "required_symbols": ["valtest_answer"],
                "pytest": ["tests/valtest_good"], "perf": {"gfx942": {"valtest_copy_gbps": 100.0}}},
    tests={"tests/valtest_good/test_good.py":
           "import ctypes, valtest_good._C as ext\n\n"
           "def test_answer():\n    assert ctypes.CDLL(ext.__file__).valtest_answer() == 42\n"},
    expected={},
)

CASES = [
    Case(
        name="noarch", component="valtest-flash-attn", package="valtest_flash_attn",
        sources={"kernel.hip": "#include <hip/hip_runtime.h>\n"
                 "__global__ void scale(float* x, float a, int n) {\n"
                 "  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] *= a; }\n"
                 'extern "C" int valtest_scale(float* x, float a, int n) {\n'
                 "  hipLaunchKernelGGL(scale, dim3((n + 255) / 256), dim3(256), 0, 0, x, a, n);\n"
                 "  return (int)hipGetLastError(); }\n" + PY_MODULE},
        # Debian's hipcc rejects gfx942: the library is built for gfx90a and the image asks for gfx942.
        build=["HIP_PLATFORM=amd hipcc --offload-arch=gfx90a -shared -fPIC {pyinc} kernel.hip -o {pkg}/_C.so"],
        validation={"gpu_extensions": ["valtest_flash_attn/_C.so"], "imports": ["valtest_flash_attn"]},
        dockerfile=("RUN apt-get update && apt-get install -y --no-install-recommends libamdhip64-5 "
                    "&& rm -rf /var/lib/apt/lists/*",),
        needs=("hipcc",),
        expected={"audit:valtest-flash-attn": ["hipErrorNoBinaryForGpu", "gfx942", "gfx90a"]},
        thread="ROCm/flash-attention 120, vllm 22590",
    ),
    Case(
        name="cpuonly", component="valtest-xformers", package="valtest_xformers",
        sources=_ext('extern "C" int valtest_attention_cpu(int n) { return 2 * n; }\n'),
        build=["g++ -shared -fPIC -O1 {pyinc} ext.cpp -o {pkg}/_C.so"],
        validation={"gpu_extensions": ["valtest_xformers/_C.so"], "imports": ["valtest_xformers"]},
        expected={"audit:valtest-xformers": ["gpu-extension", "valtest_xformers/_C.so"]},
        thread="ROCm/xformers 60",
    ),
    Case(
        name="tbb", component="valtest-fbgemm-tbb", package="valtest_fbgemm_tbb",
        sources=_ext("namespace tbb { namespace detail { namespace r1 { void deallocate_memory(void*); } } }\n"
                     'extern "C" void valtest_free(void* p) { tbb::detail::r1::deallocate_memory(p); }\n'),
        # linked without -ltbb: tbb never lands in DT_NEEDED, the symbol stays unresolved
        build=["g++ -shared -fPIC -O1 {pyinc} ext.cpp -o {pkg}/_C.so"],
        validation={"imports": ["valtest_fbgemm_tbb"]},
        expected={"audit:valtest-fbgemm-tbb": ["unresolved", "tbb::detail::r1::deallocate_memory"],
                  "import:valtest-fbgemm-tbb": ["undefined symbol: _ZN3tbb6detail2r117deallocate_memoryEPv"]},
        thread="pytorch/FBGEMM 4334",
    ),
    Case(
        name="sibling", component="valtest-fbgemm-config", package="valtest_fbgemm_config",
        sources={"config.cpp": 'extern "C" int valtest_config_value() { return 7; }\n',
                 **_ext('extern "C" int valtest_config_value();\n'
                        'extern "C" int valtest_read_config() { return valtest_config_value(); }\n')},
        # the sibling ships next to the extension, but the extension has no $ORIGIN RPATH
        build=["g++ -shared -fPIC -Wl,-soname,libvaltest_config.so config.cpp -o {pkg}/libvaltest_config.so",
               "g++ -shared -fPIC -O1 {pyinc} ext.cpp -L{pkg} -lvaltest_config -o {pkg}/_C.so"],
        validation={"imports": ["valtest_fbgemm_config"]},
        expected={"audit:valtest-fbgemm-config": ["libvaltest_config.so"],
                  "import:valtest-fbgemm-config": ["libvaltest_config.so: cannot open shared object file"]},
        thread="pytorch/FBGEMM 3921",
    ),
    Case(
        name="glibcxx", component="valtest-migraphx", package="valtest_migraphx",
        sources=_ext("#include <condition_variable>\n#include <mutex>\n"
                     'extern "C" void valtest_wait(bool* ready) {\n'
                     "  static std::mutex m; static std::condition_variable cv;\n"
                     "  std::unique_lock<std::mutex> lock(m); cv.wait(lock, [&] { return *ready; }); }\n"),
        # g++ 12 binds condition_variable::wait to GLIBCXX_3.4.30; the image's conda-style env
        # (its RUNPATH) carries Debian 11's libstdc++ (GLIBCXX_3.4.28), as in the upstream report.
        build=["g++ -shared -fPIC -O1 {pyinc} ext.cpp -Wl,-rpath,/opt/condaenv/lib -o {pkg}/_C.so"],
        validation={"imports": ["valtest_migraphx"]},
        dockerfile=("COPY condaenv/ /opt/condaenv/lib/",),
        expected={"audit:valtest-migraphx": ["GLIBCXX_3.4.30"],
                  "import:valtest-migraphx": ["GLIBCXX_3.4.30' not found"]},
        thread="ROCm/AMDMIGraphX 3405",
    ),
    Case(
        name="symbol", component="valtest-fbgemm-gpu", package="valtest_fbgemm_gpu",
        sources=_ext("#include <cstdint>\nnamespace fbgemm_gpu {\n"
                     "int64_t jagged_2d_to_dense(int64_t n) { return n; }\n"
                     "int64_t asynchronous_inclusive_cumsum_cpu(int64_t n) { return n; }\n}\n"),
        # the CPU variant: FBGEMM's rocm-variant check also requires the GPU entry points
        build=["g++ -shared -fPIC -O1 {pyinc} ext.cpp -o {pkg}/_C.so"],
        validation={"imports": ["valtest_fbgemm_gpu"],
                    "required_symbols": ["fbgemm_gpu::jagged_2d_to_dense", "fbgemm_gpu::asynchronous_inclusive_cumsum_cpu",
                                         "fbgemm_gpu::asynchronous_inclusive_cumsum_gpu"]},
        expected={"audit:valtest-fbgemm-gpu": ["fbgemm_gpu::asynchronous_inclusive_cumsum_gpu"]},
        thread="pytorch/FBGEMM build scripts (required symbols)",
    ),
    Case(
        name="cputorch", component=GOOD.component, package=GOOD.package, sources=GOOD.sources, build=GOOD.build,
        validation={"imports": ["valtest_good"]}, stack=ROCM_STACK,
        expected={"torch-variant": ["CPU-only", "torch.version.hip=None", "--index-url"]},
        thread="FlashInfer+ROCm docs: use --index-url, not -f",
    ),
]

ALL = [GOOD, *CASES]


def stack_yaml(name: str, component: str) -> str:
    if name == ROCM_STACK:
        base = ('base: {image: "rocm/dev-ubuntu-22.04:6.4"}\nos: {name: ubuntu, version: "22.04"}\nrocm: "6.4"\n'
                'torch: {version: "2.13.0", variant: rocm, index_url: "https://download.pytorch.org/whl/rocm6.4"}\n')
    else:
        base = ('base: {debootstrap: {suite: bookworm}}\nos: {name: debian, version: "12"}\n'
                'torch: {version: "2.13.0", variant: cpu, wheelhouse: true}\n')
    return f"name: {name}\n{base}python: \"3.11\"\ncomponents: [{component}]\ndefault_arches: [gfx942]\n"


def recipe_yaml(case: Case, version: str) -> str:
    import json

    return (f"name: {case.component}\nversion: \"{version}\"\n"
            f"source: {{kind: local, path: tests/validate/{case.component}}}\n"
            "arches: [gfx90a, gfx942]\n"
            "build: {toolchain: rocm, commands: [\"true\"]}\n"
            f"validation: {json.dumps(case.validation)}\n")
