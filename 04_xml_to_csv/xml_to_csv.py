"""Stage 04: every sentence that cites something, and the references it cites, from XML to CSV.

    python 04_xml_to_csv/xml_to_csv.py
    python 04_xml_to_csv/xml_to_csv.py --include-captions --all-sentences
    python 04_xml_to_csv/xml_to_csv.py --executor ray --ray-address HEAD:6379   # one Ray task per paper

Reads stage 03's ``*.cermxml`` (JATS: CERMINE or the builtin backend) and
``*.tei.xml`` (GROBID TEI) and writes, per paper, ``<paper_id>.sentences.csv``
and ``<paper_id>.references.csv``. Sentences are split with syntok, a proven
rule-based segmenter, plus the fixes citation markers need; ``sentence_clean``
is the sentence with every citation marker removed (rule in the README).
"""
from __future__ import annotations

import bisect
import codecs
import dataclasses
import gzip
import hashlib
import json
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import syntok.segmenter as syntok_segmenter  # noqa: E402
from lxml import etree  # noqa: E402
from tqdm import tqdm  # noqa: E402

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
PARSER_VERSION = "6"  # bump when the output for the same XML changes, to invalidate the cache


@dataclass
class Config:
    """Extract citing sentences and their references from JATS / TEI XML."""

    input_dir: Path = HERE.parent / "03_cermine_extract" / "output"
    """Stage 03's output (*.cermxml, *.tei.xml); with --input-format unarxive/s2orc a folder of *.jsonl[.gz] or one file."""
    output_dir: Path = HERE / "output"
    """Where the per-paper CSVs go."""
    input_format: Literal["xml", "unarxive", "s2orc"] = "xml"
    """xml: stage 03's JATS/TEI; unarxive / s2orc: a JSONL dump with cite spans and bibliography (skips stages 01-03)."""
    max_file_mb: float = 25.0
    """Skip (with a reason) an XML file or JSONL record larger than this; real papers are well under 5 MB."""
    max_seconds_per_paper: float = 120.0
    """Skip (with a reason) a paper still unfinished after this many seconds, so one file cannot block the rest."""
    include_captions: bool = False
    """Also take sentences from figure and table captions."""
    all_sentences: bool = False
    """Write every body sentence, not only those that cite something."""
    workers: int = 0
    """Papers converted in parallel. 0: one by one in this process with --executor local, one Ray task in flight
    per core of the cluster with --executor ray; N: a local process pool of N, or N Ray tasks in flight."""
    executor: Literal["local", "ray"] = "local"
    """local: this process (or a process pool, --workers N); ray: one Ray task per paper, on a local Ray started
    for the run or the cluster at --ray-address (pip install -r requirements-extra.txt)."""
    ray_address: str = ""
    """With --executor ray: the cluster's address (HEAD:6379, as `ray start --head` prints; default $RAY_ADDRESS,
    else a local Ray started for this run)."""
    task_chunk: int = 1
    """With --executor ray: papers per Ray task (a worker that dies has its chunk redone paper by paper)."""
    force: bool = False
    """Redo every paper, even those whose XML has not changed."""
    verbose: bool = False
    """Debug logging."""


SENTENCE_COLUMNS = ["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys",
                    "clean_substitutions"]
REFERENCE_COLUMNS = ["paper_id", "ref_key", "title", "year", "authors", "venue", "doi", "arxiv_id", "raw"]
TEI = "{http://www.tei-c.org/ns/1.0}"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                              remove_comments=True)

DOI_RE = re.compile(r"\b10\.\d{4,9}/[^\s\"<>]+", re.I)
ARXIV_RE = re.compile(r"(?:arXiv:\s*|arxiv\.org/abs/)(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)",
                      re.I)
YEAR_RE = re.compile(r"(?<!\d)((?:1[6-9]|20)\d{2})(?!\d)")


class PaperError(Exception):
    """One XML file that cannot be read; the message says why."""


# ---------------------------------------------------------------------------
# Small text helpers
# ---------------------------------------------------------------------------

def normalise_doi(text: str) -> str:
    """'https://doi.org/10.5555/ABC.1.' -> '10.5555/abc.1' (lower case, no resolver prefix, no trailing punctuation)."""
    m = DOI_RE.search(text or "")
    if not m:
        return ""
    doi = m.group(0).rstrip(".,;:)]}'\"")
    return doi.lower()


def squash(text: str) -> str:
    """Whitespace collapsed to single spaces (CERMINE keeps the PDF's hard line breaks)."""
    return re.sub(r"\s+", " ", text or "").strip()


def fix_hyphenation(text: str, vocabulary: set[str]) -> str:
    """Rejoin 'hyphen-\\nated' words split at a line end, unless the document uses the compound."""
    def join(m: re.Match) -> str:
        head, tail = m.group(1), m.group(2)
        if f"{head}-{tail}".lower() in vocabulary and f"{head}{tail}".lower() not in vocabulary:
            return f"{head}-{tail}"
        return f"{head}{tail}"

    return re.sub(r"([A-Za-z]+)-[ \t]*\n\s*([a-z]+)", join, text)


def clean_text(text: str, vocabulary: set[str]) -> str:
    """NFKC, soft hyphens, line-end hyphenation, whitespace; leading/trailing spaces kept as one."""
    text = unicodedata.normalize("NFKC", (text or "").replace("\u00ad", ""))
    text = fix_hyphenation(text, vocabulary)
    lead = " " if text[:1].isspace() else ""
    trail = " " if text[-1:].isspace() else ""
    body = squash(text)
    return (lead + body + trail) if body else (" " if text else "")


# ---------------------------------------------------------------------------
# Paragraphs as text with citation spans
# ---------------------------------------------------------------------------

@dataclass
class Marker:
    start: int
    end: int
    keys: list[str]


@dataclass
class Paragraph:
    section: str
    text: str = ""
    markers: list[Marker] = field(default_factory=list)
    number: int = 0
    """Its place among the XML's paragraphs, from 1 (0: its place in the list); a paragraph that a page or column
    break cut mid-sentence keeps the number of its first part."""
    table_row: bool = False
    """One row of a table, its cells in order (the built-in backend's ``<p content-type="table-row">``): a unit
    of its own, never joined to the paragraph before or after it."""


class ParagraphBuilder:
    """Text and marker spans appended piece by piece in linear time (a growing ``str`` attribute
    re-scanned at every marker made one long paragraph quadratic)."""

    def __init__(self, section: str):
        self.section, self.parts, self.length, self.markers = section, [], 0, []

    def _last_char(self) -> str:
        for part in reversed(self.parts):
            if part:
                return part[-1]
        return ""

    def text(self, text: str) -> None:
        if self.markers and self.markers[-1].end == self.length:
            text = re.sub(r"^\s+(?=[\]),;.])", "", text)  # "[<xref>1</xref>\n ]" -> "[1]", "2019 ;" -> "2019;"
        if not self.length or self._last_char() == " ":
            text = text.lstrip()
        if text:
            self.parts.append(text)
            self.length += len(text)

    def marker(self, text: str, keys: list[str]) -> None:
        # "[\n <xref>" -> "[": drop whitespace that follows an opening bracket
        i = len(self.parts) - 1
        while i >= 0 and not self.parts[i].strip():
            i -= 1
        if i >= 0:
            stripped = self.parts[i].rstrip()
            if stripped[-1:] in ("[", "(") and (stripped != self.parts[i] or i < len(self.parts) - 1):
                self.length -= sum(len(x) for x in self.parts[i:]) - len(stripped)
                self.parts[i:] = [stripped]
        last = self._last_char()
        if last and last not in " [(" and re.match(r"\w", text) and last.isalnum():
            self.parts.append(" ")
            self.length += 1
        self.parts.append(text)
        self.markers.append(Marker(self.length, self.length + len(text), keys))
        self.length += len(text)

    def build(self) -> Paragraph:
        return Paragraph(self.section, "".join(self.parts).rstrip(), self.markers)


def walk_paragraph(p: etree._Element, section: str, is_marker, keys_of, vocabulary: set[str],
                   skip) -> Paragraph:
    """Flatten one <p> into text and marker spans; ``is_marker(el)`` says which elements are citations."""
    par = ParagraphBuilder(section)

    def visit(el: etree._Element) -> None:
        if el.text:
            par.text(clean_text(el.text, vocabulary))
        for child in el:
            if not isinstance(child.tag, str) or skip(child):
                pass
            elif is_marker(child):
                par.marker(squash(clean_text("".join(child.itertext()), vocabulary)), keys_of(child))
            else:
                visit(child)
            if child.tail:
                par.text(clean_text(child.tail, vocabulary))

    visit(p)
    return par.build()


# ---------------------------------------------------------------------------
# JATS (CERMINE, builtin) and TEI (GROBID)
# ---------------------------------------------------------------------------

@dataclass
class Paper:
    paragraphs: list[Paragraph]
    references: list[dict]
    unresolved_markers: int = 0
    dangling: list[str] = field(default_factory=list)


def _vocabulary(root: etree._Element) -> set[str]:
    text = " ".join(root.itertext()).lower()
    return set(re.findall(r"[a-z][a-z\-]+[a-z]", text))


