"""Training behaviour: the papermill notebook, resume after kill -9, 2-process gloo, the HF pipeline, fp16 CTC."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch

ROOT = Path(__file__).parents[1]
# a tiny synthetic run: 40 training utterances, a few steps
TINY = dict(synth_train_size=40, synth_validation_size=6, synth_test_size=6, max_steps=30, eval_steps=10,
            save_steps=10, logging_steps=5, warmup_steps=5, per_device_train_batch_size=4,
            per_device_eval_batch_size=8)


def flags(**kw):
    return [a for k, v in kw.items() for a in (f"--{k}", str(v))]


def cli(*args):
    return [sys.executable, "-m", "nynorsk_asr.cli", *args]


@pytest.fixture(scope="module")
def trained_output(tmp_path_factory, cache):
    "A tiny run trained once through the CLI: the finished process (its `run` attribute is the run directory)."
    run = tmp_path_factory.mktemp("run")
    out = subprocess.run(cli("train", *flags(**TINY, output_dir=run, cache_dir=cache)), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    out.run = run
    return out


@pytest.fixture(scope="module")
def trained(trained_output):
    return trained_output.run


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


def test_train_writes_run_records(trained):
    record = json.loads((trained / "train_record.json").read_text())
    assert record["precision"] == "fp32" and record["global_step"] == 30
    assert record["audio_seconds_per_second"] > 0 and record["host_peak_rss_mb"] > 0
    state = json.loads((trained / "trainer_state.json").read_text())
    evals = [h for h in state["log_history"] if "eval_wer" in h]
    assert [h["step"] for h in evals] == [10, 20, 30] and all("eval_cer" in h for h in evals)
    assert (trained / "model.safetensors").is_file() and (trained / "vocab.json").is_file()
    assert len([p for p in trained.glob("checkpoint-*")]) <= 2  # save_total_limit of the demo preset


def test_train_prints_each_log_once(trained_output):
    out = trained_output.stdout + trained_output.stderr
    assert "{'loss'" not in out and "{'eval_loss'" not in out  # transformers' dicts are not printed
    assert out.count("step 10/30 ") == 2  # one training line and one evaluation line
    assert "eval loss" in out and "it/s]" not in out  # no tqdm redraws in a log file


def test_saved_model_transcribes_through_hf_pipeline(tmp_path):
    "A model saved like a run's (random weights: they babble, so the transcript is not empty) reads the same through the pipeline."
    from transformers import pipeline
    from nynorsk_asr.config import load_config
    from nynorsk_asr.vocab import make_processor
    from nynorsk_asr.model import build_model
    from nynorsk_asr.evaluation import transcribe
    from nynorsk_asr.model import load_run_model
    from nynorsk_asr.prep import normalize
    processor = make_processor(["abcdefghijklmnopqrstuvwxyz æøå"], tmp_path)
    build_model(load_config("demo", seed=0), processor).save_pretrained(tmp_path)
    asr = pipeline("automatic-speech-recognition", model=str(tmp_path), device="cpu")
    audio = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
    text = asr({"raw": audio, "sampling_rate": 16000})["text"]
    assert len(text) > 10
    model, processor = load_run_model(tmp_path, "cpu")
    assert transcribe(model, processor, [normalize(audio)], progress=False) == [text]


def test_evaluate_cli_writes_eval_json(trained):
    from nynorsk_asr.scoring import error_rates
    out = subprocess.run(cli("evaluate", str(trained), "--split", "test"), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((trained / "eval/test_greedy.json").read_text())
    assert result["decoder"] == "greedy" and len(result["utterances"]) == result["utterances_evaluated"] == 6
    utts = result["utterances"]
    # the corpus rates pool the per-utterance counts, and equal the metric modules' on the same texts
    assert result["wer"] == pytest.approx(sum(u["word_errors"] for u in utts) / sum(u["words"] for u in utts))
    assert result["cer"] == pytest.approx(sum(u["char_errors"] for u in utts) / sum(u["chars"] for u in utts))
    again = error_rates([u["hypothesis"] for u in utts], [u["reference"] for u in utts])
    assert again == pytest.approx({"wer": result["wer"], "cer": result["cer"]})
    assert f"WER {result['wer']:.4f}" in out.stdout


def test_evaluate_names_what_is_missing(trained, tmp_path):
    "No model (exit status 4), or the data the run was prepared from gone (3): one line that says which."
    import shutil, yaml
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    shutil.copy(trained / "config.yaml", untrained / "config.yaml")
    out = subprocess.run(cli("evaluate", str(untrained)), capture_output=True, text=True)
    assert out.returncode == 4 and "holds no trained model" in out.stderr and "Traceback" not in out.stderr
    moved = tmp_path / "moved"
    shutil.copytree(trained, moved, ignore=shutil.ignore_patterns("checkpoint-*"))
    cfg = yaml.safe_load((moved / "config.yaml").read_text())
    cfg.update(dataset_name=str(tmp_path / "corpus-that-was-deleted"))
    (moved / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run(cli("evaluate", str(moved)), capture_output=True, text=True)
    assert out.returncode == 3 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "needs the data the run was prepared from" in out.stderr and "corpus-that-was-deleted" in out.stderr
    assert "--dataset_name" in out.stderr
    # pointing it at a copy works (here: the synthetic corpus it was made from)
    out = subprocess.run(cli("evaluate", str(moved), "--dataset_name", "synthetic"), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_model_folder_loads_with_transformers_4(trained, transformers4):
    "transformers 4.x reads preprocessor_config.json, which transformers 5 no longer writes by itself."
    code = f"""
