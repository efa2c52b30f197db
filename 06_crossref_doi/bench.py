"""Benchmark of stage 06: matching quality per threshold, and throughput against Crossref's polite-pool limits.

    .venv/bin/python 06_crossref_doi/bench.py                 # both parts
    .venv/bin/python 06_crossref_doi/bench.py --part quality
    .venv/bin/python 06_crossref_doi/bench.py --part speed --references 90
    .venv/bin/python 06_crossref_doi/bench.py --scale 10000,100000   # --backend snapshot: time, peak memory
    .venv/bin/python 06_crossref_doi/bench.py --realrefs ../shared/realrefs --api-sample 500 --api-rate 50

quality: a labelled set of references (true DOI, or "not in Crossref") built
from a generated Crossref corpus with hard negatives (same title other year,
short generic titles, translated titles, errata, book vs chapter, near-miss
titles of unregistered works) and realistic damage to the positives (typos,
dropped subtitles, missing years, initials, raw text only). The real stage runs
against the loopback stand-in once, then again from its cache for each title
threshold; precision, recall and F1 of `matched` are reported per threshold.

speed: the stand-in answers with 150 ms latency and enforces the polite pool's
limits (3 searches/s, 3 in flight; 10 lookups/s), announced in its headers. The
stage's achieved rate is reported as a fraction of the limit, with the requests
per distinct reference and the time of a fully cached rerun.

scale: a generated snapshot of N works and N references with known answers
(see write_scale_inputs); the stage runs as a subprocess with --backend snapshot
three times (loading the snapshot and matching; the same inputs again; one
sentence added, so that every reference is answered from the per-reference
cache), and prints the time and peak RSS of each (the child's own VmHWM), the first run's CPU
time (user + system: what the load of a shared machine does not inflate), precision,
recall and the 1-minute load average before and after, per size.

realrefs: real raw reference strings (GROBID from PubMed Central PDFs) with the
DOIs of their NLM records (../shared/realrefs; its build.py writes the snapshot,
with hard negatives, and stage-05 rows holding the raw text only). The snapshot
path runs on all of them (precision, recall against the NLM DOI, CPU per
reference); the API path runs through the Crossref stand-in serving the same
snapshot on a seeded sample (--api-sample, default 500) at --api-rate searches/s
(default Crossref's 3/s: 500 references take about 3 minutes; all 8,508 would
take 47), and both are printed side by side on that sample.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import pandas as pd  # noqa: E402

from demo.standins import CrossrefStandIn, crossref_record  # noqa: E402
from helpers import load_stage  # noqa: E402

stage = load_stage("06")

TOPICS = ["ship", "port", "vessel", "maritime", "container", "fleet", "harbour", "offshore", "navigation", "cargo",
          "shipping", "terminal", "berth", "ballast", "hull", "propulsion", "emission", "autonomous", "crew", "route"]
METHODS = ["optimisation", "simulation", "monitoring", "scheduling", "detection", "prediction", "assessment",
           "planning", "control", "classification", "analysis", "forecasting", "estimation", "design"]
QUALIFIERS = ["a review", "a case study", "evidence from Europe", "a data-driven approach", "lessons learned",
              "a survey", "an empirical study", "a machine learning approach", "a systems perspective"]
SURNAMES = ["Andersen", "Baker", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito", "Jensen", "Kim",
            "Larsen", "Müller", "Nakamura", "Olsen", "Petrov", "Quinn", "Rossi", "Silva", "Tanaka", "Urban", "Virtanen",
            "Wang", "Xu", "Yilmaz", "Zhou", "Novak", "Kowalski", "Smith", "Brown"]
GIVEN = ["Anna", "Björn", "Carlos", "Dana", "Emil", "Fatima", "Georg", "Hana", "Ivan", "Julia", "Kai", "Lena"]
VENUES = ["Maritime Policy & Management", "Ocean Engineering", "Transportation Research Part E",
          "Journal of Navigation", "WMU Journal of Maritime Affairs", "Maritime Economics & Logistics"]
GERMAN = {"ship": "Schiff", "ships": "Schiffe", "port": "Hafen", "ports": "Häfen", "vessel": "Fahrzeug",
          "vessels": "Fahrzeuge", "maritime": "maritime", "maritimes": "Seeverkehre", "container": "Behälter",
          "containers": "Behälter", "fleet": "Flotte", "fleets": "Flotten", "harbour": "Hafenbecken",
          "harbours": "Hafenbecken", "offshore": "küstenfern", "offshores": "Küstenferne", "navigation": "Navigation",
          "navigations": "Navigationen", "cargo": "Ladung", "cargos": "Ladungen", "shipping": "Schifffahrt",
          "shippings": "Schifffahrten", "terminal": "Umschlag", "terminals": "Umschlagplätze", "berth": "Liegeplatz",
          "berths": "Liegeplätze", "ballast": "Ballast", "ballasts": "Ballaste", "hull": "Rumpf", "hulls": "Rümpfe",
          "propulsion": "Antrieb", "propulsions": "Antriebe", "emission": "Emission", "emissions": "Emissionen",
          "autonomous": "autonom", "autonomouss": "autonome", "crew": "Besatzung", "crews": "Besatzungen",
          "route": "Route", "routes": "Routen", "optimisation": "Optimierung", "simulation": "Simulation",
          "monitoring": "Überwachung", "scheduling": "Terminplanung", "detection": "Erkennung",
          "prediction": "Vorhersage", "assessment": "Bewertung", "planning": "Planung", "control": "Steuerung",
          "classification": "Klassifikation", "analysis": "Untersuchung", "forecasting": "Prognose",
          "estimation": "Schätzung", "design": "Entwurf", "of": "von", "for": "für", "a": "eine", "review": "Übersicht",
          "case": "Fall", "study": "Studie", "evidence": "Belege", "from": "aus", "europe": "Europa",
          "data-driven": "datengetriebener", "approach": "Ansatz", "lessons": "Lehren", "learned": "gezogen",
          "survey": "Umfrage", "an": "eine", "empirical": "empirische", "machine": "maschinelles",
          "learning": "Lernen", "systems": "Systeme", "perspective": "Sicht"}


def make_title(rng: random.Random) -> str:
    words = [rng.choice(METHODS).capitalize(), "of", rng.choice(TOPICS), rng.choice(TOPICS) + "s", "for",
             rng.choice(TOPICS), rng.choice(METHODS)]
    return " ".join(words) + ": " + rng.choice(QUALIFIERS)


def typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(2, max(3, len(text) - 2))
    return text[:i] + text[i + 1:] if rng.random() < 0.5 else text[:i] + text[i] + text[i:]


def authors_of(rng: random.Random, n: int | None = None) -> list[tuple[str, str]]:
    return [(rng.choice(SURNAMES), rng.choice(GIVEN)) for _ in range(n or rng.randint(1, 4))]


def ref_row(uid, title, year, authors, venue="", doi="", raw=None) -> dict:
    names = "|".join(f"{f}, {g[0]}." for f, g in authors)
    raw_text = raw if raw is not None else (", ".join(f"{g[0]}. {f}" for f, g in authors) + f". {title}. {venue}, {year}.")
    return {"ref_uid": uid, "title": title, "year": str(year) if year else "", "authors": names, "venue": venue,
            "doi": doi, "arxiv_id": "", "raw": raw_text, "n_papers": "1", "cited_as": f"p:{uid}"}


def build_labelled_set(seed: int = 7) -> tuple[list[dict], list[dict], dict[str, str], dict[str, str]]:
    """(Crossref records, references, true DOI per ref_uid ('' = not in Crossref), case kind per ref_uid)."""
    rng = random.Random(seed)
    records, refs, truth, kind = [], [], {}, {}
    n = 0

    def add(case: str, row: dict, true_doi: str) -> None:
        refs.append(row)
        truth[row["ref_uid"]] = true_doi
        kind[row["ref_uid"]] = case

    # ordinary registered works, cited with realistic damage
    for i in range(160):
        title, year, au, venue = make_title(rng), rng.randint(1995, 2024), authors_of(rng), rng.choice(VENUES)
        doi = f"10.5555/bench.{i:04d}"
        records.append(crossref_record(doi, title, year, au, venue))
        damage = i % 8
        cited_title, cited_year, cited_au = title, year, au
        if damage == 1:
            cited_title = typo(title, rng)
        elif damage == 2:
            cited_title = title.split(":")[0]  # subtitle dropped
        elif damage == 3:
            cited_year = None
        elif damage == 4:
            cited_title = title.lower()
        elif damage == 5:
            cited_year = year + rng.choice([-1, 1])  # online-first vs print year
        row = ref_row(f"pos{i}", cited_title, cited_year, cited_au, venue)
        if damage == 6:
            row["title"] = ""  # the extractor found no title: raw text only
        if damage == 7:
            row["doi"] = doi  # DOI printed
        add(["clean", "typo", "no subtitle", "no year", "lower case", "year +-1", "raw only", "printed DOI"][damage],
            row, doi)
    # works not in Crossref whose titles are near misses of registered ones
    for i in range(40):
        base = records[rng.randrange(len(records))]
        words = base["title"][0].split()
        j = rng.randrange(0, 4)
        words[j] = rng.choice(METHODS).capitalize() if j == 0 else rng.choice(TOPICS)
        title = " ".join(words)
        if title == base["title"][0]:
            continue
        add("unregistered near miss", ref_row(f"near{i}", title, rng.randint(1995, 2024), authors_of(rng)), "")
    # the hardest negatives: unregistered follow-ups by the same authors, a year later, one word changed
    for i in range(30):
        base = records[rng.randrange(160)]
        words = base["title"][0].split()
        j = rng.choice([2, 3, 5, 6])
        replacement = rng.choice(TOPICS + [m.lower() for m in METHODS])
        if words[j].rstrip("s:") == replacement:
            continue
        words[j] = replacement + ("s" if words[j].endswith("s") else "") + (":" if words[j].endswith(":") else "")
        year = base["issued"]["date-parts"][0][0] + 1
        au = [(a["family"], a["given"]) for a in base["author"]]
        add("same authors, follow-up, unregistered", ref_row(f"follow{i}", " ".join(words), year, au), "")
    # heavy damage: OCR-like errors in several places, '&' for 'and', truncated
    for i in range(30):
        base = records[rng.randrange(160)]
        title = base["title"][0]
        for _ in range(rng.randint(2, 4)):
            title = typo(title, rng)
        if rng.random() < 0.5:
            title = title.replace(" for ", " for the ")
        au = [(a["family"], a["given"]) for a in base["author"]]
        add("heavy damage (2-4 typos)", ref_row(f"heavy{i}", title, base["issued"]["date-parts"][0][0], au),
            base["DOI"])
    # annual reports: same title, many years; one cited year is not registered
    for i in range(6):
        title, au = f"Review of {rng.choice(TOPICS)} transport {i}", [("Nations", "United")]
        for year in range(2015, 2021):
            records.append(crossref_record(f"10.5555/annual.{i}.{year}", title, year, au, "", "report"))
        add("same title, other years", ref_row(f"annual{i}", title, 2018, au), f"10.5555/annual.{i}.2018")
        add("same title, year not registered", ref_row(f"annualx{i}", title, 2023, au), "")
    # short generic titles
    for i, generic in enumerate(["Introduction", "Editorial", "Conclusions", "Preface", "Foreword", "Discussion"]):
        for k in range(3):
            records.append(crossref_record(f"10.5555/generic.{i}.{k}", generic, 2010 + k, authors_of(rng, 1),
                                           rng.choice(VENUES)))
        add("generic title, not registered", ref_row(f"generic{i}", generic, 2021, authors_of(rng, 1)), "")
    # translated titles: the translation is not registered
    for i in range(10):
        base = records[i]
        words = base["title"][0].lower().replace(":", "").split()
        title = " ".join(GERMAN.get(w, w) for w in words)
        add("translated title", ref_row(f"transl{i}", title, base["issued"]["date-parts"][0][0],
                                        [(a["family"], a["given"]) for a in base["author"]]), "")
    # errata: the erratum is registered next to the work
    for i in range(10):
        title, year, au = make_title(rng), rng.randint(2000, 2024), authors_of(rng)
        records.append(crossref_record(f"10.5555/work.{i}", title, year, au, rng.choice(VENUES)))
        records.append(crossref_record(f"10.5555/work.{i}.err", f"Erratum: {title}", year, au, rng.choice(VENUES)))
        add("work with an erratum", ref_row(f"errwork{i}", title, year, au), f"10.5555/work.{i}")
    for i in range(6):  # only the erratum is registered
        title, year, au = make_title(rng), rng.randint(2000, 2024), authors_of(rng)
        records.append(crossref_record(f"10.5555/onlyerr.{i}", f"Correction to: {title}", year, au, ""))
        add("only the erratum registered", ref_row(f"onlyerr{i}", title, year, au), "")
    # book and chapter
    for i in range(8):
        book, chapter, year, au = f"Handbook of {rng.choice(TOPICS)} {rng.choice(METHODS)} {i}", make_title(rng), \
            rng.randint(2000, 2024), authors_of(rng)
        records.append(crossref_record(f"10.5555/book.{i}", book, year, [("Editor", "Eva")], "", "edited-book"))
        records.append(crossref_record(f"10.5555/book.{i}.ch3", chapter, year, au, book, "book-chapter"))
        add("book chapter", ref_row(f"chapter{i}", chapter, year, au, book), f"10.5555/book.{i}.ch3")
        add("the book", ref_row(f"book{i}", book, year, [("Editor", "Eva")]), f"10.5555/book.{i}")
    # printed DOI that belongs to another work (a typo in the paper)
    for i in range(8):
        target = records[20 + i]
        other = records[60 + i]
        row = ref_row(f"wrongdoi{i}", target["title"][0], target["issued"]["date-parts"][0][0],
                      [(a["family"], a["given"]) for a in target["author"]], doi=other["DOI"])
        add("printed DOI of another work", row, target["DOI"])
    return records, refs, truth, kind


def write_refs(path: Path, refs: list[dict]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    cols = list(refs[0])
    with open(path / "references.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(refs)
    with open(path / "sentences.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["paper_id", "sentence_id", "sentence_clean", "ref_uids"])
        w.writeheader()
        w.writerow({"paper_id": "p", "sentence_id": "p:1", "sentence_clean": "x", "ref_uids": refs[0]["ref_uid"]})


def score(out: pd.DataFrame, truth: dict[str, str]) -> dict:
    tp = fp = fn = 0
    for uid, row in out.iterrows():
        true, got = truth[uid], row["doi"] if row["match_status"] == "matched" else ""
        if got and got == true:
            tp += 1
        elif got:
            fp += 1
        if true and got != true:
            fn += 1
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def quality() -> None:
    records, refs, truth, kind = build_labelled_set()
    n_pos = sum(1 for t in truth.values() if t)
    print(f"labelled set: {len(refs)} references ({n_pos} in Crossref, {len(refs) - n_pos} not), "
          f"stand-in holds {len(records)} records")
    with tempfile.TemporaryDirectory() as tmp, CrossrefStandIn(records, enforce=False) as server:
        tmp = Path(tmp)
        write_refs(tmp / "in", refs)
        base = dict(input_dir=tmp / "in", output_dir=tmp / "out", base_url=server.url, mailto="bench@example.org",
                    cache_path=tmp / "cache.sqlite", search_rate=200.0, lookup_rate=200.0, concurrency=4,
                    overrides_path=tmp / "no_overrides.csv")
        print(f"\n{'title threshold':>15} {'precision':>9} {'recall':>7} {'F1':>6} {'FP':>4} {'FN':>4}")
        rows = []
        for threshold in (0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.95, 0.98):
            cfg = stage.Config(**base, title_threshold=threshold, raw_threshold=threshold)
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                stage.main(cfg)
            out = pd.read_csv(tmp / "out" / "references.csv", dtype=str, keep_default_na=False).set_index("ref_uid")
            s = score(out, truth)
            rows.append((threshold, s, out))
            print(f"{threshold:15.2f} {s['precision']:9.3f} {s['recall']:7.3f} {s['f1']:6.3f} {s['fp']:4d} {s['fn']:4d}")
        default = stage.Config().title_threshold
        chosen = next(r for r in rows if abs(r[0] - default) < 1e-9)
        out = chosen[2]
        print(f"\nat the default threshold {default}: errors by case")
        for case in sorted(set(kind.values())):
            uids = [u for u, k in kind.items() if k == case]
            wrong = [u for u in uids if (out.loc[u, "doi"] if out.loc[u, "match_status"] == "matched" else "") != truth[u]]
            print(f"  {case:34} {len(uids) - len(wrong):3d}/{len(uids):<3d} right"
                  + (f"   e.g. {wrong[0]}: {out.loc[wrong[0], 'match_status']} {out.loc[wrong[0], 'note'][:70]}"
                     if wrong else ""))


def speed(n_refs: int) -> None:
    records, refs, truth, _ = build_labelled_set()
    positives = [r for r in refs if truth[r["ref_uid"]] and r["ref_uid"].startswith("pos")][:n_refs]
    with tempfile.TemporaryDirectory() as tmp, \
            CrossrefStandIn(records, search_limit=3, lookup_limit=10, concurrency=3, latency=0.15) as server:
        tmp = Path(tmp)
        write_refs(tmp / "in", positives)
        cfg = stage.Config(input_dir=tmp / "in", output_dir=tmp / "out", base_url=server.url,
                           mailto="bench@example.org", cache_path=tmp / "cache.sqlite",
                           overrides_path=tmp / "no_overrides.csv")
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            began = time.perf_counter()
            report = stage.main(cfg)
            elapsed = time.perf_counter() - began
            cached = time.perf_counter()
            stage.main(cfg)
            cached = time.perf_counter() - cached
        searches, lookups = report["requests"]["search"], report["requests"]["lookup"]
        print(f"\n{len(positives)} distinct references, stand-in latency 150 ms, limits 3 searches/s (3 in flight), "
              f"10 lookups/s, enforced")
        print(f"  {searches} searches + {lookups} lookups in {elapsed:.1f} s; 429s received: "
              f"{report['requests']['rate_limited_429']}; refused by the server: {server.rejected}")
        print(f"  searches: {report['achieved_per_second']['search']:.2f}/s = "
              f"{report['achieved_per_second']['search'] / 3:.0%} of the limit; max in flight "
              f"{server.max_in_flight['search']}")
        print(f"  requests per distinct reference: {(searches + lookups) / len(positives):.2f}")
        print(f"  cached rerun: {cached:.2f} s, {len(server.requests)} requests in all (none new)")


# ---------------------------------------------------------------------------
# scale: --backend snapshot on generated snapshots of 10k / 100k / 1M works
# ---------------------------------------------------------------------------

SYLLABLES = ["ka", "lo", "mi", "ne", "tra", "sor", "vel", "dun", "pri", "gas", "ton", "rel", "bi", "cu", "fen",
             "hal", "jor", "mas", "nid", "ost", "pel", "qua", "rin", "sta", "tul", "ver", "wol", "xen", "yar", "zed"]


def scale_vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    """27,000 pseudo-words with Zipf-like frequencies: key frequencies like real titles', not a 30-word toy."""
    words = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES]
    rng.shuffle(words)
    weights, total = [], 0.0
    for rank in range(len(words)):
        total += 1.0 / (rank + 10)
        weights.append(total)
    return words, weights


