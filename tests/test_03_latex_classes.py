"""Stage 03's LaTeX route: classes of source that the development set devsets/latex showed (issue 25), each on a
source the test writes itself."""
from __future__ import annotations

from pathlib import Path

from lxml import etree

from helpers import load_stage

latex = load_stage("03").latex_backend

BIB = r"""@article{schmidt2020,
  author = {Schmidt, S. J. and Malz, A. I. and Soo, J. Y. H.},
  title = {Evaluation of probabilistic photometric redshift estimation approaches},
  journal = {Monthly Notices of the Royal Astronomical Society}, year = {2020}, volume = {499}}
@article{lee2019,
  author = {Lee, J. and Kim, S.}, title = {Port call optimisation with shared arrival times},
  journal = {Maritime Policy Review}, year = {2019}}
@misc{joss2022,
  author = {Wagg, T. and Breivik, K.}, title = {LEGWORK: A python package for LISA sources},
  howpublished = {Journal of Open Source Software}, year = {2022}}
@misc{v8, author = {Google}, title = {V8 JavaScript engine}, year = {2018}}
@misc{duktape, author = {Vaarala, S.}, title = {Duktape embeddable JavaScript engine}, year = {2018}}
"""


def convert(tmp_path: Path, body: str, preamble: str = "", cls: str = "article", bib: str = BIB,
            files: dict[str, str] | None = None) -> etree._Element:
    """Write main.tex (natbib, author-year) and refs.bib into a folder, convert it, return the JATS root."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.tex").write_text(
        f"\\documentclass{{{cls}}}\n\\usepackage[authoryear,round]{{natbib}}\n{preamble}\n\\begin{{document}}\n"
        f"{body}\n\\bibliographystyle{{plainnat}}\n\\bibliography{{refs}}\n\\end{{document}}\n", encoding="utf-8")
    (folder / "refs.bib").write_text(bib, encoding="utf-8")
    for name, text in (files or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
    return etree.fromstring(latex.convert_source(folder).xml)


def paragraphs(root: etree._Element) -> list[str]:
    return [" ".join("".join(p.itertext()).split()) for p in root.find("body").iter("p")]


def linked(root: etree._Element) -> list[tuple[str, str]]:
    """(marker text, rid) of every body citation, in order."""
    return [(x.text, x.get("rid")) for x in root.find("body").iter("xref")]


def test_inline_tikz_drawing_in_a_table_row_prints_no_text(tmp_path):
    # a macro that marks a cell for an overlay (\tikz[overlay] \node ... ;) is a drawing, not words: a row that
    # cites keeps its cells and none of the TikZ path
    preamble = r"""\usepackage{tikz}
