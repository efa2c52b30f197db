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
import dataclasses
import itertools
import re
import statistics
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from lxml import etree
from wordfreq import zipf_frequency

# ---------------------------------------------------------------------------
# Characters, lines, links
# ---------------------------------------------------------------------------

@dataclass(slots=True)
class Char:
    text: str
    left: float
    bottom: float
    right: float
    top: float
    size: float  # effective size: font size x the text matrix's scale
    page: int = 0
    link: int = -1  # index into the page's links, or -1
    base: float = 0.0  # baseline (the glyph origin's y)
    weight: int = 400
    sup: bool = False  # raised and smaller than its line: a superscript


def _commonest(values: list) -> object:
    """``Counter(values).most_common(1)[0][0]``: the commonest value, the first seen among equals."""
    first = values[0]
    return first if values.count(first) == len(values) else Counter(values).most_common(1)[0][0]


@dataclass
class Line:
    page: int
    chars: list[Char]
    page_height: float
    page_width: float
    column: int = 0  # 0: left or single column, 1: right column, -1: spans both columns
    bold_from: int = 600  # font weight that counts as bold in this document (some fonts report 700 for all text)
    table: bool = False  # one row of a table, its cells joined in order (``read_tables``)
    cells: list = field(default_factory=list)  # a table row's own lines, as the page set them
    pieces: bool = False  # put together from words set as pieces of their own (an OCR layer: ``_word_pieces``)

    # (list comprehensions rather than generators; the commonest rounded baseline and size found without
    # rounding each character nor a Counter where all are equal, as on most lines: these run for every line)
    @cached_property
    def text(self) -> str:
        return "".join([c.text for c in self.chars])

    @cached_property
    def ink(self) -> list[Char]:
        return [c for c in self.chars if not c.text.isspace()] or self.chars

    @cached_property
    def x0(self) -> float:
        return min([c.left for c in self.ink])

    @cached_property
    def x1(self) -> float:
        return max([c.right for c in self.ink])

    @cached_property
    def top(self) -> float:
        return max([c.top for c in self.ink])

    @cached_property
    def bottom(self) -> float:
        return min([c.bottom for c in self.ink])

    @cached_property
    def base(self) -> float:
        bases = [c.base for c in self.ink if not c.sup]
        if not bases:
            return self.ink[0].base
        if bases.count(bases[0]) == len(bases):
            return round(bases[0], 1)
        return _commonest([round(b, 1) for b in bases])

    @cached_property
    def size(self) -> float:
        sizes = [c.size for c in self.chars if not c.text.isspace() and not c.sup]
        if not sizes:
            return 0.0
        if sizes.count(sizes[0]) == len(sizes):
            return round(sizes[0] * 2) / 2
        size = _commonest([round(s * 2) / 2 for s in sizes])
        # small capitals set as smaller capitals (Prince: a law review's "MORRIS P. FIORINA, UNSTABLE MAJORITIES"
        # at 7 pt in a 9 pt note): where the line's commonest size holds no lower-case letter and its lower-case
        # letters are larger, the line is at their size
        lower = [round(c.size * 2) / 2 for c in self.chars if c.text.islower() and not c.sup]
        if len(lower) >= 3 and max(lower) > size and not any(
                c.text.islower() for c in self.chars if not c.sup and round(c.size * 2) / 2 == size):
            return _commonest(lower)
        if not lower:
            # (a line all in small capitals, "TO RUN? HOW THE DEVALUING OF POLITICAL OFFICE …": most words' first
            # capital at the note's size, the rest smaller; the line is at its words' first capitals' size)
            ink = [c for c in self.chars if not c.sup]
            firsts = [round(c.size * 2) / 2 for k, c in enumerate(ink) if c.text.isupper()
                      and (k == 0 or not ink[k - 1].text.isalpha())]
            rest = [round(c.size * 2) / 2 for k, c in enumerate(ink) if c.text.isupper()
                    and k > 0 and ink[k - 1].text.isalpha()]
            big = max(firsts, default=0.0)
            if len(firsts) >= 3 and rest and big > size and max(rest) < big \
                    and sum(f == big for f in firsts) >= 0.5 * len(firsts):
                return big  # (short words, "TO", "THE", set small throughout, as their lower case would be)
        return size

    @cached_property
    def bold(self) -> bool:
        ink = [c for c in self.ink if c.text.isalpha()]
        return bool(ink) and sum([c.weight >= self.bold_from for c in ink]) >= 0.8 * len(ink)

@dataclass
class Link:
    left: float
    bottom: float
    right: float
    top: float
    target_page: int
    target_y: float | None
    target_x: float | None = None


@dataclass
class Reference:
    raw: str
    page: int = -1
    top: float = 0.0
    label: str = ""
    left: float = 0.0  # x range of the entry's column, so a link destination's x picks the right column
    right: float = 0.0
    fields: dict = field(default_factory=dict)
    from_note: bool = False  # read from a footnote's citation (a paper without a bibliography: ``link_notes``)


class ExtractionError(Exception):
    """A PDF that cannot be converted; the message says why."""


# Named destinations that hyperref (and LaTeX classes) give to what is not a bibliography entry: a link to one
# of them is a footnote mark, an equation, figure, table or section number, never a citation.
NON_CITATION_DESTINATIONS = re.compile(
    r"^(?:H?footnote|Hfootnotemark|equation|AMS|figure|subfigure|table|subtable|(?:sub)*section\*?|chapter|"
    r"paragraph|appendix|page|Item|lstnumber|lstlisting|algocf|algorithm|ALG@line|theorem|lemma|corollary|"
    r"proposition|definition|remark|example|affn|cnote|fnote)\.|^Doc-Start$", re.I)


def _destination_names(doc: pdfium.PdfDocument) -> dict[int, str]:
    """The document's named destinations by the address of their destination object: a link that names its
    destination ("/Dest (Hfootnote.3)", as hyperref writes every link) resolves to that same object."""
    names: dict[int, str] = {}
    buf = ctypes.create_string_buffer(256)
    for i in range(pdfium_c.FPDF_CountNamedDests(doc.raw)):
        size = ctypes.c_long(len(buf))
        dest = pdfium_c.FPDF_GetNamedDest(doc.raw, i, buf, ctypes.byref(size))
        if dest and 0 < size.value <= len(buf):  # a longer name (-1) is no hyperref counter name
            names[ctypes.cast(dest, ctypes.c_void_p).value] = buf.raw[:size.value].decode("utf-16-le", "replace") \
                .rstrip("\x00")
    return names


def _page_links(doc: pdfium.PdfDocument, page: pdfium.PdfPage, names: dict[int, str] | None = None) -> list[Link]:
    """Internal GoTo links of a page with their target page and height (named destinations resolved); a link
    to a destination ``names`` calls a footnote, equation, figure, table or section is left out."""
    links: list[Link] = []
    urls: list[tuple[float, float, float, float]] = []
    pos = ctypes.c_int(0)
    link = pdfium_c.FPDF_LINK()
    while pdfium_c.FPDFLink_Enumerate(page.raw, ctypes.byref(pos), ctypes.byref(link)):
        dest = pdfium_c.FPDFLink_GetDest(doc.raw, link)
        if not dest:
            action = pdfium_c.FPDFLink_GetAction(link)
            if not action or pdfium_c.FPDFAction_GetType(action) != pdfium_c.PDFACTION_GOTO:
                rect = pdfium_c.FS_RECTF()
                if action and pdfium_c.FPDFAction_GetType(action) == pdfium_c.PDFACTION_URI and \
                        pdfium_c.FPDFLink_GetAnnotRect(link, ctypes.byref(rect)):
                    urls.append((min(rect.left, rect.right), min(rect.bottom, rect.top), max(rect.left, rect.right),
                                 max(rect.bottom, rect.top)))
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
        if names and NON_CITATION_DESTINATIONS.match(names.get(ctypes.cast(dest, ctypes.c_void_p).value, "")):
            continue  # a footnote mark, an equation or figure number: what it links to says so
        # a /Rect may name its corners in either order (Springer writes the top before the bottom): the
        # link covers the span between them
        links.append(Link(min(rect.left, rect.right), min(rect.bottom, rect.top), max(rect.left, rect.right),
                          max(rect.bottom, rect.top),
                          pdfium_c.FPDFDest_GetDestPageIndex(doc.raw, dest), y.value if has_y else None,
                          x.value if has_x else None))
    # a citation's link that pdfTeX carried on past a column break covers the column's width down to its foot,
    # footnotes and all ("¹ Hate Speech datasets", a URL's words, linked to the cited work): a link holding a
    # URL's link inside it is no citation marker, which never holds one
    return [ln for ln in links if not any(ln.left - 1 <= u[0] and u[2] <= ln.right + 1 and ln.bottom - 1 <= u[1]
                                          and u[3] <= ln.top + 1 for u in urls)]


# Unicode accents that PDFium returns as separate glyphs after (or before) the letter they sit on.
SPACING_ACCENTS = {"\u00a8": "\u0308", "\u00b4": "\u0301", "`": "\u0300", "\u02c6": "\u0302", "^": "\u0302",
                   "\u02dc": "\u0303", "~": "\u0303", "\u02c7": "\u030c", "\u00b8": "\u0327", "\u02da": "\u030a",
                   "\u02d8": "\u0306", "\u02d9": "\u0307", "\u00af": "\u0304", "\u02dd": "\u030b", "\u02db": "\u0328"}


ACCENT_IN_TEXT = re.compile("[" + re.escape("".join(SPACING_ACCENTS)) + "\u0300-\u036f]")


def clean_code(code: int, next_code: int) -> tuple[str, int]:
    """One character from PDFium's UTF-16 code units: (text, code units used).

    A surrogate pair becomes one character; a lone surrogate, a control
    character or a private-use code (a TeX glyph PDFium could not map) becomes
    "" so that no string the XML writer refuses ever leaves this module.
    """
    if 0xD800 <= code < 0xDC00:
        if 0xDC00 <= next_code < 0xE000:
            return chr(0x10000 + ((code - 0xD800) << 10) + (next_code - 0xDC00)), 2
        return "", 1
    if 0xDC00 <= code < 0xE000 or 0xE000 <= code < 0xF900 or code in (0xFFFD, 0xFFFE, 0xFFFF):
        return "", 1
    if code == 2:
        return "\x02", 1  # PDFium's mark for a hyphen it saw at a line end
    if code < 0x20 or 0x7F <= code < 0xA0:
        return ("\n" if code in (0x0A, 0x0D) else " " if code == 0x09 else ""), 1
    return chr(code), 1


def _unconverted(fn, restype):
    """A second handle on the PDFium function ``fn`` with its return type and no ``argtypes``, so that a call
    skips ctypes' conversion and checking of each argument: the per-character loop of ``_page_lines`` makes
    several calls a character, and that conversion was most of their cost (1.2 µs of a 1.5 µs call for
    FPDFText_GetCharBox). Callers pass exactly the C types: the text page handle, a Python int for an
    ``int`` index, ``ctypes.byref`` for each out-parameter."""
    unconverted = type(fn)(ctypes.cast(fn, ctypes.c_void_p).value)
    unconverted.restype = restype
    return unconverted


_GET_UNICODE = _unconverted(pdfium_c.FPDFText_GetUnicode, ctypes.c_uint)
_GET_SIZE = _unconverted(pdfium_c.FPDFText_GetFontSize, ctypes.c_double)
_GET_MATRIX = _unconverted(pdfium_c.FPDFText_GetMatrix, ctypes.c_int)
_GET_BOX = _unconverted(pdfium_c.FPDFText_GetCharBox, ctypes.c_int)
_GET_ORIGIN = _unconverted(pdfium_c.FPDFText_GetCharOrigin, ctypes.c_int)
_GET_WEIGHT = _unconverted(pdfium_c.FPDFText_GetFontWeight, ctypes.c_int)
# (added to PDFium in 2023: with an older one, each character's size, matrix and weight are read on their own)
_GET_TEXT_OBJECT = _unconverted(pdfium_c.FPDFText_GetTextObject, ctypes.c_void_p) \
    if hasattr(pdfium_c, "FPDFText_GetTextObject") else None


def _no_text_object(tp, j: int) -> None:
    return None


