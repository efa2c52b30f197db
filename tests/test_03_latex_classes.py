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


def test_a_table_row_naming_a_survey_with_its_works_in_one_cell_is_read_for_works_cited_only_there(tmp_path):
    # a table of catalogues (emulateapj, threeparttable): the survey's name in the first cell ("6dF", "DEEP2": an
    # acronym, letters with digits), its selection and counts in others, and the works it comes from together in
    # one "References" cell: the row says what they are cited for; a row of a name and citations only does not,
    # nor does a row whose citations sit in cells of their own (the column heads tell those apart)
    body = r"""\section{Data}
We add spectroscopic redshifts from public surveys \citep{lee2019}.
\begin{table*}[t]\begin{center}\caption{Catalogs with spectroscopic redshifts.}
\begin{threeparttable}\begin{tabular}{|p{1.6cm}|p{3cm}|p{3.5cm}|p{2.9cm}|}
\toprule
\textbf{Survey} & \textbf{Selection} & \textbf{References} & \textbf{Sources}\\ \hline
6dF & Q = 3, 4, 6 & \citet{v8}, \citet{duktape} & 375 (328)\\
refs & \citet{joss2022}, \citet{schmidt2020} \\
DEEP2 & 0.95 & \citet{schmidt2020} & \citet{joss2022} \\
\hline\end{tabular}
\begin{tablenotes}\item[$^1$] Includes stars.\end{tablenotes}
\end{threeparttable}\end{center}\end{table*}"""
    root = convert(tmp_path, body)
    text = " ".join(paragraphs(root))
    assert "Catalogs with spectroscopic redshifts: 6dF – Q = 3, 4, 6 – Google (2018), Vaarala (2018) – 375 (328)" in text
    assert {rid for _, rid in linked(root)} == {"lee2019", "v8", "duktape"}


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


# --- issue 25, third round: classes the 48 new sources showed (held-out figures in stage 03's README) ---------

def test_a_macro_that_computes_its_value_prints_nothing_and_the_paper_converts(tmp_path):
    # a generated table of results (showyourwork-style): one macro whose body tests its argument with
    # \ifnum\pdfstrcmp and builds \macros@... names; pasting its program at each of its uses overran the expansion
    # cap and the whole paper failed ("user macros expand to more than 2000000 characters")
    rows = "".join(rf"\else\ifnum\pdfstrcmp{{#1}}{{k{i}}}=0\def\macros@out{{{i}.5 and a long value text {i}}}"
                   for i in range(400))
    table = (r"\makeatletter\newcommand\macros[1][all]{\ifnum\pdfstrcmp{#1}{all}=0\def\macros@out{all}" + rows
             + r"\else\def\macros@out{??}" + r"\fi" * 401 + r"\macros@out}\makeatother")
    uses = " ".join(rf"$x_{i} = \result{{$\macros[k{i}][median]$}}$ or \result{{$\macros[k{i}]$}}." for i in range(300))
    body = (r"\section{Results} We find the rate of mergers grows with redshift \citep{lee2019}. " + uses +
            "\n\nThe peak sits at ten solar masses, as found before \\citep{schmidt2020}.")
    root = convert(tmp_path, body, preamble=table + r"\newcommand{\result}[1]{\textcolor{orange}{#1}}")
    text = " ".join(paragraphs(root))
    assert [rid for _, rid in linked(root)] == ["lee2019", "schmidt2020"]  # the text after the uses is read
    assert "pdfstrcmp" not in text and "long value text" not in text and "??" not in text
    assert "The peak sits at ten solar masses" in text  # "$\macros[..]$" did not become "$$" (display math)


