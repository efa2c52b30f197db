"""Stage 03's LaTeX route: classes of source that issue 25's held-out round 32a (physics, astronomy, mathematics,
statistics, chemistry, earth and climate science sources) showed, each on a source the test writes itself."""
from __future__ import annotations

from test_03_latex_r28_classes import BIB, cited_rids, latex

PAPER = r"""\documentclass{article}
\usepackage{natbib}
\begin{document}
The basin is ungauged \citep{lee2019}, and the model is solved as usual \citep{ross2002}.
\bibliographystyle{plainnat}
\bibliography{refs}
\end{document}
"""

# what latexdiff writes for the same paper against an older draft that cited a third work: the deleted text is kept
# (struck out), so the difference file cites one key more than the paper, every one with an entry
DIFF = r"""%DIF LATEXDIFF DIFFERENCE FILE
%DIF DEL old.tex   Mon Jan 14 22:03:23 2019
%DIF ADD new.tex   Mon Jan 14 22:02:51 2019
\documentclass{article}
\usepackage{natbib}
%DIF PREAMBLE EXTENSION ADDED BY LATEXDIFF
%DIF UNDERLINE PREAMBLE %DIF PREAMBLE
\RequirePackage[normalem]{ulem} %DIF PREAMBLE
\providecommand{\DIFadd}[1]{{\protect\color{blue}\uwave{#1}}} %DIF PREAMBLE
\providecommand{\DIFdel}[1]{{\protect\color{red}\sout{#1}}}                      %DIF PREAMBLE
\providecommand{\DIFaddbegin}{} %DIF PREAMBLE
\providecommand{\DIFaddend}{} %DIF PREAMBLE
\providecommand{\DIFdelbegin}{} %DIF PREAMBLE
\providecommand{\DIFdelend}{} %DIF PREAMBLE
%DIF END PREAMBLE EXTENSION ADDED BY LATEXDIFF
\begin{document}
The basin is ungauged \citep{lee2019}, and the model is solved \DIFdelbegin \DIFdel{by renormalization
}\citep{wilson1974}\DIFdelend \DIFaddbegin \DIFadd{as usual} \citep{ross2002}\DIFaddend.
\bibliographystyle{plainnat}
\bibliography{refs}
\end{document}
"""


def _source(tmp_path, files: dict[str, str]):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "refs.bib").write_text(BIB, encoding="utf-8")
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_latexdiff_file_beside_the_paper_is_not_taken_for_the_paper(tmp_path):
    # a Copernicus (HESS, GMD) revision keeps latexdiff's output beside the manuscript: it cites the deleted
    # text's keys too, so it covers more keys with an entry than the paper, and was taken for the main file (its
    # struck-out sentences read as the paper's); a difference file is ranked after every other document
    folder = _source(tmp_path, {"manuscript.tex": PAPER, "manuscript-diff1.tex": DIFF})
    notes: list[str] = []
    assert latex.find_main_file(folder, notes).name == "manuscript.tex"
    assert "not a latexdiff file" in notes[0]
    from lxml import etree
    root = etree.fromstring(latex.convert_source(folder).xml)
    assert cited_rids(root) == ["lee2019", "ross2002"]


def test_a_latexdiff_file_found_by_its_preamble_alone_is_not_taken_either(tmp_path):
    # latexdiff --no-label (or an author's editing) drops the header line; the preamble it adds still says what
    # the file is
    diff = DIFF.split("\n", 3)[3]
    folder = _source(tmp_path, {"paper.tex": PAPER, "diff.tex": diff})
    assert latex.find_main_file(folder).name == "paper.tex"


def test_a_latexdiff_file_that_is_the_only_document_is_still_converted(tmp_path):
    # where the difference file is the one document there, it is the source: converted, not refused
    folder = _source(tmp_path, {"diff.tex": DIFF})
    assert latex.find_main_file(folder).name == "diff.tex"
    from lxml import etree
    root = etree.fromstring(latex.convert_source(folder).xml)
    assert "lee2019" in cited_rids(root)
