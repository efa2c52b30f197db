"""Stage 06 with --backend snapshot: references matched against a local metadata snapshot in DuckDB."""
from __future__ import annotations

import gzip
import json
import socket

import pytest

from demo.standins import CrossrefStandIn
from helpers import load_stage
from test_06_crossref_doi import PILOT, RECORDS, REFS, ref, run

stage = load_stage("06")
snapshot_index = __import__("snapshot_index")  # on sys.path once stage 06 is loaded


def dead_service():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return type("Dead", (), {"url": f"http://127.0.0.1:{port}"})()


def as_openalex(record: dict, n: int) -> dict:
    """The same work as an OpenAlex works-snapshot line."""
    words = "Twins of ship engines".split()
    return {"id": f"https://openalex.org/W{n}", "doi": f"https://doi.org/{record['DOI']}",
            "title": record["title"][0], "display_name": record["title"][0],
            "publication_year": record["issued"]["date-parts"][0][0], "type": "article",
            "type_crossref": record["type"],
            "authorships": [{"author": {"display_name": f"{a['given']} {a['family']}"}} for a in record["author"]],
            "primary_location": {"source": {"display_name": (record["container-title"] or [None])[0]}},
            "abstract_inverted_index": {w: [i] for i, w in enumerate(words)}, "cited_by_count": 3}


