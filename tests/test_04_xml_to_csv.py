"""Stage 04: citing sentences and references from CERMINE JATS, builtin JATS and GROBID TEI."""
from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from demo.standins import CORPUS_DIR
from helpers import REPO, load_stage

stage = load_stage("04")
stage03 = load_stage("03")
FIX = REPO / "tests" / "fixtures"


def run(tmp_path, files, **kw):
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    for f in files:
        shutil.copyfile(f, src / f.name)
    cfg = stage.Config(input_dir=src, output_dir=tmp_path / "out", **kw)
    return cfg, stage.main(cfg)


def sentences(cfg, paper_id):
    return pd.read_csv(cfg.output_dir / f"{paper_id}.sentences.csv", dtype=str, keep_default_na=False)


def references(cfg, paper_id):
    return pd.read_csv(cfg.output_dir / f"{paper_id}.references.csv", dtype=str, keep_default_na=False)


@pytest.fixture()
def cermine(tmp_path):
    cfg, summary = run(tmp_path, [FIX / "jats" / "cermine_style.cermxml"])
    return cfg, summary, sentences(cfg, "cermine_style")


def row_with(df, text):
    hits = df[df.sentence.str.contains(text, regex=False)]
    assert len(hits) == 1, f"{len(hits)} sentences contain {text!r}: {df.sentence.tolist()}"
    return hits.iloc[0]


def test_sentence_with_three_references_keeps_all_in_order(cermine):
    _, _, df = cermine
    row = row_with(df, "Digital twins of propulsion systems")
    assert row.ref_keys == "ref1|ref2|ref3"
    assert row.sentence == ("Digital twins of propulsion systems support condition monitoring on board and ashore [1-3].")
    assert row.sentence_clean == "Digital twins of propulsion systems support condition monitoring on board and ashore."
    assert row.section == "Background"


def test_range_whose_rid_lists_only_the_ends_is_expanded(cermine):
    _, _, df = cermine
    assert row_with(df, "Electronic charts came first").ref_keys == "ref1|ref3|ref2"


def test_number_its_link_already_names_is_not_added_again_from_a_second_numbered_list():
    """A report prints its references [1]-[8] and then its own publications numbered [1]-[8] again: "[5, 8]"
    whose rid names the first list's ref5 and ref8 stays those two, and a range still fills its middle."""
    number_of = {f"ref{n}": n for n in range(1, 9)} | {f"ref{n + 8}": n for n in range(1, 9)}
    by_number = {n: key for key, n in number_of.items()}  # the second list's, as the last one read wins
    assert stage.expand_range_keys("5, 8", ["ref5", "ref8"], by_number, number_of) == ["ref5", "ref8"]
    assert stage.expand_range_keys("1–3", ["ref1", "ref3"], by_number, number_of) == ["ref1", "ref3", "ref2"]
    assert stage.expand_range_keys("1–3", ["ref9", "ref11"], by_number, number_of) == ["ref9", "ref11", "ref10"]
    assert stage.expand_range_keys("1–3", ["ref1", "ref3"], {1: "ref1", 2: "ref2", 3: "ref3"}) == \
        ["ref1", "ref3", "ref2"]


def test_marker_after_the_full_stop_belongs_to_the_sentence_it_closes(cermine):
    _, _, df = cermine
    row = row_with(df, "Remote pilotage")
    assert row.sentence == "Remote pilotage has been tested in the Baltic Sea. [6]"
    assert row.ref_keys == "ref6"
    assert row.sentence_clean == "Remote pilotage has been tested in the Baltic Sea."


def test_marker_with_a_page_note_after_a_closing_quote_belongs_to_the_quoted_sentence(tmp_path):
    # "... was generated.'' \parencite[p.~26]{x} While we ...": the page note inside the brackets is the marker's,
    # not the start of a sentence whose subject is the marker
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "quote.cermxml").write_text(
        '<article><front><article-meta><title-group><article-title>Q</article-title></title-group></article-meta>'
        '</front><body><sec><title>Intro</title><p>It is so poor that \u201cyou could not tell where the signal was '
        'generated.\u201d [<xref ref-type="bibr" rid="r1">1</xref>, p. 26] While we can tell which electrode '
        'recorded it, the source stays unknown [<xref ref-type="bibr" rid="r2">2</xref>].</p></sec></body><back>'
        '<ref-list><ref id="r1"><mixed-citation>M. Cohen. Analyzing neural time series data. 2014.</mixed-citation>'
        '</ref><ref id="r2"><mixed-citation>S. Luck. An introduction to the event-related potential technique. 2014.'
        '</mixed-citation></ref></ref-list></back></article>', encoding="utf-8")
    cfg = stage.Config(input_dir=tmp_path / "in", output_dir=tmp_path / "out")
    stage.main(cfg)
    df = sentences(cfg, "quote")
    assert df.sentence.tolist()[0] == "It is so poor that \u201cyou could not tell where the signal was generated.\u201d [1, p. 26]"
    assert df.ref_keys.tolist() == ["r1", "r2"]


