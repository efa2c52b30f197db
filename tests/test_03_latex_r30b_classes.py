"""Stage 03's LaTeX route (and stage 04 on its output): classes of source that issue 25's held-out round 30b
(computer science, engineering, biology and social-science sources) showed, each on a source the test writes
itself."""
from __future__ import annotations

from test_03_latex_r28_classes import BIB, cited_rids, convert, paragraphs
from test_04_xml_to_csv import paragraph, sentences_of
from lxml import etree


def test_a_results_table_row_naming_a_method_by_one_word_keeps_its_citation_and_values(tmp_path):
    # a thesis's table of depth-estimation results: one method per row, named by one word ("Liu", "DVSO") with
    # the \cite of its paper, then its measured values; for a work cited only there the row is its one context,
    # and it says what the work is cited for. A row of one word and a citation with no values ("Carlson &
    # \cite{x}"), or of values and a citation with no word, still says too little
    body = r"""\section{Results}
Depth methods are compared on the benchmark below.
\begin{table}[h]
\centering
\caption[Quantitative evaluation.]{Quantitative evaluation. Comparison of depth estimation methods on the Eigen
split of the benchmark \cite{lee2019}. Best results in each category are in bold.}
\resizebox{\textwidth}{!}{%
\begin{tabular}{lccccc}
 & & & Abs Rel & Sq Rel & RMSE \\ \cline{4-6}
Approach & Train & & \multicolumn{3}{c}{lower is better} \\ \hline
Liu \cite{ross2002} & D & & 0.201 & 1.584 & 6.471 \\
DVSO \cite{wilson1974} & D$^*$S & & {\bf 0.097} & 0.734 & 4.442 \\
Carlson \cite{v8} & & & & & \\
 & & & 0.35 & 0.750 & \cite{duktape} \\
\end{tabular}}
\end{table}"""
    root = convert(tmp_path, body)
    rows = [p for p in paragraphs(root) if p.startswith("Quantitative evaluation: ")]
    assert rows == ["Quantitative evaluation: Liu [2] – D – 0.201 – 1.584 – 6.471",
                    "Quantitative evaluation: DVSO [3] – D^*S – 0.097 – 0.734 – 4.442"]
    assert cited_rids(root) == ["ross2002", "wilson1974", "lee2019"]


def test_a_credit_line_without_a_colon_goes_on_with_the_sentence_that_describes_the_figure():
    # "Source \cite{x}." at a caption's end, the colon left out: a credit line as "Source: [30]" is, with no words
    # of its own; a sentence that opens with "Source" and says something is left alone
    par = paragraph("Traceroute visualisation of an IP packet reaching a server. The left nodes are the sources. "
                    "Source [25].", "[25]")
    assert sentences_of(par) == ["Traceroute visualisation of an IP packet reaching a server.",
                                 "The left nodes are the sources. Source [25]."]
    par = paragraph("The REST architecture enhanced with CoAP. Sources [44, 45]", "[44, 45]")
    assert sentences_of(par) == ["The REST architecture enhanced with CoAP. Sources [44, 45]"]
    par = paragraph("It holds. Source [2] gives the bound. We follow [3].", "[2]", "[3]")
    assert sentences_of(par) == ["It holds.", "Source [2] gives the bound.", "We follow [3]."]


def test_a_bib_entry_opened_on_the_line_that_closes_the_one_before_is_read(tmp_path):
    # "}@article{svm2," (two entries run together by a bibliography tool): BibTeX starts an entry at any "@", so
    # both entries are in the bibliography and the citation of the second one links
    bib = BIB.rstrip() + "\n" + r"""@article{cao2017,
  author = {Cao, Jie and Fang, Zhiyi},
  title = {Network traffic classification},
  journal = {Int. J. Netw. Manag.},
  year = {2017}
}@article{svm2,
  author = {Yuan, Ruixi and Li, Zhu},
  title = {An SVM-based machine learning method for accurate internet traffic classification},
  journal = {Information Systems Frontiers},
  year = {2010}
}
"""
    body = r"""\section{Related work}
Statistics such as packet sizes serve for classification \cite{cao2017,svm2}.
In \cite{svm2}, the authors use an SVM to classify broad application categories."""
    root = convert(tmp_path, body, bib=bib)
    assert cited_rids(root) == ["cao2017 svm2", "svm2"]
    refs = {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}
    assert "An SVM-based machine learning method" in refs["svm2"]
    assert "In [2], the authors use an SVM to classify broad application categories." in " ".join(paragraphs(root))


def test_a_table_rows_cells_after_a_parenthesis_and_a_marker_stay_in_its_sentence():
    # "SuperDepth (1024 x 382) [112] – S – 0.112 – 0.875": syntok ends a sentence after a parenthesis and a marker
    # before the dash that parts a row's cells; a dash opens no sentence where no sentence end stands before it,
    # while after a full stop it may ("… (see [29]). – First, …")
    par = paragraph("Quantitative evaluation: SuperDepth (1024 x 382) [29] – S – 0.112 – 0.875", "[29]")
    assert sentences_of(par) == ["Quantitative evaluation: SuperDepth (1024 x 382) [29] – S – 0.112 – 0.875"]
    par = paragraph("We consider two cases (see [29]). – First, the easy one [30].", "[29]", "[30]")
    assert sentences_of(par) == ["We consider two cases (see [29]).", "– First, the easy one [30]."]


def test_an_input_whose_letter_case_differs_from_its_files_is_read_as_tex_on_macos_reads_it(tmp_path):
    # a thesis written on macOS: \include{chapters/Introduction} for chapters/introduction.tex, \input{Sections/
    # Methods} for sections/methods.tex. TeX finds them on the authors' case-insensitive file system, so the
    # chapters are the paper's text, not section files the source lacks; a name that matches no file in any
    # letter case is still missing
    from test_03_latex_r28_classes import latex
    body = r"""\include{chapters/Introduction}
\input{Sections/Methods}
\input{chapters/Outlook}"""
    folder = tmp_path / "src"
    convert(tmp_path, body, files={
        "chapters/introduction.tex": "\\chapter{Introduction}\nPort calls are planned from shared arrival times "
                                     "\\cite{lee2019}.\n",
        "sections/methods.tex": "\\chapter{Methods}\nThe control problem is solved by a direct method "
                                "\\cite{ross2002}.\n"})
    result = latex.convert_source(folder)
    root = etree.fromstring(result.xml)
    assert "Port calls are planned from shared arrival times [1]." in paragraphs(root)
    assert "The control problem is solved by a direct method [2]." in paragraphs(root)
    assert cited_rids(root) == ["lee2019", "ross2002"]
    assert "chapters/Outlook" in result.partial and "Introduction" not in result.partial
