"""Stage 03's LaTeX route: classes of source that issue 25's held-out round 32b (computer science, engineering,
biology, medicine, economics and social-science sources: acmart, MDPI, sn-jnl, llncs, NeurIPS, USENIX, eLife,
Frontiers, apa7, theses) showed, each on a source the test writes itself."""
from __future__ import annotations

from pathlib import Path

from lxml import etree

from test_03_latex_r28_classes import BIB, cited_rids, latex, paragraphs


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _document(body: str, cls: str = "article", bib: str = "refs", preamble: str = "") -> str:
    return f"\\documentclass{{{cls}}}\n{preamble}\\begin{{document}}\n{body}\n\\bibliographystyle{{plain}}\n" \
           f"\\bibliography{{{bib}}}\n\\end{{document}}\n"


def test_a_document_at_the_top_of_the_source_is_the_main_file_before_one_kept_in_a_subfolder(tmp_path):
    # the paper at the top (main.tex, sn-jnl) beside an earlier thesis kept in previous-work/ that cites more keys
    # of the same .bib: arXiv typesets a top-level file, and the copy in a subfolder is no main file while one is
    # above it; the subfolder's document is still taken where the top holds none
    folder = _write(tmp_path / "src", {
        "main.tex": _document("Ports share arrival times \\cite{lee2019}."),
        "previous-work/thesis.tex": _document("Earlier work \\cite{lee2019,ross2002,wilson1974}. More \\cite{ross2002}.",
                                              cls="report", bib="../refs"),
        "refs.bib": BIB})
    notes: list[str] = []
    assert latex.find_main_file(folder, notes) == folder / "main.tex"
    assert "it is at the top of the source" in notes[0]
    root = etree.fromstring(latex.convert_source(folder).xml)
    assert paragraphs(root) == ["Ports share arrival times [1]."]
    only_nested = _write(tmp_path / "nested", {
        "paper/main.tex": _document("Ports \\cite{lee2019}."),
        "paper/draft.tex": _document("Draft \\cite{lee2019,ross2002}."),
        "paper/refs.bib": BIB})
    assert latex.find_main_file(only_nested) == only_nested / "paper" / "draft.tex"  # more keys, same depth


def test_a_document_whose_documentclass_sits_in_an_input_preamble_file_is_a_candidate_beside_templates(tmp_path):
    # OctreeLOD.tex: "\input{./src/settings.tex}" (which holds \documentclass{isprs} and the packages) then
    # \begin{document}, beside the journal's two template documents that each hold their own \documentclass:
    # only the templates were candidates, and the paper's 41 cited keys were lost ("no bibliography")
    settings = "\\documentclass{article}\n\\usepackage{natbib}\n"
    paper = "\\input{./src/settings.tex}\n\\title{Implicit levels of detail}\n\\begin{document}\n\\maketitle\n" \
            "\\input{./src/introduction.tex}\n\\bibliographystyle{plain}\n\\bibliography{./OctreeLOD}\n\\end{document}\n"
    intro = "\\section{Introduction}\nPoint clouds are ordered \\cite{lee2019}, and levels follow \\cite{ross2002}.\n"
    template = "\\documentclass{article}\n\\begin{document}\nA template sentence \\cite{tmpl}.\n" \
               "\\bibliographystyle{plain}\n\\bibliography{template}\n\\end{document}\n"
    folder = _write(tmp_path / "src", {
        "OctreeLOD.tex": paper, "src/settings.tex": settings, "src/introduction.tex": intro,
        "OctreeLOD.bib": BIB, "template_eng.tex": template, "template_fr.tex": template,
        "template.bib": "@article{tmpl, author={A, B}, title={A template entry}, journal={J}, year={2020}}\n"})
    assert latex.find_main_file(folder) == folder / "OctreeLOD.tex"
    root = etree.fromstring(latex.convert_source(folder).xml)
    assert cited_rids(root) == ["lee2019", "ross2002"]
    # a body file that \inputs no preamble of its own is no document
    lone = _write(tmp_path / "lone", {"main.tex": _document("Text \\cite{lee2019}."), "refs.bib": BIB,
                                      "chapter.tex": "\\begin{document}\nStray \\cite{ross2002}.\n"})
    assert latex.find_main_file(lone) == lone / "main.tex"


