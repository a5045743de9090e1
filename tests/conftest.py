import os, sys
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def npsc_root(tmp_path_factory):
    from npsc_fixture import make_npsc_fixture
    root = tmp_path_factory.mktemp("npsc")
    return root, make_npsc_fixture(root)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    "A preparation cache shared by one test module's runs (synthesis and decoding happen once)."
    return tmp_path_factory.mktemp("cache")
