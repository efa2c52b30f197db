"""Stage 06 against a loopback Crossref stand-in that speaks /works and /works/{doi} with rate-limit headers."""
from __future__ import annotations

import csv
import json

import pandas as pd
import pytest

from demo.standins import CrossrefStandIn, crossref_record
from helpers import load_stage

stage = load_stage("06")

TWIN = crossref_record("10.5555/twin.2020", "Digital twins of ship propulsion systems for condition monitoring", 2020,
                       [("Taylor", "Nora"), ("Osei", "Kwame")], "Journal of Marine Engineering")
PORT_2019 = crossref_record("10.5555/port.2019", "Port call optimisation through shared arrival time data", 2019,
                            [("Olsen", "Henrik")], "Maritime Policy Review")
STATS_2015 = crossref_record("10.5555/stats.2015", "Review of maritime transport", 2015,
                             [("Nations", "United")], "", "report")
ED_2018 = crossref_record("10.5555/handbook.2018", "Handbook of ship navigation systems", 2018, [("Weintrit", "Adam")],
                          "", "book")
ED_2020 = crossref_record("10.5555/handbook.2020", "Handbook of ship navigation systems", 2020, [("Weintrit", "Adam")],
                          "", "book")
PILOT = crossref_record("10.5555/pilot.2022", "Remote pilotage and shore control centres: an operational assessment",
                        2022, [("Heikkila", "Anna"), ("Moreau", "Luc")], "Proc. MASS", "proceedings-article")
ERRATUM = crossref_record("10.5555/pilot.2022.err", "Erratum: Remote pilotage and shore control centres: an "
                          "operational assessment", 2022, [("Heikkila", "Anna")], "Proc. MASS")
SENSORS = crossref_record("10.5555/sensors.2021", "Ship performance monitoring with onboard sensor networks", 2021,
                          [("Fonseca", "Ines")], "Ocean Engineering Letters")
RECORDS = [TWIN, PORT_2019, STATS_2015, ED_2018, ED_2020, PILOT, ERRATUM, SENSORS]

REF_COLUMNS = ["ref_uid", "title", "year", "authors", "venue", "doi", "arxiv_id", "raw", "n_papers", "cited_as"]


def ref(uid, title="", year="", authors="", doi="", arxiv="", raw=None, venue=""):
    return {"ref_uid": uid, "title": title, "year": year, "authors": authors, "venue": venue, "doi": doi,
            "arxiv_id": arxiv, "raw": raw if raw is not None else f"{authors}. {title}. {venue}, {year}.",
            "n_papers": "1", "cited_as": f"p1:{uid}"}


REFS = [
    ref("exact", "Digital twins of ship propulsion systems for condition monitoring", "2020", "Taylor, N|Osei, K"),
    ref("other_year", "Port call optimisation through shared arrival time data", "2023", "Olsen, H"),
    ref("editions", "Handbook of ship navigation systems", "2019", "Weintrit, A"),
    ref("raw_only", raw="A. Heikkila and L. Moreau. Remote pilotage and shore control centres: an operational "
                        "assessment. In Proc. MASS, pages 12-21, 2022."),
    ref("doi_ok", "Ship performance monitoring with onboard sensor networks", "2021", "Fonseca, I",
        doi="10.5555/sensors.2021"),
    ref("doi_wrong", "Review of maritime transport", "2015", "Nations, U", doi="10.5555/twin.2020"),
    ref("arxiv", "Anomaly detection in AIS trajectories with recurrent autoencoders", "2022", "Riveiro, M",
        arxiv="2213.04417v2"),
    ref("unknown", "A study nobody registered with Crossref at all", "2018", "Nobody, A"),
    ref("arxiv_doi", "Large language models for maritime incident report analysis", "2023", "Okafor, C",
        doi="10.48550/arXiv.2313.01998v1"),
]


