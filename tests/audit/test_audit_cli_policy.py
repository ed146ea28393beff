"""The `rocstack audit` command (real subprocess), the JSON schema, and policy loading."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from rocstack.audit import AuditPolicy, load_named_policy, load_policy, named_policies, run_audit
from rocstack.audit.policy import split_version, version_key
from rocstack.cli.audit_tasks import split_paths
from rocstack.cli.program import normalise
from rocstack.errors import RocstackError

REPO = Path(__file__).resolve().parents[2]


def rocstack(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(["rocstack", *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def good_and_bad(builder):
    good = builder.lib("libgood.so", "int good(void){return 1;}\n", lang="c")
    bad = builder.lib("libbad.so", "void nowhere(void);\nvoid bad(void){nowhere();}\n", lang="c")
    return good, bad


def test_cli_exit_codes_and_table(good_and_bad, tmp_path):
    good, bad = good_and_bad
    ok = rocstack("audit", str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASS" in ok.stdout and "libgood.so" in ok.stdout
    fail = rocstack("audit", f"{good},{bad}", "--policy", "debian12")
    assert fail.returncode == 1
    assert "unresolved-symbols" in fail.stdout and "nowhere" in fail.stdout and "FAIL" in fail.stdout
    assert "Traceback" not in fail.stdout + fail.stderr


@pytest.mark.parametrize("args, expected", [
    (["/no/such/lib.so"], "audit input /no/such/lib.so does not exist"),
    (["{good}", "--arch", "gfx9999"], "unknown arch 'gfx9999'"),
    (["{good}", "--policy", "manylinux_1"], "unknown audit policy 'manylinux_1'"),
    (["{good}", "--sysroot", "/no/such/root"], "sysroot /no/such/root is not a directory"),
])
def test_cli_usage_errors_are_one_line_exit_2(good_and_bad, args, expected):
    good, _ = good_and_bad
    done = rocstack("audit", *[a.format(good=good) for a in args])
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ") and expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_cli_json_schema_and_output_file(good_and_bad, tmp_path):
    good, bad = good_and_bad
    out = tmp_path / "reports" / "audit.json"
    done = rocstack("audit", f"{good},{bad}", "--json", "--output", str(out), "--arch", "gfx942")
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert json.loads(out.read_text()) == data
    assert data["schema"] == "rocstack.audit/v1"
    assert data["verdict"] == "fail" and data["exit_code"] == 1
    assert data["targets"] == ["gfx942"]
    assert data["counts"]["error"] == 1
    assert {"schema", "rocstack_version", "created", "sysroot", "policy", "targets", "verdict", "exit_code",
            "checks", "counts", "files", "coverage", "declared", "findings"} == set(data)
    assert data["checks"]["required-symbols"].startswith("skipped: ")
    [finding] = [f for f in data["findings"] if f["severity"] == "error"]
    assert set(finding) == {"check", "severity", "file", "message", "evidence", "hint"}
    assert finding["file"] == str(bad) and finding["hint"]
    assert {f["path"] for f in data["files"]} == {str(good), str(bad)}


def test_invoke_runs_the_same_task(good_and_bad):
    good, _ = good_and_bad
    done = subprocess.run(["invoke", "audit", str(good), "--json"], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "pass"


def test_variadic_paths_are_joined_for_invoke():
    argv = ["rocstack", "audit", "a.so", "b.whl", "--arch", "gfx942", "--json", "dir"]
    assert normalise(argv) == ["rocstack", "audit", "a.so,b.whl,dir", "--arch", "gfx942", "--json"]
    assert normalise(["rocstack", "arches"]) == ["rocstack", "arches"]
    assert split_paths(" a.so, ,b.so ") == ["a.so", "b.so"]


def test_named_policies_are_ordered_and_complete():
    names = named_policies()
    for required in ("manylinux2014", "manylinux_2_28", "manylinux_2_34", "manylinux_2_35", "manylinux_2_39",
                     "debian12", "ubuntu22.04", "ubuntu24.04", "rhel8", "rhel9"):
        assert required in names
    glibcxx = {n: version_key(load_named_policy(n).symbol_ceilings["GLIBCXX"]) for n in names}
    assert glibcxx["manylinux2014"] < glibcxx["manylinux_2_28"] < glibcxx["manylinux_2_34"] \
        < glibcxx["manylinux_2_35"] < glibcxx["manylinux_2_39"]
    assert glibcxx["debian12"] == glibcxx["ubuntu22.04"] == (3, 4, 30)
    assert glibcxx["rhel8"] == (3, 4, 25) and glibcxx["rhel9"] == (3, 4, 29) and glibcxx["ubuntu24.04"] == (3, 4, 33)


def test_policy_merge_and_files(tmp_path):
    merged = load_policy("debian12,manylinux_2_28")
    assert merged.symbol_ceilings["GLIBCXX"] == "3.4.24" and merged.symbol_ceilings["GLIBC"] == "2.28"
    assert merged.name == "debian12+manylinux_2_28"
    custom = tmp_path / "mine.json"
    custom.write_text(json.dumps({"name": "mine", "required_symbols": ["f"], "preload": ["torch"]}))
    combined = load_policy(f"{custom},rhel9")
    assert combined.required_symbols == ["f"] and combined.symbol_ceilings["GLIBCXX"] == "3.4.29"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"symbol_ceilings": {"GLIBCXX": "new"}}))
    with pytest.raises(RocstackError, match="not a valid audit policy"):
        load_policy(str(bad))
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"requried_symbols": []}))
    with pytest.raises(RocstackError, match="not a valid audit policy"):
        load_policy(str(typo))
    with pytest.raises(RocstackError, match="does not exist"):
        load_policy(str(tmp_path / "missing.json"))
    assert split_version("GLIBCXX_3.4.30") == ("GLIBCXX", "3.4.30") and split_version("Base") is None


def test_policy_from_recipe_validation_block():
    from rocstack.recipes.models import ValidationPolicy

    vp = ValidationPolicy(gpu_extensions=["xformers/_C.so"], required_symbols=["fbgemm_gpu::jagged_2d_to_dense"],
                          required_symbols_in=["fbgemm_gpu/*.so"], allowed_unresolved=["_ZN3c10*"],
                          preload=["torch"], glibcxx_max="3.4.28", manylinux="manylinux_2_28")
    policy = AuditPolicy.from_validation(vp, name="fbgemm")
    assert policy.name == "fbgemm"
    assert policy.gpu_extensions == ["xformers/_C.so"] and policy.preload == ["torch"]
    assert policy.allowed_unresolved == ["_ZN3c10*"] and policy.required_symbols_in == ["fbgemm_gpu/*.so"]
    assert policy.symbol_ceilings["GLIBCXX"] == "3.4.24"  # the lower of glibcxx_max and manylinux_2_28
    assert policy.symbol_ceilings["GLIBC"] == "2.28"


def test_policy_from_a_recipe_file_of_the_repo(builder):
    from rocstack.recipes.loader import load_component, recipe_audit_policy

    loadable = []
    for path in sorted((REPO / "recipes" / "components").glob("*.yaml")):
        try:
            recipe = load_component(path)
        except RocstackError:
            continue
        if recipe.validation.gpu_extensions or recipe.validation.preload:
            loadable.append((path, recipe))
    if not loadable:
        pytest.skip("no component recipe in recipes/components loads right now")
    path, recipe = loadable[0]
    with pytest.raises(RocstackError, match="is a recipe"):  # the audit layer reads no recipes by itself
        load_policy(str(path))
    policy = load_policy(str(path), read_recipe=recipe_audit_policy)
    assert policy.name == recipe.name
    assert policy.gpu_extensions == list(recipe.validation.gpu_extensions)
    lib = builder.lib("libplain.so", "int f(void){return 0;}\n", lang="c")
    report = run_audit([lib], policy=policy)
    if recipe.validation.gpu_extensions:
        assert any(f.check == "gpu-extension" for f in report.findings)


def test_table_groups_by_file_and_counts_quiet_files():
    from rocstack.audit.report import AuditReport, FileSummary
    from rocstack.audit.table import render

    report = AuditReport("/", "debian12", [])
    report.files = [FileSummary(f"/site/lib{i}.so", "shared-object") for i in range(12)]
    report.add("unresolved-symbols", "error", "/site/lib3.so", "1 undefined symbols", evidence="f(std::[abi:cxx11])",
               hint="link it")
    stream = io.StringIO()
    render(report, stream, width=200)
    text = stream.getvalue()
    assert "\x1b[" not in text  # no colour when not writing to a terminal
    assert "/site/lib3.so" in text and "f(std::[abi:cxx11])" in text  # C++ names are not rich markup
    assert "/site/lib4.so" not in text and "ok: 11 more files without findings" in text
    assert "FAIL: 12 files audited, 1 errors" in text


def test_table_summarizes_kernels_when_many_files_carry_code_objects():
    from rocstack.audit.codeobject import CodeObject, Kernel
    from rocstack.audit.report import AuditReport, FileSummary
    from rocstack.audit.table import render

    kernel = Kernel("k", 64, 0, 20, 0, 0, 0, 0, 64, 256, False, 4)
    report = AuditReport("/", "default", [])
    for count in (1, 7):
        report.files = [FileSummary(f"/k/{i}.co", "code-object",
                                    code_objects=[CodeObject("file", "gfx942", "gfx942", 0x4C, 5, 10, [kernel])])
                        for i in range(count)]
        stream = io.StringIO()
        render(report, stream, width=200)
        text = stream.getvalue()
        if count == 1:
            assert "waves/SIMD" in text and "kernels (1, lowest occupancy first)" in text
        else:
            assert "1 code objects (gfx942), 1 kernels, lowest occupancy 4 waves/SIMD" in text
            assert "lowest occupancy first" not in text


def test_a_pure_python_component_is_info_only_when_its_policy_says_so(tmp_path):
    """A wheel with no native code: "nothing auditable" is an error (0 files audited is no pass), unless the
    component's policy declares pure_python (flash-attention's Triton backend compiles its kernels at run time)."""
    import zipfile

    wheel = tmp_path / "purepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("purepkg/__init__.py", "")
        zf.writestr("purepkg-1.0.dist-info/METADATA", "Name: purepkg\nVersion: 1.0\n")
    plain = run_audit([str(wheel)])
    assert plain.exit_code == 1 and any("nothing auditable" in f.message for f in plain.findings)
    declared = run_audit([str(wheel)], policy=AuditPolicy(name="triton-jit", pure_python=True))
    assert declared.exit_code == 0
    assert [f.severity for f in declared.findings if "no native code" in f.message] == ["info"]
    assert AuditPolicy().merge(AuditPolicy(pure_python=True)).pure_python
