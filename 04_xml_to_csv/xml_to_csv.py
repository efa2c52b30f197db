"""Stage 04: every sentence that cites something, and the references it cites, from XML to CSV.

    python 04_xml_to_csv/xml_to_csv.py
    python 04_xml_to_csv/xml_to_csv.py --include-captions --all-sentences

Reads stage 03's ``*.cermxml`` (JATS: CERMINE or the builtin backend) and
``*.tei.xml`` (GROBID TEI) and writes, per paper, ``<paper_id>.sentences.csv``
and ``<paper_id>.references.csv``. Sentences are split with syntok, a proven
rule-based segmenter, plus the fixes citation markers need; ``sentence_clean``
is the sentence with every citation marker removed (rule in the README).
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import syntok.segmenter as syntok_segmenter  # noqa: E402
from lxml import etree  # noqa: E402
from tqdm import tqdm  # noqa: E402

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
PARSER_VERSION = "3"  # bump when the output for the same XML changes, to invalidate the cache


@dataclass
class Config:
    """Extract citing sentences and their references from JATS / TEI XML."""

    input_dir: Path = HERE.parent / "03_cermine_extract" / "output"
    """Stage 03's output (*.cermxml, *.tei.xml)."""
    output_dir: Path = HERE / "output"
    """Where the per-paper CSVs go."""
    include_captions: bool = False
    """Also take sentences from figure and table captions."""
    all_sentences: bool = False
    """Write every body sentence, not only those that cite something."""
    force: bool = False
    """Redo every paper, even those whose XML has not changed."""
    verbose: bool = False
    """Debug logging."""


SENTENCE_COLUMNS = ["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys"]
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


def _append_text(par: Paragraph, text: str) -> None:
    if par.markers and par.markers[-1].end == len(par.text):
        text = re.sub(r"^\s+(?=[\]),;.])", "", text)  # "[<xref>1</xref>\n ]" -> "[1]", "2019 ;" -> "2019;"
    if not par.text or par.text.endswith(" "):
        text = text.lstrip()
    par.text += text


def _append_marker(par: Paragraph, text: str, keys: list[str]) -> None:
    par.text = re.sub(r"(?<=[\[(])\s+$", "", par.text)  # "[\n <xref>" -> "["
    if par.text and not par.text.endswith((" ", "[", "(")) and re.match(r"\w", text) and par.text[-1].isalnum():
        par.text += " "
    start = len(par.text)
    par.text += text
    par.markers.append(Marker(start, len(par.text), keys))


def walk_paragraph(p: etree._Element, section: str, is_marker, keys_of, vocabulary: set[str],
                   skip) -> Paragraph:
    """Flatten one <p> into text and marker spans; ``is_marker(el)`` says which elements are citations."""
    par = Paragraph(section)

    def visit(el: etree._Element) -> None:
        if el.text:
            _append_text(par, clean_text(el.text, vocabulary))
        for child in el:
            if not isinstance(child.tag, str) or skip(child):
                pass
            elif is_marker(child):
                _append_marker(par, squash(clean_text("".join(child.itertext()), vocabulary)), keys_of(child))
            else:
                visit(child)
            if child.tail:
                _append_text(par, clean_text(child.tail, vocabulary))

    visit(p)
    par.text = par.text.rstrip()
    return par


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


def expand_range_keys(marker_text: str, keys: list[str], by_number: dict[int, str]) -> list[str]:
    """'[1-3]' whose rid lists only ref1 and ref3 -> ref1 ref2 ref3, by the references' printed numbers."""
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
    expanded = [by_number[n] for n in numbers if n in by_number]
    return list(dict.fromkeys(keys + [k for k in expanded if k not in keys])) if expanded else keys


