"""Hostile inputs: zip bombs and lying wheels, symlink loops, unreadable files, directories."""

from __future__ import annotations

import os
import struct
import zipfile

import pytest

from rocstack.audit import AuditLimits, run_audit
from rocstack.errors import RocstackError


def _besides_nothing_auditable(report):
    """The findings other than the one saying an input held nothing to audit (which must be there)."""
    assert any("nothing auditable found" in f.message and f.severity == "error" for f in report.findings)
    return [f for f in report.findings if "nothing auditable found" not in f.message]


def _small_lib(builder):
    return builder.lib("libsmall.so", "int small(void){return 7;}\n", lang="c", subdir="src")


def test_wheel_members_are_audited_in_their_layout(builder, tmp_path):
    lib = _small_lib(builder)
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(lib, "pkg/libsmall.so")
        archive.writestr("pkg/__init__.py", "")
    report = run_audit([wheel])
    assert [f.path for f in report.files] == [f"{wheel}!pkg/libsmall.so"]
    assert report.exit_code == 0, report.findings


def test_zip_bomb_member_is_not_inflated(tmp_path):
    wheel = tmp_path / "bomb-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/libbomb.so", b"\0" * (64 << 20))
    assert wheel.stat().st_size < 1 << 20
    report = run_audit([wheel], limits=AuditLimits(max_member_bytes=8 << 20))
    [finding] = _besides_nothing_auditable(report)
    assert finding.check == "input" and "zip bomb" in finding.message and str(64 << 20) in finding.message
    assert report.files == [] and report.exit_code == 1


def test_member_lying_about_its_size_is_corrupt(builder, tmp_path):
    lib = _small_lib(builder)
    wheel = tmp_path / "liar-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(lib, "liar/libsmall.so")
    data = bytearray(wheel.read_bytes())
    true_size = lib.stat().st_size
    # rewrite the uncompressed size in the local header and the central directory to 100 bytes
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        assert struct.unpack_from("<I", data, at + offset)[0] == true_size
        struct.pack_into("<I", data, at + offset, 100)
    wheel.write_bytes(bytes(data))
    report = run_audit([wheel])
    [finding] = _besides_nothing_auditable(report)
    assert finding.check == "input" and "corrupt member" in finding.message


def test_unsafe_member_path_is_refused(tmp_path):
    wheel = tmp_path / "evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("../../escape.so", b"\x7fELF")
    report = run_audit([wheel])
    assert [f.message for f in _besides_nothing_auditable(report)] == ["unsafe member path (absolute or with '..')"]
    assert not (tmp_path.parent / "escape.so").exists()


def test_not_a_zip_wheel(tmp_path):
    wheel = tmp_path / "broken-1.0-py3-none-any.whl"
    wheel.write_bytes(b"this is not a zip file")
    report = run_audit([wheel])
    assert "not a readable wheel" in report.findings[0].message and report.exit_code == 1


def test_directory_with_symlink_loops_terminates(builder, tmp_path):
    lib = _small_lib(builder)
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    os.symlink(lib, root / "sub" / "libsmall.so")
    os.symlink(root / "sub" / "libsmall.so", root / "libalias.so")  # same file twice: audited once
    os.symlink("liba.so", root / "libb.so")
    os.symlink("libb.so", root / "liba.so")  # file symlink loop
    os.symlink("..", root / "sub" / "up")  # directory loop: not followed
    report = run_audit([root])
    assert len(report.files) == 1 and report.files[0].kind == "shared-object"
    loops = sorted(os.path.basename(f.file) for f in report.findings if "symlink loop" in f.message)
    assert loops == ["liba.so", "libb.so"]
    assert report.exit_code == 1


def test_unreadable_file_is_an_io_error(builder, monkeypatch):
    """EACCES cannot be provoked as root (CI runs as root): fake the open boundary instead."""
    lib = _small_lib(builder)

    def refuse(self, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("rocstack.audit.resolve.MappedFile.__init__", refuse)
    report = run_audit([lib])
    assert report.exit_code == 2 and report.findings[0].check == "io"
    assert "Permission denied" in report.findings[0].message


def test_fifo_is_never_opened(tmp_path):
    """Opening a FIFO blocks until a writer appears: the audit must report it instead of hanging."""
    folder = tmp_path / "dir"
    folder.mkdir()
    os.mkfifo(folder / "libpipe.so")
    report = run_audit([folder, folder / "libpipe.so"])
    assert [f.message for f in _besides_nothing_auditable(report)] == [
        "not a regular file (FIFO, device or socket): not opened"]


def test_missing_path_and_bad_sysroot_are_usage_errors(tmp_path):
    with pytest.raises(RocstackError, match="does not exist"):
        run_audit([tmp_path / "nope.so"])
    with pytest.raises(RocstackError, match="sysroot"):
        run_audit([tmp_path], sysroot=tmp_path / "no-root")


def test_empty_and_truncated_files(tmp_path):
    empty = tmp_path / "empty.so"
    empty.write_bytes(b"")
    header_only = tmp_path / "header.so"
    header_only.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 9)
    report = run_audit([empty, header_only])
    messages = {os.path.basename(f.file): f.message for f in report.findings}
    assert "past the end" in messages["empty.so"] and "past the end" in messages["header.so"]


def test_foreign_architecture_is_reported_not_resolved(builder, tmp_path):
    lib = _small_lib(builder)
    data = bytearray(lib.read_bytes())
    struct.pack_into("<H", data, 18, 183)  # e_machine = EM_AARCH64
    foreign = tmp_path / "libarm.so"
    foreign.write_bytes(bytes(data))
    report = run_audit([foreign])
    [finding] = report.findings
    assert finding.severity == "warning" and "e_machine 183" in finding.message and report.exit_code == 0


def test_broken_debian_packages_are_findings(tmp_path):
    not_ar = tmp_path / "garbage_1.0_amd64.deb"
    not_ar.write_bytes(b"this is not an ar archive")
    truncated = tmp_path / "short_1.0_amd64.deb"
    truncated.write_bytes(b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n"
                          b"control.tar.xz  0           0     0     100644  999999    `\n\xfd7zXZ")
    report = run_audit([not_ar, truncated])
    messages = {os.path.basename(f.file): f.message for f in _besides_nothing_auditable(report)}
    assert "not an ar archive" in messages[not_ar.name]
    assert "runs past the end" in messages[truncated.name] and report.exit_code == 1
