"""The built-in PDF -> JATS backend of stage 03: pure Python over PDFium, no Java, no server.

Reads what LaTeX + hyperref put into arXiv PDFs before guessing from layout:
every in-text citation is a link annotation whose destination is the
reference's place in the bibliography, so linking a marker to its reference is
a lookup, not a heuristic. Where a PDF has no such links, numeric (``[3]``,
``[1-4]``, ``[2, 5]``) and author-year (``(Smith et al., 2020; Lee, 2019)``,
``Smith and Lee (2019)``) markers are found by pattern and matched by label or
by first author and year.

Writes the JATS elements CERMINE writes (``body//sec/p`` with ``xref
ref-type="bibr"``, ``back/ref-list/ref/mixed-citation`` with ``string-name``,
``article-title``, ``source``, ``year``, ``pub-id``), so stage 04 reads both
the same way. Kept in its own module (imported by ``cermine_extract.py``)
because it is the one piece of stage 03 with real parsing logic.
"""
from __future__ import annotations

import ctypes
import re
import statistics
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from lxml import etree

# ---------------------------------------------------------------------------
# Characters, lines, links
# ---------------------------------------------------------------------------

@dataclass
class Char:
    text: str
    left: float
    bottom: float
    right: float
    top: float
    size: float
    page: int = 0
    link: int = -1  # index into the page's links, or -1


@dataclass
class Line:
    page: int
    chars: list[Char]
    page_height: float
    page_width: float

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chars)

    @property
    def x0(self) -> float:
        return min(c.left for c in self.chars if not c.text.isspace())

    @property
    def x1(self) -> float:
        return max(c.right for c in self.chars if not c.text.isspace())

    @property
    def top(self) -> float:
        return max(c.top for c in self.chars if not c.text.isspace())

    @property
    def bottom(self) -> float:
        return min(c.bottom for c in self.chars if not c.text.isspace())

    @property
    def size(self) -> float:
        sizes = [round(c.size, 1) for c in self.chars if not c.text.isspace()]
        return Counter(sizes).most_common(1)[0][0] if sizes else 0.0


@dataclass
class Link:
    left: float
    bottom: float
    right: float
    top: float
    target_page: int
    target_y: float | None


@dataclass
class Reference:
    raw: str
    page: int = -1
    top: float = 0.0
    label: str = ""
    fields: dict = field(default_factory=dict)


class ExtractionError(Exception):
    """A PDF that cannot be converted; the message says why."""


def _page_links(doc: pdfium.PdfDocument, page: pdfium.PdfPage) -> list[Link]:
    """Internal GoTo links of a page with their target page and height (named destinations resolved)."""
    links: list[Link] = []
    pos = ctypes.c_int(0)
    link = pdfium_c.FPDF_LINK()
    while pdfium_c.FPDFLink_Enumerate(page.raw, ctypes.byref(pos), ctypes.byref(link)):
        dest = pdfium_c.FPDFLink_GetDest(doc.raw, link)
        if not dest:
            action = pdfium_c.FPDFLink_GetAction(link)
            if not action or pdfium_c.FPDFAction_GetType(action) != pdfium_c.PDFACTION_GOTO:
                continue  # external URLs and the like are not citations
            dest = pdfium_c.FPDFAction_GetDest(doc.raw, action)
        if not dest:
            continue
        rect = pdfium_c.FS_RECTF()
        if not pdfium_c.FPDFLink_GetAnnotRect(link, ctypes.byref(rect)):
            continue
        has_x, has_y, has_z = pdfium_c.FPDF_BOOL(), pdfium_c.FPDF_BOOL(), pdfium_c.FPDF_BOOL()
        x, y, z = pdfium_c.FS_FLOAT(), pdfium_c.FS_FLOAT(), pdfium_c.FS_FLOAT()
        pdfium_c.FPDFDest_GetLocationInPage(dest, ctypes.byref(has_x), ctypes.byref(has_y), ctypes.byref(has_z),
                                            ctypes.byref(x), ctypes.byref(y), ctypes.byref(z))
        links.append(Link(rect.left, rect.bottom, rect.right, rect.top,
                          pdfium_c.FPDFDest_GetDestPageIndex(doc.raw, dest), y.value if has_y else None))
    return links