def test_abbreviations_decimals_and_versions_do_not_split_sentences(cermine):
    _, _, df = cermine
    row = row_with(df, "Sensor data are shared")
    assert row.sentence.endswith("approx. 2.5 per cent (reviewed in [4,5]).")
    assert row.sentence_clean.endswith("approx. 2.5 per cent (reviewed in prior work).")
    row = row_with(df, "Several monitoring approaches")
    assert "J. Smith and colleagues, see Fig. 2 and Eq. 3, where version 2.1.3 of the model vs. its predecessor" \
        in row.sentence


def test_dangling_rid_is_reported_and_dropped(cermine):
    _, summary, df = cermine
    assert summary["dangling_rids"] == 1
    assert row_with(df, "Several monitoring approaches").ref_keys == "ref2"


def test_author_year_group_spanning_a_line_break_stays_one_sentence(cermine):
    _, _, df = cermine
    row = row_with(df, "Port call data sharing")
    assert row.sentence == "Port call data sharing reduces waiting times (Olsen and Tran, 2019; Lind and Haraldson, 2018)."
    assert row.ref_keys == "ref7|ref8"
    assert row.sentence_clean == "Port call data sharing reduces waiting times."


def test_textual_citation_becomes_a_neutral_phrase_without_author_names(cermine):
    _, _, df = cermine
    row = row_with(df, "big data methods")
    assert row.sentence == "As reviewed by Munim et al. [5], big data methods are spreading in shipping."
    assert row.sentence_clean == "As reviewed by prior work, big data methods are spreading in shipping."


def test_only_citing_body_sentences_no_abstract_no_caption(cermine):
    _, _, df = cermine
    assert not df.sentence.str.contains("cites nothing").any()
    assert not df.sentence.str.contains("abstract").any()
    assert not df.sentence.str.contains("Data flow from ship").any()
    assert len(df) == 7
    assert df.sentence_id.str.match(r"^cermine_style:\d+\.\d+$").all()
    assert df.sentence_id.iloc[0] == "cermine_style:1.1" and df.sentence_id.is_unique


def test_captions_and_all_sentences_on_request(tmp_path):
    cfg, _ = run(tmp_path, [FIX / "jats" / "cermine_style.cermxml"], include_captions=True, all_sentences=True)
    df = sentences(cfg, "cermine_style")
    assert df.sentence.str.contains("This sentence cites nothing at all.").any()
    assert row_with(df, "Data flow from ship").ref_keys == "ref2"


def test_references_book_doi_arxiv_and_raw_text(cermine):
    cfg, _, _ = cermine
    refs = references(cfg, "cermine_style").set_index("ref_key")
    book = refs.loc["ref1"]
    assert (book.title, book.year, book.authors) == ("Electronic Chart Display and Information Systems", "2005",
                                                    "Weintrit, A")
    assert refs.loc["ref2", "doi"] == "10.5555/mdig.2020.0102"
    assert refs.loc["ref2", "authors"] == "Taylor, N|Osei, K"
    assert refs.loc["ref2", "venue"] == "J Mar Eng"
    assert refs.loc["ref3", "arxiv_id"] == "2213.04417v2"
    assert refs.loc["ref4", "doi"] == "10.5555/mdig.2021.0103"
    # no title tagged: the raw text is kept for stage 06's query
    assert refs.loc["ref6", "title"] == "" and refs.loc["ref6", "raw"].startswith("Heikkila A, Moreau L: Remote pilotage")
    assert not refs.raw.str.match(r"^\d+\.").any()  # printed labels are stripped from raw


