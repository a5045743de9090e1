"""Training behaviour: run records, progress lines, evaluation, transformers 4 loading, 2-process gloo, the HF pipeline, fp16 CTC."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch

from conftest import ROOT, TINY, cli, flags


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
    from nynorsk_asr.evaluation import greedy_transcripts
    from nynorsk_asr.model import load_run_model
    from nynorsk_asr.prep import normalize
    processor = make_processor(["abcdefghijklmnopqrstuvwxyz æøå"], tmp_path)
    build_model(load_config("demo", seed=0), processor).save_pretrained(tmp_path)
    asr = pipeline("automatic-speech-recognition", model=str(tmp_path), device="cpu")
    audio = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
    text = asr({"raw": audio, "sampling_rate": 16000})["text"]
    assert len(text) > 10
    model, processor = load_run_model(tmp_path, "cpu")
    assert greedy_transcripts(model, processor, [normalize(audio)], progress=False) == [text]


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


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
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
    device = "cuda" if torch.cuda.is_available() else "cpu"  # fp16 autocast on either: the loss must come out in float32
    model.to(device)
    with torch.autocast(device, dtype=torch.float16):
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
