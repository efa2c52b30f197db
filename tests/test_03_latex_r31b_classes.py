"""Stage 03's LaTeX route: classes of source that issue 25's held-out round 31b (computer science, engineering,
biology, economics and social-science sources: ACL, ICLR, CVPR, LIPIcs, TMLR, IEEEtran, apa7, sn-jnl, theses)
showed, each on a source the test writes itself."""
from __future__ import annotations

from lxml import etree

from test_03_latex_r28_classes import BIB, cited_rids, convert, latex, paragraphs


def test_a_template_placeholder_bibitem_without_a_key_does_not_crash_the_conversion(tmp_path):
    # the publisher's template left beside the paper ("elsarticle-template-num.tex", its thebibliography holding
    # "\bibitem{}" with no key): choosing the main file read that empty key as no key at all and crashed the
    # whole conversion (AttributeError); an empty \input{} is read the same way, as naming no file
    template = "\\documentclass{elsarticle}\n\\begin{document}\n\\input{}\nText.\n\\begin{thebibliography}{00}\n" \
               "\\bibitem{}\n\\end{thebibliography}\n\\end{document}\n"
    root = convert(tmp_path, "Ports share arrival times \\cite{lee2019}.", files={"elsarticle-template.tex": template})
    assert cited_rids(root) == ["lee2019"]
    assert paragraphs(root) == ["Ports share arrival times [1]."]


def test_an_author_macro_that_tests_its_argument_with_ifthenelse_prints_only_the_branch_tex_takes(tmp_path):
    # a survey's \lithead{key}{text} ("Yin et al. [44] propose …"): ifthen's \ifthenelse{\equal{#3}{}}{.}{ #3}
    # chooses a branch once the arguments are filled in; printing the test and both branches wrote each
    # sentence twice, the second time without its citation
    preamble = r"""\usepackage{ifthen}\usepackage{natbib}
\newcommand{\lithead}[3][]{\ifthenelse{\equal{#1}{}}{\citeauthor{#2}}{#1} \cite{#2}\ifthenelse{\equal{#3}{}}{.}{ #3}}"""
    body = r"""\section{Related work}
\lithead{ross2002}{propose a direct method for nonsmooth problems.} \lithead[Kogut]{wilson1974}{}"""
    root = convert(tmp_path, body, preamble=preamble)
    text = " ".join(paragraphs(root))
    assert text.count("propose a direct method") == 1
    # (natbib with the numeric plain.bst set in the body prints "[1]" for \cite: round 32b reads that style there)
    assert "Ross and Fahroo [1] propose a direct method for nonsmooth problems." in text
    assert text.endswith("Kogut [2].")
    assert cited_rids(root) == ["ross2002", "ross2002", "wilson1974"]  # \citeauthor links too
    assert latex.resolve_ifthenelse(r"\ifthenelse{\not\equal{a}{b}}{yes}{no}") == "yes"
    assert latex.resolve_ifthenelse(r"\ifthenelse{\isempty{}}{yes}{no}") == "yes"
    assert latex.resolve_ifthenelse(r"\ifthenelse{\boolean{x}}{yes}{no}") == r"\ifthenelse{\boolean{x}}{yes}{no}"


def test_a_run_in_paragraph_heading_keeps_the_citation_it_holds(tmp_path):
    # a thesis lists its datasets as \paragraph{LIVE1 dataset \cite{x}} 29 grayscale images.: the heading is
    # printed, its marker with it, and it is the one place those works are cited; run in, it goes on into the
    # text that says what the work is (a colon where TeX sets a quad), one without a citation ends as before
    body = r"""\section{Datasets}
\paragraph{LIVE1 dataset \cite{ross2002}} 29 grayscale images.
\paragraph{Berkeley Segmentation Dataset.} Training set of 200 images \cite{wilson1974}."""
    root = convert(tmp_path, body)
    assert paragraphs(root) == ["LIVE1 dataset [1]: 29 grayscale images.",
                                "Berkeley Segmentation Dataset. Training set of 200 images [2]."]
    assert cited_rids(root) == ["ross2002", "wilson1974"]


def test_a_table_row_naming_a_dataset_whose_name_holds_digits_keeps_its_citation(tmp_path):
    # "JW300 & \citet{x}" in a table of dataset sources, under the caption "Various sources of MT datasets": a
    # name with digits after its letters (JW300, WMT16) names the thing the work is cited for, as "Europarl" does
    body = r"""\section{Data}
We use datasets from various sources, given in the table \cite{lee2019}.
\begin{table}[ht]
\begin{tabular}{p{0.2\linewidth} p{0.5\linewidth}}
 Dataset & Reference \\ \hline
 Europarl & \cite{ross2002} \\
 JW300 & \cite{wilson1974} \\
\end{tabular}
\caption{Various sources of MT datasets.}
\end{table}"""
    root = convert(tmp_path, body)
    assert "Various sources of MT datasets: JW300 – [3]" in paragraphs(root)
    assert cited_rids(root) == ["ross2002", "wilson1974", "lee2019"]


def test_a_volume_is_tagged_in_the_entry_never_inside_its_printed_label_or_a_longer_number(tmp_path):
    # entry 35 of a numbered list, volume 5, pages 135-146: the volume tag went round the "5" of "[35]"
    bib = BIB + r"""@article{boj2017,
  author = {Bojanowski, Piotr and Grave, Edouard}, title = {Enriching word vectors with subword information},
  journal = {Transactions of the ACL}, volume = {5}, pages = {135--146}, year = {2017}}
"""
    ref = latex.parse_bib(bib, {"boj2017"})[0]
    el = latex.jats_reference(ref, 35)
    text = etree.tostring(el, encoding="unicode")
    assert "[35] " in text and "[3<volume>" not in text
    assert el.find(".//volume").text == "5"
    assert "135" in el.find(".//volume").tail