def test_grobid_tei_markers_titles_and_unresolved_refs(tmp_path):
    cfg, summary = run(tmp_path, [FIX / "grobid" / "sample.tei.xml"])
    df = sentences(cfg, "sample")
    assert row_with(df, "common practice").ref_keys == "b0|b1"  # "[1," + "2]" are one marker
    row = row_with(df, "Digital twins of propulsion plants")
    assert row.ref_keys == "b2"
    assert row.sentence_clean == "Digital twins of propulsion plants are one approach, and data-driven models are another."
    assert summary["unresolved_markers"] == 1
    assert row_with(df, "Remote pilotage").sentence_clean == \
        "Remote pilotage was assessed in a recent trial, see prior work for details."
    refs = references(cfg, "sample").set_index("ref_key")
    assert refs.loc["b1", "doi"] == "10.5555/mdig.2020.0125"
    assert refs.loc["b3", "title"] == "Electronic Chart Display and Information Systems"
    assert refs.loc["b3", "venue"] == "Sample Nautical Publishers"
    assert refs.loc["b5", "arxiv_id"] == "2213.04417v2"
    assert refs.loc["b2", "authors"] == "Taylor, Nora|Osei, Kwame|Lindqvist, Erik"
    assert refs.loc["b2", "year"] == "2020"


def test_bad_files_are_reported_and_skipped(tmp_path):
    files = [FIX / "jats" / n for n in ("empty_body.cermxml", "malformed.cermxml", "xxe.cermxml",
                                       "cermine_style.cermxml")]
    (tmp_path / "blank.cermxml").write_text("   ")
    cfg, summary = run(tmp_path, files + [tmp_path / "blank.cermxml"])
    assert summary["failed"]["blank.cermxml"] == "empty file"
    assert summary["failed"]["malformed.cermxml"].startswith("malformed XML")
    assert summary["papers_without_citing_sentences"] == ["empty_body"]
    assert summary["converted"] == 3
    # entities are not expanded: no file content leaks in
    assert "root:" not in (cfg.output_dir / "xxe.sentences.csv").read_text()


def test_rerun_uses_the_cache_and_drops_removed_papers(tmp_path):
    cfg, first = run(tmp_path, [FIX / "jats" / "cermine_style.cermxml", FIX / "grobid" / "sample.tei.xml"])
    again = stage.main(cfg)
    assert again["converted"] == 0 and again["unchanged"] == 2 and again["sentences"] == first["sentences"]
    (cfg.input_dir / "sample.tei.xml").unlink()
    third = stage.main(cfg)
    assert not (cfg.output_dir / "sample.sentences.csv").exists() and third["papers_in"] == 1


def test_shared_cermine_sample_reads_cleanly(tmp_path):
    cfg, summary = run(tmp_path, [REPO.parent / "shared" / "reference" / "cermine_jats_bmc_sample.cermxml"])
    df = sentences(cfg, "cermine_jats_bmc_sample")
    first = df.iloc[0]
    assert first.ref_keys == "ref1|ref2|ref3" and first.sentence.endswith("alternative splicing [1-3].")
    assert row_with(df, "RNA turnover").sentence_clean.endswith("RNA turnover (reviewed in prior work).")
    assert not df.sentence_clean.str.contains(r"\[\d").any()
    assert summary["dangling_rids"] == 0


def test_builtin_output_of_the_demo_pdfs_reads_without_loss(tmp_path):
    """Stages 03 and 04 together: every citing sentence of the sample papers' LaTeX
    sources comes out as one row whose references are exactly the cited works."""
    import json

    works = {w["key"]: w for w in json.loads((CORPUS_DIR / "works.json").read_text())}
    xml_dir = tmp_path / "xml"
    xml_dir.mkdir()
    for pdf in sorted((CORPUS_DIR / "pdfs").glob("*.pdf")):
        xml, _ = stage03.builtin_backend.convert(pdf)
        (xml_dir / f"{pdf.stem}.cermxml").write_bytes(xml)
    cfg, _ = run(tmp_path, sorted(xml_dir.iterdir()))
    for pdf in sorted((CORPUS_DIR / "pdfs").glob("*.pdf")):
        src = (CORPUS_DIR / "src" / f"{pdf.stem}.tex").read_text()
        expected = []  # the sources hold one sentence per line
        for line in src.splitlines():
            keys = [k.strip() for g in re.findall(r"\\cite[tp]?(?:\[[^\]]*\])*\{([^}]*)\}", line) for k in g.split(",")]
            if keys:
                expected.append(sorted({works[k]["title"] for k in keys}))
        df = sentences(cfg, pdf.stem)
        refs = references(cfg, pdf.stem).set_index("ref_key")
        found = [sorted({refs.loc[k, "title"] for k in keys.split("|")}) for keys in df.ref_keys]
        assert found == expected, pdf.stem
        assert not df.sentence_clean.str.contains(r"\[\d|et al|\(\w+,? \d{4}\)").any()


