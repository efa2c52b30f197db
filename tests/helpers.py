"""Test helpers: load a stage script from its digit-named folder."""
from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "01": "01_arxiv_download/arxiv_download.py",
    "02": "02_manual_curation/curate.py",
    "03": "03_cermine_extract/cermine_extract.py",
    "04": "04_xml_to_csv/xml_to_csv.py",
    "05": "05_merge_clean/merge_clean.py",
    "06": "06_crossref_doi/crossref_doi.py",
    "07": "07_qa_formatting/qa_formatting.py",
    "08": "08_finetune/finetune.py",
    "09": "09_evaluate/evaluate.py",
    "10": "10_ask/ask.py",
}


@lru_cache(maxsize=None)
def load_stage(number: str):
    """Import a stage script (``load_stage("01")``) as a module; folders starting
    with a digit cannot be imported by name, so load it from its file."""
    path = REPO / SCRIPTS[number]
    name = f"stage{number}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def import_bitsandbytes_offline() -> bool:
    """Import bitsandbytes with the Hub switched off: on a CPU with AVX512-BF16 its CPU backend asks the Hub
    for a kernel when it is imported (kernels-community/quantization-bitsandbytes), and tests never reach the
    network. Without it bitsandbytes uses its own CPU kernels. False when bitsandbytes is not installed."""
    import huggingface_hub.constants as hub

    offline, hub.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE, True
    try:
        import bitsandbytes  # noqa: F401
        return True
    except ImportError:
        return False
    finally:
        hub.HF_HUB_OFFLINE = offline
