"""The LaTeX-source route of stage 03: an unpacked arXiv e-print -> the JATS stage 04 reads.

In the source every citation is an explicit ``\\cite{key}`` and every reference a ``\\bibitem{key}`` (``.bbl``) or a
``.bib`` entry, so nothing has to be guessed from layout. The steps, each a function below:

1. ``find_main_file``: the ``.tex`` with ``\\documentclass`` and ``\\begin{document}`` (several: one that
   cites, then not latexdiff's output, then with a matching ``.bbl``, not ``\\input`` by another, conventional name,
   most citations, largest);
   files carried in ``filecontents`` environments are written out first, as LaTeX does.
2. ``load_document``: decoded (UTF-8, else the declared ``inputenc``, else charset-normalizer's guess; CR and
   CRLF made LF), comments and ``\\iffalse`` blocks dropped,
   ``\\input``/``\\include``/``\\subfile``/``\\import`` followed (paths checked with ``safe_path_under``).
3. ``collect_macros`` + ``expand_macros``: user ``\\newcommand``/``\\def``/``\\let`` expanded, so a macro wrapping
   ``\\cite`` becomes the ``\\cite`` it stands for (``local_package_macros``: also those of the authors' own
   ``.sty`` files shipped with the source).
4. ``Converter``: a single left-to-right pass over the body that keeps text, turns math into ``[formula]``, drops
   floats (their captions kept apart), moves footnotes out of their sentence, and records each citation command
   with its keys and optional notes. Symbol and accent macros come from pylatexenc's tables.
5. ``read_bibliography``: ``.bbl`` (``thebibliography`` with natbib/revtex labels, or biblatex ``\\entry`` blocks)
   first, the ``.bib`` (bibtexparser 2) for keys the ``.bbl`` lacks.
6. ``to_jats``: ``body/sec/p`` with ``<xref ref-type="bibr" rid="key ...">`` and ``back/ref-list/ref`` with a
   ``mixed-citation`` holding the printed text and the fields as CERMINE tags them.

Why not pylatexenc's walker for the whole document: it took 1.7 s on one 150 kB real paper (araa-gps), eight
times the 0.2 s budget; the single regex-driven pass here does it in a few hundredths (README, "Measured").
"""
from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from lxml import etree

import pipeline_utils as pu
from eprint import ARXIV_README  # the stage's folder is on sys.path, as for this module


class LatexError(Exception):
    """A source that cannot be converted; the message is the fallback reason shown in the log."""


# ---------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------

def decode(data: bytes, encoding: str | None = None) -> str:
    """Source bytes as text: UTF-8 (BOM allowed), else the encoding the document declares (``encoding``, from
    ``declared_encoding``), else the one charset-normalizer finds, else Latin-1; line ends made ``\\n`` (TeX ends a
    line at CR, CRLF or LF alike, and every pattern here reads ``\\n``)."""
    return _decode(data, encoding).replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, encoding: str | None) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if encoding:
        return data.decode(encoding, errors="replace")
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    if best is not None:
        try:
            return data.decode(best.encoding)
        except (UnicodeDecodeError, LookupError):
            pass
    return data.decode("latin-1")


# inputenc's names -> Python's codecs (a short Latin-1 file is often taken for cp1250 or Big5 by a detector: the
# declaration is what LaTeX itself goes by)
INPUTENC = {"latin1": "latin-1", "latin2": "iso8859-2", "latin3": "iso8859-3", "latin4": "iso8859-4",
            "latin5": "iso8859-9", "latin9": "iso8859-15", "latin10": "iso8859-16", "l7xenc": "iso8859-13",
            "ansinew": "cp1252", "cp1252": "cp1252", "cp1250": "cp1250", "cp1251": "cp1251", "cp1255": "cp1255",
            "cp1257": "cp1257", "cp437": "cp437", "cp437de": "cp437", "cp850": "cp850", "cp852": "cp852",
            "cp855": "cp855", "cp858": "cp858", "cp865": "cp865", "cp866": "cp866", "applemac": "mac_roman",
            "macce": "mac_latin2", "koi8-r": "koi8_r", "koi8-u": "koi8_u", "koi8-ru": "koi8_u",
            "decmulti": "latin-1", "next": "latin-1", "utf8": "utf-8", "utf8x": "utf-8"}
_INPUTENC = re.compile(rb"^[^%\n]*?\\(?:usepackage\s*\[([^\]]*)\]\s*\{inputenc\}|inputencoding\s*\{([^}]*)\})", re.M)


def declared_encoding(main: Path, folder: Path) -> str | None:
    """The Python codec of the ``inputenc`` encoding the document declares (the main file first, then the other
    ``.tex`` files: a shared preamble may hold it); None when it declares none LaTeX and Python both know."""
    paths = [main] + [p for p in sorted(Path(folder).rglob("*.tex")) if p != main]
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if b"inputenc" not in data:
            continue
        for m in _INPUTENC.finditer(data):
            options = (m.group(1) or m.group(2) or b"").decode("ascii", "replace")
            # inputenc takes the last option it knows
            known = [INPUTENC[o.strip().lower()] for o in options.split(",") if o.strip().lower() in INPUTENC]
            if known:
                return known[-1]
    return None


# a % starts a comment unless escaped (an odd number of backslashes before it); it eats its newline and the next
# line's indent, unless that line is empty (an empty line is a paragraph break even after a comment)
_COMMENT = re.compile(r"%[^\n]*(?:\n[ \t]*+(?!\n))?")


# \url{...}, \href{...}, \path{...} read their argument verbatim: a % in it is the URL's (percent-encoding), not a
# comment that would cut the line and leave the brace open, so that the argument swallows the rest of the document;
# the argument may have begun a line or two before (revtex's .bbl wraps a long \href at 80 columns)
_URL_OPEN = re.compile(r"\\(?:url|href|nolinkurl|path|doi|burl)\s*\{(?:[^{}\n]*\n(?![ \t]*\n)){0,2}[^{}\n]*$")
_VERB_OPEN = re.compile(r"\\(?:verb|lstinline)\*?([^\sA-Za-z*{\[])(?:(?!\1).)*$")


def _comment(m: re.Match) -> str:
    text, start = m.string, m.start()
    k = start
    while k > 0 and text[k - 1] == "\\":
        k -= 1
    if (start - k) % 2 == 0:
        line = text[text.rfind("\n", 0, start) + 1:start]
        window = text[max(0, start - 600):start]  # the URL's argument may have begun on an earlier line
        if "\\" in window:
            rest = m.group(0)
            verb = _VERB_OPEN.search(line) if "\\" in line else None
            close = rest.find(verb.group(1)) if verb else rest.find("}") if _URL_OPEN.search(window) else -1
            if close > 0:  # the argument goes on to its closing brace (or delimiter); a comment may follow it
                return rest[:close + 1] + _COMMENT.sub(_comment, rest[close + 1:])
        return ""
    rest = m.group(0)[1:]  # "\%" is a percent sign; a real comment may still follow on the line
    cut = re.search(r"(?<!\\)%", rest)
    return "%" + (rest if cut is None else rest[:cut.start()] + _COMMENT.sub(_comment, rest[cut.start():]))
_IF_TOKEN = re.compile(r"\\(iffalse|iftrue|else|fi)(?![A-Za-z@])|(?<!\\newif)\\if[A-Za-z@]*(?<!\\ifthenelse)")
_COMMENT_ENV = re.compile(r"\\begin\{comment\}.*?\\end\{comment\}", re.S)


def strip_comments(text: str) -> str:
    """Drop ``%`` comments, ``comment`` environments and ``\\iffalse`` (keeping their ``\\else``) blocks."""
    text = _COMMENT.sub(_comment, text)
    text = _COMMENT_ENV.sub("", text)
    return _drop_iffalse(text) if "\\iffalse" in text or "\\iftrue" in text else text


def _drop_iffalse(text: str) -> str:
    out, pos = [], 0
    tokens = list(_IF_TOKEN.finditer(text))
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.group(1) not in ("iffalse", "iftrue"):
            i += 1
            continue
        keep_first = tok.group(1) == "iftrue"
        depth, j, else_at = 1, i + 1, None
        while j < len(tokens) and depth:
            name = tokens[j].group(1)
            if name == "fi":
                depth -= 1
            elif name == "else":
                if depth == 1:
                    else_at = tokens[j]
            else:
                depth += 1
            j += 1
        if depth:  # unbalanced: leave the rest alone
            break
        end_tok = tokens[j - 1]
        out.append(text[pos:tok.start()])
        if keep_first:
            out.append(text[tok.end():else_at.start() if else_at else end_tok.start()])
        elif else_at:
            out.append(text[else_at.end():end_tok.start()])
        pos = end_tok.end()
        i = j
    out.append(text[pos:])
    return "".join(out)


# TeX's conditionals whose \fi a user conditional's region may hold (counted, never evaluated); other \if... names
# (\iff, etoolbox's \ifstrequal{..}{..}{..}{..}) take no \fi
_TEX_IFS = {"if", "ifx", "ifnum", "ifdim", "ifodd", "ifcase", "ifcat", "ifdefined", "ifcsname", "ifmmode", "ifvmode",
            "ifhmode", "ifinner", "ifvoid", "ifhbox", "ifvbox", "ifeof", "iftrue", "iffalse", "iffontchar",
            "ifincsname", "ifpdfprimitive", "ifpdf", "ifxetex", "ifluatex", "ifLuaTeX", "ifXeTeX", "ifPDFTeX",
            "ifpdftex", "ifdraft"}
_NEWIF = re.compile(r"\\newif\s*\\if([A-Za-z@]+)")