def test_macro_expansion_past_its_cap_leaves_the_rest_unexpanded_and_says_so(tmp_path):
    # a macro that doubles at each level: past the cap the text is kept as written, with a note for the log,
    # instead of the paper failing
    preamble = r"\newcommand{\two}{\one\one}\newcommand{\one}{word word word word word word word word}"
    body = ("We compare the estimators of the photometric redshift \\citep{schmidt2020}. " + r"\two " * 300000
            + "\n\nThe port calls were optimised with shared arrival times \\citep{lee2019}.")
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.tex").write_text(
        "\\documentclass{article}\n\\usepackage{natbib}\n" + preamble + "\n\\begin{document}\n" + body +
        "\n\\bibliographystyle{plainnat}\n\\bibliography{refs}\n\\end{document}\n", encoding="utf-8")
    (folder / "refs.bib").write_text(BIB, encoding="utf-8")
    result = latex.convert_source(folder)
    root = etree.fromstring(result.xml)
    assert {rid for _, rid in linked(root)} == {"schmidt2020", "lee2019"}
    assert any("the rest left unexpanded" in note for note in result.notes)


def test_a_footnote_naming_its_sentences_source_cites_from_that_sentence(tmp_path):
    # German-style source notes: the footnote holds the citation and a locator ("S.52f.: 2.4 Shannon's method");
    # the claim is the sentence it hangs on, as with \footcite
    body = (r"\section{Kodierung} Das Verfahren ordnet jedem Symbol einen eindeutigen Abschnitt zu und erzeugt "
            r"daraus die Codew\"orter\footnote{\cite{schmidt2020} S.52f.: 2.4.2 Shannon's Method; \cite{lee2019} "
            r"S.401--403: 9. The Fundamental Theorem}. Die Gewichte werden laufend neu berechnet\footnote{Vgl. "
            r"\cite[S.~3]{v8}.}.")
    root = convert(tmp_path, body)
    pars = paragraphs(root)
    assert len(pars) == 1  # no paragraph of locators
    assert pars[0].startswith("Das Verfahren ordnet jedem Symbol")
    assert [rid for _, rid in linked(root)] == ["schmidt2020", "lee2019", "v8"]
    assert "Shannon's Method" not in pars[0]


def test_a_footnote_with_a_sentence_of_its_own_stays_a_paragraph_of_its_own(tmp_path):
    # a footnote that opens with a textual citation, or that cites inside its own sentence, says something of the
    # work: it stays apart (after the paragraph it interrupts), as before
    body = (r"\section{Intro} Photometric redshifts are noisy\footnote{\citet{schmidt2020} compare twelve codes on "
            r"the same galaxies.}. Port calls are slow\footnote{It is so poor that ``nobody could tell'' "
            r"\citep[p.~26]{lee2019}.}.")
    pars = paragraphs(convert(tmp_path, body))
    assert pars[0] == "Photometric redshifts are noisy. Port calls are slow."
    assert pars[1].startswith("Schmidt et al. (2020) compare twelve codes")
    assert pars[2].startswith("It is so poor that")


def test_a_footnote_that_goes_on_after_its_citation_is_a_sentence_of_its_own(tmp_path):
    # "See also \cite{x} for a gentler exposition." says what the work is for: it is not a source note of the
    # sentence it hangs on, whose words say nothing of that work; "See \cite{x} for details." still is one
    body = (r"\section{Intro} This is the case for the first prover~\cite{lee2019}.\footnote{See also~"
            r"\cite{schmidt2020} for a gentler exposition.} Port calls are slow\footnote{See \cite{v8} for details.}.")
    root = convert(tmp_path, body)
    pars = paragraphs(root)
    assert pars == ["This is the case for the first prover Lee and Kim (2019). Port calls are slow Google (2018).",
                    "See also Schmidt et al. (2020) for a gentler exposition."]
    assert [rid for _, rid in linked(root)] == ["lee2019", "v8", "schmidt2020"]