def test_a_natbib_bibitem_with_an_empty_year_keeps_its_short_name_as_the_label(tmp_path):
    # MDPI's author-year .bbl: an entry with no year is "\bibitem[Woollen et~al.()Woollen, Marsh, Laird, and
    # Lesser]{w}": its label was read as the whole bracket, and \citep printed "Woollen et al.()Woollen, Marsh,
    # Laird, and Lesser, n.d." as the marker
    bbl = r"""\begin{thebibliography}{2}
\bibitem[Woollen et~al.()Woollen, Marsh, Laird, and
  Lesser]{woollen1992}
Woollen, B.H.; Marsh, J.R.; Laird, W.J.D.; Lesser, J.E.
\newblock The metabolism of cypermethrin in man.
\bibitem[Leng et~al.(1997)Leng, Kuhn, and Idel]{leng1997}
Leng, G.; Kuhn, K.H.; Idel, H.
\newblock Biological monitoring of pyrethroids in blood.
\newblock {\em Science of the total environment} {\bf 1997}.
\end{thebibliography}
"""
    main = "\\documentclass{article}\n\\usepackage{natbib}\n\\begin{document}\n" \
           "Urinary metabolites were measured \\citep{leng1997, woollen1992}.\n" \
           "\\bibliographystyle{mdpi}\n\\bibliography{refs}\n\\end{document}\n"
    folder = _write(tmp_path / "src", {"main.tex": main, "main.bbl": bbl})
    root = etree.fromstring(latex.convert_source(folder).xml)
    assert paragraphs(root) == ["Urinary metabolites were measured (Leng et al., 1997; Woollen et al., n.d.)."]
    assert cited_rids(root) == ["leng1997 woollen1992"]  # one marker naming both


def test_a_table_cells_span_and_width_and_a_stepped_counter_are_not_printed_as_words(tmp_path):
    # an eLife table of samples ("\multirow{3}{*}{\parbox{3.4cm}{\citet{x,y}}}") and a to-do macro that steps a
    # counter ("\stepcounter{todocounter}\done[#1]{...}"): the span, the width and the counter's name came out in
    # the row's sentence ("Navrongo – 3*3.4cm[1, 2]", "Zombatodocounter"), and so did the float's placement "[h]"
    from test_03_latex_r28_classes import convert
    body = r"""\begin{table}[h]
\caption{Summary of samples}
\begin{tabular}{lll}
Ghana & Navrongo & \multirow{3}{*}{\parbox{3.4cm}{\cite{lee2019,ross2002}}}\\
Malawi & Zomba\stepcounter{todocounter} & \cite{wilson1974}\\
\end{tabular}
\end{table}
The sites differ \multirow[t]{2}{*}{in size}."""
    root = convert(tmp_path, body)
    assert paragraphs(root)[1:] == ["Summary of samples: Ghana – Navrongo – [1, 2]",
                                    "Summary of samples: Malawi – Zomba – [3]", "The sites differ in size."]
    assert cited_rids(root) == ["lee2019 ross2002", "wilson1974"]


def test_a_figure_whose_placement_holds_a_mistyped_begin_figure_ends_at_its_own_end(tmp_path):
    # a thesis chapter's "\begin{figure}[\begin{figure}[htp]": LaTeX reads the placement to the first "]" and
    # opens one figure; counting the "\begin{figure}" inside it as a second one ran that figure past its \end,
    # over the next figure and the paragraphs between them (two cited keys lost)
    from test_03_latex_r28_classes import convert
    body = r"""\section{Motes}
\begin{figure}[\begin{figure}[htp]
\centering
\caption{An Arduino mote.}
\end{figure}
A library named Arduino-Xbee \cite{lee2019} was used to parse packets.
\begin{figure}[htp]
\caption{The parts of the mote.}
\end{figure}
The basic design is named Telos \cite{ross2002}."""
    root = convert(tmp_path, body)
    assert "A library named Arduino-Xbee [1] was used to parse packets. The basic design is named Telos [2]." in \
        paragraphs(root)  # a float does not part the paragraph it sits in
    assert cited_rids(root) == ["lee2019", "ross2002"]


def test_natbib_with_a_numeric_style_set_in_the_body_prints_numbers(tmp_path):
    # a thesis loads \usepackage[square,comma]{natbib} and sets \bibliographystyle{unsrt} by its bibliography, in
    # the body: natbib then prints "Lin et al.~[1]"; only the preamble was read for the style, and with no style
    # there the citations were printed author-year ("Lin et al. Lee and Kim (2019)")
    from test_03_latex_r28_classes import convert
    body = r"Lin et al.~\cite{lee2019} and Zheng et al.~\cite{ross2002} adjust the radio power."
    root = convert(tmp_path, body, preamble=r"\usepackage[square,comma]{natbib}")
    assert paragraphs(root) == ["Lin et al. [1] and Zheng et al. [2] adjust the radio power."]
    # an author-year style there, or none at all, still prints author-year
    folder = tmp_path / "ay"
    folder.mkdir()
    root = convert(folder, r"Ports share arrival times \citep{lee2019}.", preamble=r"\usepackage{natbib}",
                   files={"x.tex": ""})
    assert paragraphs(root) == ["Ports share arrival times [1]."]  # plain.bst, the helper's style: numeric
    assert latex.citation_style(r"\usepackage{natbib}", {}, r"\bibliographystyle{plainnat}") == "author-year"
    assert latex.citation_style(r"\usepackage{natbib}", {}, r"\bibliographystyle{sn-basic}") == "author-year"
    assert latex.citation_style(r"\usepackage{natbib}", {}, "") == "author-year"