def _without_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` (a prefix of the document) without the macro definitions at ``spans`` (document offsets)."""
    out, pos = [], 0
    for a, b in spans:
        if a >= len(text):
            break
        out.append(text[pos:a])
        pos = max(pos, b)
    out.append(text[pos:])
    return "".join(out)


def resolve_conditionals(preamble: str, body: str, declared: list[str] = ()) -> str:
    """``body`` with the document's own ``\\newif`` conditionals decided as TeX decides them: ``\\ifdraft ... \\else
    ... \\fi`` keeps the branch that ``\\drafttrue``/``\\draftfalse`` (default false) chose, the settings read in
    order from the preamble (outside macro definitions; its own conditionals decided too) and then the body. A
    macro wrapping one (``\\condcite{a}{b}`` -> ``\\ifCameraReady\\cite{a}\\else\\cite{a,b}\\fi``) is already
    expanded here, so it prints one citation, not both. A region whose ``\\fi`` cannot be paired is left as it
    was. ``declared``: conditionals whose ``\\newif`` was cut from ``preamble`` with the macro definitions."""
    names = set(declared) | set(_NEWIF.findall(preamble)) | set(_NEWIF.findall(body))
    if not names:
        return body
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    token = re.compile(r"\\(?:if(" + alt + r")|(" + alt + r")(true|false)|(if[A-Za-z@]*)|(else|fi))(?![A-Za-z@])")
    state = {n: False for n in names}

    def walk(text: str, keep_text: bool) -> str | None:
        out, pos = [], 0
        stack: list[list] = []  # [user?, keep this branch?, outer keep]
        keeping = True
        for m in token.finditer(text):
            user_if, setting, value, other_if, word = m.groups()
            if other_if is not None and other_if not in _TEX_IFS and not other_if.startswith("if@"):
                continue
            if keeping:
                out.append(text[pos:m.start()])
            pos = m.end()
            if user_if is not None or other_if is not None:
                if user_if is not None:
                    stack.append([True, state[user_if], keeping])
                    keeping = keeping and state[user_if]
                else:  # a TeX conditional: both its branches stay, as before
                    stack.append([False, True, keeping])
                    if keeping:
                        out.append(m.group(0))
            elif setting is not None:
                if keeping:
                    state[setting] = value == "true"
                    if not keep_text:
                        out.append(m.group(0))
            elif word == "else":
                if not stack:
                    return None
                frame = stack[-1]
                if frame[0]:
                    frame[1] = not frame[1]
                    keeping = frame[2] and frame[1]
                elif keeping:
                    out.append(m.group(0))
            else:  # \fi
                if not stack:
                    return None
                frame = stack.pop()
                keeping = frame[2]
                if not frame[0] and keeping:
                    out.append(m.group(0))
        if stack:
            return None
        if keeping:
            out.append(text[pos:])
        return "".join(out)

    if walk(_NEWIF.sub(" ", preamble), False) is None:
        state = {n: False for n in names}
    resolved = walk(body, True)
    return body if resolved is None else resolved


# ---------------------------------------------------------------------------
# Braces
# ---------------------------------------------------------------------------

_BRACES = re.compile(r"\\.|[{}]", re.S)
_BRACKETS = re.compile(r"\\.|[{}\]]", re.S)


def read_group(text: str, i: int) -> tuple[str, int] | None:
    """The content of the ``{...}`` starting at ``text[i]`` (after spaces) and the index after it, else None."""
    n = len(text)
    while i < n and text[i] in " \t\n":
        i += 1
    if i >= n or text[i] != "{":
        return None
    depth = 0
    for m in _BRACES.finditer(text, i):
        c = m.group(0)
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:m.start()], m.end()
    return text[i + 1:], n


def _option_title(options: str) -> str | None:
    """The value of a ``title=`` (mdframed's ``frametitle=``) key in an environment's key-value options, braces
    around it taken off; None where there is none. Keys are read at the top level only (not inside braces)."""
    depth, start, items = 0, 0, []
    for k, ch in enumerate(options):
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            items.append(options[start:k])
            start = k + 1
    items.append(options[start:])
    for item in items:
        m = re.match(r"\s*(?:frame)?title\s*=\s*", item)
        if m:
            value = item[m.end():].strip()
            g = read_group(value, 0) if value.startswith("{") else None
            return g[0] if g is not None and not value[g[1]:].strip() else value
    return None


def read_optional(text: str, i: int) -> tuple[str, int] | None:
    """The content of ``[...]`` at ``text[i]`` (after spaces; braces inside respected), else None."""
    n = len(text)
    k = i
    while k < n and text[k] in " \t\n":
        k += 1
    if k >= n or text[k] != "[":
        return None
    depth = 0
    for m in _BRACKETS.finditer(text, k + 1):
        c = m.group(0)
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "]" and depth <= 0:
            return text[k + 1:m.start()], m.end()
    return None


def read_arg(text: str, i: int) -> tuple[str, int] | None:
    """A macro argument: a braced group, or else one token (a control sequence or a character)."""
    if (g := read_group(text, i)) is not None:
        return g
    n = len(text)
    while i < n and text[i] in " \t\n":
        i += 1
    if i >= n:
        return None
    if text[i] == "\\":
        m = re.match(r"\\(?:[A-Za-z@]+|.)", text[i:i + 64], re.S)
        return m.group(0), i + len(m.group(0))
    return text[i], i + 1


# ---------------------------------------------------------------------------
# The document: main file, inputs, macros
# ---------------------------------------------------------------------------

TEX_SUFFIXES = (".tex", ".ltx", ".latex", "")
_DOCCLASS = re.compile(r"\\document(?:class|style)\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}")
_INPUT = re.compile(r"\\(input|include|subfile|InputIfFileExists|import|subimport|includefrom|subincludefrom)"
                    r"(?![A-Za-z@])")


# LaTeX writes a filecontents environment's body out as a file and typesets nothing of it; at the start of a line
# only (a commented-out one is not an environment)
_FILECONTENTS = re.compile(r"^[ \t]*\\begin\s*\{filecontents(\*?)\}\s*(?:\[([^\]]*)\])?\s*\{([^}]+)\}[^\n]*\n(.*?)"
                           r"^[ \t]*\\end\s*\{filecontents\1\}", re.S | re.M)


# TeX stops reading a file at \endinput (leftover draft text after it is never typeset); one inside a conditional
# (a guard against reading a file twice) is not at the start of its line and is left alone
_ENDINPUT = re.compile(r"^[ \t]*\\endinput(?![A-Za-z@])", re.M)


def _read_source(path: Path, cache: dict[Path, str], encoding: str | None = None) -> str:
    if path not in cache:
        text = decode(path.read_bytes(), encoding)
        if "filecontents" in text:
            text = _FILECONTENTS.sub("", text)
        if "\\endinput" in text and (m := _ENDINPUT.search(text)):
            text = text[:m.start()]
        cache[path] = strip_comments(text)
    return cache[path]


def write_filecontents(folder: Path) -> list[str]:
    """Write out the files that ``filecontents`` environments carry, as LaTeX does when it compiles: a single-file
    submission keeps its ``.bib`` (or a style, a table) that way. An existing file is kept unless the option asks
    to overwrite it (LaTeX's own rule); names are checked with ``safe_path_under``. Returns the names written."""
    folder = Path(folder)
    written = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in TEX_SUFFIXES or path.name.startswith("."):
            continue
        data = path.read_bytes()
        if b"filecontents" not in data:
            continue
        for m in _FILECONTENTS.finditer(decode(data)):
            options, name, content = m.group(2) or "", m.group(3).strip(), m.group(4)
            try:
                target = pu.safe_path_under(folder, os.path.relpath(path.parent / name, folder))
            except (ValueError, OSError):
                continue
            if target.exists() and not re.search(r"\b(?:force|overwrite)\b", options):
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
            except OSError:  # a name the file system refuses: LaTeX would fail on it too; the rest still converts
                continue
            written.append(name)
    return written


_CITES_IN_FILE = re.compile(r"\\(?:[Cc]ite|[Pp]arencite|[Tt]extcite|[Aa]utocite|[Ff]ootcite|[Ss]martcite|[Ss]upercite|"
                            r"onlinecite)[a-zA-Z]*\*?\s*[\[{]")




def arxiv_readme(folder: Path) -> tuple[list[Path], set[Path]]:
    """The top-level files and the ignored files an arXiv ``00README`` declares (legacy ``00README.XXX`` lines
    ``main.tex toplevelfile`` / ``x.tex ignore``, or the JSON/YAML ``sources`` list with ``usage``); arXiv compiles
    only the declared top-level files when there is one. Names are relative to the README; absent files dropped."""
    folder = Path(folder)
    readmes = sorted((p for p in folder.rglob("*") if p.is_file() and p.name.lower() in ARXIV_README),
                     key=lambda p: (len(p.parts), str(p)))
    if not readmes or readmes[0].stat().st_size > 1_000_000:
        return [], set()
    text = decode(readmes[0].read_bytes())
    declared: list[tuple[str, str]] = []  # (file name, usage)
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        sources = data.get("sources") if isinstance(data, dict) else None
        declared = [(str(x.get("filename")), str(x.get("usage"))) for x in sources or []
                    if isinstance(x, dict) and x.get("filename")]
    elif re.search(r"^\s*sources\s*:", text, re.M):  # the YAML form: "- filename: x.tex" / "usage: toplevel"
        for entry in re.split(r"^\s*-\s+", text, flags=re.M)[1:]:
            name = re.search(r"filename\s*:\s*[\"']?([^\"'\n]+?)[\"']?\s*$", entry, re.M)
            usage = re.search(r"usage\s*:\s*[\"']?(\w+)", entry)
            if name and usage:
                declared.append((name.group(1), usage.group(1)))
    else:
        declared = [(parts[0], parts[1]) for parts in map(str.split, text.splitlines()) if len(parts) == 2]
    top, ignored = [], set()
    for name, usage in declared:
        if usage not in ("toplevel", "toplevelfile", "ignore"):
            continue
        try:
            path = pu.safe_path_under(folder, os.path.relpath(readmes[0].parent / name, folder))
        except (ValueError, OSError):
            continue
        if path.is_file():
            (ignored.add(path.resolve()) if usage == "ignore" else top.append(path.resolve()))
    return top, ignored


_BIB_NAMES = re.compile(r"\\(?:bibliography|addbibresource|addglobalbib)\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}")


_BIB_ENTRY_KEY = re.compile(r"@\s*(\w+)\s*[{(]\s*([^,\s]+)\s*,")
_BIBITEM_KEY = re.compile(r"\\bibitem\s*(?:\[(?:[^\[\]]|\[[^\]]*\])*\])?\s*\{([^}]*)\}|\\entry\{([^}]*)\}")


def _alternative(m: re.Match) -> str:
    """The text of whichever alternative of a pattern matched, empty where it matched an empty argument: a
    template's placeholder ``\\bibitem{}`` or ``\\input{}`` reads as no key or file, never as the other (None)."""
    return next((g for g in m.groups() if g is not None), "").strip()


def _bib_files(root: Path) -> list[Path]:
    """The source's ``.bib`` files, whatever the letter case of the suffix: ``test.BIB``, written on a file system
    that does not tell cases apart, is the file ``\\bibliography{test}`` read when the authors built their PDF."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() == ".bib" and p.is_file())


def _other_case(path: Path) -> Path | None:
    """The file that ``path`` names on a file system that does not tell letter cases apart (``refs.bib`` for
    ``refs.BIB``, ``Refs.bib``), where the exact name is absent; None where there is none or more than one."""
    try:
        found = [p for p in path.parent.iterdir() if p.name.lower() == path.name.lower() and p.is_file()]
    except OSError:
        return None
    return found[0] if len(found) == 1 else None


def source_entry_keys(folder: Path, documents: list[str] = ()) -> set[str]:
    """Every key that has a bibliography entry somewhere in a source: the ``.bib`` and ``.bbl`` files and the inline
    ``thebibliography`` of the given documents."""
    keys: set[str] = set()
    for path in sorted(folder.rglob("*")):
        suffix = path.suffix.lower()
        if suffix not in (".bib", ".bbl") or not path.is_file() or path.stat().st_size > 50_000_000:
            continue
        text = decode(path.read_bytes())
        if suffix == ".bib":
            keys.update(m.group(2) for m in _BIB_ENTRY_KEY.finditer(text)
                        if m.group(1).lower() not in ("string", "comment", "preamble"))
        else:
            keys.update(k for m in _BIBITEM_KEY.finditer(text) if (k := _alternative(m)))
    for document in documents:
        if "\\begin{thebibliography}" in document:
            keys.update(k for m in _BIBITEM_KEY.finditer(document) if (k := _alternative(m)))
    return keys


_MAIN_REASONS = ("the others cite nothing", "not a latexdiff file", "it is not in a folder of superseded copies",
                 "not an older copy of another document there",
                 "it is at the top of the source (of the documents whose bibliography is there)",
                 "its .bbl is there", "more of its cited keys have an entry in the source",
                 "its bibliography is in the source", "no other document \\inputs it",
                 "a conventional name", "more citations", "larger")


# latexdiff's output: its header line, or the preamble it adds (\DIFadd/\DIFdel defined). A difference file beside
# the paper cites the deleted text's keys as well as the added ones, so it covers more keys than the paper it marks
# up; it is never the paper (taken only where it is the one document there)
_LATEXDIFF = re.compile(r"^%DIF (?:LATEXDIFF DIFFERENCE FILE|PREAMBLE EXTENSION ADDED BY LATEXDIFF)"
                        r"|\\(?:provide|new)command\{?\\DIF(?:add|del)[A-Za-z]*\b", re.M)


# a folder the authors keep superseded copies in (``manuscript/old/``, ``archive/``, ``backup/``): a document there is
# an earlier version of the paper beside it, the main file only where no other document cites anything
_SUPERSEDED_DIR = re.compile(r"^(?:old|older|archived?|backups?|bak|obsolete|deprecated|outdated|unused|attic|trash)"
                             r"(?:[-_ ].*)?$", re.I)


def _superseded(relative: Path) -> bool:
    return any(_SUPERSEDED_DIR.match(part) for part in relative.parts[:-1])


# a copy the authors kept of a document beside it: "MAIN_old", "ms_backup", "open.bak", "paper (copy)", "old_main"
_COPY_SUFFIX = re.compile(r"(.+?)(?:[ _.-]+|(?=\())(?:\(?(?:old|older|backup|bak|copy|orig|original|prev|previous)\)?\d*)",
                          re.I)
_COPY_PREFIX = re.compile(r"(?:old|backup|bak|copy|orig|original|prev|previous)[ _.-]+(.+)", re.I)
_VERSION_SUFFIX = re.compile(r"(.+?)[ _.-]+v(\d{1,2})", re.I)


def _older_copy(path: Path, others: list[Path]) -> bool:
    """Whether a document is a copy the authors kept of another document in its folder: its name is the other's
    with "old", "backup", "bak", "copy", "orig(inal)" or "prev(ious)" added ("MAIN_old" beside "MAIN"), or a
    version number below another copy's ("paper_v1" beside "paper_v2", or "paper_v1" beside "paper"). Only where
    the name says so: "paper_v2" beside "paper" is left undecided (either may be the later)."""
    stems = {p.stem.lower() for p in others if p != path and p.parent == path.parent}
    stem = path.stem.lower()
    m = _COPY_SUFFIX.fullmatch(stem) or _COPY_PREFIX.fullmatch(stem)
    if m and m.group(1) in stems:
        return True
    m = _VERSION_SUFFIX.fullmatch(stem)
    if not m:
        return False
    base, number = m.group(1), int(m.group(2))
    if number <= 1 and base in stems:
        return True
    return any((v := _VERSION_SUFFIX.fullmatch(other)) and v.group(1) == base and int(v.group(2)) > number
               for other in stems)


def find_main_file(folder: Path, notes: list[str] | None = None) -> Path:
    """The main ``.tex`` of a source tree; raises LatexError when there is none. An arXiv ``00README`` that
    declares the top-level file decides; otherwise the heuristics below. Where several complete documents are
    there (drafts, a response letter, a supplement), ``notes`` says which was taken and why."""
    folder = Path(folder)
    top, ignored = arxiv_readme(folder)
    if len(top) == 1:
        return top[0]
    candidates = top or [p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in TEX_SUFFIXES
                         and not p.name.startswith(".") and p.resolve() not in ignored]
    texts: dict[Path, str] = {}
    mains, split, bodies = [], [], []
    for path in candidates:
        if path.stat().st_size > 20_000_000:
            continue
        # the whole file: a single-file submission may carry its .bib in filecontents before \documentclass
        data = path.read_bytes()
        if b"\\document" not in data and b"\\begin{document}" not in data:
            continue
        text = _read_source(path, texts)
        m = _DOCCLASS.search(text)
        if not m:
            if "\\begin{document}" in text:
                bodies.append(path)
            continue
        if m.group(1).strip() in ("subfiles", "standalone"):
            continue
        (mains if "\\begin{document}" in text else split).append(path)
    # the document whose \documentclass sits in a preamble file it \inputs (``\input{src/settings}`` then
    # ``\begin{document}``) is as complete as one that holds it, beside the templates that do
    split_files = {p.resolve() for p in split}
    for path in bodies:
        head = strip_comments(texts[path]).split("\\begin{document}", 1)[0]
        for m in re.finditer(r"\\(?:input|include)\s*\{([^}]+)\}", head):  # \include{header} too
            target = _resolve_input(m.group(1), path.parent, folder, path.parent)
            if target is not None and target.resolve() in split_files:
                mains.append(path)
                break
    if not mains:  # \begin{document} may sit in an \input file (preamble in one file, body in another)
        for path in split:
            try:
                if "\\begin{document}" in load_document(path, folder):
                    mains.append(path)
            except (LatexError, OSError, RecursionError):
                continue
    if not mains:
        raise LatexError("no main file (no .tex with \\documentclass and \\begin{document})")
    if len(mains) == 1:
        return mains[0]
    included = set()
    for path in mains:
        for m in re.finditer(r"\\(?:input|include|subfile)(?:\s*\{([^}]+)\}|[ \t]+([^\s{}\\]+))", texts[path]):
            # the file it names, as TeX finds it from there (a bioRxiv/main.tex that \input{main}s its own folder's
            # file says nothing of paper/main.tex); by name only where no such file is found
            if not (name := _alternative(m)):
                continue
            target = _resolve_input(name, path.parent, folder, path.parent)
            included.add(target.resolve() if target is not None else Path(name).stem)

    cites, has_bib, documents, named_bibs = {}, {}, {}, {}
    for path in mains:  # counted with its \input files: a main file may hold only the preamble and \inputs
        try:
            document = load_document(path, folder)
        except (LatexError, OSError, RecursionError):
            document = texts[path]
        documents[path] = document
        cites[path] = len(_CITES_IN_FILE.findall(document))
        # its bibliography is in the source: an inline thebibliography, or a .bib it names that is there (a draft
        # beside the submitted file often names a .bib the authors did not ship)
        named = [n.strip() for m in _BIB_NAMES.finditer(document) for n in m.group(1).split(",") if n.strip()]
        named_bibs[path] = named
        has_bib[path] = "\\begin{thebibliography}" in document or any(
            (f := base / (n if n.lower().endswith(".bib") else n + ".bib")).is_file() or _other_case(f) is not None
            for n in named for base in (path.parent, folder))

    # drafts beside the paper that name no .bib the source holds (or name it under another name): the one whose
    # cited keys have entries in the source's .bib/.bbl files is the paper that was typeset with them
    entries = source_entry_keys(folder, list(documents.values()))
    covered = {path: len(source_citation_keys(documents[path]) & entries) for path in mains}

    # arXiv typesets a document at the top of the source: one in a subfolder (an earlier version kept in
    # ``previous-work/``, a journal's template, a ``legacy/`` copy) is the main file only where none is above it;
    # a document above whose bibliography sits below it (an earlier draft left at the top that names
    # ``\bibliography{refs}`` while ``refs.bib`` is in ``Source/`` beside the paper: TeX at the top never finds it)
    # does not set that depth; one whose .bib is nowhere under that name (renamed ``refs-arxiv.bib``) still does
    bib_names = {b.name.lower() for b in _bib_files(folder)}
    misplaced = {p: not has_bib[p] and not p.with_suffix(".bbl").is_file() and any(
        Path(n if n.lower().endswith(".bib") else n + ".bib").name.lower() in bib_names for n in named_bibs[p])
        for p in mains}
    typeset = [p for p in mains if cites[p] > 0 and not misplaced[p]]
    top_depth = min(len(p.relative_to(folder).parts) for p in (typeset or [p for p in mains if cites[p] > 0])) \
        if any(cites.values()) else 0

    def score(path: Path) -> tuple:
        # a response letter or cover letter beside the paper cites nothing, whatever its name or its .bbl's
        return (cites[path] > 0, not _LATEXDIFF.search(texts[path]), not _superseded(path.relative_to(folder)),
                not _older_copy(path, mains),
                len(path.relative_to(folder).parts) == top_depth, path.with_suffix(".bbl").exists(), covered[path],
                has_bib[path],
                path.resolve() not in included and path.stem not in included,
                path.stem.lower() in ("main", "ms", "paper", "article", "manuscript"), cites[path],
                path.stat().st_size)

    ranked = sorted(mains, key=score, reverse=True)
    if notes is not None:
        first, second = score(ranked[0]), score(ranked[1])
        why = next((i for i, (a, b) in enumerate(zip(first, second)) if a != b), None)
        reason = "of the same standing: the first by these rules" if why is None else _MAIN_REASONS[why]
        if why == _MAIN_REASONS.index("more of its cited keys have an entry in the source"):
            reason += f" ({covered[ranked[0]]} against {covered[ranked[1]]})"
        notes.append(f"main file {ranked[0].relative_to(folder)} of {len(mains)} documents "
                     f"(next: {ranked[1].relative_to(folder)}): {reason}")
    return ranked[0]


def _resolve_input(name: str, base: Path, root: Path, main_dir: Path | None = None,
                   search: tuple[Path, ...] = ()) -> Path | None:
    """The file an ``\\input{name}`` means (with or without ``.tex``), searched beside the including file, in the
    main file's folder (where TeX runs, so a nested ``\\input`` names its file from there), in the folders of
    ``search`` (the document's ``\\input@path``) and at the root; None when absent or outside the source folder."""
    name = name.strip().strip('"')
    if not name or len(name) > 255 or any(c in name for c in "\n\\{}%$#"):  # an unbalanced brace, not a name
        return None
    for folder in dict.fromkeys((base, main_dir or base, *search, root)):
        for suffix in ("", ".tex"):
            try:
                path = pu.safe_path_under(root, os.path.relpath(folder / (name + suffix), root))
                if path.is_file():
                    return path
            except (ValueError, OSError):
                continue
    # a name whose letter case differs from the file's (``chapters/Introduction`` for ``chapters/introduction.tex``):
    # TeX finds it on the case-insensitive file systems of macOS and Windows, where the authors wrote it
    for folder in dict.fromkeys((base, main_dir or base, *search, root)):
        if path := _case_insensitive(folder, name, root):
            return path
    return None


def _case_insensitive(folder: Path, name: str, root: Path) -> Path | None:
    """The file under ``folder`` whose path is ``name`` (or ``name.tex``) but for letter case, or None; never
    outside ``root``."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    here = folder
    for i, part in enumerate(parts):
        wanted = {part.lower()} if i < len(parts) - 1 else {part.lower(), part.lower() + ".tex"}
        try:
            match = sorted(c for c in here.iterdir() if c.name.lower() in wanted
                           and (c.is_dir() if i < len(parts) - 1 else c.is_file()))
        except OSError:
            return None
        if not match:
            return None
        here = match[0]
    try:
        return pu.safe_path_under(root, os.path.relpath(here, root))
    except (ValueError, OSError):
        return None


def load_document(main: Path, root: Path, max_chars: int = 20_000_000, encoding: str | None = None,
                  missing: list[str] | None = None, sections: list[str] | None = None) -> str:
    """The main file with every ``\\input``-like command replaced by the file it names, recursively; files that are
    not UTF-8 are read in ``encoding`` (the document's declared one) where given. ``missing`` (where given) gets
    the names of the text files (no extension, or ``.tex``) that an ``\\input``-like command of the body names and
    the source lacks (a figure's ``.pdf_tex``/``.tikz`` is no text); ``sections`` those of them that are section
    files: named outside any environment (a figure's or a table's file stands in its float) by a file whose other
    files so named hold a sectioning command (``\\input{sections/results}`` beside ``\\input{sections/intro}``),
    or right after a heading (``\\section{Results}\\label{sec:results}\\input{results}``)."""
    cache: dict[Path, str] = {}
    root = Path(root).resolve()
    budget = {"chars": 0}

    def expand(path: Path, depth: int, stack: tuple, in_body: bool = False) -> str:
        text = _read_source(path, cache, encoding)
        budget["chars"] += len(text)
        if budget["chars"] > max_chars:
            raise LatexError(f"source too large after \\input expansion (over {max_chars} characters)")
        # a \subfile is a document of its own (its \documentclass says so): keep its body; a file that only holds
        # the main document's \begin{document} ... \end{document} is read whole
        if depth and "\\begin{document}" in text and _DOCCLASS.search(text):
            text = text.split("\\begin{document}", 1)[1].split("\\end{document}", 1)[0]
        out, pos = [], 0
        begin = _document_begin(text) if not depth else -1
        scan, envs, top_level = 0, 0, []  # (name, file or None) of the inputs outside any environment
        for m in _INPUT.finditer(text):
            if m.start() < pos:
                continue
            body_here = in_body or 0 <= begin < m.start()
            for t in _ENV_TOKEN.finditer(text, scan, m.start()):
                if t.group(2).strip() != "document":
                    envs += 1 if t.group(1) == "begin" else -1
            scan = m.start()
            cmd, i = m.group(1), m.end()
            folder = path.parent
            if cmd in ("import", "subimport", "includefrom", "subincludefrom"):
                g1 = read_group(text, i)
                if g1 is None:
                    continue
                sub, i = g1
                folder = (path.parent if cmd.startswith("sub") else root) / sub.strip()
            g = read_group(text, i)
            if g is not None:
                name, end = g
            else:
                bare = re.match(r"\s+([^\s{}\\]+)", text[i:i + 300])
                if not bare or cmd != "input":
                    continue
                name, end = bare.group(1), i + bare.end()
            if cmd == "InputIfFileExists":  # \InputIfFileExists{file}{then}{else}: both branches dropped
                for _ in range(2):
                    g = read_group(text, end)
                    if g is not None:
                        end = g[1]
            target = _resolve_input(name, folder, root, main_dir, search)
            out.append(text[pos:m.start()])
            if target is not None and target not in stack and depth < 12:
                out.append("\n" + expand(target, depth + 1, stack + (target,), body_here) + "\n")
            elif target is None and body_here and missing is not None and cmd != "InputIfFileExists" \
                    and Path(name.strip()).suffix.lower() in ("", ".tex") and name.strip():
                missing.append(name.strip())
            if body_here and envs <= 0 and cmd != "InputIfFileExists":
                top_level.append((name.strip(), target))
                if target is None and missing is not None and sections is not None and name.strip() in missing \
                        and _HEADED.search(text, max(0, m.start() - 300), m.start()):
                    sections.append(name.strip())  # "\section{Results}\label{sec:results}\input{results}"
            pos = end
        out.append(text[pos:])
        if sections is not None and any(t is not None and _SECTIONING.search(_read_source(t, cache, encoding))
                                        for _, t in top_level):
            sections.extend(n for n, t in top_level if t is None and n in (missing or ()) and n not in sections)
        return "".join(out)

    main_dir = Path(main).resolve().parent
    search = input_path(_read_source(Path(main).resolve(), cache, encoding), main_dir)
    return expand(Path(main).resolve(), 0, (Path(main).resolve(),))


# LaTeX's own search path for \input (``\makeatletter \def\input@path{{sections/}{tables/}}``): TeX finds
# ``\input{Intro}`` in ``sections/``, so a source written so names its files by their bare names
_INPUT_PATH = re.compile(r"\\(?:[egx]?def|(?:re)?newcommand\*?)\s*\{?\s*\\input@path\s*\}?\s*\{((?:\s*\{[^{}]*\})+)\s*\}")


def input_path(text: str, main_dir: Path) -> tuple[Path, ...]:
    """The folders a document's ``\\input@path`` names (relative to the main file's folder, where TeX runs)."""
    text = re.sub(r"(?<!\\)%[^\n]*", "", text)
    return tuple(dict.fromkeys(main_dir / d.strip() for m in _INPUT_PATH.finditer(text)
                               for d in re.findall(r"\{([^{}]*)\}", m.group(1)) if d.strip()))


_ENV_TOKEN = re.compile(r"\\(begin|end)\s*\{([^{}]*)\}")
_SECTIONING = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection)\*?\s*[\[{]")
# a sectioning command whose heading the input right after it fills (only a label between)
_HEADED = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection)\*?\s*(?:\[[^\]]*\])?\s*\{(?:[^{}]|\{[^{}]*\})*\}"
                     r"\s*(?:\\label\s*\{[^{}]*\}\s*)*$")


# environments whose text LaTeX does not read as commands: a "\\begin{document}" or "\\end{document}" inside one (a
# LaTeX template shown in a listing, a file written out by filecontents) neither starts nor ends the document
_VERBATIM_BEGIN = re.compile(r"\\begin\s*\{(verbatim\*?|lstlisting|minted|Verbatim\*?|BVerbatim|LVerbatim|spverbatim|"
                             r"comment|filecontents\*?)\}")


def _outside_verbatim(text: str, marker: str) -> int:
    """Where ``marker`` first stands in ``text`` outside a verbatim-like environment (-1: nowhere)."""
    pos = 0
    while True:
        at = text.find(marker, pos)
        if at < 0:
            return -1
        env = _VERBATIM_BEGIN.search(text, pos, at)
        if env is None:
            return at
        close = text.find("\\end{" + env.group(1) + "}", env.end())
        if close < 0:
            return -1
        pos = close + len(env.group(1)) + 6


def _document_begin(text: str) -> int:
    return _outside_verbatim(text, "\\begin{document}")


@dataclass
class Macro:
    nargs: int
    default: str | None
    body: str
    delimiter: str = ""  # \def\mdpl2{MDPL2}: the characters that must follow the name (TeX's parameter text)


_DEFINER = re.compile(r"\\(?:(?:re)?newcommand|providecommand|DeclareRobustCommand|(?:re)?newrobustcmd|"
                      r"(?:long\s*\\)?[gex]?def|let|newenvironment|renewenvironment|DeclareMathOperator|"
                      r"newtheorem|newif)(?![A-Za-z@])\*?")
# names the converter understands better than any redefinition (a class's \section is still a section)
_NEVER_EXPAND = {"begin", "end", "item", "section", "subsection", "subsubsection", "paragraph", "chapter",
                 "part", "caption", "footnote", "bibitem", "input", "include"}


def collect_macros(text: str) -> tuple[dict[str, Macro], list[tuple[int, int]]]:
    """User macros defined anywhere in ``text`` and the spans of their definitions (to drop from the body)."""
    macros: dict[str, Macro] = {}
    spans: list[tuple[int, int]] = []
    for m in _DEFINER.finditer(text):
        if spans and m.start() < spans[-1][1]:
            continue
        kind = m.group(0).lstrip("\\").rstrip("*")
        i = m.end()
        if kind in ("newenvironment", "renewenvironment"):
            parsed = read_group(text, i)
            if parsed is None:
                continue
            i = parsed[1]
            for _ in range(2):
                opt = read_optional(text, i)
                if opt is not None:
                    i = opt[1]
            for _ in range(2):
                g = read_group(text, i)
                if g is not None:
                    i = g[1]
            spans.append((m.start(), i))
            continue
        if kind in ("DeclareMathOperator", "newtheorem", "newif"):
            end = i
            for _ in range(3):
                g = read_arg(text, end)
                if g is None:
                    break
                end = g[1]
                opt = read_optional(text, end)
                if opt is not None:
                    end = opt[1]
                if kind == "newif":
                    break
            spans.append((m.start(), end))
            continue
        name_arg = read_arg(text, i)
        if name_arg is None:
            continue
        name, i = name_arg
        name = name.strip()
        if not name.startswith("\\"):
            continue
        name = name[1:]
        if kind == "let":
            target = re.match(r"\s*=?\s*(\\(?:[A-Za-z@]+|.)|.)", text[i:i + 80], re.S)
            if not target:
                continue
            spans.append((m.start(), i + target.end()))
            if name not in _NEVER_EXPAND and target.group(1) != "\\" + name:
                macros[name] = Macro(0, None, target.group(1))
            continue
        nargs, default = 0, None
        if kind.endswith("def"):
            params = re.match(r"((?:#\d)*)\s*(?=\{)", text[i:i + 40])
            literal = re.match(r"([^#{}\\\s%]{1,8})(?=\{)", text[i:i + 40])
            if params is None and literal is not None:
                # "\def\mdpl2{\texttt{MDPL2}}": a name with a digit, written as \mdpl followed by the characters
                # "2", which TeX reads as the macro's parameter text: "\mdpl2{}" prints MDPL2
                body = read_group(text, i + literal.end())
                if body is not None:
                    spans.append((m.start(), body[1]))
                    if name not in _NEVER_EXPAND:
                        macros[name] = Macro(0, None, body[0], literal.group(1))
                    continue
            if params is None:  # delimited parameters (\def\a#1.{}): not a text macro; drop the definition
                g = read_group(text, text.find("{", i)) if "{" in text[i:i + 200] else None
                spans.append((m.start(), g[1] if g else i))
                continue
            nargs = params.group(1).count("#")
            i += params.end()
        else:
            opt = read_optional(text, i)
            if opt is not None and opt[0].strip().isdigit():
                nargs, i = int(opt[0].strip()), opt[1]
                opt = read_optional(text, i)
                if opt is not None:
                    default, i = opt
        body = read_group(text, i)
        if body is None:
            continue
        spans.append((m.start(), body[1]))
        if name in _NEVER_EXPAND or (kind == "providecommand" and name in macros):
            continue
        macros[name] = Macro(min(nargs, 9), default, body[0])
    return macros, spans


_PARAM = re.compile(r"##|#([1-9])")


_USEPACKAGE = re.compile(r"\\(?:usepackage|RequirePackage)\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}")


def local_package_macros(preamble: str, main: Path, root: Path, encoding: str | None = None,
                         max_bytes: int = 500_000) -> dict[str, Macro]:
    """The macros of the authors' own packages shipped with the source (``\\usepackage{mymacros}`` with
    ``mymacros.sty`` beside the main file), followed through their ``\\RequirePackage``. Only what an author
    defines for the text is taken: not a citation command, no ``@`` internals in the name or the body (a journal's
    style shipped along redefines ``\\maketitle`` and friends with those), so TeX's own packages shipped as files
    change nothing; the document's own definitions win."""
    macros: dict[str, Macro] = {}
    seen: set[Path] = set()
    queue = [preamble]
    while queue and len(seen) < 50:
        for m in _USEPACKAGE.finditer(queue.pop(0)):
            for name in m.group(1).split(","):
                path = _resolve_input(name.strip() + ".sty", main.parent, root, main.parent) if name.strip() else None
                if path is None or path in seen or path.stat().st_size > max_bytes:
                    continue
                seen.add(path)
                text = _read_source(path, {}, encoding)
                queue.append(text)
                for key, macro in collect_macros(text)[0].items():
                    if key not in macros and "@" not in key and "@" not in macro.body and \
                            not (CITE_RE.fullmatch(key) and key not in _NOT_CITES):
                        macros[key] = macro
    return macros


# TeX programming in a macro's body: string and number tests, control-sequence names built at run time, @ internals
# (a table of generated values: \newcommand\macros[1][all]{\ifnum\pdfstrcmp{#1}{all}=0 ... \fi}). What such a
# macro prints is computed by TeX; pasting its program into the text prints the whole table at every use.
_PROGRAM = re.compile(r"\\(?:pdfstrcmp|strcmp|csname|expandafter|ifnum|ifdim|ifcase|ifcsname|ifdefined|IfStrEq\w*|"
                      r"IfEqCase|str_if_eq\w*|@if[A-Za-z]+|[A-Za-z]+@[A-Za-z@]*)(?![A-Za-z])")


_IFTHENELSE = re.compile(r"\\ifthenelse(?![A-Za-z@])")


def _ifthen_test(test: str) -> bool | None:
    """The value of an ``ifthen`` test that compares text: ``\\equal{a}{b}``, ``\\isempty{a}`` (xifthen), either
    under ``\\not``; None for any other test (a boolean, a number), which only TeX can decide."""
    test = test.strip()
    negate = test.startswith("\\not") and not test[4:5].isalpha()
    if negate:
        test = test[4:].strip()
    m = re.match(r"\\(equal|isempty)(?![A-Za-z@])", test)
    if m is None:
        return None
    a = read_group(test, m.end())
    b = read_group(test, a[1]) if a is not None and m.group(1) == "equal" else None
    if a is None or (m.group(1) == "equal" and b is None) or test[(b or a)[1]:].strip():
        return None
    if m.group(1) == "isempty":
        value = not a[0].strip()
    elif "\\" in a[0] + b[0] and bool(a[0].strip()) == bool(b[0].strip()):
        return None  # two texts with macros in them: equal only once TeX has expanded them
    else:
        value = a[0].strip() == b[0].strip()
    return value != negate


def resolve_ifthenelse(text: str) -> str:
    """``\\ifthenelse{\\equal{#3}{}}{.}{ #3}`` in a macro's body, its arguments filled in: the branch the test
    chooses, as TeX prints it (a macro \\lithead{key}{text} whose text is not empty prints it once, not its test,
    both branches and all). A test only TeX can decide is left as it is."""
    out, pos = [], 0
    for m in _IFTHENELSE.finditer(text):
        if m.start() < pos:
            continue
        test = read_group(text, m.end())
        yes = read_group(text, test[1]) if test else None
        no = read_group(text, yes[1]) if yes else None
        value = _ifthen_test(test[0]) if no else None
        if value is None:
            continue
        out.append(text[pos:m.start()])
        out.append(resolve_ifthenelse(yes[0] if value else no[0]))
        pos = no[1]
    out.append(text[pos:])
    return "".join(out)


def expand_macros(text: str, macros: dict[str, Macro], limit: int, notes: list[str] | None = None) -> str:
    """``text`` with every use of a user macro replaced by its body (arguments substituted), recursively. A macro
    that computes what it prints (``_PROGRAM``) prints nothing: its arguments, and the ``[key]`` groups right after
    it that its internals read, are consumed. Past ``limit`` characters of expansion (a recursive macro) the rest
    of the text is left unexpanded and ``notes`` says so, rather than losing the paper."""
    if not macros:
        return text
    pattern = re.compile(r"\\(" + "|".join(re.escape(n) for n in sorted(macros, key=len, reverse=True)) +
                         r")(?![A-Za-z@])")
    budget = {"chars": 0, "over": False}
    programs = {name for name, macro in macros.items() if _PROGRAM.search(macro.body)}

    def run(src: str, depth: int) -> str:
        out, pos = [], 0
        for m in pattern.finditer(src):
            if m.start() < pos:
                continue
            name = m.group(1)
            macro = macros[name]
            i, args = m.end(), []
            if macro.delimiter:
                if not src.startswith(macro.delimiter, i):
                    continue  # TeX stops with "Use of \mdpl doesn't match its definition": left as it is
                i += len(macro.delimiter)
            if macro.default is not None:
                opt = read_optional(src, i)
                if opt is not None:
                    args.append(opt[0])
                    i = opt[1]
                else:
                    args.append(macro.default)
            ok = True
            while len(args) < macro.nargs:
                a = read_arg(src, i)
                if a is None:
                    ok = False
                    break
                args.append(a[0])
                i = a[1]
            if not ok:
                continue
            if name in programs:
                while (opt := re.match(r"\[[^\[\]{}]*\]", src[i:i + 200])) is not None:
                    i += opt.end()
                out.append(src[pos:m.start()] + "{}")  # an empty group: "$\macros[x]$" must not become "$$"
                pos = i
                continue
            body = _PARAM.sub(lambda p: "#" if p.group(0) == "##" else
                              (args[int(p.group(1)) - 1] if int(p.group(1)) <= len(args) else ""), macro.body)
            if "\\ifthenelse" in body:
                body = resolve_ifthenelse(body)
            budget["chars"] += len(body)
            if budget["chars"] > limit:
                if not budget["over"] and notes is not None:
                    notes.append(f"user macros expand to more than {limit} characters (a recursive macro?): "
                                 f"the rest left unexpanded from \\{name}")
                budget["over"] = True
                break
            out.append(src[pos:m.start()])
            # a control word followed by a letter must stay separated from it ("\foo bar" -> "\textbf{x} bar")
            out.append(run(body, depth + 1) if depth < 16 else body)
            pos = i
        out.append(src[pos:])
        return "".join(out)

    return run(text, 0)


# ---------------------------------------------------------------------------
# Symbols and accents (pylatexenc's tables)
# ---------------------------------------------------------------------------

@lru_cache(maxsize=1)
def symbol_table() -> dict[str, str]:
    """Argument-less macros that stand for a character (``\\ss`` -> ß, ``\\alpha`` -> α), from pylatexenc."""
    from pylatexenc.latex2text import get_default_latex_context_db

    table = {}
    for spec in get_default_latex_context_db().iter_macro_specs():
        repl = getattr(spec, "simplify_repl", None)
        args = getattr(spec, "arguments_spec_list", None) or getattr(spec, "args_parser", None)
        if isinstance(repl, str) and "%" not in repl and len(repl) <= 3 and not getattr(args, "argspec", ""):
            table[spec.macroname] = repl
    table.update({"LaTeX": "LaTeX", "TeX": "TeX", "BibTeX": "BibTeX", "i": "i", "j": "j", "textbackslash": "\\",
                  "ldots": "…", "dots": "…", "textellipsis": "…", "&": "&", "%": "%", "_": "_", "#": "#", "$": "$",
                  "{": "{", "}": "}", "copyright": "©", "textregistered": "®", "texttrademark": "™", "S": "§",
                  "P": "¶", "textasciitilde": "~", "textdegree": "°", "textasciicircum": "^", "textbar": "|",
                  "textless": "<", "textgreater": ">", "textquotedbl": '"', "slash": "/", "lq": "‘", "rq": "’",
                  # biblatex's punctuation in a biber .bbl
                  "bibrangedash": "–", "bibnamedelima": " ", "bibnamedelimb": " ", "bibnamedelimc": " ",
                  "bibnamedelimd": " ", "bibnamedelimi": " "})
    for name, journal in JOURNAL_MACROS.items():
        table.setdefault(name, journal)
    return table


# The journal names that the AAS, MNRAS and A&A classes define (what ADS writes into every .bib it exports:
# journal = {\apj}); a .bib read without them loses the venue of most of an astronomy paper's references.
JOURNAL_MACROS = {
    "aj": "AJ", "actaa": "Acta Astron.", "araa": "ARA&A", "apj": "ApJ", "apjl": "ApJL", "apjs": "ApJS",
    "ao": "Appl. Opt.", "apss": "Ap&SS", "aap": "A&A", "aapr": "A&A Rev.", "aaps": "A&AS", "azh": "AZh",
    "baas": "BAAS", "caa": "Chinese Astron. Astrophys.", "cjaa": "Chinese J. Astron. Astrophys.",
    "icarus": "Icarus", "jcap": "JCAP", "jrasc": "JRASC", "memras": "MmRAS", "mnras": "MNRAS", "na": "New A",
    "nar": "New A Rev.", "pra": "Phys. Rev. A", "prb": "Phys. Rev. B", "prc": "Phys. Rev. C", "prd": "Phys. Rev. D",
    "pre": "Phys. Rev. E", "prl": "Phys. Rev. Lett.", "pasa": "PASA", "pasp": "PASP", "pasj": "PASJ",
    "rmxaa": "RMxAA", "qjras": "QJRAS", "skytel": "S&T", "solphys": "Sol. Phys.", "sovast": "Soviet Ast.",
    "ssr": "Space Sci. Rev.", "zap": "ZA", "nat": "Nature", "iaucirc": "IAU Circ.", "aplett": "Astrophys. Lett.",
    "apspr": "Astrophys. Space Phys. Res.", "bain": "BAN", "fcp": "Fund. Cosmic Phys.", "gca": "Geochim. Cosmochim. Acta",
    "grl": "Geophys. Res. Lett.", "jcp": "J. Chem. Phys.", "jgr": "J. Geophys. Res.", "jqsrt": "JQSRT",
    "memsai": "Mem. Soc. Astron. Italiana", "nphysa": "Nucl. Phys. A", "physrep": "Phys. Rep.",
    "physscr": "Phys. Scr.", "planss": "Planet. Space Sci.", "procspie": "Proc. SPIE", "psj": "PSJ",
    "maps": "Meteorit. Planet. Sci.", "aplr": "Astron. Lett.", "jgra": "J. Geophys. Res. Space Phys.",
}


ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304", ".": "\u0307",
           "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "d": "\u0323", "b": "\u0331",
           "r": "\u030a", "k": "\u0328", "t": "\u0361"}


# ---------------------------------------------------------------------------
# The converter
# ---------------------------------------------------------------------------

CITE_RE = re.compile(r"(?:[Cc]ite[a-zA-Z]*|[Pp]arencites?|[Tt]extcites?|[Aa]utocites?|[Ff]ootcite(?:text)?s?|"
                     r"[Ss]martcites?|[Ss]upercites?|onlinecite|citenum|[Cc]itealp|[Cc]itealt|fullcite|footfullcite)")
_NOT_CITES = {"citestyle", "citeform", "citename", "citenamefont", "citepunct", "citeleft", "citeright",
              "citedash", "citeindextrue", "citeindexfalse", "citesetup", "citenumfont", "citeurl"}
SECTIONS = {"part": 0, "chapter": 0, "section": 1, "subsection": 2, "subsubsection": 3}
# environments whose content is not running text (a caption inside is kept apart)
FLOATS = {"figure", "figure*", "table", "table*", "wrapfigure", "wraptable", "sidewaysfigure", "sidewaystable",
          "subfigure", "SCfigure", "algorithm", "algorithm*", "listing", "longtable", "longtable*", "supertabular",
          "sidewaysfigure*", "sidewaystable*", "margintable", "marginfigure", "floatrow",
          "deluxetable", "deluxetable*", "splitdeluxetable", "splitdeluxetable*"}  # AAS tables
SKIPPED_ENVS = {"tabular", "tabular*", "tabularx", "tabulary", "array", "verbatim", "verbatim*", "lstlisting",
                "minted", "comment", "tikzpicture", "picture", "pspicture", "algorithmic", "filecontents",
                "filecontents*", "titlepage", "abstract", "keywords", "keyword", "IEEEkeywords", "frontmatter",
                "acknowledgments*", "CCSXML", "thebibliography", "CSLReferences", "axis", "forest", "tcolorbox*",
                "Verbatim", "alltt", "code", "spverbatim", "appendices*", "dedication"}
# environments LaTeX reads verbatim, to the first \end{...} of their own name (no nesting)
VERBATIM_ENVS = {"verbatim", "verbatim*", "lstlisting", "minted", "Verbatim", "Verbatim*", "BVerbatim", "LVerbatim",
                 "spverbatim", "comment", "filecontents", "filecontents*"}
MATH_ENVS = {"equation", "equation*", "align", "align*", "alignat", "alignat*", "gather", "gather*", "multline",
             "multline*", "eqnarray", "eqnarray*", "displaymath", "math", "flalign", "flalign*", "dmath", "dmath*",
             "split", "subequations*", "IEEEeqnarray", "IEEEeqnarray*", "cases", "empheq"}
LISTS = {"itemize", "enumerate", "description", "compactitem", "compactenum", "inparaenum", "enumerate*",
         "itemize*", "description*", "inparaitem", "inparadesc", "list", "asparaenum", "asparaitem", "tasks"}
# AASTeX's lists after the acknowledgements, printed as a paragraph under this label
AAS_LISTS = {"software": "Software", "facilities": "Facilities", "facility": "Facility"}
# lists set inside their paragraph (paralist), and enumitem's starred lists where it is loaded with [inline]
INLINE_LISTS = {"inparaenum", "inparaitem", "inparadesc"}
_ENUMITEM_INLINE = re.compile(r"\\usepackage\s*\[[^\]]*\binline\b[^\]]*\]\s*\{[^}]*\benumitem\b")
_OWN_WORDS = re.compile(r"[^\W\d_]{3,}")
_LEAD_IN_END = re.compile(r"(?<=[.!?])\s+")
# macros whose arguments are not text: dropped with them (number of mandatory args, optional first?)
DROP_ARGS = {
    "label": 1, "vspace": 1, "vspace*": 1, "hspace": 1, "hspace*": 1, "includegraphics": 1, "bibliography": 1,
    "bibliographystyle": 1, "addbibresource": 1, "nocite": 1, "setlength": 2, "addtolength": 2, "setcounter": 2,
    "addtocounter": 2, "newcounter": 1, "thanks": 1, "title": 1, "author": 1, "date": 1, "affiliation": 1,
    "affil": 1, "address": 1, "email": 1, "institute": 1, "keywords": 1, "pacs": 1, "orcid": 1, "titlerunning": 1,
    "authorrunning": 1, "maketitle": 0, "tableofcontents": 0, "printbibliography": 0, "usepackage": 1,
    "RequirePackage": 1, "pagestyle": 1, "thispagestyle": 1, "color": 1, "hypersetup": 1, "graphicspath": 1,
    "phantom": 1, "hphantom": 1, "vphantom": 1, "index": 1, "glossary": 1, "bibinfo": 1, "hypertarget": 1,
    "linenumbers": 0, "newpage": 0, "clearpage": 0, "cleardoublepage": 0, "pagebreak": 0, "noindent": 0,
    "centering": 0, "raggedright": 0, "raggedleft": 0, "smallskip": 0, "medskip": 0, "bigskip": 0, "vfill": 0,
    "hfill": 0, "appendix": 0, "newline": 0, "linebreak": 0, "nolinebreak": 0, "nopagebreak": 0, "protect": 0,
    "fontsize": 2, "selectfont": 0, "restoregeometry": 0, "newgeometry": 1, "todo": 1, "marginpar": 1,
    "markboth": 2, "markright": 1, "shorttitle": 1, "shortauthors": 1, "received": 1, "accepted": 1,
    "published": 1, "doi": 1, "acmConference": 1, "acmBooktitle": 1, "acmPrice": 1, "acmISBN": 1, "acmDOI": 1,
    "ccsdesc": 1, "settopmatter": 1, "copyrightyear": 1, "acmYear": 1, "setcopyright": 1, "IEEEoverridecommandlockouts": 0,
    "IEEEpeerreviewmaketitle": 0, "correspondingauthor": 1, "corref": 1, "cortext": 1, "tnotetext": 1,
    "fntext": 1, "ead": 1, "runningtitle": 1, "runningauthor": 1, "addcontentsline": 3, "numberwithin": 2,
    "captionsetup": 1, "lstset": 1, "definecolor": 3, "setminted": 1, "AtBeginDocument": 1, "bibpunct": 1,
    "pdfbookmark": 2, "belowpdfbookmark": 2, "textcolor": 1, "mintinline": 1, "colorbox": 1, "fcolorbox": 2, "foreignlanguage": 1,
    "selectlanguage": 1, "resizebox": 2, "scalebox": 1, "rotatebox": 1, "raisebox": 1, "makebox": 0,
    "renewcommand": 0, "affiliations": 1, "orcidlink": 1, "acknowledgments": 0, "bibitem": 0,
    "BibitemShut": 1, "BibitemOpen": 0, "bibAnnoteFile": 1, "bibAnnote": 2, "urlprefix": 0, "doibase": 0,
    "relax": 0, "rowcolor": 1, "cellcolor": 1, "columncolor": 1, "rowcolors": 3, "arrayrulecolor": 1,
    "defcitealias": 2, "bibinitperiod": 0, "bibinitdelim": 0, "xspace": 0, "unskip": 0, "ignorespaces": 0,
    # biblatex's hooks and counters set how the next citation or list prints ("\AtNextCite{\defcounter{maxnames}{99}}
    # \fullcite{key}" in a thesis's list of publications): settings, never text
    "AtNextCite": 1, "AtEveryCite": 1, "AtNextCitekey": 1, "AtEveryCitekey": 1, "AtNextBibliography": 1,
    "AtBeginBibliography": 1, "AtEveryBibitem": 1, "AtEveryLositem": 1, "defcounter": 2, "ExecuteBibliographyOptions": 1,
    # a counter stepped in an author's macro ("\stepcounter{todocounter}\done[#1]{...}") and a table cell's span and
    # width ("\multirow{3}{*}{\parbox{3.4cm}{\citet{x}}}"): the counter's name and the sizes are not text
    "stepcounter": 1, "refstepcounter": 1, "multirow": 2, "multicolumn": 2, "parbox": 1,
}
# primitives followed by a number or a dimension, not by text ("12:\penalty0 1--10")
_DIMENSION = re.compile(r"\s*=?\s*-?[\d.]+\s*(?:[a-z]{2}\b)?(?:\s*(?:plus|minus)\s*-?[\d.]+\s*(?:fil+|[a-z]{2}))*")
DIMENSION_MACROS = {"penalty", "hskip", "vskip", "kern", "mkern", "hspace", "vspace", "linebreak", "nolinebreak"}
REF_MACROS = {"ref", "eqref", "autoref", "cref", "Cref", "pageref", "vref", "Vref", "nameref", "autopageref",
              "crefrange", "Crefrange", "cpageref", "labelcref", "subref", "Autoref", "hyperref"}
THEOREMS = {"theorem", "lemma", "proof", "definition", "remark", "corollary", "proposition", "example",
            "conjecture", "claim", "assumption", "problem", "question", "observation", "note", "fact", "thm",
            "lem", "prop", "cor", "defn", "rem"}
# what a theorem-like environment prints before its number, where \newtheorem does not say
THEOREM_NAMES = {"thm": "Theorem", "lem": "Lemma", "prop": "Proposition", "cor": "Corollary", "defn": "Definition",
                 "rem": "Remark"}
_TAB_COMMAND = re.compile(r"\\[=><+\-'`]")
_KILL_LINE = re.compile(r"[^\n]*\\kill\b")
# \newtheorem{thm}{Theorem}[section], \newtheorem{lemma}[thm]{Lemma}, \newtheorem*{claim*}{Claim}, llncs' \spnewtheorem
_NEWTHEOREM = re.compile(r"\\(?:sp)?newtheorem\*?\s*\{([^{}]+)\}\s*(?:\[[^\]]*\]\s*)?\{([^{}]+)\}")
PARA_ENVS = THEOREMS | {"quote", "quotation", "center", "flushleft", "flushright", "minipage", "verse", "abstract*",
                        "boxedminipage", "framed", "mdframed", "tcolorbox", "adjustbox", "multicols", "spacing"}