def write_snapshot(path, records, fmt="crossref"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for n, record in enumerate(records):
            line = as_openalex(record, n) if fmt == "openalex" else {**record, "reference-count": 12,
                                                                      "indexed": {"date-parts": [[2024, 1, 1]]}}
            fh.write(json.dumps(line) + "\n")
        fh.write("not json at all\n")
        fh.write(json.dumps({"DOI": "10.5555/bad", "title": "a string, not a list", "author": [None]}) + "\n")
    return path


@pytest.mark.parametrize("fmt", ["crossref", "openalex"])
def test_a_snapshot_resolves_every_case_as_the_api_does_without_any_network(tmp_path, fmt):
    snap = write_snapshot(tmp_path / "snap" / "part_000.gz", RECORDS, fmt)
    _, report, refs = run(tmp_path, dead_service(), backend="snapshot", snapshot=snap.parent)
    assert (refs.loc["exact", "doi"], refs.loc["exact", "doi_source"]) == ("10.5555/twin.2020", "snapshot")
    assert refs.loc["other_year", "match_status"] == "not_found"
    assert "year 2019 vs 2023" in refs.loc["other_year", "note"]
    assert refs.loc["editions", "match_status"] == "ambiguous"
    assert refs.loc["raw_only", "doi"] == "10.5555/pilot.2022"  # raw text only, not confused with the erratum
    assert (refs.loc["doi_ok", "doi"], refs.loc["doi_ok", "doi_source"]) == ("10.5555/sensors.2021", "xml")
    assert refs.loc["doi_wrong", "doi"] == "10.5555/stats.2015"
    assert refs.loc["unknown", "match_status"] == "not_found"
    assert report["by_status"] == {"matched": 6, "not_found": 2, "ambiguous": 1}
    assert report["snapshot"]["works"] == len(RECORDS) and report["snapshot"]["skipped_lines"] == 2


def test_the_loaded_database_is_reused_by_the_next_run(tmp_path):
    snap = write_snapshot(tmp_path / "snap.jsonl.gz", RECORDS)
    cfg, first, _ = run(tmp_path, dead_service(), backend="snapshot", snapshot=snap)
    assert first["snapshot"]["loaded_works"] == len(RECORDS)
    assert (tmp_path / "snapshot.duckdb").is_file()  # beside the answer cache
    second = stage.main(cfg)
    assert second["snapshot"]["loaded_works"] == 0 and second["by_status"] == first["by_status"]
    # and without --snapshot at all, the database alone is enough
    third = stage.main(stage.Config(**{**cfg.__dict__, "snapshot": None}))
    assert third["by_status"] == first["by_status"]


def test_a_truncated_gzip_loads_the_works_before_the_damage(tmp_path, capsys):
    many = [{**RECORDS[i % len(RECORDS)], "DOI": f"10.5555/filler.{i}", "title": [f"Filler work number {i}"]}
            for i in range(3000)]
    snap = write_snapshot(tmp_path / "snap.gz", RECORDS + many)
    data = snap.read_bytes()
    snap.write_bytes(data[: len(data) * 2 // 3])
    _, report, refs = run(tmp_path, dead_service(), backend="snapshot", snapshot=snap)
    assert report["snapshot"]["truncated_files"] == 1
    assert len(RECORDS) < report["snapshot"]["works"] < len(RECORDS) + len(many)
    assert refs.loc["exact", "doi"] == "10.5555/twin.2020"  # the records before the damage are used
    assert "is damaged after line" in capsys.readouterr().err


def test_an_interrupted_load_resumes_where_it_stopped(tmp_path, monkeypatch):
    snap = write_snapshot(tmp_path / "snap.gz", RECORDS)
    real = snapshot_index.crossref_shaped
    calls = []

    def interrupted(work):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(work)

    monkeypatch.setattr(snapshot_index, "crossref_shaped", interrupted)
    index = snapshot_index.SnapshotIndex(tmp_path / "snap.duckdb")
    with pytest.raises(KeyboardInterrupt):
        index.load(snap, batch=2, progress=False)
    index.close()
    monkeypatch.undo()
    index = snapshot_index.SnapshotIndex(tmp_path / "snap.duckdb")
    stats = index.load(snap, batch=2, progress=False)
    assert stats["loaded_works"] == len(RECORDS) - 4  # two batches of two were committed before the interrupt
    assert index.con.execute("SELECT count(*), count(DISTINCT doi) FROM works").fetchone() == (len(RECORDS),) * 2
    index.close()


def test_snapshot_then_api_asks_the_api_only_for_what_the_snapshot_cannot_settle(tmp_path):
    snap = write_snapshot(tmp_path / "snap.gz", [r for r in RECORDS if r is not PILOT])
    with CrossrefStandIn(RECORDS, search_limit=40, lookup_limit=40, concurrency=4) as server:
        _, report, refs = run(tmp_path, server, backend="snapshot+api", snapshot=snap)
        searched = sorted(r.query["query.bibliographic"][0][:12] for r in server.requests_to("/works")
                          if r.path == "/works")
    assert (refs.loc["raw_only", "doi"], refs.loc["raw_only", "doi_source"]) == ("10.5555/pilot.2022", "crossref")
    assert refs.loc["exact", "doi_source"] == "snapshot"
    # the two the snapshot could not settle (and the one nobody registered) went to the API; nothing else
    assert searched == sorted(["A. Heikkila ", "Port call op", "A study nobo"])
    assert report["by_source"]["snapshot"] == 2 and report["by_status"]["matched"] == 6


def counting_resolve(monkeypatch):
    """Count the references the stage actually matches (not answered from a cache)."""
    calls = []
    real = stage.resolve

    def counted(ref, *args, **kwargs):
        calls.append(ref["ref_uid"])
        return real(ref, *args, **kwargs)

    monkeypatch.setattr(stage, "resolve", counted)
    return calls


def test_a_rerun_on_unchanged_inputs_keeps_the_output_without_matching_again(tmp_path, monkeypatch):
    snap = write_snapshot(tmp_path / "snap.gz", RECORDS)
    cfg, first, _ = run(tmp_path, dead_service(), backend="snapshot", snapshot=snap)
    before = {p.name: p.read_bytes() for p in cfg.output_dir.glob("*.csv")}
    calls = counting_resolve(monkeypatch)
    again = stage.main(cfg)
    assert calls == [] and again["unchanged_since_last_run"] is True
    assert again["by_status"] == first["by_status"] and again["snapshot"]["loaded_works"] == 0
    assert {p.name: p.read_bytes() for p in cfg.output_dir.glob("*.csv")} == before
    # an output edited by hand is not trusted: the stage runs again (every answer from its cache)
    (cfg.output_dir / "references.csv").write_text("edited\n")
    third = stage.main(cfg)
    assert "unchanged_since_last_run" not in third and calls == []
    assert third["snapshot"]["answers_from_cache"] == len(REFS)
    assert {p.name: p.read_bytes() for p in cfg.output_dir.glob("*.csv")} == before


def test_answers_are_reused_per_reference_and_only_new_references_are_matched(tmp_path, monkeypatch):
    snap = write_snapshot(tmp_path / "snap.gz", RECORDS)
    cfg, first, refs = run(tmp_path, dead_service(), backend="snapshot", snapshot=snap)
    assert first["snapshot"]["answers_from_cache"] == 0
    calls = counting_resolve(monkeypatch)
    new = ref("new", "Ship performance monitoring with onboard sensor networks", "2021", "Fonseca, I")
    _, second, again = run(tmp_path, dead_service(), backend="snapshot", snapshot=snap, refs=REFS + [new])
    assert calls == ["new"] and second["snapshot"]["answers_from_cache"] == len(REFS)
    assert again.loc["new", "doi"] == "10.5555/sensors.2021"
    assert again.drop(index="new").equals(refs)  # the cached answers give the same rows
    # a setting of the checks is part of the key: every reference is decided again
    calls.clear()
    run(tmp_path, dead_service(), backend="snapshot", snapshot=snap, refs=REFS + [new], title_threshold=0.95)
    assert len(calls) == len(REFS) + 1
    # and --force decides everything again
    calls.clear()
    run(tmp_path, dead_service(), backend="snapshot", snapshot=snap, refs=REFS + [new], force=True)
    assert len(calls) == len(REFS) + 1


def test_a_database_from_the_older_layout_is_refused_with_the_fix(tmp_path):
    import duckdb

    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("CREATE TABLE works (doi VARCHAR, year INTEGER, record VARCHAR)")
    con.close()
    with pytest.raises(SystemExit, match="older version of stage 06; delete it"):
        snapshot_index.SnapshotIndex(tmp_path / "old.duckdb")
