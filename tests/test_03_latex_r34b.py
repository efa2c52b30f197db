"""Stage 03's LaTeX route: classes of source that issue 25's held-out round 34b (computer science, engineering,
biology, medicine, chemistry, psychology, economics, theses in German, French, Spanish and Italian: acmart,
IEEEtran, llncs, NeurIPS/ICML/ICLR, elsarticle, MDPI, BMC, Copernicus, PLOS, Frontiers, apa7 from Quarto, org-mode
exports) showed, each on a source the test writes itself."""
from __future__ import annotations

from lxml import etree

from test_03_latex_r28_classes import BIB, cited_rids, latex, paragraphs
from test_03_latex_r32b_classes import _document, _write


def test_a_draft_at_the_top_whose_bibliography_is_not_there_is_no_main_file_beside_the_paper_below(tmp_path):
    # an earlier draft left at the top (modelo.tex) names \bibliography{refs} while refs.bib sits in Source/ beside
    # Source/Main.tex, the paper, which \inputs its sections: TeX at the top never finds refs.bib, so the draft
    # was not what the authors typeset, and the rule "a document at the top is the main file" is not its own
    folder = _write(tmp_path / "src", {
        "modelo.tex": _document("A first draft \\cite{lee2019}. Unfinished \\cite{draft2020}."),
        "Source/Main.tex": _document("\\input{intro.tex}"),
        "Source/intro.tex": "Teamwork quality was measured \\cite{lee2019,ross2002}. Later \\cite{wilson1974}.\n",
        "Source/refs.bib": BIB})
    notes: list[str] = []
    assert latex.find_main_file(folder, notes) == folder / "Source" / "Main.tex"
    root = etree.fromstring(latex.convert_source(folder).xml)
    assert cited_rids(root) == ["lee2019 ross2002", "wilson1974"]
    # the top document is still the main file where its bibliography is there (beside it, or as its .bbl)
    (folder / "refs.bib").write_text(BIB, encoding="utf-8")
    assert latex.find_main_file(folder) == folder / "modelo.tex"
    (folder / "refs.bib").unlink()
    (folder / "modelo.bbl").write_text("\\begin{thebibliography}{1}\n\\bibitem{lee2019} J. Lee. Port calls. 2019.\n"
                                       "\\end{thebibliography}\n", encoding="utf-8")
    assert latex.find_main_file(folder) == folder / "modelo.tex"


def test_a_bib_file_whose_suffix_is_in_capitals_is_the_bibliography_it_names(tmp_path):
    # \bibliography{test} beside "test.BIB" (Frontiers' template, saved on a file system that does not tell
    # letter cases apart): the source had "no bibliography" and failed
    folder = _write(tmp_path / "src", {"main.tex": _document("Features are economical \\cite{lee2019}.", bib="test"),
                                       "test.BIB": BIB})
    root = etree.fromstring(latex.convert_source(folder).xml)
    assert cited_rids(root) == ["lee2019"]
    assert paragraphs(root) == ["Features are economical [1]."]
    # and where \bibliography names no file at all, a .Bib file of the source is still read
    other = _write(tmp_path / "other", {"main.tex": _document("Ports \\cite{ross2002}.", bib="missing"),
                                        "Refs.Bib": BIB})
    assert cited_rids(etree.fromstring(latex.convert_source(other).xml)) == ["ross2002"]


def test_pandoc_citeproc_output_cites_with_the_text_citeproc_printed(tmp_path):
    # Quarto / pandoc 3 with citeproc: "(\citeproc{ref-lee2019}{Lee \& Kim, 2019})", \citeproc defined in the
    # preamble through \cite, and the entries in a CSLReferences list of "\bibitem[\citeproctext]{ref-...}"; the
    # .bib beside it is not what the text cites (its keys lack "ref-"): the source had "no bibliography"
    preamble = ("\\NewDocumentCommand\\citeproctext{}{}\n\\NewDocumentCommand\\citeproc{mm}{%\n"
                "  \\begingroup\\def\\citeproctext{#2}\\cite{#1}\\endgroup}\n")
    body = ("The layout follows the manual (\\citeproc{ref-lee2019}{Lee \\& Kim, 2019}) and the class "
            "(\\citeproc{ref-ross2002}{Ross, 2002}).\n\n\\section*{References}\n"
            "\\begin{CSLReferences}{1}{0}\n"
            "\\bibitem[\\citeproctext]{ref-lee2019}\nLee, J., \\& Kim, S. (2019). \\emph{Port call optimisation "
            "with shared arrival times}. Maritime Policy Review.\n\n"
            "\\bibitem[\\citeproctext]{ref-ross2002}\nRoss, I. M. (2002). \\emph{A direct method for solving "
            "nonsmooth optimal control problems}.\n\n\\end{CSLReferences}\n")
    text = f"\\documentclass{{article}}\n{preamble}\\begin{{document}}\n{body}\\end{{document}}\n"
    folder = _write(tmp_path / "src", {"main.tex": text, "literatur.bib": BIB})
    result = latex.convert_source(folder)
    root = etree.fromstring(result.xml)
    assert cited_rids(root) == ["ref-lee2019", "ref-ross2002"]
    assert paragraphs(root) == ["The layout follows the manual (Lee & Kim, 2019) and the class (Ross, 2002)."]
    refs = ["".join(r.itertext()) for r in root.iter("mixed-citation")]
    assert len(refs) == 2 and "Port call optimisation" in refs[0]
    assert not result.partial  # the printed text "Lee \& Kim, 2019" is no key the source cites


