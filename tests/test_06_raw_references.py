"""Stage 06 on raw reference strings only (what the PDF route often gives): the title and every other field are
found inside the string, and what the reference prints (year, volume, first page, journal, first author) chooses
among works of the same title. Each case runs on both paths: the snapshot, and the API through the stand-in.

The strings are written here in the shapes GROBID reads from PubMed Central PDFs (Vancouver and author-year styles,
abbreviated journals, line-break hyphens, lost authors); the records are sample data with Crossref's example prefix.
"""
from __future__ import annotations

import pandas as pd
import pytest

from demo.standins import CrossrefStandIn
from helpers import load_stage
from test_06_crossref_doi import ref, run
from test_06_snapshot import dead_service, write_snapshot

stage = load_stage("06")


def work(doi, title, year, family, journal, volume="", page="", kind="journal-article"):
    record = {"DOI": doi, "type": kind, "title": [title], "issued": {"date-parts": [[year]]},
              "author": [{"family": family, "given": "J", "sequence": "first"}] if family else [],
              "container-title": [journal] if journal else []}
    if volume:
        record["volume"] = volume
    if page:
        record["page"] = page
    return record


TITLE = "Oxidative stress in chronic obstructive pulmonary disease exacerbations"
PAPER = work("10.5555/copd.2006", TITLE, 2006, "Rahman", "American Journal of Respiratory and Critical Care Medicine",
             "173", "1023-1030")
REPRINT = work("10.5555/copd.2009", TITLE, 2009, "Rahman", "American Journal of Respiratory and Critical Care Medicine",
               "180", "1023-1030")  # the same title and first author registered again three years later
PREPRINT = work("10.5555/copd.pre", TITLE, 2006, "Rahman", "", kind="posted-content")  # same year, no volume/page
REPLY = work("10.5555/copd.reply", "Reply to: " + TITLE, 2007, "Rahman",
             "American Journal of Respiratory and Critical Care Medicine", "175", "99")
# a work registered twice with everything the reference prints the same: nothing printed can tell them apart
DUP_A = work("10.5555/dup.a", "Endothelial dysfunction and arterial stiffness in treated hypertension", 2011,
             "Okafor", "J Hypertens", "29", "455-461")
DUP_B = work("10.5555/dup.b", "Endothelial dysfunction and arterial stiffness in treated hypertension", 2011,
             "Okafor", "J Hypertens", "29", "455-461")
SCURVY = work("10.5555/scurvy", "Adult scurvy", 1999, "Hirschmann", "Journal of the American Academy of Dermatology",
              "41", "895-906")
MADAROSIS = work("10.5555/madarosis", "Madarosis", 2005, "Kumar", "Dermatology Online Journal", "11", "12")
RHEUMATOID = work("10.5555/ra.lancet", "Rheumatoid arthritis", 2003, "Scott", "Lancet", "373", "659-672")
EVOLVING = work("10.5555/ra.nature", "Evolving concepts of rheumatoid arthritis", 2003, "Firestein", "Nature",
                "423", "356-361")
SILK = work("10.5555/silk", "Silk-based biomaterials", 2003, "Altman", "Biomaterials", "24", "401-416")
NEURONS = work("10.5555/neurons", "Pax6 and Tbr2 are expressed sequentially by radial glia in developing neocortex",
               2005, "Englund", "J. Neurosci.", "25", "247-251")
OFF_YEAR = work("10.5555/offyear", "Treatment of acute renal failure in the intensive care unit", 1831, "Star",
                "Kidney Int", "54", "1817-1831")  # the record's year is wrong; its volume and page are printed
RECORDS = [PAPER, REPRINT, PREPRINT, REPLY, DUP_A, DUP_B, SCURVY, MADAROSIS, RHEUMATOID, EVOLVING, SILK, NEURONS,
           OFF_YEAR]

REFS = [
    ref("reprinted", raw=f"Rahman I, Adcock IM: {TITLE}. Am J Respir Crit Care Med 2006, 173(9):1023-1030."),
    ref("reprinted_ay", raw=f"Rahman I, Adcock IM (2006) {TITLE}. Am J Respir Crit Care Med 173:1023-1030"),
    ref("duplicate", raw="Okafor C, Lind L: Endothelial dysfunction and arterial stiffness in treated "
                         "hypertension. J Hypertens 2011, 29(3):455-461."),
    ref("scurvy", raw="Hirschmann JV, Raugi GJ: Adult scurvy. J Am Acad Dermatol 1999, 41(6):895-906."),
    ref("madarosis", raw="Kumar A, Karthikeyan K: Madarosis. Dermatol Online J 2005, 11:12."),
    ref("inner_title", raw="Firestein GS: Evolving concepts of rheumatoid arthritis. Nature 2003, 423:356-361."),
    ref("line_break", raw="Altman GH, Diaz F, Jakuba C, Kaplan DL (2003) Silk-based bio- materials. "
                          "Biomaterials 24:401-416"),
    ref("no_authors", raw="Pax6 and Tbr2 are expressed sequentially by radial glia in developing neocor- tex. "
                          "J. Neurosci. 25, 247-251."),
    ref("off_year", raw="Star RA: Treatment of acute renal failure in the intensive care unit. Kidney Int 1998, "
                        "54:1817-1831."),
    ref("wrong_author", raw="Moreau L, Petit A: Pax6 and Tbr2 are expressed sequentially by radial glia in "
                            "developing neocortex. Dev Neurosci 2005, 27:33-41."),
]


