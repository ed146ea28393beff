"""The parsers under fuzzing, each through its public entry points, and what each may answer.

A target turns one input (bytes) into calls of the parser, in a scratch directory of its
worker process. It returns ``"parsed"`` when every call went through, or the name of the
first *accepted* error (the parser's documented error types, and ``RocstackError``). Any
other exception is a crash; so is a finding of the whole-file audit that says "the audit of
this file failed" (``run_audit`` turns a parser bug into that finding rather than stop).

Each call runs on its own (:func:`_steps`), so an error in the first does not keep the input
from reaching the others. To add a parser: write ``run(data, work) -> str``, list its
accepted errors, give it a corpus folder (``corpus/<name>/``, made by ``make_corpus.py``)
and add a ``Target`` to ``TARGETS``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import fuzz_layouts as layouts
from fuzz_mutate import Field, Region, Seed

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rocstack.arches import parse_arch_list, parse_target_id
from rocstack.audit import kpack, run_audit, segments, tensile
from rocstack.audit.codeobject import parse_code_object
from rocstack.audit.elf import ElfError, open_elf
from rocstack.audit.bundles import iter_bundles
from rocstack.audit.fatbin import BundleError
from rocstack.audit.kpack_archive import iter_code_objects, open_archive
from rocstack.audit.miopen import KdbError, audit_kdb
from rocstack.audit.report import AuditReport
from rocstack.audit.table import render
from rocstack.registry import attestation, dsse, legacy
from rocstack.registry.keys import key_id
from rocstack.registry.refusals import canonical_json
from rocstack.errors import RocstackError  # VerificationError (attestations) is one

# what each parser documents as its refusal of a bad input
ELF_ERRORS = (ElfError, RocstackError)
BUNDLE_ERRORS = (BundleError, ElfError, RocstackError)
KDB_ERRORS = (KdbError, RocstackError)
FINDINGS_ONLY = (RocstackError,)  # readers that turn every problem into findings

CORPUS = Path(__file__).resolve().parent / "corpus"
# the attestation seeds attest this image, signed by this key (a fixed test key: deterministic signatures)
DIGEST = "sha256:" + "a" * 64
STACK = "local"
AUDIT_CRASH = "the audit of this file failed"


class HarnessCrash(Exception):
    """A parser outcome that is a bug although nothing raised (the audit reported its own failure)."""


@dataclass(frozen=True)
class Target:
    name: str
    corpus: tuple[str, ...]  # folders under corpus/
    run: Callable[[bytes, Path, str], str]  # (input, scratch dir, seed name) -> outcome; raises only on a crash
    accepted: tuple[type[BaseException], ...]  # what run() lets count as a refusal (for the docs and the table)
    layout: Callable[[bytes], tuple[list[Field], list[Region]]] | None = None  # None: by content

    def seeds(self, root: Path = CORPUS) -> list[Seed]:
        out = []
        for folder in self.corpus:
            for path in sorted((root / folder).iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    data = path.read_bytes()
                    fields, regions = (self.layout or layout_by_content)(data)
                    out.append(Seed(f"{folder}/{path.name}", data, fields, regions))
        return out


def layout_by_content(data: bytes) -> tuple[list[Field], list[Region]]:
    if data.startswith(b"\x7fELF"):
        return layouts.elf_layout(data)
    if data.startswith((b"__CLANG_OFFLOAD_BUNDLE__", b"CCOB")):
        return layouts.bundle_layout(data)
    if data.startswith(b"KPAK"):
        return layouts.kpack_layout(data)
    if data.startswith(b"SQLite format 3\0"):
        return layouts.sqlite_layout(data)
    if data[:1] in (b"{", b"["):
        return layouts.json_layout(data)
    return layouts.msgpack_layout(data)


def _steps(*calls: Callable[[], object], accepted: tuple[type[BaseException], ...]) -> str:
    """Run every call; the first accepted error names the outcome, anything else propagates (a crash)."""
    outcome = "parsed"
    for call in calls:
        try:
            call()
        except accepted as exc:
            if outcome == "parsed":
                outcome = type(exc).__name__
    return outcome


def _seed_file(work: Path, seed: str, data: bytes) -> Path:
    path = work / seed.rsplit("/", 1)[-1]
    path.write_bytes(data)
    return path


# -- ELF, segments, kpack-split libraries -------------------------------------------------------------

def run_elf(data: bytes, work: Path, seed: str) -> str:
    try:
        mapped, elf = open_elf(_seed_file(work, seed, data))
    except ElfError as exc:
        return type(exc).__name__
    with mapped:
        return _steps(
            lambda: (elf.needed, elf.soname, elf.dyn_strings(15), elf.dyn_strings(29)),
            lambda: (elf.version_needs, elf.version_names, elf.version_definitions),
            lambda: elf.has_dynsym() and (elf.symbols(), elf.symbols(undefined=True), elf.export_table(),
                                          elf.dynstr_contains(b"GLIBC")),
            lambda: list(elf.notes()),
            lambda: list(segments.segment_notes(elf)),
            lambda: segments.dynamic_relocations(elf),
            lambda: [segments.vaddr_to_offset(segments.program_headers(elf), v) for v in (0, 0x1000, elf.length)],
            accepted=ELF_ERRORS)


def run_kpack_split(data: bytes, work: Path, seed: str) -> str:
    try:
        mapped, elf = open_elf(_seed_file(work, seed, data))
    except ElfError as exc:
        return type(exc).__name__
    with mapped:
        def split():
            lib = kpack.read_split_library(elf, seed)
            if lib is not None:
                lib.keys(), lib.co_indexes
        return _steps(split, lambda: kpack.check_integrity(elf, seed), accepted=ELF_ERRORS)


# -- bundles and code objects --------------------------------------------------------------------------

def run_bundle(data: bytes, work: Path, seed: str) -> str:
    verify = hashlib.sha256(data).digest()[0] & 1 == 1  # half the inputs also check the CCOB hash

    def walk():
        for bundle in iter_bundles(data, 0, len(data), 64 << 20, verify):
            bundle.summary()
            for entry, buf, start, available in bundle.code_objects():
                entry.target_id, entry.kind
                try:
                    parse_code_object(buf, start, available, "fuzz", "fuzz",
                                      full_size=entry.size if available < entry.size else None).to_dict()
                except ElfError:
                    pass  # a damaged entry: the audit reports it and goes on to the next one
    return _steps(walk, accepted=BUNDLE_ERRORS)


def run_code_object(data: bytes, work: Path, seed: str) -> str:
    def parse():
        obj = parse_code_object(data, 0, None, "file", "fuzz")
        obj.to_dict(), obj.target()
    return _steps(parse, accepted=ELF_ERRORS)


def code_object_around(metadata: bytes, flags: int = 0x54C) -> bytes:
    """A minimal AMDGPU code object (gfx942, v5) whose only content is ``metadata`` as its
    NT_AMDGPU_METADATA note, in a SHT_NOTE section and a PT_NOTE segment (System V gABI layout)."""
    name = b"AMDGPU\0\0"
    note = struct.pack("<III", 7, len(metadata), 32) + name + metadata + b"\0" * (-len(metadata) % 4)
    names = b"\0.note\0.shstrtab\0"
    note_at, names_at = 64 + 56, 64 + 56 + len(note)
    shoff = names_at + len(names) + (-(names_at + len(names)) % 8)
    ident = b"\x7fELF" + bytes((2, 1, 1, 64, 3)) + bytes(7)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 1, 224, 1, 0, 64, shoff, flags, 64, 56, 1, 64, 3, 2)
    phdr = struct.pack("<IIQQQQQQ", 4, 4, note_at, 0, 0, len(note), len(note), 4)
    sections = (bytes(64) + struct.pack("<IIQQQQIIQQ", 1, 7, 2, 0, note_at, len(note), 0, 0, 4, 0)
                + struct.pack("<IIQQQQIIQQ", 7, 3, 0, 0, names_at, len(names), 0, 0, 1, 0))
    body = header + phdr + note + names
    return body + b"\0" * (shoff - len(body)) + sections


def run_metadata(data: bytes, work: Path, seed: str) -> str:
    return run_code_object(code_object_around(data), work, seed)


# -- kpack archives, Tensile and MIOpen databases -----------------------------------------------------

def run_kpack_archive(data: bytes, work: Path, seed: str) -> str:
    def read():
        archive = open_archive(_seed_file(work, seed, data))
        for item in iter_code_objects(archive):
            if item.code_object is not None:
                item.code_object.to_dict()
        for arch in archive.gfx_arches:
            archive.keys(arch)
        archive.has("x#0", "gfx90a")
    return _steps(read, accepted=FINDINGS_ONLY)  # documented: a malformed archive is findings, never an error


def run_tensile(data: bytes, work: Path, seed: str) -> str:
    folder = work / "library"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for other in (CORPUS / "tensile").iterdir():  # the rest of the database, as shipped
        shutil.copyfile(other, folder / other.name)
    path = _seed_file(folder, seed, data)

    def audit():
        tensile.is_msgpack(str(path), len(data))
        directory = tensile.TensileDirectory(str(folder), "library", "fuzz", sorted(os.listdir(folder)))
        tensile.audit_directory(AuditReport("/", "default", ["gfx942"]), directory)
    return _steps(audit, accepted=FINDINGS_ONLY)  # documented: damage becomes findings and unit problems


def run_kdb(data: bytes, work: Path, seed: str) -> str:
    path = _seed_file(work, seed, data)
    return _steps(lambda: audit_kdb(str(path), path.name), accepted=KDB_ERRORS)


# -- the whole-file audit -------------------------------------------------------------------------------

class _Utf8Out(io.TextIOWrapper):
    """stdout as a UTF-8 terminal has it: strict encoding, so an undecodable name in the table is a crash."""

    def __init__(self):
        super().__init__(io.BytesIO(), encoding="utf-8", errors="strict")

    def isatty(self) -> bool:
        return False


def run_audit_file(data: bytes, work: Path, seed: str) -> str:
    folder = work / "root"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = _seed_file(folder, seed, data)
    named = hashlib.sha256(data).digest()[0] & 1 == 1  # the file named on the command line, or found in a walk
    report = run_audit([path if named else folder], targets=parse_arch_list("gfx942,gfx90a"))
    for finding in report.findings:
        if AUDIT_CRASH in finding.message:
            raise HarnessCrash(finding.message)
    report.to_json()
    render(report, stream=_Utf8Out(), width=100, color=False)
    return "parsed"


# -- attestations -------------------------------------------------------------------------------------------

def test_key():
    """The fixed ed25519 key the attestation seeds are signed with (ed25519 signatures are deterministic)."""
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"rocstack fuzz corpus").digest())
    return key, {key_id(key.public_key()): key.public_key()}


@dataclass
class _Found:
    content: bytes
    form: str


def _use(verified) -> None:
    """Everything pull and images read from a verified attestation."""
    verified.digest, verified.stack, verified.arches, verified.verdict, verified.level, verified.components
    verified.check_counts, verified.validated_at, verified.gpu_name
    claim = verified.claim
    claim.report, claim.checks, claim.validated


def _verify(raw: bytes, form: str) -> str:
    _key, trusted = test_key()
    gfx942 = parse_target_id("gfx942")
    return _steps(
        lambda: _use(attestation.open_attestation(raw, trusted, form)),
        lambda: attestation.verify(raw, trusted=trusted, digest=DIGEST, arch=gfx942, stack=STACK, allow_static=True,
                                   form=form),
        lambda: _use(attestation.newest_trusted([_Found(raw, form)], trusted, DIGEST)),
        accepted=FINDINGS_ONLY)  # VerificationError is a RocstackError


def run_statement(data: bytes, work: Path, seed: str) -> str:
    """The statement as a trusted key signed it: every check after the signature sees the mutation."""
    key, _trusted = test_key()
    return _verify(dsse.sign_bundle(data, key), attestation.BUNDLE)


def run_bundle_json(data: bytes, work: Path, seed: str) -> str:
    """The bundle as stored: its signature breaks with most mutations, so this fuzzes the envelope's parsing."""
    return _verify(data, attestation.BUNDLE)