def _label_number(text: str) -> int | None:
    m = re.match(r"^\s*\[?(\d{1,4})[\].]?\s", (text or "") + " ")
    return int(m.group(1)) if m else None


def expand_range_keys(marker_text: str, keys: list[str], by_number: dict[int, str],
                      number_of: dict[str, int] | None = None) -> list[str]:
    """'[1-3]' whose rid lists only ref1 and ref3 -> ref1 ref2 ref3, by the references' printed numbers. A
    number the rid already names (``number_of``: a reference's printed number) is not added again: where a
    paper prints two lists numbered from 1 (its references, then its own publications), ``by_number`` holds
    one of them only, and "[5, 8]" linked to the first list's entries is not also the second list's; the
    middle of a range is the entry of the list its ends are in."""
    spec = marker_text.strip("[]() ")
    if not by_number or not re.fullmatch(r"\d+(\s*[-–,]\s*\d+)*", spec):
        return keys
    numbers: list[int] = []
    for part in re.split(r"\s*,\s*", spec):
        if m := re.fullmatch(r"(\d+)\s*[-–]\s*(\d+)", part):
            lo, hi = int(m.group(1)), int(m.group(2))
            numbers.extend(range(lo, hi + 1) if 0 < hi - lo < 100 else [lo, hi])
        else:
            numbers.append(int(part))
    named = {number_of[k] for k in keys if k in number_of} if number_of else set()
    expanded = [by_number[n] for n in numbers if n in by_number and n not in named]
    if number_of and expanded and len(by_number) < len(number_of):
        # numbers printed twice: the middle of "[1–3]" is the entry of the list its ends are in
        order = {k: i for i, k in enumerate(number_of)}
        near = [order[k] for k in keys if k in order]
        expanded = [min((k for k, m in number_of.items() if m == n),
                        key=lambda k: min((abs(order[k] - i) for i in near), default=0))
                    for n in numbers if n in by_number and n not in named]
    return list(dict.fromkeys(keys + [k for k in expanded if k not in keys])) if expanded else keys


SENTENCE_END_AT_END = re.compile(r"[.!?][\"'”’)\]]*\s*$")
CONTINUATION_START = re.compile(r"\s*(?:[a-z]|\[formula\])")


def _ends_sentence(par: Paragraph) -> bool:
    """The paragraph's text ends with . ! or ?, before any closing quotes, brackets and citation markers
    ("activities.<xref>5,6</xref>", "(see [4]).")."""
    end = len(par.text.rstrip())
    by_end = {m.end: m for m in par.markers}
    while (m := by_end.get(len(par.text[:end].rstrip(" ])")))) is not None:
        end = len(par.text[:m.start].rstrip(" [("))  # "... activities.[5, 6]" -> "... activities."
    return end == 0 or bool(SENTENCE_END_AT_END.search(par.text[:end]))


def join_broken_paragraphs(paragraphs: list[Paragraph]) -> list[Paragraph]:
    """Paragraphs a page or column break (or a display formula, or a list) cut in the middle of a sentence are
    one: a paragraph that ends without . ! ? is joined to the next one of its section when that starts in lower
    case or with a formula ("... diuretic, analgesic,3" + "ameliorative,4 antioxidant ..."; "is given by" +
    "[formula] where ..."). The joined paragraph keeps the first one's number; the numbers after it stay.
    Linear in the text: each paragraph's end is read once, and a run of pieces is put together once."""
    out: list[Paragraph] = []
    run: list[Paragraph] = []  # the pieces of the paragraph being built, the first one in ``out``

    def close() -> None:
        if len(run) > 1:
            head, parts, markers, length = run[0], [], [], 0
            for piece in run:
                text = piece.text if piece is head else piece.text.lstrip()
                offset = length + (1 if piece is not head else 0) - (len(piece.text) - len(text))
                if piece is not head:
                    parts.append(" ")
                parts.append(text)
                markers.extend(Marker(m.start + offset, m.end + offset, m.keys) for m in piece.markers)
                length += len(text) + (1 if piece is not head else 0)
            head.text, head.markers = "".join(parts), markers
        run.clear()

    for n, par in enumerate(paragraphs, start=1):
        par.number = par.number or n
        last = run[-1] if run else None
        if last is not None and last.section == par.section and last.text.strip() and par.text.strip() \
                and not last.table_row and not par.table_row \
                and CONTINUATION_START.match(par.text) and not _ends_sentence(last):
            run.append(par)
            continue
        close()
        out.append(par)
        run.append(par)
    close()
    return out


def read_jats(root: etree._Element, config: Config) -> Paper:
    vocabulary = _vocabulary(root)
    references = [jats_reference(ref, vocabulary) for ref in root.iterfind(".//back//ref-list/ref")]
    known = {r["ref_key"] for r in references}
    number_of = {r["ref_key"]: n for r in references if (n := r.pop("_number", None)) is not None}
    by_number = {n: key for key, n in number_of.items()}
    paper = Paper([], references)
    body = root.find("body")
    if body is None:
        return paper

    def skip(el: etree._Element) -> bool:
        return not config.include_captions and el.tag in ("fig", "table-wrap", "caption")

    def is_marker(el: etree._Element) -> bool:
        return el.tag == "xref" and el.get("ref-type") == "bibr"

    def keys_of(el: etree._Element) -> list[str]:
        keys = list(dict.fromkeys((el.get("rid") or "").split()))
        keys = expand_range_keys("".join(el.itertext()), keys, by_number, number_of)
        for key in keys:
            if key not in known:
                paper.dangling.append(key)
        return [k for k in keys if k in known]

    # lxml's find() scans every child of the section, so it is asked once per section, not once per
    # paragraph (a 4 MB one-section paper has thousands of paragraphs: quadratic otherwise)
    titles: dict[etree._Element, str] = {}
    for p in body.iter("p"):
        if any(skip(a) for a in p.iterancestors()) or any(a.tag == "p" for a in p.iterancestors()):
            continue
        sec = next((a for a in p.iterancestors("sec")), None)
        if sec is not None and sec not in titles:
            head = sec.find("title")
            titles[sec] = squash("".join(head.itertext())) if head is not None else ""
        title = titles[sec] if sec is not None else ""
        paper.paragraphs.append(walk_paragraph(p, title, is_marker, keys_of, vocabulary, skip))
        paper.paragraphs[-1].table_row = p.get("content-type") == "table-row"
    paper.paragraphs = join_broken_paragraphs(paper.paragraphs)
    return paper


def _text(el: etree._Element | None, vocabulary: set[str] = frozenset()) -> str:
    return squash(clean_text("".join(el.itertext()), vocabulary)) if el is not None else ""


def jats_reference(ref: etree._Element, vocabulary: set[str]) -> dict:
    cit = ref.find("mixed-citation")
    if cit is None:
        cit = ref.find("element-citation")
    if cit is None:
        cit = ref
    raw = re.sub(r"\s+([,.:;)])", r"\1", _text(cit, vocabulary))
    number = _label_number(raw) or _label_number(ref.findtext("label") or "")
    raw = re.sub(r"^\s*(\[\d{1,4}\]|\d{1,4}\.)\s*", "", raw)
    title = _text(cit.find(".//article-title"), vocabulary)
    venue = _text(cit.find(".//source"), vocabulary)
    if not title:  # a book or report: its title is the source
        title, venue = venue, _text(cit.find(".//publisher-name"), vocabulary)
    authors = []
    for name in cit.iter("string-name", "name"):
        surname, given = _text(name.find("surname")), _text(name.find("given-names"))
        if surname or given:
            authors.append(f"{surname}, {given}".strip(", ") if surname else given)
        elif full := _text(name):
            authors.append(full)
    year = next(iter(YEAR_RE.findall(_text(cit.find(".//year")))), "") or next(iter(YEAR_RE.findall(raw)), "")
    doi_el = cit.find(".//pub-id[@pub-id-type='doi']")
    doi = normalise_doi(_text(doi_el)) if doi_el is not None else normalise_doi(raw)
    arxiv_el = cit.find(".//pub-id[@pub-id-type='arxiv']")
    arxiv = _text(arxiv_el) if arxiv_el is not None else ""
    if not arxiv and (m := ARXIV_RE.search(raw)):
        arxiv = m.group(1)
    return {"ref_key": ref.get("id") or "", "title": title, "year": year, "authors": pu.join_list(authors),
            "venue": venue, "doi": doi, "arxiv_id": re.sub(r"^arxiv:\s*", "", arxiv, flags=re.I), "raw": raw,
            "_number": number}


