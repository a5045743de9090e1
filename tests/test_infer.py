"""Inference a laptop can afford (13a_infer, 19a_vad): the OpenMP wait policy set before torch loads, `--threads` and
`--vad` checked before any work, Silero's regions streamed whatever the block size and kept in noise, its absence named
or (when not asked for by name) replaced by the energy VAD with one warning, and `--int8` end to end on a trained run."""
import json, shutil, subprocess, sys
from pathlib import Path
import numpy as np, torch
import pytest
import soundfile as sf
from conftest import cli, one_line_error, run_main, tone

RATE = 16000


def python(code: str, env=None) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_wait_policy_is_set_before_torch_loads_and_a_users_is_kept():
    import os
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    probe = "import nynorsk_asr, os, torch; print(os.environ.get('OMP_WAIT_POLICY'), nynorsk_asr._omp_wait_policy)"
    assert python(probe, env) == "PASSIVE PASSIVE"
    assert python(probe, {**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE ACTIVE"
    # torch first: its OpenMP runtime read no policy, and the package says so instead of claiming one
    late = "import torch, nynorsk_asr; from nynorsk_asr.infer import wait_policy_applied; print(wait_policy_applied())"
    assert python(late, env) == "False"
    # the console script imports the package (and so sets the policy) before any module imports torch
    assert python("import nynorsk_asr.cli, os; print(os.environ['OMP_WAIT_POLICY'])", env) == "PASSIVE"


@pytest.mark.parametrize("command", ["transcribe", "evaluate"])
@pytest.mark.parametrize("value", ["0", "-2"])
def test_threads_below_one_is_one_line_and_exit_2(tmp_path, capsys, command, value):
    sf.write(tmp_path / "clip.wav", tone(1.0), RATE)
    args = [tmp_path / "clip.wav", "--output_dir", tmp_path / "out"] if command == "transcribe" else []
    code, out, err = run_main(capsys, command, tmp_path / "no-run", *args, "--threads", value)
    one_line_error(err, 2, f"threads={value}", "whole number from 1")
    assert code == 2 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags_, says", [(["--vad_threshold", "1.5"], "vad_threshold=1.5"), (["--vad_threshold", "0"], "vad_threshold=0"),
                                          (["--min_silence_s", "-1"], "min_silence_s=-1")])
def test_vad_settings_are_checked_before_any_work(tmp_path, capsys, flags_, says):
    sf.write(tmp_path / "clip.wav", tone(1.0), RATE)
    code, out, err = run_main(capsys, "transcribe", tmp_path / "no-run", tmp_path / "clip.wav", "--output_dir", tmp_path / "out", *flags_)
    one_line_error(err, 2, says)


