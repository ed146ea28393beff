"""Checks 1-4 on libraries compiled by g++: DT_NEEDED search, unresolved symbols, versions, RPATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig

import pytest

from rocstack.audit import AuditPolicy, load_policy, run_audit
from rocstack.audit.elf import open_elf


def _errors(report, check):
    return [f for f in report.findings if f.check == check and f.severity == "error"]


def test_elf_reader_matches_readelf(builder):
    lib = builder.lib("libplain.so", "#include <string>\nstd::string hello() { return std::string(40, 'x'); }\n",
                      "-Wl,-soname,libplain.so.1")
    mapped, elf = open_elf(lib)
    with mapped:
        assert elf.soname == "libplain.so.1"
        assert "libstdc++.so.6" in elf.needed
        undefined = {s.name: s.version for s in elf.symbols(undefined=True)}
        defined = {s.name for s in elf.symbols(undefined=False) if s.is_exported}
    assert "_Z5helloB5cxx11v" in defined
    # cross-check with binutils: every undefined dynamic symbol and its version
    out = subprocess.run(["objdump", "-T", str(lib)], capture_output=True, text=True, check=True).stdout
    expected = {}
    for line in out.splitlines():
        parts = line.split()
        if "*UND*" in parts and len(parts) >= 4:
            name, version = parts[-1], parts[-2].strip("()")
            expected[name] = None if version in ("Base", "*UND*") else version
    assert {k: v for k, v in undefined.items() if k in expected} == expected


def test_clean_library_passes(builder):
    lib = builder.lib("libok.so", "#include <string>\nstd::string f(int n) { return std::to_string(n); }\n")
    report = run_audit([lib], policy=load_policy("debian12"))
    assert report.exit_code == 0, report.findings
    assert report.files[0].kind == "shared-object"
    assert report.files[0].versions_needed["GLIBCXX"]


def test_unresolved_symbol_reported_demangled_with_version_and_weak_ignored(builder):
    lib = builder.lib(
        "libmiss.so",
        "namespace ns { void not_defined_anywhere(int); }\n"
        "extern \"C\" __attribute__((weak)) void maybe_there(void);\n"
        "void call(int x) { ns::not_defined_anywhere(x); if (maybe_there) maybe_there(); }\n",
    )
    report = run_audit([lib])
    [finding] = _errors(report, "unresolved-symbols")
    assert "ns::not_defined_anywhere(int)" in finding.evidence
    assert "_ZN2ns20not_defined_anywhereEi" in finding.message  # what dlopen would print
    assert "maybe_there" not in finding.evidence
    assert report.exit_code == 1
    # an allowed pattern (demangled glob) turns it into an info
    allowed = run_audit([lib], policy=AuditPolicy(allowed_unresolved=["ns::not_defined_*"]))
    assert not _errors(allowed, "unresolved-symbols") and allowed.exit_code == 0


def test_symbol_defined_by_a_dependency_resolves(builder, tmp_path):
    builder.lib("libdep.so", "int dep_value(void) { return 42; }\n", lang="c")
    lib = builder.lib("libuser.so", "int dep_value(void);\nint use(void) { return dep_value(); }\n",
                      f"-L{tmp_path}", "-ldep", "-Wl,-rpath,$ORIGIN", lang="c")
    report = run_audit([lib])
    assert report.exit_code == 0, report.findings
    os.remove(tmp_path / "libdep.so")
    missing = run_audit([lib])
    [needed] = _errors(missing, "missing-needed")
    assert "libdep.so" in needed.message and str(tmp_path) in needed.evidence
    [unresolved] = _errors(missing, "unresolved-symbols")
    assert "dep_value" in unresolved.evidence and "missing-needed" in unresolved.message


def test_rpath_is_inherited_but_runpath_is_not(builder, tmp_path):
    """ld.so: a DT_RPATH of the loading object also serves its dependencies; DT_RUNPATH serves only its owner."""
    hidden = tmp_path / "hidden"
    builder.lib("libleaf.so", "int leaf(void) { return 1; }\n", lang="c", subdir="hidden")
    builder.lib("libmid.so", "int leaf(void);\nint mid(void) { return leaf(); }\n",
                f"-L{hidden}", "-lleaf", lang="c", subdir="mid")
    mid_dir = tmp_path / "mid"
    for dtags, found in (("--disable-new-dtags", True), ("--enable-new-dtags", False)):
        top = builder.lib(f"libtop{found}.so", "int mid(void);\nint top(void) { return mid(); }\n",
                          f"-L{mid_dir}", "-lmid", f"-Wl,{dtags}", f"-Wl,-rpath,{mid_dir}:{hidden}", lang="c")
        report = run_audit([top])
        missing = [f.message for f in _errors(report, "missing-needed")]
        assert (missing == []) is found, (dtags, missing)
        if not found:
            assert "libleaf.so (needed by" in missing[0] and "libmid.so" in missing[0]


def test_version_node_missing_from_the_provider(builder, tmp_path):
    """A library linked against DEP_2 fails where the provider found at run time only defines DEP_1."""
    (tmp_path / "v2.map").write_text("DEP_1 { global: old_fn; local: *; };\nDEP_2 { global: new_fn; } DEP_1;\n")
    (tmp_path / "v1.map").write_text("DEP_1 { global: old_fn; local: *; };\n")
    builder.lib("libver.so", "int old_fn(void){return 1;}\nint new_fn(void){return 2;}\n",
                f"-Wl,--version-script={tmp_path / 'v2.map'}", "-Wl,-soname,libver.so", lang="c", subdir="new")
    user = builder.lib("libveruser.so", "int new_fn(void);\nint f(void){return new_fn();}\n",
                       f"-L{tmp_path / 'new'}", "-lver", "-Wl,-rpath,$ORIGIN/old", lang="c")
    builder.lib("libver.so", "int old_fn(void){return 1;}\nint new_fn(void){return 2;}\n",
                f"-Wl,--version-script={tmp_path / 'v1.map'}", "-Wl,-soname,libver.so", lang="c", subdir="old")
    report = run_audit([user])
    [version] = _errors(report, "symbol-versions")
    assert "version `DEP_2' not found" in version.message and "new_fn" in version.evidence
    # the old provider exports new_fn only at DEP_1, so the DEP_2 reference stays unresolved as well
    assert any("new_fn" in f.evidence for f in _errors(report, "unresolved-symbols"))
    if shutil.which("ldd"):
        assert _ldd_r(user)[2] == {"DEP_2"}  # glibc agrees


def test_glibcxx_ceiling_names_symbols_and_newest_version(builder):
    lib = builder.lib(
        "libcv.so",
        "#include <condition_variable>\n#include <mutex>\n"
        "void wait_once(std::condition_variable& cv, std::unique_lock<std::mutex>& l) { cv.wait(l); }\n",
    )
    strict = run_audit([lib], policy=load_policy("manylinux_2_28"))
    [finding] = [f for f in _errors(strict, "symbol-versions") if "GLIBCXX" in f.message]
    assert "GLIBCXX_3.4.30" in finding.message and "GLIBCXX_3.4.24" in finding.message
    assert "std::condition_variable::wait" in finding.evidence
    assert run_audit([lib], policy=load_policy("debian12")).exit_code == 0
    assert run_audit([lib], policy=load_policy("rhel9")).exit_code == 1


def test_rpath_hygiene(builder):
    lib = builder.lib("librp.so", "int f(void){return 0;}\n",
                      "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN::/tmp/build-x/lib:/home/ci/proj/lib:$ORIGIN/nope",
                      lang="c")
    report = run_audit([lib])
    rpath = [(f.severity, f.message) for f in report.findings if f.check == "rpath"]
    assert any(s == "warning" and "empty RUNPATH entry" in m for s, m in rpath)
    assert any(s == "error" and "/tmp/build-x/lib" in m and "world-writable" in m for s, m in rpath)
    assert any(s == "warning" and "/home/ci/proj/lib" in m and "build tree" in m for s, m in rpath)
    assert any("$ORIGIN/nope" in m and "does not exist" in m for s, m in rpath)
    assert not any("$ORIGIN does not exist" in m for s, m in rpath)


def test_sysroot_ld_so_conf_include_glob_and_rerooted_rpath(builder, tmp_path):
    root = tmp_path / "root"
    (root / "etc" / "ld.so.conf.d").mkdir(parents=True)
    (root / "etc" / "ld.so.conf").write_text("# comment\ninclude /etc/ld.so.conf.d/*.conf\n")
    (root / "etc" / "ld.so.conf.d" / "vendor.conf").write_text("/opt/vendor/lib\n")
    builder.lib("libvendor.so", "int vendor(void){return 3;}\n", lang="c", subdir="root/opt/vendor/lib")
    builder.lib("libabs.so", "int absfn(void){return 4;}\n", lang="c", subdir="root/opt/abs/lib")
    for libc_dir in ("lib/x86_64-linux-gnu",):  # libc of the host, copied: the sysroot must be self-contained
        (root / libc_dir).mkdir(parents=True, exist_ok=True)
        shutil.copy(f"/{libc_dir}/libc.so.6", root / libc_dir / "libc.so.6")
    lib = builder.lib("libapp.so", "int vendor(void); int absfn(void);\nint app(void){return vendor()+absfn();}\n",
                      f"-L{root / 'opt/vendor/lib'}", "-lvendor", f"-L{root / 'opt/abs/lib'}", "-labs",
                      "-Wl,-rpath,/opt/abs/lib", lang="c")
    inside = run_audit([lib], sysroot=root)
    assert inside.exit_code == 0, inside.findings
    host = run_audit([lib])  # on the host neither /opt/vendor/lib nor /opt/abs/lib exists
    assert {"libvendor.so", "libabs.so"} <= {f.message.split()[1] for f in _errors(host, "missing-needed")}


def _extension_source(extra: str) -> str:
    return ("#include <Python.h>\n" + extra +
            "static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, \"ext\", NULL, -1, NULL};\n"
            "PyMODINIT_FUNC PyInit_ext(void) { return PyModule_Create(&def); }\n")


def test_python_extension_resolves_against_the_interpreter(builder):
    include = sysconfig.get_paths()["include"]
    ok = builder.lib("ext.cpython-311-x86_64-linux-gnu.so", _extension_source(""), f"-I{include}", lang="c",
                     subdir="ok")
    assert run_audit([ok]).exit_code == 0
    bad = builder.lib("ext.cpython-311-x86_64-linux-gnu.so",
                      _extension_source("void PyNotARealApi(void);\nvoid g(void){PyNotARealApi();}\n"),
                      f"-I{include}", lang="c", subdir="bad")
    report = run_audit([bad])
    [finding] = _errors(report, "unresolved-symbols")
    assert "PyNotARealApi" in finding.evidence and "PyModule_Create2" not in finding.evidence


@pytest.fixture(scope="module")
def torch_lib():
    torch = pytest.importorskip("torch")
    return os.path.join(os.path.dirname(torch.__file__), "lib")


def test_preloaded_torch_satisfies_needed_but_not_a_real_miss(builder, torch_lib):
    source = ("#include <cstddef>\nnamespace c10 { void* alloc_cpu(size_t); void definitely_not_in_c10(); }\n"
              "void* grab(size_t n) { return c10::alloc_cpu(n); }\n")
    good = builder.lib("libext_good.so", source, f"-L{torch_lib}", "-lc10", "-Wl,-rpath,$ORIGIN", subdir="good")
    without = run_audit([good])
    assert [f for f in _errors(without, "missing-needed") if "libc10.so" in f.message]
    with_torch = run_audit([good], policy=AuditPolicy(preload=["torch"]))
    assert with_torch.exit_code == 0, with_torch.findings
    bad = builder.lib("libext_bad.so", source + "void oops() { c10::definitely_not_in_c10(); }\n",
                      f"-L{torch_lib}", "-lc10", "-Wl,-rpath,$ORIGIN", subdir="bad")
    report = run_audit([bad], policy=AuditPolicy(preload=["torch"]))
    [finding] = _errors(report, "unresolved-symbols")
    assert "c10::definitely_not_in_c10()" in finding.evidence and "alloc_cpu" not in finding.evidence


def test_preload_that_matches_nothing_is_reported(builder):
    lib = builder.lib("libx.so", "int x(void){return 0;}\n", lang="c")
    report = run_audit([lib], policy=AuditPolicy(preload=["no_such_package_rocstack"]))
    assert any(f.check == "preload" and "no_such_package_rocstack" in f.message for f in report.findings)


def test_vendored_dependency_is_judged_where_it_is_loaded(builder, tmp_path):
    """Like scipy.libs/libgfortran: no RPATH of its own, loadable only through its loader's DT_RPATH."""
    libs = tmp_path / "pkg.libs"
    builder.lib("libquad.so", "int quad(void){return 4;}\n", lang="c", subdir="pkg.libs")
    builder.lib("libfort.so", "int quad(void);\nint fort(void){return quad();}\n",
                f"-L{libs}", "-lquad", lang="c", subdir="pkg.libs")
    builder.lib("ext.so", "int fort(void);\nint ext(void){return fort();}\n",
                f"-L{libs}", "-lfort", "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../pkg.libs", lang="c",
                subdir="pkg")
    alone = run_audit([libs / "libfort.so"])
    assert [f.message.split()[1] for f in _errors(alone, "missing-needed")] == ["libquad.so"]
    tree = run_audit([tmp_path])
    assert tree.exit_code == 0, tree.findings
    [note] = [f for f in tree.findings if f.file.endswith("libfort.so")]
    assert note.severity == "info" and "loads as a dependency of" in note.message and "ext.so" in note.message
    # the same layout, but the loader's context does not define what the vendored library needs
    builder.lib("libquad.so", "int other(void){return 4;}\n", lang="c", subdir="pkg.libs")
    broken = run_audit([tmp_path])
    assert [f.file for f in _errors(broken, "unresolved-symbols")] == [str(libs / "libfort.so")]