def read_tei(root: etree._Element, config: Config) -> Paper:
    vocabulary = _vocabulary(root)
    references = [tei_reference(b, vocabulary) for b in root.iterfind(f".//{TEI}back//{TEI}listBibl/{TEI}biblStruct")]
    known = {r["ref_key"] for r in references}
    paper = Paper([], references)
    body = root.find(f"{TEI}text/{TEI}body")
    if body is None:
        return paper

    def skip(el: etree._Element) -> bool:
        return not config.include_captions and el.tag in (f"{TEI}figure", f"{TEI}figDesc", f"{TEI}table")

    def is_marker(el: etree._Element) -> bool:
        return el.tag == f"{TEI}ref" and el.get("type") == "bibr"

    def keys_of(el: etree._Element) -> list[str]:
        keys = [t.lstrip("#") for t in (el.get("target") or "").split()]
        if not keys:
            paper.unresolved_markers += 1
        for key in keys:
            if key not in known:
                paper.dangling.append(key)
        return [k for k in dict.fromkeys(keys) if k in known]

    heads: dict[etree._Element, str] = {}
    for p in body.iter(f"{TEI}p"):
        if any(skip(a) for a in p.iterancestors()):
            continue
        div = next((a for a in p.iterancestors(f"{TEI}div")), None)
        if div is not None and div not in heads:  # once per division, as in read_jats
            heads[div] = _text(div.find(f"{TEI}head"))
        paragraph = walk_paragraph(p, heads[div] if div is not None else "", is_marker, keys_of, vocabulary, skip)
        paper.paragraphs.append(paragraph)
    # GROBID writes one <ref> per number of a group ("[1,", "2]"): merge adjacent markers.
    for par in paper.paragraphs:
        merged: list[Marker] = []
        for m in par.markers:
            if merged and re.fullmatch(r"[\s,;–-]*", par.text[merged[-1].end:m.start]):
                merged[-1] = Marker(merged[-1].start, m.end, list(dict.fromkeys(merged[-1].keys + m.keys)))
            else:
                merged.append(m)
        par.markers = merged
    paper.paragraphs = join_broken_paragraphs(paper.paragraphs)
    return paper


def tei_reference(bib: etree._Element, vocabulary: set[str]) -> dict:
    analytic = bib.find(f"{TEI}analytic")
    monogr = bib.find(f"{TEI}monogr")
    a_title = analytic.find(f"{TEI}title") if analytic is not None else None
    m_title = monogr.find(f"{TEI}title") if monogr is not None else None
    if a_title is not None and _text(a_title):
        title, venue = _text(a_title, vocabulary), _text(m_title, vocabulary)
    else:
        title = _text(m_title, vocabulary)
        venue = _text(bib.find(f".//{TEI}publisher"))
    authors = []
    holder = analytic if analytic is not None and analytic.find(f"{TEI}author") is not None else monogr
    for pers in (holder.iterfind(f"{TEI}author/{TEI}persName") if holder is not None else []):
        surname = _text(pers.find(f"{TEI}surname"))
        given = " ".join(_text(f) for f in pers.iterfind(f"{TEI}forename"))
        authors.append(f"{surname}, {given}".strip(", "))
    date = bib.find(f".//{TEI}imprint/{TEI}date")
    year = ""
    if date is not None:
        year = next(iter(YEAR_RE.findall(date.get("when") or "")), "") or next(iter(YEAR_RE.findall(_text(date))), "")
    raw = _text(bib.find(f"{TEI}note[@type='raw_reference']"), vocabulary)
    doi = ""
    for idno in bib.iter(f"{TEI}idno"):
        if (idno.get("type") or "").upper() == "DOI":
            doi = normalise_doi(_text(idno))
    doi = doi or normalise_doi(raw)
    arxiv = ""
    for idno in bib.iter(f"{TEI}idno"):
        if (idno.get("type") or "").lower() == "arxiv":
            arxiv = re.sub(r"^arxiv:\s*", "", _text(idno), flags=re.I)
    if not arxiv and (m := ARXIV_RE.search(raw)):
        arxiv = m.group(1)
    if not raw:  # no raw text from GROBID: rebuild one, so stage 06 can still query with it
        raw = ". ".join(x for x in ("; ".join(authors), title, venue, year) if x)
    return {"ref_key": bib.get(XML_ID) or "", "title": title, "year": year, "authors": pu.join_list(authors),
            "venue": venue, "doi": doi, "arxiv_id": arxiv, "raw": raw}


XML_DECLARATION = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
LIBXML_NATIVE = {"utf-8", "utf8", "utf-16", "utf16"}


def to_utf8(data: bytes) -> bytes:
    """XML whose declaration names an encoding by a Python alias libxml2 does not know ("latin-1",
    "iso_8859_15") is decoded here and handed on as UTF-8 with the declaration rewritten."""
    m = XML_DECLARATION.match(data[:300])
    if not m or m.group(1).decode().lower() in LIBXML_NATIVE:
        return data
    name = m.group(1).decode()
    try:
        text = data.decode(codecs.lookup(name).name)
    except LookupError:
        raise PaperError(f"unknown encoding {name!r} in the XML declaration") from None
    except UnicodeDecodeError as exc:
        raise PaperError(f"bytes that are not {name}: {exc}") from None
    declaration = m.group(0).decode(name)
    return (re.sub(r"""encoding\s*=\s*["'][^"']+["']""", 'encoding="UTF-8"', declaration)
            + text[len(declaration):]).encode("utf-8")


