"""Stage 03 flags a conversion cut short (issue 25, "every partial conversion flagged"): a bibliography whose
parse stopped early (a running head, a caption floated among the entries, a paper appended after a thesis's
bibliography, a page read wrong) leaves the text citing entries that no entry read holds, numbered or author-year;
a bibliography whose region prints labels that open no entry; a body far shorter than the file's text before the
bibliography. On the LaTeX route: a .bbl whose entries the source cites nowhere (a section file the source lacks),
and an ``\\end{document}`` shown in a listing, which is no end of the document."""
from __future__ import annotations

import sys
from pathlib import Path

from helpers import REPO, load_stage
from test_03_builtin_partial import end_x
from test_03_latex import DEMO_PDF, read_log, run, stage_input, targz

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402

stage = load_stage("03")
builtin = stage.builtin_backend
latex = stage.latex_backend
BODY = "This paragraph is ordinary body text of a paper and it goes"
SURNAMES = ["Abt", "Barnes", "Casagrande", "Drummond", "Fekel", "Gullikson", "Horch", "Kraus", "Lloyd", "Mason",
            "Neves", "Pogo", "Quist", "Rosen", "Stahl", "Tokovinin", "Udry", "Vogt", "Wright", "Zorec"]


def numbered_paper(tmp_path: Path, name: str, entries: int, cited: int = 12, extra: list[str] = ()) -> Path:
    """A paper whose body cites [1] … [``cited``], one marker a line (and the ``extra`` lines), with a numbered
    bibliography that holds entries [1] … [``entries``] only: the rest as if the parse had stopped there."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    y = 680
    for line in [f"{BODY} on, as shown in [{k}]." for k in range(1, cited + 1)] + list(extra):
        page.text(72, y, line)
        y -= 12
    page.text(72, y - 20, "References", size=12, font="F2")
    y -= 40
    for n in range(entries):
        page.text(72, y, f"[{n + 1}] A. Author{chr(65 + n)}, J. Chem. {n + 1}, {10 * (n + 1)} (20{10 + n}).", size=9)
        y -= 11
    return raw_pdf.write_pdf(tmp_path / f"{name}.pdf", [page])


def test_a_numbered_bibliography_cut_short_is_partial_with_the_numbers_it_lost(tmp_path):
    """The body cites [1] … [12] and the bibliography read ends at [5] (round 29's compiled PDFs: a line-numbered
    Frontiers paper read 9 of its 35 entries, a thesis the 16 entries of a paper appended after its 112): the
    markers [6] … [12] are beyond the bibliography's label range, so no other measure counted them. Partial,
    with what is missing and how many."""
    _, stats = builtin.convert(numbered_paper(tmp_path, "cut", entries=5))
    assert (stats["n_entries"], stats["n_entries_cited"]) == (5, 5)
    assert stats["partial"] == ("7 of the 12 numbers the text cites have no bibliography entry ([6]–[12]; 5 "
                                "entries read, the last [5]): the bibliography was cut short")
    _, stats = builtin.convert(numbered_paper(tmp_path, "whole", entries=12))
    assert stats.get("partial", "") == "" and stats["n_numbers_without_entry"] == 0


def test_a_bibliography_cut_short_under_superscript_citations_is_partial(tmp_path):
    """A Nature-style paper cites by raised numbers ("…as shown before.⁷"), none in brackets: the raised groups
    beyond the last entry read count the same way (7 of 12 here, as for the published papers of this kind whose
    bibliography's later pages were taken away)."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    y = 680
    line = f"{BODY} on, as shown before."
    right = end_x(tmp_path, line)
    for k in range(1, 13):
        page.text(72, y, line)
        page.text(right + 0.5, y + 4, str(k), size=6)
        y -= 12
    page.text(72, y - 20, "References", size=12, font="F2")
    y -= 40
    for n in range(5):
        page.text(72, y, f"{n + 1}. Author{chr(65 + n)}, A. J. Chem. {n + 1}, {10 * (n + 1)} (20{10 + n}).", size=9)
        y -= 11
    _, stats = builtin.convert(raw_pdf.write_pdf(tmp_path / "raised.pdf", [page]))
    assert stats["n_entries"] == 5
    assert stats["partial"] == ("7 of the 12 numbers the text cites have no bibliography entry ([6]–[12]; 5 "
                                "entries read, the last [5]): the bibliography was cut short")


def test_scattered_bracketed_numbers_beyond_the_last_entry_are_no_lost_entries(tmp_path):
    """Statistics and intervals print bracketed numbers too ("F[1, 653]=7.99", "F[2, 156]", "x in [1, 100]": a
    published trial report's results section has 18 of them beyond its 30 entries): scattered far beyond the
    last label, they are no run of lost entries, and a whole paper stays `ok`."""
    extra = [f"The effect was small (F[{k}, {150 + 37 * k}]=1.{k}4, p=0.{k}1) in turn." for k in range(1, 9)]
    extra += ["Each weight lies in [1, 100] and each index in [40, 90] there."]
    _, stats = builtin.convert(numbered_paper(tmp_path, "stats", entries=12, extra=extra))
    assert stats.get("partial", "") == "" and stats["n_numbers_without_entry"] == 0


def author_year_paper(tmp_path: Path, name: str, entries: int) -> Path:
    """A paper citing 20 works "(Abt, 2001)" … "(Zorec, 2020)", two a line, with an alphabetical author-year
    bibliography that holds the first ``entries`` of them."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    y = 680
    for k in range(0, len(SURNAMES), 2):
        page.text(72, y, f"{BODY} (Smith, {SURNAMES[k]}, {2001 + k}) and on ({SURNAMES[k + 1]}, {2002 + k}).")
        y -= 12
    page.text(72, y - 20, "References", size=12, font="F2")
    y -= 40
    for k, surname in enumerate(SURNAMES[:entries]):
        page.text(72, y, f"{surname}, A. B. {2001 + k}, ApJ, {100 + k}, {200 + k}", size=9)
        y -= 11
    return raw_pdf.write_pdf(tmp_path / f"{name}.pdf", [page])


def test_an_author_year_bibliography_cut_short_is_partial(tmp_path):
    """Round 29's biblatex thesis read 8 of its 236 entries, every one of them cited, so no share rule saw it:
    the text's other author-year citations name a surname and year that no entry holds. Here 12 of the 20 are
    lost with the bibliography's end (alphabetical: "Lloyd" on); the whole paper stays `ok`."""
    _, stats = builtin.convert(author_year_paper(tmp_path, "cut", entries=8))
    assert stats["n_entries"] == 8 and stats["n_entries_cited"] == 8
    assert stats["partial"] == ("12 of the 20 author-year citations in the text name no bibliography entry (e.g. "
                                "Lloyd, 2009; Mason, 2010; Neves, 2011; 8 entries read): the bibliography was cut "
                                "short")
    _, stats = builtin.convert(author_year_paper(tmp_path, "whole", entries=20))
    assert stats.get("partial", "") == "" and stats["n_author_years_without_entry"] == 0


def test_the_bibliographys_printed_labels_are_read_and_those_opening_no_entry_flag_it(tmp_path):
    """The labels that open the lines of the bibliography's region are kept (``Document.printed_labels``); where
    at least 5, and a tenth, of them open no entry the split read (entries lost or run together), the conversion
    is partial with the labels."""
    doc = builtin.read_pdf(numbered_paper(tmp_path, "labels", entries=12))
    assert doc.printed_labels == tuple(f"[{n}]" for n in range(1, 13))
    evidence = {"n_markers": 12, "n_unlinked_markers": 0, "n_entries": 6, "n_entries_cited": 6,
                "n_printed_labels": 12, "n_printed_labels_without_entry": 6,
                "printed_labels_without_entry": "[2], [4], [6], …"}
    assert builtin.partial_reason(evidence) == ("6 of the 12 numbered labels the bibliography prints open no entry "
                                                "read ([2], [4], [6], …; 6 entries read)")
    assert builtin.partial_reason({**evidence, "n_printed_labels_without_entry": 1}) == ""


def test_a_body_far_shorter_than_the_text_before_the_bibliography_is_partial():
    """A body that stopped early though the file holds many more pages of prose before the bibliography: less than
    30% of that text came out (whole papers: 53% and more, the rest being captions, tables, front matter)."""
    evidence = {"n_markers": 12, "n_unlinked_markers": 0, "n_entries": 20, "n_entries_cited": 18,
                "body_chars": 6000, "layer_chars": 48000}
    assert builtin.partial_reason(evidence) == ("the body holds 6000 characters of the 48000 the file's text holds "
                                                "before the bibliography (12%): the body was cut short")
    assert builtin.partial_reason({**evidence, "body_chars": 26000}) == ""
    assert builtin.partial_reason({**evidence, "body_chars": 1000, "layer_chars": 8000}) == ""  # too short to judge


SECTIONS_TEX = r"""\documentclass{article}
\begin{document}
\section{Introduction}
Alpha is studied widely \cite{a1,a2}. Beta too \cite{a3}. Gamma as well \cite{a4}.
\input{sections/results}
\bibliographystyle{plain}
\bibliography{refs}
\end{document}
"""
TEN_BBL = "\\begin{thebibliography}{10}\n" + "".join(
    f"\\bibitem{{a{k}}}\nA.~Author{chr(64 + k)}.\n\\newblock Title number {k} of a work.\n\\newblock \\emph{{J. Chem.}},"
    f" {k}:1--9, 20{10 + k}.\n\n" for k in range(1, 11)) + "\\end{thebibliography}\n"


def test_a_bbl_whose_entries_the_source_cites_nowhere_is_partial_and_falls_back_to_the_pdf(tmp_path):
    """The .bbl lists what the compiled paper cites (10 works); the source lacks the section file that cited 6
    of them (``\\input{sections/results}``): the conversion links all the keys the source's own \\cite commands
    name, so no other measure saw it. Partial, naming the file; with ``--backend auto`` and a PDF, the PDF is
    converted instead."""
    root = stage_input(tmp_path, {"lost.tar.gz": targz({"main.tex": SECTIONS_TEX, "main.bbl": TEN_BBL})})
    cfg, summary = run(tmp_path, root)
    row = read_log(cfg)["lost"]
    assert (row["backend"], row["status"]) == ("latex", "partial")
    assert row["error"].startswith("partial conversion: 6 of the 10 entries of its bbl are cited nowhere in the "
                                   "source (the body inputs 1 file(s) the source lacks: sections/results): the "
                                   "text citing them is missing")
    root = stage_input(tmp_path / "auto", {"lost.tar.gz": targz({"main.tex": SECTIONS_TEX, "main.bbl": TEN_BBL})},
                       pdfs={"lost": DEMO_PDF})
    cfg, _ = run(tmp_path / "auto", root, backend="auto", java="no-java-here")
    row = read_log(cfg)["lost"]
    assert row["backend"] == "builtin"
    assert row["fallback_reason"].startswith("LaTeX conversion partial: 6 of the 10 entries of its bbl")


SECTION_BIB = "".join(f"@article{{a{k}, author = {{Author{chr(64 + k)}, A.}}, title = {{Title number {k} of a work}}, "
                      f"journal = {{J. Chem.}}, year = {{20{10 + k}}}}}\n" for k in range(1, 11))


def test_a_section_file_the_source_lacks_makes_the_conversion_partial(tmp_path):
    """A source whose main file inputs its sections one file each, one of them not in the source (real
    repositories: a Results section, a Discussion, an appendix): a .bib lists more than the paper cites, so no
    count of keys sees the loss; the missing file is a section's (it stands where its siblings do, outside any
    environment, and they hold \\section), so the conversion is partial, naming it."""
    tex = SECTIONS_TEX.replace("\\input{sections/results}", "\\input{sections/method}\n\\input{sections/results}")
    method = "\\section{Method}\nWe follow \\cite{a5}.\n"
    root = stage_input(tmp_path, {"sec.tar.gz": targz({"main.tex": tex, "refs.bib": SECTION_BIB,
                                                       "sections/method.tex": method})})
    cfg, _ = run(tmp_path, root)
    row = read_log(cfg)["sec"]
    assert row["status"] == "partial"
    assert row["error"].startswith("partial conversion: the body inputs 1 section file(s) the source lacks "
                                   "(sections/results): their text is missing")
    whole = {"main.tex": tex, "refs.bib": SECTION_BIB, "sections/method.tex": method,
             "sections/results.tex": "\\section{Results}\nAs \\cite{a6} found.\n"}
    root = stage_input(tmp_path / "whole", {"sec.tar.gz": targz(whole)})
    cfg, _ = run(tmp_path / "whole", root)
    assert (read_log(cfg)["sec"]["status"], read_log(cfg)["sec"]["error"]) == ("ok", "")


def test_a_missing_file_right_after_a_heading_is_a_section_file(tmp_path):
    """``\\section{Contribution}\\label{sec:contribution}\\input{sections/Contribution.tex}`` with the file not in the
    source (a held-out repository): the heading's text is the missing file, whatever its siblings hold."""
    tex = SECTIONS_TEX.replace("\\input{sections/results}",
                               "\\section{Contribution}\n\\label{sec:contribution}\n\\input{sections/Contribution.tex}")
    root = stage_input(tmp_path, {"head.tar.gz": targz({"main.tex": tex, "refs.bib": SECTION_BIB})})
    cfg, _ = run(tmp_path, root)
    row = read_log(cfg)["head"]
    assert row["status"] == "partial"
    assert row["error"].startswith("partial conversion: the body inputs 1 section file(s) the source lacks "
                                   "(sections/Contribution.tex): their text is missing")


def test_a_missing_figure_input_is_said_and_not_flagged(tmp_path):
    """A file the body inputs that the source lacks, while every entry is cited (a figure's or a table's file, as
    in 14 of 229 real sources): the log says so, and the conversion stays `ok`."""
    tex = SECTIONS_TEX.replace("\\input{sections/results}", "See \\cite{a5,a6,a7,a8,a9,a10}.\n"
                               "\\begin{figure}\\input{figures/overview}\\caption{An overview.}\\end{figure}")
    root = stage_input(tmp_path, {"fig.tar.gz": targz({"main.tex": tex, "main.bbl": TEN_BBL})})
    cfg, _ = run(tmp_path, root)
    row = read_log(cfg)["fig"]
    assert row["status"] == "ok"
    assert "the body inputs 1 file(s) the source lacks (figures/overview): not converted" in row["error"]


def test_a_bbl_cut_short_is_partial(tmp_path):
    """A .bbl that stops half way (the file cut short: no \\end{thebibliography}): 5 of the 10 cited keys have no
    entry."""
    tex = SECTIONS_TEX.replace("\\input{sections/results}", "See \\cite{a5,a6} and \\cite{a7,a8,a9,a10}.")
    cut = TEN_BBL[:TEN_BBL.index("\\bibitem{a6}")]
    root = stage_input(tmp_path, {"cut.tar.gz": targz({"main.tex": tex, "main.bbl": cut})})
    cfg, _ = run(tmp_path, root)
    row = read_log(cfg)["cut"]
    assert row["status"] == "partial"
    assert row["error"].startswith("partial conversion: only 5 of the 10 keys the source cites became links "
                                   "(5 without a bibliography entry)")


def test_end_document_inside_a_listing_does_not_end_the_document(tmp_path):
    """A paper that shows a LaTeX template in a verbatim listing ("\\begin{document} Hello \\end{document}"): LaTeX
    reads the listing as text and goes on; the route took its \\end{document} for the document's and lost the
    rest of the body and the bibliography ("no bibliography in the source")."""
    tex = SECTIONS_TEX.replace("\\input{sections/results}", "A template:\n\\begin{verbatim}\n\\documentclass{article}"
                               "\n\\begin{document}\nHello\n\\end{document}\n\\end{verbatim}\n"
                               "The rest cites \\cite{a5,a6,a7,a8,a9,a10}.")
    root = stage_input(tmp_path, {"listing.tar.gz": targz({"main.tex": tex, "main.bbl": TEN_BBL})})
    cfg, _ = run(tmp_path, root)
    row = read_log(cfg)["listing"]
    assert (row["status"], row["n_citations"]) == ("ok", "4")
    assert row["error"] == ""
