"""Stage 03's built-in backend on what real producers write (issue 12): each test builds a small PDF the way
Distiller, Word, ACM or arXiv lay it out, and checks one class of problem seen on real papers."""
from __future__ import annotations

import sys
from pathlib import Path

import pypdfium2 as pdfium
from lxml import etree

from helpers import REPO, load_stage

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402

builtin = load_stage("03").builtin_backend
BODY = "This paragraph is ordinary body text of a paper and it goes on for a while"


def xml_of(tmp_path: Path, pages: list[raw_pdf.Page]) -> etree._Element:
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", pages)
    xml, _ = builtin.convert(pdf)
    return etree.fromstring(xml)


def cited(root: etree._Element) -> list[tuple[str, str]]:
    """(marker text, raw text of the first reference it names) for every linked marker in the body."""
    refs = {r.get("id"): "".join(r.itertext()).strip() for r in root.iter("ref")}
    return [(x.text, refs[x.get("rid").split()[0]]) for x in root.iter("xref")]


def numbered_paper(body_lines: list[str], references: list[str], then=None, **kw) -> raw_pdf.Page:
    """One page: title, "1 Introduction", body lines, then ``then(page)`` (drawn before the bibliography in
    content order, as a footnote or a stamp would be), then "References" and its entries."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18, **kw)
    page.text(72, 700, "1 Introduction", size=12, font="F2", **kw)
    y = 680
    for line in body_lines:
        page.text(72, y, line, **kw)
        y -= 12
    if then is not None:
        then(page)
    page.text(72, y - 20, "References", size=12, font="F2", **kw)
    y -= 40
    for ref in references:
        page.text(72, y, ref, **kw)
        y -= 12
    return page


def test_surrogate_pairs_are_combined_and_control_codes_dropped():
    assert builtin.clean_code(0xD835, 0xDF07) == ("\U0001d707", 2)  # mathematical italic mu, as acmart writes it
    assert builtin.clean_code(0xD835, 0x41)[0] == ""  # a lone high surrogate
    assert builtin.clean_code(0x0F, 0)[0] == "" and builtin.clean_code(0x00, 0)[0] == ""  # unmapped TeX glyphs
    assert builtin.clean_code(0xE001, 0)[0] == ""  # private use: a glyph without a Unicode meaning
    assert builtin.clean_code(0x02, 0)[0] == "\x02"  # PDFium's own line-end hyphen mark, resolved later


def test_font_size_carried_by_the_text_matrix_finds_headings_and_keeps_words_whole(tmp_path):
    # Distiller: "/F1 1 Tf 10 0 0 10 x y Tm" — FPDFText_GetFontSize says 1.0 for every glyph
    page = numbered_paper([f"{BODY}; recognising it is the subject of prior work [1].", f"{BODY} again."],
                          ["[1] A. Author. Recognising glyphs in typeset pages. Journal of Tests, 2019."],
                          via_matrix=True)
    root = xml_of(tmp_path, [page])
    assert [t.text for t in root.iter("title") if t.getparent().tag == "sec"] == ["Introduction"]
    body = "".join(root.find("body").itertext())
    assert "recognising it is the subject" in body  # letters with descenders stay on their line
    assert cited(root) == [("1", "[1] A. Author. Recognising glyphs in typeset pages. Journal of Tests, 2019.")]


def test_numbered_capitals_heading_at_body_size_starts_a_section(tmp_path):
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 INTRODUCTION", size=10)  # acmart: body size, capitals, numbered
    page.text(72, 685, f"{BODY} as shown before [1].")
    page.text(72, 660, "2 RELATED WORK", size=10)
    page.text(72, 645, f"{BODY} and then some more.")
    page.text(72, 620, "REFERENCES", size=10)
    page.text(72, 605, "[1] B. Writer. A study of headings. Proceedings of Layout, 2018.")
    root = xml_of(tmp_path, [page])
    assert [t.text for t in root.iter("title") if t.getparent().tag == "sec"] == ["INTRODUCTION", "RELATED WORK"]
    assert len(cited(root)) == 1


def test_arxiv_side_stamp_is_not_text(tmp_path):
    def stamp(page):
        page.text(30, 300, "arXiv:2501.01234v1 [cs.CL] 3 Jan 2025", size=20, font="F3", rotated=True)

    root = xml_of(tmp_path, [numbered_paper([f"{BODY} as before [1]."],
                                            ["[1] C. Person. Stamps in margins. Journal, 2017."], then=stamp)])
    assert [t.text for t in root.iter("title") if t.getparent().tag == "sec"] == ["Introduction"]
    body = "".join(root.find("body").itertext())
    assert "2501" not in body and "arXiv" not in body


def test_two_column_bibliography_links_by_the_destination_column(tmp_path):
    """Author-year entries side by side at the same height: only the destination's x tells them apart."""
    body = raw_pdf.Page()
    body.text(72, 740, "A Paper Title Set Large", size=18)
    body.text(72, 700, "1 Introduction", size=12, font="F2")
    body.text(72, 680, "Devlin et al. (2019) trained sentence encoders on a lot of text.")
    body.link((72, 677, 160, 690), page=1, x=310, y=712)  # right column
    body.text(72, 665, "Kiros et al. (2015) came first with skip vectors trained on books.")
    body.link((72, 662, 155, 675), page=1, x=64, y=712)  # left column, the destination in the margin
    refs = raw_pdf.Page()
    refs.text(72, 740, "References", size=12, font="F2")
    left = ["Kiros, R., Zhu, Y. (2015).", "    Skip-thought vectors.", "    In Advances in NIPS.",
            "Lee, K., Park, J. (2016).", "    A left column entry.", "    In Journal of Tests."]
    right = ["Devlin, J., Chang, M. (2019).", "    BERT: pre-training of deep", "    bidirectional transformers.",
             "Zhang, L., Wu, Q. (2018).", "    A right column entry.", "    In Journal of Tests."]
    for k, (a, b) in enumerate(zip(left, right)):
        refs.text(72 + (8 if a.startswith(" ") else 0), 700 - 12 * k, a.strip(), size=9)
        # the right column sits 2 pt higher: a destination's height alone would pick the wrong column
        refs.text(320 + (8 if b.startswith(" ") else 0), 702 - 12 * k, b.strip(), size=9)
    for k in range(8):  # enough left-column text for the page to read as two columns
        refs.text(72, 600 - 12 * k, f"Author{k}, A. ({2000 + k}). Filler entry number {k}.", size=9)
        refs.text(320, 600 - 12 * k, f"Writer{k}, B. ({2010 + k}). Another filler entry {k}.", size=9)
    root = xml_of(tmp_path, [body, refs])
    # each marker reaches its own entry, split from its neighbour across the gutter and from the next entry
    assert {marker.split()[0]: ref for marker, ref in cited(root)} == {
        "Devlin": "Devlin, J., Chang, M. (2019). BERT: pre-training of deep bidirectional transformers.",
        "Kiros": "Kiros, R., Zhu, Y. (2015). Skip-thought vectors. In Advances in NIPS."}