def _page_lines(doc: pdfium.PdfDocument, index: int) -> tuple[list[Line], list[Link]]:
    """Text lines of one page (in content order, which LaTeX writes in reading order) and its links."""
    page = doc[index]
    width, height = page.get_size()
    textpage = page.get_textpage()
    links = _page_links(doc, page)
    lines: list[Line] = []
    current: list[Char] = []
    base = None
    prev_right = None
    for i in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(textpage.raw, i)
        ch = chr(code) if code else ""
        if ch in ("\r", "\n", ""):
            continue
        left, bottom, right, top = textpage.get_charbox(i)
        size = pdfium_c.FPDFText_GetFontSize(textpage.raw, i)
        if ch.isspace():
            if current and current[-1].text != " ":
                current.append(Char(" ", current[-1].right, current[-1].bottom, current[-1].right, current[-1].top,
                                    size, index))
            continue
        # A new line starts when the baseline moves by more than half a character,
        # or when the text jumps back to the left (next line, or the next column).
        if current and (abs(bottom - base) > 0.5 * max(size, 1.0) or left < prev_right - 3 * max(size, 1.0)):
            lines.append(Line(index, _strip(current), height, width))
            current = []
        if not current:
            base = bottom
        link = -1
        cx, cy = (left + right) / 2, (bottom + top) / 2
        for k, ln in enumerate(links):
            if ln.left - 0.5 <= cx <= ln.right + 0.5 and ln.bottom - 0.5 <= cy <= ln.top + 0.5:
                link = k
                break
        current.append(Char(ch, left, bottom, right, top, size, index, link))
        prev_right = right
    if current:
        lines.append(Line(index, _strip(current), height, width))
    textpage.close()
    page.close()
    return [ln for ln in lines if ln.chars], links


def _strip(chars: list[Char]) -> list[Char]:
    while chars and chars[-1].text == " ":
        chars = chars[:-1]
    while chars and chars[0].text == " ":
        chars = chars[1:]
    return chars


# ---------------------------------------------------------------------------
# Page furniture: running headers, footers, page numbers
# ---------------------------------------------------------------------------

def drop_page_furniture(pages: list[list[Line]]) -> list[list[Line]]:
    """Remove page numbers and lines repeated in the top or bottom margin of most pages."""
    def margin(line: Line) -> bool:
        return line.top > 0.92 * line.page_height or line.bottom < 0.08 * line.page_height

    def norm(text: str) -> str:
        return re.sub(r"\d+", "#", text.strip().lower())

    repeated = Counter()
    for lines in pages:
        for key in {norm(ln.text) for ln in lines if margin(ln)}:
            repeated[key] += 1
    threshold = max(2, (len(pages) + 1) // 2)
    kept_pages = []
    for lines in pages:
        kept = []
        for ln in lines:
            text = ln.text.strip()
            if margin(ln) and (re.fullmatch(r"(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?", text, re.I)
                               or (len(pages) > 1 and repeated[norm(text)] >= threshold)):
                continue
            kept.append(ln)
        kept_pages.append(kept)
    return kept_pages


# ---------------------------------------------------------------------------
# Layout: headings, paragraphs, the references section
# ---------------------------------------------------------------------------

REFERENCES_HEADING = re.compile(r"^(\d+\.?\s*)?(references|bibliography|literature cited|works cited|reference list)$", re.I)
ABSTRACT_HEADING = re.compile(r"^abstract[.:]?$", re.I)
FIRST_SECTION = re.compile(r"^(introduction|background|motivation|overview)$", re.I)
NUMBERED_HEADING = re.compile(r"^(\d+(\.\d+)*\.?|[IVX]+\.|[A-H]\.?)\s+[A-Z]")


def is_heading(line: Line, body_size: float) -> bool:
    """A short line set larger than the body text, or numbered like '2.1 Methods'."""
    text = line.text.strip()
    words = text.split()
    if not words or len(words) > 14 or text.endswith((",", ";")):
        return False
    if REFERENCES_HEADING.match(text) or ABSTRACT_HEADING.match(text):
        return True
    larger = line.size >= body_size * 1.08
    return larger and (NUMBERED_HEADING.match(text) is not None or len(words) <= 8) and not text.endswith(".")


def _column_lefts(lines: list[Line]) -> list[float]:
    counts = Counter(round(ln.x0) for ln in lines)
    return sorted(x for x, n in counts.items() if n >= 3)


def _is_indented(line: Line, lefts: list[float]) -> bool:
    x = line.x0
    if any(abs(x - m) <= 2 for m in lefts):
        return False
    return any(4 < x - m < 30 for m in lefts)


# ---------------------------------------------------------------------------
# Hyphenation across lines
# ---------------------------------------------------------------------------

def join_lines(parts: list[list[Char]], vocabulary: set[str]) -> list[Char]:
    """Join the chars of consecutive lines with a space, or with nothing where a
    word was hyphenated at the line end (decided by whether the document uses
    the joined word or the hyphenated compound elsewhere)."""
    out: list[Char] = []
    for part in parts:
        if not part:
            continue
        if out:
            last = out[-1]
            if last.text in ("-", "\x02") and len(out) > 1 and out[-2].text.isalpha() and part[0].text.islower():
                head = re.findall(r"[A-Za-z]+$", "".join(c.text for c in out[-30:-1]))
                tail = re.findall(r"^[a-z]+", "".join(c.text for c in part[:30]))
                head_w, tail_w = (head[0] if head else ""), (tail[0] if tail else "")
                compound = f"{head_w}-{tail_w}".lower()
                if compound in vocabulary and f"{head_w}{tail_w}".lower() not in vocabulary:
                    last.text = "-"
                else:
                    out.pop()
                out.extend(part)
                continue
            if last.text == "\x02":
                last.text = "-"
            out.append(Char(" ", last.right, last.bottom, last.right, last.top, last.size, last.page))
        out.extend(part)
    if out and out[-1].text == "\x02":
        out[-1].text = "-"
    return out


# ---------------------------------------------------------------------------
# References: splitting and parsing
# ---------------------------------------------------------------------------

DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.I)
ARXIV_RE = re.compile(r"\barXiv:\s*(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)", re.I)
YEAR_RE = re.compile(r"(?<![\d/.])((?:1[6-9]|20)\d{2})[a-z]?(?![\d/])")
LABEL_RE = re.compile(r"^\s*(\[[^\]]{1,12}\]|\d{1,3}\.(?=\s))\s*")
INITIAL = re.compile(r"^(?:[A-Z](?:\.-?[A-Z])*|[A-Z]\.?-[A-Z]|al|Jr|Sr|St|vs|eds?|Ed|pp|Vol|vol|No|no)$")


