"""Stage 03's LaTeX route (and stage 04 on its output): classes of source that issue 25's round-29 reading of the
held-out sets showed (lists of publications, table rows that continue the row above, captions' credit lines), each
on a source the test writes itself."""
from __future__ import annotations

from test_03_latex_r28_classes import cited_rids, convert, paragraphs
from test_04_xml_to_csv import paragraph, sentences_of

BIBLATEX = r"\usepackage[backend=biber,style=numeric]{biblatex}" "\n" r"\addbibresource{refs.bib}"


def test_a_list_of_publications_prints_each_fullcite_entry_as_text_not_as_a_citing_sentence(tmp_path):
    # a thesis's "Publications during candidature": each paragraph (or item) is one \fullcite and nothing else, the
    # entry printed in the text; stage 04 would cut it at its first full stop into a "sentence" of author names
    # linked to the work. It is no sentence that cites: its words stay, its link goes; a \fullcite inside a
    # sentence still cites
    body = r"""\chapter*{Publications during candidature}
\noindent\AtNextCite{\defcounter{maxnames}{99}}\fullcite{ross2002}\\

\begin{itemize}
\item \fullcite{lee2019}
\end{itemize}
\chapter{Introduction}
Trajectories were optimised by pseudospectral methods \cite{ross2002}, as in \fullcite{wilson1974}."""
    root = convert(tmp_path, body, preamble=BIBLATEX, cls="book")
    text = paragraphs(root)
    assert text[0] == ("I. M. Ross and F. Fahroo. A direct method for solving nonsmooth optimal control problems. "
                       "Proceedings of the IFAC World Congress. 2002.")
    assert text[1].startswith("J. Lee and S. Kim. Port call optimisation with shared arrival times.")
    assert cited_rids(root) == ["ross2002", "wilson1974"]


def test_a_table_row_of_empty_cells_and_a_citation_goes_on_with_the_row_above(tmp_path):
    # the references cell of a parameter table set on two lines: "\citet{a};" ends the row, and the next row holds
    # only empty cells and "\citet{b}"; that row is the same row's cell, not a row of its own that says nothing
    body = r"""\section{Model}
The parameters are listed below.
\begin{table}
\caption{Model parameters}
\begin{tabular}{llll}
Parameter & Symbol & Range & References \\
Critical exponent & $\nu$ & $[0.6,0.7]$ & \cite{lee2019} \\
Albedo decay rate & $\tau$ & $[10,22]$ & \cite{ross2002}; \\
 & & & \cite{wilson1974} \\
\end{tabular}
\end{table}"""
    root = convert(tmp_path, body)
    rows = [p for p in paragraphs(root) if "Albedo decay rate" in p]
    assert len(rows) == 1 and rows[0].endswith("[2]; [3]")
    assert cited_rids(root) == ["lee2019", "ross2002", "wilson1974"]


def test_a_captions_credit_line_goes_on_with_the_sentence_that_describes_the_figure():
    # "Source: [30]", "From [18]", "Figure adapted from [57].", "Adapted from: Lee and Kim (2019)" name where the
    # figure comes from and hold no words of their own: the sentence that cites the work is the description before
    par = paragraph("An example of a confusion matrix for binary classification. Source: [30]", "[30]")
    assert sentences_of(par) == ["An example of a confusion matrix for binary classification. Source: [30]"]
    par = paragraph("The Bloch sphere representation. A qubit can occupy any point on the sphere. "
                    "Figure adapted from [57].", "[57]")
    assert sentences_of(par) == ["The Bloch sphere representation.",
                                 "A qubit can occupy any point on the sphere. Figure adapted from [57]."]
    par = paragraph("Artificial ice reservoirs in Ladakh. Adapted from: Lee and Kim (2019)", "Lee and Kim (2019)")
    assert len(sentences_of(par)) == 1
    par = paragraph("An overview of the feature chain. Source: Adapted by me from [4]", "[4]")
    assert len(sentences_of(par)) == 1
    # a sentence with words of its own after "from" is a sentence: "From [2] we get the bound."
    par = paragraph("It holds. From [2] we get the bound. We follow [3].", "[2]", "[3]")
    assert sentences_of(par) == ["It holds.", "From [2] we get the bound.", "We follow [3]."]