def read_jats(root: etree._Element, config: Config) -> Paper:
    vocabulary = _vocabulary(root)
    references = [jats_reference(ref, vocabulary) for ref in root.iterfind(".//back//ref-list/ref")]
    known = {r["ref_key"] for r in references}
    by_number = {n: r["ref_key"] for r in references if (n := r.pop("_number", None)) is not None}
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
        keys = expand_range_keys("".join(el.itertext()), keys, by_number)
        for key in keys:
            if key not in known:
                paper.dangling.append(key)
        return [k for k in keys if k in known]

    for p in body.iter("p"):
        if any(skip(a) for a in p.iterancestors()) or any(a.tag == "p" for a in p.iterancestors()):
            continue
        sec = next((a for a in p.iterancestors("sec")), None)
        title = squash("".join(sec.find("title").itertext())) if sec is not None and sec.find("title") is not None else ""
        paper.paragraphs.append(walk_paragraph(p, title, is_marker, keys_of, vocabulary, skip))
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

    for p in body.iter(f"{TEI}p"):
        if any(skip(a) for a in p.iterancestors()):
            continue
        div = next((a for a in p.iterancestors(f"{TEI}div")), None)
        head = div.find(f"{TEI}head") if div is not None else None
        paragraph = walk_paragraph(p, _text(head), is_marker, keys_of, vocabulary, skip)
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


def read_paper(path: Path, config: Config) -> Paper:
    """Parse one XML file safely (no entities, no network); raises PaperError with the reason."""
    data = path.read_bytes()
    if not data.strip():
        raise PaperError("empty file")
    try:
        root = etree.fromstring(data, SAFE_PARSER)
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
# Sentences
# ---------------------------------------------------------------------------

ABBREVIATION_END = re.compile(
    r"\b(?:Eqs?|Figs?|Sec|Secs|Ref|Refs|Tab|Tabs|Tbl|No|Nos|approx|cf|resp|vs|al|ca|Ch|Vol|pp|Suppl|Dr|Prof|"
    r"Inc|Ltd|Co|[A-Z]|i\.e|e\.g)\.\s*$")


def split_sentences(par: Paragraph) -> list[tuple[int, int]]:
    """Sentence spans of a paragraph: syntok, then citation-aware fixes."""
    text = par.text
    spans: list[list[int]] = []
    for paragraph in syntok_segmenter.analyze(text):
        for sentence in paragraph:
            start = sentence[0].offset
            last = sentence[-1]
            spans.append([start, last.offset + len(last.value)])
    if not spans:
        return []
    # 1. A boundary inside a marker or inside open brackets is no boundary ("(Smith et al.,\n2020)").
    fixed = [spans[0]]
    for start, end in spans[1:]:
        prev = fixed[-1]
        inside_marker = any(m.start < start < m.end for m in par.markers)
        chunk = text[prev[0]:prev[1]]
        unbalanced = chunk.count("(") > chunk.count(")") or chunk.count("[") > chunk.count("]")
        # syntok knows most abbreviations, not all of science's ("Eq. 3"); a "sentence"
        # that starts in lower case or with a digit right after one is no sentence
        abbreviation = ABBREVIATION_END.search(chunk) and re.match(r"\s*[a-z0-9(]", text[start:end])
        if inside_marker or unbalanced or abbreviation:
            prev[1] = end
        else:
            fixed.append([start, end])
    # 2. A marker opening a sentence closes the previous one: "... nations. [1] Next" / "... al. [2]. Next".
    for i in range(1, len(fixed)):
        start, end = fixed[i]
        m = re.match(r"\s*[\[(]?\s*", text[start:end])
        first = next((mk for mk in par.markers if mk.start == start + m.end()), None)
        if first is None:
            continue
        marker_text = text[first.start:first.end]
        bracketed = bool(m.group().strip()) or marker_text[:1] in "[(" or not re.search(r"[A-Za-z]{2}", marker_text)
        if not bracketed:
            continue  # "Lind and Haraldson (2018) describe ...": a textual citation is the new sentence's subject
        tail = re.match(r"[\])]?[.;,]?\s*", text[first.end:end])
        cut = first.end + tail.end()
        fixed[i - 1][1] = cut if text[cut - 1:cut] != " " else cut - 1
        fixed[i][0] = cut
    return [(s, e) for s, e in fixed if text[s:e].strip()]


FILLER = r"(?:see(?:\s+also)?|e\.g\.,?|cf\.|also|for\s+example|for\s+a\s+review|and|or|,|;|\s)*"
_NAME = r"[A-Z][A-Za-z'’\-]+"
# "Munim et al. [2]", "Lind and Haraldson (2018)": names that make a marker a textual citation
STRONG_NAMES_END = re.compile(rf"\b{_NAME}(?:\s+et\s+al\.?|\s+(?:and|&)\s+{_NAME})\s*$")
ANY_NAMES_END = re.compile(rf"\b{_NAME}(?:\s+et\s+al\.?|\s+(?:and|&)\s+{_NAME})?\s*$")
YEAR_ONLY = re.compile(r"(?:1[89]|20)\d{2}[a-z]?")