# a table cell that holds only citations (the row above names what they cite)
# a float's captions besides \\caption: AAS's \\tablecaption and \\tablecomments, A&A's \\tablefoot and \\tablebib
_TABLE_NOTES = r"tablecaption|tablecomments|tablebib|tablefoot"
_CITE_COMMAND = re.compile(r"\\(?:" + CITE_RE.pattern + r")\*?(?![A-Za-z@])\s*[\[{]")
_THEOREM_SOURCE = re.compile(r"\s*(?:\\label\s*\{[^{}]*\}\s*)*(?=\{)")
# a table cell that names something: a word of two letters or more, alone or with digits ("6dF", "DEEP2", "VVDS")
_ROW_NAME = re.compile(r"[^\W\d_]{2,}")
_CITE_ONLY = re.compile(r"(?:\s*\\[A-Za-z]*cite[a-zA-Z]*\*?\s*(?:\[[^\]]*\]\s*)*\{[^{}]*\}\s*[,;]?)+")
# \begin{tabular}{p{3cm}l} (with its column spec) or \end{tabular}: not part of the first or last row
_TABLE_HEAD = re.compile(r"\\(?:begin\s*\{(?:tabular|tabularx|tabulary|longtable|supertabular)\*?\}"
                         r"(?:\s*\[[^\]]*\])?(?:\s*\{(?:[^{}]|\{[^{}]*\})*\}){0,2}|end\s*\{(?:tabular|tabularx|tabulary|longtable|"
                         r"supertabular)\*?\})")
