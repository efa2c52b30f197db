"""Small helpers every stage script shares: config parsing, atomic writes, summaries.

Kept deliberately thin (no framework): each stage script stays readable top to
bottom and only borrows the few things that must behave identically everywhere.
A stage script imports this module after putting the repository root on
``sys.path``, so it still runs as ``python 0X_stage/script.py`` from anywhere.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterable, TypeVar

REPO_ROOT = Path(__file__).resolve().parent

# One separator for every list-valued CSV cell (authors, ref_keys, ref_uids, dois).
# "|" never occurs in arXiv ids, bib keys or the DOIs Crossref registers in
# practice, and unlike ";" or "," it does not clash with "Surname, Given".
LIST_SEP = "|"

# arXiv ids as stage 01 turns them into file names: new-style "2401.01234v2",
# old-style "hep-th/9901001v1" -> "hep-th_9901001v1".
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

T = TypeVar("T")


def setup_logging(verbose: bool = False) -> logging.Logger:
    """Log to stderr with a short format; returns the pipeline's logger."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    # The HTTP clients log every request at INFO; the stages report their own.
    # (httpx would also log Crossref URLs, which carry the mailto)
    for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "arxiv", "filelock", "openai", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # bitsandbytes warns at import on every CPU-only machine that an optional kernel package is absent
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    # deprecation notices raised inside transformers by its own callers are not the user's to act on
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\..*)?$")
    return logging.getLogger("pipeline")


def parse_config(config_cls: type[T], description: str | None = None, args: list[str] | None = None) -> T:
    """Build a stage's dataclass config from the command line (``--field-name value``)."""
    import tyro

    return tyro.cli(config_cls, description=description, args=args)


def load_env() -> None:
    """Read a ``.env`` at the repository root (or the current directory) into os.environ.

    Values already set in the environment win; nothing is ever printed.
    """
    from dotenv import load_dotenv

    for candidate in (Path.cwd() / ".env", REPO_ROOT / ".env"):
        if candidate.is_file():
            load_dotenv(candidate, override=False)


def paper_id_from_arxiv_id(arxiv_id: str) -> str:
    """``hep-th/9901001v1`` -> ``hep-th_9901001v1``; raises ValueError on anything unsafe."""
    pid = arxiv_id.strip().replace("/", "_")
    if not _SAFE_ID.match(pid) or ".." in pid:
        raise ValueError(f"unsafe arXiv id {arxiv_id!r}")
    return pid


def safe_child(directory: Path, name: str) -> Path:
    """``directory / name``, refusing any name that would resolve outside ``directory``."""
    directory = Path(directory).resolve()
    path = (directory / str(name)).resolve()
    if path.parent != directory or not str(name).strip():
        raise ValueError(f"file name {name!r} escapes {directory}")
    return path


def safe_path_under(directory: Path, relative: str | Path) -> Path:
    """``directory / relative`` for a path read from data (a CSV cell, an archive member):
    refuses absolute paths, ``..`` and anything that resolves (links included) outside ``directory``."""
    directory = Path(directory).resolve()
    text = str(relative).strip()
    if not text or Path(text).is_absolute() or ".." in Path(text).parts:
        raise ValueError(f"path {text!r} is not a plain path inside {directory}")
    path = (directory / text).resolve()
    if path != directory and directory not in path.parents:
        raise ValueError(f"path {text!r} escapes {directory}")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _atomic_target(path: Path) -> tuple[int, str]:
    """A temp file beside ``path``, with the mode a plain ``open()`` would give (mkstemp makes it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_UMASK)
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Atomic UTF-8 text write."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write, indented for people to read."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: list[str], encoding: str = "utf-8-sig") -> int:
    """Write dict rows as CSV with exactly ``columns`` (missing keys empty); returns the row count.
    The default ``utf-8-sig`` adds the byte-order mark spreadsheets need to read UTF-8 correctly;
    ``pd.read_csv(path)`` and ``read_csv_rows`` read it with or without."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def atomic_write_df(path: Path, df, encoding: str = "utf-8-sig") -> None:
    """Atomic ``DataFrame.to_csv`` (no index), UTF-8 with a byte-order mark for spreadsheets."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        df.to_csv(tmp, index=False, encoding=encoding)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def detect_csv_encoding(path: Path) -> str:
    """The encoding to read a CSV a person may have saved from a spreadsheet with.

    UTF-8 (with or without a byte-order mark) is tried first; otherwise charset-normalizer
    guesses (a sheet saved as Windows-1252 or Latin-1). Raises ValueError, naming the file and
    the fix, when neither gives clean text."""
    raw = Path(path).read_bytes()
    try:
        raw.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None or best.encoding in ("utf_8", "utf_8_sig"):
        raise ValueError(f"{path}: not UTF-8 and the encoding cannot be recognised; "
                         "save it from the spreadsheet as 'CSV UTF-8 (comma delimited)'")
    return best.encoding


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Every row of a CSV as a dict of strings (empty cells are ``""``).

    Reads what spreadsheets write back too: a UTF-8 byte-order mark (Excel's "CSV UTF-8"),
    ";" as the separator (Excel in locales with a decimal comma), and a sheet saved in a
    legacy encoding such as Windows-1252 (detected, see ``detect_csv_encoding``).
    """
    encoding = detect_csv_encoding(path)
    with open(path, encoding=encoding, newline="") as fh:
        header = fh.readline()
        fh.seek(0)
        delimiter = ";" if header.count(";") > header.count(",") else ","
        return list(csv.DictReader(fh, delimiter=delimiter))