def test_old_biber_bbl_with_positional_name_parts_gives_the_authors(tmp_path):
    # biblatex before 3.3 writes each name as positional groups {{opts}{Family}{F.}{Given}{G.}{prefix}{p.}{}{}}:
    # without them the apa style's labels were title fragments ("Analyzing neural time series d, 2014")
    bbl = r"""\refsection{0}
  \sortlist[entry]{apa/global/}
    \entry{cohen2014}{book}{}
      \name{labelname}{1}{}{%
        {{uniquename=0,hash=340}{Cohen}{C\bibinitperiod}{Michael\bibnamedelima X}{M\bibinitperiod\bibinitdelim X\bibinitperiod}{}{}{}{}}%
      }
      \name{author}{1}{}{%
        {{uniquename=0,hash=340}{Cohen}{C\bibinitperiod}{Michael\bibnamedelima X}{M\bibinitperiod\bibinitdelim X\bibinitperiod}{}{}{}{}}%
      }
      \list{publisher}{1}{{MIT Press}}
      \field{labelyear}{2014}
      \field{title}{Analyzing neural time series data: theory and practice}
      \field{year}{2014}
      \field{pages}{609\bibrangedash 610}
    \endentry
    \entry{smith2015}{article}{}
      \name{author}{2}{}{%
        {{hash=1}{Smith}{S\bibinitperiod}{Nathaniel\bibnamedelima J}{N\bibinitperiod}{}{}{}{}}%
        {{hash=2}{Maaten}{M\bibinitperiod}{Laurens}{L\bibinitperiod}{van\bibnamedelima der}{v\bibinitperiod}{}{}}%
      }
      \field{title}{Regression-based estimation of ERP waveforms}
      \field{journaltitle}{Psychophysiology}
      \field{year}{2015}
    \endentry
  \endsortlist
\endrefsection
"""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.tex").write_text(
        "\\documentclass{article}\n\\usepackage[style=apa]{biblatex}\n\\addbibresource{refs.bib}\n"
        "\\begin{document}\nThe spatial resolution is poor \\parencite[p.~26]{cohen2014}, and baselines can be "
        "estimated by regression \\parencite{smith2015}.\n\\printbibliography\n\\end{document}\n", encoding="utf-8")
    (folder / "main.bbl").write_text(bbl, encoding="utf-8")
    root = etree.fromstring(latex.convert_source(folder).xml)
    text = " ".join(paragraphs(root))
    assert "(Cohen, 2014, p. 26)" in text and "(Smith and van der Maaten, 2015)" in text
    ref = " ".join("".join(r.itertext()) for r in root.iter("mixed-citation") if "Analyzing" in "".join(r.itertext()))
    assert "Michael X" in ref and "609–610" in ref


def test_bib_preamble_macros_apply_to_its_fields(tmp_path):
    # @preamble{ {\providecommand{\noopsort}[1]{}} } and {\noopsort{De Kool}}{de Kool}: the sort key prints nothing
    bib = BIB + r"""@preamble{ {\providecommand{\noopsort}[1]{}} }
@article{dekool1990, author = {{\noopsort{De Kool}}{de Kool}, M.}, title = {Common envelope evolution},
  journal = {ApJ}, year = {1990}}
"""
    root = convert(tmp_path, r"Common envelopes were modelled early \citep{dekool1990}.", bib=bib)
    assert "(de Kool, 1990)" in paragraphs(root)[0]
    assert "De Koolde" not in etree.tostring(root, encoding="unicode")


def test_aas_journal_macros_in_a_bib_print_the_journal(tmp_path):
    # ADS exports journal = {\apj}, {\mnras}, {\prd}: the AAS and MNRAS classes define them; unread, the venue
    # was empty (and with no title, the reference was only a volume and a page)
    bib = BIB + r"""@article{singh2003, author = {{Singh}, S. and {Ma}, C.-P.}, journal = {\prd}, year = 2003,
  volume = 67, pages = {023506}}
@article{kool, author = {{Kool}, M.}, title = {Envelopes}, journal = {\apj}, year = 1990, volume = 358}
"""
    root = convert(tmp_path, r"Neutrinos were treated linearly \citep{singh2003,kool}.", bib=bib, cls="aastex631")
    sources = [s.text for s in root.iter("source")]
    assert "Phys. Rev. D" in sources and "ApJ" in sources