TABLES = {"tabular", "tabular*", "tabularx", "tabulary", "longtable", "longtable*", "supertabular"}
# what splits a table into rows: a row end (\\, algorithm2e's \;), a cell end, braces, a tabular inside a cell
_ROW_TOKEN = re.compile(r"\\\\(?:\[[^\]]*\])?|\\[{}&;]|[{}&]|\\(begin|end)\s*\{(?:tabular|tabularx|tabulary|"
                        r"longtable|supertabular)\*?\}")


_TABLE_BEGIN = re.compile(r"\\begin\s*\{(?:tabular|tabularx|tabulary|longtable|supertabular)\*?\}")
_BRACED_ROW_END = re.compile(r"\{[^{}]*\\\\[^{}]*\}")  # \makecell{a\\b}: a \\ inside a group
_ROW_END = re.compile(r"\\\\(?:\[[^\]]*\])?")
_ROW_END_SEMICOLON = re.compile(r"\\\\(?:\[[^\]]*\])?|\\;")


def table_rows(text: str, inside_table: bool, line_end_semicolon: bool = False) -> list[str]:
    r"""The rows of a table's source: split at the row ends of the table itself, not at those of a tabular nested
    in a cell (``\begin{tabular}[c]{@{}l@{}}Thermal\\ conductivity\end{tabular}``: one cell, printed on two
    lines) nor at a ``\\`` inside a braced argument (``\makecell{a\\b}``, ``\shortstack``, ``\parbox``); the
    nested table's rows and cells are words of its cell. ``inside_table``: the text is a tabular's body (else a
    float's, where the tabular opens further on)."""
    row_end = _ROW_END_SEMICOLON if line_end_semicolon else _ROW_END
    if len(_TABLE_BEGIN.findall(text)) <= (0 if inside_table else 1) and not _BRACED_ROW_END.search(text):
        return row_end.split(text)  # no table in a cell, no \\ in a group: every row end is the table's
    rows: list[str] = []
    out: list[str] = []
    pos, depth = 0, 0
    tables = [0] if inside_table else []  # the brace depth at which each open tabular began
    for m in _ROW_TOKEN.finditer(text):
        tok = m.group()
        if m.group(1) == "begin":
            tables.append(depth)
            continue
        if m.group(1) == "end":
            if tables:
                tables.pop()
            continue
        if tok == "{":
            depth += 1
            continue
        if tok == "}":
            depth = max(depth - 1, 0)
            continue
        nested = len(tables) > 1 or bool(tables) and depth > tables[-1]
        if tok == "&":
            if nested:
                out.append(text[pos:m.start()] + " ")
                pos = m.end()
            continue
        if tok.startswith("\\\\") or tok == "\\;" and line_end_semicolon:
            out.append(text[pos:m.start()])
            pos = m.end()
            if nested:
                out.append(" ")
            else:
                rows.append("".join(out))
                out = []
    out.append(text[pos:])
    rows.append("".join(out))
    return rows
ENV_ARGS = {"minipage": 1, "multicols": 1, "multicols*": 1, "adjustbox": 1, "spacing": 1, "boxedminipage": 1,
            "subfigure": 1, "wrapfigure": 2}


@dataclass
class Cite:
    """One citation command: its keys in order and what it prints around them."""

    command: str
    keys: list[str]
    pre: str = ""
    post: str = ""
    printed: str = ""  # the marker text the source gives (CSL output: \citeproc{key}{Lee, 2019}), else made here


# commands whose citation is a phrase of its own sentence ("Smith et al. (2020) show ..."), not a parenthetical
TEXTUAL_CITES = {"citet", "citet*", "Citet", "textcite", "Textcite", "textcites", "citeauthor", "Citeauthor",
                 "citealt", "citetalias"}


# words after a footnote's citation that make a clause: a lower-case word that is no locator or list joint, and two
# more words ("for a gentler exposition"; not "p. 52f.", "and references therein" is two, "for details" one)
_CLAUSE_AFTER_CITE = re.compile(r"[\s,;]*(?!(?:p|pp|ch|chap|sec|secs|fig|figs|eq|eqs|vol|no|f|ff|and|or)\b)[a-z]+"
                                r"(?:[\s,;:]+[^\W\d_]+){2,}")


def source_note(parts: list) -> bool:
    """True for a footnote that names its sentence's source: it opens with a parenthetical citation, after at most
    a short lead ("See", "Vgl.", "cf. also"), whatever locator follows ("p. 52f.: 2.4 Shannon's method"). A
    footnote that opens with a textual citation ("\\citet{x} found that ...") or goes on after its citation with a
    clause ("See also \\cite{x} for a gentler exposition.") is a sentence of its own."""
    lead = ""
    for n, part in enumerate(parts):
        if isinstance(part, Cite):
            rest = "".join(p for p in parts[n + 1:] if isinstance(p, str))
            return part.command not in TEXTUAL_CITES and len(re.findall(r"[^\W\d_]+", lead)) <= 2 \
                and not _CLAUSE_AFTER_CITE.match(rest)
        lead += part
        if len(lead.strip()) > 24:
            return False
    return False


@dataclass
class Block:
    """A section heading (``kind='sec'``), a paragraph (``'p'``) or a float's caption (``'fig'``); a table row that
    cites (``'row'``) and an abstract that cites (``'abstract'``) until ``keep_needed_rows`` decides."""

    kind: str
    parts: list = field(default_factory=list)
    title: str = ""
    level: int = 1
    named: bool = False  # a table row whose first cell names a thing and one other cell holds all its citations


_SPECIAL = re.compile(r"[\\{}$~\n`'&^_-]")
_MATH_SPACE = re.compile(r"\\[,;:! ]")
# a display formula that ends its sentence: a full stop last, before spacing, labels, line ends and the closing of
# an inner environment (``\,.``, ``. \label{eq:a}``, ``.\nonumber\\``, ``. \end{split}``); not a ``\right.``
# delimiter nor an ellipsis
_DISPLAY_FULL_STOP = re.compile(r"(?<![.\\])(?<!\\right)(?<!\\bigr)(?<!\\Bigr)(?<!\\biggr)(?<!\\Biggr)\.(?:\s|~|\\[,;:! ]|"
                                r"\\(?:q?quad|nonumber|notag)\b|\\(?:label|tag|hspace|vspace)\*?\s*\{[^{}]*\}|"
                                r"\\end\s*\{(?:split|aligned|gathered|array|cases)\}|\\\\|\})*$")
# a font command in math that prints its argument as letters ($\\mathtt{NumPy}$, $T_\\mathrm{eff}$ keeps "eff")
_MATH_FONT = re.compile(r"\\(?:mathrm|text|textrm|mathit|mathbf|mathcal|mathtt|mathsf|mathnormal|texttt|textsf|"
                        r"textit|textbf|textup|mbox|operatorname|rm|it|bf|tt|sf)\s*\{([^{}]*)\}")
_MATH_MACRO = re.compile(r"\\([A-Za-z]+)")
_MATH_DEGREE = re.compile(r"\^\{?\\?circ\}?|\^\{?∘\}?")
_MATH_SCRIPT = re.compile(r"([\^_])\{([\w+\-−]{1,8})\}")
_MATH_PLAIN = re.compile(r"[\w .,+\-−=<>/()%°×·±≤≥≈∼~|:*]*")
_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
_SPACES = re.compile(r"\s+")
_NEEDS_CONVERTER = re.compile(r"[\\$%&^_`'\n]")
_COMMAND = re.compile(r"\\(?:([A-Za-z@]+)(\*?)|(.))", re.S)
NEWBLOCK = "\ue000"  # marks \newblock in a bibliography entry (a private-use character: not whitespace)