def write_input(d, refs=REFS, sentences=None):
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "references.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=REF_COLUMNS)
        w.writeheader()
        w.writerows(refs)
    sentences = sentences or [{"paper_id": "p1", "sentence_id": "p1:1", "section": "Intro",
                               "sentence": "Twins, sensors and pilots [1-3].", "sentence_clean": "Twins, sensors and pilots.",
                               "ref_keys": "ref1|ref2|ref3", "ref_uids": "raw_only|exact|doi_ok"},
                              {"paper_id": "p1", "sentence_id": "p1:2", "section": "Intro", "sentence": "x [4].",
                               "sentence_clean": "x.", "ref_keys": "ref4", "ref_uids": "unknown"}]
    with open(d / "sentences.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(sentences[0]))
        w.writeheader()
        w.writerows(sentences)


def run(tmp_path, server, **kw):
    write_input(tmp_path / "in", **{k: kw.pop(k) for k in ("refs", "sentences") if k in kw})
    defaults = dict(input_dir=tmp_path / "in", output_dir=tmp_path / "out", base_url=server.url,
                    mailto="tests@example.org", cache_path=tmp_path / "cache.sqlite", backoff_seconds=0.05,
                    timeout=5.0, search_rate=20.0, lookup_rate=20.0)
    cfg = stage.Config(**{**defaults, **kw})
    report = stage.main(cfg)
    refs = pd.read_csv(cfg.output_dir / "references.csv", dtype=str, keep_default_na=False).set_index("ref_uid")
    return cfg, report, refs


@pytest.fixture()
def crossref():
    # generous limits keep the tests fast; test_pacing_follows_the_announced_limits uses the real ones
    with CrossrefStandIn(RECORDS, search_limit=40, lookup_limit=40, concurrency=4) as server:
        yield server


def test_every_case_resolves_as_it_should(tmp_path, crossref):
    _, report, refs = run(tmp_path, crossref)
    assert refs.loc["exact", "doi"] == "10.5555/twin.2020"
    assert refs.loc["exact", "doi_source"] == "crossref" and refs.loc["exact", "match_status"] == "matched"
    assert float(refs.loc["exact", "title_similarity"]) == 1.0 and float(refs.loc["exact", "match_score"]) > 0
    # a near-identical title of a different year is rejected
    assert refs.loc["other_year", "match_status"] == "not_found" and refs.loc["other_year", "doi"] == ""
    assert "year 2019 vs 2023" in refs.loc["other_year", "note"]
    # two editions, 2018 and 2020, equally close to 2019: no DOI
    assert refs.loc["editions", "match_status"] == "ambiguous" and refs.loc["editions", "doi"] == ""
    # raw text only: found, and not confused with the erratum
    assert refs.loc["raw_only", "doi"] == "10.5555/pilot.2022"
    # a printed DOI that checks out, and one whose record is another work
    assert (refs.loc["doi_ok", "doi"], refs.loc["doi_ok", "doi_source"]) == ("10.5555/sensors.2021", "xml")
    assert refs.loc["doi_wrong", "doi"] == "10.5555/stats.2015"
    assert refs.loc["doi_wrong", "doi_source"] == "crossref"
    assert "printed DOI 10.5555/twin.2020 rejected" in refs.loc["doi_wrong", "note"]
    assert refs.loc["doi_wrong", "printed_doi"] == "10.5555/twin.2020"
    # arXiv: the DataCite DOI without version, no Crossref call
    assert (refs.loc["arxiv", "doi"], refs.loc["arxiv", "doi_source"]) == ("10.48550/arxiv.2213.04417", "arxiv")
    assert not [r for r in crossref.requests if "anomaly" in str(r.query).lower()]
    assert refs.loc["unknown", "match_status"] == "not_found"
    # a printed arXiv DataCite DOI is an arXiv id: no Crossref lookup, version dropped
    assert (refs.loc["arxiv_doi", "doi"], refs.loc["arxiv_doi", "doi_source"]) == ("10.48550/arxiv.2313.01998", "arxiv")
    assert not crossref.requests_to("/works/10.48550")
    assert report["by_status"] == {"matched": 6, "not_found": 2, "ambiguous": 1}
    assert crossref.rejected == 0


def test_sentence_with_three_references_keeps_all_three_dois_in_order(tmp_path, crossref):
    cfg, _, _ = run(tmp_path, crossref)
    s = pd.read_csv(cfg.output_dir / "sentences.csv", dtype=str, keep_default_na=False)
    assert s.loc[0, "dois"] == "10.5555/pilot.2022|10.5555/twin.2020|10.5555/sensors.2021"
    assert s.loc[1, "dois"] == ""


def test_requests_carry_mailto_select_and_user_agent(tmp_path, crossref):
    run(tmp_path, crossref)
    search = crossref.requests_to("/works")[0]
    searches = [r for r in crossref.requests if r.path == "/works"]
    assert all(r.query["mailto"] == ["tests@example.org"] for r in crossref.requests)
    assert all(r.query["select"] == [stage.SELECT] and "score" in r.query["select"][0] for r in searches)
    assert all("filter" not in r.query for r in searches)
    assert "doi-citation-pipeline" in search.headers["user-agent"] and "mailto:" in search.headers["user-agent"]


def test_429_then_success(tmp_path, crossref):
    crossref.fail_next("/works", 429)
    _, report, refs = run(tmp_path, crossref, refs=REFS[:1])
    assert refs.loc["exact", "doi"] == "10.5555/twin.2020"
    assert report["requests"]["rate_limited_429"] == 1


def test_timeout_is_retried_then_an_error_and_the_run_goes_on(tmp_path, crossref):
    crossref.fail_next("/works", ("sleep", 1.5), ("sleep", 1.5))
    _, report, refs = run(tmp_path, crossref, refs=REFS[:2], timeout=0.5, retries=1, concurrency=1)
    statuses = set(refs.match_status)
    assert "error" in statuses and "timed out" in refs[refs.match_status == "error"].note.iloc[0]
    assert report["by_status"]["error"] == 1 and len(refs) == 2


def test_server_errors_past_the_error_rate_stop_the_stage(tmp_path, crossref):
    many = [ref(f"r{i}", f"Some unregistered title number {i} about ships", "2020", "Doe, J") for i in range(25)]
    crossref.fail_next("/works", *([500] * 200))
    with pytest.raises(SystemExit, match="stopped: .* references failed"):
        run(tmp_path, crossref, refs=many, retries=0, max_error_rate=0.1, search_rate=100.0)


def test_rerun_is_answered_wholly_from_the_cache(tmp_path, crossref):
    cfg, first, _ = run(tmp_path, crossref)
    n = len(crossref.requests)
    second = stage.main(cfg)
    assert len(crossref.requests) == n
    assert second["requests"]["search"] == second["requests"]["lookup"] == 0
    assert second["requests"]["cache_hits"] == first["requests"]["search"] + first["requests"]["lookup"]
    assert second["by_status"] == first["by_status"]
    refreshed = stage.main(stage.Config(**{**cfg.__dict__, "refresh": True}))
    assert refreshed["requests"]["cache_hits"] == 0 and len(crossref.requests) > n


def test_pacing_follows_the_announced_limits(tmp_path):
    refs = [ref(f"r{i}", "Digital twins of ship propulsion systems for condition monitoring", "2020", "Taylor, N",
                venue=f"variant {i}") for i in range(8)]
    # the server allows 2 searches/s and 2 in flight; the client starts far too fast
    with CrossrefStandIn(RECORDS, search_limit=2, concurrency=2, latency=0.05) as server:
        _, report, out = run(tmp_path, server, refs=refs, search_rate=50.0, concurrency=4)
        assert set(out.doi) == {"10.5555/twin.2020"}
        assert server.max_in_flight["search"] <= 2
        # only the opening burst, sent before the first answer announced the limits, was refused
        # (4 sent at once, 2 admitted; a little slack for a loaded machine)
        assert server.rejected <= 5
    assert report["announced_limits"]["search"] == {"per_second": 2.0, "concurrency": 2}


def test_missing_mailto_warns(tmp_path, crossref, monkeypatch, capsys):
    monkeypatch.delenv("CROSSREF_MAILTO", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stage.pu, "REPO_ROOT", tmp_path)  # no .env of the developer's
    run(tmp_path, crossref, refs=REFS[:1], mailto="")
    assert "no CROSSREF_MAILTO set" in capsys.readouterr().err
    assert "mailto" not in crossref.requests[0].query


def test_mailto_comes_from_the_environment_and_is_never_printed(tmp_path, crossref, monkeypatch, capsys):
    monkeypatch.setenv("CROSSREF_MAILTO", "secret.person@example.org")
    _, report, _ = run(tmp_path, crossref, refs=REFS[:1], mailto="")
    assert crossref.requests[0].query["mailto"] == ["secret.person@example.org"]
    out = capsys.readouterr()
    assert "secret.person" not in out.out + out.err
    assert "secret.person" not in json.dumps(report)


def test_candidate_checks():
    cfg = stage.Config()
    r = {"title": "Handbook of ship navigation systems", "year": "2019", "authors": "Weintrit, A", "raw": ""}
    assert stage.check_candidate(r, ED_2018, cfg)[0]
    assert not stage.check_candidate({**r, "year": "2023"}, ED_2018, cfg)[0]
    assert not stage.check_candidate({**r, "authors": "Smith, J"}, ED_2018, cfg)[0]
    journal = {**ED_2018, "type": "journal"}
    assert stage.check_candidate(r, journal, cfg)[2] == "type journal"
    assert not stage.check_candidate({**r, "title": PILOT["title"][0], "authors": "Heikkila, A", "year": "2022"},
                                     ERRATUM, cfg)[0]


# --- hand fixes, the review sheet, the catalogue and the exports ------------------------------------------------

def write_overrides(path, text, encoding="utf-8-sig"):
    path.write_text(text, encoding=encoding)
    return path


def test_a_hand_fixed_doi_reaches_references_and_sentences(tmp_path, crossref):
    overrides = write_overrides(tmp_path / "doi_overrides.csv",
                                "ref_uid;doi;note\n"  # as a spreadsheet in a decimal-comma locale saves it
                                "unknown;https://doi.org/10.5555/PORT.2019;checked on the publisher's page\n"
                                "editions;10.5555/handbook.2018;\n"
                                "other_year;none;a later edition nobody registered\n"
                                "exact;not-a-doi;\n"
                                "nobody_has_this_uid;10.5555/x.1;\n")
    cfg, report, refs = run(tmp_path, crossref, overrides_path=overrides)
    assert (refs.loc["unknown", "doi"], refs.loc["unknown", "doi_source"]) == ("10.5555/port.2019", "manual")
    assert refs.loc["unknown", "match_status"] == "matched"
    assert "checked on the publisher" in refs.loc["unknown", "note"]
    assert refs.loc["editions", "doi"] == "10.5555/handbook.2018" and refs.loc["editions", "matched_year"] == "2018"
    assert (refs.loc["other_year", "doi"], refs.loc["other_year", "match_status"]) == ("", "excluded")
    # applied before any lookup: no search was sent for the hand-fixed references
    assert not [r for r in crossref.requests_to("/works") if "handbook" in str(r.query).lower()]
    # a row that is not a DOI is ignored (and counted); the reference is resolved as usual
    assert refs.loc["exact", "doi"] == "10.5555/twin.2020"
    assert report["overrides"] == {"applied": 3, "rows_ignored": 1, "unknown_ref_uids": 1}
    s = pd.read_csv(cfg.output_dir / "sentences.csv", dtype=str, keep_default_na=False)
    assert s.loc[1, "dois"] == "10.5555/port.2019"
    review = pd.read_csv(cfg.output_dir / "review.csv", dtype=str, keep_default_na=False)
    assert "editions" not in set(review.ref_uid) and "unknown" not in set(review.ref_uid)


def test_review_lists_ambiguous_and_not_found_references_with_their_best_candidates(tmp_path, crossref):
    cfg, _, _ = run(tmp_path, crossref)
    review = pd.read_csv(cfg.output_dir / "review.csv", dtype=str, keep_default_na=False).set_index("ref_uid")
    assert set(review.index) == {"other_year", "editions", "unknown"}
    assert list(review.reset_index().columns[:3]) == ["ref_uid", "match_status", "note"]
    assert review.loc["editions", "match_status"] == "ambiguous"
    assert {review.loc["editions", "candidate_1_doi"], review.loc["editions", "candidate_2_doi"]} == \
        {"10.5555/handbook.2018", "10.5555/handbook.2020"}
    assert review.loc["other_year", "candidate_1_doi"] == "10.5555/port.2019"
    assert review.loc["other_year", "candidate_1_why"] == "year 2019 vs 2023"


def test_catalogue_has_one_row_per_resolved_work_with_its_abstract(tmp_path):
    twin = {**TWIN, "abstract": "<jats:title>Abstract</jats:title><jats:p>Twins of <jats:italic>ship</jats:italic> "
                                "engines &amp; their sensors.</jats:p>"}
    duplicate = ref("exact_again", TWIN["title"][0], "2020", "Taylor, Nora")  # a dedup miss of stage 05
    duplicate["cited_as"] = "p2:b7"
    with CrossrefStandIn([twin] + RECORDS[1:], search_limit=40, lookup_limit=40, concurrency=4) as server:
        cfg, _, _ = run(tmp_path, server, refs=REFS + [duplicate])
    cat = pd.read_csv(cfg.output_dir / "catalogue.csv", dtype=str, keep_default_na=False).set_index("doi")
    assert list(cat.reset_index().columns) == stage.CATALOGUE_COLUMNS
    assert set(cat.index) == {"10.5555/twin.2020", "10.5555/pilot.2022", "10.5555/sensors.2021",
                              "10.5555/stats.2015", "10.48550/arxiv.2213.04417", "10.48550/arxiv.2313.01998"}
    twin_row = cat.loc["10.5555/twin.2020"]
    assert twin_row.abstract == "Twins of ship engines & their sensors."
    assert stage.pu.split_list(twin_row.authors) == ["Taylor, Nora", "Osei, Kwame"]
    assert (twin_row.year, twin_row.venue) == ("2020", "Journal of Marine Engineering")
    assert stage.pu.split_list(twin_row.cited_by_papers) == ["p1", "p2"]
    assert cat.loc["10.48550/arxiv.2213.04417", "venue"] == "arXiv"


def test_bibtex_parses_and_ris_holds_every_resolved_work(tmp_path):
    import bibtexparser

    odd = crossref_record("10.5555/odd_2019", "Ports & harbours: 100% of {Müller}'s $x_1$ review", 2019,
                          [("Müller", "Jörg")], "Maritime Policy & Management")
    refs = [ref("odd", "Ports & harbours: 100% of {Müller}'s $x_1$ review", "2019", "Müller, J")] + REFS
    with CrossrefStandIn(RECORDS + [odd], search_limit=40, lookup_limit=40, concurrency=4) as server:
        cfg, report, _ = run(tmp_path, server, refs=refs)
    library = bibtexparser.parse_file(str(cfg.output_dir / "references.bib"))
    assert not library.failed_blocks
    assert len(library.entries) == report["catalogue_works"] == 7
    by_doi = {e.fields_dict["doi"].value: e for e in library.entries}
    assert by_doi["10.5555/twin.2020"].entry_type == "article"
    assert by_doi["10.5555/pilot.2022"].entry_type == "inproceedings"
    assert by_doi["10.48550/arxiv.2213.04417"].fields_dict["eprint"].value == "2213.04417"
    assert r"Ports \& harbours: 100\% of \{Müller\}'s \$x\_1\$ review" in by_doi["10.5555/odd_2019"]["title"]
    assert len({e.key for e in library.entries}) == 7
    ris = (cfg.output_dir / "references.ris").read_text(encoding="utf-8")
    assert ris.count("TY  - ") == ris.count("ER  - ") == 7
    assert "DO  - 10.5555/odd_2019" in ris and "AU  - Müller, Jörg" in ris


def test_people_check_columns_first_and_every_run_records_provenance(tmp_path, crossref):
    cfg, report, _ = run(tmp_path, crossref)
    columns = list(pd.read_csv(cfg.output_dir / "references.csv", nrows=0).columns)
    assert columns[:5] == ["ref_uid", "match_status", "doi", "doi_source", "note"] and columns[-1] == "raw"
    assert (cfg.output_dir / "references.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # spreadsheets need the BOM
    run_json = json.loads((cfg.output_dir / "run.json").read_text())
    assert run_json["stage"] == "06_crossref_doi" and run_json["config"]["mailto"] == "***"
    assert any(p.endswith("references.csv") for p in run_json["inputs"])
    assert run_json["summary"]["by_status"] == report["by_status"]


def test_an_unregistered_near_miss_cited_as_raw_text_gets_no_doi(tmp_path, crossref):
    # one word differs from a registered title (a companion paper): as close as 0.94, still another work
    raw = ("N. Taylor and K. Osei. Digital twins of ship propulsion systems for corrosion monitoring. "
           "J. Mar. Eng., 2020.")
    _, _, refs = run(tmp_path, crossref, refs=[ref("companion", raw=raw)])
    assert refs.loc["companion", "doi"] == "" and refs.loc["companion", "match_status"] == "not_found"
    assert "a different word in the title (corrosion vs condition)" in refs.loc["companion", "note"]