def test_org_mode_citeproc_output_reads_its_hypertarget_entries(tmp_path):
    # org-mode's export with citeproc-el: "(\citeprocitem{1}{1}, \citeprocitem{2}{2})", \citeprocitem a
    # \newcommand of the preamble, and the entries "\hypertarget{citeproc_bib_item_1}{1.  J. Lee, ...}" one a
    # paragraph under "References"
    preamble = "\\makeatletter\n\\newcommand{\\citeprocitem}[2]{\\hyper@linkstart{cite}{citeproc_bib_item_#1}#2" \
               "\\hyper@linkend}\n\\makeatother\n"
    body = ("Screening is a two-step process (\\citeprocitem{1}{1}, \\citeprocitem{2}{2}).\n\n"
            "\\section*{References}\n"
            "\\hypertarget{citeproc_bib_item_1}{1.  J. Lee, S. Kim, \\href{https://doi.org/10.1/x}{Port call "
            "optimisation with shared arrival times}. \\textit{Maritime Policy Review} (2019).}\n\n"
            "\\hypertarget{citeproc_bib_item_2}{2.  I. M. Ross, A direct method for solving nonsmooth optimal "
            "control problems (2002).}\n")
    text = f"\\documentclass{{elsarticle}}\n{preamble}\\begin{{document}}\n{body}\\end{{document}}\n"
    folder = _write(tmp_path / "src", {"paper.tex": text, "Collection.bib": BIB})
    result = latex.convert_source(folder)
    root = etree.fromstring(result.xml)
    assert cited_rids(root) == ["citeproc_bib_item_1", "citeproc_bib_item_2"]
    assert paragraphs(root) == ["Screening is a two-step process (1, 2)."]
    refs = ["".join(r.itertext()) for r in root.iter("mixed-citation")]
    assert len(refs) == 2 and "Port call optimisation" in refs[0] and not refs[0].lstrip("[]0-9 ").startswith("1.")
    assert not result.partial


def test_a_cited_key_that_differs_from_its_bib_key_only_in_letter_case_finds_its_entry(tmp_path):
    # \cite{Llama} and "@misc{LLama, title={meta-llama/Llama-3.2-3B}, ...}": BibTeX matches keys whatever their
    # case (with a warning) and the PDF prints the entry; the key had "no bibliography entry" and became "[?]"
    bib = BIB + "@misc{LLama,\n  title={meta-llama/Llama-3.2-3B}, author={{Meta AI}}, year={2024}}\n"
    folder = _write(tmp_path / "src", {"main.tex": _document("The generator is Llama \\cite{Llama}, as in "
                                                            "\\cite{lee2019}."), "refs.bib": bib})
    result = latex.convert_source(folder)
    root = etree.fromstring(result.xml)
    assert cited_rids(root) == ["Llama", "lee2019"]
    assert paragraphs(root) == ["The generator is Llama [1], as in [2]."]
    assert "Llama-3.2-3B" in "".join(next(root.iter("mixed-citation")).itertext())
    assert not any("without a bibliography entry" in n for n in result.notes)
    # biber matches keys exactly: under biblatex the key stays without an entry
    biber = _write(tmp_path / "biber", {"main.tex": "\\documentclass{article}\n\\usepackage{biblatex}\n"
                                                    "\\addbibresource{refs.bib}\n\\begin{document}\nLlama "
                                                    "\\cite{Llama}, ports \\cite{lee2019}.\n\\printbibliography\n"
                                                    "\\end{document}\n",
                                        "refs.bib": bib})
    assert paragraphs(etree.fromstring(latex.convert_source(biber).xml)) == ["Llama [?], ports [1]."]