\newcommand\markbottomright[1]{%
    \tikz[overlay,remember picture]
        \node (marker-#1-b) at (0,0) {};%
    \tikz[overlay,remember picture,thick,dashed,inner sep=2pt]
        \node[draw,rectangle,fit=(marker-#1-a.center) (marker-#1-b.center)] {};%
}"""
    body = r"""\section{Engines}
The engines we test are widely used.
\begin{table}\caption{Engines selected}
\begin{tabular}{llr}
Google & V8 engine release & \cite{v8} \\
Duktape & embeddable engine tests & \cite{duktape}\markbottomright{c1} \\
\end{tabular}\end{table}
Inline drawings such as \tikz \draw (0,0) -- (1,1); stay out of the text as well \citep{lee2019}."""
    root = convert(tmp_path, body, preamble)
    text = " ".join(paragraphs(root))
    assert "overlay" not in text and "marker" not in text and "rectangle" not in text and "(0,0)" not in text
    assert "Duktape – embeddable engine tests – Vaarala (2018)" in text
    assert "Inline drawings such as stay out of the text as well (Lee and Kim, 2019)." in text


def test_citetalias_prints_the_text_defcitealias_gives_its_key(tmp_path):
    # natbib: \defcitealias{key}{text}; \citetalias prints the text, \citepalias the text in parentheses
    preamble = r"\defcitealias{schmidt2020}{Schmidt \& Malz et al.}"
    body = r"""\section{Metrics}
\citetalias{schmidt2020} showed that ensemble metrics can be fooled.
Such metrics mislead \citepalias{schmidt2020}, as does the PIT \citep{lee2019}."""
    root = convert(tmp_path, body, preamble)
    assert linked(root) == [("Schmidt & Malz et al.", "schmidt2020"), ("Schmidt & Malz et al.", "schmidt2020"),
                            ("Lee and Kim, 2019", "lee2019")]
    text = " ".join(paragraphs(root))
    assert "Such metrics mislead (Schmidt & Malz et al.), as does the PIT (Lee and Kim, 2019)." in text


def test_abstract_that_cites_a_work_the_body_never_cites_is_read(tmp_path):
    # the abstract is front matter (as CERMINE has it), but where it is the only place a work is cited (a JOSS
    # note under an AAS abstract) its sentences are the work's citing sentences
    body = r"""\begin{abstract}
We present a package for gravitational-wave sources \citep{schmidt2020}.
\noindent Software reviewed by the Journal of Open Source Software \citep{joss2022}
\end{abstract}
\section{Introduction}
Photometric redshifts need calibrated posteriors \citep{schmidt2020}."""
    root = convert(tmp_path, body)
    assert paragraphs(root)[0].startswith("We present a package for gravitational-wave sources (Schmidt et al., 2020).")
    assert ("Wagg and Breivik, 2022", "joss2022") in linked(root)
    # an abstract citing only what the body cites stays out of the body
    (tmp_path / "b").mkdir()
    other = convert(tmp_path / "b", body.replace(r"\citep{joss2022}", ""))
    assert all("We present a package" not in p for p in paragraphs(other))


def test_aa_tablebib_is_the_tables_notes_and_its_citations_are_linked(tmp_path):
    # A&A's \tablebib{...} (and \tablefoot{...}) hold a table's references, as AAS's \tablecomments: read as the
    # table's notes, never as a row (a row of labels and citations says too little to be kept), and the works
    # cited only there are linked
    body = r"""\section{Solar calibration}
The models are calibrated to the Sun \citep{lee2019}.
\begin{table}\caption{Solar properties}
\begin{tabular}{lcc}
Radius & 6.957 & (1) \\
Luminosity & 3.828 & (2) \\
\end{tabular}
\tablebib{(1)~\citet{v8}; (2)~\citet{duktape}.}
\end{table}"""
    root = convert(tmp_path, body, cls="aa")
    text = " ".join(paragraphs(root))
    assert "(1) Google (2018); (2) Vaarala (2018)." in text
    assert "6.957" not in text
    assert {rid for _, rid in linked(root)} == {"lee2019", "v8", "duktape"}


def test_a_word_set_in_a_math_font_is_printed_as_the_word(tmp_path):
    # $\mathtt{NumPy}$, $\texttt{pandas}$ in math: a package name set in a typewriter font, not a formula; a real
    # formula ($\sqrt{\mathrm{x}}$) stays [formula]
    body = r"""\section{Software}
We used $\mathtt{NumPy}$ \citep{lee2019}, $\texttt{pandas}$ and $\mathsf{V8}$ \citep{v8} at $\sqrt{\mathrm{x}}$ cost."""
    text = " ".join(paragraphs(convert(tmp_path, body)))
    assert "We used NumPy (Lee and Kim, 2019), pandas and V8 (Google, 2018) at [formula] cost." in text


def test_a_table_row_naming_one_thing_and_its_source_is_read_for_a_work_cited_only_there(tmp_path):
    # a table listing datasets (a name of two or three words, then the \citet of its source): for a work cited
    # nowhere else the row is its only context, and its name says what it is cited for; a row of one word, or of
    # numbers, still says too little
    body = r"""\section{Data}
The ground truth comes from radar surveys \citep{lee2019}.
\begin{table}\caption{High-resolution ground-truth datasets from ice-penetrating-radar surveys (collectively
labelled as $y$) that were used to train and to test the model. Training site locations are shown in the map.}
\begin{tabular}{ll}
Location & Citation \\
Wilkes Subglacial Basin & \citet{v8} \\
Carlson & \citet{duktape} \\
0.35 & 750 & \citet{joss2022} \\
\end{tabular}\end{table}"""
    root = convert(tmp_path, body)
    assert "Wilkes Subglacial Basin – Google (2018)" in " ".join(paragraphs(root))
    assert {rid for _, rid in linked(root)} == {"lee2019", "v8"}


def test_a_textual_citation_prints_its_page_note_inside_the_parentheses(tmp_path):
    # natbib's \citet[p.~4]{x} and biblatex's \textcite[p.~4]{x} print "Lee and Kim (2019, p. 4)", as the PDF does
    body = r"""\section{Related work}
As \citet[p.~4]{lee2019} note, and \citet[Sec.~2]{schmidt2020,v8} confirm, arrival times matter \citep[p.~7]{v8}."""
    text = " ".join(paragraphs(convert(tmp_path, body)))
    assert ("As Lee and Kim (2019, p. 4) note, and Schmidt et al. (2020); Google (2018, Sec. 2) confirm, "
            "arrival times matter (Google, 2018, p. 7).") in text


# what revtex's .bbl defines before its entries (its \href is a macro whose argument reading the cut brace derails)
REVTEX_BBL_PREAMBLE = r"""\makeatletter
\providecommand \href [0]{\begingroup \@sanitize@url \@href}%
\providecommand \@href[1]{\@@startlink{#1}\@@href}%
\providecommand \@@href[1]{\endgroup#1\@@endlink}%
\providecommand \@@startlink[1]{}%
\providecommand \@@endlink[0]{}%
\providecommand \BibitemOpen [0]{}%
\providecommand \BibitemShut  [1]{\csname bibitem#1\endcsname}%
"""


def test_percent_in_a_url_wrapped_onto_the_next_line_is_not_a_comment(tmp_path):
    # revtex's .bbl wraps a long \href at 80 columns, so a percent-encoded URL ("%5Cn") can sit on the line after the
    # \href's brace; read as a comment it cut the brace's close and the argument swallowed the entries after it (a
    # single-file submission with its .bbl pasted in linked 26 of 71 keys)
    entries = "\n".join(
        rf"""\bibitem [{{\citenamefont {{Author{i}}}(2011)}}]{{key{i}}}%
  \BibitemOpen
  \bibfield  {{author}} {{\bibinfo {{author}} {{\bibnamefont {{Author{i}}}}},\ }}\href {{http://arxiv.org/abs/1102.218{i}
  http://adsabs.harvard.edu/cgi-bin/q?bibcode=2011arXiv&type=ABSTRACT%5Cnpapers://ee00/p{i}}}
  {{\bibfield {{journal}} {{\bibinfo {{journal}} {{eprint}}\ }} (\bibinfo {{year}} {{2011}})}}\BibitemShut {{NoStop}}%"""
        for i in range(1, 7))
    body = (r"\section{Intro}" + "\n" + " ".join(rf"Survey {i} maps the sky \citep{{key{i}}}." for i in range(1, 7))
            + "\n" + r"\begin{thebibliography}{6}%" + "\n" + REVTEX_BBL_PREAMBLE + entries + "\n"
            + r"\end{thebibliography}")
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.tex").write_text("\\documentclass[aps,prd]{revtex4-1}\n\\usepackage{natbib}\n\\begin{document}\n"
                                     + body + "\n\\end{document}\n", encoding="utf-8")
    result = latex.convert_source(folder)
    root = etree.fromstring(result.xml)
    assert result.missing_keys == [] and result.partial == ""
    assert [rid for _, rid in linked(root)] == [f"key{i}" for i in range(1, 7)]
