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
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache):
    "A tiny run trained once through the CLI."
    run = tmp_path_factory.mktemp("run")
    out = subprocess.run(cli("train", *flags(**TINY, output_dir=run, cache_dir=cache)), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return run


def test_train_writes_run_records(trained):
    record = json.loads((trained / "train_record.json").read_text())
    assert record["precision"] == "fp32" and record["global_step"] == 30
    assert record["audio_seconds_per_second"] > 0 and record["host_peak_rss_mb"] > 0
    state = json.loads((trained / "trainer_state.json").read_text())
    evals = [h for h in state["log_history"] if "eval_wer" in h]
    assert [h["step"] for h in evals] == [10, 20, 30] and all("eval_cer" in h for h in evals)
    assert (trained / "model.safetensors").is_file() and (trained / "vocab.json").is_file()
    assert len([p for p in trained.glob("checkpoint-*")]) <= 2  # save_total_limit of the demo preset


def test_saved_model_transcribes_through_hf_pipeline(trained):
    from transformers import pipeline, Wav2Vec2ForCTC, Wav2Vec2Processor
    from nynorsk_asr.evaluation import transcribe
    asr = pipeline("automatic-speech-recognition", model=str(trained), device="cpu")
    audio = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
    text = asr({"raw": audio, "sampling_rate": 16000})["text"]
    assert isinstance(text, str)
    model = Wav2Vec2ForCTC.from_pretrained(str(trained))
    processor = Wav2Vec2Processor.from_pretrained(str(trained))
    x = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    assert transcribe(model, processor, [x], progress=False) == [text]


def test_evaluate_cli_writes_eval_json(trained):
    out = subprocess.run(cli("evaluate", str(trained), "--split", "test"), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((trained / "eval/test_greedy.json").read_text())
    assert result["decoder"] == "greedy" and len(result["utterances"]) == result["utterances_evaluated"] == 6
    assert 0 <= result["cer"] and f"WER {result['wer']:.4f}" in out.stdout


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
    assert out.logits.dtype == torch.float16 or device == "cpu"
    assert torch.isfinite(out.loss) and out.loss > 0
    assert torch.isfinite(impossible.loss) and impossible.loss == 0
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16"):
            choose_precision("fp16")