def test_singular_verb_after_prior_work():
    assert stage.clean_sentence("Lind and Haraldson (2018) describe the concept.",
                                [stage.Marker(0, 25, ["r1"])]) == "Prior work describes the concept."
    assert stage.singular_verb("study") == "studies" and stage.singular_verb("have") == "has"
    assert stage.singular_verb("discuss") == "discusses" and stage.singular_verb("recently") == "recently"


def test_the_prior_work_stage_04_substitutes_is_marked_and_the_authors_own_is_not():
    text = "In [7], we extend prior work on berth allocation, as Lind and Haraldson (2018) suggest."
    markers = [stage.Marker(3, 6, ["r1"]), stage.Marker(text.index("Lind"), text.index(" suggest"), ["r2"])]
    clean, substituted = stage.clean_sentence_marked(text, markers)
    assert clean == "In prior work, we extend prior work on berth allocation, as prior work suggests."
    assert substituted == "1|3"  # the first and the third; the second is the author's words
    natural = "Recent work on berth allocation reports large gains for operators [3]."
    assert stage.clean_sentence_marked(natural, [stage.Marker(natural.index("["), natural.index("."), ["r3"])]) == \
        ("Recent work on berth allocation reports large gains for operators.", "")


# --- real citing text: sentence boundaries and sentence_clean without holes (issue 11, items 12-13) ---------

def paragraph(text, *markers):
    """A paragraph whose markers are the given bracketed substrings, in order."""
    spans, pos = [], 0
    for m in markers:
        start = text.index(m, pos)
        spans.append(stage.Marker(start, start + len(m), [f"r{len(spans) + 1}"]))
        pos = start + len(m)
    return stage.Paragraph("Intro", text, spans)


def sentences_of(par):
    return [par.text[s:e] for s, e in stage.split_sentences(par)]


def test_citation_right_after_a_full_stop_closes_that_sentence():
    par = paragraph("It holds in this case.[73] Additionally, we show more.", "[73]")
    assert sentences_of(par) == ["It holds in this case.[73]", "Additionally, we show more."]


def test_bracket_group_after_a_citation_and_etc_end_sentences():
    par = paragraph("It was shown [7] (see Sec. 2). Next we go on. Ports, ships, etc. Next comes rail [8].", "[7]", "[8]")
    assert sentences_of(par) == ["It was shown [7] (see Sec. 2).", "Next we go on.", "Ports, ships, etc.",
                                 "Next comes rail [8]."]


def test_lower_case_eq_abbreviation_does_not_split():
    par = paragraph("The bound follows from eq. 3 and the rest [2]. The next one is loose.", "[2]")
    assert sentences_of(par) == ["The bound follows from eq. 3 and the rest [2].", "The next one is loose."]
    par = paragraph("The bound in eq. (3). is tight [2].", "[2]")
    assert sentences_of(par) == ["The bound in eq. (3). is tight [2]."]


def test_a_theorem_head_that_cites_its_source_opens_the_statements_first_sentence():
    # amsthm's optional argument holding the statement's source, as a compiled PDF prints it (round 29's
    # held-out papers): the head is no sentence of its own, the citation belongs to the statement
    par = paragraph("Definition 4.1 ([7, Section 5]). Suppose R is an equivalence relation. Let n be its size.",
                    "[7, Section 5]")
    assert sentences_of(par) == ["Definition 4.1 ([7, Section 5]). Suppose R is an equivalence relation.",
                                 "Let n be its size."]
    par = paragraph("Theorem 2 (Main result). Every bounded set is finite [3].", "[3]")
    assert sentences_of(par) == ["Theorem 2 (Main result).", "Every bounded set is finite [3]."]


def test_marker_as_subject_opens_the_next_sentence():
    par = paragraph("This was quantified (see [24]). [95] developed a model of a cavity.", "[24]", "[95]")
    assert sentences_of(par) == ["This was quantified (see [24]).", "[95] developed a model of a cavity."]


