"""Unpack an arXiv e-print safely: what it is (gzipped tar, single gzipped .tex, plain tar or .tex, PDF) and its
files in a folder of their own, or a reason why not.

arXiv serves ``https://arxiv.org/e-print/<id>`` in three shapes: a gzipped tar (multi-file source), a gzipped single
``.tex``, or the PDF when the authors submitted only that. The archive comes from the internet, so nothing in it is
trusted: every member name goes through ``pipeline_utils.safe_path_under``, links and device files are never created
(a link pointing out refuses the archive), and the unpacked size and member count are capped before a byte is
decompressed past the cap, so a tar bomb costs at most ``max_bytes`` of work.
"""
from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pipeline_utils as pu

# Only what a LaTeX source needs is written out; figures are skipped (their size still counts towards the cap).
TEXT_SUFFIXES = {".tex", ".ltx", ".latex", ".bbl", ".bib", ".sty", ".cls", ".def", ".cfg", ".clo", ".bst", ".txt",
                 ".inc", ".tikz", ".pgf", ""}
# arXiv's own instructions (which file is the top-level one, which to ignore), read by latex_backend.arxiv_readme
ARXIV_README = {"00readme.xxx", "00readme.json", "00readme.yaml", "00readme.yml", "00readme"}


class EprintError(Exception):
    """An e-print that cannot be used; the message says why (a person can act on it)."""


@dataclass
class Limits:
    """Caps on what one e-print may unpack to."""

    max_bytes: int = 256 * 1024 * 1024
    max_members: int = 10_000
    max_file_bytes: int = 64 * 1024 * 1024


@dataclass
class Eprint:
    """What an e-print held: its shape and, for LaTeX shapes, the folder its files were written to."""

    kind: str  # tar, tex, pdf-only
    folder: Path | None = None
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def sniff(data: bytes) -> str:
    """'gzip', 'pdf', 'tar' or 'text' from the first bytes (arXiv's file names do not say)."""
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:5] == b"%PDF-":
        return "pdf"
    if len(data) >= 262 and data[257:262] == b"ustar":
        return "tar"
    return "text"


def _gunzip(path: Path, limits: Limits) -> bytes:
    """The decompressed bytes, refusing more than ``max_bytes`` and a stream that ends early."""
    out = io.BytesIO()
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                out.write(chunk)
                if out.tell() > limits.max_bytes:
                    raise EprintError(f"refused: unpacks to more than {limits.max_bytes} bytes (a tar bomb or compression bomb?)")
    except EOFError as exc:
        raise EprintError("truncated gzip (the download ended early): fetch the e-print again") from exc
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise EprintError(f"corrupt gzip: {exc}") from exc
    return out.getvalue()


def _is_tar(data: bytes) -> bool:
    return len(data) >= 262 and data[257:262] == b"ustar" or _looks_like_v7_tar(data)


def _looks_like_v7_tar(data: bytes) -> bool:
    # pre-POSIX tars have no "ustar" magic; tarfile's header checksum test decides
    if len(data) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(data[:512], "utf-8", "surrogateescape")
        return True
    except tarfile.TarError:
        return False


def _untar(data: bytes, dest: Path, limits: Limits) -> Eprint:
    eprint = Eprint("tar", dest)
    total = members = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                members += 1
                if members > limits.max_members:
                    raise EprintError(f"refused: more than {limits.max_members} members (a tar bomb?)")
                total += max(0, member.size)
                if total > limits.max_bytes:
                    raise EprintError(f"refused: members add up to more than {limits.max_bytes} bytes (a tar bomb?)")
                try:
                    # the standard library's own policy first (absolute names, '..', links out, device files) ...
                    tarfile.data_filter(member, str(dest))
                    # ... then ours, which also resolves through anything already written
                    target = pu.safe_path_under(dest, member.name)
                except (tarfile.FilterError, ValueError) as exc:
                    raise EprintError(f"refused: unsafe member {member.name!r} ({exc.__class__.__name__}: {exc})") \
                        from None
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():  # links inside the folder, fifos: never created, never needed by LaTeX
                    eprint.skipped.append(member.name)
                    continue
                wanted = Path(member.name).suffix.lower() in TEXT_SUFFIXES or \
                    Path(member.name).name.lower() in ARXIV_README
                if not wanted or member.size > limits.max_file_bytes:
                    eprint.skipped.append(member.name)
                    continue
                fh = tar.extractfile(member)
                content = fh.read() if fh else b""
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                eprint.files.append(str(target.relative_to(dest)))
    except tarfile.ReadError as exc:
        raise EprintError(f"corrupt tar: {exc}") from exc
    except EOFError as exc:
        raise EprintError("truncated tar (the archive ends inside a member)") from exc
    return eprint


def unpack(path: Path, dest: Path, limits: Limits | None = None) -> Eprint:
    """Unpack the e-print at ``path`` into the empty folder ``dest``; raises EprintError with the reason."""
    limits = limits or Limits()
    path, dest = Path(path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise EprintError(f"cannot read {path.name}: {exc.strerror}") from exc
    if not head:
        raise EprintError("empty e-print file")
    kind = sniff(head)
    if kind == "pdf":
        return Eprint("pdf-only")
    if kind == "gzip":
        data = _gunzip(path, limits)
        kind = "tar" if _is_tar(data) else ("pdf" if data[:5] == b"%PDF-" else "text")
        if kind == "pdf":
            return Eprint("pdf-only")
    else:
        if path.stat().st_size > limits.max_bytes:
            raise EprintError(f"refused: larger than {limits.max_bytes} bytes")
        data = path.read_bytes()
        if kind == "text" and _looks_like_v7_tar(data):
            kind = "tar"
    if kind == "tar":
        return _untar(data, dest, limits)
    if b"\x00" in data[:4096]:
        raise EprintError("not a LaTeX source, a tar or a PDF (binary content)")
    if len(data) > limits.max_file_bytes:
        raise EprintError(f"refused: a single source file larger than {limits.max_file_bytes} bytes")
    # a single .tex: arXiv names it after the paper; the main-file search reads any name
    (dest / "main.tex").write_bytes(data)
    return Eprint("tex", dest, ["main.tex"])