def test_links_to_figures_are_not_citations(tmp_path):
    page = numbered_paper([f"{BODY} and it goes on.", "Figure 1 shows the results of the method.",
                           "[1] says so too, in other words."],
                          ["[1] D. Maker. Figures are not papers. Journal, 2016."])
    # "Figure 1" (line 2) points at the figure, high on the page; "[1]" (line 3) at the first entry
    page.link((72, 665, 108, 678), page=0, x=72, y=725)
    page.link((72, 653, 86, 666), page=0, x=72, y=616)
    root = xml_of(tmp_path, [page])
    assert [(x.text, x.get("rid")) for x in root.iter("xref")] == [("1", "ref1")]


def test_vector_in_brackets_is_not_a_citation(tmp_path):
    page = numbered_paper([f"{BODY} with the mask [1, 1, 1, 0] and the method of [2].", f"{BODY} [1, 2] too."],
                          ["[1] E. First. One. Journal, 2015.", "[2] F. Second. Two. Journal, 2014."])
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in cited(root)] == ["2", "1, 2"]


def test_line_end_hyphen_kept_for_compounds_and_dropped_inside_words(tmp_path):
    vocabulary = builtin.Vocabulary("a paper about chips")
    assert vocabulary.keep_hyphen("board", "level")  # "boardlevel" is not a word
    assert not vocabulary.keep_hyphen("recog", "nition")
    assert builtin.Vocabulary("the sub-network and the subnetwork").keep_hyphen("sub", "network") is False
    page = numbered_paper(["We measured the board-", "level power and the recog-",
                           "nition rate as reported in [1]."], ["[1] G. Third. Power. Journal, 2013."])
    body = " ".join("".join(root_p.itertext()) for root_p in xml_of(tmp_path, [page]).iter("p"))
    assert "board-level power" in body and "recognition rate" in body


def test_accent_drawn_apart_is_put_on_its_letter(tmp_path):
    # TeX draws "ö" as "o" plus a separate diaeresis glyph; PDFium returns them as two characters
    page = numbered_paper([f"{BODY} after Scholkopf and Smola (2002) wrote about kernels."],
                          ["Scholkopf, B. and Smola, A. (2002). Learning with kernels. MIT Press."])
    page.text(300, 600, "Scholkopf", size=10)
    page.text(300 + 10 * (667 + 500 + 556) / 1000 + 10 * (556 - 333) / 2000, 602, "\xa8", size=10)
    lines, _ = builtin._page_lines(pdfium.PdfDocument(str(raw_pdf.write_pdf(tmp_path / "a.pdf", [page]))), 0)
    assert [ln.text for ln in lines if ln.x0 >= 299] == ["Schölkopf"]


def test_footnote_in_small_type_stays_out_of_the_paragraph(tmp_path):
    def footnote(page):
        page.text(72, 90, "1 This footnote is set small at the foot of the page and is not body text", size=7)

    page = numbered_paper([f"{BODY} as shown before [1].", f"{BODY} and it ends here."],
                          ["[1] H. Fourth. Notes at the foot. Journal, 2012."], then=footnote)
    # its mark, raised at the end of the body's second line (drawn right after it, as TeX writes it)
    measure = raw_pdf.write_pdf(tmp_path / "measure.pdf", [raw_pdf.Page([page.texts[3]])])
    doc = pdfium.PdfDocument(str(measure))
    right = doc[0].get_textpage().get_charbox(len(page.texts[3].text) - 1)[2]
    doc.close()
    page.texts.insert(4, raw_pdf.Text(right + 0.5, 671, "1", size=6))
    root = xml_of(tmp_path, [page])
    pars = ["".join(p.itertext()) for p in root.find("body").iter("p")]
    # out of the paragraph it interrupts: a paragraph of its own after it, without its mark (footnotes cite:
    # tests/test_03_builtin_published_classes.py)
    assert not any("footnote" in p and "as shown before" in p for p in pars)
    assert "as shown before" in pars[0] and pars[-1].startswith("This footnote is set small")


def test_bibliography_label_set_apart_by_a_tab_starts_its_own_entry(tmp_path):
    """Word sets "5.<tab>Panwar, M." as two runs 3-6 em apart: the label still starts its entry."""
    page = numbered_paper([f"{BODY} as reported before.[2]", f"{BODY} and also here [3]."], [])
    page.text(72, 560, "1. Alpha, A. 2005. The first work. J. Tests 1, 1-2.")
    page.text(72, 548, "2.")
    page.text(110, 548, "Beta, B. 2006. The second work, set after a tab. J. Tests 2, 3-4.")
    page.text(72, 536, "3. Gamma, C. 2007. The third work. J. Tests 3, 5-6.")
    root = xml_of(tmp_path, [page])
    assert len(list(root.iter("ref"))) == 3
    assert cited(root) == [("2", "2. Beta, B. 2006. The second work, set after a tab. J. Tests 2, 3-4."),
                           ("3", "3. Gamma, C. 2007. The third work. J. Tests 3, 5-6.")]