def test_no_sentence_ends_at_a_semicolon_or_before_a_bracket_without_a_full_stop():
    # A real sentence (araa-gps, natbib author-year) on which syntok ends a sentence before "(e.g.," and at each
    # semicolon of the citation group; glued, the group stays with the clause it supports.
    groups = ["Kozłowski et al., 2010; MacLeod et al., 2010; MacLeod et al., 2012",
              "Kelly et al., 2014; Zhang et al., 2022; Yu et al., 2022",
              "Kozłowski et al., 2010; MacLeod et al., 2010; MacLeod et al., 2012; Kelly et al., 2014; Kasliwal et al., "
              "2017; Moreno et al., 2019; Stone et al., 2022; Zhang et al., 2022; Yu et al., 2022"]
    first = (f"The standard approach is to fit a GP model to the light curve\u2014typically using a \u201cdamped random "
             f"walk\u201d kernel (e.g., {groups[0]}), or the more general \u201ccontinuous-time autoregressive moving "
             f"average\u201d (CARMA) kernel (e.g., {groups[1]}), since these permit efficient computations even with "
             f"large datasets\u2014and then to use the inferred hyperparameter values to constrain the variability "
             f"amplitudes and timescales of the system (e.g., {groups[2]}).")
    par = paragraph(first + " These amplitudes and timescales correlate with the mass.", *groups)
    assert sentences_of(par) == [first, "These amplitudes and timescales correlate with the mass."]
    # a list written as one sentence, one item per line, keeps its items together
    items = "We wrap QUADPACK [1] for integration; FFTPACK [2] for Fourier transforms; ARPACK [3] for eigenproblems."
    assert sentences_of(paragraph(items + " Next.", "[1]", "[2]", "[3]")) == [items, "Next."]


@pytest.mark.parametrize("text, markers, clean", [
    ("More results are given in [22].", ["[22]"], "More results are given in prior work."),
    ("In [4], we extend it to liner networks.", ["[4]"], "In prior work, we extend it to liner networks."),
    ("The estimate of Ref. [5] holds for tankers.", ["[5]"], "The estimate of prior work holds for tankers."),
    ("[6] applies the method to bulk carriers.", ["[6]"], "Prior work applies the method to bulk carriers."),
    ("For example, [2] aggregates arrival data.", ["[2]"], "For example, prior work aggregates arrival data."),
    ("Olsen, Tran, and Lind [1] show that congestion falls.", ["[1]"], "Prior work shows that congestion falls."),
    ("In their study, Koyuncu et al. [15] decide to rank bugs.", ["[15]"], "In their study, prior work decides to rank bugs."),
    ("It is extracted from [11, 13], and [20].", ["[11, 13]", "[20]"], "It is extracted from prior work."),
    ("The plasma is probed, e.g. [5, 6].", ["[5, 6]"], "The plasma is probed."),
    ("It grows (see [24, 95], where this was shown).", ["[24, 95]"], "It grows (see prior work, where this was shown)."),
])
def test_grammatical_markers_become_a_noun_phrase_never_a_hole(text, markers, clean):
    par = paragraph(text, *markers)
    assert stage.clean_sentence(par.text, par.markers) == clean


def test_grobid_marker_with_its_own_brackets_keeps_no_author_names(tmp_path):
    tei = (FIX / "grobid" / "sample.tei.xml").read_text().replace(
        "Anomaly detection on AIS tracks was studied with recurrent autoencoders",
        "Koyuncu et al. <ref type=\"bibr\" target=\"#b5\">[6]</ref> decide that anomaly detection on AIS tracks "
        "works with recurrent autoencoders").replace(' <ref type="bibr" target="#b5">[6]</ref>.</p>', ".</p>")
    (tmp_path / "k.tei.xml").write_text(tei)
    cfg, _ = run(tmp_path, [tmp_path / "k.tei.xml"])
    row = row_with(sentences(cfg, "k"), "Koyuncu")
    assert row.sentence_clean.startswith("Prior work decides that anomaly detection") and row.ref_keys == "b5"


# --- unarXive / S2ORC JSONL (issue 17) ------------------------------------------------------------------