def test_main_file_among_drafts_is_the_one_whose_cited_keys_have_entries_and_the_note_says_why(tmp_path):
    # four complete documents, none naming a .bib the source holds (the .bib was renamed): the draft and the
    # response letter cite keys without an entry; the paper's keys are in the shipped .bib
    folder = tmp_path / "src"
    folder.mkdir()
    doc = ("\\documentclass{{article}}\n\\usepackage{{natbib}}\n\\begin{{document}}\n{body}\n"
           "\\bibliographystyle{{plainnat}}\n\\bibliography{{old_refs}}\n\\end{{document}}\n")
    (folder / "ms.tex").write_text(doc.format(body=r"Early draft \citep{draft1,draft2,draft3,lee2019}."))
    (folder / "paper_v2.tex").write_text(doc.format(
        body=r"Port calls \citep{lee2019}, redshifts \citep{schmidt2020} and engines \citep{v8,duktape}."))
    (folder / "response.tex").write_text(doc.format(body=r"We thank the referee \citep{referee}."))
    (folder / "refs_final.bib").write_text(BIB, encoding="utf-8")
    result = latex.convert_source(folder)
    assert result.main_file == "paper_v2.tex"
    assert any("main file paper_v2.tex of 3 documents" in n and "cited keys have an entry" in n
               for n in result.notes)
    assert {k for _, rid in linked(etree.fromstring(result.xml)) for k in rid.split()} == \
        {"lee2019", "schmidt2020", "v8", "duktape"}


def test_fullcite_prints_the_whole_entry(tmp_path):
    # a "further reading" list of \fullcite items: biblatex prints each entry in full, not a "(Lee and Kim, 2019)"
    # marker standing alone
    body = r"\section{Reading} \begin{itemize} \item \fullcite{lee2019} \end{itemize}"
    text = " ".join(paragraphs(convert(tmp_path, body)))
    assert "Port call optimisation with shared arrival times" in text and "(Lee and Kim, 2019)" not in text


def test_a_template_with_its_own_small_bibliography_does_not_outrank_the_paper(tmp_path):
    # a bioRxiv template beside the paper holds an inline thebibliography of two entries; the paper names a .bib
    # under another name than the one shipped: the document whose cited keys have entries in the source wins
    folder = tmp_path / "src"
    (folder / "bioRxiv").mkdir(parents=True)
    (folder / "bioRxiv" / "main.tex").write_text(
        "\\documentclass{article}\n\\begin{document}\nA template \\cite{t1,t2}.\n\\begin{thebibliography}{2}\n"
        "\\bibitem{t1} A. One. First. 2001.\n\\bibitem{t2} B. Two. Second. 2002.\n\\end{thebibliography}\n"
        "\\end{document}\n", encoding="utf-8")
    (folder / "main.tex").write_text(
        "\\documentclass{article}\n\\usepackage{natbib}\n\\begin{document}\nPort calls \\citep{lee2019}, "
        "redshifts \\citep{schmidt2020}, engines \\citep{v8}.\n\\bibliographystyle{plainnat}\n"
        "\\bibliography{citations}\n\\end{document}\n", encoding="utf-8")
    (folder / "citations-arxiv.bib").write_text(BIB, encoding="utf-8")
    result = latex.convert_source(folder)
    assert result.main_file == "main.tex"
    # (round 32b: the paper is at the top of the source and the template in a subfolder, which decides first)
    assert any("it is at the top of the source" in n for n in result.notes)


# -- issue 25, held-out round: classes 67 new sources showed ------------------------------------------------------

def test_user_newif_conditional_keeps_only_the_branch_its_setting_chooses(tmp_path):
    # a draft/camera-ready switch wrapped in a citation macro: TeX prints one \cite, never both branches
    preamble = r"""\newif\ifCameraReady
%\CameraReadytrue
\newif\ifNotCameraReady
\ifCameraReady\NotCameraReadyfalse\else\NotCameraReadytrue\fi
\newcommand{\condcite}[2]{\ifCameraReady\cite{#1}\else\cite{#1,#2}\fi}"""
    body = (r"Stateless designs received attention~\condcite{lee2019}{v8} due to their storage."
            r" Engines\ifNotCameraReady~\cite{duktape}\fi{} are small.\ifCameraReady{} Camera text\cite{joss2022}.\fi")
    root = convert(tmp_path, body, preamble)
    assert linked(root) == [("Lee and Kim (2019); Google (2018)", "lee2019 v8"), ("Vaarala (2018)", "duktape")]
    text = paragraphs(root)[0]
    assert "2018) due to" in text and "Camera text" not in text


