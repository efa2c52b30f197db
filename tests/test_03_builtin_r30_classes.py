"""Stage 03's built-in backend on published papers (issue 25, round 30: 48 PDFs from ContentMine/ami's test
resources — Elsevier, XPP, 3B2, InDesign, Arbortext, Hindawi, BMC, IOP, EPJ, IEEE, old Distiller 2/3 and a JBC scan
with its text layer): each test builds a small PDF the way that producer lays it out, and checks one class of
problem the held-out measurement showed."""
from __future__ import annotations

import re
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import end_x  # noqa: E402
from test_03_builtin_real_classes import BODY, xml_of  # noqa: E402


def marks(root) -> list[tuple[str, list[str]]]:
    """(marker text, the first words of every reference it names) for each linked marker, in reading order."""
    refs = {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}
    return [(x.text, [refs[k][:4] for k in x.get("rid").split()]) for x in root.iter("xref")]


# ---------------------------------------------------------------------------------------------------------
# Elsevier: a link box that reaches past its bracket, a destination a line above its entry and with no x
# ---------------------------------------------------------------------------------------------------------

def test_a_link_box_reaching_past_its_bracket_still_names_the_entry_its_numbers_print(tmp_path):
    """Elsevier's link rectangles cover "[2]. T" (the full stop and the next sentence's first letter), and each
    destination lies a line above its entry with no x, level with an entry of the other column: the printed
    numbers name the entries, not the entry nearest the destination."""
    body = raw_pdf.Page()
    body.text(60, 740, "A Paper Title Set Large", size=18)
    body.text(60, 700, "1. Introduction", size=10, font="F2")
    cites = [("2", "The"), ("5,6", "Then"), ("3", "So")]
    ys = [680, 668, 656]
    for (n, after), y in zip(cites, ys):
        body.text(60, y, f"{BODY} [{n}]. {after} more text follows.")
    for k in range(4):
        body.text(60, 644 - 12 * k, f"{BODY}, line {k}.")
    refs = raw_pdf.Page()
    refs.text(60, 740, "References", size=10, font="F2")
    tops = {}
    for n in range(1, 5):  # left column, 14 pt apart; the right column sits 7 pt higher than the left one
        y = 720 - 14 * (n - 1)
        refs.text(60, y, f"[{n}] Author{n} A. A title of work number {n}. J Test 2001;{n}:1-9.", size=7)
        tops[n] = y
    for n in range(5, 9):
        y = 727 - 14 * (n - 5)
        refs.text(320, y, f"[{n}] Author{n} A. A title of work number {n}. J Test 2001;{n}:1-9.", size=7)
        tops[n] = y
    for (n, after), y in zip(cites, ys):
        left = end_x(tmp_path, 60, f"{BODY} ")
        right = end_x(tmp_path, 60, f"{BODY} [{n}]. {after[0]}")
        first = int(n.split(",")[0])
        body.link((left - 0.5, y - 2, right + 0.5, y + 8), page=1, x=None, y=tops[first] + 7 + 14)
    root = xml_of(tmp_path, [body, refs])
    assert [(m.strip(" .TSh"), names) for m, names in marks(root)] == [
        ("[2]", ["[2] "]), ("[5,6]", ["[5] ", "[6] "]), ("[3]", ["[3] "])]


# ---------------------------------------------------------------------------------------------------------
# Cambridge University Press: "AUTHORS' ADDRESSES" after the bibliography, numbered by raised marks
# ---------------------------------------------------------------------------------------------------------