def test_unarxive_records_give_sentences_with_their_references_and_ids(tmp_path):
    cfg = stage.Config(input_dir=FIX / "jsonl" / "unarxive_sample.jsonl", output_dir=tmp_path / "out",
                       input_format="unarxive")
    summary = stage.main(cfg)
    assert summary["converted"] == 1 and summary["sentences"] == 8
    df = sentences(cfg, "2212.00001")
    assert row_with(df, "single case").sentence == "Port call data sharing was first studied for a single case.[1]"
    assert row_with(df, "single case").ref_keys == "b1"
    assert row_with(df, "arrival data").sentence_clean == \
        "For example, prior work aggregates arrival data from [formula] ports."
    refs = references(cfg, "2212.00001").set_index("ref_key")
    assert refs.loc["b1", "doi"] == "10.5555/mdig.2019.0105" and refs.loc["b2", "arxiv_id"] == "2213.04417"
    assert refs.loc["b3", "year"] == "2020" and refs.loc["b3", "raw"].startswith("N. Taylor. Bounds on fleet")
    assert (cfg.output_dir / "run.json").is_file()


def test_unarxive_contained_arxiv_ids_as_span_dicts_give_the_bare_arxiv_id():
    entry = {"bib_entry_raw": "J. Doe, Berth allocation revisited, arXiv:2104.06921 .",
             "ids": {"doi": "", "arxiv_id": ""},
             "contained_arXiv_ids": [{"id": "2104.06921", "text": "arXiv:2104.06921 .", "start": 36, "end": 54}]}
    row = stage.json_reference("b1", entry)
    assert row["arxiv_id"] == "2104.06921"


def test_s2orc_records_glue_split_markers_and_count_unresolved_ones(tmp_path):
    cfg = stage.Config(input_dir=FIX / "jsonl", output_dir=tmp_path / "out", input_format="s2orc")
    (tmp_path / "only").mkdir()
    shutil.copyfile(FIX / "jsonl" / "s2orc_sample.jsonl", tmp_path / "only" / "s2orc_sample.jsonl")
    cfg.input_dir = tmp_path / "only"
    summary = stage.main(cfg)
    assert summary["unresolved_markers"] == 1
    df = sentences(cfg, "77490025")
    assert row_with(df, "common practice").ref_keys == "BIBREF0|BIBREF1"
    assert row_with(df, "common practice").sentence == "Shore-based monitoring is common practice [1, 2]."
    assert row_with(df, "Digital twins").sentence_clean == \
        "Digital twins are one approach, and data-driven models another."
    refs = references(cfg, "77490025").set_index("ref_key")
    assert refs.loc["BIBREF1", "doi"] == "10.5555/mdig.2020.0125" and refs.loc["BIBREF2", "arxiv_id"] == "2213.04417"
    assert refs.loc["BIBREF1", "authors"] == "Poulsen, R T"


def test_every_cite_span_of_the_real_sample_reaches_its_reference(tmp_path):
    real = REPO.parent / "shared" / "realtext" / "unarxive_dev.jsonl"
    if not real.is_file():
        pytest.skip("../shared/realtext is not on this machine")
    import json

    cfg = stage.Config(input_dir=real, output_dir=tmp_path / "out", input_format="unarxive")
    stage.main(cfg)
    for line in real.open(encoding="utf-8"):
        record = json.loads(line)
        df = sentences(cfg, record["paper_id"]) if record["body_text"] else None
        cited = {k for cell in df.ref_keys for k in cell.split("|")} if df is not None else set()
        wanted = {s["ref_id"] for p in record["body_text"] for s in p["cite_spans"] if s["ref_id"] in record["bib_entries"]}
        assert wanted <= cited, record["paper_id"]


def test_run_json_records_the_run(cermine):
    import json

    cfg, _, _ = cermine
    run_json = json.loads((cfg.output_dir / "run.json").read_text())
    assert run_json["stage"] == "04_xml_to_csv" and run_json["summary"]["converted"] == 1


def test_each_paragraph_gets_its_nearest_sections_title_looked_up_once_per_section(tmp_path):
    # The section title is looked up once per section (lxml's find() walks every child of the <sec>, so
    # asking it once per paragraph made a one-section paper of thousands of paragraphs quadratic).
    def para(word, n):
        return (f'<p>The {word} result {n} was shown before '
                f'[<xref ref-type="bibr" rid="r1">1</xref>].</p>')

    def paper(n_paragraphs):
        body = "".join(para("first", n) for n in range(n_paragraphs))
        return ('<article><body><sec><title>Methods</title>' + body
                + '<sec><title>Inner part</title>' + para("inner", 0) + '</sec>'
                + '<sec>' + para("untitled", 0) + '</sec></sec></body>'
                '<back><ref-list><ref id="r1"><mixed-citation>1. A. Author. A title. J. X, 2001.</mixed-citation>'
                '</ref></ref-list></back></article>')

    src = tmp_path / "in"
    src.mkdir()
    (src / "p.cermxml").write_text(paper(3))
    cfg = stage.Config(input_dir=src, output_dir=tmp_path / "out")
    stage.main(cfg)
    df = sentences(cfg, "p")
    assert set(df[df.sentence.str.contains("first")].section) == {"Methods"}
    assert list(df[df.sentence.str.contains("inner")].section) == ["Inner part"]
    assert list(df[df.sentence.str.contains("untitled")].section) == [""]