def write_scale_inputs(tmp: Path, n: int, seed: int = 11) -> dict[str, str]:
    """A Crossref-format snapshot of ``n`` works (5% registered follow-ups with one word changed) and ``n``
    references: 80% cite a snapshot work with damage (typo, lower case, no year, raw text only), 20% cite
    unregistered works (half of them near-misses of a registered title). Returns the true DOI per ref_uid."""
    import gzip
    import json

    rng = random.Random(seed)
    vocab, cum = scale_vocabulary(rng)
    (tmp / "in").mkdir(parents=True, exist_ok=True)
    truth: dict[str, str] = {}
    works = []  # (doi, title, year, surname) of the citable ones
    with gzip.open(tmp / "snapshot.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) as snap:
        i = 0
        while i < n:
            title = " ".join(rng.choices(vocab, cum_weights=cum, k=rng.randint(5, 9))).capitalize()
            year, surname = rng.randint(1990, 2024), rng.choice(SURNAMES)
            doi = f"10.5555/s.{i}"
            snap.write(json.dumps(crossref_record(doi, title, year, [(surname, rng.choice(GIVEN))],
                                                  rng.choice(VENUES))) + "\n")
            works.append((doi, title, year, surname))
            i += 1
            if rng.random() < 0.05 and i < n:  # a registered follow-up: same author, one word changed
                words = title.split()
                words[rng.randrange(len(words))] = rng.choice(vocab)
                snap.write(json.dumps(crossref_record(f"10.5555/s.{i}", " ".join(words), year + 1,
                                                      [(surname, "A")], rng.choice(VENUES))) + "\n")
                i += 1
    with open(tmp / "in" / "references.csv", "w", newline="", encoding="utf-8") as fh, \
            open(tmp / "in" / "sentences.csv", "w", newline="", encoding="utf-8") as sfh:
        writer = csv.DictWriter(fh, fieldnames=["ref_uid", "title", "year", "authors", "venue", "doi", "arxiv_id",
                                                "raw", "n_papers", "cited_as"])
        writer.writeheader()
        sentences = csv.writer(sfh)
        sentences.writerow(["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys",
                            "ref_uids"])
        for r in range(n):
            uid = f"r{r}"
            doi, title, year, surname = works[rng.randrange(len(works))]
            if r % 5 == 4:  # not registered: half near-misses of a registered title, half new titles
                if r % 10 == 4:
                    words = title.split()
                    words[rng.randrange(len(words))] = rng.choice(vocab)
                    title, year = " ".join(words), year + 1
                else:
                    title = " ".join(rng.choices(vocab, cum_weights=cum, k=rng.randint(5, 9))).capitalize()
                truth[uid] = ""
            else:
                truth[uid] = doi
            damage, cited_year, raw = r % 7, year, None
            if damage == 1:
                title = typo(title, rng)
            elif damage == 2:
                title = title.lower()
            elif damage == 3:
                cited_year = None
            row = ref_row(uid, title, cited_year, [(surname, "J")], "")
            if damage == 4:
                raw, row["title"] = row["raw"], ""
            writer.writerow(row)
            if r % 3 == 0:
                sentences.writerow([f"p{r // 30}", r, "Intro", f"Cited [{r}].", "Cited.", f"b{r}", uid])
    return truth


def own_peak_mb(pid: int) -> tuple[int, float, float]:
    """(exit status, peak RSS in MB, CPU seconds user + system) of a child, its VmHWM sampled until it exits.
    Not ``ru_maxrss``: the kernel counts the forked copy of this (large) process before the exec in it."""
    peak = 0.0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, peak, usage.ru_utime + usage.ru_stime
        try:
            with open(f"/proc/{pid}/status") as fh:
                hwm = next((line for line in fh if line.startswith("VmHWM:")), "")
            peak = max(peak, int(hwm.split()[1]) / 1024) if hwm else peak  # a high-water mark: only rises
        except OSError:
            pass
        time.sleep(0.1)


def scale(sizes: list[int]) -> None:
    import subprocess

    script = HERE / "crossref_doi.py"

    def load() -> str:
        return open("/proc/loadavg").read().split()[0]

    print(f"{'works=refs':>10} {'generate':>9} {'load+match':>11} {'CPU':>7} {'peak MB':>8} {'rerun':>7} {'peak MB':>8} "
          f"{'answers cached':>15} {'peak MB':>8} {'precision':>9} {'recall':>7} {'load avg':>10}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            load_before = load()
            began = time.perf_counter()
            truth = write_scale_inputs(tmp, n)
            generated = time.perf_counter() - began
            cmd = [sys.executable, str(script), "--backend", "snapshot", "--snapshot", str(tmp / "snapshot.jsonl.gz"),
                   "--input-dir", str(tmp / "in"), "--output-dir", str(tmp / "out"), "--cache-path",
                   str(tmp / "cache.sqlite"), "--overrides-path", str(tmp / "none.csv"), "--mailto", "b@example.org"]
            runs = []
            # 1: loads the snapshot and matches; 2: the same inputs again (the output stands, checked by content);
            # 3: one sentence added (the stage runs, every reference answered from the per-reference cache)
            for attempt in range(3):
                if attempt == 2:
                    with open(tmp / "in" / "sentences.csv", "a", encoding="utf-8") as fh:
                        fh.write("pX,sX,Intro,One more [1].,One more.,b0,r0\n")
                began = time.perf_counter()
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                status, peak, cpu = own_peak_mb(proc.pid)
                if status:
                    raise SystemExit(f"stage 06 failed at n={n} (status {status})")
                runs.append((time.perf_counter() - began, peak, cpu))
            tp = fp = fn = 0
            with open(tmp / "out" / "references.csv", encoding="utf-8-sig", newline="") as fh:
                for row in csv.DictReader(fh):
                    got, true = row["doi"], truth[row["ref_uid"]]
                    tp += bool(got) and got == true
                    fp += bool(got) and got != true
                    fn += bool(true) and got != true
        p, r = tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 0.0
        print(f"{n:>10,} {generated:8.1f}s {runs[0][0]:10.1f}s {runs[0][2]:6.1f}s {runs[0][1]:8.0f} {runs[1][0]:6.1f}s "
              f"{runs[1][1]:8.0f} "
              f"{runs[2][0]:14.1f}s {runs[2][1]:8.0f} {p:9.4f} {r:7.4f} {load_before:>4}->{load():<5}", flush=True)


# ---------------------------------------------------------------------------
# realrefs: real raw reference strings (GROBID from PMC PDFs) with their NLM DOIs, ../shared/realrefs
# ---------------------------------------------------------------------------

def printed_volume_and_page(raw: str, record: dict | None) -> bool:
    """Whether a record's volume and first page are both printed in a raw reference (the paper it names)."""
    import re

    if not record:
        return False
    numbers = set(re.findall(r"\d+", raw))
    volume = re.sub(r"\D", "", str(record.get("volume") or ""))
    page = (re.findall(r"\d+", str(record.get("page") or "").split("-")[0]) or [""])[0]
    return bool(volume and page) and volume in numbers and page in numbers


def score_realrefs(out_dir: Path, truth: dict[str, str], records: dict[str, dict], uids: set[str] | None = None) -> dict:
    """Precision and recall of stage 06's output against the NLM DOIs, with the disagreements split into
    those where the answer's volume and page are printed in the reference and the NLM record's are not
    (the NLM DOI names another paper: the set's own README warns of these) and the rest."""
    tp = fp = fn = 0
    status: dict[str, int] = {}
    nlm_suspect, others = [], []
    with open(out_dir / "references.csv", encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            if uids is not None and row["ref_uid"] not in uids:
                continue
            status[row["match_status"]] = status.get(row["match_status"], 0) + 1
            true, got = truth[row["ref_uid"]], row["doi"] if row["match_status"] == "matched" else ""
            tp += bool(got) and got == true
            if got and got != true:
                fp += 1
                answer_printed = printed_volume_and_page(row["raw"], records.get(got))
                nlm_printed = printed_volume_and_page(row["raw"], records.get(true))
                (nlm_suspect if answer_printed and not nlm_printed else others).append((row["ref_uid"], got, true))
            fn += bool(true) and got != true
    return {"n": sum(status.values()), "tp": tp, "fp": fp, "fn": fn, "by_status": status,
            "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 0.0,
            "fp_nlm_doi_suspect": nlm_suspect, "fp_other": others}


def realrefs(folder: Path, repeat: int, api_sample: int, api_rate: float, seed: int) -> None:
    """Both paths on the real set: --backend snapshot on every reference (a subprocess, timed), and the API
    path through the Crossref stand-in serving the same snapshot, on a seeded sample, paced at ``api_rate``."""
    import contextlib
    import gzip
    import io
    import json
    import logging
    import resource
    import subprocess

    source = folder / "references-dev.json.gz"
    if not (folder / "build.py").is_file() or not source.is_file():
        raise SystemExit(f"error: {folder} needs build.py and references-dev.json.gz (../shared/realrefs)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, str(folder / "build.py"), str(source), str(tmp / "set")], check=True,
                       stdout=subprocess.DEVNULL)
        with open(tmp / "set" / "truth.csv", encoding="utf-8", newline="") as fh:
            truth = {r["ref_uid"]: r["truth_doi"] for r in csv.DictReader(fh)}
        with gzip.open(tmp / "set" / "snapshot.jsonl.gz", "rt", encoding="utf-8") as fh:
            records = {w["DOI"].lower(): w for w in map(json.loads, fh)}
        print(f"realrefs: {len(truth):,} real raw references, snapshot of {len(records):,} distinct DOIs (NLM records + "
              f"hard negatives), built by {folder / 'build.py'}")
        script = HERE / "crossref_doi.py"
        timings = []
        for attempt in range(repeat):
            run_dir = tmp / f"snap{attempt}"
            cmd = [sys.executable, str(script), "--backend", "snapshot", "--snapshot", str(tmp / "set" / "snapshot.jsonl.gz"),
                   "--input-dir", str(tmp / "set" / "in"), "--output-dir", str(run_dir / "out"), "--cache-path",
                   str(run_dir / "cache.sqlite"), "--overrides-path", str(tmp / "none.csv"), "--mailto", "b@example.org"]
            load_before = open("/proc/loadavg").read().split()[0]
            cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - began
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
            timings.append((wall, cpu, load_before, open("/proc/loadavg").read().split()[0]))
        snap = score_realrefs(tmp / "snap0" / "out", truth, records)
        n = snap["n"]
        walls, cpus = sorted(t[0] for t in timings), sorted(t[1] for t in timings)
        print(f"\nsnapshot path, all {n:,} references (first run: loads the snapshot, then matches; {repeat} run(s)):")
        print(f"  precision {snap['precision']:.4f}  recall {snap['recall']:.4f}  (tp {snap['tp']}, fp {snap['fp']}, "
              f"fn {snap['fn']})  {snap['by_status']}")
        print(f"  wall {walls[len(walls) // 2]:.1f} s (runs {', '.join(f'{t[0]:.1f}' for t in timings)}), CPU "
              f"{cpus[len(cpus) // 2]:.1f} s = {1000 * cpus[len(cpus) // 2] / n:.2f} ms CPU per reference (median; "
              f"includes the interpreter's start and loading the snapshot); load average "
              f"{', '.join(f'{t[2]}->{t[3]}' for t in timings)}")
        print(f"  'wrong' by the NLM DOI: {snap['fp']}, of which {len(snap['fp_nlm_doi_suspect'])} name the paper "
              "whose volume and first page the reference prints while the NLM record's are not printed")
        for uid, got, true in snap["fp_other"][:10]:
            print(f"    other: {uid} answered {got}, NLM {true}")

        if api_sample <= 0:
            return
        rng = random.Random(seed)
        sample = set(rng.sample(sorted(truth), min(api_sample, len(truth))))
        api_in = tmp / "api_in"
        api_in.mkdir()
        for name, column in (("references.csv", "ref_uid"), ("sentences.csv", "ref_uids")):
            with open(tmp / "set" / "in" / name, encoding="utf-8", newline="") as fh, \
                    open(api_in / name, "w", encoding="utf-8", newline="") as out:
                reader = csv.DictReader(fh)
                writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
                writer.writeheader()
                writer.writerows(r for r in reader if r[column] in sample)
        limit = max(1, int(api_rate))
        with CrossrefStandIn.from_snapshot(tmp / "set" / "snapshot.jsonl.gz", search_limit=limit,
                                           lookup_limit=limit, concurrency=3) as server:
            cfg = stage.Config(input_dir=api_in, output_dir=tmp / "api_out", base_url=server.url,
                               mailto="bench@example.org", cache_path=tmp / "api_cache.sqlite",
                               overrides_path=tmp / "none.csv", search_rate=api_rate, lookup_rate=api_rate)
            stage.pu.setup_logging()
            logging.getLogger("pipeline").setLevel(logging.ERROR)
            began = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                report = stage.main(cfg)
            elapsed = time.perf_counter() - began
        api = score_realrefs(tmp / "api_out", truth, records)
        same = score_realrefs(tmp / "snap0" / "out", truth, records, uids=sample)
        print(f"\nAPI path through the Crossref stand-in serving the snapshot (rapidfuzz relevance, not Crossref's "
              f"Elasticsearch), a seeded sample of {len(sample)} (seed {seed}), paced at {api_rate:g} searches/s "
              f"(the stand-in announces and enforces it; Crossref's polite pool is 3/s):")
        print(f"  {'path':9} {'precision':>9} {'recall':>7} {'fp':>4} {'fn':>4}  by status")
        for name, s in (("snapshot", same), ("api", api)):
            print(f"  {name:9} {s['precision']:9.4f} {s['recall']:7.4f} {s['fp']:4d} {s['fn']:4d}  {s['by_status']}")
        print(f"  api: {report['requests']['search']} searches in {elapsed:.1f} s "
              f"({report['achieved_per_second']['search']:.1f}/s), 429s {report['requests']['rate_limited_429']}; "
              f"'wrong' by the NLM DOI {api['fp']}, of which {len(api['fp_nlm_doi_suspect'])} name the printed paper")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["quality", "speed", "both"], default="both")
    parser.add_argument("--references", type=int, default=60, help="references in the speed run")
    parser.add_argument("--scale", nargs="?", const="10000,100000", default=None,
                        help="snapshot backend at these sizes (comma-separated; bare --scale: 10000,100000)")
    parser.add_argument("--realrefs", type=Path, default=None,
                        help="real raw references: the folder holding build.py and references-dev.json.gz "
                             "(../shared/realrefs); both paths, side by side")
    parser.add_argument("--repeat", type=int, default=3, help="snapshot-path runs on the real set (timing median)")
    parser.add_argument("--api-sample", type=int, default=500,
                        help="references of the real set sent through the API path (seeded sample; 0: none)")
    parser.add_argument("--api-rate", type=float, default=3.0,
                        help="searches/s the stand-in announces and enforces on the real set's API path "
                             "(Crossref's polite pool: 3; raise it to finish sooner)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the API path's sample")
    args = parser.parse_args()
    if args.realrefs:
        realrefs(args.realrefs, args.repeat, args.api_sample, args.api_rate, args.seed)
        return 0
    if args.scale:
        scale([int(x) for x in args.scale.split(",")])
        return 0
    stage.pu.setup_logging()
    import logging

    logging.getLogger("pipeline").setLevel(logging.ERROR)
    if args.part in ("quality", "both"):
        quality()
    if args.part in ("speed", "both"):
        speed(args.references)
    return 0


if __name__ == "__main__":
    sys.exit(main())
