"""Stage 03's LaTeX-source route: e-prints built on the spot (tar, gzipped .tex, PDF-only, hostile archives) go
through the stage and come out as the JATS stage 04 reads, with every citation linked to its reference."""
from __future__ import annotations

import csv
import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from lxml import etree

from demo.standins import CORPUS_DIR
from helpers import load_stage

stage = load_stage("03")
stage04 = load_stage("04")
latex = stage.latex_backend
DEMO_PDF = sorted((CORPUS_DIR / "pdfs").glob("*.pdf"))[0]

MAIN = r"""\documentclass{article}
\usepackage[authoryear,round]{natbib}
\newcommand{\mycite}[1]{\citep{#1}}
\def\both{\citet{lee2019,smith2020}}
\title{Ship data} \author{A. Writer}
\begin{document}
\maketitle
\begin{abstract}Digital twins are reviewed \citep{smith2020}.\end{abstract}
\section{Introduction}
Digital twins of propulsion systems support condition monitoring \mycite{smith2020}.
% A commented-out claim \cite{ghost2001}.
Port call data sharing reduces waiting times \citep[see][p.~3]{lee2019,smith2020}.
\iffalse Old text citing \cite{ghost2002}. \fi
\input{sections/method}
\bibliographystyle{plainnat}
\bibliography{refs}
\end{document}
"""
METHOD = r"""\section{Method}
As \both{} showed, the model of \citet*{lee2019} with $n=3$ sensors and
\begin{equation} E = mc^2 \end{equation}
works\footnote{A footnote that cites \citealp{smith2020}.} in practice \cite[Thm.~2]{lee2019}.
"""
BBL = r"""\begin{thebibliography}{2}
\providecommand{\natexlab}[1]{#1}
\bibitem[Lee and Kim(2019)]{lee2019}
J.~Lee and S.~Kim.
\newblock Port call optimisation with shared arrival times.
\newblock \emph{Maritime Policy Review}, 12:\penalty0 1--10, 2019.
\newblock doi:10.5555/mpr.2019.001.

\bibitem[Smith et~al.(2020)Smith, M{\"u}ller, and Osei]{smith2020}
A.~Smith, B.~M{\"u}ller, and K.~Osei.
\newblock Digital twins of ship propulsion systems.
\newblock \emph{Journal of Marine Engineering}, 4\penalty0 (2):\penalty0 5--9, 2020.
\newblock arXiv:2001.01234.
\end{thebibliography}
"""
BIB = r"""@string{jme = "Journal of Marine Engineering"}
@article{smith2020,
  author = {Smith, Anna and M{\"u}ller, Bernd and Osei, Kwame},
  title = {{Digital} Twins of Ship Propulsion Systems},
  journal = jme, year = 2020, volume = {4}, pages = {5--9},
  doi = {10.5555/jme.2020.0004}, eprint = {2001.01234}, archivePrefix = {arXiv}}
@inproceedings{lee2019,
  author = "Lee, J. and Kim, S.", title = "Port call optimisation with shared arrival times",
  booktitle = {Proc. Maritime Conference}, year = {2019}}
@misc{unused, title = {Never cited}, year = 2001}
"""


