"""What the fuzz run found, each reduced to the smallest input that showed it, kept as regression tests.

Every one of these used to escape its parser as an exception other than the parser's own
error type: a traceback for ``rocstack audit`` / ``pull`` / ``images`` users.
"""

from __future__ import annotations

import bz2
import io
import json
import sqlite3

import msgpack
import pytest

from fuzz_targets import CORPUS, code_object_around

from rocstack.audit import run_audit
from rocstack.audit.codeobject import parse_code_object
from rocstack.audit.miopen import KdbError, audit_kdb
from rocstack.audit.report import AuditReport
from rocstack.audit.table import render
from rocstack.audit.tensile import TensileDirectory, audit_directory
from rocstack.registry import dsse, legacy, statement
from rocstack.registry.refusals import VerificationError


@pytest.mark.parametrize("kernels", [5, 2.5, True])
def test_metadata_whose_kernel_list_is_not_a_list(kernels):
    """{"amdhsa.kernels": 5} in a code object's metadata note: TypeError ('int' is not iterable)."""
    obj = parse_code_object(code_object_around(msgpack.packb({"amdhsa.kernels": kernels})))
    assert obj.kernels == []
    assert any("amdhsa.kernels" in p for p in obj.problems), obj.problems


@pytest.mark.parametrize("key", [(1, 2), (("a", 1),)])
def test_tensile_index_with_a_map_key_python_cannot_hash(tmp_path, key):
    """A msgpack map whose key is an array or a map: msgpack raises TypeError (unhashable), which the index
    reader let through, so ``rocstack audit`` on the library directory ended in a traceback."""
    index = tmp_path / "TensileLibrary_lazy_gfx942.dat"
    index.write_bytes(msgpack.packb({"library": {key: 1}}))
    row, _claimed = audit_directory(AuditReport("/", "default", []),
                                    TensileDirectory(str(tmp_path), "library", "c", [index.name]))
    assert "index unreadable" in row.units[0].problems[0]
    report = run_audit([tmp_path])
    assert not [f for f in report.findings if "audit of this file failed" in f.message]


def test_kernel_database_with_text_that_is_not_utf8(tmp_path):
    """A kdb whose TEXT column holds invalid UTF-8: sqlite3 raises UnicodeDecodeError, not a DatabaseError."""
    path = tmp_path / "gfx942130.kdb"
    code = (CORPUS / "code-object" / "gfx942_srameccp_xnackm.co").read_bytes()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kern_db (id INTEGER PRIMARY KEY, kernel_name TEXT, kernel_args TEXT, kernel_blob BLOB, "
               "kernel_hash TEXT, uncompressed_size INT)")
    db.execute("INSERT INTO kern_db (kernel_name, kernel_args, kernel_blob, kernel_hash, uncompressed_size) "
               "VALUES (CAST(X'ff6b' AS TEXT), '', ?, '', 0)", (code,))
    db.commit()
    db.close()
    objects, unit = audit_kdb(str(path), path.name)
    assert [o.target_id for o in objects] == ["gfx942:sramecc+:xnack-"] and unit.targets == ["gfx942:sramecc+:xnack-"]


def _kdb(path, rows):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kern_db (id INTEGER PRIMARY KEY, kernel_name TEXT, kernel_args TEXT, kernel_blob BLOB, "
               "kernel_hash TEXT, uncompressed_size INT)")
    for blob, size in rows:
        db.execute("INSERT INTO kern_db (kernel_name, kernel_args, kernel_blob, kernel_hash, uncompressed_size) "
                   "VALUES ('k', '', ?, '', ?)", (blob, size))
    db.commit()
    db.close()


def test_kernel_database_whose_schema_is_not_utf8(tmp_path):
    """sqlite3 quotes the damaged schema in its error message and decodes that as UTF-8: UnicodeDecodeError."""
    path = tmp_path / "gfx942130.kdb"
    _kdb(path, [])
    path.write_bytes(path.read_bytes().replace(b"PRIMARY KEY", b"PRIMARY \xff\xfe\xfd"))  # a syntax error there
    with pytest.raises(KdbError, match="corrupt SQLite database"):
        audit_kdb(str(path), path.name)