def test_running_headers_alternating_on_odd_and_even_pages_stay_out_of_the_text(tmp_path):
    """Two-sided journals (JSS) print "Journal of Tests | 3" and "4 | Running Title" on alternate pages,
    lower than the 8% margin band: neither is body text nor a reference entry."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    pages = []
    for n, word in enumerate(words):
        page = raw_pdf.Page()
        if n == 0:
            page.text(72, 740, "A Paper Title Set Large", size=18)
            page.text(72, 700, "1 Introduction", size=12, font="F2")
        elif n % 2:
            page.text(72, 715, f"{n + 1}      Modeling Spectra: A Running Title", size=10)
        else:
            page.text(72, 715, f"Journal of Tests      {n + 1}", size=10)
        for k in range(6):
            page.text(72, 680 - 12 * k, f"Paragraph {word} line {words[k]} of ordinary body text that goes on")
        if n == len(words) - 1:
            page.text(72, 560, "It was shown before [1].")
            page.text(72, 530, "References", size=12, font="F2")
            page.text(72, 515, "[1] I. Fifth. Headers in journals. Journal of Tests, 2011.")
        pages.append(page)
    root = xml_of(tmp_path, pages)
    text = " ".join(root.itertext())
    assert "Running Title" not in text and "Journal of Tests 3" not in text and "Journal of Tests 5" not in text
    assert [" ".join("".join(x.itertext()).split()) for x in root.iter("mixed-citation")] == \
        ["[1] I. Fifth. Headers in journals. Journal of Tests, 2011."]
    assert cited(root) == [("1", "[1] I. Fifth. Headers in journals. Journal of Tests, 2011.")]


def test_appendix_after_the_bibliography_is_body_and_its_citations_are_linked(tmp_path):
    """NeurIPS, ICML and arXiv papers put appendices after the references."""
    refs = ["[1] J. Sixth. Main results. Journal, 2010.", "[2] K. Seventh. A lemma used in the proof. Journal, 2009.",
            "[3] L. Eighth. Other work. Journal, 2008."]
    page = numbered_paper([f"{BODY} as shown in [1]."], refs)
    page.text(72, 560, "A Proofs of the Theorems", size=12, font="F2")
    page.text(72, 540, f"{BODY}; the bound follows from the lemma of [2].")
    root = xml_of(tmp_path, [page])
    assert [t.text for t in root.iter("title") if t.getparent().tag == "sec"] == \
        ["Introduction", "A Proofs of the Theorems"]
    assert [m for m, _ in cited(root)] == ["1", "2"]
    assert cited(root)[1][1] == refs[1]
    assert len(list(root.iter("ref"))) == 3


def test_reference_line_starting_with_a_page_number_or_a_marker_does_not_start_an_entry(tmp_path):
    """"… pages 291–" / "300. ACM, New York, 1998.": the label run 1, 2, 3 has no 300; and body text read
    into the bibliography (revtex's other column) that begins "[2], [3]. We …" is no entry either."""
    page = numbered_paper([f"{BODY} as in [2] and [3]."], [
        "[1] M. Ninth. Optimizing code by inlining. In Proceedings of the Conference, pages 291-",
        "300. ACM, New York, 1998.",
        "[2], [3]. We have shown that the tracing pays off, as the other column says.",
        "[2] N. Tenth. Trace trees. Journal of Tests, 2001.",
        "[3] O. Eleventh. Tracing JITs. Journal of Tests, 2002."])
    root = xml_of(tmp_path, [page])
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert len(raws) == 3 and "pages 291-300. ACM, New York, 1998." in raws[0]
    assert raws[1:] == ["[2] N. Tenth. Trace trees. Journal of Tests, 2001.",
                        "[3] O. Eleventh. Tracing JITs. Journal of Tests, 2002."]
    assert [r for _, r in cited(root)] == raws[1:]


def test_author_year_without_links_particles_suffixes_year_lists_and_brackets(tmp_path):
    page = numbered_paper([
        "Embeddings were drawn as by van der Maaten and Hinton (2008) and are",
        "edited as before (Smith 2003a, b; De Cao et al., 2021). Golub and Pereyra (1972, 1973)",
        "solved it, and Smith et al. [2003b] say so."], [
        "De Cao, N., Aziz, W. and Titov, I. (2021). Editing factual knowledge. In EMNLP.",
        "Golub, G. and Pereyra, V. (1972). The differentiation of pseudo-inverses. SIAM J. Numer. Anal.",
        "Golub, G. and Pereyra, V. (1973). Pseudo-inverses, part two. SIAM J. Numer. Anal.",
        "Smith, J. (2003a). First work on topics. Journal of Tests.",
        "Smith, J. (2003b). Second work on topics. Journal of Tests.",
        "van der Maaten, L. and Hinton, G. (2008). Visualizing data using t-SNE. JMLR."])
    root = xml_of(tmp_path, [page])
    refs = {r.get("id"): "".join(r.itertext()).strip().split(".")[0] for r in root.iter("ref")}
    found = [(x.text, [refs[k] for k in x.get("rid").split()]) for x in root.iter("xref")]
    assert found == [
        ("van der Maaten and Hinton (2008)", ["van der Maaten, L"]),
        ("Smith 2003a, b; De Cao et al., 2021", ["Smith, J", "Smith, J", "De Cao, N"]),
        ("Golub and Pereyra (1972, 1973)", ["Golub, G", "Golub, G"]),
        ("Smith et al. [2003b]", ["Smith, J"])]
    rid = {x.text: x.get("rid") for x in root.iter("xref")}
    assert rid["Smith et al. [2003b]"] == "ref5" and rid["Golub and Pereyra (1972, 1973)"] == "ref2 ref3"


def test_running_head_naming_the_references_section_is_not_where_the_bibliography_starts(tmp_path):
    """CMS, JHEP and Springer print the section's name in the running head ("References 11") over each
    page of the bibliography, and a collaboration's author list may follow it: the bibliography starts at
    the heading, not at the last page whose head says "References"."""
    pages = []
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY}, as predicted [1] and measured [2].")
    page.text(72, 668, f"{BODY}, and combined [3].")
    pages.append(page)
    for n in range(4):
        page = raw_pdf.Page()
        page.text(72, 760, "Results", font="F2")
        for k in range(5):
            page.text(72, 700 - 12 * k, f"{BODY} on page {n + 2}, line {k + 1}.")
        pages.append(page)
    page = raw_pdf.Page()
    page.text(72, 760, "References", font="F2")
    page.text(72, 730, "References", size=14, font="F2")
    page.text(72, 710, "[1] F. Englert. Broken symmetry. Phys. Rev. Lett. 13 (1964) 321.")
    page.text(72, 698, "[2] P. Higgs. Broken symmetries and masses. Phys. Rev. Lett. 13 (1964) 508.")
    pages.append(page)
    page = raw_pdf.Page()
    page.text(72, 760, "References", font="F2")
    page.text(72, 710, "[3] G. Guralnik. Global conservation laws. Phys. Rev. Lett. 13 (1964) 585.")
    pages.append(page)
    page = raw_pdf.Page()
    page.text(72, 760, "References", font="F2")
    page.text(72, 730, "A The Collaboration", size=14, font="F2")
    page.text(72, 710, "G. Aad, B. Abbott, J. Abdallah, O. Abdinov, R. Aben, M. Abolins, O. AbouZeid")
    pages.append(page)
    root = xml_of(tmp_path, pages)
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert len(raws) == 3 and raws[0].startswith("[1] F. Englert") and raws[2].startswith("[3] G. Guralnik")
    assert [r[:3] for _, r in cited(root)] == ["[1]", "[2]", "[3]"]