def targz(files: dict[str, bytes | str]) -> bytes:
    """A gzipped tar, as arXiv serves a multi-file source."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def stage_input(tmp_path: Path, sources: dict[str, bytes], pdfs: dict[str, Path] | None = None) -> Path:
    """A stage-02 output folder: sources/<id>.<ext> and pdfs/<id>.pdf."""
    root = tmp_path / "in"
    (root / "sources").mkdir(parents=True, exist_ok=True)
    (root / "pdfs").mkdir(exist_ok=True)
    for name, data in sources.items():
        (root / "sources" / name).write_bytes(data)
    for pid, pdf in (pdfs or {}).items():
        (root / "pdfs" / f"{pid}.pdf").write_bytes(pdf.read_bytes())
    return root


def run(tmp_path: Path, root: Path, **kw) -> tuple[object, dict]:
    cfg = stage.Config(input_dir=root, output_dir=tmp_path / "out", **{"workers": 1, "backend": "latex", **kw})
    return cfg, stage.main(cfg)


def read_log(cfg) -> dict[str, dict]:
    with open(cfg.output_dir / "extraction_log.csv", newline="", encoding="utf-8-sig") as fh:
        return {r["paper_id"]: r for r in csv.DictReader(fh)}


def citations(xml_path: Path) -> tuple[list[tuple[str, list[str]]], dict[str, etree._Element]]:
    """(marker text, rids) of every body xref in order, and the references by id."""
    root = etree.parse(str(xml_path)).getroot()
    refs = {r.get("id"): r for r in root.iter("ref")}
    return [(x.text, x.get("rid").split()) for x in root.find("body").iter("xref")], refs


def body_text(xml_path: Path) -> str:
    root = etree.parse(str(xml_path)).getroot()
    return " ".join("".join(p.itertext()) for p in root.find("body").iter("p"))


# --------------------------------------------------------------------------- the shapes of an e-print

def test_tar_eprint_links_every_cite_to_its_bbl_reference(tmp_path):
    root = stage_input(tmp_path, {"2601.00001v1.tar.gz": targz({
        "paper.tex": MAIN, "sections/method.tex": METHOD, "paper.bbl": BBL, "refs.bib": BIB,
        "figs/plot.png": b"\x89PNG not really"})})
    cfg, summary = run(tmp_path, root)
    row = read_log(cfg)["2601.00001v1"]
    assert (row["backend"], row["status"], row["fallback_reason"]) == ("latex", "ok", "")
    cites, refs = citations(cfg.output_dir / "2601.00001v1.cermxml")
    assert [rids for _, rids in cites] == [["smith2020"], ["lee2019", "smith2020"], ["lee2019", "smith2020"],
                                          ["lee2019"], ["lee2019"], ["smith2020"]]
    assert cites[0][0] == "Smith et al., 2020" and cites[2][0] == "Lee and Kim (2019); Smith et al. (2020)"
    assert sorted(refs) == ["lee2019", "smith2020"]  # what the .bbl prints, not every .bib entry
    smith = refs["smith2020"].find("mixed-citation")
    assert smith.findtext("article-title") == "Digital twins of ship propulsion systems"
    assert smith.findtext("source") == "Journal of Marine Engineering"
    assert smith.findtext("year") == "2020"
    assert smith.find("pub-id[@pub-id-type='arxiv']").text == "2001.01234"
    assert [s.findtext("surname") for s in smith.iter("string-name")] == ["Smith", "Müller", "Osei"]
    assert "".join(smith.itertext()).startswith("A. Smith, B. Müller, and K. Osei. Digital twins")
    lee = refs["lee2019"].find("mixed-citation")
    assert lee.find("pub-id[@pub-id-type='doi']").text == "10.5555/mpr.2019.001"
    text = body_text(cfg.output_dir / "2601.00001v1.cermxml")
    assert "ghost" not in text and "commented-out" not in text and "Old text" not in text
    assert "are reviewed" not in text  # the abstract is front matter, as in CERMINE's output
    assert "(see Lee and Kim, 2019; Smith et al., 2020, p. 3)" in text


def test_single_gzipped_tex_with_its_own_thebibliography(tmp_path):
    tex = MAIN.replace(r"\input{sections/method}", METHOD).replace(r"\bibliography{refs}", BBL)
    root = stage_input(tmp_path, {"2601.00002v1.gz": gzip.compress(tex.encode())})
    cfg, summary = run(tmp_path, root)
    assert read_log(cfg)["2601.00002v1"]["status"] == "ok"
    cites, refs = citations(cfg.output_dir / "2601.00002v1.cermxml")
    assert len(cites) == 6 and sorted(refs) == ["lee2019", "smith2020"]


def test_plain_tar_and_plain_tex_are_read_too(tmp_path):
    tex = MAIN.replace(r"\input{sections/method}", "").replace(r"\bibliography{refs}", BBL)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("main.tex")
        info.size = len(tex.encode())
        tar.addfile(info, io.BytesIO(tex.encode()))
    root = stage_input(tmp_path, {"a.tar": buf.getvalue(), "b.tex": tex.encode()})
    cfg, summary = run(tmp_path, root)
    assert summary["by_status"] == {"ok": 2}


def test_pdf_only_eprint_falls_back_to_the_pdf_backend(tmp_path):
    root = stage_input(tmp_path, {"2513.00001v1.pdf": DEMO_PDF.read_bytes()})
    cfg, summary = run(tmp_path, root, backend="auto", java="no-java-here")
    row = read_log(cfg)["2513.00001v1"]
    assert (row["backend"], row["status"]) == ("builtin", "ok")
    assert row["fallback_reason"] == "the e-print is PDF-only"
    assert summary["fell_back_to_pdf"] == {"2513.00001v1": "the e-print is PDF-only"}


def test_auto_uses_latex_where_it_converts_and_the_pdf_elsewhere(tmp_path):
    root = stage_input(tmp_path, {"p1.tar.gz": targz({"ms.tex": MAIN.replace(r"\input{sections/method}", ""),
                                                        "ms.bbl": BBL})},
                       pdfs={"p1": DEMO_PDF, "p2": DEMO_PDF})
    cfg, summary = run(tmp_path, root, backend="auto", java="no-java-here")
    log = read_log(cfg)
    assert (log["p1"]["backend"], log["p2"]["backend"]) == ("latex", "builtin")
    assert log["p2"]["fallback_reason"] == "no e-print in sources/"
    assert summary["by_backend"] == {"builtin": 1, "latex": 1}


# --------------------------------------------------------------------------- hostile and broken e-prints

def hostile_tar(member: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        good = tarfile.TarInfo("main.tex")
        good.size = len(MAIN)
        tar.addfile(good, io.BytesIO(MAIN.encode()))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buf.getvalue()


@pytest.mark.parametrize("make_member,fragment", [
    (lambda: tarfile.TarInfo("../../escaped.tex"), "unsafe member '../../escaped.tex'"),
    (lambda: tarfile.TarInfo("/tmp/absolute-h2-test.tex"), "unsafe member"),
    (lambda: _link("out", "../../../etc"), "unsafe member 'out'"),
    (lambda: _link("hard", "/etc/passwd", hard=True), "unsafe member 'hard'"),
    (lambda: _device("dev"), "unsafe member 'dev'"),
])
def test_hostile_tar_is_refused_and_nothing_lands_outside(tmp_path, make_member, fragment):
    root = stage_input(tmp_path, {"evil.tar.gz": hostile_tar(make_member())}, pdfs={"evil": DEMO_PDF})
    cfg, _ = run(tmp_path, root, backend="auto", java="no-java-here")
    row = read_log(cfg)["evil"]
    assert row["backend"] == "builtin" and fragment in row["fallback_reason"]
    assert not (tmp_path / "escaped.tex").exists() and not Path("/tmp/absolute-h2-test.tex").exists()
    assert not (cfg.output_dir / ".unpack").exists()  # the unpacked source is gone after the run


def _link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


def test_tar_bomb_is_refused_with_a_reason(tmp_path):
    bomb = targz({"main.tex": MAIN, "zeros.tex": b"\0" * 3_000_000})
    assert len(bomb) < 20_000
    root = stage_input(tmp_path, {"bomb.tar.gz": bomb}, pdfs={"bomb": DEMO_PDF})
    cfg, _ = run(tmp_path, root, backend="auto", java="no-java-here", max_source_bytes=1_000_000)
    assert "tar bomb" in read_log(cfg)["bomb"]["fallback_reason"]
    many = targz({f"f{i}.tex": "x" for i in range(30)})
    root = stage_input(tmp_path / "m", {"many.tar.gz": many}, pdfs={"many": DEMO_PDF})
    cfg, _ = run(tmp_path / "m", root, backend="auto", java="no-java-here", max_source_members=20)
    assert "more than 20 members" in read_log(cfg)["many"]["fallback_reason"]


def test_truncated_gzip_is_an_error_with_a_reason(tmp_path):
    whole = targz({"main.tex": MAIN, "main.bbl": BBL})
    root = stage_input(tmp_path, {"cut.tar.gz": whole[: len(whole) // 2]})
    with pytest.raises(SystemExit, match="no paper converted"):
        run(tmp_path, root)
    row = read_log(stage.Config(input_dir=root, output_dir=tmp_path / "out"))["cut"]
    assert row["status"] == "failed" and "truncated gzip" in row["error"]


def test_source_that_cannot_be_converted_falls_back_with_the_reason(tmp_path):
    no_main = targz({"notes.tex": r"\section{Notes} See \cite{a}."})
    no_bib = targz({"main.tex": r"\documentclass{article}\begin{document}Text \cite{a}.\end{document}"})
    root = stage_input(tmp_path, {"nomain.tar.gz": no_main, "nobib.tar.gz": no_bib},
                       pdfs={"nomain": DEMO_PDF, "nobib": DEMO_PDF})
    cfg, summary = run(tmp_path, root, backend="auto", java="no-java-here")
    log = read_log(cfg)
    assert log["nomain"]["fallback_reason"].startswith("no main file")
    assert log["nobib"]["fallback_reason"].startswith("no bibliography in the source")
    assert {r["backend"] for r in log.values()} == {"builtin"} and summary["by_status"] == {"ok": 2}


# --------------------------------------------------------------------------- what real submissions do

def test_bibliography_only_in_a_bib_file(tmp_path):
    tex = MAIN.replace(r"\input{sections/method}", METHOD).replace("[authoryear,round]", "[numbers]")
    root = stage_input(tmp_path, {"bib.tar.gz": targz({"main.tex": tex, "refs.bib": BIB})})
    cfg, _ = run(tmp_path, root)
    cites, refs = citations(cfg.output_dir / "bib.cermxml")
    assert sorted(refs) == ["lee2019", "smith2020"]  # the uncited entry is not printed
    assert cites[0][0] == "1" and cites[1][0] == "2, 1"  # numbered in order of first citation
    smith = refs["smith2020"].find("mixed-citation")
    assert smith.findtext("article-title") == "Digital Twins of Ship Propulsion Systems"
    assert smith.find("pub-id[@pub-id-type='doi']").text == "10.5555/jme.2020.0004"
    assert smith.find("pub-id[@pub-id-type='arxiv']").text == "2001.01234"
    assert smith.findtext("source") == "Journal of Marine Engineering"  # the @string resolved
    assert [s.findtext("given-names") for s in smith.iter("string-name")] == ["Anna", "Bernd", "Kwame"]
    assert refs["lee2019"].find("mixed-citation").findtext("source") == "Proc. Maritime Conference"


BIBLATEX_BBL = r"""\refsection{0}
  \datalist[entry]{nty/global//global/global}
    \entry{smith2020}{article}{}
      \name{author}{2}{}{%
        {{hash=1}{%
           family={Smith},
           familyi={S\bibinitperiod},
           given={Anna},
           giveni={A\bibinitperiod}}}%
        {{hash=2}{%
           family={M{\"u}ller},
           familyi={M\bibinitperiod},
           given={Bernd},
           giveni={B\bibinitperiod}}}%
      }
      \strng{namehash}{abc}
      \field{sortinit}{S}
      \field{labelalpha}{}
      \field{title}{Digital twins of ship propulsion systems}
      \field{journaltitle}{Journal of Marine Engineering}
      \field{year}{2020}
      \verb{doi}
      \verb 10.5555/jme.2020.0004
      \endverb
      \field{eprinttype}{arxiv}
      \verb{eprint}
      \verb 2001.01234
      \endverb
    \endentry
    \entry{lee2019}{inproceedings}{}
      \name{author}{1}{}{%
        {{hash=3}{family={Lee}, familyi={L\bibinitperiod}, given={Jin}, giveni={J\bibinitperiod}}}%
      }
      \field{title}{Port call optimisation with shared arrival times}
      \field{booktitle}{Proc. Maritime Conference}
      \field{year}{2019}
    \endentry
  \enddatalist
\endrefsection
"""


def test_biblatex_entries_and_cite_commands(tmp_path):
    tex = r"""\documentclass{article}
\usepackage[style=authoryear,backend=biber]{biblatex}
\addbibresource{refs.bib}
\begin{document}
\section{Intro}
Twins help \parencite{smith2020}. As \textcite{lee2019} found, ports wait. Data are shared \autocite[12]{lee2019}.
Both agree \cites[see][]{smith2020}{lee2019}.
\printbibliography
\end{document}
"""
    root = stage_input(tmp_path, {"bl.tar.gz": targz({"main.tex": tex, "main.bbl": BIBLATEX_BBL})})
    cfg, _ = run(tmp_path, root)
    cites, refs = citations(cfg.output_dir / "bl.cermxml")
    assert [rids for _, rids in cites] == [["smith2020"], ["lee2019"], ["lee2019"], ["smith2020", "lee2019"]]
    assert cites[1][0] == "Lee (2019)"
    smith = refs["smith2020"].find("mixed-citation")
    assert smith.findtext("article-title") == "Digital twins of ship propulsion systems"
    assert smith.findtext("year") == "2020" and smith.find("pub-id[@pub-id-type='doi']").text == "10.5555/jme.2020.0004"
    assert [s.findtext("surname") for s in smith.iter("string-name")] == ["Smith", "Müller"]
    assert "(Lee, 2019, 12)" in body_text(cfg.output_dir / "bl.cermxml")


def test_every_cite_command_with_optional_arguments_is_a_marker():
    conv = latex.Converter()
    conv.run(r"A \citep[see][p.~3]{a,b}. B \citet*{a}. C \cite[Thm.~2]{c}. D \citen{a}. E \citealp{b}. "
             r"F \citeauthor{c}. G \onlinecite{a}. H \footcite{b}. I \supercite{c}. J \Citet{a}. "
             r"K \citeyearpar{b}. L \smartcite{c}. M \nocite{z}.")
    conv.end_paragraph()
    cites = [p for b in conv.blocks for p in b.parts if isinstance(p, latex.Cite)]
    assert [c.keys for c in cites] == [["a", "b"], ["a"], ["c"], ["a"], ["b"], ["c"], ["a"], ["b"], ["c"], ["a"],
                                       ["b"], ["c"]]
    assert (cites[0].pre, cites[0].post, cites[2].post) == ("see", "p. 3", "Thm. 2")
    assert conv.nocite == ["z"] and "z" not in conv.cited


def test_user_macros_wrapping_cite_are_expanded():
    text = r"""\newcommand{\inlinecite}[1]{\citen{#1}}
\newcommand\refsof[2][see]{(#1 \cite{#2})}
\def\twin{digital twin}
\let\mycite\citep
Body \inlinecite{a} and \refsof{b} and \refsof[cf.]{c}; a \twin{} \mycite{d}."""
    macros, spans = latex.collect_macros(text)
    body = latex.expand_macros(text[spans[-1][1]:], macros, 10_000)
    conv = latex.Converter()
    conv.run(body)
    assert conv.cited == ["a", "b", "c", "d"]
    words = "".join(p for p in conv.current if isinstance(p, str))
    assert "(see ) and (cf. ); a digital twin" in words


def test_missing_key_is_reported_not_fatal(tmp_path):
    tex = MAIN.replace(r"\input{sections/method}", r"Also \citep{nobody2000,lee2019}.")
    root = stage_input(tmp_path, {"miss.tar.gz": targz({"main.tex": tex, "main.bbl": BBL})})
    cfg, _ = run(tmp_path, root)
    row = read_log(cfg)["miss"]
    assert row["status"] == "ok" and "1 cited key(s) without a bibliography entry: nobody2000" in row["error"]
    cites, _ = citations(cfg.output_dir / "miss.cermxml")
    assert cites[-1][1] == ["lee2019"]


def test_comments_accents_escapes_and_a_latin1_file(tmp_path):
    tex = (MAIN.replace(r"\input{sections/method}",
                        "Na\\\"{\\i}ve G{\\\"o}del, caf\\'e \\& co.\\ -- 50\\% of ``ships'' --- see \\S 2. "
                        "Fran\\c{c}ais; Sm\\o rgrav; \\v{C}apek.\n")
           + "% Gödel in a comment\n").encode("latin-1")
    root = stage_input(tmp_path, {"enc.tar.gz": targz({"main.tex": tex.replace(b"Port call", "Pört cäll".encode("latin-1")),
                                                         "main.bbl": BBL})})
    cfg, _ = run(tmp_path, root)
    text = body_text(cfg.output_dir / "enc.cermxml")
    assert "Naïve Gödel, café & co. – 50% of “ships” — see § 2." in text
    assert "Français; Smørgrav; Čapek." in text
    assert "Pört cäll data sharing" in text


def test_main_file_found_among_many(tmp_path):
    standalone = r"\documentclass{standalone}\begin{document}\cite{x}\end{document}"
    old = r"\documentclass{article}% an old draft with no document body"
    sub = r"\documentclass[main.tex]{subfiles}\begin{document}\section{Sub} Sub text \citep{lee2019}.\end{document}"
    main = MAIN.replace(r"\input{sections/method}", r"\subfile{sub}").replace(r"\bibliography{refs}", BBL)
    root = stage_input(tmp_path, {"many.tar.gz": targz({"fig.tex": standalone, "a_old.tex": old, "sub.tex": sub,
                                                        "zz_main.tex": main})})
    cfg, _ = run(tmp_path, root)
    text = body_text(cfg.output_dir / "many.cermxml")
    assert "Sub text" in text


def test_math_and_figures_become_placeholders_and_footnotes_stand_apart(tmp_path):
    tex = MAIN.replace(r"\input{sections/method}", METHOD + r"""
\begin{figure}[t]\includegraphics{x.png}\caption{A plot, after \citet{smith2020}.}\label{f}\end{figure}
See Fig.~\ref{f}; the loss $\mathcal{L}=\sum_i x_i^2$ is small.
""").replace(r"\bibliography{refs}", BBL)
    root = stage_input(tmp_path, {"m.tar.gz": targz({"main.tex": tex})})
    cfg, _ = run(tmp_path, root)
    paragraphs = ["".join(p.itertext()) for p in etree.parse(str(cfg.output_dir / "m.cermxml")).iter("p")]
    method = next(p for p in paragraphs if p.startswith("As "))
    assert "with n=3 sensors and [formula] works in practice [Lee and Kim, Thm. 2]" not in method
    assert "with n=3 sensors and [formula] works in practice" in method and "footnote" not in method
    assert "A footnote that cites Smith et al., 2020." in paragraphs
    assert any(p.startswith("A plot, after Smith et al. (2020).") for p in paragraphs)  # a citing caption
    assert any("See Fig. [ref]; the loss [formula] is small." in p for p in paragraphs)


# --------------------------------------------------------------------------- the stage around it

def test_rerun_skips_unchanged_eprints_and_writes_run_json(tmp_path):
    root = stage_input(tmp_path, {"r.tar.gz": targz({"main.tex": MAIN.replace(r"\input{sections/method}", ""),
                                                      "main.bbl": BBL})})
    cfg, first = run(tmp_path, root)
    assert first["converted"] == 1
    again = stage.main(cfg)
    assert again["converted"] == 0 and again["unchanged"] == 1
    assert read_log(cfg)["r"]["backend"] == "latex"
    record = json.loads((cfg.output_dir / "run.json").read_text())
    assert record["stage"] == "03_cermine_extract" and record["summary"]["unchanged"] == 1
    assert any(name.endswith("r.tar.gz") for name in record["inputs"])


def test_stage04_reads_the_latex_jats_into_citing_sentences(tmp_path):
    root = stage_input(tmp_path, {"s.tar.gz": targz({"main.tex": MAIN, "sections/method.tex": METHOD,
                                                      "main.bbl": BBL})})
    cfg, _ = run(tmp_path, root)
    stage04.main(stage04.Config(input_dir=cfg.output_dir, output_dir=tmp_path / "04"))
    with open(tmp_path / "04" / "s.sentences.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    first = rows[0]
    assert first["sentence"] == ("Digital twins of propulsion systems support condition monitoring "
                                 "(Smith et al., 2020).")
    assert first["ref_keys"] == "smith2020" and first["section"] == "Introduction"
    with open(tmp_path / "04" / "s.references.csv", encoding="utf-8-sig", newline="") as fh:
        refs = {r["ref_key"]: r for r in csv.DictReader(fh)}
    assert refs["lee2019"]["title"] == "Port call optimisation with shared arrival times"
    assert refs["lee2019"]["doi"] == "10.5555/mpr.2019.001" and refs["smith2020"]["arxiv_id"] == "2001.01234"


@pytest.mark.parametrize("entry,title,surnames,year,venue", [
    (r"\bibitem[\protect\citeauthoryear{Smith, Jones and Lee}{Smith et~al.}{2020}]{k}"
     "\nSmith, A., Jones, B., Lee, C., 2020. A study of ports. Journal of Things 4, 1--2.",
     "A study of ports", ["Smith", "Jones", "Lee"], "2020", ""),
    (r"\bibitem[{Lee(2019)}]{k} Lee, J. (2019). Another study. \emph{Maritime Review}.",
     "Another study", ["Lee"], "2019", "Maritime Review"),
    (r"\bibitem{k} N.~Taylor and K.~Osei. Ships in 2019 and beyond. \emph{J. Ships}, 3:1--2, 2020.",
     "Ships in 2019 and beyond", ["Taylor", "Osei"], "2020", "J. Ships"),
    (r"\bibitem [{\citenamefont {Li}\ \emph {et~al.}(2012)}]{k}\BibitemOpen \bibfield {author} {\bibinfo {author} "
     r"{\bibfnamefont {H.-W.}~\bibnamefont {Li}}, \bibinfo {author} {\bibfnamefont {M.}~\bibnamefont "
     r"{Paw{\l}owski}}}, \bibfield {journal} {\bibinfo {journal} {Phys. Rev. A}\ }\textbf {\bibinfo {volume} {85}},"
     r"\ \bibinfo {pages} {052308} (\bibinfo {year} {2012})\BibitemShut {NoStop}", "", ["Li", "Pawłowski"], "2012",
     "Phys. Rev. A"),
])
def test_bbl_entry_layouts_give_title_authors_year_and_venue(entry, title, surnames, year, venue):
    ref = latex.parse_thebibliography(entry, {})[0]
    assert (ref.title, [a[0] for a in ref.authors], ref.year) == (title, surnames, year)
    assert ref.venue == venue or not venue
    assert "NoStop" not in ref.raw and "penalty" not in ref.raw


def test_a_paper_that_fell_back_is_redone_when_its_eprint_changes(tmp_path):
    no_bib = targz({"main.tex": r"\documentclass{article}\begin{document}Text \cite{a}.\end{document}"})
    root = stage_input(tmp_path, {"p.tar.gz": no_bib}, pdfs={"p": DEMO_PDF})
    cfg, first = run(tmp_path, root, backend="auto", java="no-java-here")
    assert read_log(cfg)["p"]["backend"] == "builtin"
    assert stage.main(cfg)["unchanged"] == 1  # the same e-print would fall back again: not redone
    (root / "sources" / "p.tar.gz").write_bytes(targz({"main.tex": MAIN.replace(r"\input{sections/method}", ""),
                                                        "main.bbl": BBL}))
    third = stage.main(cfg)
    assert third["converted"] == 1 and read_log(cfg)["p"]["backend"] == "latex"


def test_a_table_row_becomes_a_paragraph_only_for_a_key_cited_nowhere_else():
    body = r"""Arrays are everywhere \cite{numpy}.
\begin{table}\begin{tabular}{ll}
numpy & fast arrays for numerical computing \cite{numpy} \\
sparse & incorporate sparse arrays from the Sparse package \cite{sparse,numpy} \\
refs & \cite{bare}
\end{tabular}\caption{Packages.}\end{table}
"""
    conv = latex.Converter()
    conv.run(body)
    conv.end_paragraph()
    blocks = latex.keep_needed_rows(conv.blocks)
    paragraphs = ["".join(p if isinstance(p, str) else f"<{','.join(p.keys)}>" for p in b.parts)
                  for b in blocks if b.kind == "p"]
    # numpy is cited in the text, so its row stays out; the "refs" row is a bare number, no context
    assert sorted(paragraphs) == ["Arrays are everywhere <numpy>.  ",
                                  "sparse – incorporate sparse arrays from the Sparse package <sparse>"]


# --------------------------------------------------------------------------- how real submissions differ
# (each found by `bench_latex.py --mutations` on real sources, or by probing the class it belongs to)

def test_single_gzipped_tex_carrying_its_bib_in_filecontents(tmp_path):
    # a single-file submission keeps its .bib in a filecontents environment before \documentclass; a large one
    # pushes \documentclass far into the file; a % inside the .bib is data, not a comment
    padding = "".join(f"@misc{{pad{i}, title = {{Padding entry number {i}}}, year = 2001}}\n" for i in range(9000))
    bib = BIB.replace("year = 2020,", "year = 2020, url = {https://example.org/a%20b},") + padding
    tex = (f"\\begin{{filecontents*}}{{refs.bib}}\n{bib}\\end{{filecontents*}}\n"
           + MAIN.replace(r"\input{sections/method}", METHOD).replace("[authoryear,round]", "[numbers]"))
    assert tex.index(r"\documentclass") > 400_000
    root = stage_input(tmp_path, {"single.gz": gzip.compress(tex.encode())})
    cfg, _ = run(tmp_path, root)
    assert read_log(cfg)["single"]["status"] == "ok"
    cites, refs = citations(cfg.output_dir / "single.cermxml")
    assert len(cites) == 6 and sorted(refs) == ["lee2019", "smith2020"]
    smith = refs["smith2020"].find("mixed-citation")
    assert smith.find("pub-id[@pub-id-type='doi']").text == "10.5555/jme.2020.0004"
    assert "Padding entry" not in body_text(cfg.output_dir / "single.cermxml")


def test_filecontents_keeps_an_existing_file_unless_told_to_overwrite(tmp_path):
    (tmp_path / "refs.bib").write_text("@misc{kept, title = {Kept}}\n")
    (tmp_path / "main.tex").write_text("\\begin{filecontents}{refs.bib}\n@misc{new, title = {New}}\n"
                                       "\\end{filecontents}\n\\begin{filecontents*}[overwrite]{table.tex}\nA & B\n"
                                       "\\end{filecontents*}\n"
                                       "\\begin{filecontents*}{../outside.bib}\nx\n\\end{filecontents*}\n")
    assert latex.write_filecontents(tmp_path) == ["table.tex"]
    assert "kept" in (tmp_path / "refs.bib").read_text() and not (tmp_path.parent / "outside.bib").exists()


def _paragraphs_and_links(xml_path: Path) -> list:
    root = etree.parse(str(xml_path)).getroot()
    return [("".join(p.itertext()), [x.get("rid") for x in p.iter("xref")]) for p in root.find("body").iter("p")]


def test_crlf_line_endings_read_as_the_same_document(tmp_path):
    # a blank line is \r\n\r\n and a comment ends at \r\n: paragraphs and comments must not run together
    files = {"main.tex": MAIN + "\n", "sections/method.tex": METHOD + "\nA second paragraph % with a comment\n"
             "    starts here \\cite{smith2020}.\n\nA third one.\n", "main.bbl": BBL}
    crlf = {name: text.replace("\n", "\r\n") for name, text in files.items()}
    mac = {name: text.replace("\n", "\r") for name, text in files.items()}
    root = stage_input(tmp_path, {"lf.tar.gz": targz(files), "crlf.tar.gz": targz(crlf), "cr.tar.gz": targz(mac)})
    cfg, summary = run(tmp_path, root)
    assert summary["by_status"] == {"ok": 3}
    lf = _paragraphs_and_links(cfg.output_dir / "lf.cermxml")
    assert any(text.startswith("A second paragraph starts here") for text, _ in lf)
    assert _paragraphs_and_links(cfg.output_dir / "crlf.cermxml") == lf
    assert _paragraphs_and_links(cfg.output_dir / "cr.cermxml") == lf


def test_declared_inputenc_decides_the_encoding_of_short_files(tmp_path):
    # charset-normalizer takes these short Latin-1 texts for cp1250 ("modčle") and Big5; LaTeX reads every file
    # of the document, the .bbl included, in the encoding the preamble declares
    main = MAIN.replace(r"\usepackage[authoryear,round]{natbib}",
                        "\\usepackage[T1]{fontenc}\n% \\usepackage[cp1250]{inputenc}\n"
                        "\\usepackage[utf8,latin1]{inputenc}\n\\usepackage[authoryear,round]{natbib}")
    method = "\\section{Résumé}\nLe modèle de Kozlowski est décrit à la page 3 \\cite{lee2019}.\n"
    bbl = BBL.replace("J.~Lee and S.~Kim.", "J.~Lee and Å.~Ångström.")
    root = stage_input(tmp_path, {"enc.tar.gz": targz({"main.tex": main, "main.bbl": bbl.encode("latin-1"),
                                                       "sections/method.tex": method.encode("latin-1")})})
    cfg, _ = run(tmp_path, root)
    assert "Le modèle de Kozlowski est décrit à la page 3" in body_text(cfg.output_dir / "enc.cermxml")
    _, refs = citations(cfg.output_dir / "enc.cermxml")
    assert "Ångström" in "".join(refs["lee2019"].itertext())


def test_nested_input_is_named_from_the_main_files_folder(tmp_path):
    # TeX runs in the main file's folder: an \input inside sections/intro.tex names tables/results from there,
    # also when the whole source sits one folder down in the tar; \input without braces or extension too
    main = MAIN.replace(r"\input{sections/method}", "\\input sections/intro\n")
    intro = "\\section{Intro}\nIntro text.\n\\input{tables/results}\n"
    results = "Results read from a nested input \\cite{lee2019}.\n"
    root = stage_input(tmp_path, {"nest.tar.gz": targz({"paper-v2/main.tex": main, "paper-v2/main.bbl": BBL,
                                                        "paper-v2/sections/intro.tex": intro,
                                                        "paper-v2/tables/results.tex": results})})
    cfg, _ = run(tmp_path, root)
    assert "Results read from a nested input" in body_text(cfg.output_dir / "nest.cermxml")


def test_main_file_is_the_document_that_cites_not_a_letter_beside_it(tmp_path):
    # the response letter has the conventional name and the .bbl named after it; the paper's own file holds only
    # its preamble and \input commands, so its citations are counted with its inputs
    letter = "\\documentclass{article}\n\\begin{document}\nResponse to the referees.\n\\end{document}\n"
    paper = MAIN.replace(r"\input{sections/method}", r"\input{body}").split(r"\section{Introduction}")
    paper, body = paper[0] + "\\input{intro}\n\\bibliography{refs}\n\\end{document}\n", \
        "\\section{Introduction}" + paper[1].split(r"\bibliographystyle")[0]
    root = stage_input(tmp_path, {"letter.tar.gz": targz({"main.tex": letter, "main.bbl": BBL, "arxiv_ms.tex": paper,
                                                          "intro.tex": body.replace("\\mycite", "\\citep"),
                                                          "body.tex": METHOD})})
    cfg, _ = run(tmp_path, root)
    text = body_text(cfg.output_dir / "letter.cermxml")
    assert "Digital twins of propulsion systems" in text and "Response to the referees" not in text


def test_text_after_endinput_is_not_read(tmp_path):
    # TeX stops reading a file at \endinput: leftover draft text after it is never typeset; a guard inside a
    # conditional is not at the start of its line and does not end the file
    method = ("\\ifdefined\\methodread \\endinput \\fi\n" + METHOD
              + "\\endinput\nLeftover draft text that cites \\cite{smith2020} again.\n")
    root = stage_input(tmp_path, {"end.tar.gz": targz({"main.tex": MAIN, "sections/method.tex": method,
                                                       "main.bbl": BBL})})
    cfg, _ = run(tmp_path, root)
    text = body_text(cfg.output_dir / "end.cermxml")
    assert "works" in text and "Leftover draft" not in text


@pytest.mark.parametrize("readme_name, readme", [
    ("00README.XXX", "paper/arxiv_ms.tex toplevelfile\nsupplement.tex ignore\nnohypertex\n"),
    ("00README.json", '{"process": {"compiler": "pdflatex"}, "sources": [{"filename": "paper/arxiv_ms.tex", '
                      '"usage": "toplevel"}, {"filename": "fig.png", "usage": "append"}]}'),
    ("00README.yaml", "process:\n  compiler: pdflatex\nsources:\n"
                      "  - filename: paper/arxiv_ms.tex\n    usage: toplevel\n"),
])
def test_arxiv_00readme_names_the_top_level_file(tmp_path, readme_name, readme):
    # a supplement compiled on its own cites more than the paper; arXiv compiles what its 00README declares
    supplement = ("\\documentclass{article}\n\\begin{document}\n"
                  + "Supplementary detail \\cite{lee2019}.\n" * 12 + "\\end{document}\n")
    root = stage_input(tmp_path, {"readme.tar.gz": targz({readme_name: readme, "supplement.tex": supplement,
                                                          "paper/arxiv_ms.tex": MAIN, "paper/main.bbl": BBL,
                                                          "paper/sections/method.tex": METHOD})})
    cfg, _ = run(tmp_path, root)
    text = body_text(cfg.output_dir / "readme.cermxml")
    assert "Digital twins of propulsion systems" in text and "Supplementary detail" not in text


def test_begin_document_in_an_input_file(tmp_path):
    # the preamble in the main file, \begin{document} ... \end{document} in the file it \inputs
    head, body = MAIN.split("\\begin{document}")
    root = stage_input(tmp_path, {"split.tar.gz": targz({"main.tex": head + "\\input{body}\n", "main.bbl": BBL,
                                                         "body.tex": "\\begin{document}" + body,
                                                         "sections/method.tex": METHOD})})
    cfg, _ = run(tmp_path, root)
    assert read_log(cfg)["split"]["status"] == "ok"
    assert "Digital twins of propulsion systems" in body_text(cfg.output_dir / "split.cermxml")


def test_macros_from_the_authors_own_package_are_expanded(tmp_path):
    # \usepackage{mymacros} with mymacros.sty in the source: its text and citation macros are the document's;
    # a journal style shipped along (internals with @, its own \citep) changes nothing
    sty = ("\\ProvidesPackage{mymacros}\n\\RequirePackage{moremacros}\n\\newcommand{\\tool}{Eureqa}\n"
           "\\renewcommand{\\maketitle}{\\@maketitle\\hrule}\n\\DeclareRobustCommand\\citep[1]{BROKEN}\n")
    more = "\\newcommand{\\rcite}[1]{\\citep{#1}}\n"
    main = MAIN.replace("\\usepackage[authoryear,round]{natbib}", "\\usepackage[authoryear,round]{natbib,mymacros}")
    main = main.replace("Port call data sharing", "Port call data sharing with \\tool{} \\rcite{lee2019}")
    root = stage_input(tmp_path, {"sty.tar.gz": targz({"main.tex": main, "mymacros.sty": sty, "main.bbl": BBL,
                                                       "moremacros.sty": more, "sections/method.tex": METHOD})})
    cfg, _ = run(tmp_path, root)
    text = body_text(cfg.output_dir / "sty.cermxml")
    assert "Port call data sharing with Eureqa (Lee and Kim, 2019)" in text and "BROKEN" not in text


# --------------------------------------------------------------------------- classes seen on papers not tuned on

NATBIB_BRACED_BBL = r"""\begin{thebibliography}{6}
\expandafter\ifx\csname natexlab\endcsname\relax\def\natexlab#1{#1}\fi
\providecommand{\url}[1]{\href{#1}{#1}}
\providecommand{\dodoi}[1]{doi:~\href{http://doi.org/#1}{\nolinkurl{#1}}}

\bibitem[{{Abbott} {et~al.}(2016){Abbott}, {Abbott}, {Abbott}, {Abernathy},
  {Acernese}, {Ackley}, {Adams}, {Adams}, {Addesso}, {Adhikari},
  {et~al.}}]{abbott16}
{Abbott}, B.~P., {Abbott}, R., {Abbott}, T.~D., et~al. 2016, Observation of
  gravitational waves from a binary black hole merger, PRL, 116, 061102

\bibitem[{Smith \emph{et~al.}(2001{\natexlab{a}})Smith, Jones,
  and Brown}]{smith01a}
Smith, A., Jones, B., \& Brown, C. 2001{\natexlab{a}}, Merging galaxies in
  rich clusters, ApJ, 550, 1

\bibitem[{Smith \emph{et~al.}(2001{\natexlab{b}})Smith, Jones,%
  and Brown}]{smith01b}
Smith, A., Jones, B., \& Brown, C. 2001{\natexlab{b}}, Tidal tails of merging
  galaxies, ApJ, 551, 2

\bibitem[{{van der Walt} {\em et~al.}(2011){van der Walt}, Colbert,
  and Varoquaux}]{vdw11}
{van der Walt}, S., Colbert, S.~C., \& Varoquaux, G. 2011, The NumPy array: a
  structure for efficient numerical computation, CSE, 13, 22

\bibitem[{\citenamefont{Abeyesinghe}
  \emph{et~al.}(2006)\citenamefont{Abeyesinghe, Devetak, Hayden, and
  Winter}}]{abey06}
Abeyesinghe, A., Devetak, I., Hayden, P., \& Winter, A. 2006, The mother of all
  protocols, Proc. R. Soc. A, 465, 2537

\bibitem[{Brown \& Green(2005)}]{brown05}
Brown, C., \& Green, D. 2005, Halo growth across cosmic time, MNRAS, 360, 2
\end{thebibliography}
"""
NATBIB_BRACED_TEX = r"""\documentclass{article}
\usepackage{natbib}
\begin{document}
\section{Introduction}
Gravitational waves were detected \citep{abbott16}. Galaxies merge in clusters \citep{smith01a,smith01b}.
As \citet{vdw11} showed, arrays are efficient. Protocols unify \citep{abey06}, and halos grow \citep{brown05}.
\bibliographystyle{aasjournal}
\bibliography{refs}
\end{document}
"""


def test_natbib_label_in_braces_across_lines_is_read(tmp_path):
    # what several journals' .bst files write: the label in braces, spanning lines, holding \emph{et~al.},
    # {\em et~al.}, \natexlab{a}, \citenamefont and a % at a line's end; every entry is read, every cite linked
    root = stage_input(tmp_path, {"braced.tar.gz": targz({"ms.tex": NATBIB_BRACED_TEX, "ms.bbl": NATBIB_BRACED_BBL})})
    cfg, _ = run(tmp_path, root)
    row = read_log(cfg)["braced"]
    assert (row["status"], row["n_references"], row["error"]) == ("ok", "6", "")
    cites, refs = citations(cfg.output_dir / "braced.cermxml")
    assert [c for c, _ in cites] == ["Abbott et al., 2016", "Smith et al., 2001a; Smith et al., 2001b", "van der Walt et al. (2011)",
                                     "Abeyesinghe et al., 2006", "Brown & Green, 2005"]
    assert sorted(refs) == ["abbott16", "abey06", "brown05", "smith01a", "smith01b", "vdw11"]


STALE_BBL_TEX = r"""\documentclass{article}
\begin{document}
\section{Introduction}
Digital twins support monitoring \cite{smith2020}. Port calls are shared \cite{lee2019}.
Sensors drift \cite{k1}, models age \cite{k2}, data leak \cite{k3}, and fleets grow \cite{k4,k5,k6}.
\bibliographystyle{plain}
\bibliography{refs}
\end{document}
"""


def test_a_conversion_that_links_few_of_the_cited_keys_is_partial_with_the_reason(tmp_path):
    # a stale .bbl holding 2 of the 8 keys the source cites, no .bib: converted, but flagged, not "ok"
    root = stage_input(tmp_path, {"stale.tar.gz": targz({"main.tex": STALE_BBL_TEX, "main.bbl": BBL})})
    cfg, summary = run(tmp_path, root)
    row = read_log(cfg)["stale"]
    assert (row["backend"], row["status"]) == ("latex", "partial")
    assert row["error"].startswith("partial conversion: only 2 of the 8 keys the source cites became links "
                                   "(6 without a bibliography entry)")
    assert summary["by_status"] == {"partial": 1} and list(summary["partial"]) == ["stale"]
    cfg, summary = run(tmp_path, root)  # a rerun of the unchanged e-print keeps the flag
    assert read_log(cfg)["stale"]["status"] == "partial" and summary["unchanged"] == 1


def test_a_partial_conversion_falls_back_to_the_pdf_where_there_is_one(tmp_path):
    root = stage_input(tmp_path, {"stale.tar.gz": targz({"main.tex": STALE_BBL_TEX, "main.bbl": BBL})},
                       pdfs={"stale": DEMO_PDF})
    cfg, summary = run(tmp_path, root, backend="auto", java="no-java-here")
    row = read_log(cfg)["stale"]
    assert (row["backend"], row["status"]) == ("builtin", "ok")
    assert row["fallback_reason"].startswith("LaTeX conversion partial: only 2 of the 8 keys")


def test_body_text_far_shorter_than_the_source_is_flagged():
    sentence = "The rotating frame keeps every sensor aligned with the hull during the long sea trials. "
    body = "\\section{Intro}\n" + sentence * 80 + " See \\cite{a}."
    short = "The rotating frame keeps every sensor aligned."
    reason, n_source, n_linked, ratio = latex.completeness(body, ["a"], {"a": object()}, len(short))
    assert reason.startswith("body text 46 characters against the source's") and ratio < 0.05
    full = sentence * 80 + "See [1]."
    assert latex.completeness(body, ["a"], {"a": object()}, len(full))[0] == ""


def test_percent_in_a_url_is_not_a_comment_that_swallows_the_rest(tmp_path):
    # \url{...%20...} reads its argument verbatim: read as a comment, the % left the brace open and the URL's
    # argument took the rest of the document (its citations and text) with it
    tex = MAIN.replace("\\input{sections/method}",
                       "Data are at \\url{https://doi.org/10.5061/dryad.a%2Fb%20c} and \\verb|50%| of them "
                       "\\citep{lee2019}. % a real comment \\cite{ghost2001}\nThe rest of the paper \\citet{smith2020}.")
    root = stage_input(tmp_path, {"url.tar.gz": targz({"main.tex": tex, "main.bbl": BBL})})
    cfg, _ = run(tmp_path, root)
    assert read_log(cfg)["url"]["status"] == "ok"
    text = body_text(cfg.output_dir / "url.cermxml")
    assert "https://doi.org/10.5061/dryad.a%2Fb%20c" in text and "The rest of the paper Smith et al. (2020)" in text
    assert "ghost" not in text and "real comment" not in text


def test_aas_and_mnras_classes_cite_author_year_without_loading_natbib(tmp_path):
    # aastex and mnras load natbib themselves: \citep prints (Smith et al., 2020), not [2]
    for cls in ("aastex631", "mnras"):
        tex = MAIN.replace("\\documentclass{article}\n\\usepackage[authoryear,round]{natbib}",
                           f"\\documentclass{{{cls}}}").replace("\\input{sections/method}", "")
        tex = tex.replace("\\bibliographystyle{plainnat}", "")
        root = stage_input(tmp_path / cls, {"aas.tar.gz": targz({"ms.tex": tex, "ms.bib": BIB})})
        cfg, _ = run(tmp_path / cls, root)
        cites, _ = citations(cfg.output_dir / "aas.cermxml")
        assert cites[0][0] == "Smith et al., 2020", cls


def test_a_draft_beside_the_paper_that_names_an_absent_bib_is_not_the_main_file(tmp_path):
    # ms.tex (the conventional name) is an older draft whose .bib was not shipped; ms63.tex has its .bib
    draft = MAIN.replace("\\input{sections/method}", "").replace("\\bibliography{refs}", "\\bibliography{bib}")
    paper = MAIN.replace("\\input{sections/method}", "")
    root = stage_input(tmp_path, {"two.tar.gz": targz({"ms.tex": draft, "ms63.tex": paper, "refs.bib": BIB})})
    cfg, _ = run(tmp_path, root)
    row = read_log(cfg)["two"]
    assert (row["status"], row["n_references"]) == ("ok", "2")


def test_aas_deluxetable_is_a_table_and_its_comments_a_caption(tmp_path):
    tex = MAIN.replace("\\input{sections/method}", r"""
\begin{deluxetable}{lcc}
\tablecaption{Ports in the sample.}
\tablehead{\colhead{Port} & \colhead{Calls} & \colhead{Ref}}
\startdata
Rotterdam & 1204 & 1 \\
Hamburg & 877 & 2 \\
\enddata
\tablecomments{References: (1) \citet{lee2019}; (2) \citet{smith2020}}
\end{deluxetable}
""")
    root = stage_input(tmp_path, {"aas.tar.gz": targz({"main.tex": tex, "main.bbl": BBL})})
    cfg, _ = run(tmp_path, root)
    text = body_text(cfg.output_dir / "aas.cermxml")
    assert "Rotterdam" not in text and "1204" not in text
    assert "References: (1) Lee and Kim (2019); (2) Smith et al. (2020)" in text


def test_a_table_entry_on_two_rows_joins_its_name_to_its_citation():
    body = r"""\begin{table}\begin{tabular}{llll}
Xerces-C & C++ validating & config parsing & Apache \\
\cite{xerces} & XML parser & sequence tree & \\
\hline
\end{tabular}\caption{Libraries.}\end{table}
"""
    conv = latex.Converter()
    conv.run(body)
    conv.end_paragraph()
    rows = [b for b in latex.keep_needed_rows(conv.blocks) if b.kind == "p"]
    assert ["".join(p if isinstance(p, str) else f"<{','.join(p.keys)}>" for p in b.parts) for b in rows] == \
        ["Xerces-C <xerces> – C++ validating XML parser – config parsing sequence tree – Apache"]


def test_an_algorithm_line_that_cites_is_read_even_with_its_caption_inside():
    body = r"""\begin{algorithm}[h]
\For{each iteration $j$}{
  solve for the search direction using the PARDISO solver \cite{pardiso}\;
  backtracking line search with the Armijo rule \cite{armijo}\;
}
\caption{Descent steps}
\end{algorithm}
"""
    conv = latex.Converter()
    conv.run(body)
    conv.end_paragraph()
    rows = [b for b in latex.keep_needed_rows(conv.blocks) if b.kind == "p"]
    keys = [[p.keys for p in b.parts if not isinstance(p, str)] for b in rows]
    assert keys == [[["pardiso"]], [["armijo"]]]
    assert "Armijo rule" in "".join(p for p in rows[1].parts if isinstance(p, str))


def test_a_table_row_that_says_little_takes_its_tables_caption():
    body = r"""\begin{table}\caption{Previously reported ages of the cluster.}
\begin{tabular}{lll}
Isochrone & $35.5$ & \citet{bossini} \\
MSTO isochrone & $41-46$ & \citet{david} \\
\end{tabular}\end{table}
"""
    conv = latex.Converter()
    conv.run(body)
    conv.end_paragraph()
    rows = [b for b in latex.keep_needed_rows(conv.blocks) if b.kind == "p"]
    texts = ["".join(p for p in b.parts if isinstance(p, str)) for b in rows]
    assert [t.split(" – ")[0] for t in texts] == ["Previously reported ages of the cluster: Isochrone",
                                                  "Previously reported ages of the cluster: MSTO isochrone"]


def test_a_row_of_citations_does_not_take_the_caption_and_a_long_caption_is_not_a_title():
    body = r"""\begin{table}\caption{Methods compared.}
\begin{tabular}{lll}
References & \cite{a,b} & \cite{c} \\
\end{tabular}\end{table}
\begin{table}\caption{Dashed rectangles under the columns show the tests that were used for the transplantation
of every engine, whereas the others show the remaining ones in full detail.}
\begin{tabular}{ll}
Duktape & \cite{d} \\
\end{tabular}\end{table}
The minted helper prints \mintinline{haskell}{Const} as code.
"""
    conv = latex.Converter()
    conv.run(body)
    conv.end_paragraph()
    texts = ["".join(p for p in b.parts if isinstance(p, str)) for b in latex.keep_needed_rows(conv.blocks)
             if b.kind == "p"]
    assert not any(t.startswith(("Methods compared", "Dashed")) for t in texts)
    assert "The minted helper prints Const as code." in " ".join(texts)


def test_the_log_says_which_of_several_documents_was_read_as_the_paper_and_why(tmp_path):
    # drafts and a cover letter beside the paper: the extraction log's error column names the file taken, the
    # runner-up and the rule that decided (here: the cited keys that have an entry in the shipped .bib)
    doc = ("\\documentclass{{article}}\n\\usepackage{{natbib}}\n\\begin{{document}}\n{body}\n"
           "\\bibliographystyle{{plainnat}}\n\\bibliography{{references}}\n\\end{{document}}\n")
    root = stage_input(tmp_path, {"2601.00009v1.tar.gz": targz({
        "draft.tex": doc.format(body=r"Old text \citep{gone1,gone2}."),
        "final.tex": doc.format(body=r"Digital twins \citep{smith2020} and port calls \citep{lee2019}."),
        "letter.tex": doc.format(body="Dear editor."), "refs.bib": BIB})})
    cfg, _ = run(tmp_path, root)
    row = read_log(cfg)["2601.00009v1"]
    assert row["status"] == "ok"
    assert "main file final.tex of 3 documents (next: draft.tex): more of its cited keys have an entry in the " \
           "source (2 against 0)" in row["error"]


def test_a_full_stop_inside_a_display_formula_ends_its_sentence(tmp_path):
    # authors put the sentence's full stop inside the display ("$$ x = y \,. $$", ". \label{..}\end{equation}",
    # "\\ c &= d. \end{split}"): the sentence ends there and the next one, which cites, is a sentence of its own;
    # a "\right." delimiter, an ellipsis or a formula without a stop do not end one
    method = r"""\section{Method}
The source positions are $$ x = [8, 9, 10]~\textrm{pix} \,. $$ The separations follow \citet{lee2019}.
The energy is
\begin{equation} E = mc^2 . \label{eq:e} \end{equation}
Mass and energy are one \citep{smith2020}.
The system is
\begin{equation}\begin{split} a &= b \\ c &= d. \end{split}\end{equation}
This form is that of \citet{smith2020}.
A bound holds, \[ \left\{ x \right. \] where the bound is that of \citet{lee2019}.
A series runs as \[ x_1 + x_2 + \dots \] and on, as \citet{smith2020} show.
"""
    root = stage_input(tmp_path, {"d.tar.gz": targz({"main.tex": MAIN, "sections/method.tex": method,
                                                      "main.bbl": BBL})})
    cfg, _ = run(tmp_path, root)
    stage04.main(stage04.Config(input_dir=cfg.output_dir, output_dir=tmp_path / "04"))
    with open(tmp_path / "04" / "d.sentences.csv", encoding="utf-8-sig", newline="") as fh:
        sentences = [r["sentence"] for r in csv.DictReader(fh) if r["section"] == "Method"]
    assert "The separations follow Lee and Kim (2019)." in sentences
    assert "Mass and energy are one (Smith et al., 2020)." in sentences
    assert "This form is that of Smith et al. (2020)." in sentences
    assert "A bound holds, [formula] where the bound is that of Lee and Kim (2019)." in sentences
    assert "A series runs as [formula] and on, as Smith et al. (2020) show." in sentences


def _bench_latex():
    import importlib.util
    import sys

    path = Path(__file__).resolve().parent.parent / "03_cermine_extract" / "bench_latex.py"
    spec = importlib.util.spec_from_file_location("bench_latex_03", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(bench)
    return bench


def test_bench_finds_keys_cited_where_a_reader_of_cite_commands_does_not_see_them():
    # the bench's precision classes: a key cited through the authors' own macro, fixed or wrapping its argument,
    # or through biblatex's \autocites, is no \cite to a reader of \cite commands; a wrapper whose name that
    # reader matches (\citeyp{x}) and a macro defined but never used are not counted
    import re

    bench = _bench_latex()
    cite = re.compile(r"\\(?:[Cc]ite[a-zA-Z]*|[Aa]utocite)\*?\s*(?:\[[^\]]*\]\s*){0,2}\{([^}]*)\}")
    preamble = (r"\newcommand{\mct}{\citet{mcquillan2014}}" "\n" r"\newcommand\rsp[1]{(see \citealt{#1})}" "\n"
                r"\newcommand{\citePZp}{(\citetalias{schmidt2020} \citeyear{schmidt2020})\xspace}" "\n"
                r"\def\citeyp#1{\citep{#1}}" "\n" r"\newcommand{\unused}{\cite{never}}")
    body = (r"Periods from \mct\ agree \rsp{santos2019, garcia2014}. As \citePZp showed, shortcuts hurt "
            r"\autocites{xiao2020}{brown2023}. Old work \citeyp{old1990}.")
    assert bench.macro_cited_keys(preamble, body, cite) == \
        {"mcquillan2014", "santos2019", "garcia2014", "schmidt2020", "xiao2020", "brown2023"}
    text = (r"Before \cite{a}. \begin{table}\begin{tabular}{ll} X & \cite{b} \\ \end{tabular}"
            r"\caption{T \cite{c}}\end{table} After \cite{d}.")
    spans = bench.table_spans(text)
    inside = {k for k in "abcd" if any(s <= text.index("{" + k + "}") < e for s, e in spans)}
    assert inside == {"b", "c"}


def test_bench_tells_a_sentence_from_a_file_the_judges_reader_does_not_open():
    # a chapter \include'd by a name whose letter case differs from its file's is read by the LaTeX route and not
    # by the judge's reader: its sentences share no six words in a row with the judge's body, and share them with
    # the chapter's file; a sentence of the body itself, or one found in no file, is not of that class
    bench = _bench_latex()
    judge_body = bench._word_runs("We compare the planners on the harbour benchmark of many seasons and ports.")
    chapter = bench._word_runs("Port calls are planned from shared arrival times in the chapter that follows.")
    assert bench._unopened("Port calls are planned from shared arrival times [3].", judge_body, chapter)
    assert not bench._unopened("We compare the planners on the harbour benchmark [4].", judge_body, chapter)
    assert not bench._unopened("A sentence written in no source file at all, anywhere [5].", judge_body, chapter)
    assert "in a file the judge does not open" in bench.UNJUDGEABLE