# Cells a spreadsheet would run as a formula (OWASP "CSV injection"): =, +, -, @, tab, CR.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """Neutralise a cell that a spreadsheet would execute, by prefixing ``'`` (OWASP's rule).
    Only for sheets people open; ``spreadsheet_unsafe`` undoes it when the sheet is read back."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def spreadsheet_unsafe(value: Any) -> Any:
    """Inverse of ``spreadsheet_safe``: strip the ``'`` it added."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content (the cache key of expensive per-file work)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def split_list(cell: Any) -> list[str]:
    """Parse a list-valued CSV cell written by ``join_list``: items separated by ``|``, where an
    item's own ``|`` (legal in a DOI) is written ``\\|`` and its backslash ``\\\\``."""
    if cell is None:
        return []
    text = str(cell)
    if text.lower() == "nan":
        return []
    if "\\" not in text:
        return [part.strip() for part in text.split(LIST_SEP) if part.strip()]
    items, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in (LIST_SEP, "\\"):
            current.append(text[i + 1])
            i += 2
            continue
        if ch == LIST_SEP:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


_LONE_ESCAPE = re.compile(r"\\(?=[\\|]|$)")


def join_list(items: Iterable[Any]) -> str:
    """Inverse of ``split_list``: any item, even one holding ``|``, survives the round trip."""
    out = []
    for item in items:
        text = str(item)
        if text:
            # a backslash is doubled only where it could be misread (before "|", "\\" or the end),
            # so LaTeX in an author cell stays as written
            out.append(_LONE_ESCAPE.sub(lambda m: "\\\\", text).replace(LIST_SEP, "\\" + LIST_SEP))
    return LIST_SEP.join(out)


def print_summary(title: str, summary: dict[str, Any], stream=None) -> None:
    """Print a stage's closing summary as an aligned two-column table."""
    stream = stream or sys.stdout
    flat: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            if not value:
                flat.append((prefix, "-"))
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        else:
            flat.append((prefix, value))

    walk("", summary)
    width = max((len(k) for k, _ in flat), default=10)
    print(f"\n== {title} ==", file=stream)
    for key, value in flat:
        if isinstance(value, float):
            value = f"{value:.3f}"
        print(f"  {key.ljust(width)}  {value}", file=stream)
    stream.flush()


def stage_dir(name: str) -> Path:
    """Absolute path of a stage folder, e.g. ``stage_dir('01_arxiv_download')``."""
    return REPO_ROOT / name


class KeyValueCache:
    """Expensive answers (a Crossref response, an LLM completion) on disk: SQLite in WAL mode,
    safe to share between threads, every write committed at once, so an interrupted
    run keeps everything it paid for."""

    def __init__(self, path: Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT, stored REAL)")
        self._lock = threading.Lock()

    @staticmethod
    def key(*parts: Any) -> str:
        """A stable key from any JSON-serialisable parts (model, prompt, settings...)."""
        return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, value, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0]

    def close(self) -> None:
        self._db.close()


# --- the topic file -------------------------------------------------------------------------

TOPIC_FILE = REPO_ROOT / "topic.toml"


def load_topic(path: Path | None = None) -> dict[str, Any]:
    """The research topic (``topic.toml`` at the repository root, or ``$PIPELINE_TOPIC``):
    arXiv query, system message, few-shot examples, model names. Stages read their
    defaults from it; a command-line flag still overrides. Missing file -> ``{}``."""
    import tomllib

    path = Path(path or os.environ.get("PIPELINE_TOPIC") or TOPIC_FILE)
    if not path.is_file():
        return {}
    with open(path, "rb") as fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SystemExit(f"{path}: not valid TOML: {exc}") from None