def _sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the '. '-separated parts of a reference, not splitting after initials or 'et al.'."""
    spans, start = [], 0
    for m in re.finditer(r"[.?!]+\s+", text):
        word = re.findall(r"[\w\-.]+$", text[start:m.start()])
        if word and (INITIAL.match(word[0].split(".")[-1] or "X") or INITIAL.match(word[0].rstrip("."))):
            continue
        spans.append((start, m.start() + 1))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def parse_reference(raw: str) -> dict:
    """Split one printed reference into fields, each with its (start, end) span in ``raw``.

    Understands the common LaTeX layouts: ``Authors. Title. Venue, vol(issue):pages, year.``
    and ``Authors (year). Title. Venue.``; DOIs and arXiv ids anywhere.
    """
    fields: dict = {"authors": []}
    label = LABEL_RE.match(raw)
    offset = label.end() if label else 0
    if label:
        fields["label"] = (label.start(1), label.end(1))
    if m := DOI_RE.search(raw):
        end = m.end(1)
        while raw[end - 1] in ".,;)]":
            end -= 1
        fields["doi"] = (m.start(1), end)
    if m := ARXIV_RE.search(raw):
        fields["arxiv"] = (m.start(1), m.end(1))
    blocked = [fields[k] for k in ("doi", "arxiv") if k in fields]
    years = [m for m in YEAR_RE.finditer(raw)
             if not any(s <= m.start() < e for s, e in blocked) and m.start() >= offset]
    paren_year = next((m for m in years if raw[m.start() - 1:m.start()] == "("), None)
    if paren_year or years:
        y = paren_year or years[-1]
        fields["year"] = (y.start(1), y.end(1))

    body = raw[offset:]
    parts = [(s + offset, e + offset) for s, e in _sentences(body)]
    if not parts:
        return fields
    a_start, a_end = parts[0]
    authors_text = raw[a_start:a_end]
    if paren_year and a_start <= paren_year.start() < a_end:  # "Smith, J. (2020)."
        a_end = paren_year.start() - 1
        authors_text = raw[a_start:a_end]
    fields["authors"] = _author_spans(authors_text.rstrip(". "), a_start)
    quoted = re.search(r"[\"“]([^\"”]{8,})[\"”]", raw[a_end:])
    if quoted:
        fields["title"] = (a_end + quoted.start(1), a_end + quoted.end(1))
        rest_start = a_end + quoted.end()
    elif len(parts) > 1:
        t_start, t_end = parts[1]
        if raw[t_start:t_end].rstrip(".").isdigit():  # "(2020)." left alone
            parts = parts[1:]
            t_start, t_end = parts[1] if len(parts) > 1 else parts[0]
        fields["title"] = (t_start, t_end - 1 if raw[t_end - 1] == "." else t_end)
        rest_start = t_end
    else:
        return fields
    venue_text = raw[rest_start:]
    m = re.match(r"\s*(?:In\s+)?", venue_text)
    v_start = rest_start + (m.end() if m else 0)
    stop = re.search(r",\s*(?=\d|pages|pp\.|vol\.|volume)|\.\s|\.$|,\s*((?:1[6-9]|20)\d{2})", raw[v_start:])
    v_end = v_start + (stop.start() if stop else len(raw) - v_start)
    venue = raw[v_start:v_end].strip()
    if venue and not DOI_RE.match(venue) and not venue.lower().startswith("doi"):
        lead = len(raw[v_start:v_end]) - len(raw[v_start:v_end].lstrip())
        fields["source"] = (v_start + lead, v_start + lead + len(venue))
    if m := re.search(r"(\d+)\s?\((\d+)\):\s?(\d+)\s?[–-]+\s?(\d+)", raw[rest_start:]):
        for name, g in (("volume", 1), ("issue", 2), ("fpage", 3), ("lpage", 4)):
            fields[name] = (rest_start + m.start(g), rest_start + m.end(g))
    elif m := re.search(r"(\d+):\s?(\d+)\s?[–-]+\s?(\d+)", raw[rest_start:]):
        for name, g in (("volume", 1), ("fpage", 2), ("lpage", 3)):
            fields[name] = (rest_start + m.start(g), rest_start + m.end(g))
    elif m := re.search(r"(?:pages|pp\.)\s*(\d+)\s?[–-]+\s?(\d+)", raw[rest_start:]):
        fields["fpage"] = (rest_start + m.start(1), rest_start + m.end(1))
        fields["lpage"] = (rest_start + m.start(2), rest_start + m.end(2))
    return fields


def _author_spans(text: str, base: int) -> list[dict]:
    """Each author's (given, surname) spans; 'N. Taylor, K. Osei, and E. Lindqvist' or 'Taylor, N., Osei, K.'."""
    authors = []
    surname_first = re.match(r"^[A-Z][\w'’\-]+,\s+[A-Z]\.", text) is not None
    if surname_first:
        pattern = re.compile(r"([A-Z][\w'’\- ]*?),\s+((?:[A-Z]\.[\s-]?)+)")
        for m in pattern.finditer(text):
            authors.append({"surname": (base + m.start(1), base + m.end(1)),
                            "given": (base + m.start(2), base + m.end(2) - (1 if m.group(2).endswith(" ") else 0))})
        return authors
    # " and " separates names like a comma does; mask it so positions stay aligned with ``text``
    masked = re.sub(r"\s+and\s+", lambda m: "," + " " * (len(m.group()) - 1), text)
    for m in re.finditer(r"[^,;&]+", masked):
        chunk = text[m.start():m.end()]
        chunk_start = m.start() + len(chunk) - len(chunk.lstrip())
        chunk = chunk.strip()
        chunk = re.sub(r"^and\s+", "", chunk)
        if not chunk or chunk in ("et al.", "et al", "and"):
            continue
        c_start = base + text.index(chunk, chunk_start)
        words = chunk.replace("~", " ").split()
        if len(words) == 1:
            authors.append({"surname": (c_start, c_start + len(chunk))})
            continue
        surname = words[-1]
        s_off = chunk.rfind(surname)
        authors.append({"given": (c_start, c_start + len(chunk[:s_off].rstrip())),
                        "surname": (c_start + s_off, c_start + s_off + len(surname))})
    return authors


