"""Round 34 (issue #25, branch r34prec): precision of both routes over the earlier rounds' held-out sets, read
link by link. Each test writes the case it pins (a source folder, stage 04's CSVs) itself."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_pairs_classes import exponent_paper, right_edge  # noqa: E402
from test_03_builtin_real_classes import xml_of  # noqa: E402

JUDGE = REPO.parent / "shared" / "realtex" / "judge"
needs_judge = pytest.mark.skipif(not (JUDGE / "truth.py").is_file(), reason="../shared/realtex/judge is not here")


def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "03_cermine_extract" / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _judge():
    if str(JUDGE) not in sys.path:
        sys.path.insert(0, str(JUDGE))
    import check

    return check


# ---------------------------------------------------------------------------------------------------------
# A bibliography typed inline: the judge's truth.bibliography reads \bibitem entries from .bbl files only
# ---------------------------------------------------------------------------------------------------------

BODY = (r"\documentclass{iopart}" "\n" r"\begin{document}" "\n"
        r"Ion cyclotron emission was reported first in TFTR\cite{cauffman1995} and then in JET\cite{cottrell1993}."
        "\n\n" r"The doublets split by a drift of the energetic ions across the field\cite{fulop1998}." "\n"
        r"\input{References}" "\n" r"\end{document}" "\n")
REFS = (r"\begin{thebibliography}{9}" "\n"
        r"\bibitem{cauffman1995} Cauffman S, Majeski R, McClements K G and Dendy R O 1995 Alfvenic behaviour of "
        r"alpha particle driven ion cyclotron emission Nucl. Fusion 35 1597" "\n"
        r"\bibitem{cottrell1993} Cottrell G A et al 1993 Ion cyclotron emission measurements during JET "
        r"deuterium tritium experiments Nucl. Fusion 33 1365" "\n"
        r"\bibitem{fulop1998} F\"ul\"op T and Lisak M 1998 Ion cyclotron emission from fusion products and beam "
        r"ions in the tokamak edge Nucl. Fusion 38 761" "\n"
        r"\end{thebibliography}" "\n")
SENTENCES = [("Ion cyclotron emission was reported first in TFTR[1] and then in JET[2].", "ref1|ref2"),
             ("The doublets split by a drift of the energetic ions across the field[3].", "ref3")]
RAWS = {"ref1": "Cauffman S, Majeski R, McClements K G and Dendy R O 1995 Alfvenic behaviour of alpha particle "
                "driven ion cyclotron emission Nucl. Fusion 35 1597",
        "ref2": "Cottrell G A et al 1993 Ion cyclotron emission measurements during JET deuterium tritium "
                "experiments Nucl. Fusion 33 1365",
        "ref3": "Fulop T and Lisak M 1998 Ion cyclotron emission from fusion products and beam ions in the tokamak "
                "edge Nucl. Fusion 38 761"}


def _inline_paper(tmp_path: Path, keys_as_source: bool) -> tuple[Path, Path]:
    """A paper whose thebibliography sits in an \\input file beside an empty, stale .bbl (what the author's
    folder held), and stage 04's CSVs of it: reference keys the source's own (the LaTeX route) or the PDF's
    ``refN`` (the built-in backend)."""
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "main.tex").write_text(BODY)
    (paper / "References.tex").write_text(REFS)
    (paper / "main.bbl").write_text("")
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    rename = dict(zip(RAWS, ("cauffman1995", "cottrell1993", "fulop1998"))) if keys_as_source else {}
    pd.DataFrame([{"sentence": s, "ref_keys": "|".join(rename.get(k, k) for k in keys.split("|"))}
                  for s, keys in SENTENCES]).to_csv(csv_dir / "p.sentences.csv", index=False)
    pd.DataFrame([{"ref_key": rename.get(k, k), "raw": raw, "title": "", "authors": "", "year": ""}
                  for k, raw in RAWS.items()]).to_csv(csv_dir / "p.references.csv", index=False)
    return paper, csv_dir


@needs_judge
def test_latex_bench_names_links_of_a_bibliography_the_judge_does_not_read(tmp_path):
    """sims-jhep (its thebibliography \\input from References.tex, an empty .bbl beside it), ice-doublet-iop,
    nzmodes-aastex7, galconv-aastex63, esqme-snjnl, vlasov-els, hedonic-ecta: the judge reads \\bibitem entries
    from .bbl files only, has no entry for any key, and counts every link wrong. They are a class of their own,
    one no output can get right, left out of our diagnosis; every link of this paper is right by the source."""
    _judge()
    bench = _load("bench_latex_r34", "bench_latex.py")
    paper, csv_dir = _inline_paper(tmp_path, keys_as_source=True)
    assert set(bench.inline_bibliography(paper, "main.tex")) == {"cauffman1995", "cottrell1993", "fulop1998"}
    refused = bench.classify_refused(paper, "main.tex", csv_dir, "p")
    assert len(refused) == 3
    assert {x["class"] for x in refused} == {"bibliography the judge does not read"}
    assert "bibliography the judge does not read" in bench.UNJUDGEABLE
    assert bench.REFUSED_CLASSES.index("bibliography the judge does not read") < bench.REFUSED_CLASSES.index("other")
    # a link of such a paper that is wrong by the inline entry is not the judge's: it stays for the tests after
    sents = pd.read_csv(csv_dir / "p.sentences.csv", dtype=str)
    sents.loc[1, "ref_keys"] = "cauffman1995"  # the drift sentence linked to the TFTR entry
    sents.to_csv(csv_dir / "p.sentences.csv", index=False)
    refused = bench.classify_refused(paper, "main.tex", csv_dir, "p")
    assert [x["class"] for x in refused if x["sentence"].startswith("The doublets")] == ["other"]
    # one that the judge's rule for the sentence refuses is classed by where its \cite stands, as any other
    (paper / "main.tex").write_text(BODY.replace("The doublets split", "Examples: \\cite{cottrell1993}.\n\nThe doublets split"))
    sents = pd.concat([sents, pd.DataFrame([{"sentence": "Examples: [2].", "ref_keys": "cottrell1993"}])])
    sents.to_csv(csv_dir / "p.sentences.csv", index=False)
    refused = bench.classify_refused(paper, "main.tex", csv_dir, "p")
    assert [x["class"] for x in refused if x["sentence"] == "Examples: [2]."] == ["bare citation"]


@needs_judge
def test_latex_bench_keeps_a_wrong_link_of_an_entry_the_judge_reads_out_of_that_class(tmp_path):
    """The class is the judge's only where the entry is one it does not read: with the bibliography in a .bbl
    the judge reads it, and a link to the wrong entry stays a link the judge refuses for another reason."""
    _judge()
    bench = _load("bench_latex_r34", "bench_latex.py")
    paper, csv_dir = _inline_paper(tmp_path, keys_as_source=True)
    (paper / "main.bbl").write_text(REFS)
    (paper / "References.tex").write_text("")
    sents = pd.read_csv(csv_dir / "p.sentences.csv", dtype=str)
    sents.loc[1, "ref_keys"] = "cauffman1995"  # the drift sentence linked to the TFTR entry: wrong
    sents.to_csv(csv_dir / "p.sentences.csv", index=False)
    refused = bench.classify_refused(paper, "main.tex", csv_dir, "p")
    assert [x["ref_key"] for x in refused] == ["cauffman1995"]
    assert refused[0]["class"] != "bibliography the judge does not read"


@needs_judge
def test_pairs_judge_reads_an_inline_bibliography(tmp_path):
    """bench.py --pairs judges the PDF compiled from such a source by the source's keys: the entries the PDF
    prints are the inline thebibliography's, which the judge's bibliography does not read (ice-doublet-iop:
    65 links, none right, keys 0). Read, the right links are right and the keys are counted."""
    check = _judge()
    bench = _load("bench_r34", "bench.py")
    paper, csv_dir = _inline_paper(tmp_path, keys_as_source=False)
    bib, primary = check.bibliography(paper)
    assert not bib and not primary  # the judge itself reads nothing
    stats = bench.judge_pdf_paper(check, paper, "main.tex", csv_dir, "p")
    assert (stats["keys"], stats["reached"], stats["links"], stats["right"]) == (3, 3, 3, 3)
    # a link to the wrong entry is still wrong
    sents = pd.read_csv(csv_dir / "p.sentences.csv", dtype=str)
    sents.loc[1, "ref_keys"] = "ref1"
    sents.to_csv(csv_dir / "p.sentences.csv", index=False)
    stats = bench.judge_pdf_paper(check, paper, "main.tex", csv_dir, "p")
    assert (stats["links"], stats["right"]) == (3, 2)


# ---------------------------------------------------------------------------------------------------------
# bench.py --pairs: a reference printing its label and initials before the surname (RSC, AIP, physics)
# ---------------------------------------------------------------------------------------------------------

def test_pairs_judge_maps_an_initials_first_reference_by_its_first_author_and_year():
    """ocdft-pccp (RSC: "20 E. Runge and E. K. Gross, Phys. Rev. Lett., 1984, 52, 997."), a German thesis (AIP:
    "A. D. Becke, Phys. Rev. A 38, 3098 (1988)."): no title printed, so the judge's word rule maps them to no
    entry, and the first-author rule looked for the surname at the reference's opening, where the label and
    the initials stand. The surname after them is the first author's; an entry of another author or year is
    still not matched."""
    bench = _load("bench_r34", "bench.py")
    assert bench._surname_first("20 E. Runge and E. K. Gross, Phys. Rev. Lett., 1984") \
        .startswith("Runge and")
    assert bench._surname_first("A. D. Becke, Phys. Rev. A 38, 3098 (1988).").startswith("Becke,")
    assert bench._surname_first("J.-L. Lions, Controle des systemes").startswith("Lions,")
    assert bench._surname_first("Smith, J. 2001, ApJ, 500, 1").startswith("Smith,")
    refs = pd.DataFrame([{"ref_key": "ref20", "raw": "20 E. Runge and E. K. Gross, Phys. Rev. Lett., 1984, 52, 997."},
                         {"ref_key": "ref59", "raw": "A. D. Becke, Phys. Rev. A 38, 3098 (1988)."},
                         {"ref_key": "ref60", "raw": "J. P. Perdew, Phys. Rev. B 33, 8822 (1986)."}])
    first_author = {"runge1984": ("runge", "1984"), "becke1988": ("becke", "1988"), "becke1993": ("becke", "1993"),
                    "perdew1996": ("perdew", "1996")}
    full = {k: "" for k in first_author}
    ref_map = {"ref20": set(), "ref59": set(), "ref60": set()}
    bench._author_year_mapping(refs, ref_map, first_author, full, set(first_author))
    assert ref_map == {"ref20": {"runge1984"}, "ref59": {"becke1988"}, "ref60": set()}


# ---------------------------------------------------------------------------------------------------------
# Built-in backend: exponents of a superscript-citing paper read as citations
# ---------------------------------------------------------------------------------------------------------

def _raised_after(tmp_path: Path, line: str, needle: str, mark: str, minus: bool = False) -> list[tuple[str, str]]:
    """The markers linked on ``exponent_paper`` with ``mark`` raised right after ``needle`` of its first line
    (after a minus sign set right after ``needle``, where ``minus``), and "3" raised after the second line's "the
    model says." (a citation: the control)."""
    base = exponent_paper(line)
    x = right_edge(tmp_path, base, needle) + 0.3
    page = exponent_paper(line)
    if minus:
        page.text(x + 0.5, 680, raw_pdf.MINUS, font="F4")
        x += 0.5 + 5.9  # Helvetica's minus: 584/1000 of 10 pt
    page.text(x, 680 + 3.6, mark, size=7)
    page.text(right_edge(tmp_path, base, "the model says.") + 0.3, 668 + 3.6, "3", size=7)
    root = xml_of(tmp_path, [page])
    return [(m.text, m.get("rid")) for m in root.iter("xref")]