def test_sysroot_without_python_reports_c_api_as_unchecked(builder, tmp_path):
    include = sysconfig.get_paths()["include"]
    ext = builder.lib("ext.cpython-311-x86_64-linux-gnu.so", _extension_source(""), f"-I{include}", lang="c",
                      subdir="ext")
    root = tmp_path / "root"
    (root / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    shutil.copy("/lib/x86_64-linux-gnu/libc.so.6", root / "lib" / "x86_64-linux-gnu" / "libc.so.6")
    report = run_audit([ext], sysroot=root)
    assert not _errors(report, "unresolved-symbols"), report.findings
    [warning] = [f for f in report.findings if f.check == "unresolved-symbols"]
    assert warning.severity == "warning" and "Python C-API symbols not checked" in warning.message


def _ldd_r(lib) -> tuple[set[str], set[str], set[str]]:
    """(undefined symbols, libraries not found, missing versions) as glibc's `ldd -r` reports them."""
    done = subprocess.run(["ldd", "-r", str(lib)], capture_output=True, text=True, timeout=60)
    text = done.stdout + done.stderr
    undefined = {line.split("undefined symbol: ")[1].split()[0].split(",")[0]
                 for line in text.splitlines() if "undefined symbol: " in line}
    not_found = {line.split("=>")[0].strip() for line in text.splitlines() if "=> not found" in line}
    versions = {line.split("version `")[1].split("'")[0] for line in text.splitlines() if "version `" in line}
    return undefined, not_found, versions


def test_agrees_with_ldd_r(builder, tmp_path):
    """glibc's own `ldd -r` (which runs the loader) as the oracle for a handful of broken libraries."""
    if shutil.which("ldd") is None:
        pytest.skip("ldd is not installed (libc-bin)")
    builder.lib("libdep.so", "int dep_value(void) { return 42; }\nint dep_extra(void) { return 1; }\n",
                lang="c", subdir="deps")
    deps = tmp_path / "deps"
    libs = [
        builder.lib("libone.so", "void nowhere_a(void); void nowhere_b(int);\n"
                    "__attribute__((weak)) void weak_one(void);\n"
                    "void f(void){ nowhere_a(); nowhere_b(1); if (weak_one) weak_one(); }\n", lang="c"),
        builder.lib("libtwo.so", "int dep_value(void); int dep_missing(void);\n"
                    "int g(void){ return dep_value() + dep_missing(); }\n",
                    f"-L{deps}", "-ldep", "-Wl,-rpath,$ORIGIN/deps", lang="c"),
        builder.lib("libthree.so", "int dep_value(void);\nint h(void){ return dep_value(); }\n",
                    f"-L{deps}", "-ldep", "-Wl,-rpath,$ORIGIN/nowhere", lang="c"),
    ]
    for lib in libs:
        undefined, not_found, _versions = _ldd_r(lib)
        report = run_audit([lib])
        ours_undefined = set()
        for finding in _errors(report, "unresolved-symbols"):
            ours_undefined |= {name.split("@")[0] for name in finding.evidence.split("; ")}
        ours_missing = {f.message.split()[1] for f in _errors(report, "missing-needed")}
        assert ours_missing == not_found, lib.name
        if not not_found:  # ldd -r stops relocating when a library is missing
            assert ours_undefined == undefined, lib.name


def test_interpreter_loaded_libstdcxx_wins_like_in_a_conda_env(builder, tmp_path):
    """ROCm/AMDMIGraphX#3405: the interpreter already loaded an older libstdc++ (conda), so an extension
    built with a newer GCC fails with "version `GLIBCXX_3.4.30' not found" although the system has it."""
    root = tmp_path / "root"
    conda_lib = root / "opt" / "conda" / "lib"
    (tmp_path / "old.map").write_text("GLIBCXX_3.4 { global: old_a; local: *; };\n"
                                      "GLIBCXX_3.4.20 { global: old_b; } GLIBCXX_3.4;\n")
    builder.lib("libstdc++.so.6", "void old_a(void){}\nvoid old_b(void){}\n",
                f"-Wl,--version-script={tmp_path / 'old.map'}", "-Wl,-soname,libstdc++.so.6", lang="c",
                subdir="root/opt/conda/lib")
    system = root / "usr" / "lib" / "x86_64-linux-gnu"
    system.mkdir(parents=True)
    for name in ("libstdc++.so.6", "libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2"):
        shutil.copy(f"/usr/lib/x86_64-linux-gnu/{name}", system / name)
    python = root / "opt" / "conda" / "bin" / "python3"
    python.parent.mkdir(parents=True)
    (tmp_path / "main.c").write_text("void old_a(void);\nint main(void){ old_a(); return 0; }\n")
    subprocess.run(["gcc", "-o", str(python), str(tmp_path / "main.c"), f"-L{conda_lib}", "-l:libstdc++.so.6",
                    "-Wl,-rpath,/opt/conda/lib"], check=True)
    (root / "usr" / "bin").mkdir(parents=True)
    os.symlink("/opt/conda/bin/python3", root / "usr" / "bin" / "python3")  # absolute: re-rooted in the sysroot
    source = ("#include <condition_variable>\n#include <mutex>\n"
              "void wait_once(std::condition_variable& cv, std::unique_lock<std::mutex>& l) { cv.wait(l); }\n")
    ext = builder.lib("ext.so", source + 'extern "C" void* PyInit_ext() { return nullptr; }\n', subdir="ext")
    plain = builder.lib("libplain.so", source, subdir="plain")
    report = run_audit([ext], sysroot=root)
    missing = [f.message for f in _errors(report, "symbol-versions")]
    assert any("`GLIBCXX_3.4.30' not found" in m and "opt/conda/lib/libstdc++.so.6" in m
               and "up to GLIBCXX_3.4.20" in m for m in missing), missing
    assert run_audit([plain], sysroot=root).exit_code == 0  # not a Python extension: the system libstdc++


def test_required_symbols_by_demangled_name_prefix_and_glob(builder):
    lib = builder.lib(
        "libreq.so",
        "#include <string>\nnamespace fb { int jagged_2d_to_dense(int a) { return a; }\n"
        "template <typename T> T twice(T v) { return v + v; } template int twice<int>(int);\n"
        "std::string name() { return \"x\"; } }\n"
        "namespace std { int rocstack_probe(int v) { return v; } }\n"
        "extern \"C\" int plain_c_api(void) { return 0; }\n",
    )
    found = ["fb::jagged_2d_to_dense", "fb::twice", "fb::name[abi:cxx11]*", "plain_c_api", "std::rocstack_probe"]
    ok = run_audit([lib], policy=AuditPolicy(required_symbols=found))
    assert [f.severity for f in ok.findings if f.check == "required-symbols"] == ["info"], ok.findings
    missing = run_audit([lib], policy=AuditPolicy(required_symbols=["fb::jagged", "fb::merge_pooled", "nope_c"]))
    [finding] = _errors(missing, "required-symbols")
    assert "3 of 3" in finding.message  # a bare prefix of an identifier is not a match: it must end the name


def test_ld_library_path_is_searched_only_when_given(builder, tmp_path):
    builder.lib("libenv.so", "int env_fn(void){return 5;}\n", lang="c", subdir="opt/rocm/lib")
    lib = builder.lib("libuses_env.so", "int env_fn(void);\nint f(void){return env_fn();}\n",
                      f"-L{tmp_path / 'opt/rocm/lib'}", "-lenv", lang="c")
    assert _errors(run_audit([lib]), "missing-needed")
    assert run_audit([lib], ld_library_path=[str(tmp_path / "opt/rocm/lib")]).exit_code == 0
    root = tmp_path  # as an image's ENV: a path inside the sysroot
    (root / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    shutil.copy("/lib/x86_64-linux-gnu/libc.so.6", root / "lib" / "x86_64-linux-gnu" / "libc.so.6")
    shutil.copy("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", root / "lib" / "x86_64-linux-gnu")
    assert run_audit([lib], sysroot=root, ld_library_path=["/opt/rocm/lib"]).exit_code == 0


def test_sysroot_finds_a_conda_environment_s_interpreter_and_site_packages(tmp_path):
    """Vendor images (rocm/pytorch) install torch into /opt/conda/envs/<name>, whose bin is first on PATH;
    the system python3 apt installed beside it loads none of those extensions."""
    from rocstack.audit.resolve import find_preloads
    from rocstack.audit.sysroot import Sysroot

    root = tmp_path / "root"
    env = root / "opt/conda/envs/py_3.10"
    for path in (env / "bin/python3.10", root / "usr/bin/python3.10", root / "opt/conda/bin/python3.12",
                 env / "lib/python3.10/site-packages/torch/lib/libc10.so",
                 root / "opt/conda/lib/python3.12/site-packages/pip/__init__.py"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF")
    for folder in (env / "bin", root / "usr/bin", root / "opt/conda/bin"):
        os.symlink(next(p.name for p in folder.iterdir()), folder / "python3")
    sysroot = Sysroot(root)
    assert sysroot.python == str(env / "bin/python3.10")
    assert str(env / "lib/python3.10/site-packages") in sysroot.site_packages
    assert str(root / "opt/conda/lib/python3.12/site-packages") in sysroot.site_packages
    found, missing = find_preloads(["torch"], sysroot, [])
    assert missing == [] and found["libc10.so"] == str(env / "lib/python3.10/site-packages/torch/lib/libc10.so")
    # without a conda environment the order is what it was: the system interpreter before conda's base
    shutil.rmtree(root / "opt/conda/envs")
    assert Sysroot(root).python == str(root / "usr/bin/python3.10")