def test_authors_addresses_in_capitals_over_a_narrow_column_end_the_bibliography(tmp_path):
    """Cambridge's journals end with "AUTHORS' ADDRESSES", each address after a raised number: in capitals it
    ends the bibliography even where it is as wide as the short address lines of its column (so it does not
    read as a heading there); else the raised 1, 2 are read as the entries' labels and the author-year
    bibliography above them as one entry (a paper with 62 entries had 2 markers linked)."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "INTRODUCTION", size=10, font="F2")
    page.text(60, 680, "Nerve injury produces pain (Bennett and Xie, 1988; Chaplan et al., 1994).", size=9)
    page.text(60, 668, f"{BODY}, as reported (Zimmermann, 1983).", size=9)
    for k in range(4):
        page.text(60, 656 - 12 * k, f"{BODY}, line {k}.", size=9)
    page.text(60, 590, "REFERENCES", size=9, font="F2")
    y = 570
    for first, second in [("Bennett G.J. and Xie Y.K. (1988) A peripheral mononeuropathy in rat",
                           "that produces disorders of pain sensation. Pain 33, 87-107."),
                          ("Chaplan S.R., Bach F.W. and Yaksh T.L. (1994) Quantitative",
                           "assessment of tactile allodynia in the rat paw. J. Neurosci. Meth. 53, 55-63."),
                          ("Zimmermann M. (1983) Ethical guidelines for investigations of",
                           "experimental pain in conscious animals. Pain 16, 109-110.")]:
        page.text(60, y, first, size=8)
        page.text(72, y - 10, second, size=8)
        y -= 25
    page.text(320, 570, "AUTHORS\u2019 ADDRESSES", size=9)
    y = 552
    for n, lines in enumerate([["Department of Preclinical Development", "Avigen Inc.", "Alameda, CA"],
                               ["Department of Psychology", "University of Colorado", "Boulder, CO"]], start=1):
        page.text(320, y + 3, str(n), size=5)
        for k, line in enumerate(lines):
            page.text(332, y - 11 * k, line, size=9)
        y -= 40
    root = xml_of(tmp_path, [page])
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert [r[:10] for r in raws] == ["Bennett G.", "Chaplan S.", "Zimmermann"]
    assert marks(root) == [("Bennett and Xie, 1988; Chaplan et al., 1994", ["Benn", "Chap"]),
                           ("Zimmermann, 1983", ["Zimm"])]


def test_a_surname_before_dotted_initials_without_a_comma_is_the_surname(tmp_path):
    """"Bennett G.J. and Xie Y.K. (1988)" (Cambridge, some Elsevier journals): the surname comes first and the
    dotted initials after it with no comma between; "Bennett and Xie, 1988" names the entry by that surname,
    not by "G.J."."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "INTRODUCTION", size=10, font="F2")
    page.text(60, 680, "Nerve injury produces pain (Bennett and Xie, 1988).", size=9)
    page.text(60, 668, "Allodynia was measured as before (Chaplan et al., 1994).", size=9)
    for k in range(4):
        page.text(60, 656 - 12 * k, f"{BODY}, line {k}.", size=9)
    page.text(60, 590, "REFERENCES", size=9, font="F2")
    page.text(60, 570, "Bennett G.J. and Xie Y.K. (1988) A peripheral mononeuropathy in rat. Pain 33, 87-107.", size=8)
    page.text(60, 556, "Chaplan S.R., Bach F.W. and Yaksh T.L. (1994) Quantitative assessment of tactile", size=8)
    page.text(72, 546, "allodynia in the rat paw. J. Neurosci. Meth. 53, 55-63.", size=8)
    page.text(60, 532, "Zimmermann M. (1983) Ethical guidelines for pain research. Pain 16, 109-110.", size=8)
    root = xml_of(tmp_path, [page])
    assert marks(root) == [("Bennett and Xie, 1988", ["Benn"]), ("Chaplan et al., 1994", ["Chap"])]


# ---------------------------------------------------------------------------------------------------------
# Chinese journals (J Huazhong Univ Sci Technol): raised numbers printed in their brackets
# ---------------------------------------------------------------------------------------------------------