def clean_sentence(text: str, markers: list[Marker]) -> str:
    """The sentence without citation markers (the rule is in the README).

    Parenthetical markers go, with brackets left holding only fillers ("[1-3]",
    "(Smith et al., 2020)", "(see [4])"); brackets holding other words stay
    ("(reviewed in [4, 5])" -> "(reviewed in)"). A textual citation, where the
    authors are part of the sentence ("Lind and Haraldson (2018) describe",
    "as reviewed by Munim et al. [2]"), becomes "prior work", so the sentence
    stays fluent and no author name is left.
    """
    out, pos = [], 0
    for m in markers:
        if m.start < pos:
            continue
        before, marker = text[pos:m.start], text[m.start:m.end]
        has_names = re.search(r"[A-Za-z]{2}", marker) is not None
        inside_brackets = re.search(r"[\[(][^\])]*$", "".join(out) + before) is not None or marker[:1] in "[("
        if has_names and not inside_brackets:  # the marker is "Lind and Haraldson (2018)" itself
            out.append(before + "prior work")
            pos = m.end
            if year := re.match(r"\s*\(\s*(?:1[89]|20)\d{2}[a-z]?\s*\)", text[pos:]):
                pos += year.end()
            continue
        opening = re.search(r"([\[(])\s*$", before)
        closing = re.match(r"\s*[\])]", text[m.end:])
        if opening and closing and not has_names:
            head = before[:opening.start()]
            names = (ANY_NAMES_END if YEAR_ONLY.fullmatch(marker.strip()) else STRONG_NAMES_END).search(head)
            if names:
                out.append(head[:names.start()] + "prior work")
                pos = m.end + closing.end()
                continue
        out.append(before)
        pos = m.end
    out.append(text[pos:])
    clean = "".join(out)
    prev = None
    while prev != clean:  # brackets left with nothing but fillers inside go
        prev = clean
        clean = re.sub(rf"\s*\[{FILLER}\]", "", clean)
        clean = re.sub(rf"\s*\({FILLER}\)", "", clean)
    clean = re.sub(r"\s+([,.;:!?)\]])", r"\1", clean)
    clean = re.sub(r"([(\[])\s+", r"\1", clean)
    clean = re.sub(r",\s*([.;:])", r"\1", clean)
    clean = re.sub(r"(?<!\.)\.\.(?!\.)", ".", clean)
    clean = re.sub(r"\s{2,}", " ", clean).strip()
    if clean.startswith("prior work"):
        clean = "P" + clean[1:]
        # "Lind and Haraldson describe" -> "Prior work describes": the subject is now singular
        clean = re.sub(r"^Prior work (\w+)", lambda m: "Prior work " + singular_verb(m.group(1)), clean)
    return clean


IRREGULAR = {"have": "has", "are": "is", "were": "was", "do": "does", "go": "goes"}
PLURAL_VERBS = {"describe", "argue", "show", "find", "propose", "report", "note", "suggest", "demonstrate", "present",
                "discuss", "introduce", "develop", "use", "apply", "study", "examine", "investigate", "compare",
                "analyse", "analyze", "evaluate", "review", "highlight", "emphasise", "emphasize", "observe", "conclude",
                "claim", "identify", "measure", "estimate", "provide", "define", "reach", "focus", "address", "extend"}


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


