"""Stage 03's LaTeX route: classes of source that issue 25's held-out round 33b (biology, medicine, neuroscience,
psychology, linguistics, humanities and theses in German, French, Spanish and Portuguese: bioinfo, eLife, PNAS,
Frontiers, wlscirep, nature, biblatex with biber, babel and polyglossia) showed, each on a source the test writes
itself."""
from __future__ import annotations

from pathlib import Path

from lxml import etree

from test_03_latex_r28_classes import BIB, cited_rids, latex, paragraphs
from test_03_latex_r32b_classes import _document, _write


def test_a_document_in_a_folder_of_superseded_copies_is_no_main_file_beside_the_paper(tmp_path):
    # manuscript/nature/paper.tex beside manuscript/old/draft.tex, the earlier version, which cites more keys of
    # the same .bib: the copy in old/ (archive/, backup/) is the main file only where no other document cites
    folder = _write(tmp_path / "src", {
        "manuscript/nature/paper.tex": _document("Sex drives speciation \\cite{lee2019}.", bib="../refs"),
        "manuscript/old/draft.tex": _document("Earlier \\cite{lee2019,ross2002}. More \\cite{wilson1974}.",
                                              bib="../refs"),
        "manuscript/refs.bib": BIB})
    notes: list[str] = []
    assert latex.find_main_file(folder, notes) == folder / "manuscript" / "nature" / "paper.tex"
    assert "superseded" in notes[0]
    root = etree.fromstring(latex.convert_source(folder).xml)
    assert paragraphs(root) == ["Sex drives speciation [1]."]
    # only a folder so named counts ("gold/", a file "old.tex" do not), and a lone copy in old/ is still the main file
    assert latex._superseded(Path("old/draft.tex")) and latex._superseded(Path("a/Archive/x.tex"))
    assert latex._superseded(Path("old_versions/x.tex"))
    assert not latex._superseded(Path("gold/x.tex")) and not latex._superseded(Path("old.tex"))
    lone = _write(tmp_path / "lone", {"old/draft.tex": _document("Only \\cite{lee2019}.", bib="../refs"),
                                      "refs.bib": BIB})
    assert latex.find_main_file(lone) == lone / "old" / "draft.tex"


def test_a_preamble_file_loaded_with_include_before_begin_document_makes_a_document(tmp_path):
    # main.tex: "\include{header}" (\documentclass{book}, babel, the packages) then \begin{document} and the
    # chapters \include'd from kapitel/: the main file holds no \documentclass of its own, and the source had
    # "no main file"
    header = "\\documentclass{book}\n\\usepackage[ngerman]{babel}\n"
    main = "\\include{header}\n\\begin{document}\n\\include{kapitel/einleitung}\n" \
           "\\bibliographystyle{plain}\n\\bibliography{literatur/refs}\n\\end{document}\n"
    chapter = "\\chapter{Einleitung}\nRestriktionsenzyme schneiden die DNA \\cite{lee2019}.\n"
    folder = _write(tmp_path / "src", {"main.tex": main, "header.tex": header,
                                       "kapitel/einleitung.tex": chapter, "literatur/refs.bib": BIB})
    assert latex.find_main_file(folder) == folder / "main.tex"
    root = etree.fromstring(latex.convert_source(folder).xml)
    assert cited_rids(root) == ["lee2019"]


def test_biblatex_citations_follow_style_or_citestyle_not_bibstyle(tmp_path):
    # "style=numeric-comp,bibstyle=authoryear" with \supercite: the text prints numbers (the list is
    # author-year); the citations were printed "(Lee and Kim, 2019)" because "authoryear" was read anywhere in
    # the options
    def style(options: str) -> str:
        preamble = f"\\usepackage[{options}]{{biblatex}}\n"
        return latex.citation_style(preamble, {})

    assert style("autocite=superscript,backend=biber,style=numeric-comp,bibstyle=authoryear") == "numeric"
    assert style("backend=biber,style=authoryear") == "author-year"
    assert style("style=numeric,citestyle=authoryear-comp") == "author-year"
    assert style("style=apa,backend=biber") == "author-year"
    assert style("backend=biber,bibstyle=authoryear,citestyle=numeric") == "numeric"


def test_a_biblatex_name_in_the_extended_name_format_is_one_person(tmp_path):
    # Zotero/Better BibTeX writes "family=Lenardo, given=Isabella, prefix=di, useprefix=true" for a name with a
    # particle; BibTeX's name parser split it at its commas into "family=Lenardo" and the rest, and the
    # reference printed "family=Lenardo, given=Isabella, prefix=di, useprefix=true, Benoît Séguin"
    bib = "@article{dilenardo2016, author = {family=Lenardo, given=Isabella, prefix=di, useprefix=true and " \
          "Séguin, Benoît and Kaplan, Frédéric}, title = {Visual patterns discovery in large databases of " \
          "paintings}, journal = {Digital Humanities}, year = {2016}}\n" \
          "@book{cruz1690, author = {family={de la Cruz}, given={Juana Inés}}, title = {Carta atenagórica}, " \
          "publisher = {Puebla}, year = {1690}}\n"
    refs = {r.key: r for r in latex.parse_bib(bib, None)}
    assert refs["dilenardo2016"].authors == [("di Lenardo", "Isabella"), ("Séguin", "Benoît"),
                                             ("Kaplan", "Frédéric")]
    assert refs["dilenardo2016"].raw.startswith("Isabella di Lenardo, Benoît Séguin, and Frédéric Kaplan.")
    assert refs["cruz1690"].authors == [("de la Cruz", "Juana Inés")]
    assert latex._extended_name("Séguin, Benoît") is None


def test_a_bbl_in_an_editors_hidden_cache_folder_is_not_the_bibliography(tmp_path):
    # manuscript/.texpadtmp/ holds the editor's build of an older document (another name, other entries):
    # its .bbl was read first, and the paper's own .bib beside it only for what it lacked; the partial rule then
    # counted the cache's uncited entries as text missing from the paper
    old_bbl = "\\begin{thebibliography}{9}\n\\bibitem{lee2019} J. Lee. An older title. 2018.\n" \
              "\\bibitem{gone1} A. Gone. Cited by the old draft only. 2001.\n" \
              "\\bibitem{gone2} B. Gone. Cited by the old draft only. 2002.\n\\end{thebibliography}\n"
    folder = _write(tmp_path / "src", {
        "paper/paper.tex": _document("Speciation \\cite{lee2019}."), "paper/refs.bib": BIB,
        "paper/.texpadtmp/draft.bbl": old_bbl})
    result = latex.convert_source(folder)
    assert result.bibliography == "bib" and not result.partial
    root = etree.fromstring(result.xml)
    assert "Port call optimisation" in "".join(root.find("back").itertext())