def test_raised_numbers_in_brackets_cite_their_entries(tmp_path):
    """"among others^[1].", "in recent years^[2,3]": the raised marker keeps its brackets. Counted as
    bracketed markers they make the paper read as one that cites in brackets (where raised numbers are
    exponents), and raised they were read as no bracketed marker either: none was linked (a paper with 22
    entries reported empty)."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "1 MATERIALS AND METHODS", size=10, font="F2")
    y = 680
    for text, mark in [("Neuropathic pain affects patients with diabetes, among others", "[1]"),
                       ("Chemotherapy can cause neuropathic pain in recent years", "[2,3]"),
                       ("The drug was given as described before", "[4]"),
                       ("Allodynia was measured with von Frey filaments", "[3\u20135]")]:
        page.text(60, y, text, size=10)
        page.text(end_x(tmp_path, 60, text, 10) + 0.3, y + 3.5, mark, size=6.5)
        page.text(end_x(tmp_path, 60, text, 10) + 3.5 * len(mark) + 1, y, ".", size=10)
        y -= 12
    for k in range(4):
        page.text(60, y - 12 * k, f"{BODY}, line {k}.")
    page.text(60, 560, "REFERENCES", size=10, font="F2")
    for n in range(1, 6):
        page.text(60, 560 - 14 * n, f"{n} Author{n} A, Other B. A title of work number {n}. J Test, 2001,{n}:1-9", size=8)
    root = xml_of(tmp_path, [page])
    assert [(m.strip("[]"), names) for m, names in marks(root)] == [
        ("1", ["1 Au"]), ("2,3", ["2 Au", "3 Au"]), ("4", ["4 Au"]), ("3\u20135", ["3 Au", "4 Au", "5 Au"])]


# ---------------------------------------------------------------------------------------------------------
# IOP (ApJ): every destination the same distance above its entry, with no x, on a two-column bibliography
# ---------------------------------------------------------------------------------------------------------

def test_destinations_all_one_distance_from_their_entries_are_read_by_the_years_the_links_print(tmp_path):
    """ApJ's PDFs keep hyperref's destinations 65 pt above the entries the publisher's pipeline set, with no x,
    on a bibliography in two columns: the entries found at the destinations print the links' years for none of
    them (a paper with 84 links had none right). The distance most links' years agree on moves every
    destination, and of the two columns the entry that prints the link's year is named."""
    left = ["Adams", "Baker", "Clark", "Davis", "Evans", "Frank"]
    right = ["Green", "Hill", "Irwin", "Jones", "King", "Lewis"]
    refs = raw_pdf.Page()
    refs.text(60, 740, "REFERENCES", size=9, font="F2")
    base = {}
    for n, (a, b) in enumerate(zip(left, right)):
        y = 710 - 20 * n  # hanging indents set the entries apart
        refs.text(60, y, f"{a}, A. B., Other, C., Third, D., & Fourth, E. {2001 + n}, in Proc. of", size=7)
        refs.text(70, y - 9, f"a Meeting on Dust, ed. G. Editor (San Francisco, CA: ASP), {600 + n}", size=7)
        refs.text(320, y, f"{b}, D. E., Other, F., Third, G., & Fourth, H. {2011 + n}, in Proc. of", size=7)
        refs.text(330, y - 9, f"a Meeting on Gas, ed. I. Editor (San Francisco, CA: ASP), {500 + n}", size=7)
        base[a], base[b] = (y, 2001 + n), (y, 2011 + n)
    body = raw_pdf.Page()
    body.text(60, 740, "A Paper Title Set Large", size=18)
    body.text(60, 700, "1. INTRODUCTION", size=10, font="F2")
    cites = ["Adams", "Green", "Clark", "Hill", "Evans", "King", "Baker", "Lewis"]
    y = 680
    for name in cites:
        top, year = base[name]
        head = f"Dust emission was studied before ({name} et al. "
        body.text(60, y, f"{head}{year}).", size=9)
        x0, x1 = end_x(tmp_path, 60, head, 9), end_x(tmp_path, 60, f"{head}{year}", 9)
        body.link((x0 - 0.3, y - 2, x1 + 0.3, y + 7), page=1, x=None, y=top + 7 + 65)
        y -= 12
    for k in range(4):
        body.text(60, y - 12 * k, f"{BODY}, line {k}.", size=9)
    root = xml_of(tmp_path, [body, refs])
    got = [(m, names) for m, names in marks(root)]
    assert got == [(str(base[n][1]), [n[:4]]) for n in cites], got