# ---------------------------------------------------------------------------
# In-text markers without links
# ---------------------------------------------------------------------------

NUMERIC_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[-–,]\s*\d{1,3})*)\]")
AUTHOR = r"[A-Z][A-Za-z'’\-]+(?:\s+(?:et\s+al\.?|and\s+[A-Z][A-Za-z'’\-]+|&\s+[A-Z][A-Za-z'’\-]+))?"
PAREN_GROUP = re.compile(r"\(([^()]*?(?:1[89]|20)\d{2}[a-z]?[^()]*)\)")
TEXTUAL = re.compile(rf"({AUTHOR})\s+\(((?:1[89]|20)\d{{2}})[a-z]?\)")


def expand_numbers(spec: str) -> list[int]:
    """'1-3, 5' -> [1, 2, 3, 5]."""
    numbers: list[int] = []
    for part in re.split(r"\s*,\s*", spec):
        if m := re.fullmatch(r"(\d+)\s*[-–]\s*(\d+)", part):
            lo, hi = int(m.group(1)), int(m.group(2))
            if 0 < hi - lo < 100:
                numbers.extend(range(lo, hi + 1))
        elif part.strip().isdigit():
            numbers.append(int(part))
    return list(dict.fromkeys(numbers))


def find_markers(text: str, refs: list[Reference]) -> list[tuple[int, int, list[int]]]:
    """Citation markers in ``text`` found by pattern: (start, end, reference indices)."""
    by_label = {}
    for i, ref in enumerate(refs):
        digits = re.sub(r"\D", "", ref.label)
        if digits:
            by_label[int(digits)] = i
    by_author_year: dict[tuple[str, str], list[int]] = {}
    for i, ref in enumerate(refs):
        first = ref.fields.get("first_surname", "").lower()
        if first and ref.fields.get("year_text"):
            by_author_year.setdefault((first, ref.fields["year_text"]), []).append(i)
    found = []
    if by_label:
        for m in NUMERIC_MARKER.finditer(text):
            idx = [by_label[n] for n in expand_numbers(m.group(1)) if n in by_label]
            if idx:
                found.append((m.start(1), m.end(1), idx))
    if by_author_year:
        def lookup(name: str, year: str) -> list[int]:
            surname = name.split()[0].lower()
            return by_author_year.get((surname, year), [])

        for m in PAREN_GROUP.finditer(text):
            idx = []
            for cite in re.split(r";", m.group(1)):
                if c := re.search(rf"({AUTHOR}),?\s+((?:1[89]|20)\d{{2}})", cite):
                    idx.extend(lookup(c.group(1), c.group(2)))
            if idx:
                found.append((m.start(1), m.end(1), list(dict.fromkeys(idx))))
        for m in TEXTUAL.finditer(text):
            if idx := lookup(m.group(1), m.group(2)):
                found.append((m.start(), m.end(), idx))
    found.sort()
    merged: list[tuple[int, int, list[int]]] = []
    for start, end, idx in found:  # drop overlaps, first wins
        if merged and start < merged[-1][1]:
            continue
        merged.append((start, end, idx))
    return merged