class Converter:
    """One pass over LaTeX that produces blocks of text and Cite objects (see the module docstring)."""

    def __init__(self):
        self.blocks: list[Block] = []
        self.current: list = []
        self.footnotes: list[list] = []
        self.cited: list[str] = []
        self.nocite: list[str] = []
        self.bib_files: list[str] = []
        self.inline_bibliography: list[str] = []
        self.fields: dict[str, list[str]] = {}  # \bibinfo{field}{value} seen (revtex .bbl entries)
        self.emph: list[str] = []
        self.hrefs: list[str] = []
        self.theorem_names: dict[str, str] = {}  # env -> printed name, from the document's \newtheorem
        self.inline_lists: set[str] = INLINE_LISTS
        self.lists: list[tuple[bool, str]] = []  # the open lists: (set inline, the sentence that leads into it)
        self.item_lead = ""  # the lead-in of the list whose item is being read

    # -- output helpers -------------------------------------------------------
    def emit(self, text: str) -> None:
        if text:
            if self.current and isinstance(self.current[-1], str):
                self.current[-1] += text
            else:
                self.current.append(text)

    def end_paragraph(self) -> None:
        if any(isinstance(p, Cite) or (isinstance(p, str) and p.strip()) for p in self.current):
            parts = self.current
            if self.item_lead and any(isinstance(p, Cite) for p in parts) and \
                    len(_OWN_WORDS.findall(" ".join(p for p in parts if isinstance(p, str)))) < 4:
                # "Real-world datasets include:" + "\item Adult Census \cite{x}": an item that only names a thing
                # is a part of the sentence that leads into the list, which says what the thing is
                parts = [self.item_lead + " "] + parts
            self.blocks.append(Block("p", parts))
        self.current = []
        for note in self.footnotes:
            if any(isinstance(p, Cite) or (isinstance(p, str) and p.strip()) for p in note):
                self.blocks.append(Block("p", note))
        self.footnotes = []

    def lead_in(self) -> str:
        """The sentence that leads into a list, when it ends with a colon and cites nothing ("Real-world datasets
        include:"): the last sentence of this paragraph, or of the one before when this one is empty."""
        parts = self.current
        if not any(isinstance(p, str) and p.strip() for p in parts):
            parts = self.blocks[-1].parts if self.blocks and self.blocks[-1].kind == "p" else []
        tail = []
        for p in reversed(parts):
            if not isinstance(p, str):
                break
            tail.append(p)
        sentence = _LEAD_IN_END.split(squash("".join(reversed(tail))))[-1]
        return sentence if sentence.endswith(":") and 2 <= len(sentence.split()) <= 30 else ""

    def inline(self, latex: str) -> list:
        """Convert a fragment (a caption, a footnote, a title) to parts without touching this paragraph."""
        sub = Converter()
        sub.fields, sub.emph, sub.hrefs = self.fields, self.emph, self.hrefs
        sub.theorem_names, sub.inline_lists = self.theorem_names, self.inline_lists
        sub.run(latex)
        self.cited.extend(sub.cited)
        self.nocite.extend(sub.nocite)
        merged: list = []
        for block in sub.blocks:  # a paragraph break inside a fragment is just a space
            if block.kind == "p":
                merged.extend(block.parts + [" "])
        merged.extend(sub.current)
        self.footnotes.extend(sub.footnotes)
        return merged

    def emit_parts(self, parts: list) -> None:
        for part in parts:
            if isinstance(part, str):
                self.emit(part)
            else:
                self.current.append(part)

    def float_paragraph(self, parts: list) -> None:
        """A caption (or a table row that cites) is known text in a source: a paragraph of its own, placed after
        the paragraph it interrupts, like a footnote; captions that cite nothing stay apart as ``fig``."""
        if any(isinstance(p, Cite) for p in parts):
            self.footnotes.append(parts)
        else:
            self.blocks.append(Block("fig", parts))

    def text_of(self, latex: str) -> str:
        if not _NEEDS_CONVERTER.search(latex):  # most .bib values: plain words in protective braces
            return squash(latex.replace("{", "").replace("}", "").replace("~", " ")
                          .replace("---", "—").replace("--", "–"))
        return squash("".join(p if isinstance(p, str) else "" for p in self.inline(latex)))

    # -- the pass ---------------------------------------------------------------
    def run(self, s: str) -> None:
        i, n = 0, len(s)
        while i < n:
            m = _SPECIAL.search(s, i)
            if m is None:
                self.emit(s[i:])
                break
            if m.start() > i:
                self.emit(s[i:m.start()])
            i = m.start()
            c = s[i]
            if c == "\\":
                i = self.command(s, i)
            elif c in "{}":
                i += 1
            elif c == "$":
                i = self.math_dollar(s, i)
            elif c == "~":
                self.emit(" ")
                i += 1
            elif c == "\n":
                blank = _BLANK_LINE.match(s, i)
                if blank:
                    self.end_paragraph()
                    i = blank.end()
                else:
                    self.emit(" ")
                    i += 1
            elif c == "-":
                if s.startswith("---", i):
                    self.emit("—")
                    i += 3
                elif s.startswith("--", i):
                    self.emit("–")
                    i += 2
                else:
                    self.emit("-")
                    i += 1
            elif c == "`":
                if s.startswith("``", i):
                    self.emit("“")
                    i += 2
                else:
                    self.emit("‘")
                    i += 1
            elif c == "'":
                if s.startswith("''", i):
                    self.emit("”")
                    i += 2
                else:
                    self.emit("’")
                    i += 1
            elif c == "&":
                self.emit(" ")
                i += 1
            else:  # ^ or _ outside math: a sloppy source; keep the character
                self.emit(c)
                i += 1

    def math_dollar(self, s: str, i: int) -> int:
        display = s.startswith("$$", i)
        delim = "$$" if display else "$"
        j = i + len(delim)
        # math never runs past a paragraph end: TeX stops a "$" left open at the blank line ("Missing $
        # inserted"), so one unclosed "$" (a tabbing line's "\\=$", a typo) cannot swallow the rest of the paper
        blank = _BLANK_LINE.search(s, j)
        limit = blank.start() if blank else len(s)
        while True:
            k = s.find(delim, j, limit)
            if k < 0:
                self.emit_math(s[i + len(delim):limit], display)
                return limit
            if s[k - 1] != "\\":
                break
            j = k + 1
        self.emit_math(s[i + len(delim):k], display)
        return min(len(s), k + len(delim))

    def emit_math(self, math: str, display: bool) -> None:
        """Short plain math (``$n$``, ``$10$``, ``$\\alpha$``) becomes its text; anything else ``[formula]``."""
        plain = math.strip()
        if not display and len(plain) <= 24:
            simple = _MATH_SPACE.sub(" ", plain)
            simple = _MATH_FONT.sub(r"\1", simple)
            table = symbol_table()
            simple = _MATH_MACRO.sub(lambda m: table.get(m.group(1), m.group(0)), simple)
            simple = _MATH_DEGREE.sub("°", simple)
            # "kg/m$^3$", "$s^{-1}$", "$T_{ppt}$": a short script of a name or a number prints as written, "kg/m^3",
            # "s^-1", "T_ppt", as "$z_R$" prints "z_R"
            simple = _MATH_SCRIPT.sub(r"\1\2", simple)
            if _MATH_PLAIN.fullmatch(simple.replace("^", "")) and "\\" not in simple:
                self.emit(simple.replace("~", " "))
                return
        if display:  # "... are $$x = [8, 9] \\,.$$ The spatial ...": the full stop that ends the sentence stays
            self.emit(" [formula]. " if _DISPLAY_FULL_STOP.search(math) else " [formula] ")
        else:
            self.emit("[formula]")

    def command(self, s: str, i: int) -> int:
        m = _COMMAND.match(s, i)
        if m is None:
            return i + 1
        name, star, sym = m.group(1), m.group(2), m.group(3)
        j = m.end()
        if sym is not None:
            return self.symbol_command(s, sym, j)
        # "\foo bar": the space after a control word is not text
        if name in ACCENTS and len(name) == 1:
            return self.accent(s, name, j)
        if name == "citeauthoryear":  # a .bbl label (elsarticle-harv, agsm): {long}{short}{year} or {short}{year}
            args = []
            while len(args) < 3 and (g := read_group(s, j)) is not None:
                args.append(self.text_of(g[0]))
                j = g[1]
            if len(args) >= 2:
                self.emit(f"{args[-2]}({args[-1]})")
            return j
        if name in ("citeproc", "citeprocitem") and (g := read_group(s, j)) is not None and \
                (g2 := read_group(s, g[1])) is not None:
            # CSL output, the citation printed by citeproc and not by TeX: pandoc 3's "(\citeproc{ref-lee2019}{Lee,
            # 2019})" (its entry "\bibitem[\citeproctext]{ref-lee2019}" in the CSLReferences list) and org-mode's
            # "\citeprocitem{1}{1}" (its entry "\hypertarget{citeproc_bib_item_1}{1. ...}"): the marker is the text
            # given, for the key named
            prefix = "citeproc_bib_item_" if name == "citeprocitem" else ""
            keys = list(dict.fromkeys(prefix + k.strip() for k in g[0].split(",") if k.strip()))
            if keys:
                self.cited.extend(keys)
                self.current.append(Cite(name, keys, printed=self.text_of(g2[0])))
            return g2[1]
        if name == "hypertarget" and (g := read_group(s, j)) is not None and \
                g[0].strip().startswith("citeproc_bib_item_") and (g2 := read_group(s, g[1])) is not None:
            # org-mode's citeproc bibliography: one "\hypertarget{citeproc_bib_item_N}{N. Author, Title ...}" a
            # paragraph, the entries of a list citeproc printed (no thebibliography, no .bbl)
            self.end_paragraph()
            entry = re.sub(r"^[\s\[]*\d+[.\]]?\s+", "", g2[0])  # its number, printed before it
            self.inline_bibliography.append(f"\\bibitem{{{g[0].strip()}}} {entry}\n")
            return g2[1]
        if CITE_RE.fullmatch(name) and name not in _NOT_CITES:
            return self.cite(s, name + star, j)
        if name == "nocite":
            g = read_group(s, j)
            if g:
                self.nocite.extend(k.strip() for k in g[0].split(",") if k.strip())
                return g[1]
            return j
        if name in ("begin", "end"):
            return self.environment(s, name, j)
        if name in ("tikz", "pgfpathrectangle", "pgfusepath"):  # an inline drawing prints no text
            return self.skip_drawing(s, j)
        if name in SECTIONS or name in ("paragraph", "subparagraph"):
            return self.section(s, name, j)
        if name in ("footnote", "footnotetext", "tablefootnote"):
            opt = read_optional(s, j)
            if opt is not None:
                j = opt[1]
            g = read_group(s, j)
            if g is None:
                return j
            parts = self.inline(g[0])
            if name == "footnote" and source_note(parts):
                # a footnote that gives the sentence's source ("\footnote{\cite{x} p. 52f.}", "\footnote{See
                # \cite{x}.}") cites from that sentence, as \footcite does: its citations are the sentence's
                for part in parts:
                    if isinstance(part, Cite):
                        self.emit(" ")
                        self.current.append(part)
                return g[1]
            self.footnotes.append(parts)
            return g[1]
        if name == "item":
            if self.lists and self.lists[-1][0]:  # an inline list's item goes on in its paragraph
                self.emit(" ")
                opt = read_optional(s, j)
                if opt is not None:
                    self.emit(self.text_of(opt[0]) + " ")
                    return opt[1]
                return j
            self.end_paragraph()
            self.item_lead = self.lists[-1][1] if self.lists else ""
            opt = read_optional(s, j)
            if opt is not None:
                label = self.text_of(opt[0])
                if label:
                    self.emit(label + ": ")
                return opt[1]
            return j
        if name in ("par", "newpara"):
            self.end_paragraph()
            return j
        if name in AAS_LISTS and (g := read_group(s, j)) is not None:
            # AASTeX's \software{…} and \facilities{…} print a paragraph "Software: numpy (Harris et al., 2020), …":
            # without its label the list of names says nothing of what they are
            self.end_paragraph()
            self.emit(AAS_LISTS[name] + ": ")
            self.run(g[0])
            self.end_paragraph()
            return g[1]
        if name in ("bibliography", "addbibresource", "addglobalbib"):
            opt = read_optional(s, j)
            if opt is not None:
                j = opt[1]
            g = read_group(s, j)
            if g is not None:
                self.bib_files.extend(x.strip() for x in g[0].split(",") if x.strip())
                return g[1]
            return j
        if name in ("url", "nolinkurl", "path"):
            g = read_group(s, j)
            if g is not None:
                self.hrefs.append(g[0])
                self.emit(g[0])
                return g[1]
            return j
        if name == "href":
            g = read_group(s, j)
            if g is not None:
                self.hrefs.append(g[0])
                return g[1]
            return j
        if name in ("doi", "Eprint", "eprint", "arxiv", "arXiv"):
            g = read_group(s, j)
            if g is not None:
                self.hrefs.append(g[0])
                if name == "doi":
                    self.emit("doi:" + g[0])
                    return g[1]
                return g[1] if name == "Eprint" else self._emit_arg(g)
            return j
        if name in REF_MACROS:
            if name in ("crefrange", "Crefrange", "hyperref"):
                opt = read_optional(s, j)
                if opt is not None:
                    j = opt[1]
            g = read_group(s, j)
            if g is not None:
                j = g[1]
                if name in ("crefrange", "Crefrange"):
                    g2 = read_group(s, j)
                    j = g2[1] if g2 else j
            if name == "hyperref":
                return j  # \hyperref[label]{text}: the text follows as a group
            self.emit("[ref]")
            return j
        if name == "verb":
            if j < len(s):
                k = s.find(s[j], j + 1)
                if k > 0:
                    self.emit(s[j + 1:k])
                    return k + 1
            return j
        if name in ("caption", "captionof"):
            if j < len(s) and s[j] == "*":  # \caption*: a caption without its number
                j += 1
            if name == "captionof":
                g = read_group(s, j)
                j = g[1] if g else j
            opt = read_optional(s, j)
            if opt is not None:
                j = opt[1]
            g = read_group(s, j)
            if g is not None:
                self.float_paragraph(self.inline(g[0]))
                return g[1]
            return j
        if name == "bibinfo" or name == "bibfield":
            g1 = read_group(s, j)
            g2 = read_group(s, g1[1]) if g1 else None
            if g1 and g2:
                if name == "bibfield":  # a group of \bibinfo's: they record the fields
                    self.emit_parts(self.inline(g2[0]))
                    return g2[1]
                value = self.text_of(g2[0])
                self.fields.setdefault(g1[0].strip(), []).append(value)
                self.emit(value)
                return g2[1]
            return j
        if name in ("emph", "textit", "textsl"):
            g = read_group(s, j)
            if g is not None:
                parts = self.inline(g[0])
                self.emph.append(squash("".join(p for p in parts if isinstance(p, str))))
                self.emit_parts(parts)
                return g[1]
            return j
        if name == "newblock":
            self.emit(f" {NEWBLOCK} ")
            return j
        if name in ("[", "(", "]", ")"):
            return j
        if name in DIMENSION_MACROS and (dim := _DIMENSION.match(s, j)) and dim.end() > j:
            return dim.end()
        if name in DROP_ARGS:
            return self.drop_args(s, name, j)
        table = symbol_table()
        if name in table:
            self.emit(table[name])
            # a letter macro joins the word it is part of ("Sm\\o rgrav"); "\\ldots and" keeps its space
            return self._skip_space_after_word(s, j) if table[name].isalpha() else j
        if name in ("natexlab",):
            return j
        # unknown or formatting macro: its name goes, its arguments stay as text
        return self._skip_space_after_word(s, j)

    @staticmethod
    def skip_drawing(s: str, j: int) -> int:
        """After ``\\tikz``: its ``[options]`` and either one ``{...}`` group of paths or one path up to the ``;``
        that ends it (outside braces and brackets), as TikZ reads it."""
        opt = read_optional(s, j)
        j = opt[1] if opt is not None else j
        if (g := read_group(s, j)) is not None:
            return g[1]
        depth, k, n = 0, j, min(len(s), j + 4000)
        while k < n:
            c = s[k]
            if c == "\\":
                k += 2
                continue
            if c in "{[":
                depth += 1
            elif c in "}]":
                if depth == 0:  # the group the drawing sits in ends first: no path after all
                    return k
                depth -= 1
            elif c == ";" and depth == 0:
                return k + 1
            elif c == "\n" and s.startswith("\n", k + 1) and depth == 0:
                return k
            k += 1
        return j

    def _emit_arg(self, g: tuple[str, int]) -> int:
        self.emit(g[0])
        return g[1]

    @staticmethod
    def _skip_space_after_word(s: str, j: int) -> int:
        """TeX skips the spaces after a control word (``\\bf text``); a blank line still ends the paragraph."""
        k = j
        while k < len(s) and s[k] in " \t":
            k += 1
        if k < len(s) and s[k] == "\n" and not _BLANK_LINE.match(s, k):
            k += 1
        return k

    def symbol_command(self, s: str, sym: str, j: int) -> int:
        if sym in ACCENTS:
            return self.accent(s, sym, j)
        if sym == "[":
            end = s.find("\\]", j)
            end = len(s) if end < 0 else end
            self.emit_math(s[j:end], True)
            return min(len(s), end + 2)
        if sym == "(":
            end = s.find("\\)", j)
            end = len(s) if end < 0 else end
            self.emit_math(s[j:end], False)
            return min(len(s), end + 2)
        if sym == "\\":
            opt = read_optional(s, j)
            self.emit(" ")
            return opt[1] if opt is not None and re.fullmatch(r"\s*[\d.]+\s*\w*\s*", opt[0]) else j
        if sym in "%&_#${}":
            self.emit(sym)
        elif sym in " \n\t":
            self.emit(" ")
        elif sym == "/" or sym == "-" or sym == "@":
            pass
        elif sym in ",;:!>":
            self.emit(" " if sym != "!" else "")
        return j

    def accent(self, s: str, acc: str, j: int) -> int:
        arg = read_arg(s, j)
        if arg is None:
            return j
        base, end = arg
        base = base.strip()
        if base == "$":
            return j
        if base.startswith("\\"):
            base = symbol_table().get(base[1:], base[1:])
        base = base.strip("{}")
        if base in ("\\i", "i", "ı"):
            base = "i"
        if not base:
            return end
        self.emit(unicodedata.normalize("NFC", base[0] + ACCENTS[acc]) + base[1:])
        return end

    def drop_args(self, s: str, name: str, j: int) -> int:
        count = DROP_ARGS[name]
        opt = read_optional(s, j)
        if opt is not None and name not in ("maketitle",):
            j = opt[1]
        for _ in range(count):  # \textcolor{red}{text}: the colour goes, the text group that follows stays
            g = read_group(s, j)
            if g is None:
                break
            j = g[1]
        return j

    def section(self, s: str, name: str, j: int) -> int:
        if j < len(s) and s[j] == "*":
            j += 1
        opt = read_optional(s, j)
        if opt is not None:
            j = opt[1]
        g = read_group(s, j)
        self.end_paragraph()
        if name in ("paragraph", "subparagraph"):  # a run-in heading: a new paragraph that starts with it,
            # citations and all ("\paragraph{LIVE1 dataset \cite{x}} 29 grayscale images.")
            parts = self.inline(g[0]) if g else []
            while parts and isinstance(parts[-1], str) and not parts[-1].strip():
                parts.pop()
            if parts and isinstance(parts[-1], str):
                parts[-1] = parts[-1].rstrip().rstrip(".")
            if any(isinstance(p, Cite) or p.strip() for p in parts):
                self.emit_parts(parts)
                # a heading that cites goes on into its text, as TeX runs it in: what follows says what the
                # cited work is ("LIVE1 dataset [1]: 29 grayscale images.")
                self.emit(": " if any(isinstance(p, Cite) for p in parts) else ". ")
        elif g and _CITE_COMMAND.search(g[0]):
            parts = self.inline(g[0])
            self.blocks.append(Block("sec", title=squash("".join(p for p in parts if isinstance(p, str))),
                                     level=SECTIONS[name]))
            while parts and isinstance(parts[-1], str) and not parts[-1].strip():
                parts.pop()
            if parts and isinstance(parts[-1], str):
                parts[-1] = parts[-1].rstrip().rstrip(".")
            if any(isinstance(p, Cite) for p in parts):
                # a heading that cites names the work its section is about ("\subsection{PILCO by \citet{x}}"):
                # it leads the section's first paragraph, as a run-in heading does ("PILCO by [1]: PILCO is ...")
                self.emit_parts(parts)
                self.emit(": ")
        else:
            title = self.text_of(g[0]) if g else ""
            self.blocks.append(Block("sec", title=title, level=SECTIONS[name]))
        return g[1] if g else j

    def environment(self, s: str, kind: str, j: int) -> int:
        g = read_group(s, j)
        if g is None:
            return j
        env, j = g[0].strip(), g[1]
        if kind == "end":
            if env in LISTS:
                inline = self.lists.pop()[0] if self.lists else False
                if not inline:
                    self.end_paragraph()
                    self.item_lead = ""
            elif env in PARA_ENVS:
                self.end_paragraph()
            return j
        if env in MATH_ENVS:
            start, stop = self._find_end(s, env, j)
            self.emit_math(s[j:start], True)
            return stop
        if env == "abstract":
            # front matter, as CERMINE has it; but an abstract that cites (AAS, JOSS, Nature abstracts do) is kept
            # aside, and becomes a paragraph where it cites a work the body never cites (keep_needed_rows)
            start, stop = self._find_end(s, env, j)
            if _CITE_COMMAND.search(s, j, start):
                self.blocks.append(Block("abstract", self.inline(s[j:start])))
            return stop
        if env in FLOATS or env in SKIPPED_ENVS:
            if env in FLOATS and (opt := re.match(r"\s*\[[^\]\n]*\]", s[j:j + 200])):
                # its placement ("\begin{table}[h]") is no text of the first row; LaTeX reads it to the first "]",
                # so a mistyped "\begin{figure}[\begin{figure}[htp]" opens one figure, not two
                j += opt.end()
            start, stop = self._find_end(s, env, j)
            content = s[j:start]
            caption = ""  # the float's first caption, as text: what a table row that says little is part of
            if env == "thebibliography":
                self.inline_bibliography.append(content)
            elif env == "CSLReferences":  # pandoc's citeproc list: "\bibitem[\citeproctext]{ref-lee2019}" entries
                self.inline_bibliography.append(re.sub(r"\\bibitem\s*\[\s*\\citeproctext\s*\]", r"\\bibitem ", content))
            elif env in FLOATS:
                # AAS tables: \tablecaption, and \tablecomments (the notes under the table, often its references); A&A's
                # \tablefoot and \tablebib (the table's references) are such notes too
                # the caption package's \caption* (no number, no list-of-figures entry: "Source: \citet{x}") too
                for cap in re.finditer(r"\\(?:caption\*?(?:of\s*\{[^}]*\})?|" + _TABLE_NOTES + r")\s*"
                                       r"(?:\[[^\]]*\])?\s*(?=\{)", content):
                    g2 = read_group(content, cap.end())
                    if g2:
                        cap_parts = self.inline(g2[0])
                        self.float_paragraph(cap_parts)
                        if not caption and not re.search(r"tablecomments|tablebib|tablefoot", cap.group(0)):
                            # its first sentence, when short: a title ("Engines selected"), not a description
                            first = re.split(r"(?<=[.!?])\s", squash("".join(p for p in cap_parts if isinstance(p, str))))[0]
                            caption = first.rstrip(" .:") if len(first.split()) <= 15 else ""
            if env in FLOATS or env in TABLES:
                # a table row that cites is kept aside: it becomes a paragraph only for a key cited nowhere else
                previous = ""
                above_block = None  # the row block the row above became, if it cites
                rows_text = content
                for cap in reversed(list(re.finditer(r"\\(?:caption\*?|" + _TABLE_NOTES + r")\s*(?:\[[^\]]*\])?"
                                                     r"\s*(?=\{)", rows_text))):
                    g2 = read_group(rows_text, cap.end())  # the caption is read above: not a row
                    rows_text = rows_text[:cap.start()] + " " + rows_text[g2[1] if g2 else cap.end():]
                # an algorithm's lines end at \; (algorithm2e), a table's rows at \\
                for row in table_rows(rows_text, env in TABLES, env.startswith("algorithm")):
                    row = _TABLE_HEAD.sub(" ", row)
                    row_before, previous = previous, row
                    block_before, above_block = above_block, None
                    if "\\cite" in row.lower() or "\\parencite" in row.lower() or "\\autocite" in row.lower():
                        if re.search(r"\\(?:caption|" + _TABLE_NOTES + r")\b", row):
                            continue
                        all_cells = [c.strip() for c in re.split(r"(?<!\\)&", row)]
                        above = [c.strip() for c in re.split(r"(?<!\\)&", re.sub(r"\\hline|\\[a-z]*rule\b", " ",
                                                                                    row_before))]
                        if all_cells and _CITE_ONLY.fullmatch(all_cells[0]) and len(above) == len(all_cells) and \
                                "cite" not in row_before.lower() and any(above):
                            # an entry set on two rows, its name above and the \cite under it: the rows are one
                            all_cells = [f"{a} {c}".strip() for a, c in zip(above, all_cells)]
                        filled = [c for c in all_cells if c]
                        if block_before is not None and not all_cells[0] and filled and \
                                all(_CITE_ONLY.fullmatch(c) for c in filled):
                            # "Albedo decay rate & ... & \citet{a};" then "& & & \citet{b}": a row of empty cells
                            # and citations goes on with the row above, whose cell its citations continue
                            for cell in filled:
                                block_before.parts += [" "] + self.inline(cell)
                            above_block = block_before
                            continue
                        parts = []
                        valued = True  # every cell that cites gives a value too ("2690 \cite{a} & 4800 \cite{b}")
                        citing_cells, printed_cells, first_text = 0, 0, None
                        for cell in all_cells:  # a cell that prints nothing (\cellcolor{white}) is no cell
                            cell_parts = self.inline(cell) if cell else []
                            if any(isinstance(p, Cite) or p.strip() for p in cell_parts):
                                parts += ([" – "] if parts else []) + cell_parts
                                printed_cells += 1
                                if first_text is None:
                                    first_text = "" if any(isinstance(p, Cite) for p in cell_parts) else \
                                        " ".join(p for p in cell_parts if isinstance(p, str))
                            if any(isinstance(p, Cite) for p in cell_parts):
                                citing_cells += 1
                                valued &= any(isinstance(p, str) and re.search(r"\w", p) for p in cell_parts)
                        # "6dF & Q = 3, 4, 6 & \citet{a}, \citet{b} & 375": a catalogue, a survey or a code named in the
                        # first cell (an acronym, letters and digits), the works it comes from in one cell of their
                        # own and what the table gives of it in others: the row says what they are cited for, as a
                        # row of one citation does ("refs & \cite{a}", a name and citations only, still says nothing)
                        named = citing_cells == 1 and printed_cells >= 3 and \
                            bool(first_text and _ROW_NAME.search(first_text))
                        if any(isinstance(p, Cite) for p in parts):
                            words = re.findall(r"[^\W\d_]{3,}", " ".join(p for p in parts if isinstance(p, str)))
                            # "Isochrone & 35.5 & \citet{x}": the caption says of what; so it does where each work
                            # is cited for a value ("Density & 2690 \cite{a} & 4800 \cite{b}"); not a row of
                            # citations ("References & \cite{a} & \cite{b}"), whose works the column heads tell apart
                            n_row_cites = sum(isinstance(p, Cite) for p in parts)
                            title = caption if len(words) < 4 and (n_row_cites == 1 or valued and words or named) \
                                else ""
                            above_block = Block("row", parts, title=title, named=named)
                            self.blocks.append(above_block)
            return stop
        if env == "tabbing":  # \= \> \< \+ \- \' \` set and move to tab stops here (no accents); a \kill line prints nothing
            start, stop = self._find_end(s, env, j)
            self.end_paragraph()
            self.run(_TAB_COMMAND.sub(" ", _KILL_LINE.sub("", s[j:start])))
            self.end_paragraph()
            return stop
        theorem = env in THEOREMS or env in self.theorem_names
        if env in LISTS:
            inline = env in self.inline_lists
            self.lists.append((inline, "" if inline else self.lead_in()))
            if not inline:
                self.end_paragraph()
                self.item_lead = ""
        elif env in PARA_ENVS or theorem:
            self.end_paragraph()
        opt = read_optional(s, j)  # \begin{enumerate}[(a)], \begin{theorem}[Name]
        if opt is None and theorem:
            # \begin{lemma}{\cite[Lemma 5.1]{x}} or {\cite{a,b}} before the statement: the works the statement is
            # taken from, set where the optional argument would print them; read as that argument, so they open
            # the statement's first sentence ("Lemma ([11, Lemma 5.1]): Let X ...") rather than stand alone
            lead = _THEOREM_SOURCE.match(s, j)
            g = read_group(s, lead.end()) if lead else None
            if g is not None and _CITE_ONLY.fullmatch(g[0]):
                opt = g
        if opt is not None and theorem:  # \begin{theorem}[Name, \cite{x}]: printed in parentheses
            parts = self.inline(opt[0])
            if any(isinstance(p, Cite) for p in parts):
                # "Theorem 2 (Mountain Pass Theorem, [7]). Let X ...": the works cited for the statement; printed
                # as its own sentence the title would be one with no words ("([14, 15])"), so it opens the
                # statement's first sentence instead: "Theorem (Mountain Pass Theorem, [7]): Let X ..."
                if env == "proof":  # amsthm prints the optional argument in place of "Proof"
                    self.emit_parts(parts)
                else:
                    self.emit(self.theorem_names.get(env) or THEOREM_NAMES.get(env, env.capitalize()))
                    self.emit(" (")
                    self.emit_parts(parts)
                    self.emit(")")
                self.emit(": ")
                return opt[1]
            self.emit("(")
            self.emit_parts(parts)
            self.emit(") ")
            return opt[1]
        if opt is not None:
            j = opt[1]
            title = None if env in LISTS else _option_title(opt[0])
            parts = self.inline(title) if title else []
            if any(isinstance(p, Cite) for p in parts):
                # \begin{tcolorbox}[colback=red!5, title={... \cite{x}}] (or an environment defined on it): the
                # box prints its title in a bar above the body, a sentence of its own
                self.end_paragraph()
                self.emit_parts(parts)
                self.end_paragraph()
        for _ in range(ENV_ARGS.get(env, 0)):
            g = read_group(s, j)
            j = g[1] if g else j
        return j

    @staticmethod
    def _find_end(s: str, env: str, j: int) -> tuple[int, int]:
        if env in VERBATIM_ENVS:
            # a verbatim body ends at the first \end{env}, as LaTeX reads it: a \begin{env} inside is text (a
            # listing that shows LaTeX, or one whose own \end is mistyped and runs on to the next listing's)
            m = re.compile(r"\\end\s*\{" + re.escape(env) + r"\}").search(s, j)
            return (m.start(), m.end()) if m else (len(s), len(s))
        pattern = re.compile(r"\\(begin|end)\s*\{" + re.escape(env) + r"\}")
        depth = 1
        for m in pattern.finditer(s, j):
            depth += 1 if m.group(1) == "begin" else -1
            if depth == 0:
                return m.start(), m.end()
        return len(s), len(s)

    def cite(self, s: str, name: str, j: int) -> int:
        multi = bool(re.fullmatch(r"[A-Za-z]*cites", name.rstrip("*")))
        opts: list[str] = []
        keys: list[str] = []
        if multi:  # \cites(pre)(post)[pre][post]{a}[pre][post]{b}...
            paren = re.match(r"(\s*\([^)]*\)){0,2}", s[j:j + 400])
            j += paren.end() if paren else 0
        while True:
            group_opts = []
            for _ in range(2):
                opt = read_optional(s, j)
                if opt is None:
                    break
                group_opts.append(opt[0])
                j = opt[1]
            g = read_group(s, j)
            if g is None:
                break
            keys.extend(k.strip() for k in g[0].split(",") if k.strip() and k.strip() != "*")
            opts.extend(group_opts)
            j = g[1]
            if not multi or read_group(s, j) is None and read_optional(s, j) is None:
                break
        if not keys:
            return j
        pre, post = "", ""
        if len(opts) == 1:
            post = opts[0]
        elif len(opts) >= 2:
            pre, post = opts[0], opts[1]
        cite = Cite(name, list(dict.fromkeys(keys)), self.text_of(pre) if pre else "",
                    self.text_of(post) if post else "")
        self.cited.extend(cite.keys)
        self.current.append(cite)
        return j