def test_newif_set_true_in_the_preamble_takes_the_first_branch(tmp_path):
    preamble = "\\newif\\iffull\n\\fulltrue"
    root = convert(tmp_path, r"Ports share times\iffull~\citep{lee2019}\else~\citep{v8}\fi.", preamble)
    assert linked(root) == [("Lee and Kim, 2019", "lee2019")]


def test_theorem_title_that_only_cites_opens_the_statement_sentence(tmp_path):
    # "\begin{thm}[\cite{x}]": printed as a sentence of its own it holds no words; it opens the statement instead
    preamble = "\\newtheorem{thm}{Theorem}\n\\newtheorem{mainlemma}{Main Lemma}"
    body = (r"\begin{thm}[\citet{lee2019}] \label{t:a}" "\n"
            r"  Every port call has an optimal arrival time.\end{thm}" "\n"
            r"\begin{mainlemma}[Mountain Pass, {\citep[Cor.~7]{v8}}] Let $X$ be a space.\end{mainlemma}")
    texts = paragraphs(convert(tmp_path, body, preamble))
    assert texts[0] == "Theorem (Lee and Kim (2019)): Every port call has an optimal arrival time."
    assert texts[1] == "Main Lemma (Mountain Pass, (Google, 2018, Cor. 7)): Let X be a space."


def test_unclosed_dollar_ends_at_the_blank_line_and_the_rest_of_the_paper_is_read(tmp_path):
    # a tabbing line's "\=$" took the dollar as the accent's letter, math never closed, and the paper ended there
    body = (r"The properties are these sets:" "\n"
            r"\begin{tabbing}" "\n" r"\hspace{1em}\=\bullet\hspace{0.5em}\=$\in\Nodes\,$\=\kill" "\n"
            r"\>types:\>$t$\>$\in T$ \\" "\n" r"\end{tabbing}" "\n"
            r"Sizes are bounded by $x < 5 and the text goes on." "\n\n"
            r"Routing follows the on-demand protocol~\citep{lee2019}.")
    root = convert(tmp_path, body)
    assert linked(root) == [("Lee and Kim, 2019", "lee2019")]
    assert any("types:" in t for t in paragraphs(root))
    assert "Routing follows the on-demand protocol (Lee and Kim, 2019)." in paragraphs(root)


def test_acmart_prints_numbers_unless_the_document_asks_for_author_year(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.bbl").write_text(
        "\\begin{thebibliography}{2}\n\\bibitem[Lee and Kim(2019)]{lee2019} J. Lee and S. Kim. 2019. Port call "
        "optimisation with shared arrival times. \\emph{Maritime Policy Review}.\n\\end{thebibliography}\n",
        encoding="utf-8")
    (folder / "main.tex").write_text(
        "\\documentclass[sigconf]{acmart}\n\\begin{document}\nLee et al.~\\cite{lee2019} validated it.\n"
        "\\bibliographystyle{ACM-Reference-Format}\n\\bibliography{main}\n\\end{document}\n", encoding="utf-8")
    root = etree.fromstring(latex.convert_source(folder).xml)
    assert paragraphs(root) == ["Lee et al. [1] validated it."]
    text = (folder / "main.tex").read_text().replace("\\begin{document}", "\\citestyle{acmauthoryear}\n\\begin{document}")
    (folder / "main.tex").write_text(text, encoding="utf-8")
    assert "Lee and Kim (2019)" in paragraphs(etree.fromstring(latex.convert_source(folder).xml))[0]