# ---------------------------------------------------------------------------
# The whole document
# ---------------------------------------------------------------------------

@dataclass
class Paragraph:
    section: int
    chars: list[Char]


@dataclass
class Document:
    title: str
    sections: list[str]
    paragraphs: list[Paragraph]
    references: list[Reference]
    links: dict[int, list[Link]]
    n_pages: int


def read_pdf(path: Path) -> Document:
    """Parse a PDF into sections, paragraphs (chars with link ids) and references."""
    data = Path(path).read_bytes()
    if not data:
        raise ExtractionError("empty file")
    if not data.lstrip()[:5] == b"%PDF-":
        raise ExtractionError("not a PDF (no %PDF- header)")
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower():
            raise ExtractionError("encrypted PDF (needs a password)") from exc
        raise ExtractionError(f"corrupt PDF ({msg})") from exc
    try:
        pages, links = [], {}
        for i in range(len(doc)):
            lines, page_links = _page_lines(doc, i)
            pages.append(lines)
            links[i] = page_links
    finally:
        doc.close()
    if not any(pages):
        raise ExtractionError("no text layer (a scanned PDF?)")
    pages = drop_page_furniture(pages)
    all_lines = [ln for lines in pages for ln in lines]
    body_size = statistics.median([c.size for ln in all_lines for c in ln.chars if not c.text.isspace()] or [10])
    lefts = {i: _column_lefts(lines) for i, lines in enumerate(pages)}

    first = [ln for ln in pages[0] if ln.text.strip()] if pages else []
    title = ""
    if first:
        biggest = max(ln.size for ln in first[:8])
        if biggest > body_size * 1.15:
            title = " ".join(ln.text.strip() for ln in first[:8] if abs(ln.size - biggest) < 0.5)

    vocabulary = set(re.findall(r"[a-z][a-z\-]+[a-z]", " ".join(ln.text.lower() for ln in all_lines)))
    sections: list[str] = []
    paragraphs: list[Paragraph] = []
    ref_lines: list[Line] = []
    mode = "front"
    current: list[list[Char]] = []
    prev: Line | None = None

    def flush() -> None:
        nonlocal current
        if current and mode == "body" and sections:
            chars = join_lines(current, vocabulary)
            if any(not c.text.isspace() for c in chars):
                paragraphs.append(Paragraph(len(sections) - 1, chars))
        current = []

    for ln in all_lines:
        text = ln.text.strip()
        if mode == "refs":
            if is_heading(ln, body_size) and re.match(r"^(appendix|[A-Z]\.?\s+[A-Z])", text, re.I) and \
                    not LABEL_RE.match(text):
                mode = "after"
            else:
                ref_lines.append(ln)
            continue
        if mode == "after":
            continue
        if is_heading(ln, body_size) and (not title or text not in title):
            if mode == "front" and not (NUMBERED_HEADING.match(text) or REFERENCES_HEADING.match(text)
                                        or ABSTRACT_HEADING.match(text) or FIRST_SECTION.match(text)):
                continue  # author names, affiliations: larger than body text, but not sections
            flush()
            if REFERENCES_HEADING.match(text):
                mode = "refs"
            elif ABSTRACT_HEADING.match(text):
                mode = "abstract"
            else:
                mode = "body"
                sections.append(re.sub(r"^(\d+(\.\d+)*\.?|[IVX]+\.)\s+", "", text))
            prev = None
            continue
        if mode != "body":
            continue
        gap = prev is not None and (prev.page != ln.page or prev.bottom - ln.top > 1.2 * ln.size + 2) \
            and prev.page == ln.page and not (prev.x0 > ln.x1 or ln.x0 > prev.x1)
        if current and (_is_indented(ln, lefts[ln.page]) or gap):
            flush()
        current.append(list(ln.chars))
        prev = ln
    flush()

    references = split_references(ref_lines, links, vocabulary)
    return Document(title=title, sections=sections, paragraphs=paragraphs, references=references,
                    links=links, n_pages=len(pages))