@pytest.mark.parametrize("blob, size, problem", [
    ("text, not a blob", 0, "kernel_blob is str, not a BLOB"),
    (7, 0, "kernel_blob is int, not a BLOB"),
    (bz2.compress(b"\0" * 4096), -2, "claims -2 uncompressed bytes"),  # size + 1 = -1: bz2's "no limit"
    (bz2.compress(b"x"), "many", "uncompressed_size 'many' is not a number"),
    (bz2.compress(b"x"), float("inf"), "uncompressed_size inf is not a number"),
])
def test_kernel_database_rows_with_the_wrong_types(tmp_path, blob, size, problem):
    """TEXT or INTEGER in kernel_blob (bytes(str): TypeError), a negative size (an unbounded bzip2
    decompression), text or infinity in uncompressed_size (int(): ValueError, OverflowError)."""
    path = tmp_path / "gfx942130.kdb"
    _kdb(path, [(blob, size)])
    objects, unit = audit_kdb(str(path), path.name)
    assert objects == [] and problem in unit.problems[0], unit.problems


NOT_JSON = [b"\xff", b'{"a": "\xff"}', b"[" * 100_000, b'{"a":' * 50_000, b'{"a": NaN}', b'{"a": -Infinity}',
            b'{"a": 1e999}', b'{"a": "\\udcff"}']


@pytest.mark.parametrize("raw", NOT_JSON, ids=["not-utf8", "utf8-inside", "deep-array", "deep-map", "nan", "infinity",
                                               "overflow", "lone-surrogate"])
def test_attestation_json_the_readers_cannot_canonicalize(raw):
    """Not UTF-8: ``exc.msg`` on a UnicodeDecodeError (AttributeError); nested 100k deep: RecursionError;
    NaN, Infinity, 1e999 and lone surrogates load, but canonical_json (what a signature and a report digest
    cover) cannot write them: ValueError / UnicodeEncodeError, in the legacy reader before any signature
    check. Each of the three readers must refuse them as corrupt."""
    for read in (dsse.parse_bundle, statement.parse_statement, legacy.parse_envelope):
        with pytest.raises(VerificationError) as refused:
            read(raw)
        assert refused.value.reason == "corrupt" and "JSON" in refused.value.message, read


def test_audit_table_shows_undecodable_names():
    """A name read from a corrupt .dynstr keeps its undecodable bytes as surrogates; the table wrote them to a
    UTF-8 stdout and died with UnicodeEncodeError."""
    report = AuditReport("/", "default", [])
    report.add("missing-needed", "error", "lib\udcb5.so", "needs libc\udcff.so.6, which is not found")
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    render(report, stream=out, width=100, color=False)
    out.flush()
    text = out.buffer.getvalue().decode()
    assert "libc\\xff.so.6" in text and "lib\\xb5.so" in text
    assert json.loads(report.to_json())["findings"][0]["file"] == "lib\udcb5.so"  # JSON keeps them (escaped)


STATEMENT_SEED = json.loads((CORPUS / "statement" / "statement.json").read_bytes())
LEGACY_SEED = json.loads((CORPUS / "legacy" / "envelope.json").read_bytes())


@pytest.mark.parametrize("key, value", [("checks", {"pass": "gfx90a"}), ("checks", {"fail": {"n": 1}}), ("gpu", 1.5),
                                        ("gpu", {"device": "x"}), ("components", 3), ("components", [1]),
                                        ("verdict", ["pass"])])
def test_signed_statement_whose_summaries_have_the_wrong_types(key, value):
    """A validly signed statement whose check counts, GPU evidence or components are JSON of the wrong type:
    ``int('gfx90a')`` (ValueError), ``1.5.get`` (AttributeError) in pull and images. Refused as corrupt."""
    predicate = dict(STATEMENT_SEED["predicate"], **{key: value})
    with pytest.raises(VerificationError) as refused:
        statement.parse_statement(json.dumps(dict(STATEMENT_SEED, predicate=predicate)).encode())
    assert refused.value.reason == "corrupt", refused.value.message


@pytest.mark.parametrize("path, value", [(("validation", "checks"), 2.0), (("validation", "checks"), [3]),
                                         (("validation", "environment"), "x"), (("validation", "level_reason"), []),
                                         (("validation", "gpu_access"), 1), (("components",), 7)])
def test_legacy_payload_whose_report_has_the_wrong_types(path, value):
    """An old-format payload (its signature checks out) whose embedded report is the wrong shape: the level and
    check summary derived from it raised TypeError/AttributeError. Refused as corrupt, naming the field."""
    payload = json.loads(json.dumps(LEGACY_SEED["payload"]))
    if payload.get("validation") is None:
        payload["validation"] = {"verdict": "pass", "checks": []}
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(VerificationError) as refused:
        legacy.to_claim(payload)
    assert refused.value.reason == "corrupt" and path[-1] in refused.value.message, refused.value.message