def read_paper(data: bytes, config: Config) -> Paper:
    """Parse one XML file safely (no entities, no network); raises PaperError with the reason."""
    if not data.strip():
        raise PaperError("empty file")
    try:
        root = etree.fromstring(to_utf8(data), SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise PaperError(f"malformed XML: {exc}") from exc
    if root is None:
        raise PaperError("no XML element in the file")
    if root.tag == f"{TEI}TEI":
        return read_tei(root, config)
    if root.tag == "article":
        return read_jats(root, config)
    raise PaperError(f"unknown root element <{root.tag}> (expected JATS <article> or TEI <TEI>)")


# ---------------------------------------------------------------------------
# unarXive and S2ORC JSONL: paragraphs with cite spans, bibliography entries
# ---------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{\{(cite|formula|figure|table):([^{}]*)\}\}")


def _json_paragraph(par: dict, section: str, render, cite_key) -> Paragraph:
    """One paragraph of a JSON record as text + marker spans. Adjacent cite spans joined only by "," or
    ";" are one marker. ``render(kind, ref_id)`` replaces an unarXive placeholder (a cite span's own
    placeholders become "[n, m]"); S2ORC's printed markers are kept as they are ("[13, 15]")."""
    text = par.get("text") or ""
    spans = sorted((s for s in (par.get("cite_spans") or []) if isinstance(s, dict)
                    and isinstance(s.get("start"), int) and isinstance(s.get("end"), int)),
                   key=lambda s: s["start"])
    builder = ParagraphBuilder(section)
    pos, group_start, group = 0, 0, []  # group: the cite spans of one marker

    def flush() -> None:
        if not group:
            return
        pieces = [text[s["start"]:s["end"]] for s in group]
        if all(PLACEHOLDER.fullmatch(piece) for piece in pieces):
            marker = "[" + ", ".join(render("cite", PLACEHOLDER.fullmatch(x).group(2)) for x in pieces) + "]"
        else:
            marker = squash(text[group_start:group[-1]["end"]])
        builder.marker(marker, list(dict.fromkeys(k for k in (cite_key(s.get("ref_id")) for s in group) if k)))
        group.clear()

    def plain(chunk: str) -> None:
        chunk = PLACEHOLDER.sub(lambda m: render(m.group(1), m.group(2)), chunk)
        if chunk.strip():
            builder.text((" " if chunk[0].isspace() else "") + squash(chunk) + (" " if chunk[-1].isspace() else ""))
        elif chunk:
            builder.text(" ")

    for span in spans:
        start, end = span["start"], span["end"]
        if start < pos or end > len(text) or end <= start:
            continue
        if group and not re.fullmatch(r"\s*[,;]?\s*", text[pos:start]):
            flush()
        if not group:
            plain(text[pos:start])
            group_start = start
        group.append(span)
        pos = end
    flush()
    plain(text[pos:])
    return builder.build()


def read_unarxive(record: dict, config: Config) -> Paper:
    """An unarXive record: ``{{cite:id}}`` placeholders become numbered markers "[n]" (n: the entry's
    place in the bibliography), formulas "[formula]"; figure and table floats are dropped."""
    bib = record.get("bib_entries") or {}
    if not isinstance(bib, dict):
        raise PaperError("bib_entries is not an object")
    number = {key: str(i) for i, key in enumerate(bib, start=1)}
    paper = Paper([], [json_reference(key, entry) for key, entry in bib.items()])

    def render(kind: str, ref_id: str) -> str:
        if kind == "cite":
            return number.get(ref_id, "?")
        return "[formula]" if kind == "formula" else " "

    def cite_key(ref_id) -> str:
        if ref_id not in bib:
            paper.dangling.append(str(ref_id))
            return ""
        return ref_id

    for par in _body(record):
        paper.paragraphs.append(_json_paragraph(par, str(par.get("section") or ""), render, cite_key))
    return paper


def read_s2orc(record: dict, config: Config) -> Paper:
    """An S2ORC ``pdf_parses`` record (or doc2json output): printed markers with ``cite_spans``;
    a span whose ``ref_id`` is null counts as an unresolved marker."""
    bib = record.get("bib_entries") or {}
    if not isinstance(bib, dict):
        raise PaperError("bib_entries is not an object")
    paper = Paper([], [json_reference(key, entry) for key, entry in bib.items()])

    def cite_key(ref_id) -> str:
        if ref_id is None:
            paper.unresolved_markers += 1
            return ""
        if ref_id not in bib:
            paper.dangling.append(str(ref_id))
            return ""
        return ref_id

    for par in _body(record):
        paper.paragraphs.append(_json_paragraph(par, str(par.get("section") or ""), lambda k, r: "", cite_key))
    return paper


def _body(record: dict) -> list[dict]:
    body = record.get("body_text")
    if body is None and isinstance(record.get("pdf_parse"), dict):  # S2ORC's newer nesting
        body = record["pdf_parse"].get("body_text")
    if not isinstance(body, list):
        raise PaperError("no body_text list in the record")
    return [p for p in body if isinstance(p, dict)]


def json_reference(key: str, entry: dict) -> dict:
    """One bibliography entry of either dump as a references.csv row; the ids it carries (DOI, arXiv)
    are kept for stage 06 to confirm."""
    entry = entry if isinstance(entry, dict) else {}
    raw = squash(str(entry.get("bib_entry_raw") or entry.get("raw_text") or ""))
    ids = entry.get("ids") if isinstance(entry.get("ids"), dict) else {}
    other = entry.get("other_ids") if isinstance(entry.get("other_ids"), dict) else {}

    def first(value) -> str:
        if isinstance(value, list):
            value = next((v for v in value if v), "")
        if isinstance(value, dict):  # unarXive's contained_arXiv_ids: [{"id": "2104.06921", "text": ..., ...}]
            value = value.get("id") or ""
        return str(value or "").strip()

    doi = normalise_doi(first(ids.get("doi")) or first(other.get("DOI")) or raw)
    arxiv = first(ids.get("arxiv_id")) or first(other.get("arXiv")) or first(entry.get("contained_arXiv_ids"))
    if not arxiv and (m := ARXIV_RE.search(raw)):
        arxiv = m.group(1)
    authors = []
    for a in entry.get("authors") or []:
        if isinstance(a, dict):
            given = " ".join([a.get("first") or ""] + list(a.get("middle") or [])).strip()
            last = (a.get("last") or "").strip()
            if last or given:
                authors.append(f"{last}, {given}".strip(", "))
    title = squash(str(entry.get("title") or ""))
    year = str(entry.get("year") or "")
    year = next(iter(YEAR_RE.findall(year)), "") or next(iter(YEAR_RE.findall(raw)), "")
    if not raw:
        raw = ". ".join(x for x in ("; ".join(authors), title, squash(str(entry.get("venue") or "")), year) if x)
    return {"ref_key": str(key), "title": title, "year": year, "authors": pu.join_list(authors),
            "venue": squash(str(entry.get("venue") or "")), "doi": doi,
            "arxiv_id": re.sub(r"^arxiv:\s*", "", arxiv, flags=re.I), "raw": raw}


JSON_READERS = {"unarxive": read_unarxive, "s2orc": read_s2orc}


# ---------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------

# "Eq. 3", "eq. (3)", "Refs. 4-6": syntok knows most abbreviations, not all of science's, in either case
ABBREVIATION_END = re.compile(
    r"(?:\b(?i:Eqs?|Eqns?|Figs?|Sec|Secs|Sect|Refs?|Tab|Tabs|Tbl|No|Nos|approx|cf|resp|vs|al|ca|Ch|Chap|Vol|pp|"
    r"Suppl|Dr|Prof|Inc|Ltd|Co|Thm|Lem|Prop|Def|Cor|App|i\.e|e\.g)|\b[A-Z])\.\s*$")
# "; (6)", ". (c)": an enumeration label left at the end of a piece (a list of notes: "(1) Smith (2018); (2) ...")
ENUMERATION_END = re.compile(r"([.!?;,])\s*(\(\w{1,3}\))$")
# the labels syntok ends a sentence after, before a capital: a panel's "(Right:)" opens the next sentence; an inline
# list's "(c)" after a word goes on with its own ("tweaks: (a) … (see Sec. 4) (c) SMOTE [72], an oversampling method")
PANEL_LABEL_END = re.compile(r"(?:^|\s)(\((?:Left|Right|Top|Bottom|Middle|Center|Centre|Inset|Above|Below)"
                             r"(?: (?:left|right|top|bottom|panel))?:\))$", re.I)
INLINE_LABEL_END = re.compile(r"[\w)\]]\s+\((?:[a-z]|[ivx]{1,4}|\d{1,2})\)$")
# a piece that starts with the punctuation ending the sentence before it: ". Then", "; and"
LEADING_PUNCTUATION = re.compile(r"\s*[.!?;:,]+[\"'”’]*")
MAX_GLUE = 1500  # an unbalanced bracket glues sentences together for at most this many characters
# a credit line: where the figure or table the sentence before describes comes from ("Source: [5]", "Source [25].",
# "From [18].", "Figure adapted from [57].", "Borrowed from [73].", "Courtesy of Lee (2019)"): its words, once the
# markers are out
CREDIT_LINE = re.compile(
    r"(?i:(?:source|sources|credit|credits)\s*:?|(?:image|photo|picture)\s*:)?\s*"
    r"(?i:(?:(?:figure|fig\.|image|photo|picture|table|diagram|illustration|data|plot)\s+(?:is\s+)?)?"
    r"(?:(?:adapted|taken|borrowed|reproduced|modified|reprinted|redrawn|copied|extracted|obtained|sourced|"
    r"recreated|edited)(?:\s+by\s+(?:me|us|the\s+authors?))?(?:\s+(?:and|with)\s+\w+)?\s+(?:from|after)|"
    r"from|courtesy(?:\s+of)?)?)\s*:?")
# a theorem-like statement's run-in head whose note is its source: "Definition 4.1 ([7, Section 5]).",
# "Corollary 5.4 ([7, Theorem 8.7, part 1]).", "Lemma 2 (Smith, 2010)." (amsthm's optional argument)
THEOREM_HEAD = re.compile(
    r"\s*(?:Theorem|Lemma|Corollary|Proposition|Definition|Remark|Example|Claim|Conjecture|Fact|Observation|"
    r"Assumption|Problem|Question|Hypothesis|Property|Axiom|Notation|Exercise)\s+[A-Z]?\d+(?:\.\d+)*\s*"
    r"\((.*)\)\s*[.:]?\s*$", re.S)


def _bracket_balance(text: str) -> tuple[int, int]:
    return text.count("(") - text.count(")"), text.count("[") - text.count("]")


def split_sentences(par: Paragraph) -> list[tuple[int, int]]:
    """Sentence spans of a paragraph: syntok, then citation-aware fixes. Linear in the paragraph's length. A
    table's row is one span: the row that cites ("Method [12] | 85.3 | mouse"), whatever full stops its cells
    hold."""
    text = par.text
    if par.table_row:
        return [(len(text) - len(text.lstrip()), len(text.rstrip()))] if text.strip() else []
    spans: list[list[int]] = []
    for paragraph in syntok_segmenter.analyze(text):
        for sentence in paragraph:
            start = sentence[0].offset
            last = sentence[-1]
            spans.append([start, last.offset + len(last.value)])
    if not spans:
        return []
    starts = [m.start for m in par.markers]
    marker_at = {m.start: m for m in par.markers}

    def inside_marker(pos: int) -> bool:
        i = bisect.bisect_right(starts, pos) - 1
        return i >= 0 and par.markers[i].start < pos < par.markers[i].end

    # 1. A boundary inside a marker or inside open brackets is no boundary ("(Smith et al.,\n2020)"),
    #    nor one after an abbreviation when the next "sentence" starts in lower case or with a digit.
    fixed = [spans[0]]
    balance = _bracket_balance(text[spans[0][0]:spans[0][1]])
    for start, end in spans[1:]:
        prev = fixed[-1]
        unbalanced = (balance[0] > 0 or balance[1] > 0) and prev[1] - prev[0] < MAX_GLUE
        # "the Kharchenko et al. “most probable” members": a quoted lower-case word goes on the sentence too
        abbreviation = ABBREVIATION_END.search(text[max(prev[0], prev[1] - 12):prev[1]]) and \
            re.match(r"\s*[\"“‘']?[a-z0-9(\[]", text[start:end])
        # syntok sometimes ends a long sentence at a semicolon or before a bracket ("... of the system
        # (e.g., Smith et al., 2010; Jones, 2012)."): no sentence ends without . ! ? or a colon before it
        tail = text[prev[0]:prev[1]].rstrip()
        inline_list, panel = False, None
        if label := ENUMERATION_END.search(tail):
            if label.group(1) in ".!?":  # "... (2005). (c)" + "Dobbie et al.": the label opens the next sentence
                cut = prev[0] + label.start(2)
                prev[1] = len(text[:cut].rstrip())
                start, tail = cut, text[prev[0]:prev[1]]
        elif panel := PANEL_LABEL_END.search(tail):  # "Source: [27] (Right:)" + "The computed features"
            cut = prev[0] + panel.start(1)
            prev[1] = len(text[:cut].rstrip())
            start, tail = cut, text[prev[0]:prev[1]].rstrip()
        elif INLINE_LABEL_END.search(tail) and re.match(r"\s*[A-Z]", text[start:end]) and \
                not SENTENCE_END_AT_END.search(tail[:tail.rindex("(")].rstrip()):
            inline_list = True  # no sentence end before "(c)": the list goes on
        continues = panel is None and prev[1] - prev[0] < MAX_GLUE and (
            tail.endswith((";", ",")) or (re.search(r"[\w\-–—]$", tail) is not None
                                          and re.match(r"\s*[(\[a-z]", text[start:end]) is not None)
            # "... rearrangement [86, 87]" + "(Remark 3).": a bracket after a bracket, no sentence end between
            or (re.search(r"[\])]$", tail) is not None and not SENTENCE_END_AT_END.search(tail)
                and re.match(r"\s*[(\[]", text[start:end]) is not None)
            or (label is not None and label.group(1) in ";,")  # "(5) Luhman (2007); (6)" + "Pecaut ..."
            # "SuperDepth (1024 x 382) [112]" + "– S – 0.112 – 0.875": a dash opens no sentence after a piece with
            # no sentence end (syntok cuts a table row's cells after a parenthesis and a marker)
            or (re.match(r"\s*[–—]\s", text[start:end]) is not None and not SENTENCE_END_AT_END.search(tail))
            or inline_list)
        # "specified using fem.Material = Elastic80A": a full stop with a letter right after it, no space between,
        # inside a name that reads as code (an assignment or a call after it, more dots or underscores in it) is
        # the name's dot, not a sentence end ("KO term.Gardnerella spp." is a sentence end the authors mistyped)
        dotted = start == prev[1] and re.search(r"[A-Za-z0-9_]\.$", tail) is not None and \
            re.match(r"[A-Za-z]", text[start:end]) is not None and (
                re.match(r"\w+(?:[(\[._]|\s*=)", text[start:end]) is not None
                or re.search(r"[._]\w*\.$", tail.rsplit(None, 1)[-1][:-1] + ".") is not None)
        if inside_marker(start) or unbalanced or abbreviation or continues or dotted:
            gap = _bracket_balance(text[prev[1]:end])
            balance = (balance[0] + gap[0], balance[1] + gap[1])
            prev[1] = end
        else:
            fixed.append([start, end])
            balance = _bracket_balance(text[start:end])
    # 2. Boundaries syntok misses next to citations: "case.[73] Additionally", "(see Sec. 2). Next", "etc. Next".
    fixed = [piece for s, e in fixed for piece in _missed_boundaries(text, s, e, marker_at)]
    # 3. A marker opening a sentence closes the previous one: "... nations. [1] Next" / "... al. [2]. Next".
    for i in range(1, len(fixed)):
        start, end = fixed[i]
        m = re.match(r"\s*", text[start:end])
        first = marker_at.get(start + m.end())
        if first is None:
            m = re.match(r"\s*[\[(]?\s*", text[start:end])
            first = marker_at.get(start + m.end())
        if first is None:
            continue
        marker_text = text[first.start:first.end]
        bracketed = bool(m.group().strip()) or marker_text[:1] in "[(" or not re.search(r"[A-Za-z]{2}", marker_text)
        if not bracketed:
            continue  # "Lind and Haraldson (2018) describe ...": a textual citation is the new sentence's subject
        group_end = first.end
        if m.group().strip():  # "[5, p. 26] The end": the bracket's page note belongs to the marker, not to a verb
            note = re.match(r",[^\[\]()]{0,60}?[\])]", text[first.end:end])
            group_end += note.end() - 1 if note else 0
        if not re.match(r"[\])]?[.;,]?\s*$", text[group_end:end]) and re.match(r"[\])]?[,;]?\s+[a-z]",
                                                                                text[group_end:end]):
            continue  # "[7] applies to ...": the marker is this sentence's subject
        tail = re.match(r"[\])]?[.;,]?\s*", text[group_end:end])
        cut = group_end + tail.end()
        fixed[i - 1][1] = cut if text[cut - 1:cut] != " " else cut - 1
        fixed[i][0] = cut
    # 4. A sentence's own closing punctuation split off after a bracket ("(Xiong et al., 2011)" + "."):
    #    it ends the sentence before it; a piece that starts with , ; or : goes on with the sentence before it.
    pieces = [piece for piece in fixed if text[piece[0]:piece[1]].strip()]
    fixed = pieces[:1]
    for piece in pieces[1:]:
        prev = fixed[-1]
        lead = LEADING_PUNCTUATION.match(text, piece[0], piece[1])
        if lead and not text[prev[1]:piece[0]].strip():
            if lead.group().strip()[0] in ",;:" and prev[1] - prev[0] < MAX_GLUE:
                prev[1] = piece[1]
                continue
            prev[1] = piece[0] = lead.end()
        fixed.append(piece)
    # 5. A paragraph that opens with a citation group alone ("[11, Lemma 5.1]" + "Let X be ...", "[4, 5]" +
    #    "Every bounded ...": a statement's source set before it) has no sentence end after the group: the group
    #    opens the first sentence, it is not a sentence of its own.
    if len(fixed) > 1 and _only_markers(text, fixed[0][0], fixed[0][1], par.markers) and \
            not re.search(r"[.!?]\s*$", text[fixed[0][0]:fixed[0][1]]):
        fixed[1][0] = fixed[0][0]
        fixed = fixed[1:]
    # 6. A theorem-like statement's head whose note holds only its source ("Definition 4.1 ([7, Section 5])." +
    #    "Suppose R is ..."): the citation is the statement's, so the head opens the statement's first sentence.
    for i in range(len(fixed) - 2, -1, -1):
        head = THEOREM_HEAD.fullmatch(text, fixed[i][0], fixed[i][1])
        if head and _only_markers(text, head.start(1), head.end(1), par.markers):
            fixed[i + 1][0] = fixed[i][0]
            del fixed[i]
    # 7. A credit line ("Source: [5]", "From [18].", "Figure adapted from [57].") has no words of its own: it says
    #    where the thing the sentence before describes comes from, and goes on with that sentence (a caption's
    #    "An example of a confusion matrix. Source: [30]" cites [30] for the confusion matrix).
    #    So does a citation alone after a sentence's end, "… a post-training alignment. Touvron et al. (2023)" (an
    #    author-year \cite set after the full stop, closing its paragraph): it names that sentence's source.
    joined = fixed[:1]
    for piece in fixed[1:]:
        if _credit_line(text, piece[0], piece[1], par.markers) or _only_markers(text, piece[0], piece[1], par.markers):
            joined[-1][1] = piece[1]
        else:
            joined.append(piece)
    return [(s, e) for s, e in joined if text[s:e].strip()]


def _outside_markers(text: str, start: int, end: int, markers: list[Marker]) -> str | None:
    """The text of text[start:end] outside its markers (one space where each stood), or None where it holds none."""
    inside = [m for m in markers if start <= m.start and m.end <= end]
    if not inside:
        return None
    rest, pos = [], start
    for m in inside:
        rest.append(text[pos:m.start])
        pos = m.end
    rest.append(text[pos:end])
    return " ".join(rest)


def _credit_line(text: str, start: int, end: int, markers: list[Marker]) -> bool:
    """Whether text[start:end] is markers and a credit formula around them, nothing else."""
    rest = _outside_markers(text, start, end, markers)
    if rest is None:
        return False
    words = re.sub(r"[\[\]().,;]+", " ", rest)
    return CREDIT_LINE.fullmatch(words.strip()) is not None and bool(re.search(r"[A-Za-z]", words))


def _only_markers(text: str, start: int, end: int, markers: list[Marker]) -> bool:
    """Whether text[start:end] holds markers and nothing else but brackets, separators and notes in the brackets."""
    rest_text = _outside_markers(text, start, end, markers)
    if rest_text is None:
        return False
    # "[11, Lemma 5.1]", "[Theorem 7.6(a) [66]]": a note inside the brackets around the marker is the marker's
    previous = None
    while rest_text != previous:
        previous, rest_text = rest_text, re.sub(r"\[[^\[\]]*\]|\([^()]*\)", " ", rest_text)
    return not re.search(r"\w", rest_text)


def _missed_boundaries(text: str, start: int, end: int, marker_at: dict[int, Marker]) -> list[list[int]]:
    """Split one span where a sentence ends but syntok saw none: a period followed by a citation group
    and a capital ("case.[73] Additionally"), a closing bracket and a period ("(see Sec. 2). Next",
    "eq. (3). Then"), or "etc." before a capital."""
    pieces, piece_start, balance, scanned = [], start, [0, 0], start
    for m in re.finditer(r"[.!?]", text[start:end]):
        p = start + m.start()
        gap = _bracket_balance(text[scanned:p])
        balance = [balance[0] + gap[0], balance[1] + gap[1]]
        scanned = p
        q, cited = p + 1, False
        while True:  # step over a citation group that follows the period: "[73]", "[3, 7]", " [12]"
            ws = re.match(r"[\s,;]*", text[q:end])
            mk = marker_at.get(q + ws.end())
            if mk is None:
                ws = re.match(r"[\s,;]*[\[(]\s*", text[q:end])
                mk = marker_at.get(q + ws.end()) if ws else None
            if mk is None or mk.end > end:
                break
            q, cited = mk.end, True
            q += re.match(r"\s*[\])]?", text[q:end]).end() if text[mk.start - 1:mk.start] in "[(" else 0
        if cited and text[q:q + 1] == ".":
            q += 1
        before = text[max(start, p - 12):p + 1]
        sentence_end = text[p - 1:p] in ")]" and balance[0] <= 0 and balance[1] <= 0 or \
            re.search(r"[A-Za-z]*[a-z][A-Za-z]*\.$", before) and not ABBREVIATION_END.search(before)
        if cited and sentence_end and re.match(r"\s+[a-z]", text[q:end]):
            # "... models). [95] developed a model": the marker is the subject of the next sentence
            pieces.append([piece_start, p + 1])
            piece_start = p + 1 + len(text[p + 1:q]) - len(text[p + 1:q].lstrip())
            balance, scanned = [0, 0], piece_start
            continue
        nxt = re.match(r"\s+(?:[\"“(]?[A-Z]|\[formula\])", text[q:end])
        if not nxt:
            continue
        if re.search(r"\betc\.$", before):
            ok = True
        elif text[p - 1:p] in ")]" and not cited:
            ok = balance[0] <= 0 and balance[1] <= 0
        elif cited:
            ok = not ABBREVIATION_END.search(before) and not re.search(r"\d\.$", before)
        else:  # "100 keV. Our": a word of two letters or more with a lower-case one ends a sentence
            ok = bool(re.match(r"\s+(?:[A-Z][a-z]|\[formula\])", text[q:end])) and bool(sentence_end) and \
                not re.search(r"\b[A-Z][a-z]?\.$", before)
        if ok:
            pieces.append([piece_start, q])
            piece_start = q + len(nxt.group()) - len(nxt.group().lstrip())
            balance, scanned = [0, 0], piece_start
    pieces.append([piece_start, end])
    return pieces


FILLER = r"(?:see(?:\s+also)?|e\.g\.,?|i\.e\.,?|cf\.|also|for\s+example|for\s+instance|for\s+a\s+review|" \
         r"and\s+references\s+therein|and|or|,|;|\s)*"
_NAME = r"[A-Z][A-Za-z'’\-]+"
# "Munim et al. [2]", "Lind and Haraldson (2018)", "Alazard, Lazar, and Nguyen [1]": names that make a marker textual
STRONG_NAMES_END = re.compile(
    rf"\b{_NAME}(?:\s+et\s+al\.?|(?:,\s+{_NAME})*,?\s+(?:and|&)\s+{_NAME})\s*(?:['’]s\s*)?$")
ANY_NAMES_END = re.compile(rf"\b{_NAME}(?:\s+et\s+al\.?|(?:,\s+{_NAME})*,?\s+(?:and|&)\s+{_NAME})?\s*$")
YEAR_ONLY = re.compile(r"(?:1[89]|20)\d{2}[a-z]?")
# Words after which a removed marker would leave a hole ("given in [7].", "In [7], we", "see [7]"):
# there the marker becomes the noun phrase "prior work"
GOVERNING = {"in", "of", "by", "from", "see", "to", "with", "at", "on", "for", "than", "as", "like", "via",
             "following", "including", "unlike", "within", "into", "under", "after", "before", "between",
             "among", "over", "beyond", "through", "about", "against", "and", "or", "also", "per", "cf", "follow",
             "follows", "followed", "extend", "extends", "extended", "adopt", "adopts", "generalize", "generalizes",
             "generalise", "generalises", "consult", "use", "uses", "using", "recall", "to", "e.g", "i.e"}
# "Ref. [7]", "references [3, 4]": the word itself goes with the marker
REFERENCE_WORD = re.compile(r"\b(?:Refs?\.|[Rr]eferences?)\s*$")
SENTENCE_STARTING_FILLER = re.compile(r"^[\s\"“‘'(]*$")


def _group_markers(text: str, markers: list[Marker]) -> list[tuple[int, int, bool]]:
    """Adjacent markers joined only by brackets and connectors ("[3], [7]", "[3] and [7]", "Olsen, 2019;
    Lind, 2018") are one citation group: (start, end, whether any holds author names)."""
    groups: list[list] = []
    for m in markers:
        names = re.search(r"[A-Za-z]{2}", text[m.start:m.end]) is not None
        if groups and re.fullmatch(r"[\s\])]*(?:[,;]|,?\s*(?:and|or|&))?[\s\[(]*", text[groups[-1][1]:m.start]):
            groups[-1][1] = m.end
            groups[-1][2] = groups[-1][2] or names
        else:
            groups.append([m.start, m.end, names])
    return [tuple(g) for g in groups]


# Stage 04's own "prior work" carries this invisible separator instead of its space until the sentence is tidied,
# so it can be told from the author's words ("Recent work on berth allocation reports ...", "prior work shows")
SUBSTITUTED = "prior\u2063work"
PRIOR_WORK = re.compile("\\bprior[ \u2063]work\\b", re.I)


def clean_sentence(text: str, markers: list[Marker]) -> str:
    """The sentence without citation markers (the rule is in the README)."""
    return clean_sentence_marked(text, markers)[0]


def clean_sentence_marked(text: str, markers: list[Marker]) -> tuple[str, str]:
    """The sentence without citation markers, and which occurrences of "prior work" in it stage 04 put in
    place of a marker (1 for the first occurrence, joined by ``|``; empty: none), for stage 07.

    A marker that only points ("... data [1-3].", "(Smith et al., 2020)", "(see [4])") goes, with brackets
    left holding only fillers. A marker that is part of the grammar becomes the noun phrase "prior work":
    a textual citation ("Lind and Haraldson (2018) describe", "Munim et al. [2]"), a marker after a
    preposition or governing word ("given in [7]", "In [7], we", "Ref. [7]", "(reviewed in [4, 5])"), or
    one that opens the sentence ("[7] applies"). No author name and no hole is left.
    """
    return _mark_substitutions(_clean(text.replace("\u2063", " "), markers))


def _mark_substitutions(clean: str) -> tuple[str, str]:
    ordinals = [str(i) for i, m in enumerate(PRIOR_WORK.finditer(clean), start=1) if "\u2063" in m.group()]
    return clean.replace("\u2063", " "), pu.join_list(ordinals)


def _clean(text: str, markers: list[Marker]) -> str:
    """``clean_sentence_marked``'s sentence, with stage 04's own "prior work" written as ``SUBSTITUTED``."""
    out, pos = [], 0
    stack: list[int] = []  # open brackets before the current group, for "inside ( ... )" tests
    scanned = 0
    for g_start, g_end, has_names in _group_markers(text, markers):
        if g_start < pos:
            continue
        for i in range(scanned, g_start):
            ch = text[i]
            if ch in "([":
                stack.append(i)
            elif ch in ")]" and stack:
                stack.pop()
        scanned = g_start
        marker = text[g_start:g_end]
        own_brackets = marker[:1] in "[(" and marker[-1:] in "])"
        opening = re.search(r"([\[(])\s*$", text[pos:g_start])
        closing = re.match(r"\s*[\])]", text[g_end:])
        bracketed = own_brackets or bool(opening and closing)
        if own_brackets or not (opening and closing):
            opening = None
        outer = [i for i in stack if opening is None or i < pos + opening.start()]
        head_end = pos + opening.start() if opening else g_start
        after = g_end + (closing.end() if opening else 0)
        head = text[pos:head_end]
        replace_from = None  # where in ``head`` the replaced words begin (names, "Ref.")
        if has_names and not bracketed and not outer:
            # "Lind and Haraldson (2018) describe": the marker itself names the authors
            replace_from = len(head)
            if year := re.match(r"\s*\(\s*(?:1[89]|20)\d{2}[a-z]?\s*\)", text[after:]):
                after += year.end()
        elif not has_names and (names := (ANY_NAMES_END if YEAR_ONLY.fullmatch(marker.strip("[]() "))
                                          else STRONG_NAMES_END).search(head)):
            replace_from = names.start()  # "Munim et al. [2]", "Olsen and Tran (2019)"
        else:
            filler = re.search(r",?\s*(?:e\.g\.|i\.e\.|cf\.)\s*,?\s*$", head)  # "see, e.g., [7]"
            trimmed = head[:filler.start()] if filler else head
            word = re.search(r"([A-Za-z][A-Za-z.]*)\s*,?\s*$", trimmed)  # "translation in , [4]": a stray comma
            enclosed_inner = text[outer[-1] + 1:head_end] if outer else None
            if enclosed_inner is not None and re.fullmatch(FILLER, _without_markers(enclosed_inner, markers,
                                                                                    outer[-1] + 1)) \
                    and re.match(r"[\s\])]*[,;]?\s*[\])]", text[after:]):
                pass  # "(see [4])": the brackets held nothing else and go too
            elif ref_word := REFERENCE_WORD.search(head):
                replace_from = ref_word.start()  # "Ref. [7]" -> "prior work"
            elif word and word.group(1).lower().rstrip(".") in GOVERNING \
                    and not re.fullmatch(r"[A-Za-z]{4,}\.", word.group(1)):
                # (a word of four letters or more and a full stop ends the sentence the marker closes: a note's
                # mark after it, "… the asylum followed.³", governs nothing)
                replace_from = word.end(1) if not filler else len(trimmed)
            elif SENTENCE_STARTING_FILLER.match(head) and not out and not enclosed_inner \
                    and re.match(r"[\s\])]*(?:[,;]\s*)?[A-Za-z]", text[after:]):
                replace_from = len(head)  # "[7] applies ...": the marker is the subject
            elif re.search(r"[,;:]\s*$", head) and (verb := re.match(r"\s+([a-z]+)\b", text[after:])) \
                    and _looks_like_verb(verb.group(1)):
                replace_from = len(head)  # "For example, [22] aggregates ...": the subject of the clause
        if replace_from is None:
            if not outer and (filler := re.search(r",?\s*(?:e\.g\.|cf\.)\s*,?\s*$", head)):
                head = head[:filler.start()] + " "  # "... the plasma, e.g. [7]." -> "... the plasma."
            out.append(head + text[head_end:g_start])
            pos = g_end
            continue
        phrase = SUBSTITUTED
        if has_names or replace_from < len(head):  # the authors were the subject: "Munim et al. [2] argue"
            if (verb := re.match(r"\s+([a-z]+)\b", text[after:])) and singular_verb(verb.group(1)) != verb.group(1):
                phrase += " " + singular_verb(verb.group(1))
                after += verb.end()
        out.append(head[:replace_from].rstrip() + (" " if head[:replace_from].strip() else "") + phrase)
        pos = after
    out.append(text[pos:])
    clean = "".join(out)
    prev = None
    while prev != clean:  # brackets left with nothing but fillers inside go
        prev = clean
        clean = re.sub(rf"\s*\[{FILLER}\]", "", clean)
        clean = re.sub(rf"\s*\({FILLER}\)", "", clean)
    clean = re.sub(r"\s+([,.;:!?)\]])", r"\1", clean)
    clean = re.sub(r"([(\[])\s+", r"\1", clean)
    clean = re.sub(r"[,;]\s*([.;:)\]])", r"\1", clean)
    clean = re.sub(r",(?:\s*,)+", ",", clean)
    clean = re.sub(r"(?<!\.)\.\.(?!\.)", ".", clean)
    # "from [11, 13], and [20]" -> one "prior work"; stage 04's if either was
    clean = re.sub(r"\bprior[ \u2063]work(?:(?:,| and| or)\s+prior[ \u2063]work)+\b",
                   lambda m: SUBSTITUTED if "\u2063" in m.group() else "prior work", clean)
    clean = re.sub(r"\s{2,}", " ", clean).strip()
    if m := re.match(f"^([\"“‘'(]*){SUBSTITUTED}", clean):
        clean = m.group(1) + "P" + clean[m.end(1) + 1:]
        # "Lind and Haraldson describe" -> "Prior work describes": the subject is now singular
        clean = re.sub(f"^([\"“‘'(]*P{SUBSTITUTED[1:]}) (\\w+)",
                       lambda v: v.group(1) + " " + singular_verb(v.group(2)), clean)
    return clean


NOT_VERBS = {"as", "this", "thus", "its", "us", "his", "less", "unless", "whereas", "across", "besides", "perhaps",
             "alias", "bias", "basis", "analysis", "gas", "yes", "was", "is", "has", "does", "needed", "based", "used",
             "called", "related", "proposed", "mentioned", "cited", "detailed", "discussed", "described", "listed"}


def _looks_like_verb(word: str) -> bool:
    """'aggregates', 'applies', 'showed', 'show': a finite verb right after a marker makes it a subject."""
    if word in NOT_VERBS or word.endswith(("ous", "ss", "ness", "ics")):
        return word in ("was", "is", "has", "does")
    return word.endswith(("s", "ed")) or word in PLURAL_VERBS or word in IRREGULAR or word in OTHER_VERBS


# auxiliaries, adverbs that open a predicate, and irregular past forms: "However, [7] did not find", "[7] gave"
OTHER_VERBS = {"did", "do", "can", "could", "will", "would", "may", "might", "should", "must", "also", "first",
               "further", "recently", "then", "later", "independently", "successfully", "previously", "found", "gave",
               "made", "took", "saw", "wrote", "built", "led", "held", "brought", "began", "chose", "drew", "knew",
               "thought", "showed", "shown", "put", "set", "had", "were", "are", "have"}


def _without_markers(inner: str, markers: list[Marker], offset: int) -> str:
    """``inner`` (text starting at ``offset``) with the citation markers inside it cut out."""
    pieces, pos = [], 0
    for m in markers:
        s, e = m.start - offset, m.end - offset
        if e <= 0 or s >= len(inner):
            continue
        pieces.append(inner[pos:max(s, pos)])
        pos = max(pos, e)
    pieces.append(inner[pos:])
    return re.sub(r"[\[\]()]", " ", "".join(pieces))


IRREGULAR = {"have": "has", "are": "is", "were": "was", "do": "does", "go": "goes"}
PLURAL_VERBS = {"describe", "argue", "show", "find", "propose", "report", "note", "suggest", "demonstrate", "present",
                "discuss", "introduce", "develop", "use", "apply", "study", "examine", "investigate", "compare",
                "analyse", "analyze", "evaluate", "review", "highlight", "emphasise", "emphasize", "observe", "conclude",
                "claim", "identify", "measure", "estimate", "provide", "define", "reach", "focus", "address", "extend",
                "conjecture", "prove", "obtain", "consider", "derive", "construct", "give", "establish", "suggest",
                "point", "state", "predict", "decide", "explore", "employ", "adopt", "assume", "model", "treat",
                "demonstrate", "generalize", "generalise", "introduce", "reveal", "indicate", "compute", "calculate"}


def singular_verb(word: str) -> str:
    """'describe' -> 'describes', 'have' -> 'has', 'study' -> 'studies'; other words unchanged."""
    lower = word.lower()
    if lower in IRREGULAR:
        return IRREGULAR[lower]
    if lower not in PLURAL_VERBS:
        return word
    if lower.endswith("y"):
        return word[:-1] + "ies"
    if lower.endswith(("s", "sh", "ch", "x", "z")):
        return word + "es"
    return word + "s"


def paper_rows(paper_id: str, paper: Paper, config: Config, deadline: float = float("inf")) -> tuple[list[dict], int]:
    """The sentence rows of one paper, and how many citing sentences had no resolvable reference."""
    rows, unlinked = [], 0
    for p_no, par in enumerate(paper.paragraphs, start=1):
        p_no = par.number or p_no
        if not par.markers and not config.all_sentences:
            continue  # nothing cites here: no need to pay for sentence splitting
        if time.monotonic() > deadline:
            raise PaperError(f"still unfinished after {config.max_seconds_per_paper:g} s (--max-seconds-per-paper)")
        starts = [m.start for m in par.markers]
        for s_no, (start, end) in enumerate(split_sentences(par), start=1):
            lo, hi = bisect.bisect_left(starts, start), bisect.bisect_left(starts, end)
            inside = [Marker(m.start - start, m.end - start, m.keys) for m in par.markers[lo:hi]]
            keys = list(dict.fromkeys(k for m in inside for k in m.keys))
            if not keys and not config.all_sentences:
                if inside:
                    unlinked += 1  # it cites, but no marker resolves to a reference
                continue
            sentence = par.text[start:end]
            clean, substituted = clean_sentence_marked(sentence, inside)
            rows.append({"paper_id": paper_id, "sentence_id": f"{paper_id}:{p_no}.{s_no}", "section": par.section,
                         "sentence": squash(sentence), "sentence_clean": clean, "ref_keys": pu.join_list(keys),
                         "clean_substitutions": substituted})
    return rows, unlinked


# ---------------------------------------------------------------------------
# Inputs: one XML file per paper, or JSONL records
# ---------------------------------------------------------------------------

def paper_id_of(path: Path) -> str:
    name = path.name
    for suffix in (".cermxml", ".tei.xml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


@dataclass
class Item:
    """One paper to convert: its id, where it came from (for messages), and its bytes (or why none)."""
    paper_id: str
    source: str
    data: bytes = b""
    error: str = ""
    record: dict | None = None


def xml_items(input_dir: Path, config: Config):
    """Stage 03's files, each checked against the size limit before it is read."""
    files = sorted(list(input_dir.glob("*.cermxml")) + list(input_dir.glob("*.tei.xml")))
    if not files:
        raise SystemExit(f"error: no *.cermxml or *.tei.xml in {input_dir}: run stage 03 first")
    ids = [paper_id_of(f) for f in files]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise SystemExit(f"error: {input_dir} holds both a .cermxml and a .tei.xml for {', '.join(dup)}; keep one")
    limit = config.max_file_mb * 1e6
    for path, paper_id in zip(files, ids):
        try:
            size = path.stat().st_size
            if size > limit:
                yield Item(paper_id, path.name, error=f"{size / 1e6:.3g} MB, over the {config.max_file_mb:g} MB "
                                                       "limit (--max-file-mb)")
            else:
                yield Item(paper_id, path.name, path.read_bytes())
        except OSError as exc:
            yield Item(paper_id, path.name, error=f"unreadable: {exc}")


def json_items(input_path: Path, config: Config):
    """One item per line of every *.jsonl / *.jsonl.gz (streamed: a dump of any size fits in memory)."""
    files = [input_path] if input_path.is_file() else sorted(
        list(input_path.glob("*.jsonl")) + list(input_path.glob("*.jsonl.gz")))
    if not files:
        raise SystemExit(f"error: no *.jsonl or *.jsonl.gz in {input_path} (--input-format {config.input_format})")
    limit = config.max_file_mb * 1e6
    for path in files:
        opener = gzip.open if path.name.endswith(".gz") else open
        try:
            with opener(path, "rb") as fh:
                for n, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    source = f"{path.name}:{n}"
                    if len(line) > limit:
                        yield Item(f"{path.name}:{n}", source, error=f"record of {len(line) / 1e6:.3g} MB, over the "
                                                                     f"{config.max_file_mb:g} MB limit (--max-file-mb)")
                        continue
                    try:
                        record = json.loads(line)
                    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                        yield Item(f"{path.name}:{n}", source, error=f"not valid JSON: {exc}")
                        continue
                    raw_id = str(record.get("paper_id") or "") if isinstance(record, dict) else ""
                    try:
                        paper_id = pu.paper_id_from_arxiv_id(raw_id)
                    except ValueError:
                        yield Item(f"{path.name}:{n}", source, error=f"no usable paper_id ({raw_id[:40]!r})")
                        continue
                    yield Item(paper_id, source, line, record=record)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            yield Item(f"{path.name}:end", path.name, error=f"file cut short or unreadable: {exc}")


def convert(item: Item, config: Config, deadline: float) -> Paper:
    """Parse one item in its format; raises PaperError with the reason."""
    if config.input_format == "xml":
        return read_paper(item.data, config)
    return JSON_READERS[config.input_format](item.record, config)


def convert_task(paper_id: str, data: bytes, record: dict | None, fields: dict) -> dict:
    """One paper, as a task (run in this process, a pool worker or a Ray worker): its sentence rows and references,
    or ``{"error": reason}``. Arguments and result are plain values, so they travel to any worker."""
    config = Config(**fields)
    deadline = time.monotonic() + config.max_seconds_per_paper
    try:
        paper = convert(Item(paper_id, paper_id, data, record=record), config, deadline)
        if time.monotonic() > deadline:
            raise PaperError(f"still unfinished after {config.max_seconds_per_paper:g} s (--max-seconds-per-paper)")
        rows, unlinked = paper_rows(paper_id, paper, config, deadline)
    except (PaperError, OSError) as exc:
        return {"error": str(exc)}
    for ref in paper.references:
        ref["paper_id"] = paper_id
    return {"rows": rows, "unlinked": unlinked, "references": paper.references, "dangling": paper.dangling,
            "unresolved": paper.unresolved_markers}


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Convert every changed paper; returns the summary."""
    started_wall = time.time()
    log = pu.setup_logging(config.verbose)
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    if config.input_format == "xml" and not input_dir.is_dir():
        raise SystemExit(f"error: input folder {input_dir} not found: run stage 03 first (or pass --input-dir)")
    if config.input_format != "xml" and not input_dir.exists():
        raise SystemExit(f"error: {input_dir} not found (--input-dir: a JSONL file or a folder of them)")
    items = xml_items(input_dir, config) if config.input_format == "xml" else json_items(input_dir, config)
    first = next(items, None)  # raises SystemExit before anything is written when there is no input file
    if first is None:
        raise SystemExit(f"error: no records in {input_dir}")
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / ".manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    settings = f"{PARSER_VERSION}:{config.input_format}:{config.include_captions}:{config.all_sentences}"

    summary = {"papers_in": 0, "converted": 0, "unchanged": 0, "failed": {}, "sentences": 0,
               "references": 0, "dangling_rids": 0, "unresolved_markers": 0,
               "citing_sentences_without_reference": 0,
               "papers_without_citing_sentences": []}
    started = time.perf_counter()
    seen: dict[str, None] = {}  # paper ids in input order
    order: dict[str, int] = {}  # each failed item's place in the input: `failed` lists them in it, whatever the executor
    queued: dict[str, tuple[str, str, int]] = {}  # paper_id -> (source, digest, place) of the papers sent to a task
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    bar = tqdm(desc="papers to csv", unit="paper")

    def fail(item: Item, reason: str) -> None:
        summary["failed"][item.source] = reason
        log.warning("%s: %s; skipped", item.source, reason)
        # a paper that fails now keeps nothing from an earlier run: stage 05 must not merge stale rows
        for suffix in (".sentences.csv", ".references.csv"):
            try:
                pu.safe_child(out, item.paper_id + suffix).unlink(missing_ok=True)
            except ValueError:
                pass  # an id that is no file name never had CSVs
        manifest.pop(item.paper_id, None)

    def tasks():
        """The papers to convert, as tasks; bad, repeated and unchanged ones are counted here and not sent."""
        for place, item in enumerate(_chain(first, items)):
            summary["papers_in"] += 1
            if item.error:
                order.setdefault(item.source, place)
                fail(item, item.error)
                bar.update(1)
                continue
            if item.paper_id in seen:
                order.setdefault(item.source, place)
                summary["failed"][item.source] = f"paper_id {item.paper_id} seen before in this input; skipped"
                log.warning("%s: paper_id %s seen before in this input; skipped", item.source, item.paper_id)
                bar.update(1)
                continue
            seen[item.paper_id] = None
            digest = hashlib.sha256(item.data + settings.encode()).hexdigest()
            s_path, r_path = out / f"{item.paper_id}.sentences.csv", out / f"{item.paper_id}.references.csv"
            if not config.force and manifest.get(item.paper_id, {}).get("sha256") == digest and s_path.exists() \
                    and r_path.exists():
                summary["unchanged"] += 1
                summary["sentences"] += manifest[item.paper_id]["sentences"]
                summary["references"] += manifest[item.paper_id]["references"]
                bar.update(1)
                continue
            queued[item.paper_id] = (item.source, digest, place)
            yield item.paper_id, (item.paper_id, item.data if config.input_format == "xml" else b"", item.record,
                                  fields)

    todo = tasks()
    head = next(todo, None)  # Ray is started only when a paper needs converting
    if head is not None:
        local = "inline" if config.workers <= 1 else "local"
        with pu.TaskRunner(local if config.executor == "local" else "ray", config.workers, config.ray_address,
                           chunk=config.task_chunk) as runner, pu.BackgroundWrites() as writes:
            for paper_id, result, task_error in runner.run(convert_task, _chain(head, todo)):
                source, digest, place = queued.pop(paper_id)
                bar.update(1)
                if task_error or "error" in result:  # a task that raised or whose worker died counts as failed
                    order.setdefault(source, place)
                    fail(Item(paper_id, source), task_error or result["error"])
                    continue
                rows, references = result["rows"], result["references"]
                summary["citing_sentences_without_reference"] += result["unlinked"]
                for key in dict.fromkeys(result["dangling"]):
                    log.warning("%s: citation points to rid %r, which names no reference; dropped", source, key)
                summary["dangling_rids"] += len(result["dangling"])
                summary["unresolved_markers"] += result["unresolved"]
                # written by the writer threads: the disk's fsync does not hold up the next paper
                writes.submit(pu.atomic_write_csv, out / f"{paper_id}.sentences.csv", rows, SENTENCE_COLUMNS)
                writes.submit(pu.atomic_write_csv, out / f"{paper_id}.references.csv", references,
                              REFERENCE_COLUMNS)
                if not rows:
                    summary["papers_without_citing_sentences"].append(paper_id)
                manifest[paper_id] = {"sha256": digest, "sentences": len(rows), "references": len(references)}
                summary["converted"] += 1
                if summary["converted"] % 50 == 0:  # an interrupted run keeps most of what it did
                    writes.wait()  # the manifest never lists a paper whose CSVs are not on disk yet
                    pu.atomic_write_json(manifest_path, manifest)
                summary["sentences"] += len(rows)
                summary["references"] += len(references)
    bar.close()
    summary["failed"] = dict(sorted(summary["failed"].items(), key=lambda kv: order.get(kv[0], len(order))))
    position = {pid: n for n, pid in enumerate(seen)}
    summary["papers_without_citing_sentences"].sort(key=position.__getitem__)
    # Drop the CSVs of papers no longer in the input (or failed now), so the output reflects it exactly.
    for csv_path in list(out.glob("*.sentences.csv")) + list(out.glob("*.references.csv")):
        if csv_path.name.rsplit(".", 2)[0] not in seen or csv_path.name.rsplit(".", 2)[0] not in manifest:
            csv_path.unlink()
    manifest = {k: manifest[k] for k in seen if k in manifest}  # input order, whatever the executor
    pu.atomic_write_json(manifest_path, manifest)
    elapsed = time.perf_counter() - started
    summary["seconds"] = round(elapsed, 3)
    summary["papers_per_second"] = round(summary["converted"] / elapsed, 1) if elapsed and summary["converted"] else 0.0
    pu.print_summary("stage 04: papers to CSV", summary)
    pu.write_run_json(out, "04_xml_to_csv", config, [input_dir], summary, started_wall)
    if summary["failed"] and not summary["converted"] and not summary["unchanged"]:
        raise SystemExit(f"error: all {len(summary['failed'])} input papers failed (reasons above); nothing written")
    return summary


def _chain(first, rest):
    yield first
    yield from rest


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