def test_raised_number_after_an_increment_is_an_exponent_and_one_after_a_unit_still_cites():
    """frozen-prl (revtex, a bracket-citing paper with too few brackets to be called one): "O(∆t²)" and
    "(L²+dL/dt)∆t²/2" linked entry 2 four times. A number raised after a variable that opens with an increment or
    a differential sign ("∆t", "∂x") is its power. A two-letter word of a small letter and a capital is not read
    so ("dN⁴" of ocdft-pccp stays a citation): round 32's published lancetrm-2014 cites after "15 ng/mL²²"."""
    builtin_backend = _load("builtin_backend_r34", "builtin_backend.py")
    refs = [builtin_backend.Reference(raw=f"{n}. A. Author{n}. Work {n}. J. Tests, {1990 + n}.", label=str(n))
            for n in range(1, 23)]
    by_label = {n: n - 1 for n in range(1, 23)}

    def linked(*parts: tuple[str, bool]) -> list[tuple[str, list[int]]]:
        chars = [builtin_backend.Char(c, 0, 0, 1, 1, 10, sup=raised) for text, raised in parts for c in text]
        par = builtin_backend.Paragraph(section=0, chars=chars)
        return [(t, k) for t, k in builtin_backend.pattern_runs(par, refs, by_label) if k]

    assert linked(("The error is O(\u2206t", False), ("2", True), (") for small steps.", False)) == []
    assert linked(("The error is O(\u2202x", False), ("2", True), (") for small steps.", False)) == []
    assert linked(("expanded as I+(L+dL/dt)\u2206t", False), ("2", True), ("/2 to second order.", False)) == []
    assert linked(("less than 15 ng/mL", False), ("22", True), (" in all patients.", False)) == [("22", [21])]
    assert linked(("as the model says", False), ("2", True), (" and more.", False)) == [("2", [1])]