# ---------------------------------------------------------------------------------------------------------
# bench.py's judge: surnames in capitals (British Journal of Pharmacology, JPET)
# ---------------------------------------------------------------------------------------------------------

def test_the_bench_judge_reads_a_surname_printed_in_capitals_as_the_cited_surname():
    """"EDVINSSON, L. (2001). Aspects on …" is named by "(Edvinsson, 2001)": the judge compares a surname the
    bibliography sets in capitals without its case (a paper with 95 right links was judged to have none), and
    still wants the year."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_03_under_test", REPO / "03_cermine_extract" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    entry = "EDVINSSON, L. (2001). Aspects on the pathophysiology of migraine. Cephalalgia 21, 1-8."
    assert bench.pair_is_right("Migraine is a vascular headache (Edvinsson, 2001; Goadsby, 2001).", entry)
    assert not bench.pair_is_right("Migraine is a vascular headache (Edvinsson, 1999).", entry)
    assert not bench.pair_is_right("Migraine is a vascular headache (Goadsby, 2001).", entry)


# ---------------------------------------------------------------------------------------------------------
# Pain Medicine (Wiley): a label whose space is only a gap in the text layer
# ---------------------------------------------------------------------------------------------------------

def test_a_label_set_apart_from_its_entry_by_a_gap_with_no_space_is_a_label(tmp_path):
    """"1 Polomano RP, …" has its space, "2Verstappen CC, …" only a gap (the figure is set in a wide box): read
    as "2Verstappen" the line opens no entry, so entry 2 joined entry 1 and "[1–3]" named an entry that was not
    there (none of the group linked)."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "Introduction", size=12, font="F2")
    page.text(60, 680, "Chemotherapy causes a painful neuropathy in many patients [1\u20133].", size=10)
    page.text(60, 668, "The taxanes and the vinca alkaloids are the worst of them [2,4].", size=10)
    for k in range(4):
        page.text(60, 656 - 12 * k, f"{BODY}, line {k}.")
    page.text(60, 590, "References", size=12, font="F2")
    names = ["Polomano RP, Bennett GJ", "Verstappen CC, Heimans JJ", "Dougherty PM, Cata JP", "Uhm JH, Yung WK",
             "Wong GY, Michalak JC", "Bosnjak S, Jelic S", "Caraceni A, Zecca E", "Renno SI, Rao RD",
             "Kontinen VK, Meert TF", "Flatters SJL, Bennett GJ"]
    for n, name in enumerate(names, start=1):
        y = 570 - 22 * n
        x = 60 if n >= 10 else 64  # the labels set flush right: "10" starts left of "9"
        if n == 2:
            page.text(x, y, str(n), size=8, font="F5")
        else:
            page.text(x, y, f"{n} ", size=8)
        page.text(72, y, f"{name}. A study of chemotherapy-evoked", size=8)
        page.text(72, y - 10, f"painful neuropathy. Pain Med 20{n:02d};{n}:8-14.", size=8)
    root = xml_of(tmp_path, [page])
    assert [(m, [re.sub(r"\D", "", r) for r in names]) for m, names in marks(root)] == [
        ("1\u20133", ["1", "2", "3"]), ("2,4", ["2", "4"])]


# ---------------------------------------------------------------------------------------------------------
# British Journal of Pharmacology: a generation after the surname
# ---------------------------------------------------------------------------------------------------------