def test_silero_named_but_not_installed_says_what_to_install(tmp_path):
    sf.write(tmp_path / "clip.wav", tone(1.0), RATE)
    code = ("import sys; sys.modules['silero_vad'] = None\n"  # as if the package were not installed
            "from nynorsk_asr.cli import main\n"
            f"main(['transcribe', {str(tmp_path / 'no-run')!r}, {str(tmp_path / 'clip.wav')!r}, '--vad', 'silero', "
            f"'--output_dir', {str(tmp_path / 'out')!r}])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr[-2000:]
    line = out.stderr.strip()
    assert "\n" not in line and "pip install silero-vad" in line and "Traceback" not in line, line


def test_unnamed_vad_falls_back_to_energy_with_one_warning(monkeypatch, capsys):
    import nynorsk_asr.vad as vad
    from nynorsk_asr.stream import SpeechRegions
    def broken(): raise vad.VadUnavailable("the Silero VAD model could not be loaded (test)")
    monkeypatch.setattr(vad, "load_silero", broken)
    monkeypatch.setattr(vad, "_WARNED", set())
    assert vad.resolve_vad(None) == "energy" and vad.resolve_vad(None) == "energy"
    assert type(vad.speech_regions(None)) is SpeechRegions
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning:") and "energy VAD" in err[0], err
    with pytest.raises(vad.VadUnavailable): vad.resolve_vad("silero")  # asked for by name: an error, not a quiet swap
    assert vad.resolve_vad("energy") == "energy" and vad.speech_regions("none") is None


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    "Twelve clean sentences of the outside set spoken by espeak-ng, joined by pauses of 0.3-2 s, with their true segments."
    from nynorsk_asr.longform import synthetic_recording
    from nynorsk_asr.outside import outside_sentences, speak_outside
    rows = speak_outside(seed=3, sentences=outside_sentences()[:24])[::2]
    lead = int(0.3 * RATE)
    wav = tmp_path_factory.mktemp("vad") / "rec.wav"
    truth = synthetic_recording(wav, [r["audio"][lead:-lead] for r in rows], [r["text"] for r in rows], seed=1)
    return sf.read(wav, dtype="float32")[0], truth


def regions(vad_name, audio, block_s=7.0, **kw):
    from nynorsk_asr.vad import speech_regions
    step = int(block_s * RATE)
    return [(r.speech_start / RATE, r.speech_end / RATE)
            for r in speech_regions(vad_name, **kw).stream(audio[i:i + step] for i in range(0, len(audio), step))]


def test_silero_regions_do_not_depend_on_the_block_size(spoken):
    audio, truth = spoken
    got = {b: regions("silero", audio, b) for b in (0.37, 7.0, 30.0)}
    assert got[0.37] == got[7.0] == got[30.0], got
    assert len(got[7.0]) == len(truth)


@pytest.mark.parametrize("snr", [20, 10, 5])
def test_silero_keeps_every_sentence_in_pink_noise(spoken, snr):
    from nynorsk_asr.acoustics import add_noise, coloured_noise
    from nynorsk_asr.vad import segments_found
    audio, truth = spoken
    noisy = add_noise(audio, coloured_noise(len(audio), 1.0, np.random.default_rng(snr)), snr)
    found = segments_found(regions("silero", noisy), truth)
    energy = segments_found(regions("energy", noisy), truth)
    print(f"{snr} dB: silero {found}/{len(truth)}, energy {energy}/{len(truth)}")
    assert found == len(truth)
    if snr == 5: assert energy < len(truth) // 2  # the energy VAD is what fails here; if it stops failing, the note in 19a_vad is stale


def test_silero_state_stays_small_on_a_long_stream():
    "Memory of one block whatever the length: after minutes of audio the VAD holds a few chunks and its region buffer."
    from nynorsk_asr.vad import SileroRegions
    rng = np.random.default_rng(0)
    vad, step, seen = SileroRegions(), 5 * RATE, []
    for k in range(36):  # 3 minutes, a tone burst every 5 s
        block = (1e-3 * rng.standard_normal(step)).astype(np.float32)
        block[RATE:3 * RATE] += 0.1 * np.sin(2 * np.pi * 220 * np.arange(2 * RATE) / RATE).astype(np.float32)
        seen += vad.feed(block)
    seen += vad.flush()
    assert len(vad.probs) <= 2 and len(vad.pending) < vad.CHUNK and len(vad.buf) <= 6 * RATE, (len(vad.probs), len(vad.pending), len(vad.buf))


@pytest.fixture(scope="module")
def int8_run(lm_run, tmp_path_factory):
    "A copy of the shared trained run, evaluated greedy with --int8, and its card written again."
    run = tmp_path_factory.mktemp("int8") / "run"
    shutil.copytree(lm_run, run)
    for cmd in (cli("evaluate", str(run), "--int8", "--threads", "1"), cli("card", str(run))):
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 0, (cmd, out.stderr[-3000:])
    return run


def test_int8_evaluation_is_named_and_costs_little(int8_run):
    from nynorsk_asr.results import run_record
    fp32 = json.loads((int8_run / "eval" / "test_greedy.json").read_text())
    int8 = json.loads((int8_run / "eval" / "test_greedy_int8.json").read_text())
    assert (fp32["precision"] if "precision" in fp32 else "fp32", int8["precision"]) == ("fp32", "int8")
    assert int8["utterances_evaluated"] == fp32["utterances_evaluated"] and int8["device"] == "cpu"
    print(f"greedy test CER fp32 {fp32['cer']:.4f}, int8 {int8['cer']:.4f}")
    assert abs(int8["cer"] - fp32["cer"]) <= 0.1 * fp32["cer"] + 0.005  # a short run's model; the demo's: 13a_infer
    figures = run_record(int8_run)["figures"]
    assert figures["test_greedy_cer"] == round(fp32["cer"], 5) and figures["test_greedy_int8_cer"] == round(int8["cer"], 5)
    card = (int8_run / "README.md").read_text()
    assert "int8 (`--int8`" in card and f"CER {int8['cer']:.4f} against {fp32['cer']:.4f}" in card


def test_int8_transcription_records_its_precision_and_threads(int8_run, tmp_path):
    from nynorsk_asr.longform import long_form_scores, recording_from_split
    wav = tmp_path / "rec.wav"
    segments = recording_from_split(int8_run, wav, "test", max_clips=20, seed=5)
    scores = {}
    for precision in ("fp32", "int8"):
        out = subprocess.run(cli("transcribe", str(int8_run), str(wav), "--decoder", "greedy", "--format", "json", "--threads", "1",
                                 "--output_dir", str(tmp_path / precision), *(["--int8"] if precision == "int8" else [])),
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads((tmp_path / precision / "rec.json").read_text())
        assert (result["precision"], result["threads"], result["vad"]) == (precision, 1, "silero")
        scores[precision] = long_form_scores(result, segments)["wer"]
    print(scores)
    assert scores["int8"] <= scores["fp32"] * 1.1 + 0.01


@pytest.mark.parametrize("snr", [None, 5])
def test_silero_scorer_in_blocks_equals_the_chunk_loop(spoken, snr):
    "The batched scorer (stateless layers per block, the LSTM cell as a sequence) gives the loop's probabilities, block edges anywhere."
    from nynorsk_asr.acoustics import add_noise, coloured_noise
    from nynorsk_asr.vad import SileroScorer, load_silero
    audio, _ = spoken
    if snr is not None: audio = add_noise(audio, coloured_noise(len(audio), 1.0, np.random.default_rng(7)), snr)
    audio = audio[:len(audio) // SileroScorer.CHUNK * SileroScorer.CHUNK]
    loop = SileroScorer(load_silero(), batched=False)(audio)
    batched = SileroScorer(load_silero())
    assert batched.lstm is not None, "silero-vad's layout changed: the batched path fell back to the loop"
    cuts = [0, 1, 2, 77, 500, len(audio) // SileroScorer.CHUNK]  # blocks of 1, 1, 75, 423 chunks and the rest
    got = np.concatenate([batched(audio[a * 512:b * 512]) for a, b in zip(cuts, cuts[1:])])
    assert got.shape == loop.shape and np.abs(got - loop).max() < 1e-4, np.abs(got - loop).max()


def test_silero_scorer_falls_back_to_the_loop_on_another_layout():
    from nynorsk_asr.vad import SileroScorer

    class Plain:  # a VAD model with Silero's call but none of its insides
        def reset_states(self): self.n = 0
        def __call__(self, chunk, rate): self.n += 1; return torch.tensor(float(chunk.abs().mean() > 0.05))
    model = Plain()
    scorer = SileroScorer(model)
    probs = scorer(np.concatenate([np.zeros(512), 0.1 * np.ones(1024)]).astype(np.float32))
    assert scorer.lstm is None and model.n == 3 and probs.tolist() == [0.0, 1.0, 1.0]


def test_silero_scorer_runs_on_one_thread_and_gives_the_count_back():
    "Silero's tiny sequential steps run on one thread (a second is only woken for each), and the caller's count is kept."
    from nynorsk_asr.vad import SileroScorer

    class Counting:  # records the thread count each chunk is scored with
        def reset_states(self): self.seen = []
        def __call__(self, chunk, rate): self.seen.append(torch.get_num_threads()); return torch.tensor(0.0)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        model = Counting()
        SileroScorer(model)(np.zeros(3 * 512, np.float32))
        assert model.seen == [1, 1, 1] and torch.get_num_threads() == 2, (model.seen, torch.get_num_threads())
    finally: torch.set_num_threads(before)


def small_wav2vec2(norm: str):
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC
    torch.manual_seed(0)
    return Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=32, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=128, conv_dim=[32] * 7, feat_extract_norm=norm,
                                         do_stable_layer_norm=norm == "layer", num_conv_pos_embeddings=16)).eval()


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_time_major_encoder_is_the_same_function(norm):
    from nynorsk_asr.infer import TimeMajorFeatureEncoder, time_major
    model, fast = small_wav2vec2(norm), time_major(small_wav2vec2(norm))
    assert isinstance(fast.wav2vec2.feature_extractor, TimeMajorFeatureEncoder)
    assert not any("parametriz" in name for name, _ in fast.named_modules())  # the positional conv's weight norm folded
    x = torch.randn(3, 20000)
    x[1, 12000:] = 0  # padded, as in a batch: the group norm sees the padding in both
    with torch.inference_mode(): a, b = model(x).logits, fast(x).logits
    assert a.shape == b.shape and float((a - b).abs().max()) < 1e-4


@pytest.mark.parametrize("norm, int8_convs", [("group", 0), ("layer", 6)])
def test_int8_quantises_only_layer_normed_conv_products(norm, int8_convs):
    "The first conv (raw audio in) and any conv whose input no LayerNorm made stay fp32; every transformer linear is int8."
    from torch import nn
    from nynorsk_asr.infer import with_precision
    model = small_wav2vec2(norm)
    linear = sum(type(m) is nn.Linear for m in model.modules())
    q = with_precision(small_wav2vec2(norm), "int8")
    quantised = lambda ms: sum(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in ms)
    convs = q.wav2vec2.feature_extractor.convs
    assert quantised(convs.modules()) == int8_convs and type(convs[0].proj) is nn.Linear
    assert quantised(q.modules()) == linear + int8_convs
    x = torch.randn(2, 16000)
    with torch.inference_mode(): a, b = model(x).logits.log_softmax(-1), q(x).logits.log_softmax(-1)
    assert float((a.argmax(-1) == b.argmax(-1)).float().mean()) > 0.8


def test_time_major_leaves_other_models_alone():
    from torch import nn
    from nynorsk_asr.infer import PatchConv, time_major
    plain = nn.Sequential(nn.Linear(4, 4))
    assert time_major(plain) is plain and type(plain[0]) is nn.Linear
    with pytest.raises(ValueError, match="padding"): PatchConv(nn.Conv1d(2, 2, 3, padding=1))


def test_windows_run_their_convolutions_without_onednn(monkeypatch):
    "A speech region is a length never seen before: its convolutions run on torch's own kernels (no oneDNN kernel built and cached per length), and the setting is put back."
    import contextlib
    import nynorsk_asr.stream as stream
    model, seen = small_wav2vec2("group"), []
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    for conv in convs: conv.register_forward_pre_hook(lambda m, x: seen.append(torch.backends.mkldnn.enabled))
    before = torch.backends.mkldnn.enabled
    windows = [tone(n / 16000, f) for n, f in [(16000, 220.0), (19840, 330.0), (23360, 180.0)]]
    native = [stream.window_log_probs(model, [w])[0] for w in windows]
    assert seen == [False] * len(convs) * len(windows) and torch.backends.mkldnn.enabled == before, seen
    monkeypatch.setattr(stream, "native_convs", contextlib.nullcontext)  # what it was: oneDNN's kernels
    onednn = [stream.window_log_probs(model, [w])[0] for w in windows]
    assert seen[-1] == before
    assert all(a.shape == b.shape and float(np.abs(a - b).max()) < 1e-4 for a, b in zip(native, onednn))


def test_a_model_with_a_large_convolution_keeps_onednn():
    "wav2vec2-large's positional conv (1024 channels, 16 groups, 128 taps) ran 1.7x slower on torch's own kernel: it keeps oneDNN's."
    from torch import nn
    from nynorsk_asr.infer import ONEDNN_MIN_MACS, largest_conv_macs, native_convs
    large = nn.Sequential(nn.Conv1d(1024, 1024, 128, padding=64, groups=16))
    assert largest_conv_macs(large) == 1024 // 16 * 1024 * 128 >= ONEDNN_MIN_MACS > largest_conv_macs(small_wav2vec2("group"))
    seen, before = [], torch.backends.mkldnn.enabled
    large[0].register_forward_pre_hook(lambda m, x: seen.append(torch.backends.mkldnn.enabled))
    with torch.inference_mode(), native_convs(large): large(torch.randn(1, 1024, 20))
    assert seen == [before]


def test_heap_is_trimmed_only_once_the_memory_has_grown(monkeypatch):
    "After the first trim, the next comes only when the resident memory is more than `growth` above what the last left."
    import nynorsk_asr.infer as infer
    from nynorsk_asr.errors import ConfigError
    readings, trims = iter([None, 600, 620, 629, 700, 640, 660, 673, 610]), []  # before each call, and after each trim
    monkeypatch.setattr(infer, "resident_bytes", lambda: next(readings))
    monkeypatch.setattr(infer, "release_heap", lambda: trims.append(1) or True)
    trimmer = infer.HeapTrimmer(growth=0.05)
    done = [trimmer() for _ in range(6)]  # None: trim (600 left); 620, 629 <= 630; 700: trim (640 left); 660 <= 672; 673: trim
    assert done == [True, False, False, True, False, True] and len(trims) == trimmer.trims == 3 and trimmer.after == 610
    with pytest.raises(ConfigError, match="growth=-1"): infer.HeapTrimmer(-1)