def test_text_that_begins_without_a_heading_after_the_abstract_is_body(tmp_path):
    """CMS/ATLAS papers, revtex letters and Nature-style papers start the text with no "Introduction"
    heading: the prose after the abstract (on the next page here) is body text, and its markers are linked;
    the author and affiliation lines of the title block stay out."""
    first = raw_pdf.Page()
    first.text(72, 740, "A Paper Title Set Large", size=18)
    first.text(72, 712, "The First and Second Collaborations, Some Lab, Some City [2]", size=12)
    first.text(72, 690, "Abstract", size=12, font="F2")
    for k in range(3):
        first.text(100, 672 - 12 * k, "A measurement is presented; the results are consistent among themselves.")
    second = raw_pdf.Page()
    prose = [f"{BODY} about the mechanism [1], here line one.",
             f"{BODY}. The discovery was shown [2], line two.",
             f"{BODY} and the mass is not predicted, line three.",
             f"{BODY}; all properties are predicted, line four.",
             f"{BODY} as the measurements have established [3]."]
    for k, line in enumerate(prose):
        second.text(72, 740 - 12 * k, line)
    second.text(72, 660, "2 Results", size=12, font="F2")
    second.text(72, 640, f"{BODY}, as measured before [3].")
    second.text(72, 610, "References", size=12, font="F2")
    refs = ["[1] A. First. The mechanism. Phys. Rev. Lett. 13 (1964) 321.",
            "[2] B. Second. The discovery. Phys. Lett. B 716 (2012) 1.",
            "[3] C. Third. The measurements. Eur. Phys. J. C 75 (2015) 212."]
    for k, ref in enumerate(refs):
        second.text(72, 590 - 12 * k, ref)
    root = xml_of(tmp_path, [first, second])
    assert [r for _, r in cited(root)] == [refs[0], refs[1], refs[2], refs[2]]
    text = " ".join(root.find("body").itertext())
    assert "Some Lab" not in text and "A measurement is presented" not in text


def test_link_on_a_figure_number_whose_caption_follows_the_bibliography_is_no_citation(tmp_path):
    """AASTeX and other preprints print the figures and their captions after the references: a link on
    "2" in "shown in Figure 2" (or on all of "Eq. 3") then lands among the entries, and must not become a
    citation."""
    def paper() -> raw_pdf.Page:
        return numbered_paper(["[1] is where it was shown first, in other words.",
                               "The objects are shown in Figure 2 of this paper.", "Eq. 3 gives the rate of motion."],
                              ["[1] D. Maker. Surveys of small bodies. Journal, 2016.",
                               "Figure 2. Postage stamps of several objects (23.0) observed by us, with a caption",
                               "that runs on to a second line, as captions do."])

    # where "2" of "Figure 2" is drawn: read from the same page written once without links
    probe = raw_pdf.write_pdf(tmp_path / "probe.pdf", [paper()])
    textpage = pdfium.PdfDocument(probe)[0].get_textpage()
    at = textpage.get_text_range().index("Figure 2") + len("Figure ")
    left, bottom, right, top = textpage.get_charbox(at)
    page = paper()
    page.link((72, 677, 86, 690), page=0, x=72, y=628)  # "[1]" -> the first entry
    page.link((left - 0.5, bottom - 1, right + 0.5, top + 1), page=0, x=72, y=616)  # "2" -> the caption
    page.link((72, 653, 95, 666), page=0, x=72, y=616)  # all of "Eq. 3" -> the same place
    root = xml_of(tmp_path, [page])
    assert [(x.text, x.get("rid")) for x in root.iter("xref")] == [("1", "ref1")]


def _charbox(tmp_path: Path, page: raw_pdf.Page, needle: str, offset: int = 0) -> tuple[float, float, float, float]:
    """The box of one character of ``needle`` as PDFium reads it back from ``page`` (a link's rectangle)."""
    textpage = pdfium.PdfDocument(raw_pdf.write_pdf(tmp_path / "probe.pdf", [page]))[0].get_textpage()
    left, bottom, right, top = textpage.get_charbox(textpage.get_text_range().index(needle) + offset)
    return left - 0.5, bottom - 1, right + 0.5, top + 1


def test_adjacent_bracketed_links_follow_their_printed_numbers_when_anchors_sit_a_line_high(tmp_path):
    """dvipdfm theses anchor each entry one entry too high, and "[7][8]" is two links side by side: the
    printed numbers name the entries, not the destinations."""
    refs = [f"[{n}] A. Author{n}. Work number {n}. Journal, 20{n:02d}." for n in range(1, 5)]

    def paper() -> raw_pdf.Page:
        return numbered_paper([f"{BODY} as H1[2][3] found.", "It was shown in [4] before."], refs)

    first, second = _charbox(tmp_path, paper(), "[2][3]", 1), _charbox(tmp_path, paper(), "[2][3]", 4)
    single = _charbox(tmp_path, paper(), "[4]", 1)
    page = paper()
    # entries start at y = 640, 628, 616, 604 (tops about 9 higher): each destination is one entry high
    page.link(first, page=0, x=72, y=661)
    page.link(second, page=0, x=72, y=649)
    page.link(single, page=0, x=72, y=637)
    root = xml_of(tmp_path, [page])
    assert [(x.text, x.get("rid")) for x in root.iter("xref")] == [("2][3", "ref2 ref3"), ("4", "ref4")]


def test_table_of_contents_link_to_the_references_is_no_citation(tmp_path):
    """A thesis' table of contents links "Referências 2" to the bibliography: no sentence cites by it."""
    toc = raw_pdf.Page()
    toc.text(72, 740, "A Thesis Title Set Large", size=18)
    toc.text(72, 700, "1 Introduction", size=12, font="F2")
    toc.text(72, 680, f"{BODY}, as in [1].")
    toc.text(72, 668, "Referências 2")
    marker = _charbox(tmp_path, toc, "[1]", 1)
    toc.link((72, 665, 140, 678), page=1, x=72, y=700)
    toc.link(marker, page=1, x=72, y=690)
    refs = raw_pdf.Page()
    refs.text(72, 700, "Referências", size=12, font="F2")
    refs.text(72, 680, "[1] A. Autor. Um trabalho. Revista, 2001.")
    root = xml_of(tmp_path, [toc, refs])
    assert all("Refer" not in (x.text or "") for x in root.iter("xref"))
    assert [x.text for x in root.iter("xref")] == ["1"]