import numpy as np, transformers
from transformers import Wav2Vec2Processor, Wav2Vec2ForCTC
assert transformers.__version__.startswith("4."), transformers.__version__
p = Wav2Vec2Processor.from_pretrained({str(trained)!r}); m = Wav2Vec2ForCTC.from_pretrained({str(trained)!r})
x = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
v = p(x, sampling_rate=16000, return_tensors="pt")
print(len(p.tokenizer), float(v.input_values.std()), m(v.input_values).logits.shape[1])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(transformers4)})
    assert out.returncode == 0, out.stderr[-3000:]
    vocab = json.loads((trained / "vocab.json").read_text())
    n_symbols, std, frames = out.stdout.split()
    assert int(n_symbols) == len(vocab) and abs(float(std) - 1) < 0.01 and int(frames) == 99


def _complete(run):
    from nynorsk_asr.train import last_complete_checkpoint
    return last_complete_checkpoint(run)


def test_kill9_during_training_then_resume(tmp_path, cache):
    run = tmp_path / "run"
    cmd = cli("train", *flags(**{**TINY, "max_steps": 60}, output_dir=run, cache_dir=cache))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and (_complete(run) is None or _complete(run).name == "checkpoint-10"):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    last = _complete(run)
    assert last is not None, "no checkpoint was completed before the kill"
    step = int(last.name.split("-")[1])
    assert step < 60
    # what a kill in the middle of a save leaves: a higher-numbered checkpoint with part of its files
    broken = run / f"checkpoint-{step + 10}"
    broken.mkdir(exist_ok=True)
    (broken / "model.safetensors").write_bytes(b"half a file")
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    record = json.loads((run / "train_record.json").read_text())
    assert record["global_step"] == 60 and record["resumed_from"].endswith(last.name)
    assert f"resuming from {last}" in out.stdout
    assert (run / f"incomplete-checkpoint-{step + 10}").is_dir()
    state = json.loads((run / "trainer_state.json").read_text())
    assert [h["step"] for h in state["log_history"] if "eval_wer" in h] == [10, 20, 30, 40, 50, 60]


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo(tmp_path, cache):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
                          "-m", "nynorsk_asr.cli", "train", *flags(**{**TINY, "max_steps": 6, "eval_steps": 3,
                                                                       "save_steps": 3}, output_dir=run, cache_dir=cache)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    record = json.loads((run / "train_record.json").read_text())
    assert record["world_size"] == 2 and record["global_step"] == 6
    assert out.stdout.count("precision: fp32") == 1  # only rank 0 speaks and writes


def test_fp16_ctc_loss_stays_finite():
    "Under fp16 autocast the CTC loss is computed from float32 log-probs: finite, and impossible alignments give 0."
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC
    from nynorsk_asr.train import choose_precision
    from nynorsk_asr.config import ConfigError
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         conv_dim=[16] * 7, vocab_size=12, pad_token_id=11, ctc_zero_infinity=True,
                         ctc_loss_reduction="mean", num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    model = Wav2Vec2ForCTC(cfg)
    x = torch.randn(2, 16000) * 50  # loud input: large activations are where fp16 overflows
    labels = torch.randint(1, 11, (2, 12))
    too_long = torch.randint(1, 11, (2, 200))  # more labels than the 49 frames: an impossible alignment
    device, dtype = ("cuda", torch.float16) if torch.cuda.is_available() else ("cpu", torch.float16)
    model.to(device)
    with torch.autocast(device, dtype=dtype):
        out = model(x.to(device), labels=labels.to(device))
        impossible = model(x.to(device), labels=too_long.to(device))
    assert out.logits.dtype == torch.float16 and out.loss.dtype == torch.float32  # CTC in float32 on CPU and GPU
    assert torch.isfinite(out.loss) and out.loss > 0
    assert torch.isfinite(impossible.loss) and impossible.loss == 0
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16"):
            choose_precision("fp16")
