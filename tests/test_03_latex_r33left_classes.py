"""Stage 03's LaTeX route: classes that earlier held-out rounds of issue 25 saw on real sources and left (round 33,
branch r33left), each on a source the test writes itself."""
from __future__ import annotations

from test_03_latex_r28_classes import BIB, cited_rids, convert, latex, paragraphs

PAPER = r"""\documentclass{article}
\usepackage{natbib}
\begin{document}
The basin is ungauged \citep{lee2019}.
\bibliographystyle{plainnat}
\bibliography{refs}
\end{document}
"""

# the copy kept from before the revision: it cites two works more, both with an entry, so it covers more keys with
# an entry than the paper does
OLD = PAPER.replace(r"ungauged \citep{lee2019}.", r"ungauged \citep{lee2019}, solved as usual \citep{ross2002}, "
                    r"by renormalization \citep{wilson1974}.")


def _folder(tmp_path, files: dict[str, str]):
    folder = tmp_path / "src"
    folder.mkdir(parents=True)
    (folder / "refs.bib").write_text(BIB, encoding="utf-8")
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_an_old_or_backup_copy_beside_the_paper_is_not_taken_for_the_paper(tmp_path):
    # MNRAS source: MAIN.tex beside MAIN_old.tex, the copy before the revision, which cites more keys with an entry
    # and so won the vote; a document whose name is another's with "old", "backup", "bak", "copy" added is ranked
    # after the one it copies, whatever it cites
    for copy in ("MAIN_old.tex", "MAIN-backup.tex", "MAIN.bak.tex", "old_MAIN.tex", "MAIN_v1.tex"):
        folder = _folder(tmp_path / copy, {"MAIN.tex": PAPER, copy: OLD})
        notes: list[str] = []
        assert latex.find_main_file(folder, notes).name == "MAIN.tex", copy
        assert "not an older copy" in notes[0]
    # of two numbered versions the later is the paper
    folder = _folder(tmp_path / "versions", {"paper_v2.tex": PAPER, "paper_v1.tex": OLD})
    assert latex.find_main_file(folder).name == "paper_v2.tex"


def test_a_version_number_beside_an_unnumbered_name_decides_nothing(tmp_path):
    # "paper_v2.tex" beside "paper.tex": either may be the later; the other rules decide (here the keys with an
    # entry), as before
    folder = _folder(tmp_path, {"paper.tex": PAPER, "paper_v2.tex": OLD})
    assert latex.find_main_file(folder).name == "paper_v2.tex"
    # a name that only ends in letters of the words is no copy ("scold", "manuscript_bold")
    folder = _folder(tmp_path / "words", {"bold.tex": PAPER, "b.tex": OLD})
    assert latex.find_main_file(folder).name == "b.tex"


def test_a_citation_in_a_tcolorbox_title_option_is_read(tmp_path):
    # \begin{uuyellowbox}[title=... \cite{x}] (an environment defined on tcolorbox, the option passed down) and
    # tcolorbox's own title={...}: the box prints its title in a bar above the body; its citation was dropped
    # with the options
    preamble = r"""\usepackage{tcolorbox}
\newenvironment{uuyellowbox}[1][]%
{\begin{tcolorbox}[colback=yellow!40,colframe=yellow!80,#1]}%
{\end{tcolorbox}}"""
    body = r"""The ports are busy \cite{lee2019}.

\begin{uuyellowbox}[title=Top-1 calibration does not imply good failure prediction \cite{wilson1974}]
The body of the box cites nothing.
\end{uuyellowbox}

\begin{tcolorbox}[colback=red!5, title={A direct method, as first used \cite{ross2002}}, fonttitle=\bfseries]
Nor does this one.
\end{tcolorbox}

\begin{tcolorbox}[colback=red!5, title=Options only]
A box whose title cites nothing prints as before.
\end{tcolorbox}"""
    root = convert(tmp_path, body, preamble=preamble)
    assert cited_rids(root) == ["lee2019", "wilson1974", "ross2002"]
    texts = paragraphs(root)
    assert "Top-1 calibration does not imply good failure prediction [2]" in texts
    assert "A direct method, as first used [3]" in texts
    assert "The body of the box cites nothing." in texts
    assert not any("Options only" in t or "colback" in t for t in texts)