def test_numbers_in_parentheses_cite_only_where_the_whole_paper_cites_that_way(tmp_path):
    """Medical journals (Vancouver) cite "(8–10)": read as citations when the numbers in parentheses name
    most of a numbered bibliography, first named in its order; "Eq. (2)" and "x = (3)" stay text. A paper
    whose "(1)", "(2)" are items of a list keeps them as text."""
    refs = [f"{n}. Author{n} A. Surveillance work number {n}. Emerg Infect Dis 20{n:02d};3:1-9." for n in range(1, 7)]
    body = ["Surveillance systems were reviewed before (1) and since (2,3), as the reader knows.",
            "Bioterrorism-related syndromes were defined (4-6), and Eq. (2) gives the rate.",
            "The count is x = (3) for each system in the sample, and (5) agrees."]
    root = xml_of(tmp_path, [numbered_paper(body, refs)])
    assert [x.text for x in root.iter("xref")] == ["1", "2,3", "4-6", "5"]
    listing = ["The method has two steps: (1) collect the data, and (2) count the cases in it.",
               "Both steps are described in Author1 and Author2, as the reader knows."]
    root = xml_of(tmp_path, [numbered_paper(listing, refs)])
    assert [x.text for x in root.iter("xref")] == []


def test_bibliography_labelled_by_author_and_year_in_brackets_is_split_and_cited(tmp_path):
    """IJCAI and AAAI print "[Lin and Pantel, 2001] D. Lin and P. Pantel. …" and cite "[Lin and Pantel,
    2001; Etzioni et al., 2005]": each bracketed author-year label starts an entry."""
    refs = ["[Etzioni et al., 2005] O. Etzioni, M. Cafarella, and D. Downey. Unsupervised named-entity",
            "extraction from the web. Artificial Intelligence, 165(1):91-134, 2005.",
            "[Kambhatla, 2004] N. Kambhatla. Combining lexical, syntactic and semantic features. In",
            "Proceedings of ACL, 2004.",
            "[Lin and Pantel, 2001] D. Lin and P. Pantel. Discovery of inference rules from text. In",
            "Proceedings of KDD, 2001."]
    body = [f"{BODY}, with maximum-entropy models [Kambhatla,", "2004] and co-occurrence statistics [Lin and Pantel,",
            "2001; Etzioni et al., 2005] over small corpora."]
    root = xml_of(tmp_path, [numbered_paper(body, refs)])
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert [r.split("]")[0] for r in raws] == ["[Etzioni et al., 2005", "[Kambhatla, 2004", "[Lin and Pantel, 2001"]
    assert sorted(r.split("]")[0] for _, r in cited(root)) == ["[Kambhatla, 2004", "[Lin and Pantel, 2001"]
    assert [sorted(x.get("rid").split()) for x in root.iter("xref")] == [["ref2"], ["ref1", "ref3"]]


def test_raised_numbers_are_exponents_in_a_paper_that_cites_in_brackets(tmp_path):
    """dynoNet and other numeric-bracket papers print "(y − ŷ)²" and "q²": with citations in brackets,
    a raised number is an exponent, never a citation of entry 2."""
    refs = ["[1] A. First. Networks. Journal, 2001.", "[2] B. Second. Convolutions. Journal, 2002.",
            "[3] C. Third. Systems. Journal, 2003."]

    def paper(then=None) -> raw_pdf.Page:
        return numbered_paper([f"{BODY} as in [1] and [2].", f"{BODY}, see [3].",
                               "The fit is measured by the squared error (ymeas - y)"], refs, then=then)

    left, bottom, right, top = _charbox(tmp_path, paper(), "- y)", 3)
    # drawn right after its line, as TeX draws an exponent
    root = xml_of(tmp_path, [paper(then=lambda page: page.text(right + 0.5, 656 + 4, "2", size=6))])
    assert [x.text for x in root.iter("xref")] == ["1", "2", "3"]


def test_bibliography_without_heading_whose_labels_are_raised_numbers_on_their_own_lines(tmp_path):
    """AIP journals (J. Appl. Phys.) print no "References" heading and set each label as a small raised
    number on a line of its own, above-left of its entry: each starts an entry, labelled by that number,
    and the body's superscript markers link to it."""
    def paper(then=None) -> raw_pdf.Page:
        page = raw_pdf.Page()
        page.text(72, 740, "A Paper Title Set Large", size=18)
        page.text(72, 700, "I. INTRODUCTION", size=10, font="F2")
        page.text(72, 680, f"{BODY}, and the torque was computed before.")
        if then:
            then(page)
        page.text(72, 668, f"{BODY}, and it goes on to the end of the text.")
        y = 600
        for n, entry in enumerate(["A. First, Phys. Rev. B 71, 045425 (2005).",
                                   "B. Second and C. Third, Opt. Lett. 11, 288 (1986).",
                                   "D. Fourth, Phys. Rev. Lett. 86, 4275 (2001)."], start=1):
            page.text(66, y + 3, str(n), size=5.5)
            page.text(72, y, entry, size=8)
            y -= 12
        return page

    left, bottom, right, top = _charbox(tmp_path, paper(), "computed before.", 15)
    root = xml_of(tmp_path, [paper(then=lambda page: page.text(right + 0.3, 680 + 4, "2", size=6))])
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert raws == ["1. A. First, Phys. Rev. B 71, 045425 (2005).",
                    "2. B. Second and C. Third, Opt. Lett. 11, 288 (1986).",
                    "3. D. Fourth, Phys. Rev. Lett. 86, 4275 (2001)."]
    assert cited(root) == [("2", raws[1])]