# a measured value in a table row's cells: "0.201", "58.8", "-3", "12%" (not a digit inside a word or a name)
_ROW_VALUE = re.compile(r"(?<![\w.])[-+−]?\d+(?:[.,]\d+)?%?(?![\w.])")


# a word of a table row, or a name that holds digits after its letters ("JW300", "ResNet50", "WMT16")
_ROW_WORD = re.compile(r"[^\W\d_]{3,}|(?<![\w.])[^\W\d_]{2,}\d+[^\W_]*")


def keep_needed_rows(blocks: list[Block]) -> list[Block]:
    """Table rows that cite become paragraphs only where they hold a key no sentence cites: a row is not a sentence,
    but for a work cited only in a table it is the one context there is. An abstract that cites (front matter) is
    kept whole where it cites a work the body does not."""
    in_text = {k for b in blocks if b.kind not in ("row", "abstract") for p in b.parts if isinstance(p, Cite)
               for k in p.keys}
    kept = []
    for block in blocks:
        if block.kind == "abstract":  # prose: kept whole, where it is the only place a work is cited
            if any(isinstance(p, Cite) and set(p.keys) - in_text for p in block.parts):
                kept.append(Block("p", block.parts))
            continue
        if block.kind == "row":
            parts = []
            for p in block.parts:  # in the row, only the citations of keys cited nowhere else stay markers
                if isinstance(p, Cite):
                    new = [k for k in p.keys if k not in in_text]
                    if new:
                        parts.append(Cite(p.command, new, p.pre, p.post, p.printed))
                else:
                    parts.append(p)
            row_text = " ".join(p for p in parts if isinstance(p, str))
            own = _ROW_WORD.findall(row_text)
            values = _ROW_VALUE.findall(row_text)
            if block.title:  # a row that says little, under a table whose caption is a short title
                parts = [block.title + ": "] + parts
            words = _ROW_WORD.findall(" ".join(p for p in parts if isinstance(p, str)))
            n_cites = sum(isinstance(p, Cite) for p in parts)
            # a row of bare numbers says nothing; a row naming one thing and the work it comes from ("Wilkes
            # Subglacial Basin & \citet{x}") says what the work is cited for, and so does a results table's row
            # naming one method by a word and giving its measured values ("Liu \cite{x} & D & 0.201 & 1.584"),
            # and a catalogue's row naming a survey with its works in one cell
            if n_cites and (len(words) >= 4 or n_cites == 1 and (len(own) >= 2 or own and len(values) >= 2)
                            or block.named):
                kept.append(Block("p", parts))
                in_text |= {k for p in parts if isinstance(p, Cite) for k in p.keys}
            continue
        kept.append(block)
    return kept


def squash(text: str) -> str:
    return _SPACES.sub(" ", text or "").strip()


# ---------------------------------------------------------------------------
# Bibliography
# ---------------------------------------------------------------------------

@dataclass
class Reference:
    """One bibliography entry: the printed text and the fields that were found."""

    key: str
    raw: str
    title: str = ""
    authors: list[tuple[str, str]] = field(default_factory=list)  # (surname, given)
    year: str = ""
    venue: str = ""
    volume: str = ""
    pages: str = ""
    doi: str = ""
    arxiv: str = ""
    label: str = ""       # what the text prints for it (natbib short label, alpha label)
    label_year: str = ""
    printed_label: bool = False  # the label came from the source's \\bibitem[...] (not made up from fields)
    alias: str = ""       # natbib's \\defcitealias{key}{text}: what \\citetalias / \\citepalias print


DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>{}]+)", re.I)
ARXIV_RE = re.compile(r"(?:arXiv:\s*|arxiv\.org/(?:abs|pdf)/|\beprint\s*)(\d{4}\.\d{4,5}(?:v\d+)?|"
                      r"[a-z\-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)", re.I)
YEAR_RE = re.compile(r"(?<![\d/.])((?:1[6-9]|20)\d{2})(?:[a-z])?(?![\d/])")


def clean_doi(text: str) -> str:
    m = DOI_RE.search(text or "")
    return m.group(1).rstrip(".,;:)]}") if m else ""


def split_authors(text: str) -> list[tuple[str, str]]:
    """'N. Taylor, K. Osei, and E. Lindqvist' / 'Taylor, N., Osei, K.' -> [(surname, given), ...]."""
    text = squash(re.sub(r"\bet\s+al\.?|\band\s+others\b", "", text or "")).strip(" .,;")
    if not text:
        return []
    pieces = [p.strip() for p in re.split(r"\s*,?\s+and\s+|\s*&\s*|\s*;\s*|\s*,\s*", text) if p.strip()]
    initials = re.compile(r"^(?:[A-Z][a-z]?\.?[\s-]*){1,4}$")
    names: list[tuple[str, str]] = []
    i = 0
    while i < len(pieces):
        p = pieces[i]
        if i + 1 < len(pieces) and " " not in p and initials.match(pieces[i + 1]) and not initials.match(p):
            names.append((p, pieces[i + 1]))  # "Taylor, N."
            i += 2
            continue
        words = p.split()
        if len(words) == 1:
            names.append((words[0], ""))
        else:
            names.append((words[-1], " ".join(words[:-1])))
        i += 1
    return names[:100]


def _fields_from_text(ref: Reference, text: str, blocks: list[str]) -> None:
    """Fill a thebibliography entry's fields from its printed layout (``\\newblock`` blocks when present)."""
    ref.doi = ref.doi or clean_doi(text)
    if not ref.arxiv and (m := ARXIV_RE.search(text)):
        ref.arxiv = m.group(1)
    years = YEAR_RE.findall(text)
    ref.year = ref.year or ref.label_year or (years[-1] if years else "")
    blocks = [squash(b) for b in blocks if squash(b)]
    if len(blocks) >= 2:
        head = re.sub(r"\(\s*(?:1[6-9]|20)\d{2}[a-z]?\s*\)\.?$", "", blocks[0]).strip(" .")
        ref.authors = ref.authors or split_authors(head)
        ref.title = ref.title or blocks[1].strip(" .,")
        if len(blocks) > 2 and not ref.venue:
            ref.venue = next((e for e in ref_emph(ref) if e and e not in ref.title), "") or \
                re.split(r",|\(|\d", blocks[2].removeprefix("In ").strip())[0].strip(" .")
        return
    # no \newblock: "Authors. Title. \emph{Venue}, ..." (a sentence ends after a word of two letters or more)
    year_split = _AUTHOR_YEAR_HEAD.match(text)
    if year_split and not _SENTENCE_END.search(year_split.group(1)):
        # author-year layouts: "Smith, A., Lee, B., 2020. Title." / "Smith, A. (2020). Title."
        chunks = [year_split.group(1), year_split.group(3)]
    else:
        chunks = _SENTENCE_END.split(text, maxsplit=1)
    if len(chunks) < 2:
        return
    ref.authors = ref.authors or split_authors(re.sub(r"\(\s*\d{4}[a-z]?\s*\)", "", chunks[0]))
    rest = chunks[1]
    venue = next((e for e in ref_emph(ref) if e and rest.find(e) > 0), "")
    if venue:  # the title runs up to the emphasised venue ("Title. In \emph{Proc. X}, ...")
        ref.title = ref.title or re.sub(r"[.,]?\s*(?:In:?|in:?)?\s*$", "", rest[:rest.find(venue)]).strip(" .,“”\"")
        ref.venue = ref.venue or venue
        return
    parts = _SENTENCE_END.split(rest, maxsplit=1)
    ref.title = ref.title or parts[0].strip(" .,“”\"")
    if len(parts) > 1 and not ref.venue:
        ref.venue = re.split(r",|\(|\d", parts[1].removeprefix("In ").strip())[0].strip(" .")


_SENTENCE_END = re.compile(r"(?<=[A-Za-z\u00c0-\u024f)}]{2}[.?!])\s+|(?<=[.?!][”\"])\s+")
_AUTHOR_YEAR_HEAD = re.compile(r"^(.{2,300}?)[,.]?\s+\(?((?:1[6-9]|20)\d{2}[a-z]?)\)?[.,:]\s+(.+)$", re.S)


def ref_emph(ref: Reference) -> list[str]:
    return getattr(ref, "_emph", [])


_BIBITEM = re.compile(r"\\bibitem\s*")


def parse_thebibliography(content: str, macros: dict[str, Macro]) -> list[Reference]:
    """Entries of a ``thebibliography`` (a ``.bbl`` or inline): key, printed label, text and fields."""
    if macros:
        content = expand_macros(content, macros, 4 * len(content) + 100_000)
    refs = []
    parts = _BIBITEM.split(content)[1:]
    for part in parts:
        label = None
        opt = read_optional(part, 0)
        i = 0
        if opt is not None:
            label, i = opt
        g = read_group(part, i)
        if g is None:
            continue
        key, i = g
        body = part[i:].split("\\end{thebibliography}")[0]
        conv = Converter()
        conv.run(body)
        conv.end_paragraph()
        text_parts = [p for b in conv.blocks for p in b.parts + [" "] if isinstance(p, str)]
        text = squash("".join(text_parts))
        blocks = text.split(NEWBLOCK)
        text = squash(text.replace(NEWBLOCK, " "))
        ref = Reference(key.strip(), text)
        ref._emph = conv.emph  # type: ignore[attr-defined]
        if label is not None:
            ref.printed_label = True
            lab_conv = Converter()
            lab_conv.run(label)
            lab_conv.end_paragraph()
            lab = squash("".join(p for b in lab_conv.blocks for p in b.parts if isinstance(p, str)))
            # natbib's [Short(year)Long]; an entry with no year leaves its parentheses empty ("Woollen et~al.()
            # Woollen, Marsh, ..."): the short name is still the label, and the year is the entry's or "n.d."
            m = re.match(r"(.*?)\(\s*((?:1[6-9]|20)\d{2}[a-z]?|n\.?\s*d\.?|in press|\w+|)\s*\)", lab)
            if m:
                ref.label, ref.label_year = m.group(1).strip(" ,"), m.group(2)
            else:
                ref.label = lab
        f = conv.fields
        if f:  # revtex's \bibinfo{field}{value}
            ref.title = (f.get("title") or [""])[0]
            ref.venue = (f.get("journal") or f.get("booktitle") or f.get("publisher") or [""])[0]
            ref.year = (f.get("year") or [""])[0][:4]
            ref.volume = (f.get("volume") or [""])[0]
            ref.pages = (f.get("pages") or [""])[0]
            ref.doi = clean_doi(" ".join(f.get("doi", [])))
            ref.authors = [n for a in f.get("author", []) for n in split_authors(a)][:100]
        ref.doi = ref.doi or clean_doi(" ".join(conv.hrefs))
        if not ref.arxiv:
            m = ARXIV_RE.search(" ".join(conv.hrefs)) or ARXIV_RE.search(text)
            ref.arxiv = m.group(1) if m else ""
        if f:  # revtex tags every field it prints: what it does not tag (a title in physics styles) is absent
            ref.year = ref.year or ref.label_year or next(iter(YEAR_RE.findall(text)[-1:]), "")
        else:
            _fields_from_text(ref, text, blocks)
        # the label keeps natbib's 2001a / 2001b (two works of one author and year print apart); the year is the year
        ref.year = re.sub(r"[a-z]$", "", ref.year) if ref.year[:4].isdigit() else ref.year
        refs.append(ref)
    return refs


def _balanced_field(block: str, name: str) -> str:
    m = re.search(r"\\field\{" + re.escape(name) + r"\}", block)
    if not m:
        return ""
    g = read_group(block, m.end())
    return g[0] if g else ""


def _positional_names(names: str) -> list[tuple[str, str, str]]:
    """(family, given, prefix) of each person in an old biber ``\\name`` list, whose parts are positional groups."""
    people, i = [], 0
    while (start := names.find("{", i)) >= 0:
        person = read_group(names, start)
        if person is None:
            break
        i = person[1]
        groups, j = [], 0
        while (k := person[0].find("{", j)) >= 0 and len(groups) < 9:
            g = read_group(person[0], k)
            if g is None:
                break
            groups.append(g[0])
            j = g[1]
        if len(groups) >= 2:
            groups += [""] * (9 - len(groups))
            people.append((groups[1], groups[3], groups[5]))
    return people


def parse_biblatex_bbl(text: str) -> list[Reference]:
    """Entries of a biber-made ``.bbl`` (``\\entry{key}{type}{}...\\endentry``)."""
    refs = []
    for m in re.finditer(r"\\entry\{([^}]*)\}\{([^}]*)\}\{[^}]*\}(?:\{[^}]*\})?(.*?)\\endentry", text, re.S):
        key, kind, block = m.group(1), m.group(2), m.group(3)
        block = re.sub(r"\\bibrangedash\s*", "–", block)
        conv = Converter()

        def txt(latex: str) -> str:
            return conv.text_of(latex) if latex else ""

        authors = []
        names = re.search(r"\\name\{author\}\{\d+\}\{[^}]*\}", block)
        if names:
            g = read_group(block, names.end())
            if g:
                if "family=" in g[0]:
                    for person in re.finditer(r"family=\{((?:[^{}]|\{[^{}]*\})*)\}(?:.*?given=\{((?:[^{}]|\{[^{}]*\})*)\})?",
                                              g[0], re.S):
                        authors.append((txt(person.group(1)), txt(person.group(2) or "")))
                else:  # biblatex before 3.3: {{options}{Family}{F.}{Given}{G.}{prefix}{p.}{suffix}{s.}} per person
                    for family, given, prefix in _positional_names(g[0]):
                        authors.append((txt(" ".join(filter(None, (prefix, family)))), txt(given)))
        verbs = dict(re.findall(r"\\verb\{(\w+)\}\s*\\verb\s?(.*?)\s*\\endverb", block, re.S))
        title = txt(_balanced_field(block, "title"))
        venue = txt(_balanced_field(block, "journaltitle") or _balanced_field(block, "booktitle")
                    or _balanced_field(block, "journal"))
        if not venue:
            pub = re.search(r"\\list\{(?:publisher|institution|organization)\}\{\d+\}", block)
            if pub and (g := read_group(block, pub.end())):
                venue = txt(g[0])
        year = _balanced_field(block, "year") or _balanced_field(block, "date")[:4]
        ref = Reference(key, "", title=title, authors=authors, year=year[:4], venue=venue,
                        volume=txt(_balanced_field(block, "volume")), pages=txt(_balanced_field(block, "pages")),
                        doi=clean_doi(verbs.get("doi", "")))
        eprint = verbs.get("eprint", "") or _balanced_field(block, "eprint")
        if eprint and (_balanced_field(block, "eprinttype").lower() in ("arxiv", "") or "arxiv" in block.lower()):
            ref.arxiv = eprint.strip()
        label = _balanced_field(block, "labelalpha")
        ref.label = txt(label) if label else (authors[0][0] + (" et al." if len(authors) > 2 else
                                                               f" and {authors[1][0]}" if len(authors) == 2 else "")
                                              if authors else title[:30])
        ref.label_year = ref.year
        ref.raw = format_reference(ref)
        refs.append(ref)
    return refs


