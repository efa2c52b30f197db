"""Stage 03's LaTeX route: classes of source that issue 25's held-out round 31a (physics, astronomy, mathematics,
statistics, chemistry and earth-science sources) showed, each on a source the test writes itself."""
from __future__ import annotations

from test_03_latex_r28_classes import cited_rids, convert, paragraphs


def test_sections_found_through_the_documents_input_path_are_read(tmp_path):
    # a PoS proceedings' main file sets LaTeX's own search path for \input (``\def\input@path{{sections/}}``) and
    # then names its section files bare (``\input{Intro}``): TeX finds them in sections/, and so must we, or the
    # body is empty and the bibliography, cited nowhere, reads as none
    preamble = "\\makeatletter\n\\def\\input@path{ {sections/}{extra/} }\n\\makeatother"
    body = "\\section{Introduction}\n\\input{Intro}\n\\section{Results}\n\\input{Results}"
    files = {"sections/Intro.tex": "Diamond sensors were proposed for the upgrade \\cite{lee2019}.\n",
             "extra/Results.tex": "The rate stays flat up to high fluxes \\cite{ross2002}.\n"}
    root = convert(tmp_path, body, preamble=preamble, files=files)
    assert cited_rids(root) == ["lee2019", "ross2002"]
    assert "Diamond sensors were proposed for the upgrade [1]." in paragraphs(root)


def test_an_input_path_in_a_comment_adds_no_folder(tmp_path):
    # a commented-out \input@path is no search path: a bare name that only a folder it names would hold stays
    # missing (and the conversion says so), while the file beside the main file is read as before
    preamble = "%\\def\\input@path{{sections/}}"
    body = "\\input{Intro}\n\\input{Local}"
    files = {"sections/Intro.tex": "Hidden text \\cite{lee2019}.\n",
             "Local.tex": "Local text \\cite{ross2002}.\n"}
    root = convert(tmp_path, body, preamble=preamble, files=files)
    assert cited_rids(root) == ["ross2002"]


def test_keys_the_named_bib_lacks_are_read_from_the_sources_other_bib(tmp_path):
    # an AMT paper names one .bib (``\bibliography{CooperAMT.bib}``) and cites works whose entries stand in the
    # author's other .bib beside it (the repository's PDF prints them): those keys link to the entries there, the
    # named file's own entry of a key is the one read, and a key no .bib holds stays without an entry
    body = (r"Friehe and Khelif \citep{friehe1992} suggested a rate; "
            r"see also \citet{lee2019} and \citet{nowhere2000}.")
    other = r"""@article{friehe1992,
  author = {Friehe, C. A. and Khelif, D.}, title = {Fast-response aircraft temperature sensors},
  journal = {J. Atmos. Ocean. Tech.}, year = {1992}}
@article{lee2019,
  author = {Other, A.}, title = {A stale copy of the entry}, journal = {Old Journal}, year = {1901}}
"""
    root = convert(tmp_path, body, preamble=r"\usepackage{natbib}", files={"WAC.bib": other})
    assert cited_rids(root) == ["friehe1992", "lee2019"]
    titles = {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}
    assert "Fast-response aircraft temperature sensors" in titles["friehe1992"]
    assert "Port call optimisation" in titles["lee2019"]
