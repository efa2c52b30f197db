"""Benchmark of stage 04: papers and sentences per second on a generated corpus.

    .venv/bin/python 04_xml_to_csv/bench.py [--papers 500]

Generates ``--papers`` JATS files in CERMINE's shape (pretty-printed, hard line
breaks, hyphenated line ends, markers as xref with loose brackets, numeric and
author-year styles, 40 references each, ~150 sentences of which ~60% cite),
runs the real stage on them in one process, and reports the throughput.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from helpers import load_stage  # noqa: E402

WORDS = ("maritime digitalisation port vessel sensor data platform emission navigation autonomous shore "
         "monitoring fuel logistics container cyber risk safety operator crew model network analysis "
         "optimisation arrival berth terminal traffic satellite engine hull performance").split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(12, 28))]
    words[0] = words[0].capitalize()
    if rng.random() < 0.2:
        words.insert(rng.randint(2, 8), "e.g.")
    if rng.random() < 0.15:
        words.insert(rng.randint(2, 8), f"{rng.randint(1, 9)}.{rng.randint(0, 9)} per cent")
    return " ".join(words)


def wrap(text: str, rng: random.Random) -> str:
    """Hard line breaks every ~60 characters, some at a hyphenated word, as CERMINE keeps them."""
    out, line = [], 0
    for word in text.split(" "):
        line += len(word) + 1
        if line > 60 and len(word) > 6 and word.isalpha() and rng.random() < 0.3:
            cut = len(word) // 2
            out.append(f"{word[:cut]}-\n{word[cut:]}")
            line = len(word) - cut
        elif line > 60:
            out.append("\n" + word)
            line = len(word)
        else:
            out.append(word)
    return " ".join(out)


def paper(rng: random.Random, n_refs: int = 40, n_paragraphs: int = 30) -> str:
    author_year = rng.random() < 0.4
    paras = []
    for _ in range(n_paragraphs):
        parts = []
        for _ in range(rng.randint(3, 7)):
            text = wrap(sentence(rng), rng)
            if rng.random() < 0.6:
                ids = sorted(rng.sample(range(1, n_refs + 1), rng.randint(1, 3)))
                rid = " ".join(f"ref{i}" for i in ids)
                if author_year:
                    label = "; ".join(f"Author{i} et al., {2000 + i % 24}" for i in ids)
                    parts.append(f'{text}\n(\n        <xref ref-type="bibr" rid="{rid}">{label}</xref>\n        ).')
                else:
                    label = ",".join(str(i) for i in ids)
                    parts.append(f'{text}\n[\n        <xref ref-type="bibr" rid="{rid}">{label}</xref>\n        ].')
            else:
                parts.append(text + ".")
        paras.append("      <p>\n        " + " ".join(parts) + "\n      </p>")
    refs = []
    for i in range(1, n_refs + 1):
        refs.append(
            f'      <ref id="ref{i}">\n        <mixed-citation>\n          {i}.\n          <string-name>\n'
            f"            <surname>Author{i}</surname>\n            <given-names>A</given-names>\n"
            f"          </string-name>\n          :\n          <article-title>{sentence(rng)}</article-title>\n"
            f"          .\n          <source>Journal of {rng.choice(WORDS).title()}</source>\n"
            f"          <year>{2000 + i % 24}</year>\n          .\n        </mixed-citation>\n      </ref>")
    return ("<article>\n  <body>\n    <sec id=\"sec-1\">\n      <title>Results</title>\n" + "\n".join(paras)
            + "\n    </sec>\n  </body>\n  <back>\n    <ref-list>\n" + "\n".join(refs)
            + "\n    </ref-list>\n  </back>\n</article>\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=500)
    args = parser.parse_args()
    stage = load_stage("04")
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "xml"
        src.mkdir()
        for n in range(args.papers):
            (src / f"2501.{n:05d}v1.cermxml").write_text(paper(rng))
        cfg = stage.Config(input_dir=src, output_dir=Path(tmp) / "out")
        began = time.perf_counter()
        summary = stage.main(cfg)
        elapsed = time.perf_counter() - began
        cached = time.perf_counter()
        stage.main(cfg)
        cached = time.perf_counter() - cached
    print(f"\n{args.papers} papers, {summary['sentences']} citing sentences, {summary['references']} references "
          f"in {elapsed:.1f} s: {args.papers / elapsed:.1f} papers/s, {summary['sentences'] / elapsed:.0f} "
          f"citing sentences/s, {1000 * elapsed / args.papers:.1f} ms per paper (1 core); cached rerun {cached:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
