"""Stage 03's LaTeX route: classes of source that issue 25's round-28 held-out set showed (theses with chapters in
\\input files, biblatex lists of publications), each on a source the test writes itself."""
from __future__ import annotations

from pathlib import Path

from lxml import etree

from helpers import load_stage

latex = load_stage("03").latex_backend

BIB = r"""@article{lee2019,
  author = {Lee, J. and Kim, S.}, title = {Port call optimisation with shared arrival times},
  journal = {Maritime Policy Review}, year = {2019}}
@article{ross2002,
  author = {Ross, I. M. and Fahroo, F.}, title = {A direct method for solving nonsmooth optimal control problems},
  journal = {Proceedings of the IFAC World Congress}, year = {2002}}
@article{wilson1974,
  author = {Wilson, K. G. and Kogut, J.}, title = {The renormalization group and the epsilon expansion},
  journal = {Physics Reports}, year = {1974}, volume = {12}}
"""


def convert(tmp_path: Path, body: str, preamble: str = r"\usepackage{listings}", bib: str = BIB,
            files: dict[str, str] | None = None, cls: str = "report") -> etree._Element:
    """Write main.tex (numeric \\cite) and refs.bib into a folder, convert it, return the JATS root."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.tex").write_text(
        f"\\documentclass{{{cls}}}\n{preamble}\n\\begin{{document}}\n{body}\n\\bibliographystyle{{plain}}\n"
        f"\\bibliography{{refs}}\n\\end{{document}}\n", encoding="utf-8")
    (folder / "refs.bib").write_text(bib, encoding="utf-8")
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return etree.fromstring(latex.convert_source(folder).xml)


def paragraphs(root: etree._Element) -> list[str]:
    return [" ".join("".join(p.itertext()).split()) for p in root.find("body").iter("p")]


def cited_rids(root: etree._Element) -> list[str]:
    return [x.get("rid") for x in root.find("body").iter("xref")]


def test_a_listing_whose_end_is_mistyped_runs_to_the_next_listings_end_and_the_chapters_after_it_are_read(tmp_path):
    # listings reads verbatim up to the first \end{lstlisting}: a mistyped \end{lstlistin} is listing text, and so
    # is the \begin{lstlisting} of the next listing; the listing ends at that one's \end, and the text (and the
    # chapters \input after it) is read again — not swallowed to the end of the document by counting nesting
    supplement = r"""\section{Initialization}
We set up the \lstinline|funcs| structure first \cite{lee2019}.
\begin{lstlisting}[style=customBash]
>> funcs
  sys_dirderi: {[function_handle]  [function_handle]}
\end{lstlistin}
This paragraph is inside the runaway listing, as LaTeX prints it.
\begin{lstlisting}
% construct steady-state point
stst=dde_stst_create('x',[0;0]);
\end{lstlisting}
The direct method was solved as in the literature \cite{ross2002}.
"""
    chapter = r"""\section{Introduction}
Wilson and Kogut entertained chaotic flows in their classic review \cite{wilson1974}.
"""
    body = r"""\chapter{Switching}
\input{./sections/switching/supplement}
\chapter{Chaotic RG flow}
\input{./sections/chaotic/main.tex}"""
    root = convert(tmp_path, body, files={"sections/switching/supplement.tex": supplement,
                                          "sections/chaotic/main.tex": chapter})
    text = " ".join(paragraphs(root))
    assert cited_rids(root) == ["lee2019", "ross2002", "wilson1974"]
    assert "The direct method was solved as in the literature [2]." in text
    assert "Wilson and Kogut entertained chaotic flows in their classic review [3]." in text
    assert "runaway listing" not in text and "dde_stst_create" not in text and "function_handle" not in text


def test_a_verbatim_block_showing_latex_ends_at_its_own_first_end(tmp_path):
    # a verbatim block that shows a \begin{verbatim} as an example does not nest: it ends at the first \end{verbatim}
    body = r"""\chapter{Usage}
Write the block as follows.
\begin{verbatim}
\begin{verbatim}
\end{verbatim}
The method follows earlier work on port calls \cite{lee2019}."""
    root = convert(tmp_path, body)
    assert "The method follows earlier work on port calls [1]." in " ".join(paragraphs(root))
    assert cited_rids(root) == ["lee2019"]


def test_biblatex_hooks_before_a_fullcite_in_a_list_of_publications_print_no_text(tmp_path):
    # a thesis's list of publications: \AtNextCite{\defcounter{maxnames}{99}}\fullcite{key} prints the whole entry
    # with every author; the hook and the counter setting are settings, never words of the text
    preamble = r"\usepackage[backend=biber,style=numeric]{biblatex}" "\n" r"\addbibresource{refs.bib}"
    body = r"""\chapter*{Publications}
\noindent\AtNextCite{\defcounter{maxnames}{99}}\fullcite{ross2002}\\
\AtEveryCitekey{\clearfield{note}}\AtNextBibliography{\small}
\chapter{Introduction}
Trajectories were optimised by pseudospectral methods \cite{ross2002}.
\printbibliography"""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.tex").write_text(f"\\documentclass{{book}}\n{preamble}\n\\begin{{document}}\n{body}\n"
                                     "\\end{document}\n", encoding="utf-8")
    (folder / "refs.bib").write_text(BIB, encoding="utf-8")
    root = etree.fromstring(latex.convert_source(folder).xml)
    text = " ".join(paragraphs(root))
    assert "maxnames" not in text and "99" not in text and "clearfield" not in text and "small" not in text
    assert "Ross" in text and "Trajectories were optimised by pseudospectral methods" in text