def split_references(lines: list[Line], links: dict[int, list[Link]], vocabulary: set[str]) -> list[Reference]:
    """Split the reference section into entries: at link targets when the PDF has
    them, else at printed labels, else at hanging indents."""
    if not lines:
        return []
    targets = {(ln.target_page, round(ln.target_y, 1)) for page_links in links.values() for ln in page_links
               if ln.target_y is not None}
    starts: set[int] = set()
    if targets:
        for page, y in targets:
            # The destination sits at (or just above) the first line of its entry.
            candidates = [i for i, ln in enumerate(lines) if ln.page == page and ln.bottom <= y + 2]
            if candidates:
                starts.add(min(candidates, key=lambda i: y - lines[i].top if lines[i].top <= y + 2 else 1e9))
    labelled = [i for i, ln in enumerate(lines) if LABEL_RE.match(ln.text)]
    if len(labelled) >= max(2, len(starts)):
        starts = set(labelled)
    if not starts:
        lefts_by_page: dict[int, float] = {}
        for ln in lines:
            lefts_by_page[ln.page] = min(lefts_by_page.get(ln.page, 1e9), ln.x0)
        starts = {i for i, ln in enumerate(lines) if abs(ln.x0 - lefts_by_page[ln.page]) < 2}
        # in a two-column layout the right column has its own left edge
        for i, ln in enumerate(lines):
            if i and (ln.page != lines[i - 1].page or ln.top > lines[i - 1].top + 5) and ln.x0 > ln.page_width / 2:
                starts.add(i)
    starts.add(0)
    order = sorted(starts)
    refs = []
    for n, s in enumerate(order):
        e = order[n + 1] if n + 1 < len(order) else len(lines)
        chars = join_lines([list(ln.chars) for ln in lines[s:e]], vocabulary)
        raw = normalise("".join(c.text for c in chars)).strip()
        if not raw:
            continue
        ref = Reference(raw=raw, page=lines[s].page, top=lines[s].top)
        ref.fields = parse_reference(raw)
        if "label" in ref.fields:
            ref.label = raw[slice(*ref.fields["label"])]
        if ref.fields.get("authors"):
            ref.fields["first_surname"] = raw[slice(*ref.fields["authors"][0]["surname"])]
        if "year" in ref.fields:
            ref.fields["year_text"] = raw[slice(*ref.fields["year"])]
        refs.append(ref)
    return refs