def test_unheaded_bibliography_is_the_longest_numbered_run_not_a_supplements_affiliations(tmp_path):
    """revtex with a supplement after the bibliography: the bibliography has no heading ("[1] …", "[2] …"),
    and the supplement's title page numbers its affiliations 1, 2 as raised labels on lines of their own.
    The bibliography is the run whose labels go on longest in order, and the supplement after it is body."""
    body = raw_pdf.Page()
    body.text(72, 740, "A Paper Title Set Large", size=18)
    body.text(72, 700, "I. INTRODUCTION", size=10, font="F2")
    body.text(72, 680, f"{BODY}, as measured before [2].")
    body.text(72, 668, f"{BODY}, and as the theory says [3].")
    for k in range(8):
        body.text(72, 656 - 12 * k, f"{BODY}, line {k} of the introduction.")
    y = 540
    for n, entry in enumerate(["A. First, Phys. Rev. B 71, 045425 (2005).",
                               "B. Second and C. Third, Opt. Lett. 11, 288 (1986).",
                               "D. Fourth, Phys. Rev. Lett. 86, 4275 (2001).",
                               "E. Fifth, J. Chem. Phys. 12, 100 (2010)."], start=1):
        body.text(72, y, f"[{n}] {entry}", size=9)
        y -= 12
    supplement = raw_pdf.Page()
    supplement.text(72, 740, "Supplemental Material for the Paper", size=14)
    for n, place in enumerate(["Department of Chemistry, University of Somewhere, Some Town",
                               "Institute of Physics, Another University, Other City"], start=1):
        supplement.text(66, 712 - 14 * n + 3, str(n), size=5.5)
        supplement.text(72, 712 - 14 * n, place, size=9)
    for k in range(6):
        supplement.text(72, 640 - 12 * k, f"{BODY}, supplementary line {k}.")
    root = xml_of(tmp_path, [body, supplement])
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert [r[:4] for r in raws] == ["[1] ", "[2] ", "[3] ", "[4] "]
    assert not any("University" in r for r in raws)
    assert cited(root) == [("2", raws[1]), ("3", raws[2])]


def test_printed_labels_running_in_order_split_entries_whatever_the_link_destinations_say(tmp_path):
    """revtex and natbib anchor an entry a line above or below its printed label, and an entry broken over
    several lines may hold more than one anchor: where the labels [1], [2], … run in order, each labelled
    line starts an entry and a continuation line never does."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY} [1] and more [2].")
    page.text(72, 668, f"{BODY} and [3].")
    page.text(72, 620, "References", size=12, font="F2")
    entries = [["[1] J. Preskill, Quantum 2, 79 (2018)."],
               ["[2] K. Bharti, A. Cervera-Lierta, T. H. Kyaw, T. Haug,", "S. Alperin-Lea, A. Anand, M. Degroote,",
                "and A. Aspuru-Guzik, Rev. Mod. Phys. 94, 015004 (2022)."],
               ["[3] S. Endo, Z. Cai, and X. Yuan, J. Phys. Soc. Jpn. 90, 032001 (2021)."]]
    y = 600
    for entry in entries:
        for k, line in enumerate(entry):
            page.text(72 + (10 if k else 0), y, line, size=9)
            # an anchor on every line of the entry (each continuation line gets one, as a page of
            # destinations too many would give)
            y -= 12
    for n, target in enumerate([600, 588, 576, 564], start=1):
        page.link((60 + 40 * n, 100, 90 + 40 * n, 110), page=0, x=72, y=target + 9)
    root = xml_of(tmp_path, [page])
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert len(raws) == 3 and raws[1].startswith("[2] K. Bharti") and raws[1].endswith("015004 (2022).")


def test_destination_in_the_margin_left_of_the_right_column_names_the_right_column(tmp_path):
    """elsarticle and natbib set a destination's x 20 pt left of its column: for the right column that x is
    still inside the left column's width, so the column whose left edge lies just right of x is the one."""
    body = raw_pdf.Page()
    body.text(72, 740, "A Paper Title Set Large", size=18)
    body.text(72, 700, "1 Introduction", size=12, font="F2")
    body.text(72, 680, "Devlin et al. (2019) trained sentence encoders on a lot of text.")
    body.link((72, 677, 160, 690), page=1, x=286, y=712)  # 20 pt left of the right column
    body.text(72, 665, "Kiros et al. (2015) came first with skip vectors trained on books.")
    body.link((72, 662, 155, 675), page=1, x=52, y=712)  # 20 pt left of the left column
    refs = raw_pdf.Page()
    refs.text(72, 740, "References", size=12, font="F2")
    left = ["Kiros, R., Zhu, Y., Salakhutdinov, R., Zemel, R. (2015).", "    Skip-thought vectors for sentences.",
            "Lee, K., Park, J., Kim, S., Choi, H., Jung, Y., Han, M. (2016).", "    A left column entry of tests."]
    right = ["Devlin, J., Chang, M. (2019).", "    BERT: pre-training of deep", "Zhang, L., Wu, Q. (2018).",
             "    A right column entry."]
    for k, (a, b) in enumerate(zip(left, right)):
        refs.text(72 + (8 if a.startswith(" ") else 0), 700 - 12 * k, a.strip(), size=9)
        refs.text(306 + (8 if b.startswith(" ") else 0), 698 - 12 * k, b.strip(), size=9)  # 2 pt lower
    for k in range(8):  # enough text for the page to read as two columns
        refs.text(72, 600 - 12 * k, f"Author{k}, A., Someone, B. ({2000 + k}). A filler entry.", size=9)
        refs.text(306, 600 - 12 * k, f"Writer{k}, B. ({2010 + k}). Another filler entry {k}.", size=9)
    root = xml_of(tmp_path, [body, refs])
    assert {marker.split()[0]: ref.split(",")[0] for marker, ref in cited(root)} == {"Devlin": "Devlin",
                                                                                    "Kiros": "Kiros"}