def _page_lines(doc: pdfium.PdfDocument, index: int, names: dict[int, str] | None = None,
                order: bool = True) -> tuple[list[Line], list[Link]]:
    """Text lines of one page in reading order (columns one after the other; as the page set them without
    ``order``) and its links."""
    page = doc[index]
    width, height = page.get_size()
    textpage = page.get_textpage()
    links = _page_links(doc, page, names)
    buckets: dict[int, list[int]] = {}
    for k, ln in enumerate(links):
        for y in range(int(ln.bottom // 10), int(ln.top // 10) + 1):
            buckets.setdefault(y, []).append(k)
    tp = textpage.raw
    # ctypes calls are the cost of this loop: bound once without argument conversion, out-parameters reused
    get_size, get_matrix, get_box, get_origin, get_weight = _GET_SIZE, _GET_MATRIX, _GET_BOX, _GET_ORIGIN, \
        _GET_WEIGHT
    matrix = pdfium_c.FS_MATRIX()
    m_ref = ctypes.byref(matrix)
    ox, oy, bl, br, bb, bt = (ctypes.c_double() for _ in range(6))
    o_refs = (ctypes.byref(ox), ctypes.byref(oy))
    b_refs = (ctypes.byref(bl), ctypes.byref(br), ctypes.byref(bb), ctypes.byref(bt))
    weight = 400
    lines: list[Line] = []
    current: list[Char] = []
    base = size_now = 0.0
    prev_right = 0.0
    n = textpage.count_chars()
    # one call a character: FPDFText_GetText would be one call a page, but it drops control codes and so
    # loses the 1:1 match between its code units and the character indices
    get_unicode = _GET_UNICODE
    codes = [get_unicode(tp, i) for i in range(n)] + [0]
    # A page with /Rotate (a landscape page, or a preprint scanned two pages to a sheet and turned): PDFium
    # gives boxes, origins and text matrices in the unrotated page's space; they are turned into the page
    # as it is displayed, so its upright text is read and its lines run left to right.
    rotation = page.get_rotation() % 360
    w0, h0 = (height, width) if rotation in (90, 270) else (width, height)

    def shown(x: float, y: float) -> tuple[float, float]:
        if rotation == 90:
            return y, w0 - x
        if rotation == 180:
            return w0 - x, h0 - y
        if rotation == 270:
            return h0 - y, x
        return x, y

    if rotation:
        for ln in links:
            (x_a, y_a), (x_b, y_b) = shown(ln.left, ln.bottom), shown(ln.right, ln.top)
            ln.left, ln.right, ln.bottom, ln.top = min(x_a, x_b), max(x_a, x_b), min(y_a, y_b), max(y_a, y_b)
        buckets = {}
        for k, ln in enumerate(links):
            for y in range(int(ln.bottom // 10), int(ln.top // 10) + 1):
                buckets.setdefault(y, []).append(k)
    size_fix = _size_fix(tp, n, codes, rotation) if rotation else 1.0

    def style(j: int) -> tuple[float | None, int]:
        """(effective font size, None for rotated text; font weight) of character ``j``."""
        size = get_size(tp, j) * size_fix
        if get_matrix(tp, j, m_ref):
            # Distiller, Quartz and PDFlib set size 1 and scale the text matrix: the effective size is the product
            a, b, c, d = matrix.a, matrix.b, matrix.c, matrix.d
            if rotation:
                a, b, c, d = _turn(a, b, c, d, rotation)
            if abs(b) > 0.2 * abs(a) or abs(c) > 0.2 * abs(d) or a < 0:
                return None, 0
            scale = abs(a * d - b * c) ** 0.5
            if scale > 0:
                size *= scale
        return size, get_weight(tp, j)

    # PDFium's font size and weight of a character are those of its text object, and so is the matrix of every
    # character but a generated space: read once an object (its address keys them), not once a character
    get_object = _GET_TEXT_OBJECT or _no_text_object
    prev_text = ""  # the text of current[-1]
    styles: dict[int, tuple[float | None, int]] = {}
    i = 0
    while i < n:
        code = codes[i]
        if 0x20 <= code < 0x7F:  # the common case (a space included), no cleaning needed
            ch, used = chr(code), 1
        else:
            ch, used = clean_code(code, codes[i + 1])
        j = i
        i += used
        if not ch or ch == "\n":
            continue
        if ch == " " or ch.isspace():
            # a space PDFium generates between words carries the unturned matrix of the form it is in, not its
            # text object's, so it reads its own: a space in rotated text is left out; on a turned page it is kept
            if not rotation and get_matrix(tp, j, m_ref):
                a, b, c, d = matrix.a, matrix.b, matrix.c, matrix.d
                if abs(b) > 0.2 * abs(a) or abs(c) > 0.2 * abs(d) or a < 0:
                    continue
            if current and prev_text != " ":
                last = current[-1]
                current.append(Char(" ", last.right, last.bottom, last.right, last.top, last.size, index, -1,
                                    last.base, last.weight, last.sup))
                prev_text = " "
            continue
        obj = get_object(tp, j)
        if obj:
            got = styles.get(obj)
            if got is None:
                got = styles[obj] = style(j)
        else:
            got = style(j)
        size, obj_weight = got
        if size is None:
            continue  # rotated text: arXiv's side stamp, rotated table headers
        get_box(tp, j, *b_refs)
        left, right, bottom, top = bl.value, br.value, bb.value, bt.value
        # lines are grouped by the glyph origin's baseline, which does not move with descenders
        # (box bottoms split "Recognising" into "Reco g nisin g")
        get_origin(tp, j, *o_refs)
        y = oy.value
        if rotation:
            (x_a, y_a), (x_b, y_b) = shown(left, bottom), shown(right, top)
            left, right, bottom, top = min(x_a, x_b), max(x_a, x_b), min(y_a, y_b), max(y_a, y_b)
            y = shown(ox.value, oy.value)[1]
        em = size if size > 1.0 else 1.0
        sup = False
        if current:
            line_em = size_now if size_now > 1.0 else 1.0
            raised = y - base
            smaller = size < 0.85 * size_now
            if smaller and 0.15 * line_em < raised < 0.7 * line_em and left >= prev_right - line_em:
                sup = True  # a superscript: same line
            elif smaller and -0.45 * line_em < raised < 0 and left >= prev_right - line_em:
                pass  # a subscript: same line
            elif (ch in SPACING_ACCENTS or "\u0300" <= ch <= "\u036f") and abs(raised) < line_em \
                    and current[0].left - 1 <= left <= prev_right + 1:
                pass  # an accent drawn back over a letter of this line: merge_accents puts it on the letter
            elif abs(raised) > 0.45 * (em if em < line_em else line_em) or left < prev_right - 1.5 * line_em \
                    or left > prev_right + 1.2 * line_em:
                lines.append(Line(index, _strip(current), height, width))
                current = []
        if not current:
            base, size_now = y, size
        link = -1
        if buckets:
            cx, cy = (left + right) / 2, (bottom + top) / 2
            for k in buckets.get(int(cy // 10), ()):
                ln = links[k]
                if ln.left - 0.5 <= cx <= ln.right + 0.5 and ln.bottom - 0.5 <= cy <= ln.top + 0.5:
                    link = k
                    break
        if not current or not ch.isalpha() or not prev_text.isalpha():
            weight = obj_weight  # taken once a word: bold changes between words
        current.append(Char(ch, left, bottom, right, top, size, index, link, y, weight, sup))
        prev_right, prev_text = right, ch
    if current:
        lines.append(Line(index, _strip(current), height, width))
    textpage.close()
    page.close()
    lines = rejoin_stranded_superscripts(drop_line_numbers([merge_accents(ln) for ln in lines if ln.chars]))
    lines = drop_equation_numbers([ln for ln in lines if ln.chars])
    return (reading_order(lines, width) if order else lines), links


BRACKETED_NUMBER = re.compile(r"^\s*\[\d{1,3}[a-z]?\]\s*$")
MATH_SIGNS = re.compile(r"[=∼≈≃≤≥<>±∝∈→↦∑∏∫|α-ω]")


def drop_equation_numbers(lines: list[Line]) -> list[Line]:
    """Remove the bracketed numbers of displayed equations (PNAS sets "[3]" flush right of its formula, at the
    column's edge): a "[n]" that is a line of its own, no link, far right of a formula (a line holding "=", "∼",
    "≤", "|", a Greek letter …, ending more than three of its ems before it) whose height it shares. Read with the formula, it was a
    citation of entry n. A citation set apart in a table cell stands beside no formula, or is a link."""
    if not any(BRACKETED_NUMBER.match(ln.text) for ln in lines):
        return lines
    drop = set()
    for i, ln in enumerate(lines):
        if not BRACKETED_NUMBER.match(ln.text) or any(c.link >= 0 for c in ln.chars):
            continue
        em = ln.size or 10.0
        if any(other is not ln and other.page == ln.page and other.bottom - em <= ln.base <= other.top + em
               and other.x1 < ln.x0 - 3 * em and MATH_SIGNS.search(other.text)
               and not BRACKETED_NUMBER.match(other.text) for other in lines):
            drop.add(i)
    return [ln for i, ln in enumerate(lines) if i not in drop] if drop else lines


def _turn(a: float, b: float, c: float, d: float, rotation: int) -> tuple[float, float, float, float]:
    """A text matrix's direction vectors as the page shows them after its /Rotate (clockwise)."""
    if rotation == 90:
        return b, -a, d, -c
    if rotation == 270:
        return -b, a, -d, c
    return -a, -b, -c, -d


def _size_fix(tp, n: int, codes: list[int], rotation: int) -> float:
    """On a turned page, a factor for PDFium's effective font size where it says less than 2 pt (a dvips
    sheet scaled by its page transformation, which the text matrix does not carry: 0.24 for 10 pt text):
    the height of capitals and ascender letters is about 0.7 of the size. 1.0 where the size is plausible."""
    get_size, get_box = pdfium_c.FPDFText_GetFontSize, pdfium_c.FPDFText_GetCharBox
    box = [ctypes.c_double() for _ in range(4)]
    refs = [ctypes.byref(v) for v in box]
    sizes, heights = [], []
    for j in range(0, n, max(1, n // 400)):
        if chr(codes[j]) in "bdfhklABDEFHKLMNPRT":
            get_box(tp, j, *refs)
            sizes.append(get_size(tp, j))
            # the glyph's extent across its line: along x on a page turned by 90 or 270 degrees
            heights.append(box[1].value - box[0].value if rotation in (90, 270) else box[3].value - box[2].value)
    if len(sizes) < 20:
        return 1.0
    size, height = sorted(sizes)[len(sizes) // 2], sorted(heights)[len(heights) // 2]
    return height / 0.7 / size if size < 2 and height > 3 else 1.0


def _split_glued_numbers(lines: list[Line]) -> tuple[list[Line], dict[int, tuple[Line, Line]]]:
    """Split a number off the start of its line where more than half an em of space stands after it (no
    word space is that wide): a margin's line number set closer to its line than the gap that parts two
    lines (Frontiers' lineno beside a hanging "[10]", or a page whose text column starts nearer the
    margin). Returns the lines, and for each number split off: (the line as it was, the text after it)."""
    out, pairs = [], {}
    for ln in lines:
        k = 0
        while k < len(ln.chars) and len(ln.chars[k].text) == 1 and ln.chars[k].text.isdigit():
            k += 1
        rest = k
        while rest < len(ln.chars) and ln.chars[rest].text.isspace():
            rest += 1
        # (AASTeX's linenumbers set their numbers at half the text's size, under half an em before it: a number
        # in smaller type than the text after it, a quarter em apart, is set apart as well)
        if 1 <= k <= 4 and k < rest < len(ln.chars) \
                and (ln.chars[rest].left - ln.chars[k - 1].right > 0.5 * (ln.size or 10.0)
                     or all(c.size <= 0.8 * ln.chars[rest].size for c in ln.chars[:k])
                     and ln.chars[rest].left - ln.chars[k - 1].right > 0.25 * ln.chars[rest].size):
            number = Line(ln.page, ln.chars[:k], ln.page_height, ln.page_width)
            text = Line(ln.page, ln.chars[rest:], ln.page_height, ln.page_width)
            pairs[id(number)] = (ln, text)
            out += [number, text]
        else:
            out.append(ln)
    return out, pairs


def drop_line_numbers(lines: list[Line]) -> list[Line]:
    """Remove a manuscript's margin line numbers (lineno: "38", "39", … beside each line of a submission,
    as ecology and biology journals ask for): bare numbers on lines of their own, at least 8 on the page,
    right-aligned in one column, each on the baseline of a line of text, rising down the page. Left in,
    they split every line into a paragraph of its own and glue a number to each sentence. A raised
    bibliography label (AIP) sits above its entry's baseline and is kept. A line number that came glued to
    the start of its line (closer to it than the gap that parts two lines) is split off and dropped with the
    others; a number split off that is no line number goes back on its line."""
    split, pairs = _split_glued_numbers(lines)
    if not pairs:
        return _drop_both_margins(lines)
    kept = _drop_both_margins(split)
    if kept is split:
        return _drop_both_margins(lines)
    ids = {id(ln) for ln in kept}
    rejoined = {id(text) for key, (_, text) in pairs.items() if key in ids and id(text) in ids}
    return [pairs[id(ln)][0] if id(ln) in pairs and id(pairs[id(ln)][1]) in rejoined else ln
            for ln in kept if id(ln) not in rejoined]


def _drop_both_margins(lines: list[Line]) -> list[Line]:
    """A two-column draft numbers each column's lines in its own margin (acmart's review mode: the left column's
    numbers left of it, the right column's right of it): a second column of line numbers is looked for once the
    first is gone. ``lines`` itself where there is none."""
    kept = _drop_line_numbers(lines)
    return kept if kept is lines else _drop_line_numbers(kept)


def _drop_line_numbers(lines: list[Line]) -> list[Line]:
    """``drop_line_numbers`` on lines as the page set them; ``lines`` itself where it finds no line numbers."""
    numbers = [ln for ln in lines if re.fullmatch(r"\d{1,4}", ln.text.strip())]
    if len(numbers) < 8:
        return lines
    bases = Counter(round(ln.base) for ln in lines if not re.fullmatch(r"\d{1,4}", ln.text.strip()))
    on_text = [ln for ln in numbers if any(bases.get(round(ln.base) + d) for d in (-1, 0, 1))]
    margin = Counter(round(ln.x1 / 3) for ln in on_text).most_common(1)
    if not margin or margin[0][1] < 8:
        return lines
    column = [ln for ln in on_text if abs(round(ln.x1 / 3) - margin[0][0]) <= 1]
    ordered = sorted(column, key=lambda ln: -ln.base)
    values = [int(ln.text) for ln in ordered]
    if sum(b > a for a, b in zip(values, values[1:])) < 0.9 * (len(values) - 1):
        return lines
    # line numbers stand beside every line; a bibliography's labels set apart in the column's margin
    # ("4", "5", … before each entry of two, three or four lines: Biochemical Journal) are several lines apart
    # (the text beside the numbers: on a two-column page the other column's baselines fall between its lines)
    width = lines[0].page_width
    right_margin = ordered[0].x0 > 0.5 * width
    beside = sorted({round(ln.base) for ln in lines if not re.fullmatch(r"\d{1,4}", ln.text.strip())
                     and (ln.x0 > 0.4 * width if right_margin else ln.x0 < 0.5 * width)}, reverse=True)
    steps = Counter(round(a - b) for a, b in zip(beside, beside[1:]) if a - b >= 2)
    gaps = sorted(a.base - b.base for a, b in zip(ordered, ordered[1:]))
    # (the line step: the commonest step, the smaller of two as common, as an entry of two lines alternates its
    # line step with the gap between entries)
    common = steps.most_common(1)[0][1] if steps else 0
    step = min((d for d, n in steps.items() if n == common), default=0)
    if steps and gaps and gaps[len(gaps) // 2] > 1.6 * step:
        return lines
    # a line that holds only a number (a DOI's last digits broken onto a line of their own) has its line number
    # beside it too, in the same column and within the run; it is no less a line number for standing by no words
    low, high = min(values), max(values)
    dropped = {id(ln) for ln in column} | {
        id(ln) for ln in numbers if abs(round(ln.x1 / 3) - margin[0][0]) <= 1 and low <= int(ln.text) <= high
        and _outermost_on_its_baseline(ln, lines)}
    # a draft's numbers stand on a grid of their own (acmart's review mode), off the baselines of a page's
    # displays and its bibliography in smaller type: the margin's other numbers that go on rising down the
    # page with the run, standing alone on their baselines, are line numbers too
    rest = sorted((ln for ln in numbers if id(ln) not in dropped and abs(round(ln.x1 / 3) - margin[0][0]) <= 1
                   and _outermost_on_its_baseline(ln, lines)), key=lambda ln: -ln.base)
    run = sorted(rest + column, key=lambda ln: -ln.base)
    if rest and all(int(b.text) > int(a.text) for a, b in zip(run, run[1:])):
        dropped |= {id(ln) for ln in rest}
    return [ln for ln in lines if id(ln) not in dropped]


def drop_stepped_line_numbers(pages: list[list[Line]]) -> list[list[Line]]:
    """Remove margin line numbers printed at every fifth (or tenth) line ("50", "55", "60", … as Copernicus'
    discussion papers and many review manuscripts print them): too few on a page for ``drop_line_numbers``
    (a page of displays holds four of them), so they are read over the whole document: bare numbers, each a
    multiple of 5, the outermost text on a baseline of text, in one margin column left or right of every
    other line of their pages, that rise from page to page in steps of 5 or 10. Left in, each is read into the
    sentence beside it ("A Wiener process 75 conditioned …") or, in the bibliography, opens an entry of its own."""
    found = []
    for lines in pages:
        bases = {round(ln.base) for ln in lines if not re.fullmatch(r"\d{1,4}", ln.text.strip())}
        for ln in lines:
            text = ln.text.strip()
            if re.fullmatch(r"\d{1,4}", text) and int(text) % 5 == 0 and int(text) > 0 \
                    and any(round(ln.base) + d in bases for d in (-1, 0, 1)) and _outermost_on_its_baseline(ln, lines):
                found.append(ln)
    if len(found) < 6:
        return pages
    column, count = Counter((ln.x0 < 0.5 * ln.page_width, round(ln.x1 / 3)) for ln in found).most_common(1)[0]
    if count < 6:
        return pages
    run = [ln for ln in found if (ln.x0 < 0.5 * ln.page_width) == column[0] and abs(round(ln.x1 / 3) - column[1]) <= 1]
    run.sort(key=lambda ln: (ln.page, -ln.base))
    values = [int(ln.text) for ln in run]
    steps = [b - a for a, b in zip(values, values[1:])]
    if len({ln.page for ln in run}) < 2 or sum(d > 0 and d % 5 == 0 for d in steps) < 0.9 * len(steps) \
            or sorted(steps)[len(steps) // 2] not in (5, 10):
        return pages
    left = column[0]
    ids = {id(ln) for ln in run}
    # in the margin: every other line of a page with the run starts right of it (left margin) or ends left of it
    for page in {ln.page for ln in run}:
        lines = pages[page]
        mine = [ln for ln in run if ln.page == page]
        edge = max(ln.x1 for ln in mine) if left else min(ln.x0 for ln in mine)
        others = [ln for ln in lines if id(ln) not in ids and ln.text.strip()]
        outside = sum(ln.x0 >= edge if left else ln.x1 <= edge for ln in others)
        if others and outside < 0.95 * len(others):
            return pages
    return [[ln for ln in lines if id(ln) not in ids] for lines in pages]


def _outermost_on_its_baseline(line: Line, lines: list[Line]) -> bool:
    """Nothing stands left of the line, or nothing right of it, on its baseline (a margin's number)."""
    beside = [t for t in lines if t is not line and abs(t.base - line.base) <= 1.5]
    return all(t.x0 >= line.x1 for t in beside) or all(t.x1 <= line.x0 for t in beside)


RAISED_FRAGMENT = re.compile(r"\s*\d{1,3}(?:\s?[,–—-]\s?\d{1,3})*\s*")


def rejoin_stranded_superscripts(lines: list[Line]) -> list[Line]:
    """Put a raised citation that the content stream set apart back on its line. lineno writes each margin
    number where its line ends in the stream, so a superscript after the last word ("… chance.³¹⁻³⁸ However,")
    may come after the number: read in stream order it is a line of its own, smaller and raised, between the
    two pieces of its line, and is lost with the small print. A fragment of numbers, smaller than a line that
    ends where it begins and raised above that line's baseline, is that line's superscript; the piece that
    goes on after it on the same baseline joins them."""
    fragments = [k for k, ln in enumerate(lines) if RAISED_FRAGMENT.fullmatch(ln.text)]
    if not fragments:
        return lines
    gone: set[int] = set()
    by_base: dict[int, list[int]] = {}  # a table of numbers has hundreds of fragments: look only near each
    for a, ln in enumerate(lines):
        by_base.setdefault(int(ln.base), []).append(a)

    def near(base: float, below: int) -> list[int]:
        return [a for y in range(int(base) - below, int(base) + 2) for a in by_base.get(y, ())]

    for k in fragments:
        frag = lines[k]
        host = next((a for a in near(frag.base, 20) if a != k and a not in gone
                     and frag.size < 0.85 * (ln := lines[a]).size and not RAISED_FRAGMENT.fullmatch(ln.text)
                     and -1 <= frag.x0 - ln.x1 < 0.6 * ln.size
                     and 0.15 * ln.size < frag.base - ln.base < 0.7 * ln.size), None)
        if host is None:
            continue
        line = lines[host]
        chars = line.chars + [Char(c.text, c.left, c.bottom, c.right, c.top, c.size, c.page, c.link, c.base, c.weight, True)
                               for c in frag.chars]
        tail = next((b for b in near(line.base, 2) if b not in (k, host) and b not in gone
                     and abs((ln := lines[b]).base - line.base) < 0.2 * line.size
                     and 0 <= ln.x0 - frag.x1 < 1.2 * line.size), None)
        if tail is not None:
            last = chars[-1]
            chars += [Char(" ", last.right, last.bottom, last.right, last.top, line.size, last.page, -1,
                           line.base, last.weight)] + lines[tail].chars
            gone.add(tail)
        lines[host] = Line(line.page, chars, line.page_height, line.page_width, line.column)
        gone.add(k)
    return [ln for k, ln in enumerate(lines) if k not in gone]


def _strip(chars: list[Char]) -> list[Char]:
    while chars and chars[-1].text == " ":
        chars = chars[:-1]
    while chars and chars[0].text == " ":
        chars = chars[1:]
    return chars


def merge_accents(line: Line) -> Line:
    """Put a separately drawn accent ("Schölkopf" drawn as "Scholkopf ¨") onto the letter under it, NFC."""
    chars = line.chars
    # (a search over the line's text first: most lines hold no accent, and the test below then fails for each)
    if not ACCENT_IN_TEXT.search("".join([c.text for c in chars])) \
            or not any(c.text in SPACING_ACCENTS or "\u0300" <= c.text <= "\u036f" for c in chars):
        return line
    out = [c for c in chars]
    for acc in [c for c in chars if c.text in SPACING_ACCENTS or "\u0300" <= c.text <= "\u036f"]:
        if acc.text in "`^~" and acc.bottom < line.chars[0].base + 0.3 * acc.size:
            continue  # a real backtick, caret or tilde on the baseline
        centre = (acc.left + acc.right) / 2
        under = [c for c in out if c is not acc and c.text.isalpha() and c.left - 0.5 <= centre <= c.right + 0.5]
        if not under:
            continue
        mark = SPACING_ACCENTS.get(acc.text, acc.text)
        under[0].text = unicodedata.normalize("NFC", under[0].text + mark)
        out.remove(acc)
    # drop a space left between the letters where the accent stood
    cleaned = []
    for k, c in enumerate(out):
        if c.text == " " and cleaned and k + 1 < len(out) and out[k + 1].left - cleaned[-1].right < 0.15 * c.size:
            continue
        cleaned.append(c)
    return Line(line.page, _strip(cleaned), line.page_height, line.page_width)


def find_gutter(lines: list[Line], width: float) -> float | None:
    """The x of the gap between two columns: the place in the middle of the page that the fewest lines
    cross, with text on both sides; None on a one-column page."""
    spans = [(ln.x0, ln.x1, len(ln.text)) for ln in lines]
    # (the place the fewest lines cross, unless five or more lines as wide as a column cross it and a place
    # that fewer of them cross is there: a wide table's cells, short pieces, cross the page's gutter as often as
    # the table's own column gaps, but a column's full lines cross only places inside that column; counted line
    # by line, a table's column gap at 44% of the width beat the gutter under it, and every line of the left
    # column below the table read as spanning both, woven into the other column's. A bibliography set in three
    # narrow columns keeps the count's choice, its first gap, whose second the entries' reader finds)
    wide = 0.4 * width  # (a column of a two-column page: 0.40–0.45 of its width; a table's cell, narrower)
    counts, wides = [], []
    for step in range(0, 31):
        x = width * (0.35 + 0.01 * step)
        crossing = [x1 - x0 for x0, x1, _ in spans if x0 < x - 1 and x1 > x + 1]
        counts.append((len(crossing), x))
        wides.append(((sum(1 for w in crossing if w >= wide), len(crossing)), x))
    if not counts:
        return None

    def middle(scored: list) -> tuple:
        low = min(score for score, _ in scored)
        tied = [x for score, x in scored if score == low]
        return low, tied[len(tied) // 2]

    best_cross, x = middle(counts)
    (wide_low, _), x_wide = middle(wides)
    wide_at_x = sum(1 for x0, x1, _ in spans if x0 < x - 1 and x1 > x + 1 and x1 - x0 >= wide)
    # (and only where no line that wide crosses the other place and three or more stand on each side of it: a
    # title block's lines, centred over both columns, cross every place)
    table_above = wide_at_x - wide_low >= 5 and wide_low == 0 and min(
        sum(1 for x0, x1, _ in spans if x1 <= x_wide + 1 and x1 - x0 >= wide),
        sum(1 for x0, x1, _ in spans if x0 >= x_wide - 1 and x1 - x0 >= wide)) >= 3
    if table_above:
        x = x_wide
        best_cross = sum(1 for x0, x1, _ in spans if x0 < x - 1 and x1 > x + 1)
    left = [n for x0, x1, n in spans if x1 <= x + 1 and n > 3]
    right = [n for x0, x1, n in spans if x0 >= x - 1 and n > 3]
    # (there, the short pieces that cross the gutter are a table's cells above or below the columns: they span it
    # as a wide figure does, however many)
    if len(left) < 5 or len(right) < 5 or sum(right) < 200 or sum(left) < 200 \
            or best_cross > 0.3 * (len(left) + len(right)) and not table_above:
        return None
    return x


def reading_order(lines: list[Line], width: float) -> list[Line]:
    """Two-column pages read column by column between the lines that span both; others keep PDF order.
    Pieces of one line split by a wide gap (a hanging label "1." and its text) are put back together."""
    gutter = find_gutter(lines, width)
    if gutter is None:
        return _merge_same_baseline(lines, _word_pieces(lines))
    for ln in lines:
        ln.column = 0 if ln.x1 <= gutter + 1 else 1 if ln.x0 >= gutter - 1 else -1
    # A bare number standing right of the left column's text edge is a label of the right column hanging in
    # the gutter ("35" left of its entry, Portland Press; "[18]", biblatex's numeric labels in USENIX's two
    # columns), wherever the gap between the columns was placed
    edges = sorted(ln.x1 for ln in lines if ln.column == 0 and len(ln.text) > 20)
    if edges:
        edge = edges[int(0.9 * (len(edges) - 1))]
        for ln in lines:
            if ln.column != 1 and ln.x0 > edge + 2 and re.fullmatch(r"\s*(?:\d{1,3}\.?|\[\d{1,3}\])\s*", ln.text):
                ln.column = 1
    # A line spanning both columns (title, abstract, a wide figure) cuts the page into bands.
    ordered: list[Line] = []
    band: list[Line] = []
    for ln in sorted(lines, key=lambda ln: -ln.top):
        if ln.column == -1 and len(ln.text) > 3:
            ordered.extend(sorted(band, key=lambda l: (l.column, -round(l.base), l.x0)))
            ordered.append(ln)
            band = []
        else:
            band.append(ln)
    ordered.extend(sorted(band, key=lambda l: (max(l.column, 0), -round(l.base), l.x0)))
    return _merge_same_baseline(ordered, _word_pieces(ordered))


def _same_line(prev: Line, ln: Line, reach: float) -> bool:
    """Is ``ln`` the next piece of ``prev``'s line: its column, its baseline, and a gap of under ``reach`` em?"""
    return prev.column == ln.column and abs(prev.base - ln.base) < 0.3 * max(ln.size, 1) \
        and 0 <= ln.x0 - prev.x1 < reach * max(ln.size, prev.size, 1)


def _word_pieces(lines: list[Line]) -> bool:
    """Is this page's text layer set word by word, each word a piece of its own on the line's baseline (an OCR
    layer over a scan that sizes each word by its own box: JPET's 1994 pages, where the gap between words is
    wider than the word's small reported size allows, so each word stood as a line of its own)? Most pieces
    then have a neighbour on their baseline and are words."""
    if len(lines) < 40:
        return False
    pairs = sum(1 for a, b in zip(lines, lines[1:]) if _same_line(a, b, 3))
    wordy = sum(1 for ln in lines if sum(c.isalpha() for c in ln.text) >= 0.6 * max(len(ln.text.strip()), 1))
    return pairs >= 0.6 * len(lines) and wordy >= 0.7 * len(lines)


def _merge_same_baseline(lines: list[Line], word_pieces: bool = False) -> list[Line]:
    out: list[Line] = []
    for ln in lines:
        prev = out[-1] if out else None
        if word_pieces and prev is not None and _same_line(prev, ln, 3):
            last = prev.chars[-1]
            out[-1] = Line(prev.page, prev.chars + [Char(" ", last.right, last.bottom, last.right, last.top, last.size,
                                                          last.page, -1, last.base, last.weight)] + ln.chars,
                           prev.page_height, prev.page_width, prev.column, pieces=True)
            continue
        label = prev.text.strip() if prev is not None else ""
        # a bibliography label set apart by a tab (Word: "5.<tab>Panwar, M.") may stand up to 6 em from its entry
        reach = 6 if re.fullmatch(r"\[\d{1,3}\]|\d{1,3}\.", label) else 3
        if prev is not None and prev.column == ln.column and abs(prev.base - ln.base) < 0.3 * max(ln.size, 1) \
                and 0 <= ln.x0 - prev.x1 < reach * max(ln.size, prev.size, 1) \
                and (re.fullmatch(r"\[?\d{1,3}[.\]]?|[IVX]{1,5}\.|[A-H]\.|\d{1,2}(\.\d{1,2})*\.?", label)
                     # an appendix's letter set a quad apart from its title ("A    Derivations", the size of
                     # the title): the heading "A Derivations", which ends a bibliography set before it
                     or re.fullmatch(r"[A-H]", label) and abs(prev.size - ln.size) < 0.5
                     and ln.x0 - prev.x1 >= 0.5 * ln.size and ln.text[:1].isupper()):
            last = prev.chars[-1]
            merged = Line(prev.page, prev.chars + [Char(" ", last.right, last.bottom, last.right, last.top, last.size,
                                                          last.page, -1, last.base, last.weight)] + ln.chars,
                          prev.page_height, prev.page_width, prev.column)
            out[-1] = merged
            continue
        out.append(ln)
    return out


# ---------------------------------------------------------------------------
# Page furniture: running headers, footers, page numbers
# ---------------------------------------------------------------------------

def drop_page_furniture(pages: list[list[Line]]) -> list[list[Line]]:
    """Remove page numbers and running headers/footers: lines repeated in the top or bottom margin of most
    pages, or repeated at the same height in the top/bottom 15% of most pages of one parity (two-sided
    journals alternate "Journal of Statistical Software | 3" and "4 | TIMP: Modeling…", and set them
    lower than 8% from the edge)."""
    def margin(line: Line) -> bool:
        return line.top > 0.92 * line.page_height or line.bottom < 0.08 * line.page_height

    def band(line: Line) -> bool:
        return line.top > 0.85 * line.page_height or line.bottom < 0.15 * line.page_height

    def norm(text: str) -> str:
        return re.sub(r"\d+", "#", text.strip().lower())

    repeated = Counter()
    placed = [Counter(), Counter()]  # per page parity: (text, height) of lines in the wider band
    for n, lines in enumerate(pages):
        for key in {norm(ln.text) for ln in lines if margin(ln)}:
            repeated[key] += 1
        for key in {(norm(ln.text), round(ln.top)) for ln in lines if band(ln)}:
            placed[n % 2][key] += 1
    threshold = max(2, (len(pages) + 1) // 2)
    parity_threshold = [max(2, (len(pages[k::2]) + 1) // 2) for k in (0, 1)]

    def running(line: Line, n: int) -> bool:
        key, top = norm(line.text), round(line.top)
        same_place = sum(placed[n % 2][(key, t)] for t in range(top - 2, top + 3))
        return same_place >= parity_threshold[n % 2]

    # A running head that names the current section changes with it ("REFERENCES" over each page of the
    # bibliography where the other pages carry the title: iopart), so its text repeats on too few pages; it is
    # still set beside the page number, on its baseline, in the slot that holds a head on most pages.
    # (a footnote's mark set apart from its note, "2" | "See e.g. …", in the bottom band is no page number: the body
    # line of the other column on its baseline is no running head)
    numbers = [[round(ln.bottom) for ln in lines if band(ln) and re.fullmatch(r"\d{1,4}", ln.text.strip())
                and not _opens_a_footnote(ln, lines)]
               for lines in pages]
    tops = [{round(ln.top) for ln in lines if band(ln)} for lines in pages]

    def beside_page_number(line: Line, n: int) -> bool:
        text = line.text.strip()
        if not numbers[n] or re.fullmatch(r"\d{1,4}", text) or len(text.split()) > 12 \
                or not any(abs(round(line.bottom) - b) <= 1 for b in numbers[n]):
            return False
        top = round(line.top)
        return sum(1 for page_tops in tops if any(abs(t - top) <= 2 for t in page_tops)) >= threshold

    # A book's running heads name the chapter and section ("Chapter 3. Transitional flows" | "3.4. The role of
    # rolls", "Bibliography" | "Bibliography" over each page of the bibliography): each text repeats only over
    # its chapter's pages, in the margin's slot that holds a head on most pages
    slots = Counter(t for lines in pages for t in {round(ln.top) for ln in lines if margin(ln)})
    slot_texts = Counter(key for lines in pages for key in {(norm(ln.text), round(ln.top)) for ln in lines
                                                            if margin(ln)})

    def section_head(line: Line) -> bool:
        key, top = norm(line.text), round(line.top)
        return sum(slots[t] for t in range(top - 2, top + 3)) >= threshold and \
            sum(slot_texts[(key, t)] for t in range(top - 2, top + 3)) >= 2

    kept_pages = []
    for n, lines in enumerate(pages):
        kept = []
        for ln in lines:
            text = ln.text.strip()
            if re.fullmatch(r"\d{1,3}", text) and _opens_a_footnote(ln, lines):
                # a footnote's mark Word sets as a line of its own, raised and smaller, just left of the note's
                # first line ("12" | "Information Commissioner's Office, …"): no page number
                kept.append(ln)
                continue
            if margin(ln) and (re.fullmatch(r"(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?", text, re.I)
                               or (len(pages) > 1 and repeated[norm(text)] >= threshold)
                               or len(pages) > 2 and section_head(ln)):
                continue
            if len(pages) > 2 and band(ln) and (running(ln, n) or beside_page_number(ln, n)):
                continue
            kept.append(ln)
        kept_pages.append(kept)
    return kept_pages


def _opens_a_footnote(mark: Line, lines: list[Line]) -> bool:
    """Is the bare number ``mark`` a footnote's mark set apart from the note's first line: smaller than a line of
    its page that starts just right of it, raised over that line's baseline (as ``_mark_set_apart`` reads it)?"""
    return any(ln is not mark and mark.size < 0.85 * ln.size and -1 <= ln.x0 - mark.x1 < 2.5 * ln.size
               and 0.15 * ln.size < mark.base - ln.base < 0.7 * ln.size and len(ln.text.strip()) > 3
               for ln in lines)


# ---------------------------------------------------------------------------
# Tables: each row read as one unit, its cells in order
# ---------------------------------------------------------------------------

# the first line of a figure's or table's caption: "Figure 3:", "FIG. 3.", "Fig. 2 (a)", "Table 1.", "TABLE II."
CAPTION_START = re.compile(r"^\s*(?:Figure|FIGURE|Fig\.|FIG\.|Table|TABLE)\s*(?:\d+|[IVX]+)(?:\.\d+)*[.:]?\s+\S")
TABLE_CAPTION = re.compile(r"^\s*(?:(?:Supplementa(?:ry|l)|Extended\s+Data)\s+)?(?:Table|TABLE|Tab\.)\s+"
                           r"(?:[SA]?\d{1,2}|[IVX]{1,5})\b")
CELL_SEPARATOR = " | "
MIN_TABLE_ROWS = 3  # rows of aligned cells that make a table on a page with a "Table N" caption
FULL_COLUMN = 0.9  # of the width of the page's long body lines: a line this wide in a column is running text
MAX_CELL_WIDTH = 0.6  # of the page's width: the widest cell of a table spanning the page's two columns


def _baseline_rows(lines: list[Line]) -> list[list[Line]]:
    """Lines that stand on one baseline (within a third of their size), top of the page first, each row
    left to right."""
    rows: list[list[Line]] = []
    for ln in sorted(lines, key=lambda ln: -ln.base):
        if rows and abs(rows[-1][0].base - ln.base) < 0.35 * max(ln.size, 1):
            rows[-1].append(ln)
        else:
            rows.append([ln])
    return [sorted(row, key=lambda ln: ln.x0) for row in rows]


def _open_brackets(text: str) -> bool:
    return text.count("[") > text.count("]") or text.count("(") > text.count(")")


def read_tables(lines: list[Line], body_size: float, vocabulary: Vocabulary, column_width: float = 0.0,
                margins: tuple[float, ...] = ()) -> list[Line]:
    """A page's lines with each table on it read row by row: one line a row holding its cells in order,
    left to right, each cell's own lines joined (``CELL_SEPARATOR`` between cells), set where the table's
    first line stands in the reading order. A table is found by its shape: at least ``MIN_TABLE_ROWS``
    baselines of two or more short pieces (a cell narrower than a quarter of the page, or set smaller than
    the body; narrower than ``FULL_COLUMN`` of the page's long body lines, a column's width (the document's,
    ``column_width``, on a page that is all table), or where it crosses the gutter of a two-column page than ``MAX_CELL_WIDTH`` of the page) of which one inside the row lines up with pieces of
    two other such baselines, one above the other, on a page that prints a "Table N" caption. A justified
    line split at its wide word spaces is no row (body-size words a little apart), nor two columns of text;
    and a box that holds lines of running text (wider
    than a cell, from a left margin of the body's text, ``margins``) is no table: a table spanning the page is looked for first, then one in each column (the
    short last line of an entry in the next column is no cell of it). Each row of the table starts at a
    baseline with a piece in the table's first column, unless that piece starts in lower case or with a
    bracket ("MPI" / "[10]") or a cell above leaves a bracket open ("[21, 22, 38," / "57, 60]"); the other lines inside the table's box continue the row above them."""
    if not lines or not any(TABLE_CAPTION.match(ln.text) for ln in lines):
        return lines
    width = lines[0].page_width
    # a line of running text fills its column: as wide as the page's long lines of body text (a column's
    # width, or the page's); a cell across the gutter of a table spanning the page may be wider than that
    # (a page that is all table has none: the document's column then)
    long = sorted(ln.x1 - ln.x0 for ln in lines if len(ln.text) > 30 and abs(ln.size - body_size) < 0.6
                  and ln.column >= 0)
    column = long[int(0.9 * (len(long) - 1))] if len(long) >= 5 else column_width or width

    def fills_column(ln: Line) -> bool:
        return ln.x1 - ln.x0 >= (FULL_COLUMN * column if ln.column >= 0 else MAX_CELL_WIDTH * width)

    def cell_like(ln: Line) -> bool:
        # a line of a column of text (a bibliography set small) is no cell: a cell is narrower
        return ln.size <= body_size + 0.6 and not fills_column(ln) \
            and (ln.x1 - ln.x0 < width / 4 or ln.size < 0.92 * body_size) \
            and not TABLE_CAPTION.match(ln.text) and any(c.text.isalnum() for c in ln.chars)

    def justified(row: list[Line]) -> bool:
        # a body line whose wide word spaces split it: words of body size a little apart, margin to margin
        return len(row) >= 3 and all(abs(ln.size - body_size) < 0.6 for ln in row) \
            and all(b.x0 - a.x1 < 2.5 * body_size for a, b in zip(row, row[1:]))

    # running text also starts at (or a hanging indent right of) a left margin of the body's text; a wide cell
    # of a table starts at the table's column
    running = [ln for ln in lines if ln.column >= 0 and fills_column(ln) and len(ln.text) > 40
               and any(-2 <= ln.x0 - m < 2.5 * body_size for m in margins)]
    taken: dict[int, int] = {}  # id(line) -> table number
    tables: list[list[Line]] = []
    # two tables side by side, one in each column of a two-column page under its own caption: their rows share
    # baselines, and read as one table spanning the page they joined a row of each; each column's is read alone
    captions = [ln for ln in lines if ln.column >= 0 and TABLE_CAPTION.match(ln.text)]
    for spanning, pool in ((True, lines), (False, [ln for ln in lines if ln.column == 0]),
                           (False, [ln for ln in lines if ln.column == 1])):
        pool = [ln for ln in pool if id(ln) not in taken]
        rows = _baseline_rows(pool)
        multi = [[ln for ln in row if cell_like(ln)] for row in rows]
        multi = [row if len(row) >= 2 and not justified(row) else [] for row in multi]
        # a piece lines up when a piece on each of two other multi-piece baselines stands in its column; the
        # first piece's left edge and the last one's right edge line up in any block of text, so a row needs
        # a piece inside it that lines up
        aligned_rows = []
        for n, row in enumerate(multi):
            if not row:
                continue
            inner = 0
            for k, piece in enumerate(row[1:], start=1):
                last = k == len(row) - 1
                others = sum(1 for m, other in enumerate(multi) if m != n and other and any(
                    abs(piece.x0 - o.x0) < 2.5 or abs((piece.x0 + piece.x1) - (o.x0 + o.x1)) < 5
                    or not last and abs(piece.x1 - o.x1) < 2.5 for o in other[1:]))
                inner += others >= 2
            if inner >= 1:
                aligned_rows.append(n)
        if len(aligned_rows) < MIN_TABLE_ROWS:
            continue
        # tables: runs of aligned baselines, each within four lines' height of the next
        groups: list[list[int]] = []
        for n in aligned_rows:
            size = max(ln.size for ln in multi[n])
            if groups and rows[groups[-1][-1]][0].base - rows[n][0].base < 4 * size + 2:
                groups[-1].append(n)
            else:
                groups.append([n])
        for group in groups:
            if len(group) < MIN_TABLE_ROWS:
                continue
            pieces = [ln for n in group for ln in multi[n]]
            if spanning and {ln.column for ln in pieces} == {0, 1} and all(
                    any(cap.column == c and 0 < cap.base - max(ln.top for ln in pieces if ln.column == c) < 4 * cap.size
                        for cap in captions) for c in (0, 1)):
                continue  # (each column's pieces right under a caption of their own column)
            x0, x1 = min(ln.x0 for ln in pieces) - 2, max(ln.x1 for ln in pieces) + 2
            top = max(ln.top for ln in multi[group[0]]) + 1
            size = Counter(ln.size for ln in pieces).most_common(1)[0][0]
            bottom = min(ln.base for ln in multi[group[-1]]) - 0.5 * size
            if sum(1 for ln in running if ln.x0 < x1 and x0 < ln.x1 and bottom <= ln.base <= top) >= 2:
                continue  # running text inside the box: two columns of text, not a table
            members = [ln for ln in pool if id(ln) not in taken and x0 <= ln.x0 and ln.x1 <= x1
                       and bottom <= ln.base <= top and cell_like(ln)]
            if len(members) < 2 * MIN_TABLE_ROWS:
                continue
            # the last row's cells may wrap below its first baseline: lines of the table's size right under it
            inside = {id(ln) for ln in members}
            below = True
            while below:
                below = False
                low = min(ln.base for ln in members)
                for ln in pool:
                    if id(ln) not in taken and id(ln) not in inside and x0 <= ln.x0 and ln.x1 <= x1 \
                            and 0 < low - ln.base < 1.6 * size and abs(ln.size - size) < 0.6 and cell_like(ln):
                        members.append(ln)
                        inside.add(id(ln))
                        below = True
            for ln in members:
                taken[id(ln)] = len(tables)
            tables.append(members)
    if not tables:
        return lines
    order = {id(ln): k for k, ln in enumerate(lines)}
    out: list[Line] = []
    placed: set[int] = set()
    for ln in lines:
        t = taken.get(id(ln))
        if t is None:
            out.append(ln)
        elif t not in placed:
            placed.add(t)
            out.extend(_table_rows(tables[t], vocabulary, order))
    return out


def _table_rows(members: list[Line], vocabulary: Vocabulary, order: dict[int, int]) -> list[Line]:
    """A table's lines as its rows (``read_tables``), top first; each row keeps its lines in the page's
    reading order (``order``: id of a line -> its place), for a bibliography that a row turns out to be in."""
    # the first column: the x range of its leftmost piece (a centred column's cells start further right)
    first = min(members, key=lambda ln: ln.x0)
    grouped: list[list[Line]] = []
    for row in _baseline_rows(members):
        # a first-column line that starts in lower case or with a marker goes on its cell ("MPI" / "[10]")
        opens_row = row[0].x0 < first.x1 and not re.match(r"\s*(?:\[|[a-z])", row[0].text)
        if grouped and (not opens_row or _open_brackets(" ".join(ln.text for ln in grouped[-1]))):
            grouped[-1].extend(row)
        else:
            grouped.append(list(row))
    out = []
    for row in grouped:
        # cells: pieces whose x ranges overlap, left to right; a cell's lines top to bottom
        cells: list[list[Line]] = []
        for ln in sorted(row, key=lambda ln: ln.x0):
            if cells and ln.x0 < max(c.x1 for c in cells[-1]) - 1:
                cells[-1].append(ln)
            else:
                cells.append([ln])
        chars: list[Char] = []
        for cell in cells:
            text = join_lines([list(ln.chars) for ln in sorted(cell, key=lambda ln: -ln.base)], vocabulary)
            if chars:
                last = chars[-1]
                chars.extend(Char(c, last.right, last.bottom, last.right, last.top, last.size, last.page, -1,
                                  last.base, last.weight) for c in CELL_SEPARATOR)
            chars.extend(text)
        head = row[0]
        out.append(Line(head.page, chars, head.page_height, head.page_width, head.column, head.bold_from,
                        table=True, cells=sorted(row, key=lambda ln: order[id(ln)])))
    return out


# ---------------------------------------------------------------------------
# Layout: headings, paragraphs, the references section
# ---------------------------------------------------------------------------

# A heading may open with an ornament: ACS journals print "■ REFERENCES", "■ INTRODUCTION"
HEADING_ORNAMENT = r"(?:[■□▪▫●◆◇►▶]\s*)?"
REFERENCES_HEADING = re.compile(rf"^{HEADING_ORNAMENT}((\d+|[IVX]+|[A-Z])\.?\s*)?"
                                r"(references?( and notes| cited| and further reading)?|bibliography|literature( cited)?|literatura( citada)?|"
                                r"works cited|reference list|notes and references|refer[eê]ncias( bibliogr[aá]ficas)?|"
                                r"r[ée]f[ée]rences( bibliographiques)?|bibliographie|referencias|bibliograf[ií]a|"
                                r"literaturverzeichnis|literatur|"
                                # Korean, Chinese, Japanese, Russian (kotex, ctex, babel set these)
                                r"참고\s?문헌|参考文献|參考文獻|引用文献|список литературы|литература|библиография)[.:]?$",
                                re.I)
ABSTRACT_HEADING = re.compile(rf"^{HEADING_ORNAMENT}abstract[.:]?$", re.I)
# a preface or foreword is the author's own prose: a proposal or a thesis may cite there before any numbered section
FIRST_SECTION = re.compile(rf"^{HEADING_ORNAMENT}((1|I)\.?\s+)?(introduction|background|motivation|overview|preface|foreword)"
                           r"[.:]?$", re.I)
NUMBERED_HEADING = re.compile(r"^(\d{1,2}(\.\d{1,2})*\.?|[IVX]{1,5}\.|[A-H]\.)\s+[A-Z]")
LONE_APPENDIX = re.compile(r"^(?:online\s+|supplementary\s+)?(?:appendix|appendices)$", re.I)


def is_heading(line: Line, body_size: float, column_width: float = 0.0) -> bool:
    """A section title: a short line set larger than the body, or one at body size that is numbered,
    bold or in capitals and does not run to the end of the column (acmart, revtex, IEEE, Word)."""
    text = line.text.strip()
    words = text.split()
    if not words or len(words) > 14 or len(text) > 100 or text.endswith((",", ";")):
        return False
    # "Introduction" alone on its line opens the body even where the font reports no weight (QuarkXPress
    # fonts: weight 0) and the heading is set at body size
    if REFERENCES_HEADING.match(text) or ABSTRACT_HEADING.match(text) or FIRST_SECTION.match(text):
        return True
    if LONE_APPENDIX.match(text):
        # "Appendix" alone on its line heads the appendices, however it is set (AEA's \appendix section after the
        # bibliography, in small capitals the text layer reads as lower case)
        return True
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 3:
        return False
    numbered = NUMBERED_HEADING.match(text) is not None
    ends_sentence = text.endswith(".") and not re.fullmatch(r"[\dIVX.]+", words[-1])
    if line.size >= body_size * 1.12 and not ends_sentence and len(words) <= 12:
        return True
    width = line.x1 - line.x0
    short = column_width <= 0 or width < 0.8 * column_width
    caps = sum(map(str.isupper, letters)) >= 0.8 * len(letters) and len(letters) >= 4
    emphasised = line.bold or caps or line.size >= body_size * 1.05
    if line.size < body_size * (0.7 if caps else 0.92):  # IEEE's small capitals are smaller than the body
        return False
    if numbered and short and not ends_sentence and (emphasised or len(words) <= 6):
        return not re.match(r"^\d+\.?\s+[A-Z][a-z]*\s+(et al|and)\b", text)
    if (line.bold or caps) and LABELLED_APPENDIX.match(text) and not ends_sentence:
        # "APPENDIX A: HOW DO FLUX PERTURBATIONS" over "EVOLVE?": an appendix's heading with its letter, in bold or
        # capitals, whose title wraps in a narrow column (MNRAS, after the bibliography): its first line runs to
        # the column's edge, and is the heading all the same
        return True
    return emphasised and short and len(words) <= 8 and not ends_sentence and text[0].isupper()


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

@lru_cache(maxsize=65536)
def _zipf(word: str) -> float:
    return zipf_frequency(word, "en")


class Vocabulary:
    """Decides whether a word broken at a line end by a hyphen is one word or a hyphenated compound:
    the document's own usage first, then how common each reading is in English (``wordfreq``)."""

    def __init__(self, text: str):
        self.words = Counter(re.findall(r"[a-z][a-z\-]*[a-z]", text.lower()))

    def __contains__(self, word: str) -> bool:
        return word in self.words

    def keep_hyphen(self, head: str, tail: str) -> bool:
        joined, compound = f"{head}{tail}".lower(), f"{head}-{tail}".lower()
        if self.words.get(joined):
            return False
        if self.words.get(compound):
            return True
        if _zipf(joined) >= 1.0:
            return False
        # "board-level": two words that are words on their own, and no such word as "boardlevel"
        return len(head) > 1 and len(tail) > 1 and _zipf(head.lower()) >= 2.0 and _zipf(tail.lower()) >= 2.0


def join_lines(parts: list[list[Char]], vocabulary: Vocabulary) -> list[Char]:
    """Join the chars of consecutive lines with a space, or with nothing where a
    word was hyphenated at the line end (``Vocabulary.keep_hyphen`` decides)."""
    out: list[Char] = []
    for part in parts:
        if not part:
            continue
        if out:
            last = out[-1]
            if last.text in ("-", "\x02", "\u2010") and len(out) > 1 and out[-2].text.isalpha() \
                    and (part[0].text.islower() or (out[-2].text.isupper() and part[0].text.isupper()
                                                    and part[1:2] and part[1].text.isupper())):
                head = re.findall(r"[^\W\d_]+$", "".join(c.text for c in out[-30:-1]))
                tail = re.findall(r"^[^\W\d_]+", "".join(c.text for c in part[:30]))
                if head and tail and vocabulary.keep_hyphen(head[0], tail[0]):
                    last.text = "-"
                else:
                    out.pop()
                out.extend(part)
                continue
            if last.text == "\x02":
                last.text = "-"
            out.append(Char(" ", last.right, last.bottom, last.right, last.top, last.size, last.page, -1, last.base))
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
# a printed label: "[12]", "[Smi05]", "[Lin and Pantel, 2001]", "12.", ACS's "(12)", and Word's numbered list
# with no space after a two-digit number ("10.Hayta, E. N.; …")
# (and "/1/", as Journal de Physique numbered its references into the 1990s; an isotope in brackets opening a
# title's line, "[18F]fluorodeoxyglucose", "[3H]thymidine", is no label)
# (a web entry's access note, "[Accessed 10 March 2011]", "[cited 2013 Jan 03]", opening its last line, is no
# label: read as one, it split a Harvard bibliography of 100 entries into 6, at its web pages' notes)
LABEL_RE = re.compile(r"^\s*((?!\[\d{1,3}[A-Z][a-z]?\])"
                      r"(?!\[(?:[Aa]ccessed|[Cc]ited|[Ll]ast accessed|[Vv]iewed|[Rr]etrieved|[Oo]nline|[Ii]nternet|"
                      r"[Dd]ownloaded)\b)\[[^\]]{1,12}\]|"
                      r"(?!\[(?:[Aa]ccessed|[Cc]ited|[Ll]ast accessed|[Vv]iewed|[Rr]etrieved|[Dd]ownloaded)\b)"
                      r"\[[A-Z][^\]]{1,60}(?:1[89]|20)\d{2}[a-z]?\]|\d{1,3}\.(?=\s|[A-Z][a-z])"
                      r"|\(\d{1,3}\)(?=\s)|/\d{1,3}/(?=\s))\s*")
LAST_WORD = re.compile(r"[\w\-.]+$")
VANCOUVER_INITIAL = re.compile(r"(?:^|[\s,])(?!and\b|AND\b)[A-Z][^\W\d_]+\s[A-Z]$")
INITIAL = re.compile(r"^(?:[A-Z](?:\.-?[A-Z])*|[A-Z]\.?-[A-Z]|al|Jr|Sr|St|vs|eds?|Ed|pp|Vol|vol|No|no)$")


def _sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the '. '-separated parts of a reference, not splitting after initials or 'et al.'."""
    spans, start, last = [], 0, 0
    for m in re.finditer(r"[.?!]+\s+", text):
        # Only the text since the previous "[.?!] " can hold the word before this one (every such match ends
        # in a space, which no word crosses): searching from ``start`` instead re-read the whole of an author
        # list whose initials ("G. Aad, B. Abbott, …", 3,000 authors) never end a part, quadratic in its length.
        # (Where nothing stands between the two, "pp.\n. ", ``$`` before that final newline sees the word.)
        tail, last = text[last:m.start()] or text[start:m.start()], m.end()
        word = LAST_WORD.findall(tail)
        if word and (INITIAL.match(word[0].split(".")[-1] or "X") or INITIAL.match(word[0].rstrip("."))):
            # Vancouver "Doe K. A title": an initial after a bare surname (no comma) ends the author list
            # (but a given name, its middle initial, then the surname: natbib's ACL style "Michael J. Collins. 1997.",
            # "John M. Zelle and Raymond J. Mooney. 1996.": one word, then the year or the next author's names)
            vancouver = VANCOUVER_INITIAL.search(tail) is not None \
                and not re.match(r"(?:and|&|[A-Z]\.)\s", text[m.end():m.end() + 5]) \
                and not re.match(r"[A-Z][\w'’\-]+(?:\.\s+(?:1[89]|20)\d{2}[a-z]?\.|\s+(?:and|&)\s+[A-Z][a-z]+\s+[A-Z]\.\s)",
                                 text[m.end():m.end() + 60])
            if not vancouver:
                continue
        spans.append((start, m.start() + 1))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


# the words before the date a web page was read (and the day and month of that date), ending where its year starts
ACCESS_DATE = re.compile(r"(?i)\b(?:acesso em|acessado em|(?:last )?access(?:ed)?(?: on)?|cited|citado em|consultado(?: el| em)?|"
                         r"retrieved(?: on)?|viewed(?: on)?|visited(?: on)?|consult[ée] le|abgerufen am|zugriff am)"
                         r"\s*:?\s*(?:\d{1,2}(?:st|nd|rd|th)?\.?\s*(?:de\s+)?)?(?:[^\W\d_]{3,10}\.?\s*(?:de\s+)?)?"
                         r"(?:\d{1,2}(?:st|nd|rd|th)?,?\s*)?$")
# what ends an author list that a year follows: an initial ("E. L.", "A.~M.,"), "et al." or an ampersand
AFTER_NAMES = re.compile(r"(?:(?<![A-Za-z])[A-Z]\.|\bal\.|&)\s*,?\s*$")


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
    # a year is never part of an arXiv id or DOI, nor the first or last page of a range ("pp. 1703–1710")
    years = [m for m in YEAR_RE.finditer(raw)
             if not any(s <= m.start() < e for s, e in blocked) and m.start() >= offset
             and not re.match(r"\s?[–-]\s?\d", raw[m.end():m.end() + 3])
             and not re.search(r"(?:pp?\.|pages|[–-])\s?$", raw[max(0, m.start() - 6):m.start()])]
    # the date a web page was read is not the work's year: ABNT's "Acesso em: 4 set. 2020", "Cited: May 11, 2020",
    # "Accessed 10 March 2011" (SciELO, Harvard); kept where the entry prints no other year
    dated = [m for m in years if not ACCESS_DATE.search(raw, max(0, m.start() - 40), m.start())]
    years = dated or years
    paren_year = next((m for m in years if raw[m.start() - 1:m.start()] == "("), None)
    # astronomy's "Wright, E. L., Eisenhardt, P. R. M., et al. 2010, AJ, 140, 1868" (AAS, MNRAS, A&A): the year
    # follows the names straight after their last initial or "et al.", and the page after it may look like a
    # year too (1868); the year is that first one, not the last number
    after_names = years[0] if years and AFTER_NAMES.search(raw, max(0, years[0].start() - 12), years[0].start()) \
        and re.match(r"[a-z]?\s*[,.:;]", raw[years[0].end():years[0].end() + 3]) else None
    # Harvard without stops (Ubiquity Press: "Biddle, G 1990 King’s Cross and St Pancras … From 1800 to the
    # Present", "Bracker, A and Richmond, A 2009 Introduction"): the year follows the last initial, bare, and the
    # title follows it; the last year printed is the title's ("1800", "Rome 1975")
    bare_initials = years[0] if years and years[0].start() - offset < 150 \
        and re.search(r",\s(?:[A-Z]\s){1,3}$", raw[max(0, years[0].start() - 10):years[0].start()]) \
        and re.match(r"[a-z]?\s+[A-Z‘'\"“]", raw[years[0].end():years[0].end() + 3]) else None
    if paren_year or years:
        y = paren_year or after_names or bare_initials or years[-1]
        fields["year"] = (y.start(1), y.end(1))

    body = raw[offset:]
    quoted = re.search(r"[\"“”]([^\"“”]{8,})[\"”“]", body)
    colon = re.match(r"^([^:()\[\]]{3,250}?):\s+(?=[A-Z0-9“\"])", body)
    lncs = colon if colon and _only_names(colon.group(1)) else None
    surname_first = SURNAME_FIRST_LIST.match(body)
    if quoted and len(body[:quoted.start()].strip(" ,.:")) > 1:
        # IEEE: Authors, “Title,” Venue — the quotes delimit the title, the authors are what precedes it
        a_start, a_end = offset, offset + len(body[:quoted.start()].rstrip(" ,.:"))
        if inside := next((m for m in years if a_start < m.start() < a_end), None):
            a_end = inside.start() - (1 if raw[inside.start() - 1:inside.start()] == "(" else 0)
        title_end = offset + quoted.end(1)
        while raw[title_end - 1] in ",.;: ":
            title_end -= 1
        fields["authors"] = _author_spans(raw[a_start:a_end], a_start)
        fields["title"] = (offset + quoted.start(1), title_end)
        rest_start = offset + quoted.end()
    elif lncs:
        # LNCS: "Authors: Title. In: Venue"
        a_start, a_end = offset, offset + lncs.end(1)
        fields["authors"] = _author_spans(raw[a_start:a_end], a_start)
        t_start = offset + lncs.end()
        t_parts = _sentences(raw[t_start:])
        t_end = t_start + (t_parts[0][1] if t_parts else len(raw) - t_start)
        fields["title"] = (t_start, t_end - 1 if raw[t_end - 1] == "." else t_end)
        rest_start = t_end
    else:
        parts = [(s + offset, e + offset) for s, e in _sentences(body)]
        if not parts:
            return fields
        a_start, a_end = parts[0]
        if surname_first and surname_first.end() < len(body) and offset + surname_first.end() < a_end:
            # "AILAMAKI, A., DEWITT, D. J., AND SKOUNAKIS, M. Weaving relations…": the initials hid the full stop
            a_end = offset + surname_first.end()
            parts = [(a_start, a_end)] + [(s + a_end, e + a_end) for s, e in _sentences(raw[a_end:])]
        # "Smith, J. (2020)." and "SMITH, J. AND DOE, K. 2004." (ACM): the year ends the authors
        inside = next((m for m in years if a_start < m.start() < a_end and "year" in fields
                       and m.start(1) == fields["year"][0]), None)
        if inside is not None:
            after = inside.end() + len(re.match(r"[a-z]?[).,:\s]*", raw[inside.end():]).group())
            a_end = inside.start() - (1 if raw[inside.start() - 1:inside.start()] == "(" else 0)
            parts = [(a_start, a_end)] + [(s + after, e + after) for s, e in _sentences(raw[after:])]
        fields["authors"] = _author_spans(raw[a_start:a_end].rstrip(".,( "), a_start)
        rest = [p for p in parts[1:] if not re.fullmatch(r"[\s(]*\d{4}[a-z]?[).,\s]*", raw[p[0]:p[1]])]
        if not rest:
            return fields
        t_start, t_end = rest[0]
        rest_start = t_end
        candidate = raw[t_start:t_end].rstrip(".")
        if _looks_like_title(candidate):
            fields["title"] = (t_start, t_end - 1 if raw[t_end - 1] == "." else t_end)
        else:
            rest_start = t_start  # physics style: no title, the venue follows the authors
    venue_text = raw[rest_start:]
    m = re.match(r"\s*(?:In\s+)?", venue_text)
    v_start = rest_start + (m.end() if m else 0)
    stop = re.search(r",\s*(?=\d|pages|pp\.|vol\.|volume)|\.\s|\.$|;|,\s*((?:1[6-9]|20)\d{2})"
                     r"|\s(?=(?:1[6-9]|20)\d{2}\b)",
                     raw[v_start:])
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


SURNAME_FIRST_LIST = re.compile(
    r"^(?:(?:[A-Z][\w'’\-]+(?:\s[A-Z][\w'’\-]+)?),\s+(?:[A-Z]\.[\s-]?)+"
    r"(?:,\s*(?:and\s+|AND\s+|&\s+)?|\s+(?:and|AND|&)\s+|\s*$)?)+")
NAME_WORDS = {"and", "van", "von", "der", "den", "de", "da", "di", "del", "la", "le", "et", "al", "al.", "jr", "jr."}


def _only_names(text: str) -> bool:
    """Is this an author list ("Büchler, A.O., Zimmermann, O. and Miksovic, C."), not a title?"""
    words = re.findall(r"[^\s,;&]+", text)
    return bool(words) and len(words) <= 60 and ("," in text or " and " in text or len(words) <= 3) \
        and all(w[0].isupper() or w.lower() in NAME_WORDS for w in words)


def _looks_like_title(text: str) -> bool:
    """A title has words; a journal abbreviation with volume and page ("Phys. Rev. D 74 123507"), a URL or
    a bare year does not."""
    words = re.findall(r"[^\W\d_]{2,}", text)
    if len(words) < 3 or text.lower().startswith(("http", "www.", "doi")):
        return False
    if re.search(r"\b\d{1,4}\s+\d{1,6}\b|\[SPIRES\]", text):
        return False
    abbreviations = len(re.findall(r"\b[A-Z][a-z]{0,5}\.", text))
    return abbreviations < 0.5 * len(words)


SURNAME_SPACED_INITIALS = re.compile(
    r"((?:(?:[Vv]an|[Vv]on|[Dd]er|[Dd]en|[Dd]e|[Dd]a|[Dd]i|[Dd]el|[Dd]u|[Ll]a|[Ll]e)\s+)*"
    r"[A-ZÀ-ÖØ-ÞĀ-Ž][^\W\d_]+(?:['’\-][^\W\d_]+)*)\s+((?:[A-Z]\.\s?-?){0,3}[A-Z]\.?)(\s*et\.?\s+al\.?)?")


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
    masked = re.sub(r"\s+(?:and|AND|&)\s+", lambda m: "," + " " * (len(m.group()) - 1), text)
    for m in re.finditer(r"[^,;&]+", masked):
        chunk = text[m.start():m.end()]
        chunk_start = m.start() + len(chunk) - len(chunk.lstrip())
        chunk = chunk.strip()
        chunk = re.sub(r"^and\s+", "", chunk)
        if not chunk or chunk in ("et al.", "et al", "and"):
            continue
        c_start = base + text.index(chunk, chunk_start)
        words = chunk.replace("~", " ").split()
        if not words:
            continue  # a lone "~" between commas (OCR'd text: "Jones, ~, and Lee") names nobody
        if len(words) == 1:
            authors.append({"surname": (c_start, c_start + len(chunk))})
            continue
        # MNRAS's and A&A's surname first, initials after it spaced and no comma between ("Eisenstein D. J. et al.",
        # "Peebles P. J. E.", "Van de Voort F. et al."): the surname is the words before the initials
        if (spaced := SURNAME_SPACED_INITIALS.fullmatch(chunk)) and (spaced.group(3) or
                                                                     len(re.findall(r"[A-Z]", spaced.group(2))) >= 2):
            authors.append({"surname": (c_start + spaced.start(1), c_start + spaced.end(1)),
                            "given": (c_start + spaced.start(2), c_start + len(spaced.group(2).rstrip()) +
                                      spaced.start(2))})
            continue
        if re.fullmatch(r"[A-Z]{1,3}\.?|[A-Z]\.(?:-?[A-Z]\.?){1,3}", words[-1]) and len(words) >= 2 \
                and not re.fullmatch(r"[A-Z]\.", words[0]):
            # Vancouver "van Stokkum IHM", "Eddy SR", "Jones K."; Cambridge's dotted "Bennett G.J.", "Yaksh T.L."
            # (and French "Feldman M.S., 2000", whose last stop the field's comma cut off: "Feldman M.S")
            initials = words[-1]
            i_off = chunk.rfind(initials)
            # a generation after the surname ("Lynch III JJ", "Smith Jr JA") is no part of the name cited
            surname = re.sub(r"\s+(?:Jr|Sr|II|III|IV)\.?$", "", chunk[:i_off].rstrip())
            authors.append({"surname": (c_start, c_start + len(surname)),
                            "given": (c_start + i_off, c_start + i_off + len(initials))})
            continue
        surname = words[-1]
        s_off = chunk.rfind(surname)
        authors.append({"given": (c_start, c_start + len(chunk[:s_off].rstrip())),
                        "surname": (c_start + s_off, c_start + s_off + len(surname))})
    return authors


# ---------------------------------------------------------------------------
# In-text markers without links
# ---------------------------------------------------------------------------

# A bracket glued to a word by a hyphen is no citation: right after the word it names the word's variants
# ("BIKE-[1,2]", "BIKE-[3]" in a table of parameter sets), right before it a chemist's locants ("[1,3]-sigmatropic",
# "[2,3]-Wittig").
# natbib's notes in a numeric group: "[e.g., 15, 40, 30]", "[see also 4]" before, "[12, p. 5]", "[3, Theorem 2]" after
CITE_PRENOTE = r"(?i:(?:e\.\s?g\.|i\.\s?e\.|cf\.|see(?:\s+also)?|for (?:example|instance|a review)(?:,?\s+see)?),?\s+)"
CITE_POSTNOTE = r"(?i:,\s*(?:pp?\.|ch(?:ap)?\.|chapter|sec(?:tion)?\.?|§|thm\.|theorem|lemma|prop\.|proposition|" \
                r"cor\.|corollary|def\.|definition|eqs?\.|fig\.|table|appendix)\s*[\dA-Za-z.–-]{1,12})"
NUMERIC_MARKER = re.compile(rf"(?<![^\W_]-)\[{CITE_PRENOTE}?(\d{{1,3}}(?:\s*[-–,]\s*\d{{1,3}})*){CITE_POSTNOTE}?\](?!-[^\W\d_])")
# A surname may carry particles ("van der Maaten", "De Cao") and letters beyond ASCII ("Schölkopf", "Čech").
NAME = r"(?:(?:[Vv]an|[Vv]on|[Dd]er|[Dd]en|[Dd]e|[Dd]a|[Dd]i|[Dd]el|[Dd]u|[Dd]os|[Ll]a|[Ll]e)\s+)*" \
       r"[A-ZÀ-ÖØ-ÞĀ-Ž][^\W\d_]*(?:['’\-][^\W\d_]+)*"
# the word before the last author: "and", "&", or another language's ("Varian y Choi, 2012", "Müller und Roth",
# "Silva e Souza", "Dupont et Martin", "Neumann et Tome, 2005", "Jansen en de Vries", "Berg och Lund")
AND = r"(?:and|&|y|e|et|und|en|och|og)"
# (and the German publishers' "Chilisa/Preece 2005", "Elder/Johnson/Crosnoe 2006": the names joined by slashes)
AUTHOR = rf"{NAME}(?:,?\s+et\.?\s+al\.?|\s+and\s+others|(?:,\s+{NAME})*,?\s+{AND}\s+{NAME}"  # AAAI: "and others"
AUTHOR += rf"|(?:\s?/\s?{NAME})+)?"
# "2003", "2003a, b", "1972, 1973": one author's works in one marker
YEARS = r"(?:1[89]|20)\d{2}[a-z]?(?:,\s*(?:(?:1[89]|20)\d{2}[a-z]?|[a-z]\b))*"
PAREN_GROUP = re.compile(r"[(\[]([^()\[\]]*?(?:1[89]|20)\d{2}[a-z]?[^()\[\]]*)[)\]]")
# "Smith and Lee (2019)", "Smith et al. [2003]" (ACM), "Golub and Pereyra (1972, 1973)"
# (and with a page after a colon, as the social sciences print it: "Crozier et Friedberg (1977 : 409)",
# "(2000 : p 149)")
TEXTUAL = re.compile(rf"({AUTHOR})\s+[(\[]({YEARS})(?:\s?:\s?(?:pp?\.?\s?)?\d{{1,4}}(?:\s?[-–]\s?\d{{1,4}})?)?[)\]]")
# what every TEXTUAL match holds: a text without it is not searched (TEXTUAL tries a match at every capital)
BRACKETED_YEAR = re.compile(r"[(\[](?:1[89]|20)\d{2}")
CELL_CITE = re.compile(rf"({AUTHOR}),?\s+({YEARS})")  # a table cell's "Prieto, 1992", "Chung & Erickson 1997"


def _surname_key(name: str) -> str:
    """The word an author-year marker and a reference entry share: the first author's surname without its
    particles ("van Stokkum" and "Stokkum" both give "stokkum")."""
    first = re.split(rf"\s+et\.?\s+al|,|/|\s+{AND}\s+", name.strip())[0].split()
    # without its accents: a marker may print "Candes" for the entry's "Candès" (the author typed it plainer)
    return "".join(c for c in unicodedata.normalize("NFKD", first[-1].lower().replace("ı", "i"))
                   if not unicodedata.combining(c)) if first else ""


def _named_authors(authors: str) -> int:
    """How many people an entry's author part names ("Novembre, J. and M. Stephens": 2, "Kemp, C., & Regier,
    T.": 2, "J. Smith, K. Doe, and M. Lee": 3): the pieces between commas, "and" and "&" that hold a name."""
    pieces = re.split(rf",|;|\s{AND}\s", re.sub(r"\bet\s+al\b.*", "", authors))
    return sum(1 for piece in pieces if re.search(r"[A-Z][a-z\u00c0-\u024f'’-]+", piece))


def _fitting_author_list(cited: str, candidates: list[int], refs: list[Reference]) -> list[int]:
    """Of the entries one first author published in one year ("Novembre et al. (2008)" and "Novembre and
    Stephens (2008)", both "Novembre 2008"), those whose author list fits the citation: three or more names
    (or "et al.") for "X et al.", those that name Y for "X and Y", one name ("Lehtonen, Jussi") for "X" alone.
    All of them where none fits (an entry whose authors could not be read)."""
    if len(candidates) < 2:
        return candidates
    second = re.search(rf"\s{AND}\s+(.+)$", cited.strip())
    fits = []
    for i in candidates:
        ref = refs[i]
        authors = ref.raw[:ref.fields["year"][0]] if "year" in ref.fields else ref.raw[:80]
        named = _named_authors(authors)
        if re.search(r"\bet\.?\s+al\b", cited):
            ok = named >= 3 or re.search(r"\bet\s+al\b", authors) is not None
        elif second:
            ok = _surname_key(second.group(1)) in authors.lower() and not re.search(r"\bet\s+al\b", authors)
        else:
            ok = named <= 2 and not re.search(rf"\s{AND}\s|\bet\s+al\b", authors)
        if ok:
            fits.append(i)
    return fits or candidates


def _years(spec: str) -> list[str]:
    """"2003a, b" -> ["2003a", "2003b"]; "1972, 1973" -> ["1972", "1973"]."""
    out: list[str] = []
    for part in re.split(r"\s*,\s*", spec.strip()):
        if re.fullmatch(r"\d{4}[a-z]?", part):
            out.append(part)
        elif re.fullmatch(r"[a-z]", part) and out:
            out.append(out[-1][:4] + part)
    return out


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


PAREN_NUMERIC = re.compile(r"\((\d{1,3}(?:\s*[-–,]\s*\d{1,3})*)\)")
SLASH_MARKER = re.compile(r"(?<![\w/])/((?:\d{1,3}|[Il])(?:\s?[-–,]\s?\d{1,3})*)/(?![\w/])")
# a range in parentheses right after a count or a measure, "40 (25–71)", "16 (4-45)", "median 18 (2–24)", and in a
# table's row any group after one, "0.143 (12)": a statistic's range or spread, no citation; a year before them,
# "since 1998 (4)", is no such number, and a single number after a version in prose cites ("PREFAB 4.0 (35)")
AFTER_A_VALUE = re.compile(r"(?<![\d.,])(?:\d{1,3}|\d+\.\d+)%?\s*$")


def parenthesised_numbers_cite(texts: list[str], by_label: dict[int, int], printed_labels: tuple[str, ...] = ()) -> bool:
    """Does this paper cite by numbers in parentheses, "(8–10)" (Vancouver, as medical journals print it)?
    Only when the evidence is strong, since "(3)" is as often an equation or an item: no bracketed markers,
    a numbered bibliography of 5 or more entries, the numbers in parentheses naming at least half of
    them, and most of them first named in the order of the bibliography, as Vancouver numbers them. A
    bibliography that prints its labels in brackets ("[1] A. Alexanderian. …") is cited by them: its numbers in
    parentheses are equations, numbered in order as Vancouver's citations are ("y = Fm + η (1)", "by (4)")."""
    if len(by_label) < 5 or sum(len(NUMERIC_MARKER.findall(t)) for t in texts) > 2:
        return False
    if printed_labels and sum(label.startswith("[") for label in printed_labels) > 0.5 * len(printed_labels):
        return False
    first_seen: list[int] = []
    seen: set[int] = set()
    for text in texts:
        for m in PAREN_NUMERIC.finditer(text):
            for n in expand_numbers(m.group(1)):
                if n in by_label and n not in seen:
                    seen.add(n)
                    first_seen.append(n)
    if len(seen) < 0.5 * len(by_label):
        return False
    in_order, highest = 0, 0
    for n in first_seen:
        in_order += n <= highest + 2
        highest = max(highest, n)
    return in_order >= 0.7 * len(first_seen)


# an order or a map between two values, right after a bracket ("[1, 2] ≪x [1, 2, 3]", "[1] → [1, 2]"): the bracket is
# a value compared or mapped, never a citation
RELATION_AFTER = re.compile(r"\s*[≪≫≺≻≼≽⊏⊑⊐⊒→↦<>≤≥=]")


def _list_value(text: str, start: int, end: int) -> bool:
    """Is the bracket ``text[start:end]`` a list's value, not a citation: in a sentence that also prints an empty
    list "[]" ("x took on the versions [], [1], [1, 2]"; not "[ ]", what a formula whose glyphs the layer lacks
    leaves: "E[ ]"), before an order, a map or an equals sign ("[1, 2, 3] ≪ [1, 2]", "f[5] = 8"), after an order
    sign ("≪x [1, 2, 3]"), or glued to a one-letter name after a space or a parenthesis ("x[1]", "(F[1,12]": an
    index, an application). (The word before says too little: "the clock value [34]", "Global Arrays [20]" cite;
    a longer word glued to the bracket is a space the layer lost: "techniques[8, 9]", "in[5]".)"""
    if RELATION_AFTER.match(text, end) or re.search(r"[≪≫≺≻≼≽⊏⊑⊐⊒→↦]\w{0,2}\s*$", text[max(0, start - 6):start]):
        return True
    if re.search(r"(?:^|[\s(])[^\W\d_]$", text[max(0, start - 3):start]):
        # glued to a one-letter name: an index or an application ("x[1]", "M[2,2]", "(f[5]"), no citation (not a
        # formula's last glyph run into its citation: "order α²/m2Q[13]")
        return True
    return any(_same_sentence(text, start, e.start()) for e in re.finditer(r"\[\]", text))


def _same_sentence(text: str, a: int, b: int) -> bool:
    """Do offsets ``a`` and ``b`` of ``text`` lie in one sentence (no full stop and capital between them)?"""
    lo, hi = min(a, b), max(a, b)
    return re.search(r"[.!?]\s+[A-Z]", text[lo:hi]) is None


def _marker_index(refs: list[Reference]) -> tuple[dict, dict, dict]:
    """What ``find_markers`` looks markers up in: printed number -> entry, (first surname, year) -> entries,
    entry -> its year's letter. Built once per bibliography, not once per paragraph (rebuilt for each of a
    paper's paragraphs it cost paragraphs × entries: 1 s of a 64-page paper's 245 entries and 345
    paragraphs); keyed by what it is built from, so a bibliography changed in between is indexed anew.
    The dicts returned are shared: read them, never change them."""
    return _marker_index_of(tuple((ref.label, ref.fields.get("first_surname", ""), ref.fields.get("year_text"),
                                   ref.raw) for ref in refs))


@lru_cache(maxsize=8)
def _marker_index_of(key: tuple) -> tuple[dict, dict, dict]:
    by_label = {}
    for i, (label, _, _, _) in enumerate(key):
        digits = re.sub(r"\D", "", label)
        if digits:
            by_label[int(digits)] = i
    by_author_year: dict[tuple[str, str], list[int]] = {}
    suffix: dict[int, str] = {}  # "2003a": the letter that tells one author's works of a year apart
    for i, (_, surname, year_text, raw) in enumerate(key):
        first = _surname_key(surname)
        if first and year_text:
            by_author_year.setdefault((first, year_text), []).append(i)
            # the year parsed may be a later mention ("… RTE 2007"): the letter follows the first one with it
            letter = re.search(rf"(?<!\d){year_text}([a-z])(?![a-z])", raw)
            suffix[i] = letter.group(1) if letter else ""
    return by_label, by_author_year, suffix


# a relation sign right before a bracket: the bracket is an interval or a vector of a formula set in the sentence
# ("loops of length ∈ [3, 10] bp", "the knob k = [2, 4]"), never a citation
MATH_BEFORE = re.compile(r"[∈∉=≤≥<>⊂⊆⊃⊇≈∼]\s*$")
# a bracket of two numbers that the word before it names as an interval ("attribute Age with domain [1, 100]", "in
# the range [2, 8]"): its bounds, never two works; a plural names things ("between the two domains [5,6]" cites),
# and two numbers in a row are as often two works as an interval
INTERVAL_BEFORE = re.compile(r"\b(?:domain|range|interval|bounds|between|within)\s*(?:of\s*)?$", re.I)


# what follows a bracket of values, never a citation: a multiplier or a unit ("lines at [1, 3, 6, 9] times the
# rotational frequency", "[2, 4, 8] mm", "[10, 20] %"): a word of prose or a stop follows a citation
QUANTITY_AFTER = re.compile(r"\s?(?:times\b|×|-?fold\b|%|°|(?:mm|cm|nm|km|[μµ]m|ms|[kMG]?Hz|dB|kg|mg|rpm|bp|kb|px|"
                            r"kW|MW|kV|mV|mA|GB|MB|TB)\b)")


def _interval_or_bin(text: str, start: int, listed: list[int], numbers: list[int]) -> bool:
    """Is the bracket at ``start`` (its numbers as printed, ``listed``, and as a range expands them) an interval or a
    bin, not a citation: a range of more than MAX_CITED_RANGE numbers ("the number of age values ([1-100])", a
    figure's axis "[101-200]"), two numbers, not consecutive, that the word before names as an interval's bounds,
    or values that a multiplier or a unit follows (``QUANTITY_AFTER``)."""
    end = text.find("]", start)
    return len(numbers) > MAX_CITED_RANGE or (len(listed) == 2 and listed[0] + 1 < listed[1]
                                              and bool(INTERVAL_BEFORE.search(text, max(0, start - 24), start))) \
        or (end >= 0 and bool(QUANTITY_AFTER.match(text, end + 1)))


def _call_argument(text: str, start: int) -> bool:
    """Is the bracket at ``start`` inside the parentheses of a call, a parenthesis glued to the name before it
    ("client.send_query(user: 1, items: [1,2], num: 10)" of a code listing, "f(x, [2, 3])"): an argument, no
    citation. A citation's parenthesis follows a space ("(see [1, 2])"); a closed one says nothing."""
    depth = 0
    for k in range(start - 1, max(-1, start - 160), -1):
        ch = text[k]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                return k > 0 and bool(re.match(r"[A-Za-z_][\w.]*$", text[max(0, k - 40):k].split()[-1] if
                                               text[max(0, k - 40):k].split() else "")) and text[k - 1] != " "
            depth -= 1
    return False


def find_markers(text: str, refs: list[Reference], parens: bool = False,
                 table: bool = False) -> list[tuple[int, int, list[int]]]:
    """Citation markers in ``text`` found by pattern: (start, end, reference indices); ``parens``: numbers
    in parentheses are citations in this paper (see ``parenthesised_numbers_cite``). ``table``: the text is a
    table's row (cells joined by ``CELL_SEPARATOR``), where a cell that holds nothing but author-year
    citations without brackets names them ("Spring, 1989; Prieto, 1992" in a column of references): every one
    of them must name an entry by surname and year, else the cell is left alone."""
    by_label, by_author_year, suffix = _marker_index(refs)
    found = []
    if by_label:
        vectors = []
        for m in NUMERIC_MARKER.finditer(text):
            numbers = expand_numbers(m.group(1))
            listed = [int(v) for v in re.findall(r"\d+", m.group(1))]
            if 0 in listed or len(set(listed)) < len(listed):
                vectors.append((m.start(), len(listed)))  # "[1, 1, 1, 0]" is a vector, "[0, 1]" an interval
                continue
            if MATH_BEFORE.search(text, max(0, m.start() - 4), m.start()) or \
                    _interval_or_bin(text, m.start(), listed, numbers) or _call_argument(text, m.start()):
                continue  # "loops of length ∈ [3, 10] bp", "x = [2, 4]", "domain [1, 100]": an interval or a vector
            if _list_value(text, m.start(), m.end()):
                continue  # "the list [1, 2], obtaining [1, 2, 3]", "versions [], [1], [1, 2]": a list's value
            if not numbers or any(n not in by_label for n in numbers):
                continue
            idx = [by_label[n] for n in numbers]
            if idx:
                found.append((m.start(1), m.end(1), idx, len(listed)))
        # a group of as many numbers as a vector or an interval of the same sentence is one of its kind ("[1, 2]"
        # beside "[0, 1]", "[1, 2, 3] from [8, 9, 10] produces [7, 7, 7]"), not a citation
        found = [(s, e, idx) for s, e, idx, n in found
                 if not any(n == k and _same_sentence(text, s, v) for v, k in vectors)]
        # Journal de Physique's "/1/", "/3,4/", where its bibliography is numbered "/1/" (an OCR layer reads
        # "/1/" as "/I/" or "/l/")
        for m in SLASH_MARKER.finditer(text) if sum(r.label.startswith("/") for r in refs) > 0.5 * len(refs) else ():
            numbers = expand_numbers(re.sub(r"(?<![\d])[Il](?![\d])", "1", m.group(1)))
            if numbers and all(n in by_label for n in numbers):
                found.append((m.start(1), m.end(1), [by_label[n] for n in numbers]))
        for m in PAREN_NUMERIC.finditer(text) if parens else ():
            numbers = expand_numbers(m.group(1))
            if not numbers or any(n not in by_label for n in numbers):
                continue
            around = text[max(0, m.start() - 24):m.start()]
            if CROSS_REFERENCE.search(around.rstrip()) or re.search(r"[=<>+]\s*$", around) \
                    or (AFTER_A_VALUE.search(around) and (table or re.search(r"[-–]", m.group(1)))) \
                    or re.match(r"\s*[=<>]", text[m.end():]):
                continue  # "Eq. (3)", "Fig. (2)", "x = (4)": not a citation; "18 (2–24)": a range
            if table and re.search(r"[\d%]\s*$", around):
                continue  # a table cell's "8 (1, 14)", "12 (80)": a median's range, a count's share
            found.append((m.start(1), m.end(1), [by_label[n] for n in numbers]))
    if by_author_year:
        def opens(i: int, key: str) -> bool:
            head = refs[i].raw[len(refs[i].label):][:40].lower()
            return key in "".join(c for c in unicodedata.normalize("NFKD", head) if not unicodedata.combining(c))

        def lookup(name: str, years: str) -> list[int]:
            key, idx = _surname_key(name), []
            for year in _years(years):
                candidates = by_author_year.get((key, year[:4]), [])
                if not candidates:
                    # "(ICOMOS 1994: 2)", "(CAC-ACCR 2000: code I)" for "ICOMOS 1994. The Nara Document … [Accessed
                    # 21 September 2010]": a corporate author or an acronym, its entry parsed for a later word and
                    # year (an access date); the entry that opens with the whole name and that year right after it
                    # (a corporate name's first words, "English Heritage 2010", are left out of the marker's name)
                    head = re.compile(rf"(?:[A-Z][\w'’&-]*\s+){{0,3}}{re.escape(name.strip())}[\s,.]*\(?{re.escape(year)}(?![\da-z])")
                    candidates = [i for i, ref in enumerate(refs) if head.match(ref.raw[len(ref.label):].lstrip(" .[]"))]
                if candidates and not any(opens(i, key) for i in candidates) \
                        and not any(REPEATED_AUTHORS.match(refs[i].raw) for i in candidates):
                    # the parse took a word of a title for the entry's author ("ECCO 2008 Terminology to … Cultural
                    # Heritage", Harvard without commas): "English Heritage 2008" names the entry that opens with
                    # that name and prints that year near its start, where there is one
                    # (in the entries' order)
                    opening = [i for i in range(len(refs)) if opens(i, key) and year[:4] in refs[i].raw[:80]]
                    candidates = opening or candidates
                exact = [i for i in candidates if suffix.get(i) == year[4:]]
                idx.extend(_fitting_author_list(name, exact or candidates, refs))
            return list(dict.fromkeys(idx))

        for m in PAREN_GROUP.finditer(text):
            idx = []
            # "(Lee, 2019; Kim, 2020)", and with a comma between them: "(You, 2021, Duron-Ramos et al., 2018)"
            # (ABNT, Brazil's style, joins a work's authors by semicolons, the year after the last: "(Russell;
            # Sugimoto, 2009; Bufrem, 2016)": a piece that is a bare name is the first author of the next piece's work)
            first_author = ""
            for cite in re.split(r";|(?<=\d),\s+(?=[A-Z][^\W\d_])|(?<=\d[a-z]),\s+(?=[A-Z][^\W\d_])", m.group(1)):
                if c := re.search(rf"({AUTHOR}),?\s+({YEARS})", cite):
                    idx.extend(lookup(first_author or c.group(1), c.group(2)))
                    first_author = ""
                elif re.fullmatch(NAME, cite.strip()) and not re.search(r"^[A-Z]{2}|[a-z][A-Z]", cite.strip()):
                    # (an acronym or a survey's name is no author: "(PFGE; Pradella et al., 2010)", "(HATnet; Bakos
                    # et al. 2004)")
                    first_author = first_author or cite.strip()
                else:
                    first_author = ""
            if idx:
                found.append((m.start(1), m.end(1), list(dict.fromkeys(idx))))
        for m in TEXTUAL.finditer(text) if BRACKETED_YEAR.search(text) else ():
            if idx := lookup(m.group(1), m.group(2)):
                found.append((m.start(), m.end(), idx))
        start = 0
        for cell in text.split(CELL_SEPARATOR) if table else ():
            lead = len(cell) - len(cell.lstrip())
            core = cell.strip().rstrip(".")
            cites = [CELL_CITE.fullmatch(part.strip()) for part in core.split(";")]
            if core and all(cites):
                found_here = [lookup(c.group(1), c.group(2)) for c in cites]
                if all(found_here):
                    found.append((start + lead, start + lead + len(core),
                                  list(dict.fromkeys(i for idx in found_here for i in idx))))
            start += len(cell) + len(CELL_SEPARATOR)
    # a bibliography labelled by keys ("[Aho 85]", "[Knu84]", "[MacQueen 84a]"): a bracket whose every part is one
    # of those printed keys names those entries ("[Demers 79, Hook 84]"); "[Int]", "List[Item]" name none
    keys = _key_labels(tuple(ref.label for ref in refs))
    for m in KEY_GROUP.finditer(text) if keys else ():
        parts = [" ".join(part.split()) for part in re.split(r"[,;]", m.group(1))]
        if all(part in keys for part in parts):
            found.append((m.start(1), m.end(1), list(dict.fromkeys(keys[part] for part in parts))))
    found.sort()
    merged: list[tuple[int, int, list[int]]] = []
    for start, end, idx in found:  # drop overlaps, first wins
        if merged and start < merged[-1][1]:
            continue
        merged.append((start, end, idx))
    return merged


# a bracket of one or more keys, "[Strachey 67]", "[Demers 79, Hook 84]", "[Knu84; Wir83]" (and across a line's end)
KEY_GROUP = re.compile(r"\[([^\[\]]{2,80})\]")
# the fewest entries labelled by keys, and their least share of the bibliography, for keys to be markers
MIN_KEY_LABELS = 3


@lru_cache(maxsize=8)
def _key_labels(labels: tuple[str, ...]) -> dict[str, int]:
    """Printed key -> entry index, where the bibliography labels its entries by keys ("[Aho 85] A.V.Aho, …",
    "[Knu84] D. E. Knuth, …"): a bracketed label with a letter in it, on at least MIN_KEY_LABELS entries and half
    of them; {} for a numbered or unlabelled bibliography. A key printed twice names neither entry."""
    keys: dict[str, int] = {}
    twice: set[str] = set()
    for i, label in enumerate(labels):
        m = re.fullmatch(r"\s*\[([^\[\]]*[^\W\d_][^\[\]]*)\]\s*", label)
        if m:
            key = " ".join(m.group(1).split())
            if key in keys:
                twice.add(key)
            keys.setdefault(key, i)
    for key in twice:
        del keys[key]
    return keys if len(keys) >= max(MIN_KEY_LABELS, len(labels) / 2) else {}


# ---------------------------------------------------------------------------
# The whole document
# ---------------------------------------------------------------------------

@dataclass
class Paragraph:
    section: int
    chars: list[Char]
    table: bool = False  # one row of a table
    abstract: bool = False  # the abstract: written only where it cites a work the body does not (section -1)
    note: str = ""  # a footnote's mark ("23"): this paragraph is that footnote's text
    # in a body paragraph: (start, end, reference indices) of each note mark whose footnote names works
    note_marks: list = field(default_factory=list)


@dataclass
class Document:
    title: str
    sections: list[str]
    paragraphs: list[Paragraph]
    references: list[Reference]
    links: dict[int, list[Link]]
    n_pages: int
    # every line before the bibliography, read or left out (captions, tables, table notes), and the raised
    # groups among them: what the file's text names, for ``citation_evidence``
    layer_text: str = ""
    layer_raised: tuple[str, ...] = ()
    # the numbered labels ("[12]", "12.") that open a line of the bibliography's region: what it prints, against
    # the entries the split read from it
    printed_labels: tuple[str, ...] = ()


def _body_above_its_notes(lines: list[Line], sizes: Counter, size: float) -> float:
    """The body's size where the commonest size is its footnotes': a law review sets more words in its notes
    than in its body (a 10.5 pt body over 9 pt notes, 60% of the characters), and read at the notes' size every
    body line was larger than the body and stood as a heading. A larger size (up to 1.4 times) holding a quarter
    as many characters whose full lines stand above every full line of the commonest size in their column, on
    seven in ten of the three or more columns holding both, is the body's."""
    for larger in sorted((s for s, n in sizes.items() if size < s <= size * 1.4 and n >= 0.25 * sizes[size]),
                         key=lambda s: -sizes[s]):
        lowest: dict[tuple[int, int], float] = {}  # (page, column) -> lowest baseline of a full line at the larger
        highest: dict[tuple[int, int], float] = {}  # ... -> highest baseline of a full line at the commonest size
        for ln in lines:
            if len(ln.text) < 30:
                continue
            key = (ln.page, ln.column)
            if abs(ln.size - larger) < 0.3:
                lowest[key] = min(lowest.get(key, ln.base), ln.base)
            elif abs(ln.size - size) < 0.3:
                highest[key] = max(highest.get(key, ln.base), ln.base)
        both = [k for k in lowest if k in highest]
        if len(both) >= 3 and sum(lowest[k] > highest[k] for k in both) >= 0.7 * len(both):
            return larger
    return size


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
        ocr = ocr_text_layer(doc)
        pages, links = [], {}
        names = _destination_names(doc)
        for i in range(len(doc)):
            try:
                lines, page_links = _page_lines(doc, i, names, order=False)
            except pdfium.PdfiumError as exc:
                raise ExtractionError(f"PDFium cannot read page {i + 1} ({exc}): the file is damaged; "
                                      f"download it again or convert it with --backend grobid") from exc
            pages.append(lines)
            links[i] = page_links
    finally:
        doc.close()
    if not any(pages):
        raise ExtractionError("no text layer (a scanned PDF?)")
    pages = drop_page_furniture([reading_order(lines, lines[0].page_width) if lines else lines
                                 for lines in drop_stepped_line_numbers(pages)])
    all_lines = [ln for lines in pages for ln in lines]
    # a text layer set word by word on most of its lines is OCR's, whatever the Producer says (a 1994 scan
    # with no Producer): its markers carry OCR's misreadings ("et aL,", "et at.")
    ocr = ocr or sum(len(ln.text) for ln in all_lines if ln.pieces) > 0.5 * sum(len(ln.text) for ln in all_lines)
    # The body size is the commonest size before the bibliography (a long bibliography in small type
    # would otherwise outvote the body).
    last_refs = next((i for i in range(len(all_lines) - 1, -1, -1)
                      if REFERENCES_HEADING.match(all_lines[i].text.strip())), len(all_lines))
    before = all_lines[:last_refs] if last_refs > 0.3 * len(all_lines) else all_lines
    # (each distinct size rounded once, in the order first seen, so that ties fall as if each character's were)
    sizes = Counter()
    for size, count in Counter([c.size for ln in before for c in ln.chars if not c.text.isspace()
                                and not c.sup]).items():
        sizes[round(size * 2) / 2] += count
    body_size = sizes.most_common(1)[0][0] if sizes else 10.0
    # A journal sets its methods, legends, tables and notes smaller than its body, never larger: where a size a
    # little larger than the commonest holds nearly as many characters (MCP: 9 pt body, 8 pt Experimental
    # Procedures, legends and tables, 28,499 characters against 28,820), that larger size is the body's; read
    # at the smaller size, every line of the body was larger than the body and stood as a heading.
    if sizes:
        top = sizes[body_size]
        body_size = max((s for s, n in sizes.items() if body_size < s <= body_size * 1.25 and n >= 0.9 * top),
                        default=body_size)
        body_size = _body_above_its_notes(before, sizes, body_size)
    weights = Counter([c.weight for ln in all_lines for c in ln.chars if c.text.isalpha()])
    bold_from = max(600, (weights.most_common(1)[0][0] if weights else 400) + 150)
    for ln in all_lines:
        ln.bold_from = bold_from
    vocabulary = Vocabulary(" ".join(ln.text for ln in all_lines))
    # a table's cells are read row by row, each row one line (and one paragraph of the body)
    # (not in an OCR layer: its specks and split words line up by chance)
    if not ocr:
        widths = sorted(ln.x1 - ln.x0 for ln in all_lines if len(ln.text) > 30 and abs(ln.size - body_size) < 0.6
                        and ln.column >= 0)
        text_column = widths[int(0.75 * (len(widths) - 1))] if widths else 0.0
        starts = Counter(round(ln.x0) for ln in all_lines if len(ln.text) > 30 and abs(ln.size - body_size) < 0.6)
        margins = tuple(x for x, n in starts.items() if n >= 0.05 * sum(starts.values()))
        pages = [read_tables(lines, body_size, vocabulary, text_column, margins) for lines in pages]
    all_lines = [ln for lines in pages for ln in lines]
    lefts = {i: _column_lefts([ln for ln in lines if not ln.table]) for i, lines in enumerate(pages)}
    column_width = {}
    for i, lines in enumerate(pages):
        widths = sorted(ln.x1 - ln.x0 for ln in lines if abs(ln.size - body_size) < 0.6 and not ln.table)
        column_width[i] = widths[int(0.9 * (len(widths) - 1))] if widths else 0.0

    first = [ln for ln in pages[0] if ln.text.strip()] if pages else []
    title = ""
    if first:
        top_lines = first[:12]
        biggest = max(ln.size for ln in top_lines)
        if biggest > body_size * 1.15:
            title = " ".join(ln.text.strip() for ln in top_lines if abs(ln.size - biggest) < 0.5)

    headings = [not ln.table and is_heading(ln, body_size, column_width[ln.page]) for ln in all_lines]
    _drop_headings_inside_a_line(all_lines, headings)
    # The bibliography starts at the last "References" heading (a table of contents lists it too), unless
    # that one is a running head naming the section ("References 11" over each page of the bibliography:
    # CMS, JHEP, Springer) whose first entry below continues a numbered list that an earlier heading opened.
    candidates = [i for i in range(len(all_lines) - 1, -1, -1)
                  if headings[i] and REFERENCES_HEADING.match(all_lines[i].text.strip())]
    ref_start = candidates[0] if candidates else None
    # A heading with no entry under it before the next heading (the head of a page holding only a figure,
    # or the page before an appendix) is passed over the same way.
    for n, i in enumerate(candidates[:-1]):
        below = list(itertools.takewhile(lambda k: not headings[k], range(i + 1, min(i + 7, len(all_lines)))))
        first = next((m for k in below if (m := re.match(r"^\s*\[?(\d{1,3})[\].]\s", all_lines[k].text))), None)
        if len(below) >= 2 and (first is None or int(first.group(1)) <= 1):
            break
        ref_start = candidates[n + 1]
    # A publisher's notice page after the paper (HighWire's "References  This article cites 54 articles, …",
    # e-mail alerts, subscriptions) has a References heading with no entry under it: where no year is printed
    # below the last heading and an earlier one has dated entries below it, the bibliography is the earlier one.
    def dated_lines_below(i: int) -> int:
        below = itertools.takewhile(lambda k: not (headings[k] and REFERENCES_HEADING.match(all_lines[k].text.strip())),
                                    range(i + 1, min(i + 60, len(all_lines))))
        return sum(1 for k in below if YEAR_RE.search(all_lines[k].text))

    if ref_start is not None and dated_lines_below(ref_start) < 2:
        ref_start = next((i for i in candidates if i < ref_start and dated_lines_below(i) >= 3), ref_start)
    # A supplement set after the paper with a bibliography of its own ("SUPPLEMENTARY ONLINE DATA" …
    # "REFERENCES" 1–4: Biochemical Journal) holds the last References heading: the paper's bibliography is
    # the one before the supplement, and the supplement, whose markers name its own entries, is left out.
    # (a thesis's papers appended after its bibliography are set apart the same way: each opens with its own
    # title and "Abstract" and ends with its own references)
    # (the supplement's title may run on in lower case, and so not read as a heading: "SUPPLEMENTARY MATERIAL (only
    # available in the electronic version)", Acta Amazonica: its words before the parenthesis in capitals)
    def supplement_title(text: str) -> bool:
        head = text.split("(", 1)[0].strip()
        return "(" in text and len(text.split()) <= 12 and head.isupper() and SUPPLEMENT_HEADING.match(head) is not None

    def supplement_between(a: int, b: int) -> bool:
        return any((headings[k] and (SUPPLEMENT_HEADING.match(all_lines[k].text.strip())
                                     or ABSTRACT_HEADING.match(all_lines[k].text.strip())))
                   or supplement_title(all_lines[k].text.strip()) for k in range(a + 1, b))

    supplement_refs = None
    if ref_start is not None:
        earlier = [i for i in candidates if len(all_lines) // 3 < i < ref_start]
        # (the nearest heading before the supplement: one inside it, a table's "Reference" column, is passed over)
        before = next((i for i in earlier if supplement_between(i, ref_start)), None)
        if before is not None and _entry_follows(all_lines, headings, before):
            ref_start = before
        supplement_refs = min((i for i in candidates if i > ref_start and supplement_between(ref_start, i)),
                              default=None)
    # A magazine's sidebars (boxes) printed after the article, each with a reference list of its own numbered
    # from 1 again (IEEE Computer): the article's bibliography is the longest of those lists, not the last;
    # the sidebars are left out, as a supplement is (their markers name their own entries)
    sidebars = False
    if ref_start is not None and supplement_refs is None and len(candidates) >= 2:
        def label_run(i: int) -> int:
            later = [k for k in candidates if k > i]
            stop = min(later) if later else len(all_lines)
            run = 0
            for k in range(i + 1, stop):
                m = re.match(r"^\s*\[?(\d{1,3})[\].]\s", all_lines[k].text)
                if m and int(m.group(1)) == run + 1:
                    run += 1
            return run

        lists = [i for i in sorted(candidates) if i > len(all_lines) // 3 and label_run(i) >= 1
                 and re.match(r"^\s*\[?1[\].]\s", next((all_lines[k].text for k in range(i + 1, min(i + 4, len(all_lines)))
                                                        if not headings[k]), ""))]
        if len(lists) >= 2 and ref_start in lists:
            longest = max(lists, key=label_run)  # (the first of equally long ones)
            if label_run(longest) > label_run(ref_start) and any(
                    headings[k] and not REFERENCES_HEADING.match(all_lines[k].text.strip())
                    for k in range(longest + 1, min(k for k in lists if k > longest))):
                supplement_refs = min(k for k in lists if k > longest)
                ref_start, sidebars = longest, True
    if ref_start is None:
        ref_start = find_unheaded_bibliography(all_lines)
    if ref_start is not None:
        # (headed or not: revtex sets no heading, its entries open the band under both columns' text)
        all_lines, headings, ref_start = _lift_text_above_a_bibliography_band(all_lines, headings, ref_start,
                                                                              body_size)
    paragraphs, sections = _body(all_lines, headings, ref_start, title, body_size, lefts, vocabulary, strict=True)
    if not paragraphs or sections == [""]:
        # No section heading recognised: read everything between the title block and the bibliography.
        paragraphs, sections = _body(all_lines, headings, ref_start, title, body_size, lefts, vocabulary,
                                     strict=False)
    ref_lines: list[Line] = []
    floated: list[list[Line]] = []  # captions of floats set among the entries
    if ref_start is not None:
        for i in range(ref_start + (1 if headings[ref_start] else 0), len(all_lines)):
            ln = all_lines[i]
            text = ln.text.strip()
            if END_MATTER.match(text) and (headings[i] or text.isupper() or ln.bold) and len(ref_lines) > 2:
                # Springer's "Affiliations" list, numbered 1, 2, 3 by raised marks: no entries, no body. (In
                # capitals it ends the bibliography also where it fills a narrow column's width, as Cambridge's
                # "AUTHORS' ADDRESSES" over its short address lines does)
                # (set at the foot of the left column under the last entry there, "About the Authors" heads a
                # block below both columns: the right column's lines above it, read after it, are entries still:
                # Cogitatio)
                for ln2 in itertools.takewhile(lambda x: x.page == ln.page and x.column >= 0 and x.column != ln.column
                                               and x.base > ln.base + ln.size, all_lines[i + 1:]):
                    ref_lines.append(ln2)
                break
            if sidebars and headings[i] and len(ref_lines) > 2 and not LABEL_RE.match(text):
                break  # the first sidebar's heading
            if headings[i] and supplement_refs is not None and i < supplement_refs and ABSTRACT_HEADING.match(text) \
                    and len(ref_lines) > 2:
                # a paper appended after the bibliography: its markers name its own entries; its title and
                # authors above its abstract, on the page it starts, are no entries either
                while ref_lines and ref_lines[-1].page == ln.page:
                    ref_lines.pop()
                break
            if supplement_refs is not None and i < supplement_refs and supplement_title(text) and len(ref_lines) > 2:
                break  # a supplement whose title reads as no heading (see supplement_title)
            if headings[i] and (AFTER_BIBLIOGRAPHY.match(text) or APPENDIX_LETTER.match(text) and not YEAR_RE.search(text)) \
                    and not LABEL_RE.match(text) and len(ref_lines) > 2 \
                    and not _labels_go_on(ref_lines, all_lines[i + 1:]):
                if supplement_refs is not None and i < supplement_refs:
                    break  # a supplement with its own bibliography: its markers do not name these entries
                # NeurIPS, ICML, arXiv and journals put appendices after the bibliography: they are body
                # text, and their citations count like any other
                more, more_sections = _body(all_lines, headings, None, title, body_size, lefts, vocabulary,
                                            strict=False, begin=i)
                paragraphs += [Paragraph(par.section + len(sections), par.chars, par.table) for par in more]
                sections += more_sections
                break
            if not ln.table and CAPTION_START.match(text) or floated and _caption_goes_on(floated[-1], ln):
                # a float LaTeX set on the bibliography's pages ("FIG. 2. … CAST [59, 60] …" across both columns
                # of the last page): its caption is no entry, and cites like the body's captions
                if CAPTION_START.match(text):
                    floated.append([])
                floated[-1].append(ln)
                continue
            ref_lines.extend(ln.cells if ln.table else [ln])  # a table's row in the bibliography: its lines

    if ref_lines and not ocr:
        # a page after the bibliography's start with no line at its entries' size holds none of its entries: the
        # figures LaTeX flushes after the bibliography (A&A), their tick labels and captions
        # (the entries' size: the commonest among the first lines under the heading, which are entries)
        first = [ln for ln in ref_lines if ln.page == ref_lines[0].page and len(ln.text.strip()) > 20][:6]
        entry_size = Counter(round(ln.size * 2) / 2 for ln in first).most_common(1)[0][0] if first else 0.0
        pages_of_entries = {ln.page for ln in ref_lines if abs(ln.size - entry_size) < 0.3 and len(ln.text.strip()) > 20}
        if first:
            ref_lines = [ln for ln in ref_lines if ln.page in pages_of_entries]
    for caption in floated:  # read as a caption in the body is: set small, it is left out
        if caption[0].size >= 0.88 * body_size:
            chars = join_lines([list(ln.chars) for ln in caption], vocabulary)
            paragraphs.append(Paragraph(max(len(sections) - 1, 0), chars))
    if ocr:
        # OCR specks ("~", a stray "R" left of the column) are no lines of an entry; one set left of the
        # column made every entry's lines look indented under it, and the bibliography three entries long
        ref_lines = [ln for ln in ref_lines if sum(ch.isalnum() for ch in ln.text) >= 2]
        for par in paragraphs:
            read_ocr_markers(par.chars)
    printed_labels = tuple(m.group(1) for ln in ref_lines if (m := PRINTED_LABEL.match(ln.text)))
    references = split_references(_sub_columns(ref_lines), links, vocabulary)
    number_unlabelled_bibliography(paragraphs, references)
    repair_misprinted_labels(references)
    if _entries_are_notes(references):
        # endnotes ("ENDNOTES" 1. … 41. after the text, read as a numbered list): notes, not works; each becomes
        # a note of its own for ``link_notes``, which reads the works they cite
        paragraphs += [Paragraph(max(len(sections) - 1, 0), [Char(ch, 0, 0, 0, 0, 0, page=-1) for ch in
                                                              re.sub(r"^\s*\d{1,3}\.\s*", "", ref.raw)],
                                 note=re.sub(r"\D", "", ref.label)) for ref in references if re.fullmatch(r"\d{1,3}\.", ref.label)]
        references = []
    paragraphs = _endnotes_section(paragraphs, sections)
    # footnotes read with their marks: the marks the body raises for them are no citations of numbered entries
    footnote_marks = {par.note for par in paragraphs if par.note}
    paragraphs = link_notes(paragraphs, references)
    if len(references) < 3 and _unmapped_text_layer(data):
        raise ExtractionError("the text layer maps most glyphs to control codes (fonts without a ToUnicode map, "
                              "as htmldoc and some old drivers write): no text can be read from it; OCR the PDF "
                              "or convert it with --backend grobid")
    before_refs = all_lines[:ref_start] if ref_start is not None else all_lines
    raised = tuple(text for ln in before_refs for sup, group in itertools.groupby(ln.chars, key=lambda c: c.sup)
                   if sup and (text := "".join(c.text for c in group)).strip() not in footnote_marks)
    return Document(title=title, sections=sections, paragraphs=paragraphs, references=references,
                    links=links, n_pages=len(pages), layer_text=" ".join(ln.text for ln in before_refs),
                    layer_raised=raised, printed_labels=printed_labels)


# ---------------------------------------------------------------------------
# Citations in footnotes (notes style: Chicago notes-bibliography, OSCOLA, Bluebook, "Vgl. Müller 2019, S. 12")
# ---------------------------------------------------------------------------

# words that lead a note's citation ("See", "Cf.", "Vgl.", "Voir", "Dazu", "Grundlegend"): not part of the work's name
NOTE_LEAD = re.compile(r"^\s*(?:(?:see(?:\s+also|\s+generally)?|cf|compare|e\.\s?g|for example|quoted in|cited in|vgl|siehe|s|"
                       r"zit\.\s?n(?:ach)?|voir(?:\s+aussi)?|véase|vease|cfr|dazu|hierzu|grundlegend|eingehend|näher|zuletzt|"
                       r"ebenso|auch|etwa|so(?:\s+etwa|\s+auch|\s+schon)?|statt aller|insb|z\.\s?b)\b\.?,?:?\s*)+", re.I)
# a lead that ends inside a note's prose ("Zum Trödelvertrag s. Windscheid, …", "For more on this, see Lewis, …",
# Italian "Su cui v. S. Ceccanti, …", "si vedano almeno …"): the citation starts after it
NOTE_INNER_LEAD = re.compile(r"(?:^|[\s,(])(?:s\.|vgl\.|siehe|see(?: also| generally)?|cf\.?|voir|von|bei|by|"
                             r"(?:[sS]i\s+ved(?:a|ano)|[vV]edi|[vV]\.)(?:\s+(?:almeno|anche|in generale|per tutti))*)\s+(?=[A-ZÀ-ÖØ-Þ“\"])")
# a note's prose that ends in a colon before its citations ("To name only a few examples: Bähr/Brunner, …",
# "For Austria: Somek, …"): the citation starts after it
NOTE_COLON_LEAD = re.compile(r"^[^:;,()]{3,80}?:\s+(?=[A-ZÀ-ÖØ-Þ])")
# a note's "the same work as the note before" ("Ibid., 30.", "Id. at 5", "Ebd., S. 4", "Ibíd.")
NOTE_IBID = re.compile(r"^\s*(?:ibid(?:em)?|ib[íi]d|ebd|ebenda|id|idem|ivi)\b\.?", re.I)
# "the same author" ("ders., in: GS für …", "dies.", "idem,"): the previous citation's author, another work
NOTE_SAME_AUTHOR = re.compile(r"^\s*(?:ders|dies|ead|eid|eaed)\b\.?,?\s*", re.I)
# a back-reference to an earlier note: German "Flume (Fn. 2), 671", OSCOLA "Smith (n 12) 40", Bluebook
# "Smith, supra note 12, at 40"
NOTE_BACK = re.compile(r"\((?:Fn\.|n\.?|note)\s*(\d{1,3})\)|\bsupra(?:\s+note|\s+n\.?)\s*(\d{1,3})", re.I)
NOTE_YEAR = re.compile(r"(?<![\d/])(1[5-9]\d\d|20[0-2]\d)([a-z])?(?![\d/])")
# a citation's author part: one to six words, capitalised or particles, no digit ("Michel Foucault", "J.-M. ELA",
# "Hattenhauer/Buschmann"), or a body's name ("Information Commissioner's Office", "European Committee [HL]")
NOTE_AUTHOR = re.compile(r"^(?:(?:[A-ZÀ-ÖØ-Þ][\w'’.\-/]*|[A-Z]\.|\[[A-Z]{1,6}\]|de|da|del|der|den|di|du|la|le|van|von|y|e|"
                         r"and|und|et|&|u\.\s?a\.|et al\.?)\s*){1,6}$")
# a law journal's short citation, author and journal and year: "Ramm JZ 1996, 456ff.", "Canaris AcP 184 (1984), 201",
# "Endemann DJZ 1910, Sp. 18", with a comma after the author "Hofmann, ZGE 2016, 482", "Peukert, GRUR-Beilage 2014, 77"
NOTE_JOURNAL = re.compile(r"^((?:[A-Z]\.\s?)?(?:v\.\s|von\s)?[A-ZÄÖÜ][\w\-äöüß]+(?:/[A-ZÄÖÜ][\w\-äöüß]+)*),?\s+"
                          r"([A-Z][A-Za-zÄÖÜäöü.]{1,9}(?:-[A-Z][a-z]{2,9})?(?:\s[A-Z][A-Za-z.]{1,8})?)\s+(?:\d{1,3}\s+(?:[IVX]+\s+)?)?"
                          r"\(?((?:1[6-9]|20)\d\d)\)?\s*,\s*(?:Sp\.\s*)?\d")
NOTE_STOP = {"the", "and", "of", "in", "on", "a", "an", "for", "to", "with", "der", "die", "das", "und", "le", "la",
             "les", "des", "de", "du", "et", "en", "el", "los", "las", "del", "y", "p", "pp", "s", "vol", "ed", "eds",
             "trans", "press", "university", "journal", "review", "new", "york", "london", "paris", "berlin", "aufl",
             "zur", "zum", "über", "uber", "eine", "einer", "from", "into", "accessed", "available", "http", "https"}


def _plain_words(text: str) -> list[str]:
    """Lower-case words without accents (a note may print "Candes" for "Candès")."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    return re.findall(r"[a-z][a-z'’\-]+", text)


def note_citations(text: str) -> list[str]:
    """The citations a footnote's text holds: split at semicolons (outside parentheses) and before a new lead
    ("… 152. See also …"), each without its lead words."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        depth += ch in "([" and 1 or (ch in ")]" and -1 or 0)
        if ch == ";" and depth <= 0:
            parts.append(text[start:k])
            start = k + 1
    parts.append(text[start:])
    out = []
    for part in parts:
        # (after a sentence of prose that ends in a capital or a quote too: "… dealing with Chenery II. See Aaron
        # L. Nielson, …")
        for piece in re.split(r"(?<=[A-Za-z\d)”\"])\.\s+(?=(?:See|Cf|Compare|Ibid|Id|Vgl|Siehe|Voir|Ebd)\b)", part):
            piece = NOTE_LEAD.sub("", piece.strip()).strip(" .,")
            if piece:
                out.append(piece)
    return out


# two authors with their middle initials, each of up to four words, joined by "&" or "and" ("Brea L. Perry &
# Daniel J. Losen", "Jesse M. Cross & Abbe R. Gluck": seven words, more than one author part holds)
NOTE_TWO_AUTHORS = re.compile(r"^(?:(?:[A-ZÀ-ÖØ-Þ][\w'’\-]*|[A-Z]\.)\s*){1,4}(?:&|and)\s+"
                              r"(?:(?:[A-ZÀ-ÖØ-Þ][\w'’\-]*|[A-Z]\.)\s*){1,4}$")


def _cited_author(piece: str) -> str:
    """The author part of a citation ("Michel Foucault" of "Michel Foucault, Discipline and Punish, 27"), or ""
    where the piece does not open with a name followed by a comma (a remark: "In 1848, the army …")."""
    head = piece.split(",", 1)[0].strip()
    if "," not in piece or not head or re.search(r"(?<![A-Za-z])\d", head) \
            or not (NOTE_AUTHOR.match(head) or NOTE_TWO_AUTHORS.match(head)):
        return ""
    return head


def _title_words(text: str) -> set[str]:
    return {w for w in _plain_words(text) if len(w) >= 4 and w not in NOTE_STOP}


def _surname(author: str) -> str:
    """The first author's surname of an author part ("Michel Foucault" → "foucault"; "Hattenhauer/Buschmann",
    "Torsten Roeder und Klaus Rettinghaus", "Jauhiainen u.a." → the first's)."""
    first = re.split(r"/|\s+(?:and|und|et|&|y)\s+|\s+u\.\s?a\.|\s+et al", re.sub(r"\[[^\]]*\]", "", author))[0]
    words = _plain_words(first)
    return words[-1] if words else ""


def _entry_keys(refs: list[Reference]) -> list[tuple[str, set[str], str]]:
    """Each entry's first author's surname, its title's words and its year (with a letter: "1996b"), as a note's
    citation names them; an entry that repeats the author before by a dash or a stop ("——. 1996b.") takes his."""
    keys, last = [], ""
    for ref in refs:
        raw, f = ref.raw, ref.fields
        surname = ""
        if f.get("authors") and "surname" in f["authors"][0]:
            a = f["authors"][0]["surname"]
            surname = raw[a[0]:a[1]]
        if not surname:
            m = re.match(r"\s*(?:\[\d+\]\s*|\d+\.\s*)?([^\W\d_][\w'’\-]+)", raw)
            surname = m.group(1) if m else ""
        if REPEATED_AUTHORS.match(raw) or re.match(r"^\s*\.\s", raw):
            surname = last
        surname = (_plain_words(surname) or [""])[-1]
        last = surname
        title = raw[f["title"][0]:f["title"][1]] if "title" in f else raw
        year = ""
        if "year" in f:
            year = raw[f["year"][0]:f["year"][1]]
            if f["year"][1] < len(raw) and raw[f["year"][1]].isalpha() and raw[f["year"][1]].islower():
                year += raw[f["year"][1]]
        keys.append((surname, _title_words(title), year))
    return keys


def _match_entry(piece: str, keys: list[tuple[str, set[str], str]]) -> int | None:
    """The one entry a note's citation names: its first author's surname among the citation's first words and
    its year or a word of its title in it; None where no entry or more than one fits (a guess is no link)."""
    head_words = _plain_words(re.split(r"[(,]", piece, maxsplit=1)[0] + " " + piece[:40])
    words = set(_plain_words(piece))
    years = {y + letter for y, letter in NOTE_YEAR.findall(piece)}
    plain_years = {y[:4] for y in years}

    def year_fits(year: str) -> bool:
        # "Green 1996a" names only the entry of 1996a; "Green 1996" any of Green's 1996
        return bool(year) and (year in years or (year[:4] in plain_years and (len(year) == 4 or year not in years
                                                                               and year[:4] in years)))
    fits = [k for k, (surname, title, year) in enumerate(keys)
            if surname and surname in head_words and (year_fits(year) or (title & words) - {surname})
            and not (year and plain_years and year[:4] not in plain_years)]
    if len(fits) > 1:
        # "Green 1996a" against Green's four chapters of 1996: the one whose lettered year or title the note names
        exact = [k for k in fits if keys[k][2] in years and len(keys[k][2]) == 5]
        overlap = sorted(((len((keys[k][1] & words) - {keys[k][0]}), k) for k in fits), reverse=True)
        # (the entry whose title shares most words with the note's, by a clear margin: "Watanabe, “Religion and
        # violence in Japan today,” 89" against Watanabe's "Reactions to the Aum Affair" in "… for Religion …")
        titled = [overlap[0][1]] if overlap[0][0] >= 2 and overlap[0][0] >= 2 * overlap[1][0] else \
            [k for n, k in overlap if n]
        fits = exact if len(exact) == 1 else titled if len(titled) == 1 else fits
    return fits[0] if len(fits) == 1 else None


def _note_work(piece: str) -> tuple[Reference, str, set[str]] | None:
    """A work a note cites in full, where the paper has no bibliography, with its first author's surname and the
    words that name it: an author and a title before a year ("Michel Foucault, Discipline and Punish (New York:
    Vintage, 1977), 27"), a law journal's citation ("Ramm JZ 1996, 456ff."), a quoted title with its venue and
    date ("“UK reacts to …”, BBC News, 21 May 2014"), a court's case ("Case C-131/12, Google Spain SL …",
    "Marbury v. Madison, 5 U.S. 137 (1803)"), or a bare web address; None for a remark or a short form."""
    piece = piece.strip()
    if re.fullmatch(r"(?:https?://|www\.)\S+", piece):
        return Reference(raw=piece, fields={}), "", {piece.lower()}
    if len(piece.split()) > 60:
        # a citation the note goes on from with remarks ("M. Foucault, Der Wille zum Wissen (…, 1995), pp. 27,
        # 40. The difference between …"): the citation ends at the first full stop after its year or pages
        cut = next((m for m in re.finditer(r"(?<=[\d)])\.\s+(?=[A-ZÀ-ÖØ-Þ])", piece)
                    if NOTE_YEAR.search(piece[:m.start()])), None)
        end = cut.start() if cut is not None else None
        if end is None or len(piece[:end].split()) > 60:
            # (a Bluebook citation and its long explaining parenthetical: "…, 15 SETON HALL L. REV. 276, 280–82
            # (1985) (explaining that it is much more difficult … “there always . . .” …)": it ends at the
            # parenthesis that holds its year)
            dated = re.search(r"\((?:[^()]*[\s.])?(?:1[5-9]\d\d|20[0-2]\d)\)", piece)
            end = dated.end() if dated is not None else None
        if end is None or len(piece[:end].split()) > 60:
            return None
        piece = piece[:end]
    if NOTE_STATUTE.search(piece[:200]) and not re.search(r"\b(?:Rep\.\s?No|Cong\.\s?Rec|Doc\.\s?No)\.?", piece[:200]):
        # a statute or a bill ("Rent Relief Act of 2023, H.R. 6721, 118th Cong. (2023)", "Pub. L. No. 63-203,
        # 38 Stat. 717", "15 U.S.C. § 45"): a law cited names no work, as its articles do not (a committee's
        # report or the Congressional Record is one)
        return None
    year = list(NOTE_YEAR.finditer(piece))
    if official := NOTE_OFFICIAL.search(piece[:160]):
        # an official document named by its number ("COM(2022) 209 final", "Regulation (EU) 2016/679",
        # "Opinion 7/2020", "OJ L 295"): that number names it wherever a note cites it again
        ident = re.sub(r"\s+", "", official.group(0).lower())
        # (the name it is given before its number, "Impact Assessment, SWD(2013)531": later notes cite it by
        # that name alone, "Impact Assessment, 18.")
        named = _cited_author(piece) if official.start() > 0 else ""
        return Reference(raw=piece, fields={"title": (official.start(), official.end())}), _surname(named), {ident}
    if journal := NOTE_JOURNAL.match(piece):
        author, venue, y = journal.group(1), journal.group(2), journal.group(3)
        surname = _surname(author)
        fields = {"authors": [{"surname": (author.rfind(author.split()[-1].split("/")[0]),
                                           author.rfind(author.split()[-1].split("/")[0])
                                           + len(author.split()[-1].split("/")[0]))}],
                  "source": (journal.start(2), journal.end(2)), "year": (journal.start(3), journal.end(3))}
        return Reference(raw=piece, fields=fields), surname, {venue.lower().strip("."), y}
    if bare := NOTE_REPORTER.match(piece):
        # a court's decision cited by its report alone, its name in the body's sentence ("… United States v.
        # Rahimi,¹" | "¹ 602 U.S. 680 (2024)."): the report names it ("Rahimi, 602 U.S. at 699" later)
        y = re.search(r"(1[5-9]\d\d|20[0-2]\d)\)", piece[bare.end():])
        end = bare.end() + (y.end() if y else 0)
        return Reference(raw=piece[:end].strip(" ,"), fields={"title": (0, bare.end())} | (
            {"year": (bare.end() + y.start(1), bare.end() + y.end(1))} if y else {})), "", {_report_key(bare)}
    case = NOTE_CASE.match(piece)
    if case and not all(w[:1].isupper() or w in CASE_PARTICLES or not re.search(r"\w", w) for w in re.split(r"\s+v\.?\s+", case.group(0))[0].split()):
        case = None  # (an Italian lead, "Su cui v. S. Ceccanti, …": no party's name)
    if case:
        name = case.group(0).strip(" ,")
        report = NOTE_REPORT.search(piece[len(name):len(name) + 40])
        return Reference(raw=piece, fields={"title": (0, len(name))} | (
            {"year": (year[-1].start(1), year[-1].end(1))} if year else {})), "", _title_words(name) | (
                {_report_key(report)} if report else set())
    quoted = re.match(r"^“([^”]{8,})”,?\s*\S", piece) or re.match(r'^"([^"]{8,})",?\s*\S', piece) \
        or re.match(r"^“([^”]{8,}?),\s*\S", piece)  # (a closing quote the author forgot)
    if quoted and year:
        title = quoted.group(1).strip(" ,")
        s0 = piece.find(title)
        return Reference(raw=piece, fields={"title": (s0, s0 + len(title)),
                                            "year": (year[-1].start(1), year[-1].end(1))}), "", _title_words(title)
    if apa := NOTE_AUTHOR_DATE.match(piece):
        # an author-date citation (APA): "Feinstein, S., & Wood, R. (1995). History of law-related education …",
        # a body's: "American Bar Association Division for Public Education. (n.d.). Isidore Starr Award …"
        author, title = apa.group(1).strip(" ,."), apa.group(3).strip(" “”\"")
        if not re.search(r"\d", author) and all(NOTE_AUTHOR_WORD.fullmatch(w) for w in re.findall(r"[^\s,]+", author)) \
                and (_title_words(title) or len(title) >= 4):
            inverted = re.match(r"([^\W\d_][\w'’\-]*(?:\s[^\W\d_][\w'’\-]*)?),\s*[A-Z](?![a-z])", apa.group(1))
            last = inverted.group(1) if inverted else re.sub(r"\[[^\]]*\]", "", author).split("/")[0].split()[-1]
            a0 = author.find(last) if inverted else author.rfind(last)
            fields = {"authors": [{"surname": (a0, a0 + len(last))}], "title": (apa.start(3), apa.start(3) + len(apa.group(3)))}
            if apa.group(2)[:1].isdigit():
                fields["year"] = (apa.start(2), apa.start(2) + 4)
            return Reference(raw=piece, fields=fields), (_plain_words(last) or [""])[-1], _title_words(title) or {title.lower()}
    author = _cited_author(piece)
    rest = piece[len(author):].lstrip(" ,") if author else ""
    title_end = min([k for k in (rest.find(" ("), rest.find(", ")) if k > 0] or [len(rest)])
    title = rest[:title_end].strip(" “”\"'‘’»«")
    if not author or not year or not _title_words(title):
        return None
    last = re.sub(r"\[[^\]]*\]", "", author).split("/")[0].split()[-1]
    a0 = author.rfind(last)
    fields: dict = {"authors": [{"surname": (a0, a0 + len(last))}]}
    s0 = piece.find(title, len(author))
    fields["title"] = (s0, s0 + len(title))
    fields["year"] = (year[-1].start(1), year[-1].end(1))
    return Reference(raw=piece, fields=fields), _surname(author), _title_words(title)


# a US statute or bill as a note cites it: a Congress's bill number and session, a public law, the Statutes at Large
# or the Code's section
NOTE_STATUTE = re.compile(r"\b\d{1,3}(?:st|nd|rd|th)\s+Cong\.\s*\(\d{4}\)|\bPub\.\s?L\.\s?No\.|\b\d+\s+U\.S\.C\.?\s*§"
                          r"|\b\d+\s+Stat\.\s+\d+")
# an author-date citation in a note (APA): the authors ("Feinstein, S., & Wood, R.", a body's name), the year in
# parentheses ("(1995).", "(2015, May 3).", "(n.d.)."), the title up to its full stop
NOTE_AUTHOR_DATE = re.compile(r"^([^()]{2,160}?)\.?\s*\(((?:1[5-9]|20)\d\d[a-z]?(?:,[^)]{1,30})?|n\.\s?d\.)\)\.\s+"
                              r"(\S.{2,}?)(?:[.?!](?=\s|$)|$)")
NOTE_AUTHOR_WORD = re.compile(r"[A-ZÀ-ÖØ-Þ][\w'’.\-]*|&|and|for|of|the|on|in|de|da|del|der|den|di|du|la|le|van|von|et|al\.?")
# an official document's number: the European Commission's "COM(2022) 209" (its staff's "SWD(2013) 531"), a regulation's or directive's
# "(EU) 2016/679", "Directive 95/46/EC", the Official Journal's "OJ L 295", an opinion's "Opinion 7/2020"
NOTE_OFFICIAL = re.compile(r"\b(?:COM|SWD|SEC)\s?\(\d{4}\)\s?\d+|\b(?:Regulation|Directive|Decision)\s+\((?:EU|EC|EEC)\)\s+(?:No\s+)?\d{2,4}/\d+"
                           r"|\bDirective\s+\d{2,4}/\d+(?:/E[CU])?|\bOJ\s+[LC]\s+\d+|\bOpinion\s+\d{1,2}/\d{4}")
# a US court's report: volume, reporter, first page ("602 U.S. 680", "919 F.3d 437", "252 A.3d 471")
REPORTERS = (r"(?:U\.\s?S\.|S\.\s?Ct\.|L\.\s?Ed\.(?:\s?2d)?|F\.(?:\s?(?:2d|3d|4th))?|F\.\s?Supp\.(?:\s?(?:2d|3d))?|"
             r"A\.\s?(?:2d|3d)|P\.\s?(?:2d|3d)|N\.E\.(?:\s?(?:2d|3d))?|N\.W\.(?:\s?2d)?|S\.E\.(?:\s?2d)?|"
             r"S\.W\.(?:\s?(?:2d|3d))?|So\.(?:\s?(?:2d|3d))?|Cal\.\s?Rptr\.(?:\s?(?:2d|3d))?)")
NOTE_REPORT = re.compile(rf"\b(\d{{1,4}})\s+({REPORTERS})\s+(\d{{1,5}})\b")
NOTE_REPORTER = re.compile(rf"^(\d{{1,4}})\s+({REPORTERS})\s+(\d{{1,5}})\b")
# a short form by the report: "Rahimi, 602 U.S. at 699–700", "Batson, 476 U.S. at 96–97"
NOTE_REPORT_SHORT = re.compile(rf"\b(\d{{1,4}})\s+({REPORTERS})\s+at\s+\d")


def _report_key(m: re.Match) -> str:
    """A report's key: its volume and reporter, without spaces ("602u.s.")."""
    return "report:" + m.group(1) + re.sub(r"\s+", "", m.group(2).lower())


# a court's case as a note names it: "Case C-131/12, …", "Marbury v. Madison", "Google Spain SL v Agencia …";
# its first party's words capitalised but for these
CASE_PARTICLES = {"and", "of", "the", "de", "del", "di", "du", "des", "van", "von", "für", "&", "others", "ors"}
NOTE_CASE = re.compile(r"^(?:(?:Joined\s+)?Cases?\s+[CT]-\d+/\d+[^,]*|[A-Z][\w.,'’&\- ]{1,80}?\s+v\.?\s+[A-Z][\w.'’&\- ]{1,80}?)(?=,|\s*\(|$)")


def _ref_year(ref: Reference) -> str:
    """The year a work read from a note prints, or ""."""
    span = ref.fields.get("year")
    return ref.raw[span[0]:span[1]] if span else ""


def _same_work(surname: str, words: set[str], other: tuple[str, set[str], int], full: bool = False) -> bool:
    """Does a note's short form (its author's surname, its title's words) name a work read from an earlier note?
    ``full``: the note cites in full, and names that work only with half its title's words (Foucault's "The
    Birth of the Clinic" is not his "Discipline and Punish: The Birth of the Prison")."""
    o_surname, o_words, _ = other
    if surname or o_surname:
        shared = words & o_words
        return surname == o_surname and bool(shared) and (
            not full or len(shared) >= 0.5 * max(1, min(len(words), len(o_words))) and len(shared) >= min(2, len(words)))
    # (an official document's number, "regulation(eu)2016/679", names it alone)
    return bool(words) and words == o_words or len(words & o_words) >= max(2, 0.8 * max(len(words), len(o_words)))


def _citation_starts(piece: str) -> list[str]:
    """The piece itself, and what follows a lead inside its first words ("Zum Trödelvertrag s. Windscheid, …")."""
    out = [piece]
    for m in NOTE_INNER_LEAD.finditer(piece[:120]):
        out.append(piece[m.end():])
    if colon := NOTE_COLON_LEAD.match(piece):
        out.append(piece[colon.end():])
    for m in re.finditer(r",\s+(?=[A-ZÄÖÜ])", piece[:120]):
        if NOTE_JOURNAL.match(piece[m.end():]):
            out.append(piece[m.end():])  # ("Zu diesem s., statt aller, Ramm JZ 1996, 456ff.")
    return out


def link_notes(paragraphs: list[Paragraph], refs: list[Reference]) -> list[Paragraph]:
    """Give each body mark of a footnote ("…as Foucault argued.²³") the works its footnote names: with a
    bibliography, the entries the note's full or short forms name (surname and a title word or the year, and any
    author-year marker in the note's text; "Ibid." the note before's one work; "(Fn. 2)", "(n 12)", "supra note 12"
    that note's work of the surname); without one, each distinct work the notes cite in full becomes an entry of
    its own (appended to ``refs``), later short forms, back-references and ibid. pointing back to it. A note that
    opens with a citation is no paragraph of its own (its text is the mark's locators); a remark stays one, and a
    remark that names works also gives them to its mark."""
    notes = [k for k, par in enumerate(paragraphs) if par.note.isdigit()]
    if len(notes) < 3 or refs and _cites_in_its_text(paragraphs, refs, len(notes)):
        # a paper that cites in its text ("[12]", "(Smith, 2020)") and has a few footnotes: they remark, or give a
        # web address; its markers are read as before
        if notes and refs and _bracket_markers(paragraphs, refs) >= MIN_BRACKETS_FOR_NOTE_MARKS:
            # and where it cites by bracketed numbers, a raised number whose footnote was read is that note's mark,
            # no citation of the entry it numbers ("Smalltalk-80¹" over "¹Smalltalk-80 is a trademark …": LISP and
            # Symbolic Computation, whose nine "[n]" markers let its six marks pass for superscript citations)
            _mark_note_marks(paragraphs, notes)
        return paragraphs
    paragraphs = _split_glued_notes(paragraphs)
    notes = [k for k, par in enumerate(paragraphs) if par.note.isdigit()]
    keys = _entry_keys(refs)
    with_bibliography = bool(refs)
    if with_bibliography:
        # a "bibliography" the notes' citations do not name (a numbered list of the article's theses read as
        # one, under a heading): where the notes cite at least five works in full and fewer than a quarter of
        # their citations name an entry, the paper cites in its notes alone
        pieces = [piece for k in notes for piece in note_citations(normalise("".join(c.text for c in paragraphs[k].chars)))]
        named = sum(1 for piece in pieces if any(_match_entry(start, keys) is not None for start in _citation_starts(piece)))
        full = sum(1 for piece in pieces if any(_note_work(start) is not None for start in _citation_starts(piece)))
        with_bibliography = not (full >= 5 and named < 0.25 * full)
    made: list[tuple[str, set[str], int]] = []  # works read from the notes: surname, words, entry index
    by_note: dict[str, list[tuple[str, int]]] = {}  # each note's works, with their authors' surnames
    previous: list[int] = []
    consumed: set[int] = set()
    linked: set[int] = set()  # the notes whose mark was found and given their works
    for k in notes:
        par = paragraphs[k]
        text = normalise("".join(c.text for c in par.chars))
        cited: list[tuple[str, int]] = []
        opens = False  # the note's first citation names a work: the note is the mark's locators
        author_before = ""
        unresolved = False  # a citation of this note before named no work read: an "Id." after it names none
        for n_piece, piece in enumerate(note_citations(text)):
            found_idx, surname = None, ""
            if NOTE_IBID.match(piece):
                # "Id." inside a note is the citation just before it in that note ("See Kuehn, supra note 1, at
                # 646. … Id. at 655."), the note before's one work only where none came before
                if cited:
                    found_idx = cited[-1][1]
                elif not unresolved and len(previous) == 1:
                    found_idx = previous[0]
                opens = opens or (n_piece == 0 and found_idx is not None)
                if found_idx is not None:
                    cited.append(("", found_idx))
                continue
            same_author = NOTE_SAME_AUTHOR.match(piece)
            if same_author and author_before:
                piece = piece[same_author.end():]
            back = NOTE_BACK.search(piece)
            # (a work cited in full before "supra note 9" is that work; a page after it, "supra note 7, at
            # 1509–14", is no year that would make the short form a work of its own)
            if back and _note_work(piece[:back.start()]) is None and (
                    _note_work(piece) is None or re.fullmatch(r"[\s,]*(?:at\s+)?[\d–\-,\s&n.]*", piece[back.end():])):
                earlier = by_note.get(back.group(1) or back.group(2), [])
                name = author_before if same_author else _surname(piece.split("(")[0].split(",")[0])
                hits = [i for s, i in earlier if s and s == name] or (
                    [earlier[0][1]] if len(earlier) == 1 and not (name and earlier[0][0]) else [])
                if len(set(hits)) == 1:
                    cited.append((name, hits[0]))
                    opens = opens or n_piece == 0
                    continue
                # (a note number the author got wrong, "Feinstein & Wood, supra note 3" for note 4's work: the
                # author's name is a short form of its own, naming the one work of that author read before)
                piece = piece[:back.start()]
                if not name or not _cited_author(piece):
                    unresolved = True
                    continue
            if with_bibliography:
                for start in _citation_starts(piece):
                    idx = _match_entry(start, keys)
                    if idx is not None:
                        found_idx, surname = idx, keys[idx][0]
                        break
            # a work the bibliography does not hold (an EU document, a web page, a case): an entry of its own, as
            # in a paper without a bibliography
            for start in _citation_starts(piece) if found_idx is None else []:
                found = _note_work(start)
                if found is not None and with_bibliography and not found[0].fields:
                    found = None  # (a bare web address beside a bibliography: a tool's or a project's page)
                if found is not None:
                    work, surname, words = found
                else:
                    author = _cited_author(start)
                    surname = _surname(author)
                    words = _title_words(start[len(author):].split("(")[0]) if author else set()
                    years = {y for y, _ in NOTE_YEAR.findall(start)}
                    words |= years if NOTE_JOURNAL.match(start) else set()
                if same_author and author_before:
                    surname = author_before
                same = [m[2] for m in made if _same_work(surname, words, m, full=found is not None)]
                if found is not None:
                    # (a full citation of another year is another work of the author, however alike the titles:
                    # "The High Cost of Harsh Discipline … (2016)" is not "The Hidden Cost of … Harsh School
                    # Discipline … (2017)")
                    same = [i for i in same if "" in (_ref_year(refs[i]), _ref_year(work))
                            or _ref_year(refs[i]) == _ref_year(work)]
                if not same and found is None and (short := NOTE_REPORT_SHORT.search(start[:80])):
                    # "Rahimi, 602 U.S. at 699": the one decision read before from that volume of that report
                    same = list(dict.fromkeys(m[2] for m in made if _report_key(short) in m[1]))
                    same = same if len(same) == 1 else []
                if not same and found is None and surname and not words:
                    # "Roeder und Rettinghaus, 140.": a short form of author and page names the one work of
                    # that author an earlier note cited in full
                    same = list(dict.fromkeys(m[2] for m in made if m[0] == surname))
                    same = same if len(same) == 1 else []
                if len(same) == 1:
                    found_idx = same[0]
                    break
                if not same and found is not None:
                    work.from_note = True
                    refs.append(work)
                    made.append((surname, words, len(refs) - 1))
                    found_idx = len(refs) - 1
                    break
            if found_idx is not None:
                cited.append((surname, found_idx))
                author_before = surname or author_before
                opens = opens or n_piece == 0
            elif back or _cited_author(piece):
                unresolved = True
        if with_bibliography:
            # author-year markers inside the note's prose ("… is inelastic (Autor 2015, p. 17).")
            for _, _, idx in find_markers(text, refs):
                cited += [(keys[i][0], i) for i in idx]
        work_ids = list(dict.fromkeys(i for _, i in cited))
        by_note[par.note] = list(dict.fromkeys(cited))
        previous = work_ids
        if not work_ids:
            continue
        found = _body_with_mark(paragraphs, k)
        if found is not None:
            found[0].note_marks.append((found[1][0], found[1][1], work_ids))
            linked.add(k)
            if opens:
                consumed.add(k)
    _mark_note_marks(paragraphs, notes, linked)
    return [par for k, par in enumerate(paragraphs) if k not in consumed]


def _cites_in_its_text(paragraphs: list[Paragraph], refs: list[Reference], n_notes: int) -> bool:
    """Does the body cite its bibliography by markers of its own (bracketed numbers, author-year), at least ten
    and twice as many as it has footnotes? Then it is no notes-style paper."""
    by_label = labels_of(refs)
    # (alphabetic labels too: "[NAB+15b, Sto09a]")
    keys = {ref.label.strip("[] ") for ref in refs if ref.label and not ref.label.strip("[]. ").isdigit()}
    markers = 0
    for par in paragraphs:
        if par.note or par.table:
            continue
        text = normalise("".join(c.text for c in par.chars))
        markers += len(find_markers(text, refs)) + sum(
            1 for m in NUMERIC_MARKER.finditer(text) if all(n in by_label for n in expand_numbers(m.group(1)))) + sum(
            1 for m in re.finditer(r"\[([^\[\]]{2,60})\]", text)
            if keys and all(k.strip() in keys for k in m.group(1).split(",")))
        if markers >= max(10, 2 * n_notes):
            return True
    return False


# the fewest bracketed numbers naming entries that make a paper one that cites in brackets, for its footnote marks
MIN_BRACKETS_FOR_NOTE_MARKS = 5


def _bracket_markers(paragraphs: list[Paragraph], refs: list[Reference]) -> int:
    """How many bracketed numbers ("[12]", "[3, 5-7]") in the body name entries of a numbered bibliography."""
    by_label = labels_of(refs)
    if not by_label:
        return 0
    return sum(1 for par in paragraphs if not par.note and not par.table
               for m in NUMERIC_MARKER.finditer(normalise("".join(c.text for c in par.chars)))
               if all(n in by_label for n in expand_numbers(m.group(1))))


ENDNOTES_HEADING = re.compile(rf"^{HEADING_ORNAMENT}(?:end\s?notes|notes)[.:]?$", re.I)


def _endnotes_section(paragraphs: list[Paragraph], sections: list[str]) -> list[Paragraph]:
    """Endnotes under their own heading ("ENDNOTES", "Notes") read as the body's last section, each opened by
    its number at the text's size ("1 We believe …", "2 Educators for Excellence, Letter …", a report's), its
    lines a paragraph or more of their own: each note becomes a note of its own for ``link_notes`` (as endnotes
    read as a numbered bibliography do), the paragraphs that do not open with the next number going on with the
    note before. Three or more notes numbered from 1 in order, opening most of the section's paragraphs."""
    heads = [i for i, title in enumerate(sections) if ENDNOTES_HEADING.match(title.strip())]
    if not heads:
        return paragraphs
    head = heads[-1]
    members = [k for k, par in enumerate(paragraphs) if par.section == head and not par.note and not par.table]
    notes: list[tuple[str, list[str]]] = []
    for k in members:
        text = "".join(c.text for c in paragraphs[k].chars).strip()
        m = re.match(r"(\d{1,3})\.?\s+(?=\S)", text)
        if m and int(m.group(1)) == len(notes) + 1:
            notes.append((m.group(1), [text[m.end():]]))
        elif notes:
            notes[-1][1].append(text)
        else:
            return paragraphs
    if len(notes) < 3 or len(notes) < 0.5 * len(members):
        return paragraphs
    taken = set(members)
    return [par for k, par in enumerate(paragraphs) if k not in taken] + [
        Paragraph(head, [Char(ch, 0, 0, 0, 0, 0, page=-1) for ch in " ".join(texts)], note=mark)
        for mark, texts in notes]


def _entries_are_notes(refs: list[Reference]) -> bool:
    """Is a numbered "bibliography" a paper's endnotes: labelled "1.", "2.", …, and at least a sixth of them
    (three or more) notes rather than works ("Ibid at 538.", "González, supra note 2 at para 93.", "See …")?"""
    numbered = [r for r in refs if re.fullmatch(r"\d{1,3}\.", r.label)]
    if len(numbered) < 8 or len(numbered) < 0.8 * len(refs):
        return False
    notes = sum(1 for r in numbered if re.search(r"^\s*\d{1,3}\.\s*(?:ibid|id\.|see\b|cf\.)|\bsupra\s+(?:note|n\.?)\s*\d|\bibid\b",
                                                 r.raw, re.I))
    return notes >= max(3, len(numbered) / 6)


def _mark_note_marks(paragraphs: list[Paragraph], notes: list[int], linked: set[int] = frozenset()) -> None:
    """A footnote's mark in the body that names no work is still no citation: a raised "3" whose footnote was
    read is that note's mark, not entry 3 of a numbered bibliography (a Word report's notes beside its [1]–[14])."""
    for k in notes:
        if k in linked:
            continue
        found = _body_with_mark(paragraphs, k)
        if found is not None:
            found[0].note_marks.append((found[1][0], found[1][1], []))


def _split_glued_notes(paragraphs: list[Paragraph]) -> list[Paragraph]:
    """Short footnotes set side by side on one line ("Mallmann DRZ 1946, 52. 2 v. Wildenbruch DJZ 1900, Sp. 1"):
    the next note starts at its number after the previous one's full stop."""
    out = []
    for par in paragraphs:
        while par.note.isdigit():
            text = "".join(c.text for c in par.chars)
            nxt = str(int(par.note) + 1)
            m = re.search(rf"(?<=[.)\]])\s({nxt})\s(?=[A-ZÄÖÜ]|v\.|von\s)", text)
            if m is None:
                break
            out.append(dataclasses.replace(par, chars=par.chars[:m.start()]))
            par = dataclasses.replace(par, chars=par.chars[m.end():], note=nxt)
        out.append(par)
    return out


def _body_with_mark(paragraphs: list[Paragraph], k: int) -> tuple[Paragraph, tuple[int, int]] | None:
    """The body paragraph that carries note ``k``'s mark, the nearest before the note holding it raised on the
    note's page, and the mark's (start, end) in it; None where no paragraph does."""
    note = paragraphs[k]
    page = note.chars[0].page if note.chars else -1
    for j in _mark_search(k, page):
        body = paragraphs[j]
        if body.note == note.note and page != -1:
            break  # (an earlier note of the same mark owns the marks before it: an affiliation's "1", a page's)
        if body.note or body.table:
            continue
        if page != -1 and body.chars and body.chars[-1].page < page:
            break  # (a paragraph that ends on a page before the note's holds no mark of it, nor do those before)
        span = _raised_mark(body, note.note, page)
        if span is not None:
            return body, span
    return None


def _mark_search(k: int, page: int) -> range:
    """The paragraphs to look in for note ``k``'s mark: a footnote's, those before it back to the paragraph it
    interrupts (a law review's paragraph that runs over three pages, each page's notes read after it, is a dozen
    paragraphs back); an endnote's (page -1), the body from its start, in order."""
    return range(0, k) if page == -1 else range(k - 1, max(-1, k - 60), -1)


def _raised_mark(par: Paragraph, mark: str, page: int) -> tuple[int, int] | None:
    """Where ``par`` raises the footnote mark ``mark`` on ``page`` (any page for an endnote, page -1; not one
    already linked), as a char span."""
    taken = {s for s, _, _ in par.note_marks}
    chars = par.chars
    k = 0
    while k < len(chars):
        if chars[k].sup and not chars[k].text.isspace():
            e = k
            while e < len(chars) and chars[e].sup and not chars[e].text.isspace():
                e += 1
            if "".join(c.text for c in chars[k:e]).strip() == mark and page in (-1, chars[k].page) and k not in taken:
                return k, e
            k = e
        else:
            k += 1
    return None


def _runs_with_notes(par: Paragraph, runs_of) -> list[tuple[str, list[int]]]:
    """A paragraph's runs with each linked note mark a marker of its own, naming its footnote's works."""
    if not par.note_marks:
        return runs_of(par)
    out, pos = [], 0
    for s, e, idx in sorted(par.note_marks):
        if s > pos:
            out += runs_of(dataclasses.replace(par, chars=par.chars[pos:s], note_marks=[]))
        out.append((normalise("".join(c.text for c in par.chars[s:e])), list(idx)))
        pos = e
    if pos < len(par.chars):
        out += runs_of(dataclasses.replace(par, chars=par.chars[pos:], note_marks=[]))
    return out


# a numbered label opening a line of the bibliography: "[12] A. Author", "12. A. Author"
PRINTED_LABEL = re.compile(r"^\s*(\[\d{1,3}\]|\d{1,3}\.)(?=\s)")


OCR_PRODUCERS = re.compile(r"capture|\bocr|abbyy|finereader|omnipage|tesseract|scansoft|readiris|nuance", re.I)
# OCR's readings of a bracketed number: "[l]" and "[I]" for [1], "[O]" for [0], "[2j" for [2] (the closing bracket
# read as a j); only inside brackets, and only whole groups of them
OCR_MARKER = re.compile(r"\[((?:[\dlI|O](?:\s*[,–-]\s*)?){1,12})([\]jJ])(?![\w\]])")
OCR_DIGITS = str.maketrans({"l": "1", "I": "1", "|": "1", "O": "0"})


def _caption_goes_on(caption: list[Line], line: Line) -> bool:
    """Is ``line`` the next line of ``caption`` (a float's caption among the bibliography's entries): on its page,
    in its size, starting at its left edge and set close under its last line (entries below a float stand a
    float's gap away)."""
    last = caption[-1]
    return line.page == last.page and abs(line.size - last.size) < 0.6 and abs(line.x0 - caption[0].x0) < line.size \
        and 0 < last.base - line.base < 1.5 * line.size and not line.table


def ocr_text_layer(doc: pdfium.PdfDocument) -> bool:
    """Is this text layer the output of OCR over a scan (Acrobat Capture, ABBYY FineReader, Tesseract …, as the
    PDF's Producer or Creator says)? Its characters carry OCR's misreadings of markers and its pages specks."""
    try:
        meta = doc.get_metadata_dict()
    except pdfium.PdfiumError:
        return False
    return bool(OCR_PRODUCERS.search(f"{meta.get('Producer', '')} {meta.get('Creator', '')}"))


def read_ocr_markers(chars: list[Char]) -> None:
    """Correct OCR's misreadings inside bracketed markers in place ("[l]" -> "[1]", "[2j" -> "[2]"), and of an
    author-year marker's "et al." ("et aL,", "et at."), so the markers of a scanned paper are read as printed. Only groups of digits and digit look-alikes that hold a
    look-alike and at least one digit or a bracket on each side; a char whose text is one character is changed."""
    text = "".join(c.text for c in chars)
    # "et aL," and "et at." for "et al.": the author-year marker's "et al." as OCR misreads it
    for m in re.finditer(r"\bet\s+a([LtI1|])(?=[.,;)\s])", text):
        pos, k = m.start(1), 0
        for c in chars:
            if k <= pos < k + len(c.text):
                if c.text == m.group(1):
                    c.text = "l"
                break
            k += len(c.text)
    if "[" not in text:
        return
    owner: list[int] = []
    for k, c in enumerate(chars):
        owner.extend([k] * len(c.text))
    for m in OCR_MARKER.finditer(text):
        spec, close = m.group(1), m.group(2)
        if spec == spec.translate(OCR_DIGITS) and close == "]":
            continue  # nothing misread
        if re.search(r"\d", spec) is None and len(re.sub(r"\W", "", spec)) > 1:
            continue  # "[II]", "[lO]": letters, not a number OCR misread
        for pos in range(m.start(1), m.end(2)):
            c = chars[owner[pos]]
            if len(c.text) == 1:
                c.text = c.text.translate(OCR_DIGITS) if pos < m.end(1) else "]"


def _relabel(ref: Reference, raw: str) -> None:
    """Give ``ref`` the text ``raw`` (its label written or corrected) and parse it again."""
    ref.raw = raw
    ref.fields = parse_reference(ref.raw)
    ref.label = ref.raw[slice(*ref.fields["label"])]
    if ref.fields.get("authors"):
        ref.fields["first_surname"] = ref.raw[slice(*ref.fields["authors"][0]["surname"])]
    if "year" in ref.fields:
        ref.fields["year_text"] = ref.raw[slice(*ref.fields["year"])]


def repair_misprinted_labels(refs: list[Reference]) -> None:
    """A label misprinted between its neighbours' ("10.", "1.", "12.": the 11 lost a digit) is the number the
    run skips: markers citing [11] name that entry (the splitter already took it for the entry the run skips)."""
    numbers = [int(m.group(1)) if (m := re.match(r"\s*[\[(]?(\d{1,3})[\].)]?", ref.label or "")) else None
               for ref in refs]
    for k in range(1, len(refs) - 1):
        before, n, after = numbers[k - 1], numbers[k], numbers[k + 1]
        if None not in (before, n, after) and after == before + 2 and n != before + 1:
            label = refs[k].raw[slice(*refs[k].fields["label"])]
            digits = re.search(r"\d{1,3}", label)
            _relabel(refs[k], refs[k].raw[:refs[k].fields["label"][0] + digits.start()] + str(before + 1)
                     + refs[k].raw[refs[k].fields["label"][0] + digits.end():])
            numbers[k] = before + 1


def number_unlabelled_bibliography(paragraphs: list[Paragraph], refs: list[Reference]) -> None:
    """A numbered bibliography whose text layer lost its labels (an OCR'd scan reads "[1]" in the margin as
    nothing, or as a speck), or one printed without them (Ubiquity Press lists its entries in the order its
    superscripts cite them): where no two entries have a label and the body cites by bracketed or superscript
    numbers that name at least half of the entries, no number beyond them, mostly first named in the entries'
    order (as IEEE and Vancouver number them), entry n is labelled [n], written before its text as the label it is.
    Raised numbers whose footnotes were read are those notes' marks and count for nothing here."""
    if len(refs) < 3 or sum(bool(ref.label) for ref in refs) > 1:
        return  # (one "label" alone is OCR's reading of an initial: "8. Van Balen" for "B. Van Balen")
    bracketed: tuple[list[int], list[list[int]]] = ([], [])  # (numbers in the order first named, the groups)
    raised_: tuple[list[int], list[list[int]]] = ([], [])
    # a raised number whose footnote was read is that note's mark, no citation of an entry in citation order
    notes = {int(par.note) for par in paragraphs if par.note.isdigit()}
    for par in paragraphs:
        for m in NUMERIC_MARKER.finditer("".join(c.text for c in par.chars)):
            listed = [int(v) for v in re.findall(r"\d+", m.group(1))]
            if 0 in listed or len(set(listed)) < len(listed):
                continue  # a vector
            bracketed[1].append(listed)
            bracketed[0].extend(n for n in expand_numbers(m.group(1)) if n not in bracketed[0])
        # superscript numbers glued to the word before them ("… their data¹⁵.", "bias⁶,⁷,⁸,⁹"): Ubiquity Press's
        # journals cite so and list the entries in that order without numbers
        chars = par.chars
        for k, c in enumerate(chars):
            if not c.sup or (k and chars[k - 1].sup) or not c.text.isdigit() or not k or chars[k - 1].text.isspace():
                continue
            j = k
            while j < len(chars) and chars[j].sup:
                j += 1
            raised = "".join(ch.text for ch in chars[k:j]).strip()
            if not re.fullmatch(r"\d{1,3}(?:\s?[,–-]\s?\d{1,3})*", raised):
                continue
            if all(int(v) in notes for v in re.findall(r"\d+", raised)):
                continue
            raised_[1].append([int(v) for v in re.findall(r"\d+", raised)])
            raised_[0].extend(n for n in expand_numbers(raised.replace("–", "-")) if n not in raised_[0])
    # A journal that numbers its paragraphs ("… as BAKHTIN (1986) put it. [17]": FQS) prints each number once, alone,
    # 1, 2, 3, … in turn, as footnote marks run, and its bibliography is an author-year one, in the alphabet's
    # order: no citations, and the entries keep no labels (labelled [1]–[75], the paragraph numbers linked the first
    # 40 entries: 40 wrong links, which a judge reading numbers credits). Citations name an entry again, or two at once.
    firsts = [re.sub(r"[^a-z]", "", unicodedata.normalize("NFKD", ref.raw).lower())[:4] for ref in refs]
    # (three quarters of neighbours in order: a list in citation order is in the alphabet's about half the time, and
    # a Brazilian ABNT list puts "BRASIL. Lei …" and the "UNITED NATIONS" documents where its authors chose)
    alphabetical = sum(a <= b for a, b in zip(firsts, firsts[1:])) >= 0.75 * (len(refs) - 1)

    def cites(seen: list[int], groups: list[list[int]]) -> bool:
        if len(seen) < 3 or len(seen) < 0.5 * len(refs) or max(seen) > len(refs):
            return False
        # (footnote marks the reader did not take for notes, and paragraph numbers, run so too, with a gap where a
        # mark was lost: each once, alone, rising; a French author-year paper's marks 1–11, 15–26 numbered its
        # alphabetical list)
        singles = [g[0] for g in groups]
        return not (alphabetical and len(groups) >= 5 and all(len(g) == 1 for g in groups)
                    and all(a < b for a, b in zip(singles, singles[1:])))

    first_seen = bracketed[0] if cites(*bracketed) else raised_[0] if cites(*raised_) else []
    if not first_seen:
        return
    in_order, highest = 0, 0
    for n in first_seen:
        in_order += n <= highest + 2
        highest = max(highest, n)
    if in_order < 0.7 * len(first_seen):
        return
    for n, ref in enumerate(refs, 1):
        _relabel(ref, f"[{n}] {ref.raw}")


TABLE_NOTE = re.compile(r"^(?:Notes?|References?|Sources?)\s?[.:]\s?[—–-]*\s*(?=\S)")


def _drop_headings_inside_a_line(lines: list[Line], headings: list[bool]) -> None:
    """A heading stands alone on its baseline. A fully justified line whose word gaps are wider than the
    reader's line break (RSC's narrow columns: "K.  A. Lukyanov  and  S.  A. Lukyanov,") comes out in pieces,
    and a piece such as "A. Lukyanov" reads like a lettered heading: where a numbered or lettered piece has
    text of its own column beside it on the same baseline, it is part of that line, not a heading. (A heading
    by its name, "Abstract", "References", may have a side box beside it.) So is a piece of one word in capitals
    ("ENZO" | "(Bryan et al. 2014). Two cosmological simu-": a code's name opening a justified line, which read
    as a heading and cut its sentence in two)."""
    for i, ln in enumerate(lines):
        text = ln.text.strip()
        if not headings[i] or not (NUMBERED_HEADING.match(text) or len(text.split()) == 1) \
                or REFERENCES_HEADING.match(text) or ABSTRACT_HEADING.match(text) \
                or FIRST_SECTION.match(text):
            continue
        for k in (i - 1, i + 1):
            if 0 <= k < len(lines):
                other = lines[k]
                left, right = (other, ln) if k < i else (ln, other)
                if other.page == ln.page and other.column == ln.column \
                        and abs(other.base - ln.base) < 0.3 * max(ln.size, 1) \
                        and 0 <= right.x0 - left.x1 < 4 * max(ln.size, 1):
                    headings[i] = False
                    break


# a bare number before the first author, surname first ("1 Acharya, K. R., …", Portland Press) or initials
# first ("4 R. E. Campbell, O. Tour, …", RSC)
# a bare number before the first author: "1 Acharya, K. R., …", "12 A. Smith", and Vancouver's "1 Lim SS, Vos T, …",
# "4 Martinelli Boneschi F, …" (The Lancet, Maney: the surname, then its initials in capitals without stops)
BARE_LABEL = re.compile(r"^\s*(\d{1,3})\s+(?=[A-Z][\w'’-]+,|[A-Z]\.(?:\s?-?[A-Z]\.)*(?:\s?[A-Z][\w'’-]+|\s*$)"
                        r"|(?:[A-Z][^\W\d_]*[a-z][^\W\d_'’-]*[\w'’-]*\s){1,2}[A-Z]{1,3}(?:-[A-Z])?[,.](?:\s|$))")
FOOTNOTE_MARK = re.compile(r"^(?:\d{1,3}\.?|[*†‡§¶])\s?(?=[A-Z(\[“\"'])")
SUPPLEMENT_HEADING = re.compile(r"^(supplement(?:ary|al)?\b|appendix|appendices|online (?:supplement|resource))", re.I)


def _entry_follows(lines: list[Line], headings: list[bool], i: int) -> bool:
    """Does a bibliography entry follow the heading at ``i``: a labelled line ("[1] …", "1. …", "1 Smith,
    A. …") or a surname and initials ("Smith, A. (2001) …"), not a table of contents' "Appendix A 23"?"""
    below = next((ln for k, ln in enumerate(lines[i + 1:i + 4], start=i + 1) if not headings[k]), None)
    return below is not None and re.match(r"^\s*(\[\d{1,3}\]|\d{1,3}\.?\s+[A-Z][\w'’-]+,|[A-Z][\w'’-]+,\s+[A-Z]\.)",
                                           below.text) is not None


def _lift_text_above_a_bibliography_band(lines: list[Line], headings: list[bool], start: int,
                                         body_size: float) -> tuple[list[Line], list[bool], int]:
    """Frontiers sets the bibliography as a band across the page's foot, below the text of both columns: the
    "REFERENCES" heading (revtex: the first entry, "[1] NASA, …", under no heading) opens the left column's part
    of the band, and the right column's text above the band
    (the discussion's end, acknowledgements) is read after it column by column. That text is put back before
    the heading: body-size lines of the right column above the heading, set apart from the band's first line
    there (at the heading's height) by a gap of more than two lines."""
    head = lines[start]
    if head.column != 0:
        return lines, headings, start
    same = [k for k in range(start + 1, len(lines)) if lines[k].page == head.page]
    right = [k for k in same if lines[k].column == 1]
    above = [k for k in right if lines[k].bottom > head.top]
    band = [k for k in right if lines[k].bottom <= head.top]
    if not above or not band or lines[band[0]].base < head.base - 3 * head.size \
            or sum(abs(lines[k].size - body_size) < 0.6 for k in above) < 0.8 * len(above) \
            or lines[above[-1]].base - lines[band[0]].base < 2.5 * body_size:
        return lines, headings, start
    moved = set(above)
    order = [k for k in range(start) if k not in moved] + above + [k for k in range(start, len(lines)) if k not in moved]
    return [lines[k] for k in order], [headings[k] for k in order], start + len(above)


def _sub_columns(lines: list[Line]) -> list[Line]:
    """A bibliography column set in two narrower columns (Frontiers: four across the page): within one page
    column, entries side by side on the same baselines are read left sub-column first, then the right one.
    Split only where an empty vertical strip runs through the middle of the group with many lines on both
    sides at the same heights; elsewhere the lines stay as they are."""
    out: list[Line] = []
    for _, group in itertools.groupby(lines, key=lambda ln: (ln.page, ln.column)):
        group = list(group)
        x0, x1 = min(ln.x0 for ln in group), max(ln.x1 for ln in group)
        best = None
        for step in range(0, 31):
            x = x0 + (x1 - x0) * (0.35 + 0.01 * step)
            cross = sum(1 for ln in group if ln.x0 < x - 1 and ln.x1 > x + 1)
            if best is None or cross < best[0]:
                best = (cross, x)
        left = [ln for ln in group if ln.x1 <= best[1] + 1] if best else []
        right = [ln for ln in group if ln.x0 >= best[1] - 1] if best else []
        bases = {round(ln.base) for ln in left}
        side_by_side = sum(1 for ln in right if {round(ln.base) - 1, round(ln.base), round(ln.base) + 1} & bases)
        if best is None or len(left) < 5 or len(right) < 5 or best[0] > 0.05 * len(group) \
                or side_by_side < 0.5 * min(len(left), len(right)):
            out += group
            continue
        middle = [ln for ln in group if ln not in left and ln not in right]
        for ln in right:  # a column of its own for the hanging indents (an entry starts at its left edge)
            ln.column = 2 + 2 * max(ln.column, 0) + 1
        out += sorted(left + middle, key=lambda ln: -ln.base) + sorted(right, key=lambda ln: -ln.base)
    return out


def _unmapped_text_layer(data: bytes) -> bool:
    """Do most characters of the text layer come out as control codes (a font whose codes 1, 2, 3, … PDFium
    cannot map to Unicode)? Asked only of a paper that gave (almost) no bibliography, so it costs nothing
    on the others."""
    doc = pdfium.PdfDocument(data)
    try:
        text = "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    finally:
        doc.close()
    visible = [c for c in text if c not in "\r\n\t \x02"]
    return len(visible) > 200 and sum(c < " " for c in visible) > 0.3 * len(visible)


# Headings that end the bibliography: appendices, a supplement, acknowledgements, or a lettered section ("A Proofs",
# "B. ADDITIONAL RESULTS"). Not a wrapped author list in capitals ("Y. Y. Y., 2014, JCAP, 5, 021": MNRAS), which
# is short and capitalised like a heading but prints single initials and a year.
# what may follow the bibliography: appendices, acknowledgements, a "Notes" section of prose, and the methods that
# Cell Press (STAR★METHODS) and Nature ("Methods") print after the main text's references, citing like the body
# (numbered or lettered as a section may be: "9 Appendix", "A. Acknowledgments")
AFTER_BIBLIOGRAPHY = re.compile(r"^(?:(?:\d{1,2}(?:\.\d{1,2})*|[A-Z])\.?\s+)?"
                                r"(appendix|appendices|supplement(?:ary|al)?|acknowledge?ments?|(?:end)?notes[.:]?$|"
                                r"star\W{0,3}methods\b|(?:online\s+)?methods$)", re.I)
# what may end the paper after the bibliography and is neither entries nor body: the authors' affiliations
# (Springer, numbered by raised marks that would read as the entries' labels; Cambridge's "AUTHORS' ADDRESSES")
# and biographies
END_MATTER = re.compile(r"^(affiliations|author affiliations|authors?\W{0,3}biograph(?:y|ies)|biographies|"
                        r"about the authors?|authors?\W{0,3}(?:addresses|details|information)|"
                        r"addresses(?: for correspondence)?)[.:]?$", re.I)
# an appendix's heading with its letter or number and a title after it ("APPENDIX A: HOW DO …", "Appendix B. Proofs")
LABELLED_APPENDIX = re.compile(r"^(?:APPENDIX|Appendix)\s+(?:[A-Z]|\d{1,2})(?:\.\d{1,2})*\s*[.:\u2013\u2014-]\s*\S")
APPENDIX_LETTER = re.compile(r"^[A-Z]\.?\s+(?:[A-Za-z]{3,}|[^\W\d_A-Za-z]{2,})")  # a word: Latin, Hangul, Kana, …


def _labels_go_on(before: list[Line], after: list[Line]) -> bool:
    """Does the numbered list of the bibliography read so far go on after this point? revtex can set the
    bibliography's first entries before the paper's last sections (acknowledgements, author statement) in
    the column order, and "[2] …" follows them: those sections do not end the bibliography."""
    labels = [int(m.group(1)) for ln in before if (m := re.match(r"^\s*\[(\d{1,3})\]\s", ln.text))]
    if not labels:
        return False
    nxt = f"[{max(labels) + 1}] "
    return any(ln.text.lstrip().startswith(nxt) for ln in after[:200])


def find_unheaded_bibliography(lines: list[Line]) -> int | None:
    """Where a bibliography without a heading starts: a line labelled [1] or 1. followed by [2] or 2., or a
    raised "1" on a line of its own followed by a "2" (AIP). Of several such runs (the affiliations of a
    supplement after the bibliography are numbered 1, 2, … as well: revtex), the one whose labels run
    longest in order, the last of equals. A run whose entries mostly print no year is no bibliography
    (the indices and equation numbers of displayed formulas, each on a line of its own, also count 1, 2, …)."""
    best, best_run = None, 0
    # the numbers each page raises in its text: footnote marks set on lines of their own under that text (Word,
    # pdfTeX) are called from there, an AIP bibliography's labels are not
    raised_by_page: dict[int, set[str]] = {}
    for ln in lines:
        for sup, group in itertools.groupby(ln.chars, key=lambda c: c.sup):
            if sup and len(ln.text.strip()) > 3:
                raised_by_page.setdefault(ln.page, set()).add("".join(c.text for c in group).strip())
    for i in range(len(lines) - 1, len(lines) // 3, -1):
        if _is_bare_label(lines, i) and lines[i].text.strip() == "1":
            # AIP and revtex-like journals set each label as a raised number on a line of its own
            run = _label_run(lines, i, lambda k, n: lines[k].text.strip() == str(n) and _is_bare_label(lines, k))
            if run and all(lines[k].text.strip() in raised_by_page.get(lines[k].page, ()) for k in run):
                continue  # footnotes, each mark called from the text of its page
        elif m := re.match(r"^\s*(\[1\]|1\.)\s", lines[i].text):
            form = "[{}]" if m.group(1) == "[1]" else "{}."
            run = _label_run(lines, i, lambda k, n: lines[k].text.lstrip().startswith(form.format(n) + " ")
                             or lines[k].text.strip() == form.format(n))
        else:
            continue
        if len(run) >= 2 and len(run) > best_run and _entries_print_years(lines, run):
            best, best_run = i, len(run)
    return best


DATED_ID = re.compile(r"\b\d{4}\.\d{4,5}\b|\b(?:hep|astro|gr|nucl|cond|quant|math)-[a-z]{2}/\d{7}\b|\b10\.\d{4,9}/")


def _entries_print_years(lines: list[Line], starts: list[int]) -> bool:
    """Do at least half of the entries that begin at ``starts`` print a year, an arXiv number or a DOI
    (within their first 6 lines; high-energy physics cites preprints by "arXiv:1506.04392" alone)?"""
    ends = starts[1:] + [len(lines)]
    dated = sum(1 for s, e in zip(starts, ends)
                if any(YEAR_RE.search(ln.text) or DATED_ID.search(ln.text) for ln in lines[s:min(e, s + 6)]))
    return dated >= 0.5 * len(starts)


def _label_run(lines: list[Line], start: int, labelled) -> list[int]:
    """The lines of labels 1, 2, 3, … that follow one another from ``start`` (each within 150 lines of the last:
    a column of body text may stand between two entries where the bibliography is set before the last
    sections)."""
    run = [start]
    for k in range(start + 1, len(lines)):
        if k - run[-1] > 150:
            break
        if labelled(k, len(run) + 1):
            run.append(k)
    return run


def _is_bare_label(lines: list[Line], i: int) -> bool:
    """A bibliography label set as a raised number alone on its line ("8" above-left of "P. C. Chaumet, …",
    AIP): a number of up to 3 digits, smaller than the entry text that follows it on the same page."""
    if not re.fullmatch(r"\s*\d{1,3}\s*", lines[i].text) or i + 1 >= len(lines):
        return False
    nxt = lines[i + 1]
    return nxt.page == lines[i].page and lines[i].size < 0.8 * nxt.size and not re.fullmatch(r"\s*\d+\s*", nxt.text)


def _opens_unheaded_body(lines: list[Line], i: int, end: int, body_size: float) -> bool:
    """Do four lines from ``i`` read as running prose: same page, left edges aligned, body size, about as wide
    as one another, mostly lower-case words, and at least one sentence end among them? In a narrow column
    (IJSEM, Microbiology: some 50 characters a line) four lines hold under 200 letters; up to six lines of the
    same shape are read to gather that much prose."""
    for n in (4, 5, 6):
        run = lines[i:min(i + n, end)]
        if len(run) < n or len({ln.page for ln in run}) > 1:
            return False
        widths = [ln.x1 - ln.x0 for ln in run]
        # (the first line may be indented as a paragraph's first line is: T&F, SAGE)
        if max(abs(ln.x0 - run[1].x0) for ln in run[1:]) > 2 or not -2 <= run[0].x0 - run[1].x0 <= 3 * body_size \
                or min(widths) < 0.9 * max(widths) or max(widths) < 200:
            return False
        if any(abs(ln.size - body_size) > 0.6 for ln in run):
            return False
        text = " ".join(ln.text for ln in run)
        letters = [c for c in text if c.isalpha()]
        if len(letters) > 200:
            # a sentence ends after a word, or after the citation that closes it ("… (Mathers & Loncar, 2006). However")
            return (sum(c.islower() for c in letters) >= 0.85 * len(letters)
                    and re.search(r"(?:[a-z]{2}|\))[.;] [A-Z]", text) is not None)
    return False


def _leads_into_unheaded_body(lines: list[Line], i: int, end: int, body_size: float) -> bool:
    """Is line ``i`` the top of a column whose prose (``_opens_unheaded_body``) is sure a few lines further down?
    A revtex letter opens its text without a heading in paragraphs too short or too indented for that test
    ("Various astrophysical … [1–5]." in three lines): the body starts at the column's first line at body size,
    not where the sure run of prose begins. Every line between is at body size, on that page and in that
    column (its left edge, a paragraph's indent to the right of it, its right edge), and reads as prose, not
    as names: at most half its words capitalised (Science sets its authors' line at body size in the column,
    "Samuel G. Rodriques 1,2,3*, Robert R. Stickels 3,4,5*, …", whose affiliation marks would cite)."""
    def names(line: Line) -> bool:
        words = [w for w in line.text.split() if w[:1].isalpha()]
        return len(words) >= 3 and sum(w[0].isupper() for w in words) > 0.5 * len(words)

    ln = lines[i]
    if abs(ln.size - body_size) > 0.6 or names(ln):
        return False
    for j in range(i + 1, min(i + 40, end)):
        lj = lines[j]
        if lj.page != ln.page or abs(lj.size - body_size) > 0.6 or names(lj):
            return False
        if _opens_unheaded_body(lines, j, end, body_size):
            return all(lj.x0 - 2 <= lines[k].x0 <= lj.x0 + 2.5 * body_size and lines[k].x1 <= lj.x1 + 2
                       for k in range(i, j))
    return False


def _body(all_lines: list[Line], headings: list[bool], ref_start: int | None, title: str, body_size: float,
          lefts: dict[int, list[float]], vocabulary: Vocabulary, strict: bool,
          begin: int = 0) -> tuple[list[Paragraph], list[str]]:
    """Paragraphs and section titles of the body. ``strict``: the body starts at its first real section
    heading; otherwise at the first body-size line after the title block. ``begin`` > 0: read from that
    line (the heading that ends the bibliography: appendices after it)."""
    sections: list[str] = [] if strict or begin else ["Body"]
    paragraphs: list[Paragraph] = []
    mode = "front" if strict else "body"
    abstract_shape: tuple[int, float] | None = None  # page and line width of the abstract's first line
    abstract: list[list[Char]] = []  # the abstract's lines (under its heading)
    current: list[list[Char]] = []
    prev: Line | None = None

    notes: list[list[list[Char]]] = []  # footnotes met inside the current paragraph, written after it
    note_line: Line | None = None
    # a section set in smaller type than the body (IJSEM, Microbiology: "METHODS" in 8.5 pt beside 10 pt text):
    # the size of its text, read from a full line right under its heading; None in a section at body size
    small_section: float | None = None
    after_heading = False
    small_prev: Line | None = None  # the last line read as the small section's text
    caption_line: Line | None = None  # the last line of a caption met in the small section
    table_note: Line | None = None  # the last line of a table's note being read
    table_rows: set[int] = set()  # the notes that are a table's rows
    note_marks: dict[int, str] = {}  # a footnote's mark, by the note's id
    near_note: Line | None = None  # the last line of a footnote set nearly at the body's size
    item_x: float | None = None  # where the text of the bulleted item being read starts (right of its bullet)

    def flush() -> None:
        nonlocal current
        if current and mode == "body" and sections:
            chars = join_lines(current, vocabulary)
            if any(not c.text.isspace() for c in chars):
                paragraphs.append(Paragraph(len(sections) - 1, chars))
        current = []
        if sections:
            for note in notes:
                chars = join_lines(note, vocabulary)
                if any(c.text.isalpha() or id(note) in table_rows and c.text.isdigit() for c in chars):
                    paragraphs.append(Paragraph(len(sections) - 1, chars, table=id(note) in table_rows,
                                                note=note_marks.get(id(note), "")))
        notes.clear()
        table_rows.clear()
        note_marks.clear()

    end = ref_start if ref_start is not None else len(all_lines)
    # the usual distance between baselines: a double-spaced manuscript's lines stand two sizes apart, and
    # only a larger gap than that ends a paragraph
    steps = Counter(round(a.base - b.base) for a, b in zip(all_lines, all_lines[1:])
                    if a.page == b.page and a.column == b.column and abs(a.size - body_size) < 0.6
                    and abs(b.size - body_size) < 0.6 and 0.9 * body_size < a.base - b.base < 3 * body_size)
    step = steps.most_common(1)[0][0] if steps else 0.0
    # footnotes stand below the last line of body text of their page's column: the lowest baseline of a
    # full body-size line there
    foot_from: dict[tuple[int, int], float] = {}
    # and each is called by its mark raised in the body text of its page ("… formulas.²⁶"): a table's notes
    # set small at the foot of a column ("* Has only haemoglobin data", a row "28 Chen …") are called from the
    # table, not from the text
    raised: dict[int, set[str]] = {}
    full_width: dict[tuple[int, int], float] = {}  # the widest body-size line of each page's column
    # the full body-size lines of each page (left, right, baseline): where the page's columns are not told apart,
    # the foot of the column a line stands in is the lowest of those above or below it
    body_rows: dict[int, list[tuple[float, float, float]]] = {}
    for ln in all_lines[begin:end]:
        if ln.table:
            continue
        if abs(ln.size - body_size) < 0.6 and len(ln.text) > 30:
            key = (ln.page, ln.column)
            foot_from[key] = min(foot_from.get(key, ln.base), ln.base)
            full_width[key] = max(full_width.get(key, 0.0), ln.x1 - ln.x0)
            body_rows.setdefault(ln.page, []).append((ln.x0, ln.x1, ln.base))
        groups = [g for g in (list(grp) for sup, grp in itertools.groupby(ln.chars, key=lambda c: c.sup) if sup)
                  if any(not c.text.isspace() for c in g)]
        if abs(ln.size - body_size) < 0.6 or ln.size > body_size and len(groups) == 1 and groups[0][-1] is \
                next(c for c in reversed(ln.chars) if not c.text.isspace()):
            # (and a title's or a heading's, set larger, one mark at its end: "A RESPONSE TO THE THREE
            # PROFESSORS¹", whose note cites the works the paper answers, the "supra note 1" of the notes after
            # it; not an author line's affiliation marks, "Pamela Forner¹, Anselmo Peñas², …")
            for sup, group in itertools.groupby(ln.chars, key=lambda c: c.sup):
                if sup:
                    raised.setdefault(ln.page, set()).update(re.findall(r"\d{1,3}|[*†‡§¶]", "".join(c.text for c in group)))
    for key in foot_from:
        # a running footer at the body's size below the footnotes ("DOI: 10.5771/…" centred under a Nomos
        # article's notes) is no body line: the column's foot is its lowest line of half the column's width
        rows = [ln.base for ln in all_lines[begin:end] if not ln.table and (ln.page, ln.column) == key
                and abs(ln.size - body_size) < 0.6 and len(ln.text) > 30 and ln.x1 - ln.x0 >= 0.5 * full_width[key]]
        foot_from[key] = min(rows, default=foot_from[key])
    # (a column that holds no body-size line, all of it the small section's: the usual column's width)
    usual_width = statistics.median(full_width.values()) if full_width else 1e9
    for i in range(begin, end):
        ln = all_lines[i]
        text = ln.text.strip()
        if not strict and ln.page == 0 and title and text in title:
            continue
        if AUTHOR_EMAIL.match(text) and (ln.base < foot_from.get((ln.page, ln.column), -1e9) - 2 or ln.base < min(
                (base for x0, x1, base in body_rows.get(ln.page, ()) if x0 < ln.x1 and ln.x0 < x1), default=-1e9) - 2):
            # "⋆ E-mail: vish@sas.upenn.edu" under the first page's column (MNRAS sets it a point below the body's
            # size, too near it to read as a footnote): the authors' address, not a line of the paragraph it
            # would split ("(Blandford E-mail: … & Payne 1982)", "(see Greene et al. ∗avi@… 2020; …)"); below the
            # last body line of its own column where the page's columns are read as one
            continue
        if headings[i] and (not title or text not in title) and not (
                ln.size < body_size - 0.2 and _small_leading_mark(ln, raised.get(ln.page, set()))):
            # (a footnote opened by its small mark, "⁶ Regulation (EU) 2016/679, Article 17.", is no numbered heading)
            if strict and mode == "front" and not (NUMBERED_HEADING.match(text) or ABSTRACT_HEADING.match(text)
                                                   or FIRST_SECTION.match(text)):
                continue  # author names, affiliations: larger than body text, but not sections
            flush()
            if ABSTRACT_HEADING.match(text):
                mode = "abstract" if strict else mode
            else:
                mode = "body"
                sections.append(re.sub(r"^(\d+(\.\d+)*\.?|[IVX]+\.)\s+", "", text))
            prev = None
            small_section, after_heading, small_prev, caption_line = None, True, None, None
            continue
        if mode == "abstract" and abstract_shape is None:
            abstract_shape = (ln.page, ln.x1 - ln.x0)
        if strict and (mode == "front" or mode == "abstract" and abstract_shape is not None and (
                ln.page > abstract_shape[0] or abs((ln.x1 - ln.x0) - abstract_shape[1]) > 0.1 * abstract_shape[1])) \
                and (_opens_unheaded_body(all_lines, i, end, body_size)
                     or _leads_into_unheaded_body(all_lines, i, end, body_size)):
            # CMS/ATLAS papers, revtex letters and Nature-style papers begin the text without a heading:
            # four full lines of prose at body size in one column (after the abstract: on a later page or
            # in lines of another width) are body text, not authors, affiliations or the abstract
            mode = "body"
            sections.append("")
        if mode != "body":
            if mode == "abstract" and not ln.table:
                abstract.append(list(ln.chars))
            continue
        if ln.table:
            # a table's row: a paragraph of its own, after the paragraph the table interrupts, as a footnote is
            # (a row of a marker and numbers too: "[27] | 467.00" cites)
            if any(c.text.isalnum() for c in ln.chars):
                notes.append([list(ln.chars)])
                table_rows.add(id(notes[-1]))
            note_line = table_note = None
            continue
        if ln.size < 0.88 * body_size and 0.6 * body_size <= ln.size and (
                TABLE_NOTE.match(text) or table_note is not None and table_note.page == ln.page
                and 0 < table_note.base - ln.base < 2 * ln.size and abs(ln.size - table_note.size) < 0.6):
            # a table's notes ("Note. — The temperatures come from … [1]: Woolf & Wallerstein (2005); …",
            # AASTeX's \tablecomments and \tablerefs; "Source: …"): text set small under a table that cites
            # what the table's rows draw on, often works the body never names. A paragraph of its own after
            # the paragraph the table interrupts, as a footnote is
            if TABLE_NOTE.match(text):
                notes.append([])
            notes[-1].append(list(ln.chars))
            table_note = ln
            continue
        table_note = None
        if after_heading and not ln.table:
            after_heading = False
            if 0.6 * body_size <= ln.size < 0.88 * body_size and not SMALL_CAPTION.match(text) \
                    and ln.x1 - ln.x0 >= 0.9 * full_width.get((ln.page, ln.column), usual_width):
                small_section = ln.size
        if small_section is not None and abs(ln.size - small_section) < 0.75 and ln.size < 0.88 * body_size:
            # the small section's text, but not its figures' captions ("Fig. 2. Midpoint-rooted …" and the
            # lines under it) nor the short labels inside a figure
            if SMALL_CAPTION.match(text) or caption_line is not None and caption_line.page == ln.page \
                    and 0 < caption_line.base - ln.base < 2 * ln.size:
                caption_line = ln
                continue
            caption_line = None
            continues = small_prev is not None and small_prev.page == ln.page and small_prev.column == ln.column \
                and 0 < small_prev.base - ln.base < 2 * ln.size
            if continues or ln.x1 - ln.x0 >= 0.6 * full_width.get((ln.page, ln.column), usual_width):
                gap = small_prev is not None and small_prev.page == ln.page \
                    and small_prev.base - ln.base > 1.65 * ln.size + 1
                if current and (_is_indented(ln, lefts[ln.page]) or gap):
                    flush()
                current.append(list(ln.chars))
                prev = small_prev = ln
                continue
        small_lead = _small_leading_mark(ln, raised.get(ln.page, set()))
        apart = i > begin and _mark_set_apart(all_lines[i - 1], ln, raised.get(ln.page, set()))
        # (or opened by its number at the note's size, "1. Rothney Tshaka defines …", below the column's last
        # body line: a Word article's notes at 10 pt under 11 pt text, the number one the page's text raises)
        numbered = FOOTNOTE_MARK.match(text) if ln.base < foot_from.get((ln.page, ln.column), -1e9) - 2 else None
        numbered = numbered if numbered and numbered.group(0).strip().rstrip(".") in raised.get(ln.page, ()) else None
        if 0.88 * body_size <= ln.size < body_size - 0.2 and (
                apart or small_lead or numbered or near_note is not None and near_note.page == ln.page
                and abs(ln.size - near_note.size) < 0.3 and 0 < near_note.base - ln.base < 2 * ln.size):
            # a footnote set nearly at the body's size (10.5 pt notes under 11 pt text: an EU opinion made by Word),
            # opened by its mark, small and raised, set apart or on the note's line ("29" | "Regulation (EU)
            # 2016/679 …"): the note's lines
            if numbered and not (apart or small_lead):
                skip = len(ln.text) - len(ln.text.lstrip()) + numbered.end()
                notes.append([list(ln.chars[skip:])])
                note_marks[id(notes[-1])] = numbered.group(0).strip().rstrip(".")
            elif apart or small_lead:
                notes.append([list(ln.chars[small_lead:])])
                note_marks[id(notes[-1])] = all_lines[i - 1].text.strip() if apart else \
                    "".join(c.text for c in ln.chars[:small_lead]).strip()
            else:
                notes[-1].append(list(ln.chars))
            near_note = ln
            continue
        if near_note is not None and near_note.page == ln.page and abs(ln.size - near_note.size) < 0.3 \
                and _goes_on_in_its_line(near_note, ln):
            notes[-1].append(list(ln.chars))
            near_note = ln
            continue
        near_note = None
        if ln.size < 0.88 * body_size and not all(c.sup or c.text.isspace() for c in ln.chars):
            # captions, figure labels: smaller than the body, left out. Footnotes (philosophy, history and
            # law cite in them): smaller lines below the column's last body line, each opened by its mark
            # ("27As reported in (Fischer & Rabin, 1974), …"); each becomes a paragraph of its own after the
            # paragraph it interrupts, without its mark
            if 0.6 * body_size <= ln.size and ln.base < foot_from.get((ln.page, ln.column), -1e9) - 2:
                mark = FOOTNOTE_MARK.match(text)
                caption = re.match(r"(?:Fig(?:ure)?|Table|Source|Note)s?\b", text[mark.end():] if mark else text)
                apart = i > begin and _mark_set_apart(all_lines[i - 1], ln, raised.get(ln.page, set()))
                if (mark and mark.group(0).strip().rstrip(".") in raised.get(ln.page, ()) or apart) and not caption:
                    skip = len(ln.text) - len(ln.text.lstrip()) + (mark.end() if mark and not apart else 0)
                    notes.append([list(ln.chars[skip:])])
                    note_marks[id(notes[-1])] = all_lines[i - 1].text.strip() if apart else mark.group(0).strip().rstrip(".")
                    note_line = ln
                elif notes and note_line is not None and not caption and note_line.page == ln.page \
                        and (0 < note_line.base - ln.base < 2 * ln.size or _goes_on_in_its_line(note_line, ln)):
                    notes[-1].append(list(ln.chars))  # the footnote's next line (or the rest of a justified one)
                    note_line = ln
                else:
                    note_line = None
            continue
        # (a paragraph set apart by a half line of space and no indent, as ICLR, TMLR and NeurIPS set them: 16.9 pt
        # between baselines 11 pt apart; never less than 1.45 lines, which a raised formula in a line does not reach)
        gap = prev is not None and prev.page == ln.page \
            and prev.base - ln.base > max(min(1.65 * ln.size + 1, 1.45 * step if step else 1e9), 1.35 * step) \
            and not (prev.x0 > ln.x1 or ln.x0 > prev.x1)
        # the rest of a justified line that came in pieces ("ENZO" | "(Bryan et al. 2014). Two cosmological simu-":
        # a word gap wider than the reader's line break) goes on with its line: it stands right of the piece before
        # it, on its baseline, and is not indented however far from the column's left it starts
        goes_on = prev is not None and prev.page == ln.page and prev.column == ln.column \
            and abs(prev.base - ln.base) < 0.3 * max(ln.size, 1) and 0 <= ln.x0 - prev.x1 < 3 * max(ln.size, 1)
        # the next line of a bulleted item ("• CMIP6 models underestimate … by 11–12%" | "(Duan et al., 2025)."):
        # itemize hangs it under the item's text, right of the bullet, which reads as an indent; it goes on with
        # its item where it starts where the item's text does, on the line just below
        hangs = item_x is not None and prev is not None and prev.page == ln.page and prev.column == ln.column \
            and abs(ln.x0 - item_x) < max(2.0, 0.2 * ln.size) and 0 < prev.base - ln.base < 2 * max(ln.size, 1)
        # a line that opens with itemize's bullet opens an item, a paragraph of its own however far left its bullet
        # stands: an item that ends without a stop ("• Malware.lu : Site d'analyse [29]") ran on into the next one
        opens_item = not goes_on and bool(ITEM_OPENS.match(ln.text))
        if current and (_is_indented(ln, lefts[ln.page]) and not goes_on and not hangs or gap or opens_item):
            flush()
        if not hangs:
            bullet = ITEM_BULLET.match(ln.text)
            item_x = next((c.left for c in ln.chars[bullet.end():] if not c.text.isspace()), None) if bullet else None
        current.append(list(ln.chars))
        prev = ln
    flush()
    if abstract and sections:
        # an abstract may cite (a toolkit's abstract names the libraries it builds on, "Theano (Bastien et al.,
        # 2012; Bergstra et al., 2010)", and the body never cites them again): kept aside, written where it cites
        # a work no paragraph of the body cites
        chars = join_lines(abstract, vocabulary)
        if any(c.text.isalpha() for c in chars):
            paragraphs.insert(0, Paragraph(-1, chars, abstract=True))
    return paragraphs, sections


# the bullet that opens an item of a list (itemize's •, –, ◦, ∗, ▪) and the space after it
ITEM_BULLET = re.compile(r"^\s*[•◦▪▸∗·–‣]\s*(?=\S)")
# the bullets that open an item and nothing else (not "–", "·" or "∗", which a line of prose may begin with)
ITEM_OPENS = re.compile(r"^\s*[•◦▪▸‣]\s*(?=\S)")

# an author's e-mail address set as a footnote: "E-mail: a@b.org", "⋆ Email address: …", "Corresponding author. E-mail: …",
# revtex's "∗ Electronic address: …", or the address alone after its mark ("∗avi.vajpeyi@monash.edu", MNRAS's \thanks
# holding only the address; "† a@b.org, c@d.org")
AUTHOR_EMAIL = re.compile(r"^(?:[^\w\s]{1,2}\s*|\d\s*)?(?:(?:corresponding author[.:,]?\s*)?(?:e-?mail(?:\s+address(?:es)?)?"
                          r"|electronic address(?:es)?)\s*:|[\w.+-]+@[\w-]+(?:\.[\w-]+)+\s*(?:[,;]|$))", re.I)
SMALL_CAPTION = re.compile(r"^(?:Fig(?:ure)?s?\.?|FIG(?:URE)?\.?|Table|TABLE|Scheme|Plate)\s*S?\d")


def _goes_on_in_its_line(before: Line, line: Line) -> bool:
    """Is ``line`` the rest of a justified note's line that came in pieces (Word spreads "Arntz/Krommendijk,"
    "Historic" "and" "Unprecedented," over a note's first line, each word a piece): on its baseline, right of the
    piece before it?"""
    return abs(before.base - line.base) < 0.3 * max(line.size, 1) and line.x0 >= before.x1 - 1


def _small_leading_mark(line: Line, raised: set[str]) -> int:
    """How many characters of ``line`` are a footnote's mark set small at its start ("⁴ Regulation (EU) …" read as
    one line): digits under 0.85 of the line's size, a number the page's text raises; 0 where there is none."""
    chars = line.chars
    k = 0
    while k < len(chars) and chars[k].text.isspace():
        k += 1
    e = k
    while e < len(chars) and chars[e].text.isdigit() and chars[e].size < 0.85 * line.size:
        e += 1
    if e == k or e - k > 3 or "".join(c.text for c in chars[k:e]) not in raised:
        return 0
    while e < len(chars) and chars[e].text.isspace():
        e += 1
    return e


def _mark_set_apart(mark: Line, line: Line, raised: set[str]) -> bool:
    """Is ``mark`` a footnote's mark that the PDF sets as a line of its own, raised just before the footnote's
    first line ("²" then "More specific versions of …": pdfTeX with hyperref), and called from the body of the
    page?"""
    text = mark.text.strip()
    return text in raised and re.fullmatch(r"\d{1,3}|[*†‡§¶]", text) is not None and mark.page == line.page \
        and mark.size < line.size and -1 <= line.x0 - mark.x1 < (2.5 if mark.size < 0.85 * line.size else 1) * line.size \
        and 0.15 * line.size < mark.base - line.base < 0.7 * line.size


# and AASTeX's one em dash with its stop, "—. 2007b, ApJ, …" (aasjournal.bst's "---.")
REPEATED_AUTHORS = re.compile(r"^\s*(?:\[[^\]]{1,12}\]\s*|\d{1,3}\.\s+)?(?:[—―]{2,}|–{2,}|-{3,}|_{3,}|[—―](?=[.,]\s))")


def split_references(lines: list[Line], links: dict[int, list[Link]], vocabulary: Vocabulary) -> list[Reference]:
    """Split the reference section into entries: at link targets when the PDF has
    them, else at printed labels, else at hanging indents."""
    if not lines:
        return []
    lines = [_space_after_label(ln) for ln in lines]
    targets = {(ln.target_page, round(ln.target_y, 1), None if ln.target_x is None else round(ln.target_x, 1))
               for page_links in links.values() for ln in page_links if ln.target_y is not None}
    starts: set[int] = set()
    if targets:
        for page, y, x in targets:
            # The destination sits at (or just above) the first line of its entry, in the column of its x.
            candidates = [i for i, ln in enumerate(lines) if ln.page == page and ln.top <= y + 2
                          and y - ln.top < 3 * ln.size + 4]
            candidates = _in_destination_column(candidates, x, lambda i: (lines[i].x0, lines[i].x1))
            if candidates:
                best = min(candidates, key=lambda i: y - lines[i].top)
                # Cell Press sets the destination in the gap above its entry, level with the previous entry's
                # last line ("1002/cyto.b.21481.", "org/10.1016/…", "59, 251–258."): a line that can only go on
                # an entry gives way to the one below it that opens one ("Li, D., Bentley, C., …")
                # (J Neurosci's: level with the previous entry's "… 27:2783–2802. CrossRef Medline")
                if (ENTRY_CONTINUATION.match(lines[best].text) or SERVICE_WORDS_END.search(lines[best].text)) \
                        and not ENTRY_OPENING.match(lines[best].text):
                    best = min((i for i in candidates if ENTRY_OPENING.match(lines[i].text)),
                               key=lambda i: y - lines[i].top, default=best)
                starts.add(best)
    # "[17], [18]. We have shown…": body text that begins with a marker is not an entry
    labelled = [i for i, ln in enumerate(lines)
                if (LABEL_RE.match(ln.text) and not re.match(r"\s*\[[^\]]*\][,.;:)]", ln.text)
                    and not SERVICE_LINK.match(ln.text))
                or _is_bare_label(lines, i)]
    if sum(bool(re.match(r"\s*\[\d{1,3}\]", lines[i].text)) for i in labelled) >= 0.8 * len(labelled):
        # a bibliography labelled "[n]": a small number alone on its line is a footnote's mark set at the foot of
        # the column ("20" over "http://essentia.upf.edu", ACM), no label of its own
        labelled = [i for i in labelled if not re.fullmatch(r"\s*\d{1,3}\s*", lines[i].text)]
    in_order = _label_sequence(labelled, lines)
    numbered = [i for i in labelled if re.match(r"^\s*[\[(]?\d{1,3}(?:[\].)]|\s*$)", lines[i].text)]
    if len(numbered) >= 0.8 * len(labelled) and len(in_order) < 0.5 * len(labelled):
        # numbers that do not run 1, 2, 3, … are no labels: an author-year bibliography followed by figures
        # flushed after it (A&A), whose tick labels "2." and "−2 0 2" each start a line, was split at every one
        labelled = in_order
    if len(labelled) < 2:
        # labels printed as a bare number before the first author ("1 Acharya, K. R., …", right-aligned in
        # the margin, so "9" and "10" start at different x): a run of them rising 1, 2, 3, … starts the entries
        # (Word may set the number apart, a tab's width before the entry, on a line of its own: "4" over "Li, L.-a.")
        run, last, first = [], 0, ""
        for i, ln in enumerate(lines):
            m = BARE_LABEL.match(ln.text) or (
                re.fullmatch(r"\s*(\d{1,3})\s*", ln.text) if i + 1 < len(lines) and lines[i + 1].page == ln.page
                and BARE_LABEL.match("1 " + lines[i + 1].text.lstrip()) else None)
            # once the run has begun (or on the bibliography's first line), the next number goes on it whatever its
            # entry opens with: a title, a corporate author, a particle ("21 The Vaccine Confidence Project",
            # "25 R Core Team", "29 de Figueiredo A")
            if not m and (last or i == 0) and (lenient := re.match(r"\s*(\d{1,3})\s+\S", ln.text)) \
                    and int(lenient.group(1)) == last + 1:
                m = lenient
            if m and last < int(m.group(1)) <= last + 3:
                run.append(i)
                last = int(m.group(1))
                first = first or m.group(1)
        if len(run) >= 5 and first in ("1", "2"):
            # the run goes on with the next numbers whatever their entries open with ("6 The next big thing in
            # Covid-19 testing …", a web page's title)
            for i in range(run[-1] + 1, len(lines)):
                if (m := re.match(r"\s*(\d{1,3})(?:\s+\S|\s*$)", lines[i].text)) and int(m.group(1)) == last + 1 \
                        and (m.end() < len(lines[i].text.rstrip()) or i + 1 < len(lines)):
                    run.append(i)
                    last += 1
            labelled = in_order = run
    if len(in_order) >= max(2, len(starts)):
        labelled = in_order
    printed = [int(m.group(1)) for i in in_order if (m := re.match(r"^\s*[\[(]?(\d{1,3})[\].)]?", lines[i].text))]
    if len(printed) >= 3 and printed[0] == 1 and len(set(printed)) >= 0.9 * max(printed):
        # printed labels that run 1, 2, 3, … are the entries, whatever the link destinations say (revtex and
        # natbib anchor an entry a line above or below its label, and several anchors may share one entry)
        labelled = in_order
        starts = set()
    if len(labelled) >= max(2, len(starts)):
        starts = set(labelled)
    else:
        # Hanging indents, column by column: an entry starts at the column's left edge, its other lines are
        # indented. Added to the link destinations, which mark only the entries that are cited.
        groups: dict[tuple[int, int], list[int]] = {}
        for i, ln in enumerate(lines):
            groups.setdefault((ln.page, max(ln.column, 0)), []).append(i)
        for members in groups.values():
            edge = min(lines[i].x0 for i in members)
            indented = [round(lines[i].x0) for i in members if 3 < lines[i].x0 - edge < 40]
            # one line alone at the edge (a page number run into an entry's first line: "12 Grácio, M. C. C.") or
            # alone indented ("hope for", a title's words set apart) in a long flush-left column is no hanging
            # indent: the column is read as one without indents (SciELO's TransInformação)
            if len(members) >= 8 and min(len(indented), sum(lines[i].x0 - edge <= 3 for i in members)) < 2:
                indented = []
            if indented:
                # an entry's first line stands nearer the edge than the indent: the box of its first capital
                # may start a few points right of the edge ("Paul Kingsbury" 4 pt, "Grace Ngai" 7 pt in from
                # the edge, their lines indented 11 pt: an ACL paper of 2003 through Ghostscript)
                # (and one short of the indent after a line that ends short of the column's right edge: "Grace Ngai
                # and Radu Florian.", spaced out to the measure, 7 pt in after "… University of Chicago Press.")
                indent = Counter(indented).most_common(1)[0][0]
                right = Counter(round(lines[i].x1) for i in members).most_common(1)[0][0]
                if _indent_reversed(lines, members, edge, indent):
                    # each entry's first line indented, its other lines at the edge (a 1973 proceedings' "Balzer,
                    # R.M., …" over "Forthcoming."): the indented lines open the entries
                    starts.update(i for i in members if abs(lines[i].x0 - indent) <= 3)
                    continue
                starts.update(i for n, i in enumerate(members) if lines[i].x0 - edge <= max(3.0, 0.5 * (indent - edge))
                              or (n and lines[i].x0 < indent - 2 and lines[members[n - 1]].x1 < right - 10))
            elif gapped := _gap_starts(lines, members):
                starts.update(gapped)  # no labels, no indents (AAAI): the entries stand apart by a wider line gap
            elif not starts:
                starts.update(members)  # no indents, no links: one entry a line is the best guess left
    starts.add(0)
    order = sorted(starts)
    refs = []
    for n, s in enumerate(order):
        e = order[n + 1] if n + 1 < len(order) else len(lines)
        chars = join_lines([list(ln.chars) for ln in lines[s:e]], vocabulary)
        raw = normalise("".join(c.text for c in chars)).strip()
        if not raw:
            continue
        if _is_bare_label(lines, s):
            raw = re.sub(r"^(\d{1,3})\s*", r"\1. ", raw)  # the raised label, written as the label it is
        ref = Reference(raw=raw, page=lines[s].page, top=lines[s].top, left=lines[s].x0,
                        right=max(ln.x1 for ln in lines[s:e]))
        ref.fields = parse_reference(raw)
        if "label" in ref.fields:
            ref.label = raw[slice(*ref.fields["label"])]
        if ref.fields.get("authors"):
            ref.fields["first_surname"] = raw[slice(*ref.fields["authors"][0]["surname"])]
        if "year" in ref.fields:
            ref.fields["year_text"] = raw[slice(*ref.fields["year"])]
        refs.append(ref)
    # "———, 1997." (Evolution, American Naturalist, Ecology, APA): the rule stands for the previous entry's
    # authors, and a citation "Bürger and Lynch (1997)" names the entry by that first author
    for prev, ref in zip(refs, refs[1:]):
        if REPEATED_AUTHORS.match(ref.raw) and prev.fields.get("first_surname"):
            ref.fields["first_surname"] = prev.fields["first_surname"]
    # Labels printed as a bare number before the first author ("1 Acharya, K. R., …", Biochemical Journal,
    # Portland Press): read as labels where no other label is printed and they run 1, 2, 3, … down the
    # bibliography (one number standing before an entry by chance is no such run)
    bare = [BARE_LABEL.match(r.raw) for r in refs]
    # and the run's numbers before any entry ("6 The next big …", "1 WHO issues", "25 R Core Team"): the next
    # number of the run, whatever follows it
    last = 0
    for k, ref in enumerate(refs):
        if bare[k] is None and (m := re.match(r"\s*(\d{1,3})\s", ref.raw)) and int(m.group(1)) == last + 1:
            bare[k] = m
        if bare[k] is not None:
            last = int(bare[k].group(1))
    numbers = [int(m.group(1)) for m in bare if m]
    if len(numbers) >= 5 and len(numbers) >= 0.6 * len(refs) and numbers[0] <= 2 and not any(r.label for r in refs) \
            and sum(b > a for a, b in zip(numbers, numbers[1:])) >= 0.9 * (len(numbers) - 1):
        for ref, m in zip(refs, bare):
            if m:
                ref.label = m.group(1)
    return refs


def _indent_reversed(lines: list[Line], members: list[int], edge: float, indent: float) -> bool:
    """Is a column's indent the other way round from a hanging indent: at least three lines at the edge and none
    of them (a tenth at most) opening an entry the way ENTRY_OPENING reads one, while most lines at the indent
    (three in five) do? Then the entries' first lines are the indented ones and the lines at the edge go on them."""
    at_edge = [lines[i].text for i in members if lines[i].x0 - edge <= 3]
    at_indent = [lines[i].text for i in members if abs(lines[i].x0 - indent) <= 3]
    opening = lambda texts: sum(bool(ENTRY_OPENING.match(t)) for t in texts)
    return len(at_edge) >= 3 and opening(at_edge) <= 0.1 * len(at_edge) and len(at_indent) >= 3 \
        and opening(at_indent) >= 0.6 * len(at_indent)


def _space_after_label(line: Line) -> Line:
    """A line that opens with a label set apart from its first author by a gap with no space in the text layer
    ("2Verstappen CC, …" beside "1 Polomano RP, …": Pain Medicine) gets the space its gap stands for, so that
    the label is read as one."""
    m = re.match(r"\d{1,3}(?=[A-Z])", line.text)
    if not m or len(line.chars) <= m.end():
        return line
    last, first = line.chars[m.end() - 1], line.chars[m.end()]
    if first.left - last.right < 0.4 * max(first.size, 1.0):
        return line
    space = dataclasses.replace(last, text=" ", left=last.right, right=first.left, sup=False)
    return dataclasses.replace(line, chars=line.chars[:m.end()] + [space] + line.chars[m.end():])


# the link words MDPI, Frontiers and others print after an entry ("[CrossRef] [PubMed] [Google Scholar]"), which
# may wrap to a line of their own: no label
SERVICE_LINK = re.compile(r"^\s*\[(?:cross\s?ref|pubmed|pmc|google scholar|scopus|web of science|medline|cas|"
                          r"green version|full text|doi|link|abstract)\]", re.I)

# the link words HighWire's journals (J Neurosci) print at the end of an entry, without brackets: the line they
# end closes an entry, it opens none
SERVICE_WORDS_END = re.compile(r"(?:^|[\s.])(?:CrossRef|Medline|PubMed|Abstract/FREE Full Text|FREE Full Text|"
                               r"Google Scholar)\s*$")

# how an entry of a bibliography opens: a label, or a surname (with its particles) and a comma or initials
ENTRY_OPENING = re.compile(r"^\s*(?:[\[(]?\d{1,3}[.)\]]?(?=\s|[A-Z])|\[[A-Z]|(?:(?:van|von|de|der|den|del|da|di|du|la|le)\s+)*"
                           r"[A-Z][\w'’\-]+(?:[ -][A-Z][\w'’\-]+)*,\s|[A-Z]\.(?:\s?-?[A-Z]\.)*\s?[A-Z][\w'’\-]+(?:,|\s+and\s)"
                           # Vancouver with the year after the names (J Neurosci): "Garthwaite J (2008)", "Ku JE, "
                           r"|[A-Z][\w'’\-]+\s[A-Z]{1,3}(?:,\s|\s\((?:1[6-9]|20)\d{2}))")

# how a line that only goes on an entry opens: a number that is no label (a page, a volume, a DOI's tail), a
# URL's piece, a lower-case word that is no surname particle
ENTRY_CONTINUATION = re.compile(r"^\s*(?:\d|https?:|doi\b|org/|www\.|"
                                r"(?!(?:van|von|de|der|den|del|da|di|du|la|le|dos|das|ten|ter)\b)[a-z])")


def _gap_starts(lines: list[Line], members: list[int]) -> list[int]:
    """Entries of a bibliography with neither labels nor hanging indents (AAAI's author-year style), told apart
    by the wider gap between them: where the gaps between baselines fall in two sizes, a line after the wider
    one starts an entry, and so does the column's first line when it opens with a surname ("Chan, S. H., …");
    else nothing (one gap size: no such evidence)."""
    gaps = [(lines[a].base - lines[b].base, b) for a, b in zip(members, members[1:])
            if lines[a].page == lines[b].page and lines[a].base - lines[b].base > 0.5 * lines[b].size]
    if len(gaps) < 6:
        return []
    step = sorted(g for g, _ in gaps)[len(gaps) // 4]
    wide = [b for g, b in gaps if g >= step + max(1.5, 0.12 * step) and g < 3 * step]
    if not 3 <= len(wide) <= 0.6 * len(gaps):
        return []
    first = members[0]
    return wide + ([first] if re.match(r"^\s*[A-Z][\w'’-]+[,.]", lines[first].text) else [])


def _label_sequence(labelled: list[int], lines: list[Line]) -> list[int]:
    """The labelled lines that start entries. Numbered labels run 1, 2, 3…: a continuation line that
    happens to begin with a number and a full stop ("300. ACM, New York, 1998.", the last page of a
    range broken across lines) is out of that run and does not start an entry."""
    numbers = [re.match(r"^\s*[\[(]?(\d{1,3})(?:[\].)]|\s*$)", lines[i].text) for i in labelled]  # (or raised, alone)
    if sum(m is not None for m in numbers) < 0.8 * len(labelled):
        return labelled  # "[Smi05]" and other non-numeric labels: no order to check
    kept, last = [], 0
    for k, (i, m) in enumerate(zip(labelled, numbers)):
        n = int(m.group(1)) if m else None
        # a label misprinted between its neighbours ("10.Alvarado …", "1.Lino …", "12. Morrell …": 11 lost a
        # digit) is the one the run skips; read as a second list's 1, it stopped the run, and entries 11–23
        # stayed one entry
        later = next((int(x.group(1)) for x in numbers[k + 1:] if x), None)
        if n is not None and kept and n != last + 1 and later == last + 2:
            n = last + 1
        if n is not None and kept and not last < n <= last + 10 and n != 1:  # 1: a second list starts
            continue
        kept.append(i)
        last = n if n is not None else last
    return kept


def normalise(text: str) -> str:
    """NFKC (ligatures, full-width forms), soft hyphens and PDFium's hyphen marker, whitespace."""
    text = unicodedata.normalize("NFKC", text.replace("\x02", "-").replace("\u00ad", ""))
    text = re.sub(r"(\d)\s*([–-])\s+(\d)", r"\1\2\3", text)  # "10– 12": PDFium's space after a dash
    text = re.sub(r"(?<=\d)−(?=\d)", "–", text)  # ACS sets the range "2−7" with a minus sign
    return re.sub(r"\s+", " ", text)


def _in_destination_column(candidates: list[int], x: float | None, span) -> list[int]:
    """The candidates in the column a destination's x names. hyperref puts x in the margin just left of the
    column (elsarticle, natbib: 20 pt), which for the right column is still inside the left column's width,
    so a column whose left edge lies just right of x (up to 40 pt) wins; else one that x falls in."""
    if x is None:
        return candidates
    beside = [i for i in candidates if x - 5 <= span(i)[0] <= x + 40]
    inside = [i for i in candidates if span(i)[0] - 40 <= x <= span(i)[1]]
    return beside or inside or candidates


def link_target_index(doc: Document) -> dict[tuple[int, int], int]:
    """(page, link number) -> index of the reference the link points to."""
    result = {}
    refs = doc.references
    for page, page_links in doc.links.items():
        for k, ln in enumerate(page_links):
            if ln.target_y is None:
                continue
            x = ln.target_x
            same_page = [i for i, r in enumerate(refs) if r.page == ln.target_page and r.top <= ln.target_y + 3
                         and ln.target_y - r.top < 40]
            # the destination's x names the column (it may sit in the margin just left of it)
            same_page = _in_destination_column(same_page, x, lambda i: (refs[i].left, refs[i].right))
            if same_page:
                result[(page, k)] = min(same_page, key=lambda i: ln.target_y - refs[i].top)
    shifted = _shifted_destinations(doc, result)
    return shifted if shifted is not None else result


def _shifted_destinations(doc: Document, found: dict[tuple[int, int], int]) -> dict[tuple[int, int], int] | None:
    """An author-year paper's links whose destinations all lie the same distance from their entries (IOP's
    ApJ: hyperref's destinations 65 pt above the entries the publisher's pipeline set, with no x on a
    two-column bibliography page), read by the years the links print: where the entries that print a link's
    year lie one distance below its destination for most such links, and the entries found at the
    destination print the link's year for few of them, each destination is moved by that distance and names
    the entry at its height that prints its year (of the two columns, the one that does). None where the
    evidence is not there."""
    refs = doc.references
    texts: dict[tuple[int, int], str] = {}
    for par in doc.paragraphs:
        for ch in par.chars:
            if ch.link >= 0:
                texts[(ch.page, ch.link)] = texts.get((ch.page, ch.link), "") + ch.text
    year = re.compile(r"(?<!\d)((?:1[6-9]|20)\d{2}[a-z]?)(?!\d)")
    dated = {}  # link -> (destination, year it prints)
    for page, page_links in doc.links.items():
        for k, ln in enumerate(page_links):
            m = year.search(texts.get((page, k), ""))
            if ln.target_y is not None and m:
                dated[(page, k)] = (ln, m.group(1))
    if len(dated) < 8:
        return None

    def prints(i: int, y: str) -> bool:
        return re.search(rf"(?<!\d){y}(?![\d])", refs[i].raw) is not None

    agreeing = sum(1 for key, (_, y) in dated.items() if key in found and prints(found[key], y))
    if agreeing >= 0.5 * len(dated):
        return None
    distances = Counter()
    for ln, y in dated.values():
        seen = {round(ln.target_y - refs[i].top) for i, r in enumerate(refs)
                if r.page == ln.target_page and prints(i, y)}
        distances.update(seen)
    if not distances:
        return None
    # the distance most links agree on, within a point or two either side
    best, support = max(((d, sum(distances[d + e] for e in (-2, -1, 0, 1, 2))) for d in distances),
                        key=lambda item: item[1])
    if support < 0.6 * len(dated) or abs(best) < 4:
        return None
    result = {}
    for page, page_links in doc.links.items():
        for k, ln in enumerate(page_links):
            if ln.target_y is None:
                continue
            y = ln.target_y - best
            near = [i for i, r in enumerate(refs) if r.page == ln.target_page and abs(r.top - y) <= 4]
            near = _in_destination_column(near, ln.target_x, lambda i: (refs[i].left, refs[i].right))
            printed = dated.get((page, k), (None, ""))[1]
            named = [i for i in near if printed and prints(i, printed)]
            if not named and len(near) > 1:
                continue  # entries of both columns at its height and no year to choose by ("DL07"): no guess
            if named or near:
                result[(page, k)] = min(named or near, key=lambda i: abs(refs[i].top - y))
    return result


# ---------------------------------------------------------------------------
# JATS output
# ---------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _entries_by_number(labels: tuple[str, ...]) -> dict[int, list[int]]:
    """The number each printed label holds -> the indices of the entries that print it; built once per
    bibliography, not once per paragraph (the caller only reads it)."""
    by_label: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        if digits := re.sub(r"\D", "", label):
            by_label.setdefault(int(digits), []).append(i)
    return by_label


def _without_marks_after_stops(chars: list[Char], target) -> list[Char]:
    """The characters without the raised footnote marks set after a full stop ("… tool [50–52].¹² To simplify …"),
    that link to no entry: printed, they glue the two sentences into one for stage 04 ("52].12 To")."""
    out, k = [], 0
    while k < len(chars):
        end = k
        while end < len(chars) and chars[end].sup and chars[end].text.isdigit():
            end += 1
        if end > k and end - k <= 2 and k and chars[k - 1].text in ".!?" \
                and (end == len(chars) or chars[end].text.isspace()) \
                and all(target(ch) is None for ch in chars[k:end]):
            k = end
            continue
        out.extend(chars[k:end] if end > k else [chars[k]])
        k = end if end > k else k + 1
    return out


def paragraph_runs(par: Paragraph, targets: dict[tuple[int, int], int],
                   refs: list[Reference]) -> list[tuple[str, list[int]]]:
    """A paragraph as runs of (text, reference indices): plain text has no indices."""
    def target(ch: Char) -> int | None:
        return targets.get((ch.page, ch.link)) if ch.link >= 0 else None

    runs = [("".join([ch.text for ch in chars]), [ref] if ref is not None else [])
            for ref, chars in itertools.groupby(_without_marks_after_stops(par.chars, target), key=target)]
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
    # natbib's sort&compress links only the ends of a range "1–3": add the middle by label. A label printed
    # twice (a report's list of publications after its references, numbered [1], [2], … again) names the entry
    # of the list the link points into, the one nearest the destination's entry.
    by_label = _entries_by_number(tuple([r.label for r in refs]))
    out = []
    for text, keys in _move_brackets(merged):
        before = out[-1][0] if out else ""
        if keys and REFERENCES_HEADING.match(re.sub(r"[\s.\divxlc]+$", "", text.strip())):
            keys = []  # a table of contents' "References ... 82" links to the bibliography, citing nothing
        if keys and (CROSS_REFERENCE.search(before[-24:]) or CROSS_REFERENCE_TEXT.match(text)):
            # "Figure 1", "Eq. (3)", "Table 2": a link to a figure, a table or an equation that sits where
            # the reader takes it for an entry (captions printed after the bibliography) is no citation
            keys = []
        # the printed numbers decide over the destinations ("[7][8]" of two links, each anchored a line high)
        numbers = re.sub(r"\]\s*[,;]?\s*\[", ",", text).strip("[] ")
        # a link box that reaches past its bracket (Elsevier's "[1]. " and "[4]. A": the full stop and the next
        # sentence's first letter lie inside the rectangle) still prints its numbers in the bracket
        if bracketed := re.fullmatch(r"\s*\[([\d\s,–-]+)\][\s.,;:]*[A-Za-z]?\s*", re.sub(r"\]\s*[,;]?\s*\[", ",", text)):
            numbers = bracketed.group(1)
        if keys and by_label and re.fullmatch(r"[\d\s,–-]+", numbers):
            extra = [min(by_label[n], key=lambda i: min(abs(i - k) for k in keys))
                     for n in expand_numbers(numbers.replace("–", "-")) if n in by_label]
            keys = list(dict.fromkeys(extra or keys))
        if out and not keys and not out[-1][1]:
            out[-1] = (out[-1][0] + text, [])
        else:
            out.append((text, keys))
    return out


CROSS_REFERENCE_WORDS = r"(?:Fig(?:ure)?s?|Tab(?:le)?s?|Eqs?|Eqns?|Equations?|Sections?|Sec|Secs|Appendix|Appendices|" \
                        r"Algorithm|Theorem|Lemma|Corollary|Proposition|Definition|Chapter|Panel|§)"
CROSS_REFERENCE = re.compile(rf"\b{CROSS_REFERENCE_WORDS}\.?\s*\(?$|§\s*$")
CROSS_REFERENCE_TEXT = re.compile(rf"^\s*\(?{CROSS_REFERENCE_WORDS}\.?\s*\(?\d")


def labels_of(refs: list[Reference]) -> dict[int, int]:
    """Printed number -> reference index, for bibliographies numbered [1], 1. or 1."""
    by_label = {}
    for i, ref in enumerate(refs):
        digits = re.sub(r"\D", "", ref.label)
        if digits:
            by_label.setdefault(int(digits), i)
    return by_label


SUPERSCRIPT_MARKER = re.compile(r"\d{1,3}(?:\s?[,–—-]\s?\d{1,3}|\s\d{1,3}|(?<=\d)e\d{1,3})*")


def _set_apart_citation(chars: list[Char], k: int) -> bool:
    """Is the raised run starting at ``chars[k]``, after a space, a citation all the same? Word sets them so
    ("described elsewhere ¹¹", "such as conspiracies. ¹⁰", "earlier findings from ¹⁰,²⁰,²⁵"): numbers, commas and
    dashes only, after a word or a stop (not a number: "10 ⁵"), and followed by a space, a stop or the end (not a
    letter: "the ¹H spectrum")."""
    j = k
    while j < len(chars) and chars[j].sup and (chars[j].text.isdigit() or chars[j].text in ",–—-"):
        j += 1
    # (a raised space after the run, the reader's, is a space: "Neese ²²" is set apart as "Neese ²² showed";
    # amsart with natbib's super style, "cortex ¹⁵ with")
    if j == k or not chars[j - 1].text.isdigit() \
            or (j < len(chars) and chars[j].sup and not chars[j].text.isspace()):
        return False
    after = chars[j].text if j < len(chars) else " "
    before = next((c.text for c in reversed(chars[:k]) if not c.text.isspace()), "")
    return (after.isspace() or after in ".,;:)") and (before.isalpha() or before in ".,;:)”’\"")


def pattern_runs(par: Paragraph, refs: list[Reference], by_label: dict[int, int],
                 parens: bool = False, superscripts: bool = True) -> list[tuple[str, list[int]]]:
    """A paragraph without citation links as (text, reference indices) runs: superscript numbers
    (``shown before.1,3``) by the references' labels, then bracketed and author-year markers by pattern."""
    pieces: list[tuple[str, bool]] = []
    chars = par.chars
    lowered = -1  # the raised run up to this index is read as text
    for k, ch in enumerate(chars):
        sup = ch.sup and (not ch.text.isspace() or (pieces and pieces[-1][1])) and k >= lowered
        if sup and (not pieces or pieces[-1][1] is False) and (k == 0 or chars[k - 1].text.isspace()) \
                and not _set_apart_citation(chars, k) \
                and not (k > 1 and chars[k - 2].text in ".,;:)" and ch.text.isdigit()):
            # a raised number after a space ("the 1H spectrum") is a unit or isotope, not a citation; one after a
            # stop or comma and the space the reader puts there ("… distributions. ²² Furthermore", ACS's
            # achemso sets its citations after the punctuation) is a citation. The whole raised run is text
            # then, not its first glyph alone: its rest read as a citation ("experiments ⁶⁹⁻⁸³" → "6", "9–83")
            # would cite works it never named
            sup = False
            lowered = k + 1
            while lowered < len(chars) and chars[lowered].sup and not chars[lowered].text.isspace():
                lowered += 1
        if sup and k and chars[k - 1].sup and not chars[k - 1].text.isspace() and pieces and pieces[-1][1] is False:
            # a raised run is one: where its first figure was read as a unit's or an isotope's ("¹³C"), the rest of
            # it is too, never a citation of its own ("in 2005 ¹⁴": the "4" alone named entry 4)
            sup = False
        if pieces and pieces[-1][1] == sup:
            pieces[-1] = (pieces[-1][0] + ch.text, sup)
        else:
            pieces.append((ch.text, sup))
    runs: list[tuple[str, list[int]]] = []
    for n, (text, sup) in enumerate(pieces):
        glued = not text[-1:].isspace() and n + 1 < len(pieces) and pieces[n + 1][0][:1].isalnum()
        # a raised number after a one-letter word ("b²", "dh/dt = d² ∆P", "r²φ") is an exponent of a formula set in
        # the sentence: a citation follows a word, a parenthesis or a stop
        # (and a 2 or a 3 raised after a unit of length or volume, "mm²/kPa", "N/mm²/min", "cm³": its power; and a
        # number raised right after a decimal fraction, "N(1, 0.25²) nA": a variance, no citation follows a decimal)
        # (and one raised after an increment or a differential, "O(∆t²)", "∂x²": no word opens with "∆"; and one
        # glued to an opening parenthesis or an operator, "(¹D_pp(t) −¹D_pp(0))": a citation follows a word, a
        # closing bracket or a stop, never "(", "−", "="; a minus between two raised numbers, "²−⁷" with its minus
        # set low, is a range's. Not after "+", which ends names, "Star-CCM+²⁷", "C++"; nor after a two-letter
        # word of a small letter and a capital, "dN⁴": "15 ng/mL²²" and "5 nM²³" cite)
        if sup and n > 0 and not pieces[n - 1][1] and (
                re.search(r"(?:^|[\s(=+\-−/*·])(?:[^\W\d_]|δ[^\W\d_])$|[∆Δ∂∇][^\W\d_]$|\d\.\d+$",
                          normalise(pieces[n - 1][0]))
                or (re.search(r"[(=−×±<>≤≥]$", pieces[n - 1][0])
                    and not (n > 1 and pieces[n - 2][1] and len(pieces[n - 1][0].strip()) == 1))
                or (re.fullmatch(r"\s*[23]\s*", text) and re.search(r"(?:^|[\s(\d/·])(?:[kcmµμnd]m|[mµμd][lL]|ft|in)$",
                                                                   normalise(pieces[n - 1][0])))):
            runs.append((normalise(text), []))
            continue
        text = normalise(text)  # "¹H", "10³m": not a citation
        # a power of ten ("1.28 × 10⁹ peptides", "(10⁴ cells per well)") raises its exponent over a "10" after a
        # times sign or a bracket ("STATA version 10¹⁹" cites)
        power = n > 0 and re.search(r"(?:[×x·]\s?|[(\[])10$", pieces[n - 1][0]) is not None
        # a raised number may be printed in its brackets ("among others^[1].", "^[2,3]": Chinese journals); in
        # brackets it is no exponent, also in a paper that the count of its bracketed markers calls bracket-citing
        # several in a row ("BNP^[7][8][9]", LibreOffice), even glued to the next word ("these^[8][13]studies"): the
        # brackets say they cite
        bracketed = re.fullmatch(r"(?:\[[^\[\]]+\]\s?[,;]?\s?)+", text.strip())
        inner = ",".join(re.findall(r"\[([^\[\]]+)\]", text)) if bracketed else text.strip()
        if sup and (superscripts or bracketed) and by_label and SUPERSCRIPT_MARKER.fullmatch(inner) \
                and (not glued or bracketed) and not power:
            # Elsevier's fonts map the en dash of "1–3" to "e"
            spec = re.sub(r"(?<=\d)\s+(?=\d)", ",", re.sub(r"(?<=\d)[e—]", "-", inner))
            numbers = expand_numbers(spec)
            if numbers and all(n in by_label for n in numbers):
                runs.append((text, list(dict.fromkeys(by_label[n] for n in numbers))))
                continue
        if sup and n > 0 and re.fullmatch(r"\d{1,2}", text) and re.search(r"[.!?]$", pieces[n - 1][0]) \
                and (n + 1 == len(pieces) or pieces[n + 1][0][:1].isspace()):
            # a footnote's mark after a full stop ("… for the Astropy project.² One of the primary aims"), that
            # names no entry: printed, it glued the two sentences into one ("project.2 One")
            continue
        if sup:
            runs.append((text, []))
            continue
        pos = 0
        for s, e, idx in find_markers(text, refs, parens, par.table):
            runs.append((text[pos:s], []))
            runs.append((text[s:e], idx))
            pos = e
        runs.append((text[pos:], []))
    return [(t, k) for t, k in runs if t]


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


def _label_unlinked_brackets(runs: list[tuple[str, list[int]]], by_label: dict[int, int]) -> list[tuple[str, list[int]]]:
    """Unlinked text of a linked paper: its bracketed numbers that all name numbered entries ("[36]", "[30,41]")
    become markers of those entries; nothing else is read, and no vector ("[1 , 1]", "[0, 1]" in a code listing:
    a number twice, or a 0), as in ``find_markers``."""
    out: list[tuple[str, list[int]]] = []
    for text, keys in runs:
        if keys:
            out.append((text, keys))
            continue
        pos = 0
        groups = [(m, [int(v) for v in re.findall(r"\d+", m.group(1))]) for m in NUMERIC_MARKER.finditer(text)]
        vectors = [(m.start(), len(listed)) for m, listed in groups if 0 in listed or len(set(listed)) < len(listed)]
        for m, listed in groups:
            numbers = expand_numbers(m.group(1).replace("–", "-"))
            before = text[:m.start()]
            if not numbers or not all(n in by_label for n in numbers) or CROSS_REFERENCE.search(before[-24:]) \
                    or 0 in listed or len(set(listed)) < len(listed) or MATH_BEFORE.search(before[-4:]) \
                    or _interval_or_bin(text, m.start(), listed, numbers) \
                    or any(len(listed) == k and _same_sentence(text, m.start(), v) for v, k in vectors):
                continue  # (a vector's kin: "[1, 2, 3, 4] (no degradation), [0, 1, 1, 2] (k=2)")
            out.append((text[pos:m.start() + 1], []))
            out.append((m.group(1), list(dict.fromkeys(by_label[n] for n in numbers))))
            pos = m.end() - 1
        out.append((text[pos:], []))
    return [(t, k) for t, k in out if t]


CONTENTS_LEADER = re.compile(r"(?:\.\s?){6,}\s*\d{1,4}\b")
MIN_LINKED_MARKERS = 1  # body links naming an entry that make a PDF one whose citations are its links
FEW_LINKED_MARKERS = 3  # under this many, the patterns are tried too (``convert``)


def to_jats(doc: Document, use_links: bool = True) -> tuple[bytes, dict]:
    """Serialise a Document as CERMINE-shaped JATS; returns the XML and linking statistics."""
    article = etree.Element("article")
    meta = etree.SubElement(etree.SubElement(article, "front"), "article-meta")
    etree.SubElement(etree.SubElement(meta, "title-group"), "article-title").text = normalise(doc.title)
    body = etree.SubElement(article, "body")
    targets = link_target_index(doc) if use_links else {}
    all_runs = [paragraph_runs(par, targets, doc.references) for par in doc.paragraphs] if targets else []
    # links that land in the bibliography yet name no entry from the body (a Word thesis's table of contents,
    # whose "References ... 25" points at the first entry) make no linked PDF: its markers are read by pattern
    if targets and sum(1 for runs in all_runs for _, keys in runs if keys) < MIN_LINKED_MARKERS:
        targets, all_runs = {}, []
    linked_pdf = bool(targets)
    stats = {"n_citations": 0, "n_linked_by": "links" if linked_pdf else "patterns", "n_unlinked_links": 0}
    by_label = labels_of(doc.references)
    texts = [] if linked_pdf else [normalise("".join(c.text for c in par.chars)) for par in doc.paragraphs]
    parens = not linked_pdf and parenthesised_numbers_cite(texts, by_label, doc.printed_labels)
    # A paper that cites in brackets "[2]" does not also cite by superscripts: where its bracketed markers
    # that name entries outnumber its raised numbers twice over, those are exponents ("(y − ŷ)²") and
    # footnote marks
    brackets = sum(1 for t in texts for m in NUMERIC_MARKER.finditer(t)
                   if all(n in by_label for n in expand_numbers(m.group(1))))
    raised = sum(1 for par in ([] if linked_pdf else doc.paragraphs) for k, c in enumerate(par.chars)
                 if c.sup and c.text.isdigit() and k and not par.chars[k - 1].sup)
    # ten bracketed markers make a bracket-citing paper, however many exponents its equations raise
    superscripts = brackets < 3 or (brackets < 10 and brackets < 2 * raised)
    # nor does a paper that cites by numbers in parentheses (Vancouver, "(12)"): its raised numbers are a table's
    # footnote marks ("OR¹", "ICU³", a Word thesis) and exponents, unless they outnumber its parenthesised markers
    if parens:
        # (prose: not a table's row, nor the rows of a table read as text, "General Ward 52 / 2,804 (1.9%)")
        prose = [(t, par) for t, par in zip(texts, doc.paragraphs) if not par.table
                 and sum(ch.isalpha() for ch in t) >= 0.7 * sum(not ch.isspace() for ch in t)]
        in_parens = sum(1 for t, _ in prose for m in PAREN_NUMERIC.finditer(t)
                        if all(n in by_label for n in expand_numbers(m.group(1))))
        raised_in_prose = sum(1 for _, par in prose for k, c in enumerate(par.chars)
                              if c.sup and c.text.isdigit() and k and not par.chars[k - 1].sup)
        superscripts = superscripts and raised_in_prose > in_parens
    secs: dict[int, etree._Element] = {}
    for n, name in enumerate(doc.sections):
        sec = etree.SubElement(body, "sec", id=f"sec{n + 1}")
        etree.SubElement(sec, "title").text = normalise(name)
        secs[n] = sec
    # A PDF whose bracketed markers are links may leave a few without one (MDPI: "[36]" at a page's foot):
    # where the paper cites by linked bracketed numbers and its entries are numbered, an unlinked "[36]"
    # names entry 36 as its linked neighbours do
    numbered = len(by_label) >= max(5, 0.8 * len(doc.references))
    linked_brackets = sum(1 for runs in all_runs for text, keys in runs
                          if keys and re.fullmatch(r"\s*\[?[\d\s,–-]+\]?\s*", normalise(text)))
    if linked_pdf:
        # (not in a table's row: a linked PDF's table links its citations, and "[2, 4, 8] °", "[30, 50] mm"
        # there are values)
        all_runs = [_label_unlinked_brackets(runs, by_label) if numbered and linked_brackets >= 5 and not par.table
                    else runs for runs, par in zip(all_runs, doc.paragraphs)]
    else:
        all_runs = [pattern_runs(par, doc.references, by_label, parens, superscripts) for par in doc.paragraphs]
    # a footnote's mark in the body names the works its footnote cites (``link_notes``)
    all_runs = [_runs_with_notes(par, (lambda q: paragraph_runs(q, targets, doc.references)) if linked_pdf
                                 else (lambda q: pattern_runs(q, doc.references, by_label, parens, superscripts)))
                if par.note_marks else runs for runs, par in zip(all_runs, doc.paragraphs)]
    # a thesis's list of figures or tables repeats each caption, its citation too, before a dotted leader and the
    # page ("1.2 A hierarchical cluster topology [8]. . . . . . 5"): an entry of a list of contents, not a sentence
    # that cites (the caption itself, in the body, does)
    for n_par, runs in enumerate(all_runs):
        joined = "".join(text for text, _ in runs)
        if (". ." in joined or "......" in joined) and any(keys for _, keys in runs) and \
                CONTENTS_LEADER.search(normalise(joined)):
            all_runs[n_par] = [(text, [] if keys else keys) for text, keys in runs]
    # the abstract is written, as a section of its own before the body's, only where it cites a work no paragraph
    # of the body cites (as the LaTeX route keeps an abstract that cites)
    in_body = {k for runs, par in zip(all_runs, doc.paragraphs) if not par.abstract for _, keys in runs
               for k in keys or ()}
    if any(par.abstract and any(set(keys or ()) - in_body for _, keys in runs)
           for runs, par in zip(all_runs, doc.paragraphs)):
        secs[-1] = etree.Element("sec", id="sec0")
        etree.SubElement(secs[-1], "title").text = "Abstract"
        body.insert(0, secs[-1])
    for n_par, par in enumerate(doc.paragraphs):
        if par.section not in secs:
            continue
        p = etree.SubElement(secs[par.section], "p", {"content-type": "table-row"} if par.table else {})
        if linked_pdf:
            for text, keys in all_runs[n_par]:
                text = normalise(text)
                if keys:
                    x = etree.SubElement(p, "xref", {"ref-type": "bibr", "rid": " ".join(f"ref{k + 1}" for k in keys)})
                    x.text = text
                    stats["n_citations"] += 1
                else:
                    _add_text(p, text)
        else:
            for text, idx in all_runs[n_par]:
                if idx:
                    lead, core, trail = re.match(r"^(\s*)(.*?)(\s*)$", text, re.S).groups()
                    _add_text(p, lead)
                    x = etree.SubElement(p, "xref", {"ref-type": "bibr",
                                                     "rid": " ".join(f"ref{k + 1}" for k in idx)})
                    x.text = core
                    x.tail = trail or None
                    stats["n_citations"] += 1
                else:
                    _add_text(p, text)
    back = etree.SubElement(article, "back")
    ref_list = etree.SubElement(back, "ref-list")
    for n, ref in enumerate(doc.references):
        r = etree.SubElement(ref_list, "ref", id=f"ref{n + 1}")
        r.append(build_mixed_citation(ref))
    xml = etree.tostring(article, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    stats["n_references"] = len(doc.references)
    return xml, stats


# ---------------------------------------------------------------------------
# Completeness: a conversion that yields far less than the paper holds is flagged partial
# ---------------------------------------------------------------------------

# A conversion is partial when the paper's own text says it cites far more than was linked: of the body's
# citation-looking markers (bracketed numbers within the bibliography's label range, author-year markers naming
# an entry's surname and year, found by this backend's own patterns, and the linked ones) more than
# MAX_UNLINKED_SHARE came out unlinked (at least MIN_MARKERS of them), or fewer than MIN_CITED_SHARE of a
# bibliography of at least MIN_ENTRIES entries are cited by a linked marker while the body holds markers (a
# marker style not read, a body cut short). Only where there are enough of them for a share to mean something.
# The second is no evidence where the file's text names fewer than MIN_UNCITED_NAMED_SHARE of the entries left
# uncited, by any marker form (a 4-page excerpt of a review that cites entries 1-10 and 72-79 names none of the
# others: nothing was lost; a biblatex bibliography that lists 93 works the text never cites names 5). And a conversion is partial
# when at least MIN_NAMED_UNCITED entries, and MIN_NAMED_UNCITED_SHARE of the bibliography, are named by a
# bracketed or author-year marker in the file's text before the bibliography but cited by no linked marker:
# text the conversion left out (a table's notes, captions, a page read wrong) cites them.
MAX_UNLINKED_SHARE = 0.5
MIN_MARKERS = 10
MIN_CITED_SHARE = 0.4
MIN_ENTRIES = 15
MIN_MARKERS_FOR_ENTRIES = 3
MIN_NAMED_UNCITED = 8
MIN_UNCITED_NAMED_SHARE = 0.2
MIN_NAMED_UNCITED_SHARE = 0.2
# What the text cites that no entry read holds: a bibliography cut short (the parse stopped at a running head, a
# caption floated among the entries, a paper appended after a thesis's bibliography; a page read wrong). A numbered
# bibliography: at least MIN_LOST of the numbers the text cites (bracketed, raised, in parentheses where the paper
# cites so), and MIN_LOST_SHARE of them, have no entry: inside its label range, or in a run beyond its last label
# at least MIN_RUN_DENSITY dense (the
# numbers a cut-short list lost: [36], [37], … [112]; scattered numbers beyond it are statistics and intervals,
# "F[1, 653]", "[0, 255]", no run). An author-year one: at least MIN_LOST_AUTHOR_YEARS of the distinct surname +
# year citations of the text, and MIN_LOST_AUTHOR_YEARS_SHARE of them, name no entry (none holds the surname with
# the year, none opens with the surname; whole papers: at most 3, and 0.15). A numbered bibliography whose region prints at least MIN_LOST labels, a
# MIN_LOST_LABELS_SHARE of its labels, that open no entry read (entries lost or run together by the split). And a
# body cut short: less than MIN_BODY_SHARE of the text the file holds before the bibliography (at least
# MIN_LAYER_TEXT characters) came out as body text (whole papers: 0.53 and more, captions, tables and front
# matter being the rest).
MIN_LOST = 5
MIN_LOST_SHARE = 0.15
MAX_CITED_RANGE = 50
MIN_RUN_DENSITY = 0.6
MIN_LOST_AUTHOR_YEARS = 8
MIN_LOST_AUTHOR_YEARS_SHARE = 0.2
MIN_LOST_LABELS_SHARE = 0.1
MIN_BODY_SHARE = 0.3
MIN_LAYER_TEXT = 20_000
MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"}


def _paragraph_xrefs(p: etree._Element) -> tuple[str, list[tuple[int, int]], list[list[str]]]:
    """A body paragraph's text, the spans of its xrefs in it and the entry ids each names."""
    text, spans, rids = p.text or "", [], []
    for x in p:
        start = len(text)
        text += x.text or ""
        if x.tag == "xref":
            spans.append((start, len(text)))
            rids.append((x.get("rid") or "").split())
        text += x.tail or ""
    return text, spans, rids


def _ranges(numbers: list[int], most: int = 3) -> str:
    """[10, 11, 12, 20] -> "[10]–[12], [20]"; at most ``most`` ranges, then "…"."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = ", ".join(f"[{a}]" if a == b else f"[{a}]–[{b}]" for a, b in runs[:most])
    return text + (", …" if len(runs) > most else "")


def numbers_without_entry(text: str, labels: list[int], top: int, raised: tuple[str, ...] = (),
                          parens: bool = False) -> tuple[list[int], int]:
    """(the numbers the markers of ``text`` cite that no entry of a numbered bibliography whose last label is
    ``top`` holds, the numbers cited that count): those inside its label range without an entry, and a run beyond
    it at least MIN_RUN_DENSITY dense from ``top`` on. Markers: bracketed numbers (a vector or an interval, "[0,
    1]", "[1, 1]", is none), the ``raised`` groups (superscript citations, "4,5", "16–18") and, where ``parens``
    (the paper cites by them), numbers in parentheses."""
    cited: set[int] = set()
    for m in NUMERIC_MARKER.finditer(text):
        listed = [int(v) for v in re.findall(r"\d+", m.group(1))]
        numbers = expand_numbers(m.group(1))
        # (a range of more than MAX_CITED_RANGE numbers is a bin or an interval, a figure's axis "Languages
        # [101-200]", never one group of works)
        if 0 not in listed and len(set(listed)) == len(listed) and len(numbers) <= MAX_CITED_RANGE:
            cited.update(numbers)
    for group in raised:
        if RAISED_FRAGMENT.fullmatch(group := normalise(group)):
            cited.update(expand_numbers(re.sub(r"(?<=\d)\s+(?=\d)", ",", re.sub(r"(?<=\d)[e—]", "-", group))))
    for m in PAREN_NUMERIC.finditer(text) if parens else ():
        before = text[max(0, m.start() - 12):m.start()]
        # after a count or a measure: a range ("18 (2–24)", "47 (34-69)") or a count's share ("12 (80)"); after a
        # decimal in prose ("PREFAB 4.0 (5)") or a year ("since 1998 (28)") the number cites
        if not ((AFTER_A_VALUE.search(before) and (re.search(r"[-–]", m.group(1))
                                                    or not re.search(r"\.\d+%?\s*$", before)))
                or re.search(r"±\s*$", before)):
            cited.update(expand_numbers(m.group(1)))
    cited.discard(0)
    have = set(labels)
    within = sorted(n for n in cited if n <= top and n not in have)
    beyond = sorted(n for n in cited if n > top)
    run = max((i + 1 for i, n in enumerate(beyond) if i + 1 >= MIN_RUN_DENSITY * (n - top)), default=0)
    return within + beyond[:run], sum(1 for n in cited if n <= top) + run


def author_years_without_entry(text: str, refs: list[Reference]) -> tuple[list[str], int]:
    """(the distinct surname + year citations of ``text`` that name no entry of ``refs``, as printed; how many
    distinct ones it holds): an entry is named where its text holds the surname with the year, or opens with the
    surname (a year the parse cut off)."""
    by_year: dict[str, list[str]] = {}
    openings: set[str] = set()
    for ref in refs:
        # (without accents, as the markers' keys are: "Drápala, 2000" is named by "Drápala, M. (2000)")
        raw = "".join(c for c in unicodedata.normalize("NFKD", ref.raw.lower().replace("ı", "i"))
                      if not unicodedata.combining(c))
        for year in set(re.findall(r"(?<!\d)(?:1[6-9]|20)\d{2}(?!\d)", raw)):
            by_year.setdefault(year, []).append(raw)
        openings.update(re.findall(r"[^\W\d_]+", raw[:40]))
    cites: dict[tuple[str, str], str] = {}
    def add(name: str, years: str, printed: str) -> None:
        key = _surname_key(name)
        if key and key not in MONTHS:
            for year in _years(years):
                cites.setdefault((key, year[:4]), printed)
    for m in PAREN_GROUP.finditer(text):
        for cite in m.group(1).split(";"):
            if c := re.search(rf"({AUTHOR}),?\s+({YEARS})", cite):
                add(c.group(1), c.group(2), c.group(0))
    for m in TEXTUAL.finditer(text) if BRACKETED_YEAR.search(text) else ():
        add(m.group(1), m.group(2), m.group(0))
    lost = [printed for (key, year), printed in cites.items()
            if key not in openings and not any(key in raw for raw in by_year.get(year, ()))]
    return lost, len(cites)


def citation_evidence(doc: Document, xml: bytes) -> dict:
    """What the body's text says it cites against what the conversion linked: the citation-looking markers
    (found by this backend's patterns whether or not the PDF's links were used), those of them that overlap
    no xref, the bibliography's entries and those a linked marker cites."""
    root = etree.fromstring(xml)
    refs = doc.references
    labels = [int(d) for d in (re.sub(r"\D", "", r.label) for r in refs) if d]
    top = max(labels) if labels and len(labels) >= 0.5 * len(refs) else 0  # a numbered bibliography's label range
    n_markers = n_unlinked = body_chars = 0
    cited: set[str] = set()
    for p in root.iter("p"):
        text, spans, rids = _paragraph_xrefs(p)
        body_chars += len(text)
        for r in rids:
            cited.update(r)
        found = [(s, e) for s, e, _ in find_markers(text, refs)]
        for m in NUMERIC_MARKER.finditer(text) if top else ():  # "[20]" whose entry the split lost counts too
            listed = [int(v) for v in re.findall(r"\d+", m.group(1))]
            numbers = expand_numbers(m.group(1))
            if numbers and 0 not in listed and len(set(listed)) == len(listed) and max(numbers) <= top \
                    and not any(s < m.end(1) and m.start(1) < e for s, e in found) \
                    and not _list_value(text, m.start(), m.end()):  # ("t1.MC[1] = a.VC": an index, no marker)
                found.append((m.start(1), m.end(1)))
        for s, e in found:
            n_unlinked += not any(a < e and s < b for a, b in spans)
        # every linked marker is one too (a raised number, a link the patterns do not read)
        n_markers += len(found) + sum(1 for a, b in spans if not any(s < b and a < e for s, e in found))
    # (a label that two numbered lists share, the references' [6] and an author list's affiliation "6.", is
    # cited when one of them is)
    cited_labels = {ref.label for k, ref in enumerate(refs) if ref.label and f"ref{k + 1}" in cited}
    cited_labels = {re.sub(r"\D", "", label) for label in cited_labels} - {""}
    uncited = {k for k, ref in enumerate(refs) if f"ref{k + 1}" not in cited
               and not (ref.label and re.sub(r"\D", "", ref.label) in cited_labels)}
    # entries the file's text names by a bracketed or author-year marker (strong evidence), and by any form
    # a marker takes (numbers in parentheses or raised too: weak, an equation or an exponent may say "(3)")
    strong = {k for _, _, idx in find_markers(doc.layer_text, refs) for k in idx} & uncited
    by_label = labels_of(refs)
    weak = {by_label[n] for m in PAREN_NUMERIC.finditer(doc.layer_text) for n in expand_numbers(m.group(1))
            if n in by_label}
    weak |= {by_label[n] for group in doc.layer_raised
             for n in expand_numbers(re.sub(r"(?<=\d)\s+(?=\d)", ",", re.sub(r"(?<=\d)[e—]", "-", normalise(group))))
             if n in by_label}
    # and an author-year entry is named where its year stands in the text with a name of its author list within
    # a few words before it ("[Fodor and Pylyshyn, 1988]" for "Jerry A. Fodor and Zenon W. Pylyshyn. 1988. …",
    # whose first surname the parse may miss)
    before_year: dict[str, list[set[str]]] = {}
    for m in re.finditer(r"(?<!\d)((?:1[6-9]|20)\d{2})[a-z]?(?!\d)", doc.layer_text):
        words = set(re.findall(r"[A-Z][\w'’\-]{2,}", doc.layer_text[max(0, m.start() - 60):m.start()]))
        before_year.setdefault(m.group(1), []).append(words)
    for k in uncited - weak:
        if (year := refs[k].fields.get("year_text", "")[:4]) and year in before_year:
            head = refs[k].raw[:refs[k].fields["year"][0]]
            names = set(re.findall(r"[A-Z][\w'’\-]{2,}", head)) - {"The", "And", "Proc", "Journal", "Vol"}
            if any(names & words for words in before_year[year]):
                weak.add(k)
    # what the text cites that no entry read holds, and labels the bibliography prints that open no entry
    # (numbers where the bibliography is numbered, or where no entry read has a label: a numbered list cut to
    # its first entries, their labels lost, counts when the run the text cites is over 1/MIN_RUN_DENSITY times
    # the entries: a table's note keys "[1]: Woolf & Wallerstein (2005)" beside 89 author-year entries are none)
    # (a label that is a year, "[2007]" of an author-year list, is no number; and the labels must cover half
    # their range for a number without an entry inside it to mean one lost)
    numbered = [n for n in labels if n < 1000]
    last = max(numbered) if numbered and len(numbered) >= 0.5 * len(refs) else 0
    lost, n_numbers = [], 0
    # (entries read from the notes are no bibliography that could have been cut short)
    lost_cites, n_cites = author_years_without_entry(doc.layer_text, refs) \
        if refs and not any(ref.from_note for ref in refs) else ([], 0)
    # a list printed without labels that the text cites by author and year, each citation naming an entry, is an
    # author-year bibliography (numbered here only for its order): the numbers of its text are exponents and
    # equations ("x²", "(12)"), not citations of entries that the split lost
    author_year = not doc.printed_labels and n_cites >= 3 and len(lost_cites) <= MIN_LOST_AUTHOR_YEARS_SHARE * n_cites
    if refs and (last or not numbered) and len(set(numbered)) >= 0.5 * last and not author_year:
        parens = parenthesised_numbers_cite([doc.layer_text], by_label, doc.printed_labels)
        lost, n_numbers = numbers_without_entry(doc.layer_text, numbered, last, doc.layer_raised, parens)
        if not last and len(refs) >= MIN_RUN_DENSITY * len(lost):
            lost, n_numbers = [], 0
    bracketed = sum(ref.label.startswith("[") for ref in refs) > 0.5 * len(refs)
    printed = {int(label.strip("[].")) for label in doc.printed_labels if label.startswith("[") == bracketed}
    lost_labels = sorted(printed - set(numbered)) if last else []
    return {"n_markers": n_markers, "n_unlinked_markers": n_unlinked, "n_entries": len(refs),
            "n_entries_cited": len(cited), "n_uncited_named": len(strong),
            "n_uncited_named_any": len(strong | (weak & uncited)),
            "last_label": last, "n_numbers_cited": n_numbers, "n_numbers_without_entry": len(lost),
            "numbers_without_entry": _ranges(lost), "n_author_years": n_cites,
            "n_author_years_without_entry": len(lost_cites), "author_years_without_entry": "; ".join(lost_cites[:3]),
            "n_printed_labels": len(printed), "n_printed_labels_without_entry": len(lost_labels),
            "printed_labels_without_entry": _ranges(lost_labels),
            "body_chars": body_chars, "layer_chars": len(doc.layer_text)}


def partial_reason(evidence: dict) -> str:
    """Why a conversion with this ``citation_evidence`` yields far less than its paper, or ""."""
    n, unlinked = evidence["n_markers"], evidence["n_unlinked_markers"]
    entries, cited = evidence["n_entries"], evidence["n_entries_cited"]
    if n >= MIN_MARKERS and unlinked > MAX_UNLINKED_SHARE * n:
        return f"{unlinked} of the body's {n} citation markers are not linked to a bibliography entry"
    named_any = evidence.get("n_uncited_named_any", entries - cited)
    if entries >= MIN_ENTRIES and n >= MIN_MARKERS_FOR_ENTRIES and cited < MIN_CITED_SHARE * entries \
            and named_any and named_any >= MIN_UNCITED_NAMED_SHARE * (entries - cited):
        return f"only {cited} of the {entries} bibliography entries are cited by a linked marker"
    named = evidence.get("n_uncited_named", 0)
    if named >= MIN_NAMED_UNCITED and named >= MIN_NAMED_UNCITED_SHARE * entries:
        return (f"{named} of the {entries} bibliography entries are named in the text but cited by no linked "
                f"marker (text the conversion left out names them: a table's notes, a caption)")
    lost, numbers = evidence.get("n_numbers_without_entry", 0), evidence.get("n_numbers_cited", 0)
    if lost >= MIN_LOST and lost >= MIN_LOST_SHARE * numbers:
        last = f"the last [{evidence['last_label']}]" if evidence.get("last_label") else "none numbered"
        return (f"{lost} of the {numbers} numbers the text cites have no bibliography entry "
                f"({evidence['numbers_without_entry']}; {entries} entries read, {last}): the bibliography was cut "
                f"short")
    lost, cites = evidence.get("n_author_years_without_entry", 0), evidence.get("n_author_years", 0)
    # (author-year where the bibliography is not numbered, or the text cites more by surname and year than by
    # number: a numbered paper's taxonomic authorities, "Boulenger, 1894", name no entry)
    if lost >= MIN_LOST_AUTHOR_YEARS and lost >= MIN_LOST_AUTHOR_YEARS_SHARE * cites \
            and (not evidence.get("last_label") or numbers < cites):
        return (f"{lost} of the {cites} author-year citations in the text name no bibliography entry "
                f"(e.g. {evidence['author_years_without_entry']}; {entries} entries read): the bibliography was "
                f"cut short")
    lost, printed = evidence.get("n_printed_labels_without_entry", 0), evidence.get("n_printed_labels", 0)
    if lost >= MIN_LOST and lost >= MIN_LOST_LABELS_SHARE * printed:
        return (f"{lost} of the {printed} numbered labels the bibliography prints open no entry read "
                f"({evidence['printed_labels_without_entry']}; {entries} entries read)")
    body, layer = evidence.get("body_chars", 0), evidence.get("layer_chars", 0)
    if layer >= MIN_LAYER_TEXT and body < MIN_BODY_SHARE * layer:
        return (f"the body holds {body} characters of the {layer} the file's text holds before the bibliography "
                f"({body / layer:.0%}): the body was cut short")
    return ""


def convert(path: Path) -> tuple[bytes, dict]:
    """PDF file -> (JATS bytes, stats). Raises ExtractionError for PDFs that cannot be read."""
    doc = read_pdf(path)
    try:
        xml, stats = to_jats(doc)
        if stats["n_linked_by"] == "links" and stats["n_citations"] < FEW_LINKED_MARKERS:
            # a Word document that hyperlinks one or two of its markers (a cross-reference inserted as a link) and
            # prints the others plain: where the patterns link more than twice as many, they read it
            plain, plain_stats = to_jats(doc, use_links=False)
            if plain_stats["n_citations"] > 2 * stats["n_citations"]:
                xml, stats = plain, plain_stats
    except ValueError as exc:  # lxml refuses a string: a character the sanitising missed
        raise ExtractionError(f"text the XML writer refuses ({exc}); please report this PDF — "
                              f"--backend grobid or cermine can convert it meanwhile") from exc
    stats["n_pages"] = doc.n_pages
    stats.update(citation_evidence(doc, xml))
    if reason := partial_reason(stats):
        stats["partial"] = reason
    return xml, stats