def test_a_generation_after_a_vancouver_surname_is_no_part_of_the_name_cited(tmp_path):
    """"Lynch III JJ, Wade CL, … (2004)" is cited "(Lynch et al., 2004)": the surname is "Lynch", and "III" (or
    "Jr") is no part of it."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "Introduction", size=12, font="F2")
    page.text(60, 680, "Treatment of the neuropathy shows limited efficacy (Lynch et al., 2004).", size=9)
    page.text(60, 668, "The drug was given as described before (Smith et al., 2001; Jones, 1999).", size=9)
    for k in range(4):
        page.text(60, 656 - 12 * k, f"{BODY}, line {k}.", size=9)
    page.text(60, 590, "References", size=12, font="F2")
    for n, (first, second) in enumerate([
            ("Jones AB (1999). A first study of the neuropathy in rats.", "Pain 80, 1-9."),
            ("Lynch III JJ, Wade CL, Zhong CM (2004). Antinociceptive effects of", "drugs in the rat. Pain 110, 56-63."),
            ("Smith Jr JA, Other BC (2001). A second study of the neuropathy.", "Pain 90, 10-19.")]):
        page.text(60, 570 - 22 * n, first, size=8)
        page.text(70, 560 - 22 * n, second, size=8)
    root = xml_of(tmp_path, [page])
    assert marks(root) == [("Lynch et al., 2004", ["Lync"]), ("Smith et al., 2001; Jones, 1999", ["Smit", "Jone"])]


# ---------------------------------------------------------------------------------------------------------
# J Neurosci (HighWire): destinations level with the previous entry's "… CrossRef Medline"
# ---------------------------------------------------------------------------------------------------------

def test_a_destination_level_with_the_previous_entrys_link_words_names_the_entry_below(tmp_path):
    """J Neurosci sets each destination a line above its entry, level with the previous entry's last line, which
    ends in the link words "CrossRef Medline" and may open with a capital ("Eur J Neurosci 27:2783–2802.
    CrossRef Medline"): that line closes an entry and gives way to the one below that opens one in the
    Vancouver way with the year after the names ("Garthwaite J (2010)"). Read as an entry of its own, it took
    the citations of the entry below."""
    entries = [("Akers RF (2007) A first study of receptor trafficking in", "J Test 1:1-9. CrossRef Medline"),
               ("Garthwaite J (2008) Concepts of neural nitric oxide-mediated", "Eur J Neurosci 27:2783-2802. CrossRef Medline"),
               ("Garthwaite J (2010) New insight into the functioning of nitric", "Eur J Neurosci 31:1-9. CrossRef Medline"),
               ("Ku JE, Wang X (2011) Calcium-permeable receptors in the", "Nature 1:1-9. CrossRef Medline")]
    refs = raw_pdf.Page()
    refs.text(60, 740, "References", size=10, font="F2")
    base = []
    y = 720
    for first, second in entries:
        refs.text(60, y, first, size=8)
        refs.text(72, y - 9.5, second, size=8)
        base.append(y)
        y -= 19
    body = raw_pdf.Page()
    body.text(60, 740, "A Paper Title Set Large", size=18)
    body.text(60, 700, "Introduction", size=10, font="F2")
    cites = [("Akers, 2007", 0), ("Garthwaite, 2008", 1), ("Garthwaite, 2010", 2), ("Ku et al., 2011", 3)]
    y = 680
    for text, n in cites:
        head = "Nitric oxide acts on the receptors ("
        body.text(60, y, f"{head}{text}).", size=9)
        x0, x1 = end_x(tmp_path, 60, head, 9), end_x(tmp_path, 60, head + text, 9)
        dest = base[n] + 16.5  # a line above the entry: level with the top of the previous entry's last line
        body.link((x0 - 0.3, y - 2, x1 + 0.3, y + 7), page=1, x=48, y=dest)
        y -= 12
    for k in range(4):
        body.text(60, y - 12 * k, f"{BODY}, line {k}.", size=9)
    root = xml_of(tmp_path, [body, refs])
    assert [(m, names) for m, names in marks(root)] == [
        ("Akers, 2007", ["Aker"]), ("Garthwaite, 2008", ["Gart"]), ("Garthwaite, 2010", ["Gart"]),
        ("Ku et al., 2011", ["Ku J"])]
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert [r[:15] for r in raws] == ["Akers RF (2007)", "Garthwaite J (2", "Garthwaite J (2", "Ku JE, Wang X ("]


# ---------------------------------------------------------------------------------------------------------
# JPET 1994, a scan with an OCR text layer: each word a piece of its own, set wider apart than its size
# ---------------------------------------------------------------------------------------------------------

def _words(page: raw_pdf.Page, x: float, y: float, text: str, size: float) -> None:
    """A line set word by word, each word its own text object and the gap between words 1.8 of the words'
    reported size (an OCR layer that sizes each word by its box: wider apart than a word space)."""
    for word in text.split():
        page.text(x, y, word, size=size)
        x += 0.56 * size * len(word) + 1.8 * size


def _ocr_page(body: list[str], entries: list[str]) -> raw_pdf.Page:
    """A page of an OCR layer set word by word: a title, a heading, the body's lines twice over, and a
    bibliography whose entries' second lines are indented."""
    page = raw_pdf.Page()
    page.text(60, 750, "A Paper Title Set Large", size=18)
    page.text(60, 720, "Introduction", size=10, font="F2")
    y = 700
    for line in body * 2:
        _words(page, 60, y, line, 5)
        y -= 9
    _words(page, 60, y - 10, "References", 6)
    y -= 30
    for n, line in enumerate(entries):
        _words(page, 60 if n % 2 == 0 else 67, y, line, 5)
        y -= 8
    return page


def test_a_text_layer_set_word_by_word_wider_apart_than_its_size_reads_as_lines(tmp_path):
    """Each word of an OCR layer may be a piece of its own on the line's baseline, its reported size smaller
    than the gap to the next word: read as a line each, no paragraph held a citation whole and the
    bibliography split at every word (a paper with 39 entries had 3 markers linked). A page whose pieces
    mostly have a neighbour on their baseline, and are words, is read as lines of words."""
    body = ["Cocaine place preference was greater in these rats (Kosten et al., 1991) than",
            "in the other strain, as shown by place conditioning before (Carr and Phillips, 1989).",
            "The strains also differ in the levels of neurofilament proteins in the brain",
            "reward regions and in their response to morphine and to cocaine given",
            "repeatedly, which suggests a genetic basis of the propensity to abuse drugs."]
    entries = ["CARR, G. D. AND PHILLIPS, A. G.: Conditioned place preference as a measure of drug reward.",
               "In The Neuropharmacological Basis of Reward, pp. 264-319, Oxford University Press, 1989.",
               "KOSTEN, T. A., MISERENDINO, M. J. D. AND NESTLER, E. J.: Individual differences in",
               "vulnerability to drug addiction. Brain Res. 611: 7-17, 1991."]
    root = xml_of(tmp_path, [_ocr_page(body, entries)])
    assert marks(root) == [("Kosten et al., 1991", ["KOST"]), ("Carr and Phillips, 1989", ["CARR"])] * 2


def test_ocr_misreadings_of_et_al_in_a_word_by_word_layer_are_read_as_et_al(tmp_path):
    """A text layer set word by word is OCR's even where the PDF names no OCR program, and OCR reads "et al."
    as "et aL," or "et at.": read as printed, "(Kosten et aL, 1991)" names the entry as "et al." would (the
    same scan had 48 such markers, 18 linked)."""
    body = ["Cocaine place preference was greater in these rats (Kosten et aL, 1991) than",
            "in the other strain, as shown by place conditioning before (Carr et at., 1989).",
            "The strains also differ in the levels of neurofilament proteins in the brain",
            "reward regions and in their response to morphine and to cocaine given",
            "repeatedly, which suggests a genetic basis of the propensity to abuse drugs."]
    entries = ["CARR, G. D., FIBIGER, H. C. AND PHILLIPS, A. G.: Conditioned place preference as a measure",
               "of drug reward. In The Neuropharmacological Basis of Reward, pp. 264-319, Oxford, 1989.",
               "KOSTEN, T. A., MISERENDINO, M. J. D. AND NESTLER, E. J.: Individual differences in",
               "vulnerability to drug addiction. Brain Res. 611: 7-17, 1991."]
    root = xml_of(tmp_path, [_ocr_page(body, entries)])
    assert [names for _, names in marks(root)] == [["KOST"], ["CARR"]] * 2
