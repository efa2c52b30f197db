"""Stage 03's built-in backend: a class round 33b's held-out compiled PDFs showed after the round's merge (a
student's proposal typeset with apa7, whose only prose that cites stands under a "Preface" heading), on a PDF the
test draws."""
from __future__ import annotations

import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_real_classes import builtin  # noqa: E402  (one PDF-to-XML helper for these files)


def test_the_prose_under_a_preface_heading_is_body_text_and_its_citations_are_linked(tmp_path):
    """A proposal or a thesis may open with a "Preface" (or "Foreword") in the author's own words, citing, before
    any numbered section, with no Introduction and no Abstract; after it come numbered steps without a stop, which
    read as numbered headings. The body began at the first of them, so the lines under the preface were never
    read and the paper was reported empty. A preface opens the body as an Introduction does."""
    page = raw_pdf.Page()
    page.text(50, 760, "Pre-study Proposal", size=16, font="F2")
    page.text(50, 730, "Preface", size=12, font="F2")
    page.text(50, 712, "While looking for a project I came across an article about the canton seeking a new railway")
    page.text(50, 700, "strategy for the next decades (Canton de Vaud, 2020; Aina, 2020). The strategy plans more")
    page.text(50, 688, "trains on the main lines and new stations in the region around the city in the coming years.")
    page.text(50, 660, "The two possible axes", size=12, font="F2")
    for k, item in enumerate(["Collect the train schedules (i.e: SMA)", "Operation research with a software",
                              "Collect origin and destination data", "Market share forecast (i.e: Biogeme)"]):
        page.text(60, 640 - 14 * k, f"{k + 1}. {item}")  # numbered steps, no stop: they read as headings
    for k in range(8):
        page.text(50, 570 - 12 * k, "The timeline will be divided into two major parts, the pre-study and the thesis, "
                                    "each with its own goals.")
    refs = raw_pdf.Page()
    refs.text(50, 760, "References", size=12, font="F2")
    refs.text(50, 740, "Aina, S. (2020). The canton unveils its vision for the rail. Le Temps.")
    refs.text(50, 724, "Canton de Vaud. (2020). Vision 2050: a sustainable mobility. Press release.")
    refs.text(50, 708, "Renaud, B. (2020). The canton wants to take its railway future in hand. 24 heures.")
    pdf = raw_pdf.write_pdf(tmp_path / "proposal.pdf", [page, refs])
    root = etree.fromstring(builtin.convert(pdf)[0])
    entries = {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}
    named = {entries[rid].split(".")[0] for x in root.iter("xref") for rid in x.get("rid").split()}
    assert named == {"Aina, S", "Canton de Vaud"}, named
