"""Benchmark of stage 04: throughput, time against file size, and quality on real papers.

    .venv/bin/python 04_xml_to_csv/bench.py [--papers 500] [--runs 3] [--sizes-only]
    .venv/bin/python 04_xml_to_csv/bench.py --real ../shared/realtext [--show 5]
    .venv/bin/python 04_xml_to_csv/bench.py --real-sizes [--pdf PDF] [--tex SOURCE_DIR]
    .venv/bin/python 04_xml_to_csv/bench.py --whole-sentences [--show 5] [--stage04 OTHER/xml_to_csv.py]

Without ``--real`` (generated data): ``--papers`` JATS files in CERMINE's shape
(pretty-printed, hard line breaks, hyphenated line ends, markers as xref with
loose brackets, numeric and author-year styles, 40 references each, ~150
sentences of which ~60% cite) are converted by the real stage (throughput), then
one 1 MB and one 4 MB paper of the same shape, each as many paragraphs and as
one single paragraph (the time must grow linearly with the size). Medians of
``--runs`` runs.

With ``--real-sizes``: the same 1 MB against 4 MB timing on real papers' XML. Stage 03 converts one real
PDF (``--pdf``, builtin backend: JATS) and one real LaTeX source (``--tex``, a folder packed as arXiv serves it:
the LaTeX route's JATS); the PDF's JATS is also rewritten in GROBID's TEI shape (``div``/``head``/``p``,
``ref type="bibr" target="#…"``, ``biblStruct`` with its ``raw_reference``: real text, generated shape, as no
real GROBID output is at hand). Each is grown to about 1 MB and 4 MB by repeating its body (its reference list
once), as its sections one after another and as all its paragraphs in one section.

With ``--whole-sentences``: stage 03 converts ``../shared/realtex`` and ``devsets/latex`` (LaTeX route, each source
packed as arXiv serves it) and ``../shared/realpdf`` and ``devsets/pdf`` (builtin backend); stage 04 writes every
sentence (``--all-sentences``), and each citing row is judged a whole sentence or not by rules of this bench (in
the README): it starts with punctuation, in lower case after a sentence of its paragraph or after a paragraph that
ended without . ! ?; it ends at an abbreviation, an initial or a number's period with the next sentence starting in
lower case or a digit; it ends without . ! ? : (a citation after the stop allowed) where its paragraph goes on (the
next piece starts with punctuation, in lower case, with a bracket, or otherwise), or where the next paragraph of its
section starts in lower case; it holds no word. ``--stage04`` judges another copy of the stage on the same XML.

With ``--real DIR``: every ``*.jsonl`` there (unarXive records, real arXiv
papers) goes through ``--input-format unarxive``, and the output is judged by
rules that do not use the stage's code (stated in the README): how many cite
spans reach a sentence holding the right reference, how many citing rows hold
two sentences, how many ``sentence_clean`` cells have a hole.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import statistics
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


def timed_run(stage, src: Path, out: Path, cpu: bool = False, **kw) -> tuple[float, dict]:
    """Seconds of one run of the stage (wall, or this process's CPU time with ``cpu``) and its summary."""
    clock = time.process_time if cpu else time.perf_counter
    cfg = stage.Config(input_dir=src, output_dir=out, force=True, **kw)
    began = clock()
    summary = stage.main(cfg)
    return clock() - began, summary


def sized_paper(rng: random.Random, megabytes: float, one_paragraph: bool) -> str:
    """A paper of about ``megabytes`` in CERMINE's shape; optionally all body text in one <p>."""
    state = rng.getstate()
    n_paragraphs = max(1, int(megabytes * 1e6 / 1714))  # a generated paragraph is ~1.7 kB of XML
    probe = len(paper(rng, n_refs=200, n_paragraphs=n_paragraphs).encode())
    rng.setstate(state)  # then the count that hits the size, with the same text
    xml = paper(rng, n_refs=200, n_paragraphs=max(1, round(n_paragraphs * megabytes * 1e6 / probe)))
    if one_paragraph:
        head, _, rest = xml.partition("      <p>")
        bodies = re.findall(r"<p>(.*?)</p>", xml, re.S)
        tail = rest.rpartition("</p>")[2]
        xml = head + "      <p>" + "\n".join(bodies) + "</p>" + tail
    return xml


def size_scaling(stage, runs: int) -> None:
    """CPU seconds for a 1 MB and a 4 MB paper, side by side (generated)."""
    rng = random.Random(1)
    print("\nCPU time against the size of one XML file (generated, CERMINE's shape; median of", runs, "runs; "
          f"load average {open('/proc/loadavg').read().split()[0]}):")
    print(f"  {'layout':<22}{'1 MB':>10}{'4 MB':>10}{'ratio':>8}")
    for one in (False, True):
        seconds = {}
        for mb in (1, 4):
            with tempfile.TemporaryDirectory() as tmp:
                src = Path(tmp) / "xml"
                src.mkdir()
                xml = sized_paper(rng, mb, one)
                (src / "big.cermxml").write_text(xml)
                # no wall-clock limit: on a loaded machine a 4 MB file may pass --max-seconds-per-paper's 120 s
                times = [timed_run(stage, src, Path(tmp) / "out", cpu=True, max_seconds_per_paper=1e9)[0]
                         for _ in range(runs)]
                seconds[mb] = (statistics.median(times), len(xml.encode()) / 1e6)
        label = "one paragraph" if one else "many paragraphs"
        print(f"  {label:<22}{seconds[1][0]:>9.2f}s{seconds[4][0]:>9.2f}s{seconds[4][0] / seconds[1][0]:>7.1f}x"
              f"   (files of {seconds[1][1]:.2f} and {seconds[4][1]:.2f} MB)")


def _real_xml(pdf: Path, tex: Path, tmp: Path) -> dict[str, bytes]:
    """Stage 03's XML of one real PDF (builtin) and one real LaTeX source (the LaTeX route), and the PDF's
    JATS in GROBID's TEI shape."""
    import contextlib
    import io
    import tarfile

    stage03 = load_stage("03")
    (tmp / "pdf").mkdir()
    (tmp / "pdf" / pdf.name).write_bytes(pdf.read_bytes())
    (tmp / "tex" / "sources").mkdir(parents=True)
    with tarfile.open(tmp / "tex" / "sources" / f"{tex.name}.tar.gz", "w:gz") as tar:
        for path in sorted(tex.rglob("*")):
            if path.is_file() and path.suffix.lower() != ".pdf":
                tar.add(path, arcname=str(path.relative_to(tex)))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        stage03.main(stage03.Config(input_dir=tmp / "pdf", output_dir=tmp / "03pdf", backend="builtin", workers=1))
        stage03.main(stage03.Config(input_dir=tmp / "tex", output_dir=tmp / "03tex", backend="latex", workers=1))
    jats_pdf = (tmp / "03pdf" / f"{pdf.stem}.cermxml").read_bytes()
    return {f"JATS, builtin backend ({pdf.name})": jats_pdf,
            f"TEI shape, from that JATS ({pdf.name})": jats_to_tei(jats_pdf),
            f"JATS, LaTeX route ({tex.name})": (tmp / "03tex" / f"{tex.name}.cermxml").read_bytes()}


def jats_to_tei(jats: bytes) -> bytes:
    """The JATS of stage 03 rewritten as GROBID writes TEI: ``div``/``head``/``p``, a ``ref type="bibr"``
    with ``target="#id"`` per citation, ``biblStruct`` with titles, date and ``note type="raw_reference"``."""
    from lxml import etree

    tei = "http://www.tei-c.org/ns/1.0"
    root = etree.fromstring(jats)
    out = etree.Element(f"{{{tei}}}TEI", nsmap={None: tei})
    body = etree.SubElement(etree.SubElement(out, f"{{{tei}}}text"), f"{{{tei}}}body")

    def copy_p(p, parent):
        new = etree.SubElement(parent, f"{{{tei}}}p")
        new.text = p.text
        last = None
        for child in p:
            if child.tag == "xref" and child.get("ref-type") == "bibr":
                last = etree.SubElement(new, f"{{{tei}}}ref", type="bibr",
                                        target=" ".join("#" + k for k in (child.get("rid") or "").split()))
                last.text = "".join(child.itertext())
            else:
                text = "".join(child.itertext())
                if last is None:
                    new.text = (new.text or "") + text
                else:
                    last.tail = (last.tail or "") + text
            if child.tail:
                if last is None:
                    new.text = (new.text or "") + child.tail
                else:
                    last.tail = (last.tail or "") + child.tail

    for sec in root.iterfind("body/sec"):
        div = etree.SubElement(body, f"{{{tei}}}div")
        etree.SubElement(div, f"{{{tei}}}head").text = sec.findtext("title") or ""
        for p in sec.iterfind(".//p"):
            copy_p(p, div)
    bibl = etree.SubElement(etree.SubElement(etree.SubElement(out[0], f"{{{tei}}}back"), f"{{{tei}}}div",
                                             type="references"), f"{{{tei}}}listBibl")
    for ref in root.iterfind("back/ref-list/ref"):
        struct = etree.SubElement(bibl, f"{{{tei}}}biblStruct")
        struct.set("{http://www.w3.org/XML/1998/namespace}id", ref.get("id") or "")
        cit = ref.find("mixed-citation")
        analytic = etree.SubElement(struct, f"{{{tei}}}analytic")
        etree.SubElement(analytic, f"{{{tei}}}title", level="a").text = cit.findtext(".//article-title") or ""
        for name in cit.iterfind(".//string-name"):
            pers = etree.SubElement(etree.SubElement(analytic, f"{{{tei}}}author"), f"{{{tei}}}persName")
            etree.SubElement(pers, f"{{{tei}}}forename").text = name.findtext("given-names") or ""
            etree.SubElement(pers, f"{{{tei}}}surname").text = name.findtext("surname") or ""
        monogr = etree.SubElement(struct, f"{{{tei}}}monogr")
        etree.SubElement(monogr, f"{{{tei}}}title", level="j").text = cit.findtext(".//source") or ""
        etree.SubElement(etree.SubElement(monogr, f"{{{tei}}}imprint"), f"{{{tei}}}date",
                         when=cit.findtext(".//year") or "")
        etree.SubElement(struct, f"{{{tei}}}note", type="raw_reference").text = " ".join("".join(cit.itertext()).split())
    return etree.tostring(out, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def grown(xml: bytes, megabytes: float, one_section: bool) -> bytes:
    """A real paper's XML grown to about ``megabytes`` by repeating its body (the reference list once): its
    sections one after another, or all its paragraphs in one section."""
    from lxml import etree

    root = etree.fromstring(xml)
    tei = root.tag.startswith("{http://www.tei-c.org/ns/1.0}")
    ns = "{http://www.tei-c.org/ns/1.0}" if tei else ""
    body = root.find(f"{ns}text/{ns}body") if tei else root.find("body")
    sections = [el for el in body if isinstance(el.tag, str)]
    if one_section:
        single = etree.Element(f"{ns}div" if tei else "sec")
        etree.SubElement(single, f"{ns}head" if tei else "title").text = "Body"
        for sec in sections:
            for p in list(sec.iterfind(f"{ns}p")):
                single.append(p)
        sections = [single]
    for sec in list(body):
        body.remove(sec)
    size = len(etree.tostring(root))
    one = sum(len(etree.tostring(sec)) for sec in sections)
    copies = max(1, round((megabytes * 1e6 - size) / one))
    import copy as _copy

    for _ in range(copies):
        for sec in sections:
            body.append(_copy.deepcopy(sec))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def real_size_scaling(stage, runs: int, pdf: Path, tex: Path) -> None:
    """CPU seconds for 1 MB and 4 MB versions of real papers' XML (JATS from a PDF, its TEI shape, the LaTeX
    route's JATS), side by side."""
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as tmp:
        papers = _real_xml(pdf, tex, Path(tmp))
    print("\nCPU time against the size of one XML file (real papers' XML, body repeated; median of", runs,
          f"runs; load average {open('/proc/loadavg').read().split()[0]}):")
    print(f"  {'producer, layout':<64}{'1 MB':>9}{'4 MB':>9}{'ratio':>8}  sentences, files")
    for label, xml in papers.items():
        for one in (False, True):
            seconds = {}
            for mb in (1, 4):
                with tempfile.TemporaryDirectory() as tmp:
                    src = Path(tmp) / "xml"
                    src.mkdir()
                    data = grown(xml, mb, one)
                    name = "big.tei.xml" if b"tei-c.org" in data[:400] else "big.cermxml"
                    (src / name).write_bytes(data)
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                        results = [timed_run(stage, src, Path(tmp) / "out", cpu=True, max_seconds_per_paper=1e9)
                                   for _ in range(runs)]
                    seconds[mb] = (statistics.median(t for t, _ in results), len(data) / 1e6,
                                   results[0][1]["sentences"])
            layout = "one section" if one else "sections"
            print(f"  {label + ', ' + layout:<64}{seconds[1][0]:>8.2f}s{seconds[4][0]:>8.2f}s"
                  f"{seconds[4][0] / seconds[1][0]:>7.1f}x  {seconds[1][2]} and {seconds[4][2]} citing sentences, "
                  f"{seconds[1][1]:.2f} and {seconds[4][1]:.2f} MB")


# --- whole sentences on stage 03's output of real papers ---------------------------------------------------------

CUT_ABBREVIATION = re.compile(
    r"(?:\b(?:et al|[Ff]igs?|[Ee]qs?|[Ee]qns?|e\.g|i\.e|cf|[Rr]esp|[Ss]ecs?|[Ss]ect|[Rr]efs?|[Tt]ab|[Nn]o|vs|[Vv]ol|"
    r"pp|[Cc]h|[Dd]r|[Pp]rof|approx|[Tt]hm|[Ll]em|[Aa]pp|[Aa]ppx|[Ss]uppl|ca|viz|[Ee]ds?)|\b[A-Z]|\b\d+)\.$")
# . ! ? or a colon at the end, before closing quotes/brackets, or followed by a citation ("activities.5,6", ".[3]")
WHOLE_END = re.compile(r"[.!?:]['\")\]’”]*$|[.!?]['\")\]’”]*\s*(?:\[[^\]]*\]|\([^)]*\)|[\d,–\-e ]{1,20})$")
# lower-case starts that are a sentence's own: "e.g.", a name particle, a variable, a label "(b)", "[formula]"
OWN_LOWER_START = re.compile(r"(?:e\.g|i\.e|et al|cf\.|vs\.|arXiv|iPhone|van |von |de |der |den |du |[pntkxy]-|[a-z]\b|"
                             r"\(\w{1,5}\)|\[formula\]|\(for |\(see )")


def _starts_lower(text: str | None) -> bool:
    return bool(text) and bool(re.match(r"[\"“‘'(\[]?[a-z]", text)) and not OWN_LOWER_START.match(text)


def cut_kinds(sentence: str, nxt: str | None, prev: str | None, next_paragraph: str | None,
              prev_paragraph: str | None) -> list[str]:
    """Why a citing row is not a whole sentence (empty: it is). ``prev``/``nxt``: the sentences beside it in its
    paragraph (None at the paragraph's start / end); ``prev_paragraph``/``next_paragraph``: the last sentence of
    the paragraph before and the first of the one after, in the same section (None otherwise)."""
    kinds = []
    s = sentence.strip()
    if re.match(r"[.,;:!?]", s):
        kinds.append("starts with punctuation")
    elif prev is not None and _starts_lower(s):
        kinds.append("starts in lower case inside its paragraph")
    elif prev is None and _starts_lower(s) and prev_paragraph is not None and not WHOLE_END.search(prev_paragraph.strip()):
        kinds.append("starts in lower case after a paragraph cut mid-sentence")
    if re.fullmatch(r"[\W\d]*", s):
        kinds.append("holds no word")
    if nxt is not None:
        if CUT_ABBREVIATION.search(s) and re.match(r"\s*[\"“‘'(\[]?[a-z0-9]", nxt):
            kinds.append("ends at an abbreviation, initial or number, the next piece in lower case or a digit")
        elif not WHOLE_END.search(s):
            if re.match(r"\s*[.,;:!?]", nxt):
                kinds.append("ends before its own punctuation (split off)")
            elif _starts_lower(nxt):
                kinds.append("ends without . ! ?, the next piece in lower case")
            elif re.match(r"\s*[(\[]", nxt):
                kinds.append("ends without . ! ?, the next piece opens a bracket")
            else:
                kinds.append("ends without . ! ? (a display formula's stop, a table row, a heading)")
    elif not WHOLE_END.search(s) and _starts_lower(next_paragraph):
        kinds.append("ends its paragraph without . ! ?, the next paragraph in lower case")
    return kinds


def whole_sentences(stage, show: int) -> None:
    """Citing rows that are not whole sentences, per set and kind, on stage 03's output of real papers."""
    import collections
    import contextlib
    import io
    import tarfile

    import pipeline_utils as pu

    stage03 = load_stage("03")
    repo, shared = HERE.parent, HERE.parents[1] / "shared"
    sets = [("../shared/realtex", shared / "realtex", "latex"), ("devsets/latex", repo / "devsets" / "latex", "latex"),
            ("../shared/realpdf", shared / "realpdf", "builtin"), ("devsets/pdf", repo / "devsets" / "pdf", "builtin")]
    print("\nCiting rows that are not whole sentences (stage 03 on real papers, stage 04 --all-sentences):")
    for label, data, backend in sets:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            src = data
            if backend == "latex":
                src = tmp / "in"
                (src / "sources").mkdir(parents=True)
                for row in pu.read_csv_rows(data / "MANIFEST.csv"):
                    if row.get("kept", "yes") == "no" or not (data / row["slug"]).is_dir():
                        continue
                    with tarfile.open(src / "sources" / f"{row['slug']}.tar.gz", "w:gz") as tar:
                        for path in sorted((data / row["slug"]).rglob("*")):
                            if path.is_file() and path.suffix.lower() != ".pdf":
                                tar.add(path, arcname=str(path.relative_to(data / row["slug"])))
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    stage03.main(stage03.Config(input_dir=src, output_dir=tmp / "03", backend=backend, workers=1))
                except SystemExit:
                    pass
                stage.main(stage.Config(input_dir=tmp / "03", output_dir=tmp / "04", all_sentences=True))
            kinds, examples, rows_cut, rows_citing = collections.Counter(), collections.defaultdict(list), 0, 0
            for path in sorted((tmp / "04").glob("*.sentences.csv")):
                paragraphs: dict[int, list[tuple[int, dict]]] = collections.defaultdict(list)
                for row in pu.read_csv_rows(path):
                    p_no, s_no = row["sentence_id"].rpartition(":")[2].split(".")
                    paragraphs[int(p_no)].append((int(s_no), row))
                for rows in paragraphs.values():
                    rows.sort(key=lambda t: t[0])
                for p_no, rows in paragraphs.items():
                    after, before = paragraphs.get(p_no + 1), paragraphs.get(p_no - 1)
                    for i, (_, row) in enumerate(rows):
                        if not row["ref_keys"]:
                            continue
                        rows_citing += 1
                        section = row["section"]
                        found = cut_kinds(row["sentence"], rows[i + 1][1]["sentence"] if i + 1 < len(rows) else None,
                                          rows[i - 1][1]["sentence"] if i else None,
                                          after[0][1]["sentence"] if after and after[0][1]["section"] == section else None,
                                          before[-1][1]["sentence"] if before and before[-1][1]["section"] == section
                                          else None)
                        rows_cut += bool(found)
                        for kind in found:
                            kinds[kind] += 1
                            examples[kind].append(f"{path.name.split('.sentences')[0]}: {row['sentence'][:200]}")
        print(f"  {label} ({backend}): {rows_cut} of {rows_citing} citing rows")
        for kind, n in kinds.most_common():
            print(f"    {n:5d}  {kind}")
            for example in examples[kind][:show]:
                print(f"           {example}")


# --- judging real output, with rules of their own (not the stage's code) ------------------------

# Words that end with a period without ending a sentence, as the judge sees them
NOT_AN_END = {"al", "eq", "eqs", "eqn", "fig", "figs", "sec", "secs", "ref", "refs", "tab", "vs", "cf", "resp", "no",
              "vol", "pp", "ch", "dr", "prof", "mr", "ms", "st", "approx", "thm", "lem", "def", "prop", "cor", "app",
              "e", "i", "g", "ie", "eg", "viz", "ca", "jr", "inc", "ltd", "co"}
INTERNAL_END = re.compile(r"(\w+|[\])])([.!?])((?:\s*\[[^\[\]]{1,60}\])*)\s+(?:[\"“]?([A-Z][a-z]+)|\[formula\])")
# A hole: a word that needs an object, followed by punctuation or the end of the sentence
HOLE_BEFORE_PUNCT = re.compile(
    r"\b(?:in|of|by|from|see|to|with|at|on|for|than|as|via|following|including|the|an?|and|or|e\.g\.|i\.e\.|cf\.|"
    r"Refs?\.)\s*(?:[.;!?)\]]|$)")
HOLE_BEFORE_COMMA = re.compile(r"\b(?:[Ii]n|of|by|from|see|to|with|at|on|for|than|the|an?|via|Refs?\.)\s*,")
HOLE_OTHER = re.compile(r"^[,.;:)\]]|\(\s*\)|\[\s*\]|[,;]\s*[,;.]")


def two_sentences(sentence: str) -> bool:
    """An internal sentence end: a word, digit or closing bracket, then . ! or ?, optionally citation
    brackets, then a capitalised word; periods after an abbreviation or a single letter do not count."""
    for m in INTERNAL_END.finditer(sentence):
        word = m.group(1)
        if word.lower() in NOT_AN_END or (len(word) == 1 and word.isalpha()):
            continue
        return True
    return False


def hole_spots(text: str) -> list[str]:
    return [m.group() for rx in (HOLE_BEFORE_PUNCT, HOLE_BEFORE_COMMA, HOLE_OTHER) for m in rx.finditer(text)]


def has_hole(sentence: str, clean: str) -> bool:
    """A hole that removing the markers made: a governing word left without its object ("given in.",
    "In, we"), punctuation at the start, empty brackets, doubled punctuation, or a lower-case start
    where the sentence as written starts in upper case ("[7] applies" -> "applies"). Spots already in
    the sentence as written (unarXive cuts paragraphs at display formulas: "... at order [formula] from")
    do not count."""
    before = hole_spots(re.sub(r"\[[^\[\]]*\]", "", sentence))
    spots = [spot for spot in hole_spots(clean) if spot not in before]
    lower_start = clean[:1].islower() and not sentence[:1].islower()
    # "For example, [22] aggregates ..." -> "For example, aggregates ...": a subject removed
    subject_gone = any(re.search(r"(?:^|[,;:]\s*)" + re.escape(m.group(1)) + r"\b", clean)
                       for m in re.finditer(r"(?:^|[,;:]\s*)\[[\d,\s–-]+\]\s+([a-z]+(?:s|ed))\b", sentence)
                       if m.group(1) not in ("as", "was", "is", "has", "this", "thus", "its", "us", "his", "whereas"))
    return bool(spots) or lower_start or subject_gone


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]{2,}", text)


def context_words(prefix: str) -> list[str]:
    """Up to three words before a cite span, from its own sentence (the text after the last ". X" in the
    paragraph); a span right after a sentence's period ("case.[73] Next") takes the words before it."""
    prefix = re.sub(r"\{\{[^}]*\}\}", " ", prefix)
    ends = list(re.finditer(r"[.!?;]\s+(?=[A-Z])", prefix))
    if ends and words(prefix[ends[-1].end():]):
        prefix = prefix[ends[-1].end():]
    return words(prefix)[-3:]


def real_text(stage, folder: Path, show: int, runs: int) -> None:
    """Stage 04 on unarXive records: cite-span coverage, two-sentence rows, holes."""
    import pandas as pd

    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"no *.jsonl in {folder}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        times = [timed_run(stage, folder, out, input_format="unarxive")[0] for _ in range(runs)]
        rows = {}
        for path in out.glob("*.sentences.csv"):
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
            rows[path.name[:-len(".sentences.csv")]] = df
    spans = found = 0
    missing = []
    n_papers = 0
    for path in files:
        for line in path.open(encoding="utf-8"):
            record = json.loads(line)
            n_papers += 1
            pid = record["paper_id"].replace("/", "_")
            df = rows.get(pid)
            for p_no, par in enumerate(record["body_text"], start=1):
                for span in par["cite_spans"]:
                    if span["ref_id"] not in record["bib_entries"]:
                        continue
                    spans += 1
                    before = context_words(par["text"][:span["start"]])
                    after = words(re.split(r"[.!?;]\s", re.sub(r"\{\{[^}]*\}\}", " ", par["text"][span["end"]:]))[0])[:3]
                    ok = False
                    if df is not None:
                        here = df[df.sentence_id.str.startswith(f"{pid}:{p_no}.")]
                        for sentence, keys in zip(here.sentence, here.ref_keys):
                            have = " ".join(words(sentence.replace("[formula]", " ")))
                            if span["ref_id"] in keys.split("|") and (" ".join(before) in have
                                                                      or (after and " ".join(after) in have)):
                                ok = True
                                break
                    found += ok
                    if not ok:
                        missing.append((pid, p_no, " ".join(before)))
    allrows = pd.concat(rows.values(), ignore_index=True)
    two = allrows[allrows.sentence.map(two_sentences)]
    holes = allrows[[has_hole(a, b) for a, b in zip(allrows.sentence, allrows.sentence_clean)]]
    n = len(allrows)
    print(f"\nReal papers ({folder}, unarXive JSONL): {n_papers} papers, {n} citing rows, "
          f"stage 04 median {statistics.median(times):.2f} s over {runs} runs")
    print(f"  cite spans reaching a sentence with the right reference: {found}/{spans} ({100 * found / spans:.1f}%)")
    print(f"  citing rows holding two sentences: {len(two)}/{n} ({100 * len(two) / n:.1f}%)")
    print(f"  sentence_clean cells with a hole: {len(holes)}/{n} ({100 * len(holes) / n:.1f}%)")
    for title, frame, col in (("two sentences", two, "sentence"), ("holes", holes, "sentence_clean")):
        for text in frame[col].head(show):
            print(f"    [{title}] {text[:220]}")
    for miss in missing[:show]:
        print(f"    [missed span] {miss}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--real", type=Path, help="a folder of unarXive *.jsonl (e.g. ../shared/realtext)")
    parser.add_argument("--show", type=int, default=0, help="print this many examples of each defect")
    parser.add_argument("--sizes-only", action="store_true", help="only the 1 MB against 4 MB timing")
    parser.add_argument("--real-sizes", action="store_true",
                        help="the 1 MB against 4 MB timing on real papers' XML (stage 03 on --pdf and --tex)")
    parser.add_argument("--whole-sentences", action="store_true",
                        help="citing rows that are not whole sentences, on stage 03's output of the real sets")
    parser.add_argument("--stage04", type=Path, default=None, help="--whole-sentences: judge this copy of the stage")
    parser.add_argument("--pdf", type=Path, default=HERE.parents[1] / "shared" / "realpdf" / "MullenJSSv18i03.pdf")
    parser.add_argument("--tex", type=Path, default=HERE.parents[1] / "shared" / "realtex" / "araa-gps")
    args = parser.parse_args()
    stage = load_stage("04")
    if args.real:
        real_text(stage, args.real, args.show, args.runs)
        return 0
    if args.whole_sentences:
        if args.stage04:
            sys.path.insert(0, str(args.stage04.resolve().parents[1]))
            import pipeline_utils as pu

            stage = pu.load_script(args.stage04, "other_stage04")
        whole_sentences(stage, args.show)
        return 0
    if args.real_sizes:
        real_size_scaling(stage, args.runs, args.pdf, args.tex)
        return 0
    if args.sizes_only:
        size_scaling(stage, args.runs)
        return 0
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "xml"
        src.mkdir()
        for n in range(args.papers):
            (src / f"2501.{n:05d}v1.cermxml").write_text(paper(rng))
        results = [timed_run(stage, src, Path(tmp) / "out") for _ in range(args.runs)]
        elapsed = statistics.median(t for t, _ in results)
        summary = results[0][1]
        cfg = stage.Config(input_dir=src, output_dir=Path(tmp) / "out")
        cached = time.perf_counter()
        stage.main(cfg)
        cached = time.perf_counter() - cached
    print(f"\n{args.papers} generated papers, {summary['sentences']} citing sentences, {summary['references']} "
          f"references, median of {args.runs} runs {elapsed:.1f} s: {args.papers / elapsed:.1f} papers/s, "
          f"{summary['sentences'] / elapsed:.0f} citing sentences/s, {1000 * elapsed / args.papers:.1f} ms per paper "
          f"(1 core); cached rerun {cached:.1f} s")
    size_scaling(stage, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