def test_double_spaced_manuscript_with_margin_line_numbers_reads_as_whole_paragraphs(tmp_path):
    """A submission as ecology and biology journals ask for it: double-spaced, a line number in the margin
    beside every line (lineno). The numbers are no text, and lines two sizes apart are one paragraph."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=14, font="F2")
    lines = ["Movement is hard to observe directly, and studies of abundance often",
             "ignore it altogether although it matters for many populations of animals",
             "(Jouventin and Weimerskirch, 1990; Andrew and Fox, 2020). Here we",
             "present a joint model that uses both camera traps and telemetry data",
             "to estimate density and movement together for the same individuals",
             "and we show that it works well on simulated and on real data sets."]
    y = 670
    for n, line in enumerate(lines * 2, start=30):
        page.text(40, y, str(n), size=9)
        page.text(72, y, line, size=12)
        y -= 24
    page.text(72, y - 10, "References", size=14, font="F2")
    page.text(72, y - 40, "Andrew, M. E. and E. Fox. 2020. Modelling species distributions. Ecography 43:1-10.",
              size=12)
    page.text(72, y - 64, "Jouventin, P. and H. Weimerskirch. 1990. Satellite tracking of albatrosses. Nature "
              "343:746-748.", size=12)
    root = xml_of(tmp_path, [page])
    paragraphs = ["".join(p.itertext()) for p in root.iter("p")]
    assert len(paragraphs) == 1
    assert not any(str(n) in paragraphs[0] for n in range(30, 42))
    assert "populations of animals (Jouventin" in paragraphs[0]
    refs = {r.get("id"): "".join(r.itertext()).strip().split(",")[0] for r in root.iter("ref")}
    assert [sorted(refs[rid] for rid in x.get("rid").split()) for x in root.iter("xref")] == \
        [["Andrew", "Jouventin"]] * 2


def test_sections_set_between_the_first_entries_of_an_unheaded_bibliography_do_not_end_it(tmp_path):
    """revtex (naturemag) can set the first entries of its unheaded bibliography before the paper's last
    sections in column order ("[1] …", then ACKNOWLEDGEMENTS, then "[2] …"): the numbered list goes on, so
    that heading does not end the bibliography, and every entry is read."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "I. INTRODUCTION", size=10, font="F2")
    y = 680
    for k in range(8):
        page.text(72, y, f"{BODY}, line {k}, as shown before [{k % 3 + 1}].")
        y -= 12
    page.text(72, y - 12, "[1] A. First, B. Other, C. Third and D. Fourth, Interfacial water at", size=9)
    page.text(72, y - 22, "hydrophobic and hydrophilic surfaces: slip, viscosity, and diffusion,", size=9)
    page.text(72, y - 32, "Langmuir 25, 10768 (2009).", size=9)
    page.text(72, y - 48, "ACKNOWLEDGEMENTS", size=10, font="F2")
    page.text(72, y - 62, "We thank the computing centre for the time on its cluster, and the funders.")
    page.text(72, y - 74, "[2] B. Second, Phys. Rev. Lett. 86, 4275 (2001).", size=9)
    page.text(72, y - 86, "[3] C. Third, J. Chem. Phys. 12, 100 (2010).", size=9)
    root = xml_of(tmp_path, [page])
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert [r[:3] for r in raws] == ["[1]", "[2]", "[3]"]
    assert sorted({ref[:3] for _, ref in cited(root)}) == ["[1]", "[2]", "[3]"]


def test_ten_bracketed_markers_make_raised_numbers_exponents_however_many_they_are(tmp_path):
    """A mathematical paper that cites in brackets may raise more exponents ("κ⁴", "n²") than it prints
    bracketed markers: from ten bracketed markers on, no raised number is read as a citation."""
    probe = raw_pdf.Page()
    probe.text(72, 680, "The fit is measured by the squared error (y - x)")
    left, bottom, right, top = _charbox(tmp_path, probe, "- x)", 3)
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    y = 680
    for n in range(1, 11):
        page.text(72, y, f"{BODY} as in [{n}].")
        y -= 12
    for _ in range(12):  # each exponent drawn right after its line, as TeX draws it
        page.text(72, y, "The fit is measured by the squared error (y - x)")
        page.text(right + 0.5, y + 4, "2", size=6)
        y -= 12
    page.text(72, y - 20, "References", size=12, font="F2")
    for n in range(1, 11):
        page.text(72, y - 40 - 12 * n, f"[{n}] A. Author{n}. Work number {n}. Journal, 20{n:02d}.")
    root = xml_of(tmp_path, [page])
    assert [x.text for x in root.iter("xref")] == [str(n) for n in range(1, 11)]


def test_links_to_named_footnotes_tables_and_equations_are_no_citations(tmp_path):
    """hyperref names every destination: a footnote mark links to "Hfootnote.2", "Table 1" to "table.1", a
    citation to "cite.key". Where the footnote or the table sits on a page of the bibliography (the last
    pages of AASTeX and elsarticle papers), its destination lands among the entries; the name says it is no
    citation, and it neither becomes a marker nor starts an entry."""
    entries = ["[1] A. First. The first model of the thing. Journal of Tests, 2015.",
               "[2] B. Second. The second model of the thing. Journal of Tests, 2017."]

    def body(then=None) -> raw_pdf.Page:
        page = raw_pdf.Page()
        page.text(72, 740, "A Paper Title Set Large", size=18)
        page.text(72, 700, "1 Introduction", size=12, font="F2")
        page.text(72, 680, f"{BODY}; prior work built the first model [1].")
        page.text(72, 668, "The figures were drawn with Inkscape and the counts are shown in Table 1 below.")
        page.text(72, 656, f"{BODY}; it was refined later [2].")
        if then:
            then(page)
        return page

    refs = raw_pdf.Page()
    refs.text(72, 740, "References", size=12, font="F2")
    refs.text(72, 720, entries[0])
    refs.text(72, 708, entries[1])
    refs.text(72, 640, "Table 1. Counts of the things, by kind and by year of their first model.")
    refs.text(72, 80, "2 https://inkscape.org/", size=7)
    probe = body()
    mark_left, _, mark_right, _ = _charbox(tmp_path, probe, "Inkscape", 7)
    page = body(then=lambda p: p.text(mark_right + 0.5, 672, "2", size=6))
    page.link(_charbox(tmp_path, probe, "model [1]", 7), page=1, x=72, y=730, name="cite.first")
    page.link((mark_right + 0.3, 670, mark_right + 4.5, 678), page=1, x=72, y=88, name="Hfootnote.2")
    page.link(_charbox(tmp_path, probe, "Table 1", 6), page=1, x=72, y=650, name="table.1")
    page.link(_charbox(tmp_path, probe, "later [2]", 7), page=1, x=72, y=718, name="cite.second")
    root = xml_of(tmp_path, [page, refs])
    # (the caption and the footnote below the last entry still run on into its text: not what this test is on)
    assert [(text, raw[:len(entry)]) for (text, raw), entry in zip(cited(root), entries)] == \
        [("1", entries[0]), ("2", entries[1])] and len(cited(root)) == 2
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert len(raws) == 2 and not any(r.startswith(("Table", "2 https")) for r in raws)