def test_raised_number_glued_to_an_opening_parenthesis_or_an_operator_is_no_citation(tmp_path):
    """smhet-achemso (ACS, superscript citations): "(¹D_pp(t) −¹D_pp(t = 0))", a pre-superscript inside a formula,
    linked entry 1 three times. A citation is raised after a word, a closing bracket or a stop, never right after
    "(", a minus or "=". (A minus between two raised numbers, the low minus of a range "²−⁷", is not this; nor
    "+", which ends names.)"""
    assert _raised_after(tmp_path, "The populations are computed as (", "as (", "1") == [("3", "ref3")]
    assert _raised_after(tmp_path, "The populations are computed as D(t)", "as D(t)", "1", minus=True) == \
        [("3", "ref3")]
    assert _raised_after(tmp_path, "The populations are computed as D(t) =", "D(t) =", "1") == [("3", "ref3")]
    # "+" ends names ("Star-CCM+²⁷" of devsets/pairs' cmas-tbc, AIP): a number raised after it still cites
    assert _raised_after(tmp_path, "These models are built into Star-CCM+", "Star-CCM+", "1") == \
        [("1", "ref1"), ("3", "ref3")]
    assert _raised_after(tmp_path, "The populations are computed as D(t)", "as D(t)", "1") == \
        [("1", "ref1"), ("3", "ref3")]