def normalise(text: str) -> str:
    """NFKC (ligatures, full-width forms), soft hyphens and PDFium's hyphen marker, whitespace."""
    text = unicodedata.normalize("NFKC", text.replace("\x02", "-").replace("\u00ad", ""))
    text = re.sub(r"(\d)\s*([–-])\s+(\d)", r"\1\2\3", text)  # "10– 12": PDFium's space after a dash
    return re.sub(r"\s+", " ", text)


def link_target_index(doc: Document) -> dict[tuple[int, int], int]:
    """(page, link number) -> index of the reference the link points to."""
    result = {}
    refs = doc.references
    for page, page_links in doc.links.items():
        for k, ln in enumerate(page_links):
            if ln.target_y is None:
                continue
            same_page = [i for i, r in enumerate(refs) if r.page == ln.target_page and r.top <= ln.target_y + 3]
            if same_page:
                result[(page, k)] = min(same_page, key=lambda i: ln.target_y - refs[i].top)
    return result


# ---------------------------------------------------------------------------
# JATS output
# ---------------------------------------------------------------------------

def paragraph_runs(par: Paragraph, targets: dict[tuple[int, int], int],
                   refs: list[Reference]) -> list[tuple[str, list[int]]]:
    """A paragraph as runs of (text, reference indices): plain text has no indices."""
    runs: list[tuple[str, list[int]]] = []
    for ch in par.chars:
        ref = targets.get((ch.page, ch.link)) if ch.link >= 0 else None
        keys = [ref] if ref is not None else []
        if runs and runs[-1][1] == keys:
            runs[-1] = (runs[-1][0] + ch.text, keys)
        else:
            runs.append((ch.text, keys))
    # Merge linked runs separated only by punctuation into one marker ("1, 2", "Lee, 2019; Kim, 2020").
    merged: list[tuple[str, list[int]]] = []
    for text, keys in runs:
        if keys and len(merged) >= 2 and merged[-2][1] and re.fullmatch(r"[\s,;:()\[\]–-]{0,4}", merged[-1][0]):
            sep, _ = merged.pop()
            prev_text, prev_keys = merged.pop()
            keys = list(dict.fromkeys(prev_keys + keys))
            text = prev_text + sep + text
        elif keys and merged and merged[-1][1]:
            prev_text, prev_keys = merged.pop()
            keys = list(dict.fromkeys(prev_keys + keys))
            text = prev_text + text
        merged.append((text, keys))
    # natbib's sort&compress links only the ends of a range "1–3": add the middle by label.
    by_label = {int(re.sub(r"\D", "", r.label)): i for i, r in enumerate(refs) if re.sub(r"\D", "", r.label)}
    out = []
    for text, keys in _move_brackets(merged):
        if keys and by_label and re.fullmatch(r"[\d\s,–-]+", text):
            extra = [by_label[n] for n in expand_numbers(text.replace("–", "-")) if n in by_label]
            keys = list(dict.fromkeys(extra or keys))
        out.append((text, keys))
    return out


