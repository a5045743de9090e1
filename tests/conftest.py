"""Shared fixtures and helpers of the test suite, and its two tiers.

`pytest -m "not slow"` is the fast tier (minutes): everything that trains no model and starts no browser. `pytest -m slow`
is the rest: tests that train (any test using one of `TRAINING_FIXTURES` is slow by that alone), kill processes, run
papermill end to end or drive JupyterLab. `make test` runs the fast tier first, then the slow one."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).parents[1]
# a tiny synthetic run: 40 training utterances, a few steps
TINY = dict(synth_train_size=40, synth_validation_size=6, synth_test_size=6, max_steps=30, eval_steps=10,
            save_steps=10, logging_steps=5, warmup_steps=5, per_device_train_batch_size=4,
            per_device_eval_batch_size=8)
# the template corpus's preset, shorter: enough for a model whose greedy output is close, so an LM has letters to fix
# (the demo's real text needs far longer to get there)
SHORT = dict(preset="templates", max_steps=1200, eval_steps=600, save_steps=600, logging_steps=100)
# fixtures that train a model: a test that uses one (directly or through another fixture) is in the slow tier
TRAINING_FIXTURES = {"lm_run", "finished", "with_lm", "trained", "trained_output", "evaluated", "transformers4"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains a model, kills processes, runs papermill or a browser (the slow tier)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())): item.add_marker(pytest.mark.slow)


def flags(**kw) -> list[str]:
    "`--key value` flags of config keys."
    return [a for k, v in kw.items() for a in (f"--{k}", str(v))]


def cli(*args) -> list[str]:
    "The `nynorsk-asr` command line, run by this interpreter."
    return [sys.executable, "-m", "nynorsk_asr.cli", *args]


def tone(seconds, f=220.0, rate=16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * f * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def snapshot(run: Path) -> dict:
    "Every file of a run directory with its bytes (the lock file aside: taking it creates it)."
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}


def run_main(capsys, *args) -> tuple[int, str, str]:
    "`nynorsk-asr ARGS` in this process (no interpreter start-up): (exit status, stdout, stderr)."
    from nynorsk_asr.cli import main
    try: main([str(a) for a in args]); code = 0
    except SystemExit as e: code = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err: str, code: int, *says) -> str:
    "The last line of stderr is the error, naming what `says` lists; no traceback."
    assert "Traceback" not in err, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith("nynorsk-asr ") and ": error: " in line, err[-2000:]
    for s in says: assert s in line, (s, line)
    return line


@pytest.fixture(scope="session")
def npsc_root(tmp_path_factory):
    from npsc_fixture import make_npsc_fixture
    root = tmp_path_factory.mktemp("npsc")
    return root, make_npsc_fixture(root)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    "A preparation cache shared by one test module's runs (synthesis and decoding happen once)."
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory):
    "A template-corpus run trained briefly, with its LM, evaluated greedy and with the LM, and its card; shared by test modules."
    from nynorsk_asr.synth import synthetic_sentences
    from nynorsk_asr.config import load_config
    cfg = load_config("templates")
    sentences = synthetic_sentences(cfg.synth_train_size + cfg.synth_validation_size + cfg.synth_test_size, cfg.seed)
    extra = tmp_path_factory.mktemp("lmtext") / "planted.txt"
    extra.write_text(f"{sentences[-1]}\nEin heilt ny setning om ferja til Stord.\n", encoding="utf-8")
    run = tmp_path_factory.mktemp("lmrun")
    for cmd in (cli("train", *flags(**SHORT, output_dir=run, lm_text_files=extra)), cli("lm", str(run)),
                cli("evaluate", str(run), "--decoder", "both"), cli("card", str(run))):
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 0, (cmd, out.stderr[-3000:])
    return run


@pytest.fixture(scope="session")
def transformers4():
    "transformers 4.x (with the huggingface_hub it needs) installed into a cached folder; skipped when pip cannot fetch it."
    from nynorsk_asr.corpus import default_cache_dir
    target = default_cache_dir() / "test-transformers-4.57.1"
    if not (target / "transformers" / "__init__.py").is_file():
        out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                              "transformers==4.57.1", "huggingface_hub==0.36.0", "tokenizers==0.22.1"],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0: pytest.skip(f"cannot install transformers 4.57.1 here: {out.stderr.strip()[-300:]}")
    return target