@pytest.fixture(params=["snapshot", "api"])
def resolved(request, tmp_path):
    """(report, references.csv, review.csv) of one run over REFS on the path named by the parameter."""
    if request.param == "snapshot":
        snap = write_snapshot(tmp_path / "snap" / "works.jsonl.gz", RECORDS)
        _, report, refs = run(tmp_path, dead_service(), refs=REFS, backend="snapshot", snapshot=snap)
    else:
        with CrossrefStandIn(RECORDS, search_limit=40, lookup_limit=40, concurrency=4) as server:
            _, report, refs = run(tmp_path, server, refs=REFS, rows=10)
    review = pd.read_csv(tmp_path / "out" / "review.csv", dtype=str, keep_default_na=False).set_index("ref_uid")
    return report, refs, review


def test_a_reprint_of_the_same_title_years_later_is_told_apart_by_the_printed_year_volume_and_page(resolved):
    _, refs, _ = resolved
    for uid in ("reprinted", "reprinted_ay"):
        assert (refs.loc[uid, "match_status"], refs.loc[uid, "doi"]) == ("matched", "10.5555/copd.2006"), \
            refs.loc[uid, "note"]


def test_a_same_year_preprint_without_volume_or_page_loses_to_the_work_the_reference_prints(resolved):
    _, refs, _ = resolved
    assert refs.loc["reprinted", "doi"] != PREPRINT["DOI"] and refs.loc["reprinted", "doi"] == PAPER["DOI"]


def test_a_tie_the_printed_fields_cannot_break_stays_ambiguous_with_both_candidates_in_review(resolved):
    _, refs, review = resolved
    assert refs.loc["duplicate", "match_status"] == "ambiguous" and refs.loc["duplicate", "doi"] == ""
    assert {review.loc["duplicate", "candidate_1_doi"], review.loc["duplicate", "candidate_2_doi"]} == \
        {"10.5555/dup.a", "10.5555/dup.b"}


def test_a_short_or_one_word_title_printed_as_its_own_field_is_found(resolved):
    _, refs, _ = resolved
    assert refs.loc["scurvy", "doi"] == "10.5555/scurvy", refs.loc["scurvy", "note"]
    assert refs.loc["madarosis", "doi"] == "10.5555/madarosis", refs.loc["madarosis", "note"]


def test_a_short_title_found_inside_a_longer_printed_title_is_not_the_reference(resolved):
    _, refs, _ = resolved
    assert refs.loc["inner_title", "doi"] == "10.5555/ra.nature"  # never the Lancet's "Rheumatoid arthritis"


def test_a_title_broken_across_lines_with_a_hyphen_is_found(resolved):
    _, refs, _ = resolved
    assert refs.loc["line_break", "doi"] == "10.5555/silk", refs.loc["line_break", "note"]


def test_a_raw_reference_that_lost_its_authors_is_not_refused_for_its_first_author(resolved):
    _, refs, _ = resolved
    assert refs.loc["no_authors", "doi"] == "10.5555/neurons", refs.loc["no_authors", "note"]


def test_a_record_with_the_printed_volume_and_first_page_is_the_work_whatever_its_year(resolved):
    _, refs, _ = resolved
    assert refs.loc["off_year", "doi"] == "10.5555/offyear", refs.loc["off_year", "note"]


def test_a_raw_reference_whose_printed_first_author_is_another_is_refused(resolved):
    _, refs, _ = resolved
    assert refs.loc["wrong_author", "match_status"] == "not_found"
    assert "first author englund not in the reference" in refs.loc["wrong_author", "note"]


def test_the_printed_year_ignores_page_ranges_and_volume_page_numbers():
    fields = stage.raw_fields("Smith J (1994) A title. Clin Neurophysiol 110:1842-1857; World Dev 26, 1995-2011.")
    assert fields.years == (1994,)
    assert {"110", "1842", "26", "1995"} <= fields.numbers


def test_an_abbreviated_journal_agrees_with_its_full_name():
    info = stage.raw_fields(f"Rahman I: {TITLE}. Am J Respir Crit Care Med 2006, 173:1023-1030.")
    agree = stage.printed_agreement(info, PAPER)
    assert agree == {"volume": True, "page": True, "journal": True, "author": True}
    assert stage.printed_agreement(info, REPRINT)["volume"] is False


def test_a_reply_under_the_same_title_is_not_the_work(resolved):
    _, refs, _ = resolved
    assert REPLY["DOI"] not in set(refs["doi"])


def test_the_stand_in_serves_a_snapshot_file_with_a_search_over_its_works(tmp_path):
    snap = write_snapshot(tmp_path / "works.jsonl.gz", RECORDS)
    with CrossrefStandIn.from_snapshot(snap, enforce=False) as server:
        assert len(server.records) == len(RECORDS)
        _, _, refs = run(tmp_path, server, refs=REFS[:1])
    assert refs.loc["reprinted", "doi"] == "10.5555/copd.2006"