def topic_value(dotted: str, default: Any) -> Any:
    """One value of the topic file by its dotted name (``"arxiv.query"``), else ``default``."""
    node: Any = load_topic()
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


# --- provenance -----------------------------------------------------------------------------

_VERSIONED = ("arxiv", "requests", "httpx", "pandas", "lxml", "pypdfium2", "syntok", "rapidfuzz", "openai",
              "torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes", "duckdb",
              "pylatexenc", "bibtexparser", "bm25s", "sentence-transformers", "wordfreq")


def _config_dict(config: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(config):
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return dict(config or {})


def _input_hashes(inputs: Iterable[Path], limit: int = 5000) -> dict[str, str]:
    files: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            files.extend(sorted(p for p in item.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif item.is_file():
            files.append(item)
    return {str(p): sha256_file(p) for p in files[:limit]}


def write_run_json(output_dir: Path, stage: str, config: Any, inputs: Iterable[Path], summary: dict[str, Any],
                   started: float) -> Path:
    """``run.json`` in a stage's output: the config, the SHA-256 of each input file, package
    versions, start/end times and the summary's counts, so an output says what produced it.
    Secrets never reach it: a config field whose name says key/token/mailto is masked."""
    from importlib import metadata

    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    config_items = {}
    for key, value in _config_dict(config).items():
        secret = any(word in key.lower() for word in ("key", "token", "mailto", "password", "secret"))
        config_items[key] = "***" if secret and value else value
    record = {
        "stage": stage,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - started, 3),
        "python": sys.version.split()[0],
        "packages": versions,
        "config": config_items,
        "inputs": _input_hashes(inputs),
        "summary": summary,
    }
    path = Path(output_dir) / "run.json"
    atomic_write_json(path, record)
    return path


class BackgroundWrites:
    """Writes (each an atomic write with its fsync) done by a few threads, so that a stage handing out thousands of
    papers is not held up by the disk: the fsync waits overlap (one took about 15 ms on this project's machine, in
    series one paper at a time). At most ``max_pending`` wait at once (memory stays bounded); the first error is
    raised by the next ``submit`` or by ``wait``, as the write itself would have raised it. Leaving the with-block
    waits for every write."""

    def __init__(self, threads: int = 8, max_pending: int = 64):
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="write")
        self._pending: Any = deque()
        self._max = max(1, max_pending)

    def submit(self, fn, *args: Any) -> None:
        while len(self._pending) >= self._max:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(fn, *args))

    def wait(self) -> None:
        """Every write submitted so far is on disk (or its error is raised)."""
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> "BackgroundWrites":
        return self

    def __exit__(self, exc_type, *exc: Any) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)


# --- running one task per item: a local process pool, or Ray ---------------------------------

EXECUTORS = ("local", "ray")
RAY_MISSING = ("error: --executor ray needs Ray, an optional extra: pip install -r requirements-extra.txt "
               "(or pip install 'ray>=2.40')")