def test_numbered_formula_lines_without_years_are_no_unheaded_bibliography(tmp_path):
    """A thesis compiled without its bibliography (every citation "[?]") has no "References" heading, but
    its displayed formulas set small numbers 1, 2, … on lines of their own above them, as AIP sets raised
    labels. Entries of a bibliography print years; a run of such lines that mostly print none is no
    bibliography, and the paper is reported with no references rather than with formulas for entries."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    y = 680
    for k in range(6):
        page.text(72, y, f"{BODY}, as derived with the method [?] in part {k}.")
        y -= 12
    for n, formula in enumerate(["m x = F cos(theta) + g sin(theta)", "I w = T - k w",
                                 "v = r w + u"], start=1):
        page.text(66, y - 9, str(n), size=5.5)
        page.text(90, y - 12, formula)
        page.text(72, y - 26, f"{BODY}, and the equation above holds in phase {n}.")
        y -= 40
    xml, stats = builtin.convert(raw_pdf.write_pdf(tmp_path / "paper.pdf", [page]))
    assert stats["n_references"] == 0 and stats["n_citations"] == 0
    assert "the equation above holds in phase 2" in "".join(etree.fromstring(xml).find("body").itertext())


def test_author_list_wrapped_in_capitals_does_not_end_the_bibliography(tmp_path):
    """MNRAS prints surnames before initials, and an entry's author list can wrap so that its second line
    is only initials and numbers ("Y. Y. Y., 2014, JCAP, 5, 021"): short and in capitals, it reads like a
    lettered appendix heading ("A Proofs"). It prints a year and no word, so it is part of the entry, and
    the entries after it are still the bibliography (hybrid-neutrino: 13 of 86 entries read before)."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 INTRODUCTION", size=10, font="F2")
    page.text(72, 685, f"{BODY}, and it is the first line of the introduction.")
    page.text(72, 673, f"{BODY}, and as the code does (Basse et al. 2014).")
    page.text(72, 661, f"{BODY}, and as measured later (Smith 2015).")
    page.text(72, 630, "REFERENCES", size=10, font="F2")
    for k, (indent, entry) in enumerate([(0, "Abbott T. M. C., et al., 2018, Phys. Rev. D, 98, 043526"),
                                         (0, "Aihara H., et al., 2018, PASJ, 70, S8"),
                                         (0, "Anderson L., et al., 2014, MNRAS, 441, 24"),
                                         (0, "Basse T., Eggers Bjaelde O., Hamann J., Hannestad S., Wong"),
                                         (8, "Y. Y. Y., 2014, JCAP, 5, 021"),
                                         (0, "Smith R. E., 2015, MNRAS, 465, 2936")]):
        page.text(72 + indent, 612 - 10 * k, entry, size=8)
    root = xml_of(tmp_path, [page])
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert [r.split()[0] for r in raws] == ["Abbott", "Aihara", "Anderson", "Basse", "Smith"]
    assert [(text, raw.split()[0]) for text, raw in cited(root)] == \
        [("Basse et al. 2014", "Basse"), ("Smith 2015", "Smith")]


def test_label_printed_in_two_numbered_lists_names_the_entry_of_the_list_the_link_points_into(tmp_path):
    """A project report prints its references [1]–[3] and then its own publications numbered [1]–[3] again.
    The link of "[2]" points into the first list: its printed number names the entry of that list, not the
    second list's [2] (report_snf: 9 such links went to the list of publications)."""
    refs = raw_pdf.Page()
    refs.text(72, 740, "References", size=12, font="F2")
    first = [f"[{n}] A. Author{n}. Cited work number {n}. Journal of Tests, 201{n}." for n in (1, 2, 3)]
    second = [f"[{n}] G. Member{n}. Our own article number {n}. Journal of Tests, 202{n}." for n in (1, 2, 3)]
    for k, entry in enumerate(first):
        refs.text(72, 720 - 12 * k, entry)
    refs.text(72, 670, "Publications of the project", size=12, font="F2")
    for k, entry in enumerate(second):
        refs.text(72, 650 - 12 * k, entry)
    probe = numbered_paper([f"{BODY}; this was shown before [2].", f"{BODY}; and also in [1, 3]."], [])
    page = numbered_paper([f"{BODY}; this was shown before [2].", f"{BODY}; and also in [1, 3]."], [])
    page.link(_charbox(tmp_path, probe, "before [2]", 8), page=1, x=72, y=718)
    page.link(_charbox(tmp_path, probe, "in [1, 3]", 4), page=1, x=72, y=730)
    page.link(_charbox(tmp_path, probe, "in [1, 3]", 7), page=1, x=72, y=706)
    root = xml_of(tmp_path, [page, refs])
    named = [(text, raw[:len(first[0])]) for text, raw in cited(root)]
    rids = [x.get("rid") for x in root.iter("xref")]
    assert named[0] == ("2", first[1]) and rids == ["ref2", "ref1 ref3"]


def test_bracketed_numbers_beside_an_interval_or_a_vector_of_their_size_are_no_citations(tmp_path):
    """Without links, "[1, 2]" in "visiting [0, 1] and [1, 2] with equal probability" is an interval like its
    neighbour, and "[1, 2, 3] from [8, 9, 10] produces [7, 7, 7]" a list like the last one: a group with as
    many numbers as a vector or an interval of its sentence is not read as a citation; a citation of another
    size beside them ("the mask [1, 1, 1, 0] and the method of [2]") and in the next sentence still is."""
    refs = [f"[{n}] A. Author{n}. Work number {n}. Journal, 20{n:02d}." for n in range(1, 11)]
    page = numbered_paper(["Instead of visiting [0, 1] and [1, 2] with equal probability, it favors [0, 1].",
                           "Zipping [1, 2, 3] with [8, 9, 10] produces [7, 7, 7]. The rule is old [1, 2].",
                           f"{BODY} with the mask [1, 1, 1, 0] and the method of [4]."], refs)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in cited(root)] == ["1, 2", "4"]


def test_unheaded_bibliography_of_preprints_cited_by_arxiv_number_alone_is_found(tmp_path):
    """High-energy physics cites preprints by their arXiv number and prints no year ("[3] H. Fukano et al.,
    arXiv:1506.04392 [hep-ph]."): an arXiv number or a DOI dates an entry as a year does, so such a
    bibliography without a heading is still one (refextract 1508.05632: 53 entries, 64 pairs)."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "I. INTRODUCTION", size=10, font="F2")
    page.text(72, 680, f"{BODY}, as the excess was seen [1, 2].")
    for k in range(6):
        page.text(72, 668 - 12 * k, f"{BODY}, and it was explained [3] in line {k}.")
    for k, entry in enumerate(["[1] ATLAS Collaboration, G. Aad et al., arXiv:1506.00962 [hep-ex].",
                               "[2] CMS Collaboration, V. Khachatryan et al., arXiv:1405.1994 [hep-ex].",
                               "[3] H. S. Fukano, M. Kurachi and S. Matsuzaki, arXiv:1506.04392 [hep-ph]."]):
        page.text(72, 560 - 12 * k, entry, size=9)
    root = xml_of(tmp_path, [page])
    assert len(list(root.iter("mixed-citation"))) == 3
    assert [m for m, _ in cited(root)][:2] == ["1, 2", "3"]
