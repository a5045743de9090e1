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


# the demo preset, shorter: enough for a model whose greedy output is close, so an LM has letters to fix
SHORT = dict(max_steps=1200, eval_steps=600, save_steps=600, logging_steps=100)


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory):
    "A demo-sized run trained briefly, with its LM, evaluated greedy and with the LM, and its card; shared by test modules."
    import subprocess
    from test_train import cli, flags
    from nynorsk_asr.synth import synthetic_sentences
    from nynorsk_asr.config import load_config
    cfg = load_config("demo")
    sentences = synthetic_sentences(cfg.synth_train_size + cfg.synth_validation_size + cfg.synth_test_size, cfg.seed)
    extra = tmp_path_factory.mktemp("lmtext") / "planted.txt"
    extra.write_text(f"{sentences[-1]}\nEin heilt ny setning om ferja til Stord.\n", encoding="utf-8")
    run = tmp_path_factory.mktemp("lmrun")
    for cmd in (cli("train", *flags(**SHORT, output_dir=run, lm_text_files=extra)), cli("lm", str(run)),
                cli("evaluate", str(run), "--decoder", "both"), cli("card", str(run))):
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 0, (cmd, out.stderr[-3000:])
    return run