def set_pdeathsig(parent_pid: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere).

    With ``parent_pid`` (the parent's pid, taken before the fork), a process whose parent died before the request
    was made (a ``kill -9`` between fork and exec: the kernel then never sends the signal) exits at once."""
    import ctypes
    import signal

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def _die_with_parent(parent_pid: int) -> None:
    """Pool worker initializer: a worker whose stage was killed (even with ``kill -9``) ends too, instead of
    waiting forever on a queue nobody writes to. PDEATHSIG on Linux, a watchdog thread everywhere."""
    set_pdeathsig(parent_pid)  # exits when the parent died before the request was made

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


_TASK_FUNCTIONS: dict[tuple[str, str], Any] = {}


def load_script(path: Path, name: str):
    """Import a stage script from its file under the module name ``name`` (stage folders start with a digit,
    so they are not importable by name); registered in sys.modules first, as dataclasses need."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _task_function(script: str, name: str):
    """In a Ray worker: the function ``name`` of the stage script ``script`` (a path relative to the repository
    root), loaded from its file once per worker (stage folders start with a digit: not importable by name)."""
    key = (script, name)
    if key not in _TASK_FUNCTIONS:
        import importlib.util

        path = REPO_ROOT / script
        module_name = "_task_" + re.sub(r"\W", "_", script)
        module = sys.modules.get(module_name)
        if module is None:
            if str(path.parent) not in sys.path:  # as `python script.py` would: its folder first on the path
                sys.path.insert(0, str(path.parent))
            module = load_script(path, module_name)
        _TASK_FUNCTIONS[key] = getattr(module, name)
    return _TASK_FUNCTIONS[key]


def _run_chunk(script: str, name: str, payload: bytes) -> list[tuple[bool, Any]]:
    """The body of one Ray task: ``fn(*args)`` for each args of the chunk (pickled by the driver, unpickled here
    once the script has put its own folder on sys.path), each one's exception caught and returned as text (one bad
    paper never takes its chunk-mates with it)."""
    import pickle

    fn = _task_function(script, name)
    chunk = pickle.loads(payload)
    results = []
    for args in chunk:
        try:
            results.append((True, fn(*args)))
        except Exception as exc:  # reported per item by the driver
            results.append((False, f"{exc.__class__.__name__}: {exc}"))
    return results


def _probe_write(folder: str, token: str, node: str, visible: list[str]) -> str:
    """Ray task: read the driver's probe file in ``folder``, write one of its own beside it, and check that the
    ``visible`` paths (the stage's input) exist here too. Returns the problem, or ``""``."""
    for path in visible:
        if not os.path.exists(path):
            return f"{path} is not visible there"
    probe = Path(folder, f".ray-probe-{token}")
    if (probe.read_text() if probe.is_file() else "") != token:
        return "the driver's probe file is not visible there"
    try:
        atomic_write_text(Path(folder, f".ray-probe-{token}-{node}"), node)
    except OSError as exc:
        return f"a worker cannot write there ({exc.__class__.__name__}: {exc})"
    return ""


class TaskRunner:
    """Runs one function over many items, each item one task, and yields the results as they complete.

    ``executor="local"``: a process pool of ``workers`` processes on this machine (each dies with the stage);
    ``"inline"``: one by one in this process; ``"ray"``: one Ray task per item (per ``chunk`` items), on a Ray
    started here for the run (``ray.init(num_cpus=workers)``, shut down at the end) or on the cluster at
    ``ray_address`` (or ``$RAY_ADDRESS``); an already initialised Ray (a test's) is used as it is. At most
    ``workers`` tasks are in flight (``workers <= 0``: one per core of the machine or of the cluster), so a
    stream of any length never piles up. A task that raises, or whose worker dies, is yielded as an error for
    its items alone: the batch goes on. ``shared_dirs`` (Ray only) are checked up front from every node: a
    worker there must see the driver's files and write its own, and see the ``visible`` paths (the input): a
    cluster needs them on a filesystem every node mounts at the same path.

    Use as a context manager; ``run(fn, items)`` with ``items`` an iterable of ``(key, args)`` yields
    ``(key, result, error)``, ``error`` the reason text or ``""``. ``fn`` must be a module-level function of a
    file under the repository (Ray workers load that file by path) whose arguments and result pickle without
    the stage's own classes."""

    def __init__(self, executor: str = "local", workers: int = 0, ray_address: str = "",
                 shared_dirs: Iterable[Path] = (), visible: Iterable[Path] = (), chunk: int = 1,
                 max_retries: int = 1):
        if executor not in ("local", "inline", "ray"):
            raise ValueError(f"unknown executor {executor!r}: local or ray")
        self.executor, self.workers, self.chunk = executor, workers, max(1, chunk)
        self.ray_address = ray_address or os.environ.get("RAY_ADDRESS", "")
        self.shared_dirs = [Path(d).resolve() for d in shared_dirs]
        self.visible = [str(Path(p).resolve()) for p in visible]
        self.max_retries = max_retries
        self._started_ray = False
        self._ray = None

    # -- Ray set-up ------------------------------------------------------------------------------
    def __enter__(self) -> "TaskRunner":
        if self.executor != "ray":
            if self.workers <= 0:
                self.workers = os.cpu_count() or 1
            return self
        try:
            import ray
        except ImportError:
            raise SystemExit(RAY_MISSING) from None
        self._ray = ray
        began = time.perf_counter()
        if not ray.is_initialized():
            quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                     "configure_logging": True}
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report phoning home
            try:
                if self.ray_address:
                    ray.init(address=self.ray_address, **quiet)
                else:  # a new local instance, never one some other run left behind
                    ray.init(address="local", num_cpus=self.workers if self.workers > 0 else None, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.ray_address}" if self.ray_address else "a local Ray"
                raise SystemExit(f"error: cannot start or reach {where}: {str(exc).splitlines()[0]}") from None
            self._started_ray = True
        try:
            if self.workers <= 0:
                self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
            self._probe()
        except BaseException:
            self.__exit__()
            raise
        logging.getLogger("pipeline").info(
            "Ray: %s, %d CPUs, %d tasks in flight at most (ready in %.1f s)",
            f"cluster at {self.ray_address}" if self.ray_address else "started for this run" if self._started_ray
            else "already running in this process", int(ray.cluster_resources().get("CPU", 0)), self.workers,
            time.perf_counter() - began)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False

    def _options(self) -> dict[str, Any]:
        """Task options: the repository on the workers' path, so that this module imports there (one runtime
        environment for every stage: Ray reuses its workers from one stage to the next)."""
        paths = [str(REPO_ROOT)]
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        return {"runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}, "num_cpus": 1}

    def _probe(self) -> None:
        """Every node of the cluster sees the shared folders and can write into them, or one clear line."""
        if not self.shared_dirs:
            return
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(_probe_write)
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
        token = hashlib.sha256(os.urandom(16)).hexdigest()[:16]
        for folder in self.shared_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(folder / f".ray-probe-{token}", token)
            try:
                refs = {node: probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                                            **self._options()).remote(str(folder), token, node[:12], self.visible)
                        for node in nodes}
                for node, ref in refs.items():
                    problem = ray.get(ref)
                    if not problem and not (folder / f".ray-probe-{token}-{node[:12]}").is_file():
                        problem = "the file a worker wrote there is not visible to this driver"
                    if problem:
                        raise SystemExit(f"error: Ray node {node[:12]} does not share this driver's files ({folder}: "
                                         f"{problem}); put the input and output folders on a filesystem every "
                                         f"node mounts at the same path")
            finally:
                for leftover in folder.glob(f".ray-probe-{token}*"):
                    leftover.unlink(missing_ok=True)

    # -- running ---------------------------------------------------------------------------------
    def run(self, fn, items: Iterable[tuple[Any, tuple]]):
        """Yield ``(key, result, error)`` for every ``(key, args)`` of ``items``, in completion order."""
        if self.executor == "inline":
            for key, args in items:
                try:
                    yield key, fn(*args), ""
                except Exception as exc:
                    yield key, None, f"{exc.__class__.__name__}: {exc}"
        elif self.executor == "local":
            yield from self._run_local(fn, items)
        else:
            yield from self._run_ray(fn, items)

    def _run_local(self, fn, items):
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        source = iter(items)
        pending: dict[Any, Any] = {}
        with ProcessPoolExecutor(max_workers=max(1, self.workers), initializer=_die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            while True:
                for key, args in source:
                    pending[pool.submit(fn, *args)] = key
                    if len(pending) >= 2 * self.workers:  # a little queue keeps every process busy
                        break
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    key = pending.pop(fut)
                    try:
                        yield key, fut.result(), ""
                    except Exception as exc:  # a dead worker breaks the pool: that is not one paper's fault
                        if exc.__class__.__name__ == "BrokenProcessPool":
                            raise
                        yield key, None, f"{exc.__class__.__name__}: {exc}"

    def _run_ray(self, fn, items):
        import pickle

        ray = self._ray
        script_path = Path(fn.__code__.co_filename).resolve()
        try:
            script = str(script_path.relative_to(REPO_ROOT))
        except ValueError:
            raise ValueError(f"{script_path} is outside {REPO_ROOT}: Ray workers could not load it") from None
        task = ray.remote(max_retries=self.max_retries, **self._options())(_run_chunk)
        source = iter(items)
        pending: dict[Any, list] = {}

        def submit(chunk: list) -> None:
            payload = pickle.dumps([args for _, args in chunk], protocol=pickle.HIGHEST_PROTOCOL)
            pending[task.remote(script, fn.__name__, payload)] = chunk

        while True:
            while len(pending) < self.workers:
                chunk = [pair for _, pair in zip(range(self.chunk), source)]
                if not chunk:
                    break
                submit(chunk)
            if not pending:
                return
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                chunk = pending.pop(ref)
                try:
                    outcomes = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    if len(chunk) > 1:  # its worker died: each item alone, so only the culprit is reported
                        for pair in chunk:
                            submit([pair])
                        continue
                    reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                    yield chunk[0][0], None, f"Ray task failed ({exc.__class__.__name__}{': ' + reason if reason else ''})"
                    continue
                for (key, _), (ok, value) in zip(chunk, outcomes):
                    yield (key, value, "") if ok else (key, None, value)


def run_tasks(fn, items: Iterable[tuple[Any, tuple]], executor: str = "local", workers: int = 0,
              ray_address: str = "", shared_dirs: Iterable[Path] = (), visible: Iterable[Path] = (), chunk: int = 1):
    """``TaskRunner(...).run(fn, items)`` in one call, for a stage with a single batch of work."""
    with TaskRunner(executor, workers, ray_address, shared_dirs, visible, chunk) as runner:
        yield from runner.run(fn, items)
