"""Stage 06 under faults: the real stage against the Crossref stand-in scripted to misbehave.

Each test is a fault that once lost data, poisoned the cache or hid the truth; every wait is milliseconds.
"""
from __future__ import annotations

import csv
import errno
import socket
import time

import pandas as pd
import pytest

from demo.standins import CrossrefStandIn, crossref_record
from helpers import load_stage
from test_06_crossref_doi import RECORDS, REFS, ref, run

stage = load_stage("06")


@pytest.fixture()
def crossref():
    with CrossrefStandIn(RECORDS, search_limit=40, lookup_limit=40, concurrency=4) as server:
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["oops", "list", "null_items"])
def test_a_200_of_the_wrong_shape_is_an_error_and_never_cached(tmp_path, crossref, kind):
    crossref.fail_next("/works", *[CrossrefStandIn.wrong_shape(kind)] * 2)
    _, report, refs = run(tmp_path, crossref, refs=REFS[:2], retries=1, concurrency=1)
    assert refs.loc["exact", "match_status"] == "error"
    assert "malformed answer" in refs.loc["exact", "note"]
    assert report["requests"]["malformed_answers"] == 2 and report["by_status"] == {"error": 1, "not_found": 1}
    # the service is healthy again: the rerun asks again (nothing bad was cached) and matches, no --refresh
    _, again, refs = run(tmp_path, crossref, refs=REFS[:2], retries=1)
    assert refs.loc["exact", "doi"] == "10.5555/twin.2020"
    assert again["answers_from_cache"] == 1  # only the good answer of the first run


def test_a_run_where_every_reference_failed_stops_and_keeps_the_old_output(tmp_path, crossref):
    cfg, _, _ = run(tmp_path, crossref, refs=REFS[:2])
    before = (cfg.output_dir / "references.csv").read_bytes()
    crossref.fail_next("/works", *([500] * 10))
    with pytest.raises(SystemExit, match="every one of the 2 references failed; last error: .*HTTP 500"):
        run(tmp_path, crossref, refs=REFS[:2], retries=0, refresh=True)
    assert (cfg.output_dir / "references.csv").read_bytes() == before


def test_a_work_record_of_the_wrong_shape_is_retried_then_used(tmp_path, crossref):
    crossref.fail_next("/works/10.5555", CrossrefStandIn.wrong_shape("title_not_list"))
    _, report, refs = run(tmp_path, crossref, refs=[REFS[4]], retries=2)
    assert (refs.loc["doi_ok", "doi"], refs.loc["doi_ok", "doi_source"]) == ("10.5555/sensors.2021", "xml")
    assert report["requests"]["malformed_answers"] == 1 and report["requests"]["retries"] == 1


def test_a_huge_retry_after_stops_the_stage_with_one_line_and_keeps_the_old_output(tmp_path, crossref):
    cfg, _, _ = run(tmp_path, crossref, refs=REFS[:2])
    before = (cfg.output_dir / "references.csv").read_bytes()
    crossref.fail_next("/works", CrossrefStandIn.retry_after(100000))
    began = time.monotonic()
    with pytest.raises(SystemExit, match=r"asks to wait 100,000 s .*--max-retry-after 300 s") as stop:
        run(tmp_path, crossref, refs=REFS[:3])
    assert time.monotonic() - began < 10
    assert "\n" not in str(stop.value) and "rerun the same command" in str(stop.value)
    assert (cfg.output_dir / "references.csv").read_bytes() == before


def test_a_retry_after_within_the_cap_is_obeyed_and_logged(tmp_path, crossref, capsys):
    crossref.fail_next("/works", CrossrefStandIn.retry_after(0.05))
    _, report, refs = run(tmp_path, crossref, refs=REFS[:1])
    assert refs.loc["exact", "doi"] == "10.5555/twin.2020"
    assert report["requests"]["rate_limited_429"] == 1
    assert "waiting 0.05 s as its Retry-After asks" in capsys.readouterr().err
    # the cap is a setting: the same wait past a cap of 10 ms stops the stage
    crossref.fail_next("/works", CrossrefStandIn.retry_after(0.05))
    with pytest.raises(SystemExit, match="more than --max-retry-after 0.01 s"):
        run(tmp_path / "capped", crossref, refs=REFS[1:2], max_retry_after=0.01)