def _move_brackets(runs: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    """Keep a marker's enclosing brackets outside its xref, as CERMINE does ("[<xref>1, 2</xref>]"),
    and close a textual citation's parenthesis inside it ("<xref>Lee (2019)</xref>")."""
    out: list[tuple[str, list[int]]] = []
    for n, (text, keys) in enumerate(runs):
        if keys:
            lead = re.match(r"^[\[(]+", text)
            if lead and text.count(lead.group()[0]) > text.count("]" if lead.group()[0] == "[" else ")"):
                out.append((lead.group(), []))
                text = text[lead.end():]
            if text.startswith(("[", "(")) and text.endswith(("]", ")")) and text.count("(") + text.count("[") == 1:
                out.append((text[0], []))
                out.append((text[1:-1], keys))
                out.append((text[-1], []))
                continue
            if text.endswith(("]", ")")) and text.count(text[-1]) > text.count("[" if text[-1] == "]" else "("):
                out.append((text[:-1], keys))
                out.append((text[-1], []))
                continue
            if text.count("(") > text.count(")") and n + 1 < len(runs) and runs[n + 1][0].startswith(")"):
                text += ")"
                nxt = runs[n + 1][0][1:]
                runs[n + 1] = (nxt, runs[n + 1][1])
        out.append((text, keys))
    return [(t, k) for t, k in out if t]


def _add_text(parent: etree._Element, text: str) -> None:
    if not text:
        return
    if len(parent):
        parent[-1].tail = (parent[-1].tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def build_mixed_citation(ref: Reference) -> etree._Element:
    """``mixed-citation`` whose text is the raw reference, with its parsed parts tagged."""
    mc = etree.Element("mixed-citation")
    raw = ref.raw
    spans = []
    for author in ref.fields.get("authors", []):
        s = min(v[0] for v in author.values())
        e = max(v[1] for v in author.values())
        spans.append((s, e, "string-name", author))
    tags = {"title": "article-title", "source": "source", "year": "year", "volume": "volume", "issue": "issue",
            "fpage": "fpage", "lpage": "lpage", "doi": "pub-id", "arxiv": "pub-id"}
    for key, tag in tags.items():
        if key in ref.fields:
            s, e = ref.fields[key]
            spans.append((s, e, tag, key))
    spans.sort()
    pos = 0
    for s, e, tag, info in spans:
        if s < pos:
            continue  # overlapping parse; keep the first
        _add_text(mc, raw[pos:s])
        el = etree.SubElement(mc, tag)
        if tag == "string-name":
            inner = sorted((v[0], v[1], "given-names" if k == "given" else "surname") for k, v in info.items())
            p = s
            for a, b, t in inner:
                _add_text(el, raw[p:a])
                etree.SubElement(el, t).text = raw[a:b]
                p = b
            _add_text(el, raw[p:e])
        else:
            el.text = raw[s:e]
            if tag == "pub-id":
                el.set("pub-id-type", "doi" if info == "doi" else "arxiv")
        pos = e
    _add_text(mc, raw[pos:])
    return mc


def to_jats(doc: Document, use_links: bool = True) -> tuple[bytes, dict]:
    """Serialise a Document as CERMINE-shaped JATS; returns the XML and linking statistics."""
    article = etree.Element("article")
    meta = etree.SubElement(etree.SubElement(article, "front"), "article-meta")
    etree.SubElement(etree.SubElement(meta, "title-group"), "article-title").text = normalise(doc.title)
    body = etree.SubElement(article, "body")
    targets = link_target_index(doc) if use_links else {}
    linked_pdf = bool(targets)
    stats = {"n_citations": 0, "n_linked_by": "links" if linked_pdf else "patterns", "n_unlinked_links": 0}
    secs: dict[int, etree._Element] = {}
    for n, name in enumerate(doc.sections):
        sec = etree.SubElement(body, "sec", id=f"sec{n + 1}")
        etree.SubElement(sec, "title").text = normalise(name)
        secs[n] = sec
    for par in doc.paragraphs:
        p = etree.SubElement(secs[par.section], "p")
        if linked_pdf:
            runs = paragraph_runs(par, targets, doc.references)
            for text, keys in runs:
                text = normalise(text)
                if keys:
                    x = etree.SubElement(p, "xref", {"ref-type": "bibr", "rid": " ".join(f"ref{k + 1}" for k in keys)})
                    x.text = text
                    stats["n_citations"] += 1
                else:
                    _add_text(p, text)
        else:
            text = normalise("".join(c.text for c in par.chars))
            pos = 0
            for s, e, idx in find_markers(text, doc.references):
                _add_text(p, text[pos:s])
                x = etree.SubElement(p, "xref", {"ref-type": "bibr", "rid": " ".join(f"ref{k + 1}" for k in idx)})
                x.text = text[s:e]
                stats["n_citations"] += 1
                pos = e
            _add_text(p, text[pos:])
    back = etree.SubElement(article, "back")
    ref_list = etree.SubElement(back, "ref-list")
    for n, ref in enumerate(doc.references):
        r = etree.SubElement(ref_list, "ref", id=f"ref{n + 1}")
        r.append(build_mixed_citation(ref))
    xml = etree.tostring(article, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    stats["n_references"] = len(doc.references)
    return xml, stats


def convert(path: Path) -> tuple[bytes, dict]:
    """PDF file -> (JATS bytes, stats). Raises ExtractionError for PDFs that cannot be read."""
    doc = read_pdf(path)
    xml, stats = to_jats(doc)
    stats["n_pages"] = doc.n_pages
    return xml, stats