def test_a_credit_line_in_a_latex_caption_reaches_stage_04_with_its_description(tmp_path):
    body = r"""\section{Background}
Edges are found by gradients.
\begin{figure}
\caption{Cartoon representation of the freezing string method over an example surface. From \cite{lee2019}}
\end{figure}"""
    root = convert(tmp_path, body)
    par = next(p for p in root.find("body").iter("p") if "freezing string" in "".join(p.itertext()))
    text = " ".join("".join(par.itertext()).split())
    marker = "[1]"
    assert sentences_of(paragraph(text, marker)) == [text]


def test_a_full_stop_inside_a_code_name_with_no_space_after_it_ends_no_sentence():
    # "specified using \code{fem.Material = Elastic80A} \cite{x}": syntok ends a sentence at "fem." before the
    # capital; a dot with a letter right after it is a name's (code, a file, a domain), and the sentence is whole
    par = paragraph("The material properties of the resin are then specified using fem.Material = Elastic80A [31]. "
                    "Boundary conditions are set.", "[31]")
    assert sentences_of(par) == ["The material properties of the resin are then specified using fem.Material = "
                                 "Elastic80A [31].", "Boundary conditions are set."]
    par = paragraph("We call mesh.Export() to write it [3]. Then we go on.", "[3]")
    assert sentences_of(par) == ["We call mesh.Export() to write it [3].", "Then we go on."]
    # words on both sides of the dot, no code about them: the authors' missing space after a sentence end
    par = paragraph("A genus dominated a KO term.Gardnerella spp., for example, gave 17 genes [4].", "[4]")
    assert sentences_of(par) == ["A genus dominated a KO term.", "Gardnerella spp., for example, gave 17 genes [4]."]


def test_a_table_row_citing_a_work_for_each_value_keeps_its_citations_under_the_caption_title(tmp_path):
    # "Density & 2690 \cite{a} & 4800 \cite{b}": one property, each column's value from its own work, works cited
    # nowhere else; the row says what each is cited for, under the table's short caption. A row of bare
    # citations ("References & \cite{a} & \cite{b}") is still no row that says anything
    body = r"""\section{Properties}
The properties of both layers are summarised below.
\begin{table}
\caption{Summary of thermal and physical properties of the melt and the coating}
\begin{tabular}{lll}
Property & Melt & Coating \\
Density (kg/m3) & 2690 \cite{lee2019} & 4800 \cite{ross2002} \\
References & \cite{wilson1974} & \cite{wilson1974} \\
\end{tabular}
\end{table}"""
    root = convert(tmp_path, body)
    assert "Summary of thermal and physical properties of the melt and the coating: Density (kg/m3) – 2690 [1] – " \
           "4800 [2]" in paragraphs(root)
    assert cited_rids(root) == ["lee2019", "ross2002"]


def test_a_panel_label_opens_its_sentence_and_an_inline_list_label_goes_on_with_its_own():
    # syntok ends a sentence after a parenthesised label before a capital: a caption's "(Right:)" opens the next
    # panel's sentence, so the credit line before it stays with the left panel's; an inline list's "(c)" after a
    # word, with no sentence end before it, is a part of the sentence that lists
    par = paragraph("(Left:) Three people in a building. Source: [27] (Right:) The computed features of the image",
                    "[27]")
    assert sentences_of(par) == ["(Left:) Three people in a building. Source: [27]",
                                 "(Right:) The computed features of the image"]
    par = paragraph("We use three tweaks: (a) weighted losses (see Sec. 3) (b) fuzzy oversampling (see Sec. 4) "
                    "(c) SMOTE [72], an oversampling method. It helps.", "[72]")
    assert sentences_of(par) == ["We use three tweaks: (a) weighted losses (see Sec. 3) (b) fuzzy oversampling "
                                 "(see Sec. 4) (c) SMOTE [72], an oversampling method.", "It helps."]


def test_a_short_script_in_inline_math_prints_as_written_not_as_a_formula(tmp_path):
    # "kg/m$^3$", "$s^{-1}$", "$T_{ppt}$" are units and names in a sentence; printed "[formula]" they lose the words
    # a reader needs ("Density (kg/m[formula])"); they print as written, the way "$z_R$" prints "z_R"
    body = r"""\section{Model}
The density is 2690 kg/m$^3$ and the decay rate $0.1\,s^{-1}$ below the threshold $T_{ppt}$ \cite{lee2019}.
The loss $\mathcal{L}=\sum_i x_i^2$ is small \cite{ross2002}."""
    assert paragraphs(convert(tmp_path, body)) == ["The density is 2690 kg/m^3 and the decay rate 0.1 s^-1 below the "
                                                   "threshold T_ppt [1]. The loss [formula] is small [2]."]