def test_a_sentences_own_full_stop_split_off_after_a_bracket_ends_that_sentence():
    # syntok puts the full stop after a closing bracket into the next piece ("(Xiong et al., 2011)" + ". Next");
    # it belongs to the sentence it ends (seen on published PDFs and a LaTeX source: a row without its stop)
    par = paragraph("The splicing data set is public (Xiong et al., 2011). Next we train a model.",
                    "Xiong et al., 2011")
    assert sentences_of(par) == ["The splicing data set is public (Xiong et al., 2011).", "Next we train a model."]
    par = paragraph("(for a review of such models, see Istratov and Vyvenko (1999)). We use two of them.",
                    "Istratov and Vyvenko (1999)")
    assert sentences_of(par) == ["(for a review of such models, see Istratov and Vyvenko (1999)).",
                                 "We use two of them."]


def test_an_abbreviation_before_a_quoted_lower_case_word_does_not_end_the_sentence():
    par = paragraph("This count includes the Kharchenko et al. \u201cmost probable\u201d members [3]. Others follow.",
                    "[3]")
    assert sentences_of(par) == ["This count includes the Kharchenko et al. \u201cmost probable\u201d members [3].",
                                 "Others follow."]


def test_a_bracket_after_a_citation_without_a_full_stop_continues_the_sentence():
    par = paragraph("The coupling is the monotone rearrangement [formula] [86, 87] (Remark 3). Next we turn to wear.",
                    "[86, 87]")
    assert sentences_of(par) == ["The coupling is the monotone rearrangement [formula] [86, 87] (Remark 3).",
                                 "Next we turn to wear."]


def test_an_enumeration_label_goes_with_the_note_it_opens():
    # a table's notes as one paragraph: "(1) Smith (2018); (2) ..." and "... (2005). (c) Dobbie et al. ..."
    notes = ("Age references: (1) Gagn\u00e9 et al. (2018); (2) Galindo-Guil et al. (2022); (5) Luhman (2007); "
             "(6) Pecaut and Mamajek (2016); (7) Tofflemire et al. (2021).")
    par = paragraph(notes, "Gagn\u00e9 et al. (2018)", "Pecaut and Mamajek (2016)", "Tofflemire et al. (2021)")
    assert sentences_of(par) == [notes]
    par = paragraph("(b) Notes a change since Kharchenko et al. (2005). (c) Dobbie et al. (2010) studied the LDB.",
                    "Kharchenko et al. (2005)", "Dobbie et al. (2010)")
    assert sentences_of(par) == ["(b) Notes a change since Kharchenko et al. (2005).",
                                 "(c) Dobbie et al. (2010) studied the LDB."]


def test_a_paragraph_cut_mid_sentence_by_a_page_break_is_read_as_one(tmp_path):
    # A PDF backend ends a paragraph at a column or page break, in the middle of a sentence; the next paragraph
    # starts in lower case. Joined, the citing sentence is whole; the numbers of later paragraphs do not move.
    def ref(n):
        return f'<ref id="r{n}"><mixed-citation>{n}. A. Author. Title {n}. J. X, 200{n}.</mixed-citation></ref>'

    xml = ('<article><body><sec><title>Introduction</title>'
           '<p>The leaves look like those of date palm.<xref ref-type="bibr" rid="r1">1</xref> The genus is reported '
           'to have diuretic, analgesic,<xref ref-type="bibr" rid="r2">2</xref></p>'
           '<p>ameliorative,<xref ref-type="bibr" rid="r3">3</xref> and antioxidant activities.'
           '<xref ref-type="bibr" rid="r4">4</xref></p>'
           '<p>The objective is given by <xref ref-type="bibr" rid="r1">[1]</xref> as</p>'
           '<p>[formula] where the weight is fixed.</p>'
           '<p>Ours is new <xref ref-type="bibr" rid="r2">[2]</xref>.</p>'
           '<p>and this paragraph, after a full stop, is not joined <xref ref-type="bibr" rid="r3">[3]</xref>.</p>'
           '</sec><sec><title>Methods</title><p>we start a new section <xref ref-type="bibr" rid="r4">[4]</xref>.'
           '</p></sec></body><back><ref-list>' + "".join(ref(n) for n in range(1, 5)) + '</ref-list></back>'
           '</article>')
    src = tmp_path / "in"
    src.mkdir()
    (src / "p.cermxml").write_text(xml)
    cfg = stage.Config(input_dir=src, output_dir=tmp_path / "out")
    stage.main(cfg)
    df = sentences(cfg, "p")
    assert list(df.sentence) == [
        "The leaves look like those of date palm.1",
        "The genus is reported to have diuretic, analgesic,2 ameliorative,3 and antioxidant activities.4",
        "The objective is given by [1] as [formula] where the weight is fixed.",
        "Ours is new [2].",
        "and this paragraph, after a full stop, is not joined [3].",
        "we start a new section [4]."]
    assert list(df.sentence_id) == ["p:1.1", "p:1.2", "p:3.1", "p:5.1", "p:6.1", "p:7.1"]
    assert df.ref_keys.iloc[1] == "r2|r3|r4"


