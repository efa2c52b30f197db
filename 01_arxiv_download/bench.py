"""Measure what stage 01's checks cost and catch, on real files.

    python 01_arxiv_download/bench.py                 # reads ../shared/realpdf and ../shared/realtex

PDFs: every real PDF in ``realpdf/`` (and its ``broken/`` ones), checked the old way (``%PDF-``
header and ``%%EOF`` trailer) and the stage's way (``check_pdf``: PDFium opens it), plus each
real PDF cut in half and with its body replaced by garbage. E-prints: each real LaTeX source in
``realtex/`` packed the way arXiv serves it (a gzipped tar), classified whole and truncated.
Prints counts and median milliseconds of 5 runs; nothing here touches the network.
"""
from __future__ import annotations

import io
import statistics
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import arxiv_download as stage  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def old_check(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-2048:]


def accepted(data: bytes, check) -> bool:
    try:
        check(data)
    except ValueError:
        return False
    return True


def median_ms(fn, data: bytes, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(data)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def pack(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(folder)))
    return buffer.getvalue()


def main() -> int:
    pdfs = sorted((SHARED / "realpdf").glob("*.pdf"))
    broken = sorted((SHARED / "realpdf" / "broken").glob("*.pdf"))
    if not pdfs:
        raise SystemExit(f"error: no PDFs under {SHARED / 'realpdf'}")
    cases = {"real": [p.read_bytes() for p in pdfs], "broken (shipped)": [p.read_bytes() for p in broken]}
    cases["cut in half"] = [d[: len(d) // 2] for d in cases["real"]]
    cases["garbage body"] = [d[:1024] + b"\x00garbage" * (len(d) // 16) + d[-1024:] for d in cases["real"]]
    print(f"{'PDFs':<18} {'n':>3} {'old check keeps':>16} {'check_pdf keeps':>16} {'median ms':>10}")
    for name, items in cases.items():
        old = sum(old_check(d) for d in items)
        new = sum(accepted(d, stage.check_pdf) for d in items)
        ms = statistics.median(median_ms(lambda d: accepted(d, stage.check_pdf), d) for d in items)
        print(f"{name:<18} {len(items):>3} {old:>16} {new:>16} {ms:>10.2f}")

    folders = [p for p in sorted((SHARED / "realtex").iterdir()) if p.is_dir() and p.name != "judge"]
    print(f"\n{'e-print':<22} {'MB':>6} {'members':>8} {'format':>7} {'median ms':>10} {'cut: refused':>13}")
    for folder in folders:
        data = pack(folder)
        fmt, _ = stage.classify_eprint(data)
        members = len(tarfile.open(fileobj=io.BytesIO(data)).getmembers())
        ms = median_ms(stage.classify_eprint, data)
        refused = not accepted(data[: len(data) * 9 // 10], stage.classify_eprint)
        print(f"{folder.name:<22} {len(data) / 1e6:>6.2f} {members:>8} {fmt:>7} {ms:>10.1f} {str(refused):>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