def paper_rows(paper_id: str, paper: Paper, config: Config) -> tuple[list[dict], int]:
    """The sentence rows of one paper, and how many citing sentences had no resolvable reference."""
    rows, unlinked = [], [0]
    for p_no, par in enumerate(paper.paragraphs, start=1):
        if not par.markers and not config.all_sentences:
            continue  # nothing cites here: no need to pay for sentence splitting
        for s_no, (start, end) in enumerate(split_sentences(par), start=1):
            inside = [Marker(m.start - start, m.end - start, m.keys) for m in par.markers
                      if start <= m.start < end]
            keys = list(dict.fromkeys(k for m in inside for k in m.keys))
            if not keys and not config.all_sentences:
                if inside:
                    unlinked[0] += 1  # it cites, but no marker resolves to a reference
                continue
            sentence = par.text[start:end]
            rows.append({"paper_id": paper_id, "sentence_id": f"{paper_id}:{p_no}.{s_no}", "section": par.section,
                         "sentence": squash(sentence), "sentence_clean": clean_sentence(sentence, inside),
                         "ref_keys": pu.join_list(keys)})
    return rows, unlinked[0]


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def paper_id_of(path: Path) -> str:
    name = path.name
    for suffix in (".cermxml", ".tei.xml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def main(config: Config) -> dict:
    """Convert every changed XML file; returns the summary."""
    log = pu.setup_logging(config.verbose)
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    if not input_dir.is_dir():
        raise SystemExit(f"error: input folder {input_dir} not found: run stage 03 first (or pass --input-dir)")
    files = sorted(list(input_dir.glob("*.cermxml")) + list(input_dir.glob("*.tei.xml")))
    if not files:
        raise SystemExit(f"error: no *.cermxml or *.tei.xml in {input_dir}: run stage 03 first")
    ids = [paper_id_of(f) for f in files]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise SystemExit(f"error: {input_dir} holds both a .cermxml and a .tei.xml for {', '.join(dup)}; keep one")
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / ".manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    settings = f"{PARSER_VERSION}:{config.include_captions}:{config.all_sentences}"

    summary = {"papers_in": len(files), "converted": 0, "unchanged": 0, "failed": {}, "sentences": 0,
               "references": 0, "dangling_rids": 0, "unresolved_markers": 0,
               "citing_sentences_without_reference": 0,
               "papers_without_citing_sentences": []}
    started = time.perf_counter()
    for path, paper_id in tqdm(list(zip(files, ids)), desc="xml to csv", unit="paper"):
        digest = hashlib.sha256(path.read_bytes() + settings.encode()).hexdigest()
        s_path, r_path = out / f"{paper_id}.sentences.csv", out / f"{paper_id}.references.csv"
        if not config.force and manifest.get(paper_id, {}).get("sha256") == digest and s_path.exists() and r_path.exists():
            summary["unchanged"] += 1
            summary["sentences"] += manifest[paper_id]["sentences"]
            summary["references"] += manifest[paper_id]["references"]
            continue
        try:
            paper = read_paper(path, config)
        except (PaperError, OSError) as exc:
            summary["failed"][path.name] = str(exc)
            log.warning("%s: %s; skipped", path.name, exc)
            continue
        rows, unlinked = paper_rows(paper_id, paper, config)
        summary["citing_sentences_without_reference"] += unlinked
        for key in dict.fromkeys(paper.dangling):
            log.warning("%s: citation points to rid %r, which names no reference; dropped", path.name, key)
        summary["dangling_rids"] += len(paper.dangling)
        summary["unresolved_markers"] += paper.unresolved_markers
        pu.atomic_write_csv(s_path, rows, SENTENCE_COLUMNS)
        for ref in paper.references:
            ref["paper_id"] = paper_id
        pu.atomic_write_csv(r_path, paper.references, REFERENCE_COLUMNS)
        if not rows:
            summary["papers_without_citing_sentences"].append(paper_id)
        manifest[paper_id] = {"sha256": digest, "sentences": len(rows), "references": len(paper.references)}
        summary["converted"] += 1
        if summary["converted"] % 50 == 0:  # an interrupted run keeps most of what it did
            pu.atomic_write_json(manifest_path, manifest)
        summary["sentences"] += len(rows)
        summary["references"] += len(paper.references)
    # Drop the CSVs of papers no longer in the input, so the output reflects it exactly.
    current = set(ids)
    for csv_path in list(out.glob("*.sentences.csv")) + list(out.glob("*.references.csv")):
        if csv_path.name.rsplit(".", 2)[0] not in current:
            csv_path.unlink()
    manifest = {k: v for k, v in manifest.items() if k in current}
    pu.atomic_write_json(manifest_path, manifest)
    elapsed = time.perf_counter() - started
    summary["seconds"] = round(elapsed, 3)
    summary["papers_per_second"] = round(summary["converted"] / elapsed, 1) if elapsed and summary["converted"] else 0.0
    pu.print_summary("stage 04: XML to CSV", summary)
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