def test_joining_paragraphs_cut_mid_sentence_reads_each_paragraphs_end_once(monkeypatch):
    # A long run of broken paragraphs (table text, a list) must not be re-read as it grows: the cost is the text's
    # length, not paragraphs x text (counted, not timed).
    read = []
    ends = stage._ends_sentence
    monkeypatch.setattr(stage, "_ends_sentence", lambda par: read.append(len(par.text)) or ends(par))
    pieces = []
    for n in range(2000):
        text = f"item {n} of the list [{n}]"
        pieces.append(stage.Paragraph("S", text, [stage.Marker(text.index("["), len(text), [f"r{n}"])]))
    total = sum(len(p.text) for p in pieces)
    joined = stage.join_broken_paragraphs(pieces)
    assert len(joined) == 1 and joined[0].number == 1
    assert sum(read) <= total
    text = joined[0].text
    assert [text[m.start:m.end] for m in joined[0].markers[:2]] == ["[0]", "[1]"]
    assert text[joined[0].markers[-1].start:joined[0].markers[-1].end] == "[1999]"
    assert text.startswith("item 0 of the list [0] item 1 of the list [1] item 2")


def test_a_piece_that_starts_with_a_comma_goes_on_with_the_sentence_before_it(monkeypatch):
    # whatever cuts the segmenter makes, a piece that starts with "," ";" or ":" is no sentence of its own, and
    # one that starts with a full stop gives it to the sentence before
    from types import SimpleNamespace

    text = "The fit is tight (Smith et al., 2020), which we use [4]. It holds (Lee, 2019). Next."
    cuts = [0, text.index(", which"), text.index("It holds"), text.index(". Next"), len(text)]

    def analyze(_):
        return [[[SimpleNamespace(offset=a, value=text[a:b].rstrip())] for a, b in zip(cuts, cuts[1:])]]

    monkeypatch.setattr(stage.syntok_segmenter, "analyze", analyze)
    par = paragraph(text, "Smith et al., 2020", "[4]", "Lee, 2019")
    assert sentences_of(par) == ["The fit is tight (Smith et al., 2020), which we use [4].", "It holds (Lee, 2019).",
                                 "Next."]


def test_a_paragraph_opening_with_a_citation_group_alone_keeps_it_in_its_first_sentence():
    # syntok ends a sentence after "[11, Lemma 5.1]" and "[4, 5]" before a capital: a statement's source set
    # before it, with no sentence end after the group; the group opens the sentence that follows
    par = paragraph("[11, Lemma 5.1] Let X be a partially ordered set. It is finite.", "11")
    assert sentences_of(par) == ["[11, Lemma 5.1] Let X be a partially ordered set.", "It is finite."]
    par = paragraph("[4, 5] Every bounded sequence of reals has a limit point.", "4", "5")
    assert sentences_of(par) == ["[4, 5] Every bounded sequence of reals has a limit point."]
    par = paragraph("[Theorem 7.6(a) [66]] Let A be a positive definite matrix.", "[66]")
    assert sentences_of(par) == ["[Theorem 7.6(a) [66]] Let A be a positive definite matrix."]
    par = paragraph("[4]. Nothing more is said here.", "[4]")  # a full stop after the group ends it
    assert sentences_of(par) == ["[4].", "Nothing more is said here."]