def test_revtex_onlinecite_prints_the_bare_number_inside_the_authors_brackets(tmp_path):
    folder = tmp_path / "src2"
    folder.mkdir()
    (folder / "main.tex").write_text(
        "\\documentclass{revtex4-1}\n\\begin{document}\nIt is described in Ref.~[\\onlinecite{lee2019}] and "
        "Refs.~[\\onlinecite{lee2019,v8}].\n\\bibliography{refs}\n\\end{document}\n", encoding="utf-8")
    (folder / "refs.bib").write_text(BIB, encoding="utf-8")
    text = paragraphs(etree.fromstring(latex.convert_source(folder).xml))[0]
    assert text == "It is described in Ref. [1] and Refs. [1, 2]."


def test_bib_entry_with_only_a_note_prints_the_note_not_its_key(tmp_path):
    bib = BIB + "@misc{minisat,\nnote={\\url{http://minisat.se/}}}\n"
    root = convert(tmp_path, r"The MiniSat solver~\citep{minisat} is used.", bib=bib)
    text = "".join(root.find("back").find("ref-list").find("ref").itertext())
    assert "minisat.se" in text


def test_a_theorem_whose_statement_opens_with_a_braced_citation_group_takes_it_as_its_title(tmp_path):
    # "\begin{lemma}{\cite[Lemma 5.1]{x}}" (braces, not brackets: the works the statement comes from, before it) and
    # "{\citep{a,b}} Every ...": read as the optional argument, so the group opens the statement's first sentence
    # and is not a sentence of its own with no words
    preamble = "\\newtheorem{lemma}{Lemma}\n\\newtheorem{thm}{Theorem}"
    body = (r"\begin{lemma}{\citep[Lemma~5.1]{lee2019}}" "\n" r"  \label{l:a}" "\n"
            r"  Let $(X, \preceq)$ be a partially ordered set of ports.\end{lemma}" "\n\n"
            r"\begin{thm}" "\n" r"{\citep{v8,duktape}} Every engine parses the same scripts.\end{thm}" "\n\n"
            r"\begin{thm}{Every} port call has an arrival time.\end{thm}")
    texts = paragraphs(convert(tmp_path, body, preamble))
    assert texts[0] == "Lemma ((Lee and Kim, 2019, Lemma 5.1)): Let [formula] be a partially ordered set of ports."
    assert texts[1] == "Theorem ((Google, 2018; Vaarala, 2018)): Every engine parses the same scripts."
    assert texts[2] == "Every port call has an arrival time."


def test_a_tabular_nested_in_a_cell_is_that_cells_words_not_rows_of_the_outer_table(tmp_path):
    # \begin{tabular}[c]{@{}l@{}}Thermal\\ conductivity\end{tabular} prints one cell on two lines: its \\ does not
    # end the outer row (nor does \makecell's), so the row keeps all its cells, and no column spec is printed
    body = r"""\section{Data}
\begin{table}\caption{Material properties}
\begin{tabular}{lll}
Property & Value & Source \\ \hline
\begin{tabular}[c]{@{}l@{}}Thermal\\ conductivity\end{tabular} & 1.15 & measured at the port \citep{lee2019} \\
Specific heat & \begin{tabular}{c} 900 \\ 950 \end{tabular} & \makecell{handbook\\values} \citep{v8} \\
\end{tabular}\end{table}"""
    texts = paragraphs(convert(tmp_path, body, "\\usepackage{makecell}"))
    assert "Thermal conductivity – 1.15 – measured at the port (Lee and Kim, 2019)" in texts
    assert "Specific heat – 900 950 – handbook values (Google, 2018)" in texts
    assert not any("@" in t or "[c]" in t for t in texts)