@needs_judge
def test_pairs_judge_reads_a_cited_bib_entry_without_a_title(tmp_path):
    """hp16-els (INSPIRE's .bib: author, journal, volume, year, pages, no title): the judge's ``_bib`` leaves an
    entry without a title out, so every link to it was wrong (22 links, none right). The PDF prints such entries
    ("A. Bzdak, D. Teaney, Phys. Rev. C87 (2) (2013) 024906."); read with all their fields, the right link is
    right, and a link to another entry is not."""
    check = _judge()
    bench = _load("bench_r34", "bench.py")
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "main.tex").write_text(
        "\\documentclass{elsarticle}\n\\begin{document}\nThe correlation coefficient is defined in "
        "\\cite{Bzdak:2012tp} for both rapidity windows.\n\nThe flow harmonics were measured by "
        "ALICE \\cite{Adam:2016ows} at several centralities.\n\\bibliography{refs}\n\\end{document}\n")
    (paper / "refs.bib").write_text(
        '@article{Bzdak:2012tp,\n  author = "Bzdak, Adam and Teaney, Derek",\n  journal = "Phys. Rev.",\n'
        '  volume = "C87",\n  year = "2013",\n  number = "2",\n  pages = "024906",\n}\n\n'
        '@article{Adam:2016ows,\n  author = "Adam, Jaroslav and others",\n  collaboration = "ALICE",\n'
        '  journal = "Phys. Lett.",\n  volume = "B762",\n  year = "2016",\n  pages = "376-388",\n}\n')
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    pd.DataFrame([{"sentence": "The correlation coefficient is defined in [1] for both rapidity windows.",
                   "ref_keys": "ref1"},
                  {"sentence": "The flow harmonics were measured by ALICE [2] at several centralities.",
                   "ref_keys": "ref2|ref1"}]).to_csv(csv_dir / "p.sentences.csv", index=False)
    pd.DataFrame([{"ref_key": "ref1", "raw": "A. Bzdak, D. Teaney, Phys. Rev. C87 (2) (2013) 024906."},
                  {"ref_key": "ref2", "raw": "J. Adam, et al., Phys. Lett. B762 (2016) 376-388."}]) \
        .to_csv(csv_dir / "p.references.csv", index=False)
    assert not check.bibliography(paper)[0]
    stats = bench.judge_pdf_paper(check, paper, "main.tex", csv_dir, "p")
    assert (stats["keys"], stats["reached"], stats["links"], stats["right"]) == (2, 2, 3, 2)


