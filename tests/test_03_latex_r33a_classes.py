"""Stage 03's LaTeX route: classes of source that issue 25's held-out round 33a (mathematics, statistics,
economics, operations research, signal processing sources) showed, each on a source the test writes itself."""
from __future__ import annotations

from test_03_latex_r28_classes import convert, paragraphs


def _citing(root) -> list[tuple[str, list[str]]]:
    """Each body paragraph that cites: its text and the keys it cites, in order."""
    out = []
    for p in root.iter("p"):
        rids = [x.get("rid") for x in p.iter("xref") if x.get("ref-type") == "bibr"]
        if rids:
            out.append(("".join(p.itertext()), rids))
    return out


def test_a_subsection_heading_that_cites_leads_its_first_paragraph(tmp_path):
    # a tutorial or survey titles a subsection by the work it presents ("\subsection{PILCO by \citet{x}}"); the
    # heading was kept as the section's title without its citation, so a work cited only there was linked nowhere.
    # The heading runs into the section's first paragraph, as a run-in \paragraph heading does
    body = (r"\section{Methods}" "\n" r"\subsection{Direct collocation by \citet{ross2002}}\label{sec:dc}" "\n"
            r"Direct collocation transcribes the control problem into a nonlinear program." "\n\n"
            r"It is used widely \citep{lee2019}.")
    root = convert(tmp_path, body, preamble=r"\usepackage{natbib}", cls="article")
    cites = _citing(root)
    assert cites[0][1] == ["ross2002"]
    assert cites[0][0].startswith("Direct collocation by ")
    assert "transcribes the control problem" in cites[0][0]
    assert cites[1][1] == ["lee2019"]
    # the section keeps its title, without the citation
    titles = ["".join(t.itertext()) for t in root.iter("title")]
    assert "Direct collocation by" in titles


def test_a_heading_that_cites_nothing_is_no_paragraph(tmp_path):
    body = r"\section{Direct collocation}" "\n" r"It is used widely \citep{lee2019}."
    root = convert(tmp_path, body, preamble=r"\usepackage{natbib}", cls="article")
    assert not any(p.startswith("Direct collocation") for p in paragraphs(root))


def test_a_starred_caption_that_cites_is_read(tmp_path):
    # the caption package's \caption* (a figure's source line, unnumbered: "Source: \citet{x}") was read as no
    # caption, so a work cited only there was linked nowhere
    body = (r"The ratio has risen since 2015 \citep{lee2019}." "\n"
            r"\begin{figure}[h]\centering" "\n" r"\includegraphics{ratio.png}" "\n"
            r"\caption*{Source: \citet{ross2002}}" "\n" r"\end{figure}")
    root = convert(tmp_path, body, preamble=r"\usepackage{natbib}\usepackage{caption}", cls="article")
    keys = [k for _, rids in _citing(root) for k in rids]
    assert "ross2002" in keys and "lee2019" in keys
    # nor is the starred caption read as a table row of its own figure
    assert sum(k == "ross2002" for k in keys) == 1
