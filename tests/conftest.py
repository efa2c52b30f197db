import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


@pytest.fixture(scope="module")
def cermine_classes(tmp_path_factory):
    """The CERMINE stand-in class (tests/fixtures/cermine_standin), compiled once per test module."""
    if not shutil.which("javac"):
        pytest.skip("javac not installed: the CERMINE stand-in cannot be compiled")
    out = tmp_path_factory.mktemp("cermine")
    src = REPO / "tests" / "fixtures" / "cermine_standin" / "pl" / "edu" / "icm" / "cermine" / "ContentExtractor.java"
    subprocess.run(["javac", "-d", str(out), str(src)], check=True)
    return out