def test_a_cell_or_row_colour_prints_nothing(tmp_path):
    # colortbl/xcolor's \rowcolor{blue!10} and \cellcolor[gray]{0.9} colour the row; their argument is no word of it
    body = r"""\section{Data}
\begin{table}\caption{Static attributes}
\begin{tabular}{ll}
\rowcolor{blue!10} ic & Inheritance coupling between port classes \citep{lee2019} \\
\cellcolor[gray]{0.9} npm & Number of public methods of an engine \citep{v8} \\
\end{tabular}\end{table}"""
    texts = paragraphs(convert(tmp_path, body, "\\usepackage[table]{xcolor}"))
    assert "ic – Inheritance coupling between port classes (Lee and Kim, 2019)" in texts
    assert "npm – Number of public methods of an engine (Google, 2018)" in texts
    body = body.replace(r"\rowcolor{blue!10} ic &", r"\cellcolor{white} &")
    (tmp_path / "2").mkdir()  # and the row does not open with the empty cell's separator
    assert "Inheritance coupling between port classes (Lee and Kim, 2019)" in paragraphs(convert(tmp_path / "2", body))


def test_a_list_item_that_only_names_a_thing_takes_the_sentence_leading_into_the_list(tmp_path):
    # "Real-world datasets include:" + "\item Adult Census \cite{x}": the item is a part of that sentence, which
    # says what the named thing is; an item that says more stands as it is
    body = r"""\section{Data}
The package ships with catalogues of benchmark datasets from different domains. Real-world datasets include:

\begin{itemize}
\item Port Calls \citep{lee2019}
\item Engine scripts used for the fuzzing experiments of the second study \citep{v8}
\end{itemize}
Both are public."""
    texts = paragraphs(convert(tmp_path, body))
    assert "Real-world datasets include: Port Calls (Lee and Kim, 2019)" in texts
    assert "Engine scripts used for the fuzzing experiments of the second study (Google, 2018)" in texts


def test_an_inline_list_is_read_inside_its_sentence(tmp_path):
    # paralist's inparaenum (and enumitem's starred lists with [inline]) prints its items inside the paragraph:
    # "four datasets: (i) Port Calls [11], (ii) ... and (iii) ...": one sentence, not one paragraph per item
    body = r"""\section{Data}
We classify time series from three real-world datasets:
%
\begin{inparaenum}[(i)]
  \item \texttt{PortCalls}~\citep{lee2019},
  \item \texttt{V8}~\citep{v8}, and
  \item \texttt{Duktape}~\citep{duktape}.
\end{inparaenum}
Since they are short, we pad them.

\begin{enumerate*}[label=(\alph*)]
\item ports \citep{lee2019}, \item engines \citep{v8}
\end{enumerate*} are both used."""
    texts = paragraphs(convert(tmp_path, body, "\\usepackage{paralist}\n\\usepackage[inline]{enumitem}"))
    assert ("We classify time series from three real-world datasets: PortCalls (Lee and Kim, 2019), V8 (Google, "
            "2018), and Duktape (Vaarala, 2018). Since they are short, we pad them.") in texts
    assert "ports (Lee and Kim, 2019), engines (Google, 2018) are both used." in texts


def test_a_def_whose_name_ends_in_a_digit_prints_its_body(tmp_path):
    # "\def\mdpl2{\texttt{MDPL2}}" defines \mdpl with the parameter text "2": "\mdpl2{}" prints MDPL2, not "2"
    preamble = r"\def\mdpl2{\texttt{MDPL2}}" "\n" r"\def\smdpl{\texttt{SMDPL}}"
    body = r"We use data from the \mdpl2{} and the \smdpl{} simulations \citep{lee2019}."
    assert paragraphs(convert(tmp_path, body, preamble)) == [
        "We use data from the MDPL2 and the SMDPL simulations (Lee and Kim, 2019)."]


def test_aastex_software_list_prints_its_label(tmp_path):
    # \software{numpy \citep{x}, ...} prints "Software: numpy (...)": the names alone do not say what they are
    body = r"""\section{Data}
Ports share arrival times.

\software{\texttt{PortSim} \citep{lee2019}, \texttt{V8} \citep{v8}}
\facilities{Duktape \citep{duktape}}"""
    texts = paragraphs(convert(tmp_path, body, cls="aastex631"))
    assert "Software: PortSim (Lee and Kim, 2019), V8 (Google, 2018)" in texts
    assert "Facilities: Duktape (Vaarala, 2018)" in texts