@needs_judge
def test_pairs_bench_names_a_link_to_a_key_cited_through_an_own_macro(tmp_path):
    """fashion-ieee (round 31b): ``\\lithead[UVTON]{DBLP:...}{...}``, the author's macro defined on ``\\cite``,
    cites 67 works the judge's reader never sees, so the judge maps the PDF's references to no key. Those
    links are the judge's (``cited where the judge does not read``, left out of our diagnosis), as the LaTeX
    bench calls them macro-cited; a right link by a plain ``\\cite`` stays right."""
    check = _judge()
    bench = _load("bench_r34", "bench.py")
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "main.tex").write_text(
        "\\documentclass{IEEEtran}\n\\newcommand{\\lithead}[3][]{\\textbf{#1}~\\cite{#2}: #3}\n"
        "\\begin{document}\nVirtual try-on methods are surveyed widely \\cite{survey2023}.\n\n"
        "\\lithead[UVTON]{kubo2019}{UV mapping keeps the garment aligned across diverse postures.}\n"
        "\\bibliography{refs}\n\\end{document}\n")
    (paper / "refs.bib").write_text(
        "@inproceedings{kubo2019,\n  author = {Kubo, Shunsuke and Iwasawa, Yusuke and Matsuo, Yutaka},\n"
        "  title = {{UVTON}: {UV} mapping to consider the {3D} structure of a human in image-based virtual "
        "try-on network},\n  booktitle = {ICCV Workshops},\n  year = {2019},\n}\n\n"
        "@article{survey2023,\n  author = {Cheng, Wen-Huang and Song, Sijie},\n  title = {Fashion meets computer "
        "vision: a survey},\n  journal = {ACM Computing Surveys},\n  year = {2021},\n}\n")
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    pd.DataFrame([{"sentence": "Virtual try-on methods are surveyed widely [1].", "ref_keys": "ref1"},
                  {"sentence": "UVTON [2]: UV mapping keeps the garment aligned across diverse postures.",
                   "ref_keys": "ref2"}]).to_csv(csv_dir / "p.sentences.csv", index=False)
    pd.DataFrame([{"ref_key": "ref1", "raw": "W.-H. Cheng, S. Song, “Fashion meets computer vision: a survey,” ACM "
                   "Computing Surveys, 2021."},
                  {"ref_key": "ref2", "raw": "S. Kubo, Y. Iwasawa, and Y. Matsuo, “UVTON: UV mapping to consider "
                   "the 3D structure of a human in image-based virtual try-on network,” in ICCV Workshops, 2019."}]) \
        .to_csv(csv_dir / "p.references.csv", index=False)
    stats = bench.judge_pdf_paper(check, paper, "main.tex", csv_dir, "p")
    assert (stats["links"], stats["right"]) == (2, 1)
    assert stats["refused"] == [bench.UNSEEN]