def _bib_blocks(text: str, wanted: set[str] | None) -> str:
    """Only the ``@string`` blocks and the entries whose key is wanted (a 1,900-entry ``.bib`` for 90 cited keys
    parses in a fraction of the time)."""
    if wanted is None:
        return text
    starts = [m.start() for m in re.finditer(r"(?m)^[ \t]*@", text)]
    if not starts:
        return text
    starts.append(len(text))
    keep = []
    for a, b in zip(starts, starts[1:]):
        chunk = text[a:b]
        head = re.match(r"\s*@\s*(\w+)\s*[{(]\s*([^,\s]*)", chunk)
        if not head:
            continue
        kind = head.group(1).lower()
        if kind in ("string", "preamble") or head.group(2) in wanted:
            keep.append(chunk)
    return "".join(keep)


MONTHS = {m: str(i) for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                           "nov", "dec"), 1)}
_ENTRY_HEAD = re.compile(r"\s*@\s*(\w+)\s*[{(]\s*([^,\s]*)\s*,?")
_GLUED_ENTRY = re.compile(r"\}[ \t]*(?=@\s*[A-Za-z]+\s*[{(]\s*[^\s,{}()]+\s*,)")
_FIELD_NAME = re.compile(r"[\s,]*([A-Za-z][\w\-:.+]*)\s*=\s*")


def _bib_value(text: str, i: int, strings: dict[str, str]) -> tuple[str, int]:
    """One field value at ``text[i]``: braced, quoted, a number or a @string name, joined by ``#``."""
    pieces = []
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        c = text[i]
        if c == "{":
            g = read_group(text, i)
            pieces.append(g[0])
            i = g[1]
        elif c == '"':
            depth, j = 0, i + 1
            while j < n and not (text[j] == '"' and depth == 0 and text[j - 1] != "\\"):
                depth += (text[j] == "{") - (text[j] == "}")
                j += 1
            pieces.append(text[i + 1:j])
            i = j + 1
        else:
            m = re.match(r"[\w\-:.+/]+", text[i:i + 200])
            if not m:
                raise ValueError(f"unexpected {c!r} in a .bib value")
            word = m.group(0)
            pieces.append(strings.get(word.lower(), MONTHS.get(word.lower()[:3], word) if not word.isdigit() else word))
            i += m.end()
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i < n and text[i] == "#":
            i += 1
            continue
        break
    return "".join(pieces), i


def read_bib(text: str, wanted: set[str] | None) -> dict[str, dict[str, str]]:
    """The fields of each wanted ``.bib`` entry (lower-case names, values as written, @string names resolved).

    A brace-aware reader of BibTeX's grammar: bibtexparser 2.1's splitter takes 1.4 ms per entry (0.26 s for the
    160 entries one real paper cites), more than the whole paper's budget; an entry this reader cannot read is
    handed to bibtexparser."""
    entries: dict[str, dict[str, str]] = {}
    strings: dict[str, str] = {}
    # an entry opened on the line that closes the one before ("}@article{svm2,"): BibTeX reads an entry from
    # any "@", so it starts a line of its own here
    text = _GLUED_ENTRY.sub("}\n", text)
    for chunk in re.split(r"(?m)^(?=[ \t]*@)", _bib_blocks(text, wanted)):
        head = _ENTRY_HEAD.match(chunk)
        if not head:
            continue
        kind, key = head.group(1).lower(), head.group(2)
        if kind in ("comment", "preamble"):
            continue
        try:
            if kind == "string":
                m = _FIELD_NAME.match(chunk, re.match(r"\s*@\s*\w+\s*[{(]", chunk).end())
                if m:
                    strings[m.group(1).lower()] = _bib_value(chunk, m.end(), strings)[0]
                continue
            fields: dict[str, str] = {"ENTRYTYPE": kind}
            i = head.end()
            while True:
                m = _FIELD_NAME.match(chunk, i)
                if not m:
                    break
                value, i = _bib_value(chunk, m.end(), strings)
                fields[m.group(1).lower()] = value
            entries.setdefault(key, fields)
        except (ValueError, TypeError, IndexError):
            entries.setdefault(key, _bibtexparser_fields(chunk, strings))
    return entries


def _bibtexparser_fields(chunk: str, strings: dict[str, str]) -> dict[str, str]:
    import bibtexparser

    prefix = "".join(f"@string{{{k} = {{{v}}}}}\n" for k, v in strings.items())
    library = bibtexparser.parse_string(prefix + chunk)
    if not library.entries:
        return {}
    return {k.lower(): str(v.value) for k, v in library.entries[0].fields_dict.items()}


def bib_preamble_macros(text: str) -> dict[str, Macro]:
    """Macros a ``.bib`` defines in its ``@preamble`` (``@preamble{ {\\providecommand{\\noopsort}[1]{}} }``), which
    BibTeX writes into the ``.bbl`` ahead of the entries, so they hold for every field."""
    macros: dict[str, Macro] = {}
    for m in re.finditer(r"(?im)^[ \t]*@\s*preamble\s*[{(]", text):
        g = read_group(text, m.end() - 1) if text[m.end() - 1] == "{" else None
        if g is not None:
            macros.update(collect_macros(g[0].replace('" # "', ""))[0])
    return macros


_EXTENDED_NAME_PART = re.compile(r"(?:^|,)\s*(family|given|prefix|suffix|useprefix|giveni|familyi)\s*=\s*"
                                 r"(\{(?:[^{}]|\{[^{}]*\})*\}|[^,]*)", re.I)


def _extended_name(person: str) -> tuple[str, str] | None:
    """(surname, given) of a name in biblatex's extended name format (``family=Lenardo, given=Isabella,
    prefix=di, useprefix=true``, which biber reads and BibTeX's name parser splits at its commas); None for
    any other name."""
    if not re.match(r"\s*\{?\s*(?:family|given)\s*=", person, re.I):
        return None
    parts = {m.group(1).lower(): m.group(2).strip().strip("{}").strip()
             for m in _EXTENDED_NAME_PART.finditer(person.strip().strip("{}"))}
    if not parts.get("family"):
        return None
    surname = " ".join(p for p in (parts.get("prefix", ""), parts["family"], parts.get("suffix", "")) if p)
    return surname, parts.get("given", "")


def parse_bib(text: str, wanted: set[str] | None, max_authors: int = 10,
              macros: dict[str, Macro] | None = None) -> list[Reference]:
    """Entries of a ``.bib``, only the wanted keys when given; names split with bibtexparser's name parser. The
    document's macros and those of the ``.bib``'s own ``@preamble`` are expanded in the fields first, as LaTeX
    does when it typesets them (``{\\noopsort{De Kool}}{de Kool}`` is "de Kool")."""
    from bibtexparser.middlewares.names import parse_single_name_into_parts, split_multiple_persons_names

    macros = {**(macros or {}), **(bib_preamble_macros(text) if "@preamble" in text.lower() else {})}
    if macros:
        text = _bib_blocks(text, wanted)
        text = expand_macros(text, macros, 4 * len(text) + 100_000)
    conv = Converter()
    txt = conv.text_of
    refs = []
    for key, f in read_bib(text, wanted).items():
        def val(*names: str) -> str:
            for name in names:
                if f.get(name, "").strip():
                    return f[name]
            return ""

        authors = []
        people = val("author") or val("editor")
        persons = (re.split(r"\s+and\s+", people) if "{" not in people else split_multiple_persons_names(people)) \
            if people else []
        persons = [p for p in persons if p.strip().lower() not in ("others", "et al.", "et al")]
        for person in persons[:max_authors]:
            if extended := _extended_name(person):  # biblatex's "family=Lenardo, given=Isabella, prefix=di"
                authors.append((txt(extended[0]), txt(extended[1])))
                continue
            try:
                parts = parse_single_name_into_parts(person.strip(" ,"))
                authors.append((txt(" ".join(parts.von + parts.last + parts.jr)), txt(" ".join(parts.first))))
            except Exception:  # bibtexparser raises InvalidNameError and plain ValueErrors alike
                authors.extend(split_authors(txt(person)))
        year = val("year") or val("date")[:4]
        venue = txt(val("journal", "journaltitle", "booktitle", "publisher", "school", "institution",
                        "organization", "howpublished"))
        eprint = val("eprint").strip()
        archive = val("archiveprefix", "eprinttype").lower()
        arxiv = eprint if eprint and archive in ("arxiv", "") and re.match(r"\d{4}\.\d{4,5}|[a-z\-]+/\d{7}", eprint) \
            else ""
        if not arxiv:
            m = ARXIV_RE.search(" ".join(val(k) for k in ("url", "journal", "note", "howpublished")))
            arxiv = m.group(1) if m else ""
        ref = Reference(key, "", title=txt(val("title")), authors=authors, year=txt(year)[:4], venue=venue,
                        volume=txt(val("volume")), pages=txt(val("pages")),
                        doi=clean_doi(val("doi")) or clean_doi(val("url")), arxiv=arxiv)
        if not (ref.title or authors or venue):  # @misc{minisat, note={\url{http://minisat.se/}}}: what it prints
            ref.venue = txt(val("note")) or txt(val("url")) or txt(val("howpublished"))
        ref.label = (authors[0][0] + (" et al." if len(persons) > 2 else f" and {authors[1][0]}"
                                      if len(authors) == 2 else "")) if authors else ref.title[:30]
        ref.label_year = ref.year
        ref.raw = format_reference(ref, et_al=len(persons) > max_authors)
        refs.append(ref)
    return refs


def format_reference(ref: Reference, et_al: bool = False) -> str:
    """A printed reference for entries that have fields but no printed text (``.bib``, biblatex ``.bbl``)."""
    names = [f"{given} {surname}".strip() for surname, given in ref.authors]
    if et_al and names:
        who = ", ".join(names) + ", et al."
    elif len(names) <= 2:
        who = " and ".join(names)
    else:
        who = ", ".join(names[:-1]) + ", and " + names[-1]
    parts = [who, ref.title]
    venue = ref.venue
    if ref.volume:
        venue += f", {ref.volume}"
    if ref.pages:
        venue += f":{ref.pages}"
    parts += [venue.strip(" ,"), ref.year]
    text = ". ".join(p.strip(" .") for p in parts if p and p.strip(" ."))
    if ref.doi:
        text += f". doi:{ref.doi}"
    if ref.arxiv and ref.arxiv not in text:
        text += f". arXiv:{ref.arxiv}"
    return text + "." if text else ref.key


def read_bibliography(root: Path, main: Path, conv: Converter, macros: dict[str, Macro],
                      cited: list[str], encoding: str | None = None,
                      any_case: bool = True) -> tuple[dict[str, Reference], str]:
    """Entries for the cited keys: ``.bbl`` first, inline ``thebibliography``, then ``.bib`` for what is left
    (read in the document's declared ``encoding`` when not UTF-8: LaTeX reads the .bbl as it reads the text), and
    with ``any_case`` (BibTeX, not biber) an entry whose key differs from a cited one only in letter case.
    Returns the entries by key and where they came from."""
    refs: dict[str, Reference] = {}
    sources = []
    # (not an editor's cache in a hidden folder, ``.texpadtmp/``: a build of another document or an older one)
    bbls = sorted((p for p in root.rglob("*.bbl") if not any(part.startswith(".") for part in
                                                              p.relative_to(root).parts[:-1])),
                  key=lambda p: (p.stem != main.stem, len(p.parts), str(p)))
    for bbl in bbls:
        text = strip_comments(decode(bbl.read_bytes(), encoding))
        found = parse_biblatex_bbl(text) if "\\entry{" in text else \
            [r for c in re.findall(r"\\begin\{thebibliography\}(.*?)(?:\\end\{thebibliography\}|$)", text, re.S)
             for r in parse_thebibliography(c, macros)]
        new = [r for r in found if r.key not in refs]
        for r in new:
            refs[r.key] = r
        if new:
            sources.append("bbl")
    for content in conv.inline_bibliography:
        for r in parse_thebibliography(content, macros):
            refs.setdefault(r.key, r)
        sources.append("thebibliography")
    wanted = set(cited) | set(conv.nocite)
    everything = "*" in conv.nocite
    missing = None if everything else {k for k in wanted if k not in refs}
    if missing is None or missing:
        named = []
        for name in conv.bib_files:
            name = name if name.lower().endswith(".bib") else name + ".bib"
            for base in (main.parent, root):
                try:
                    path = pu.safe_path_under(root, os.path.relpath(base / name, root))
                    path = path if path.is_file() else _other_case(path)
                    if path is not None:
                        named.append(path)
                        break
                except (ValueError, OSError):
                    continue
        bibs = list(dict.fromkeys(named)) or _bib_files(root)
        if named and missing is not None:
            # keys the named files lack, looked up in the source's other .bib files: an author who renamed or split
            # a bibliography (``\bibliography{CooperAMT.bib}`` beside the ``WAC.bib`` holding the rest) built the
            # PDF with the entries there, and only keys still missing are read from them
            bibs += [b for b in _bib_files(root) if b not in bibs]
        for bib in bibs:
            for r in parse_bib(decode(bib.read_bytes(), encoding), missing, macros=macros):
                if r.key not in refs:
                    refs[r.key] = r
                    if missing is not None:
                        missing.discard(r.key)
            if "bib" not in sources:
                sources.append("bib")
            if missing is not None and not missing:
                break
        if missing and any_case:
            # BibTeX matches a cited key to the entry whose key differs only in letter case (``\cite{Llama}``
            # finds ``@misc{LLama,``, with a warning): the PDF prints that entry, and so do we (biber does not)
            by_case = {k.lower(): k for k in missing}
            for bib in bibs:
                text = decode(bib.read_bytes(), encoding)
                found = {m.group(2) for m in _BIB_ENTRY_KEY.finditer(text) if m.group(2).lower() in by_case}
                for r in parse_bib(text, found, macros=macros) if found else []:
                    cited_key = by_case.get(r.key.lower())
                    if cited_key in missing and r.key not in refs:
                        refs[cited_key] = replace(r, key=cited_key)
                        missing.discard(cited_key)
    return refs, "+".join(sources)


# ---------------------------------------------------------------------------
# Citation style, labels, JATS
# ---------------------------------------------------------------------------

NUMERIC_BST = re.compile(r"^(?:plain|unsrt|abbrv|alpha|ieeetr|IEEEtran\w*|siam\w*|acm|amsplain|amsalpha|"
                         r"plainurl|unsrturl|abbrvurl|alphaurl|apsrev\w*|naturemag|nature|elsarticle-num\w*|"
                         r"spiebib|vancouver|splncs\w*|ama|aipnum\w*|JHEP|utphys|h-physrev\w*|revtex\w*|"
                         r"plainnat-num|abbrvnat-num|unsrtnat|abbrvnat|plainnat)$", re.I)
AUTHOR_YEAR_BST = re.compile(r"^(?:plainnat|abbrvnat|apalike|apa\w*|chicago\w*|agsm|harvard|named|aa|mnras|"
                             r"aasjournal|aasjournalv7|ecta|econometrica|jfm|cell|elsarticle-harv|model\d-names|"
                             r"icml\w*|iclr\w*|neurips\w*|acl_natbib|aaai\w*|ACM-Reference-Format|spbasic|"
                             r"humannat|rusnat|jbact|ametsoc\w*|copernicus|agu\w*|authordate\d|kluwer|"
                             r"frontiersinSCNS_ENG_HUMS|tmlr|jmlr|colm\w*|COLM\w*|rlc)$", re.I)


AUTHOR_YEAR_CLASS = re.compile(r"\\documentclass\s*(?:\[[^\]]*\])?\s*\{\s*(?:aastex\d*|emulateapj|mnras|aa|"
                               r"agujournal\w*|copernicus\w*)\s*\}")


def citation_style(preamble: str, refs: dict[str, Reference], body: str = "") -> str:
    """'numeric' or 'author-year', from the packages, the bibliography style and the labels."""
    bl = re.search(r"\\usepackage\s*\[([^\]]*)\]\s*\{biblatex\}", preamble)
    if bl:
        # the citations follow citestyle=, else style=; bibstyle= sets only the list ("style=numeric-comp,
        # bibstyle=authoryear" prints superscript numbers in the text)
        opts = re.sub(r"\bbibstyle\s*=\s*[\w-]+", "", bl.group(1))
        chosen = re.search(r"\bcitestyle\s*=\s*([\w-]+)", opts)
        return "author-year" if re.search(r"authoryear|apa|chicago|authortitle|mla|harvard|ext-author",
                                          chosen.group(1) if chosen else opts) else "numeric"
    nat = re.search(r"\\usepackage\s*(?:\[([^\]]*)\])?\s*\{[^}]*natbib[^}]*\}", preamble)
    nat_numbers = bool(nat and re.search(r"numbers|super", nat.group(1) or "")) or \
        bool(re.search(r"\\setcitestyle\{[^}]*numbers", preamble))
    revtex = re.search(r"\\documentclass\s*(?:\[[^\]]*\])?\s*\{revtex", preamble)
    # classes that load natbib author-year themselves (AAS, MNRAS, A&A, AGU, Copernicus): no \usepackage{natbib}
    if AUTHOR_YEAR_CLASS.search(preamble) and not nat_numbers and not (nat and re.search(r"numbers", nat.group(1) or "")):
        return "author-year"
    # acmart sets its numeric style itself (\citestyle{acmnumeric}); its .bbl labels carry years in both styles
    if re.search(r"\\documentclass\s*(?:\[[^\]]*\])?\s*\{acmart\}", preamble) and \
            not re.search(r"\\(?:set)?citestyle\s*\{[^}]*(?:acmauthoryear|authoryear)", preamble):
        return "numeric"
    labelled = [r for r in refs.values() if r.printed_label]
    if labelled and sum(1 for r in labelled if r.label_year) >= max(1, len(labelled) // 2) and not nat_numbers \
            and not revtex:
        return "author-year"
    bst = re.search(r"\\bibliographystyle\s*\{([^}]*)\}", preamble)
    if nat and not nat_numbers and not revtex and bst and AUTHOR_YEAR_BST.match(bst.group(1).strip()):
        return "author-year"
    if nat and not nat_numbers and not revtex and not bst and not labelled:
        # \bibliographystyle is most often set in the body, by the bibliography: natbib with a numeric style there
        # (\usepackage[square,comma]{natbib} ... \bibliographystyle{unsrt}) prints "Lin et al.~[12]", not "(2006)"
        late = re.search(r"\\bibliographystyle\s*\{([^}]*)\}", body)
        if late and NUMERIC_BST.match(late.group(1).strip()) and not AUTHOR_YEAR_BST.match(late.group(1).strip()):
            return "numeric"
        return "author-year"
    return "numeric"


def numeric_options(preamble: str) -> tuple[bool, bool]:
    """(sort, compress) of numeric citations: natbib's ``sort``/``sort&compress``, cite's default, biblatex's
    ``sortcites``."""
    nat = re.search(r"\\usepackage\s*\[([^\]]*)\]\s*\{[^}]*natbib[^}]*\}", preamble)
    if nat:
        opts = nat.group(1)
        return "sort" in opts, "compress" in opts
    if re.search(r"\\usepackage\s*(?:\[[^\]]*\])?\s*\{[^}]*\bcite\b[^}]*\}", preamble):
        return True, True
    bl = re.search(r"\\usepackage\s*\[([^\]]*)\]\s*\{biblatex\}", preamble)
    if bl and "sortcites" in bl.group(1):
        return True, "compress" in bl.group(1)
    return False, False


def _number_list(numbers: list[int], sort: bool, compress: bool) -> str:
    """'3, 1, 2' / sorted '1, 2, 3' / compressed '1–3', as natbib prints them."""
    numbers = sorted(numbers) if sort or compress else numbers
    if not compress:
        return ", ".join(map(str, numbers))
    out, i = [], 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(f"{numbers[i]}–{numbers[j]}" if j - i >= 2 else ", ".join(map(str, numbers[i:j + 1])))
        i = j + 1
    return ", ".join(out)


def cite_label(cite: Cite, refs: dict[str, Reference], numbers: dict[str, int], style: str,
               options: tuple[bool, bool] = (False, False)) -> tuple[str, str, str]:
    """(text before, marker text, text after) of one citation as the PDF would print it."""
    keys = [k for k in cite.keys if k in refs]
    if cite.printed:  # CSL output: what citeproc printed
        return "", cite.printed, ""
    cmd = cite.command.rstrip("*").lower()
    pre = cite.pre + " " if cite.pre else ""
    post = ", " + cite.post if cite.post else ""

    def who(r: Reference) -> str:
        return r.label or (r.authors[0][0] if r.authors else r.key)

    def year(r: Reference) -> str:
        return r.label_year or r.year or "n.d."

    if cmd in ("citetalias", "citepalias"):  # natbib: the text \defcitealias gave the key, else its label
        text = "; ".join(refs[k].alias or who(refs[k]) for k in keys)
        return ("(" + pre, text, post + ")") if cmd == "citepalias" else ("", text, "")
    if cmd in ("citeauthor", "citeauthor*", "citefullauthor"):
        return "", "; ".join(who(refs[k]) for k in keys), ""
    if cmd in ("fullcite", "footfullcite"):  # biblatex: the whole entry, as the bibliography prints it
        return "", "; ".join((refs[k].raw or who(refs[k])).rstrip(".") for k in keys), post + "."
    if cmd in ("citeyear", "citeyearpar"):
        text = ", ".join(year(refs[k]) for k in keys)
        return ("(" + pre, text, post + ")") if cmd == "citeyearpar" else ("", text, "")
    textual = cmd in ("citet", "textcite", "textcites", "citealt") or (cmd == "cite" and style == "author-year")
    if style == "author-year":
        if textual:  # \citet[p.~4]{x}, \textcite[p.~4]{x}: "Lee and Kim (2019, p. 4)"
            last = len(keys) - 1
            return "", "; ".join(f"{who(refs[k])} ({year(refs[k])}{post if i == last else ''})"
                                 for i, k in enumerate(keys)), ""
        inner = "; ".join(f"{who(refs[k])}, {year(refs[k])}" for k in keys)
        if cmd in ("citealp", "onlinecite"):  # revtex's \onlinecite is natbib's \citealp
            return pre, inner, post
        return "(" + pre, inner, post + ")"
    printed = [refs[k].label for k in keys if refs[k].printed_label and not refs[k].label_year
               and len(refs[k].label) < 12 and not refs[k].label.isdigit()]
    nums = ", ".join(printed) if len(printed) == len(keys) else _number_list([numbers[k] for k in keys], *options)
    if textual and cmd in ("citet", "textcite", "textcites"):
        return "", "; ".join(who(refs[k]) for k in keys) + f" [{nums}]", ""
    if cmd in ("citenum", "citealp", "citen", "onlinecite"):  # revtex: "Ref.~[\onlinecite{x}]" prints "Ref. [8]"
        return pre, nums, post
    return "[" + pre, nums, post + "]"


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str) -> str:
    return _XML_BAD.sub("", text)