def test_an_unreachable_service_stops_at_once_with_one_line(tmp_path, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    with pytest.raises(SystemExit, match=r"does not answer .*check the network or --base-url") as stop:
        run(tmp_path, type("Dead", (), {"url": dead})(), refs=REFS, retries=4, backoff_seconds=1.0)
    assert time.monotonic() - began < 5  # not 4 retries x 8 references x back-off
    assert "\n" not in str(stop.value)
    assert "Crossref request failed" not in capsys.readouterr().err  # no per-reference warnings first


def test_a_fully_cached_rerun_needs_no_network(tmp_path):
    with CrossrefStandIn(RECORDS, search_limit=40, lookup_limit=40, concurrency=4) as server:
        cfg, first, _ = run(tmp_path, server)
    # the server is gone; every answer is in the cache under its URL
    again = stage.main(cfg)
    assert again["by_status"] == first["by_status"]
    assert again["answers_from_cache"] == first["requests"]["search"] + first["requests"]["lookup"]


def test_answers_of_one_base_url_never_answer_for_another(tmp_path, crossref):
    run(tmp_path, crossref, refs=REFS[:2])
    with CrossrefStandIn([], search_limit=40, lookup_limit=40, concurrency=4) as empty:
        _, report, refs = run(tmp_path, empty, refs=REFS[:2])
    assert report["answers_from_cache"] == 0 and len(empty.requests_to("/works")) == 2
    assert set(refs.match_status) == {"not_found"}  # the other server knows none of them


def test_a_doi_with_a_pipe_survives_every_list_cell(tmp_path):
    piped = crossref_record("10.5555/a|b.2020", "Fleet routing under uncertain weather windows", 2020,
                            [("Hansen", "Ida")], "Ocean Engineering Letters")
    refs = [ref("piped", "Fleet routing under uncertain weather windows", "2020", "Hansen, I"), REFS[0]]
    sentences = [{"paper_id": "p1", "sentence_id": "1", "section": "Intro", "sentence": "Routing [1, 2].",
                  "sentence_clean": "Routing.", "ref_keys": "b1|b2", "ref_uids": "piped|exact"}]
    with CrossrefStandIn(RECORDS + [piped], search_limit=40, lookup_limit=40, concurrency=4) as server:
        cfg, _, out = run(tmp_path, server, refs=refs, sentences=sentences)
    assert out.loc["piped", "doi"] == "10.5555/a|b.2020"
    cell = pd.read_csv(cfg.output_dir / "sentences.csv", dtype=str).loc[0, "dois"]
    assert stage.pu.split_list(cell) == ["10.5555/a|b.2020", "10.5555/twin.2020"]
    catalogue = pd.read_csv(cfg.output_dir / "catalogue.csv", dtype=str, keep_default_na=False)
    assert "10.5555/a|b.2020" in set(catalogue.doi)


def test_a_full_disk_while_writing_leaves_the_old_output(tmp_path, crossref, monkeypatch):
    cfg, _, _ = run(tmp_path, crossref)
    before = {p.name: p.read_bytes() for p in cfg.output_dir.iterdir() if p.is_file()}
    real_writerow = csv.DictWriter.writerow
    written = []

    def writerow(self, row):
        written.append(row)
        if len(written) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_writerow(self, row)

    monkeypatch.setattr(csv.DictWriter, "writerow", writerow)
    with pytest.raises(SystemExit, match="No space left on device; the previous output .* is unchanged"):
        stage.main(cfg)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in cfg.output_dir.iterdir() if p.is_file()}
    assert after == before
    assert not [p for p in cfg.output_dir.iterdir() if p.name.startswith(".")]  # no half-written leftovers


def test_the_error_rate_stop_looks_at_recent_references_not_the_whole_run(tmp_path):
    with CrossrefStandIn(RECORDS, search_limit=1000, concurrency=4) as crossref:
        recovering_then_failing(tmp_path, crossref)


def recovering_then_failing(tmp_path, crossref):
    many = [ref(f"r{i:02d}", f"Some unregistered title number {i} about ships", "2020", "Doe, J") for i in range(40)]
    # an early outage: the first 5 searches fail, then the service recovers
    crossref.fail_next("/works", *([500] * 5))
    _, report, _ = run(tmp_path, crossref, refs=many, retries=0, concurrency=1, error_window=10, search_rate=500.0)
    assert report["by_status"] == {"error": 5, "not_found": 35}  # 5/20 = 25% overall, but the last 10 were fine
    # an outage that lasts: stopped, with how to resume
    crossref.fail_next("/works", *([500] * 40))
    with pytest.raises(SystemExit, match=r"of the last 10 references failed .*rerun the same command to resume"):
        run(tmp_path, crossref, refs=[ref(f"s{i:02d}", f"Another unregistered title {i}", "2021", "Roe, K")
                                      for i in range(40)], retries=0, concurrency=1, error_window=10,
            search_rate=500.0)


def test_references_reach_the_pool_through_a_bounded_window_not_all_at_once(tmp_path, monkeypatch):
    many = [ref(f"r{i:03d}", f"An unregistered title number {i} on hull coatings", "2019", "Poe, E") for i in range(120)]
    read, submitted, ahead = [], [], []
    real_rows, real_resolve = stage.csv_rows, stage.resolve

    def counting_rows(path):
        read.clear()
        for row in real_rows(path):
            read.append(1)
            yield row

    def counting_resolve(reference, *args, **kwargs):
        submitted.append(1)
        ahead.append(len(read) - len(submitted))  # read from the file but not yet started
        return real_resolve(reference, *args, **kwargs)

    monkeypatch.setattr(stage, "csv_rows", counting_rows)
    monkeypatch.setattr(stage, "resolve", counting_resolve)
    with CrossrefStandIn(RECORDS, search_limit=1000, concurrency=4) as server:
        _, report, _ = run(tmp_path, server, refs=many, concurrency=2, search_rate=500.0)
    assert report["by_status"] == {"not_found": 120}
    assert max(ahead) <= 8 * 2  # the window: 8 x concurrency references held at once, whatever the input's length


def test_a_run_where_every_request_failed_exits_non_zero_even_when_some_references_needed_none(tmp_path, crossref):
    # an arXiv id and a reference with nothing to search settle without Crossref; the two that needed it
    # get a malformed reply to every request: nothing was decided, so the stage stops with one line,
    # however wide the error-rate window is and whatever rate it allows
    refs = [REFS[0], REFS[1], REFS[6], ref("empty", raw="")]
    crossref.fail_next("/works", *[CrossrefStandIn.wrong_shape("oops")] * 20)
    with pytest.raises(SystemExit, match=r"every one of the 2 references that needed Crossref failed \(2 others "
                                         r"needed no request\); last error: .*malformed answer"):
        run(tmp_path, crossref, refs=refs, retries=1, concurrency=1, error_window=1000, max_error_rate=1.0)
    assert not (tmp_path / "out" / "references.csv").exists()