@needs_judge
def test_pairs_judge_reads_an_inline_entry_set_with_bibinfo_fields_as_it_prints(tmp_path):
    """vlasov-els (elsarticle-num, its .bbl pasted inline): ``\\bibinfo{author}{L.~Chen}`` gives the judge's words
    "authorl", "titlephysics", "year2016" (its tokens drop the braces between the field's name and value), so no
    PDF reference reaches 60% of them and 9 right links were wrong. The entry is read as it prints (pylatexenc):
    "L. Chen, F. Zonca, Physics of Alfvén waves …"."""
    check = _judge()
    bench = _load("bench_r34", "bench.py")
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "main.tex").write_text(
        "\\documentclass{elsarticle}\n\\begin{document}\nAlfven wave instabilities are associated with mode "
        "frequency sweeping \\cite{chen2016} in fusion devices.\n\\begin{thebibliography}{1}\n"
        "\\bibitem[{Chen and Zonca(2016)}]{chen2016}\n\\bibinfo{author}{L.~Chen}, \\bibinfo{author}{F.~Zonca},\n"
        "\\newblock \\bibinfo{title}{Physics of {{Alfv\\'en}} waves and energetic particles in burning plasmas},\n"
        "\\newblock \\bibinfo{journal}{Rev. Mod. Phys.} \\bibinfo{volume}{88} (\\bibinfo{year}{2016})"
        " \\bibinfo{pages}{015008}.\n\\end{thebibliography}\n\\end{document}\n")
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    pd.DataFrame([{"sentence": "Alfvén wave instabilities are associated with mode frequency sweeping [1] in fusion "
                   "devices.", "ref_keys": "ref1"}]).to_csv(csv_dir / "p.sentences.csv", index=False)
    pd.DataFrame([{"ref_key": "ref1", "raw": "L. Chen, F. Zonca, Physics of Alfvén waves and energetic particles in "
                   "burning plasmas, Rev. Mod. Phys. 88 (2016) 015008."}]).to_csv(csv_dir / "p.references.csv",
                                                                                  index=False)
    stats = bench.judge_pdf_paper(check, paper, "main.tex", csv_dir, "p")
    assert (stats["keys"], stats["reached"], stats["links"], stats["right"]) == (1, 1, 1, 1)


# ---------------------------------------------------------------------------------------------------------
# bench.py --pairs: the PDF cache remembers the main file a PDF was compiled from
# ---------------------------------------------------------------------------------------------------------

def test_pairs_cache_compiles_again_for_another_main_file_of_the_same_source(tmp_path, monkeypatch):
    """A repository holding two papers (an arXiv and a journal version) is one source with two main files: the
    cache, keyed by the source's bytes and the engine, handed the first paper's PDF to a manifest row naming the
    second. The main file is recorded beside the PDF and another one compiles again. The engine here is a stand-in
    on PATH that writes a PDF naming the file it was given (no TeX needed)."""
    bench = _load("bench_pairs_cache", "bench.py")
    tools = tmp_path / "bin"
    tools.mkdir()
    engine = tools / "pdflatex"
    engine.write_text(f"#!{sys.executable}\nimport sys, pathlib\nmain = pathlib.Path(sys.argv[-1])\n"
                      "main.with_suffix('.pdf').write_bytes(b'%PDF-1.4 ' + main.name.encode() + b'\\n%%EOF\\n')\n")
    engine.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{Path(sys.executable).parent}:/usr/bin:/bin")
    src = tmp_path / "two-papers"
    src.mkdir()
    for name in ("arxiv.tex", "journal.tex"):
        (src / name).write_text("\\documentclass{article}\\begin{document}Text.\\end{document}\n")
    cache = tmp_path / "cache"
    first, how = bench.compile_pair(src, "arxiv.tex", "pdflatex", cache)
    assert how == "compiled" and b"arxiv.tex" in first.read_bytes()
    again, how = bench.compile_pair(src, "arxiv.tex", "pdflatex", cache)
    assert how.startswith("cached") and again == first
    other, how = bench.compile_pair(src, "journal.tex", "pdflatex", cache)
    assert how == "compiled" and b"journal.tex" in other.read_bytes()
    (cache / first.with_suffix(".main").name).unlink()  # a PDF cached before the main file was recorded
    kept, how = bench.compile_pair(src, "arxiv.tex", "pdflatex", cache)
    assert how.startswith("cached") and b"journal.tex" in kept.read_bytes()