def resign_legacy(raw: bytes) -> bytes:
    """The envelope with its first signature made again over its (mutated) payload, when that can be done."""
    try:
        envelope = json.loads(raw)
        signature = envelope["signatures"][0]
        message = legacy.DOMAIN + canonical_json(envelope["payload"])
    except Exception:  # noqa: BLE001 - not re-signable: the reader gets the bytes as they are
        return raw
    if not isinstance(signature, dict):
        return raw
    signature["sig"] = base64.b64encode(test_key()[0].sign(message)).decode()
    return json.dumps(envelope).encode()


def run_legacy(data: bytes, work: Path, seed: str) -> str:
    return _verify(resign_legacy(data), attestation.LEGACY)


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("elf", ("elf", "kpack-split"), run_elf, ELF_ERRORS),
    Target("kpack-split", ("kpack-split",), run_kpack_split, ELF_ERRORS),
    Target("bundle", ("bundle",), run_bundle, BUNDLE_ERRORS),
    Target("code-object", ("code-object",), run_code_object, ELF_ERRORS),
    Target("metadata", ("metadata",), run_metadata, ELF_ERRORS, layouts.msgpack_layout),
    Target("kpack-archive", ("kpack",), run_kpack_archive, FINDINGS_ONLY),
    Target("tensile", ("tensile",), run_tensile, FINDINGS_ONLY, layouts.msgpack_layout),
    Target("kdb", ("kdb",), run_kdb, KDB_ERRORS),
    Target("statement", ("statement",), run_statement, FINDINGS_ONLY, layouts.json_layout),
    Target("dsse-bundle", ("dsse-bundle",), run_bundle_json, FINDINGS_ONLY, layouts.json_layout),
    Target("legacy", ("legacy",), run_legacy, FINDINGS_ONLY, layouts.json_layout),
    Target("audit", ("elf", "kpack-split", "bundle", "code-object", "kpack", "tensile", "kdb"), run_audit_file,
           FINDINGS_ONLY),
)}