def to_jats(blocks: list[Block], refs: dict[str, Reference], style: str, order: list[str],
            options: tuple[bool, bool] = (False, False)) -> bytes:
    """The JATS document stage 04 reads (the shape CERMINE writes)."""
    numbers = {k: n for n, k in enumerate(order, 1)}
    article = etree.Element("article")
    front = etree.SubElement(article, "front")
    etree.SubElement(front, "article-meta")
    body = etree.SubElement(article, "body")
    back = etree.SubElement(article, "back")
    container = body
    n_sec = 0

    def fill(el: etree._Element, parts: list) -> None:
        last = None
        # a paragraph that is one \fullcite and nothing else (a thesis's list of publications, "\item \fullcite{x}")
        # is the bibliography entry printed in the text: its words, not a sentence that cites the work
        cites = [p for p in parts if not isinstance(p, str)] if len(parts) <= 4 else []
        entry_only = len(cites) == 1 and cites[0].command.rstrip("*").lower() in ("fullcite", "footfullcite") and \
            not any(re.search(r"\w", p) for p in parts if isinstance(p, str))

        def add(text: str) -> None:
            nonlocal last
            text = xml_text(text)
            if last is None:
                el.text = (el.text or "") + text
            else:
                last.tail = (last.tail or "") + text

        for part in parts:
            if isinstance(part, str):
                add(_SPACES.sub(" ", part))
                continue
            keys = [k for k in part.keys if k in refs]
            if not keys:
                add("[?]")
                continue
            before, label, after = cite_label(part, refs, numbers, style, options)
            if entry_only:
                add(before + label + after)
                continue
            add(before)
            x = etree.SubElement(el, "xref", {"ref-type": "bibr", "rid": " ".join(xml_text(k) for k in keys)})
            x.text = xml_text(label)
            last = x
            add(after)
        el.text = (el.text or "").lstrip()
        if len(el):
            el[-1].tail = (el[-1].tail or "").rstrip()
        else:
            el.text = el.text.rstrip()

    for block in blocks:
        if block.kind == "sec":
            n_sec += 1
            container = etree.SubElement(body, "sec", id=f"sec-{n_sec}")
            etree.SubElement(container, "title").text = xml_text(block.title)
        elif block.kind == "p":
            fill(etree.SubElement(container, "p"), block.parts)
        elif block.kind == "fig":
            fig = etree.SubElement(container, "fig")
            fill(etree.SubElement(etree.SubElement(fig, "caption"), "p"), block.parts)
    ref_list = etree.SubElement(back, "ref-list")
    for key in order:
        ref_list.append(jats_reference(refs[key], numbers[key] if style == "numeric" else None))
    return etree.tostring(article, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def jats_reference(ref: Reference, number: int | None) -> etree._Element:
    """``<ref id=key><mixed-citation>``: the printed text, with CERMINE's field tags around the parts of it that
    are the title, venue, year, names and identifiers (stage 04 reads the tags and the whole text as ``raw``)."""
    el = etree.Element("ref", id=xml_text(ref.key))
    mc = etree.SubElement(el, "mixed-citation")
    prefix = f"[{number}] " if number is not None else ""
    raw = prefix + xml_text(ref.raw)
    spans: list[tuple[int, int, etree._Element]] = []
    # the printed label "[35] " is no field: a volume "5" or a year is never tagged inside it
    taken = [k < len(prefix) for k in range(len(raw) + 1)]

    def cuts_a_number(start: int, end: int) -> bool:
        """A number found inside a longer one: volume "5" in the pages "135" or in "2015"."""
        return (raw[start].isdigit() and start > 0 and raw[start - 1].isdigit()) or \
            (raw[end - 1].isdigit() and end < len(raw) and raw[end].isdigit())

    def place(value: str, make) -> None:
        value = xml_text(value or "").strip()
        if not value:
            return
        start = raw.find(value)
        while start >= 0 and (any(taken[start:start + len(value)]) or cuts_a_number(start, start + len(value))):
            start = raw.find(value, start + 1)
        if start < 0:
            return
        for k in range(start, start + len(value)):
            taken[k] = True
        spans.append((start, start + len(value), make(value)))

    def leaf(tag: str, **attrs):
        def make(value: str) -> etree._Element:
            e = etree.Element(tag, attrs)
            e.text = value
            return e
        return make

    for surname, given in ref.authors:
        for text, order in ((f"{given} {surname}", "gs"), (f"{surname}, {given}", "sg"), (surname, "s")):
            if given or order == "s":
                before = len(spans)
                place(text, lambda value, s_=surname, g_=given, o_=order: _string_name(value, s_, g_, o_))
                if len(spans) > before:
                    break
    place(ref.title, leaf("article-title"))
    place(ref.venue, leaf("source"))
    place(ref.volume, leaf("volume"))
    place(ref.year, leaf("year"))
    place(ref.doi, leaf("pub-id", **{"pub-id-type": "doi"}))
    place(ref.arxiv, leaf("pub-id", **{"pub-id-type": "arxiv"}))
    spans.sort(key=lambda t: t[0])
    pos, last = 0, None
    for start, end, element in spans:
        if last is None:
            mc.text = raw[pos:start]
        else:
            last.tail = raw[pos:start]
        mc.append(element)
        last, pos = element, end
    if last is None:
        mc.text = raw
    else:
        last.tail = raw[pos:]
    return el


def _string_name(value: str, surname: str, given: str, order: str) -> etree._Element:
    sn = etree.Element("string-name")
    if order == "s":
        etree.SubElement(sn, "surname").text = value
        return sn
    if order == "gs":
        g = etree.SubElement(sn, "given-names")
        g.text = given
        g.tail = " "
        etree.SubElement(sn, "surname").text = surname
    else:
        s = etree.SubElement(sn, "surname")
        s.text = surname
        s.tail = ", "
        etree.SubElement(sn, "given-names").text = given
    return sn


def _pub_id(kind: str, value: str) -> etree._Element:
    e = etree.Element("pub-id", {"pub-id-type": kind})
    e.text = xml_text(value)
    return e


# ---------------------------------------------------------------------------
# The whole route
# ---------------------------------------------------------------------------

@dataclass
class Result:
    """The JATS of one paper and what the log and summary say about it."""

    xml: bytes
    main_file: str
    n_cite_commands: int
    missing_keys: list[str]
    bibliography: str
    style: str
    partial: str = ""  # why the conversion yields far less than its source ("" when it does not)
    source_keys: int = 0  # distinct keys the source's \\cite commands name
    linked_keys: int = 0  # of them, those that became links to an entry
    text_ratio: float | None = None  # printed body text against the source body's own text (None: not needed,
    # the printed text is at least MIN_TEXT_SHARE of the raw source body)
    notes: list[str] = field(default_factory=list)  # what the log should say about how it was read


# natbib's \defcitealias{key}{text}: what \citetalias{key} prints
_CITE_ALIAS = re.compile(r"\\defcitealias\s*\{([^{}]*)\}\s*(?=\{)")


# A conversion is partial when it yields far less than its source: fewer than this share of the keys that the
# source's \cite commands name became links (a key without an entry, a body cut short), or less than this share of
# the source body's own text came out (a macro or environment that swallowed the rest). Only where the source is
# big enough for a share to mean something.
MIN_LINKED_SHARE = 0.6
MIN_LINKED_KEYS = 5
MIN_TEXT_SHARE = 0.3
MIN_SOURCE_TEXT = 4000
# and when at least MIN_UNCITED_ENTRIES, and MIN_UNCITED_SHARE, of the entries of a .bbl or thebibliography (what
# the compiled paper cites) are cited by no \cite of the source
MIN_UNCITED_ENTRIES = 5
MIN_UNCITED_SHARE = 0.2
_SOURCE_CITE = re.compile(r"\\(" + CITE_RE.pattern + r")\*?(?![A-Za-z@])((?:\s*\[[^\]]*\]){0,2}(?:\s*\{[^{}]*\})+)")
_SOURCE_ENVS_NOT_TEXT = re.compile(r"\\begin\s*\{(equation|align|eqnarray|gather|multline|tabular|figure|table|"
                                   r"verbatim|lstlisting|algorithm|tikzpicture|thebibliography|displaymath|math)"
                                   r"(\*?)\}.*?\\end\s*\{\1\2\}", re.S)


def source_citation_keys(body: str) -> set[str]:
    """The distinct keys that the \\cite-family commands of a source body name (``\\nocite`` excluded), read
    with a plain pattern, independently of the converter: what a complete conversion links."""
    keys: set[str] = set()
    for m in _SOURCE_CITE.finditer(body):
        if m.group(1) in _NOT_CITES or m.group(1).startswith(("citeauthor", "citeyear", "citetitle", "citeurl")):
            continue
        groups = re.findall(r"\{([^{}]*)\}", m.group(2))
        if m.group(1) in ("citeproc", "citeprocitem"):  # CSL: {key}{the text printed}
            prefix = "citeproc_bib_item_" if m.group(1) == "citeprocitem" else ""
            groups = [",".join(prefix + k.strip() for k in groups[0].split(","))]
        for group in groups:
            keys.update(k.strip() for k in group.split(",") if k.strip() and "\\" not in k and " " not in k.strip())
    return keys


def source_text_size(body: str) -> int:
    """Characters of running text in a source body: math, tables, floats, verbatim and commands left out."""
    text = _SOURCE_ENVS_NOT_TEXT.sub(" ", body)
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|\\\[.*?\\\]", " ", text, flags=re.S)
    text = re.sub(r"\\(?:label|ref|eqref|cref|Cref|autoref|url|href|includegraphics|bibliography\w*|"
                  r"[A-Za-z]*cite[a-zA-Z]*)\*?\s*(?:\[[^\]]*\])*\s*\{[^{}]*\}", " ", text)
    text = re.sub(r"\\[A-Za-z@]+\*?|[{}&~^_#]", " ", text)
    return len(re.sub(r"\s+", " ", text).strip())


def completeness(body: str, cited: list[str], refs: dict, printed: int, missing_inputs: list[str] = (),
                 listed: str = "", nocite: list[str] = (),
                 missing_sections: list[str] = ()) -> tuple[str, int, int, float | None]:
    """(why the conversion is partial or "", the source's cited keys, those linked, the printed text share), from
    the source body, the number of characters the conversion printed, the text files the body's ``\\input``
    commands name that the source lacks, and (``listed``: "bbl" or "thebibliography", where the bibliography is
    one that lists what the compiled paper cites) the keys ``\\nocite`` names."""
    wanted = source_citation_keys(body)
    linked = {k for k in cited if k in refs} & wanted if wanted else {k for k in cited if k in refs}
    # the source's own text is never longer than the source: where the printed text reaches the share of the raw
    # body, it reaches it of the text too, and the (costlier) measure of the text is not needed
    size = source_text_size(body) if printed < MIN_TEXT_SHARE * len(body) else 0
    ratio = printed / size if size else None
    reasons = []
    if len(wanted) >= MIN_LINKED_KEYS and len(linked) < MIN_LINKED_SHARE * len(wanted):
        without = len([k for k in wanted if k not in refs])
        reasons.append(f"only {len(linked)} of the {len(wanted)} keys the source cites became links"
                       + (f" ({without} without a bibliography entry)" if without else ""))
    if size >= MIN_SOURCE_TEXT and ratio is not None and ratio < MIN_TEXT_SHARE:
        reasons.append(f"body text {printed} characters against the source's {size} ({ratio:.0%})")
    # a .bbl (or a thebibliography) lists what the compiled paper cites: entries that no \cite of the source names
    # were cited by text the source lacks (a section file not in it) or that was not read (revtex's "\cite{a,*b}"
    # cites b)
    named = {k.lstrip("*") for k in cited}
    uncited = [k for k in refs if k not in named] if listed and not nocite else []
    if len(uncited) >= MIN_UNCITED_ENTRIES and len(uncited) >= MIN_UNCITED_SHARE * len(refs):
        names = list(dict.fromkeys(missing_inputs))
        lacks = (f" (the body inputs {len(names)} file(s) the source lacks: {', '.join(names[:3])}"
                 f"{', …' if len(names) > 3 else ''})") if names else ""
        reasons.append(f"{len(uncited)} of the {len(refs)} entries of its {listed} are cited nowhere in the source"
                       f"{lacks}: the text citing them is missing")
    elif missing_sections:  # a section file the source lacks: LaTeX's PDF of the paper holds its text
        names = list(dict.fromkeys(missing_sections))
        reasons.append(f"the body inputs {len(names)} section file(s) the source lacks ({', '.join(names[:3])}"
                       f"{', …' if len(names) > 3 else ''}): their text is missing")
    return "; ".join(reasons), len(wanted), len(linked), None if ratio is None else round(ratio, 3)


def convert_source(folder: Path, max_chars: int = 20_000_000) -> Result:
    """An unpacked source tree -> JATS; raises LatexError with the reason when it cannot."""
    folder = Path(folder).resolve()
    write_filecontents(folder)
    notes: list[str] = []
    main = find_main_file(folder, notes)
    encoding = declared_encoding(main, folder)
    missing_inputs: list[str] = []
    missing_sections: list[str] = []
    document = load_document(main, folder, max_chars, encoding, missing_inputs, missing_sections)
    begin = _document_begin(document)
    if begin < 0:
        raise LatexError(f"{main.name}: no \\begin{{document}}")
    preamble, body = document[:begin], document[begin + len("\\begin{document}"):]
    # (the first \end{document} outside a listing: one in a verbatim template is text, not the end)
    if (end := _outside_verbatim(body, "\\end{document}")) >= 0:
        body = body[:end]
    raw_body = body  # what the source holds, before any macro is expanded: the measure of a complete conversion
    macros, spans = collect_macros(document)
    macros = {**local_package_macros(preamble, main, folder, encoding), **macros}
    for name in ("citeproc", "citeprocitem"):  # CSL's citation commands are read as citations (Converter.command)
        macros.pop(name, None)
    if spans:  # definitions in the body are not text
        pre_len = len(preamble) + len("\\begin{document}")
        cut, pos = [], 0
        for a, b in spans:
            a, b = a - pre_len, b - pre_len
            if b <= 0 or a >= len(body):
                continue
            a = max(a, 0)
            cut.append(body[pos:a])
            pos = b
        cut.append(body[pos:])
        body = "".join(cut)
    body = expand_macros(body, macros, max(4 * len(body), 2_000_000), notes)
    body = resolve_conditionals(_without_spans(preamble, spans), body, _NEWIF.findall(preamble))
    conv = Converter()
    conv.theorem_names = {m.group(1).strip(): conv.text_of(m.group(2)) for m in _NEWTHEOREM.finditer(document)}
    if _ENUMITEM_INLINE.search(preamble):
        conv.inline_lists = INLINE_LISTS | {"enumerate*", "itemize*", "description*"}
    # \bibliography / \addbibresource may sit in the preamble
    for m in re.finditer(r"\\(?:bibliography|addbibresource|addglobalbib)\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}", preamble):
        conv.bib_files.extend(x.strip() for x in m.group(1).split(",") if x.strip())
    conv.run(body)
    conv.end_paragraph()
    conv.blocks = keep_needed_rows(conv.blocks)
    cited = list(dict.fromkeys(conv.cited))
    # biber matches a cited key to its entry's key exactly; BibTeX whatever their letter case
    biber = bool(re.search(r"\\usepackage\s*(?:\[[^\]]*\])?\s*\{[^}]*\bbiblatex\b", preamble)) or \
        "\\addbibresource" in preamble
    refs, bib_source = read_bibliography(folder, main, conv, macros, cited, encoding, any_case=not biber)
    if not refs:
        raise LatexError("no bibliography in the source (no .bbl, thebibliography or .bib entries)")
    if cited and not any(k in refs for k in cited):
        raise LatexError(f"none of the {len(cited)} cited keys is in the bibliography")
    nocited = [k for k in conv.nocite if k in refs and k != "*"]
    order = [k for k in cited if k in refs] + [k for k in nocited if k not in cited]
    if "*" in conv.nocite:
        order += [k for k in refs if k not in order]
    # a .bbl lists what the paper prints, in the printed order: number by it where there is one
    bbl_order = [k for k in refs if k in set(order)]
    if bib_source.startswith(("bbl", "thebibliography")):
        order = bbl_order + [k for k in order if k not in set(bbl_order)]
    for m in _CITE_ALIAS.finditer(document):
        g = read_group(document, m.end())
        if g is not None and m.group(1).strip() in refs:
            refs[m.group(1).strip()].alias = conv.text_of(g[0])
    style = citation_style(preamble, refs, body)
    xml = to_jats(conv.blocks, refs, style, order, numeric_options(preamble))
    missing = [k for k in cited if k not in refs]
    printed = sum(len(p) for b in conv.blocks for p in b.parts if isinstance(p, str))
    listed = next((kind for kind in ("bbl", "thebibliography") if bib_source.startswith(kind)), "")
    partial, n_source, n_linked, ratio = completeness(raw_body, cited, refs, printed, missing_inputs, listed,
                                                      conv.nocite, missing_sections)
    if set(missing_inputs) - set(missing_sections):  # figures' and tables' files, mostly: said, not flagged
        names = [n for n in dict.fromkeys(missing_inputs) if n not in missing_sections]
        notes.append(f"the body inputs {len(names)} file(s) the source lacks ({', '.join(names[:3])}"
                     f"{', …' if len(names) > 3 else ''}): not converted")
    return Result(xml, str(main.relative_to(folder)), len(conv.cited), missing, bib_source, style, partial,
                  n_source, n_linked, ratio, notes)
