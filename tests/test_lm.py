"""The language-model stage on a demo-sized model trained briefly: build, tune, decode, card; the transformers route
reads the same run directory; bad input is named."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from conftest import cli, flags

@pytest.fixture(scope="module")
def run(lm_run):
    "A demo-sized run with its LM (conftest); its LM text had an extra file holding one test sentence."
    return lm_run


def test_lm_lowers_wer_on_unseen_sentences(run):
    greedy = json.loads((run / "eval/test_greedy.json").read_text())
    lm = json.loads((run / "eval/test_lm.json").read_text())
    assert greedy["split"] == lm["split"] == "test" and lm["utterances_evaluated"] == 200
    assert lm["wer"] < 0.7 * greedy["wer"], (lm["wer"], greedy["wer"])
    assert lm["cer"] < greedy["cer"]
    assert lm["decoder_params"]["beam_width"] == 50 and len(lm["lm_fingerprint"]) == 16
    assert lm["model_fingerprint"] == greedy["model_fingerprint"]
    search = json.loads((run / "eval/validation_lm_search.json").read_text())
    best = search["grid"][0]
    assert (lm["decoder_params"]["alpha"], lm["decoder_params"]["beta"]) == (best["alpha"], best["beta"])
    assert best["wer"] == min(r["wer"] for r in search["grid"]) and len(search["grid"]) == 20


def test_held_out_sentence_is_filtered_from_the_lm_text(run):
    report = json.loads((run / "lm_report.json").read_text())
    assert report["removed_by_reason"] == {"held_out_sentence": 1}
    assert report["sentences_by_source"] == {"train_transcripts": 2000, "planted.txt": 1}
    assert sorted(p.name for p in (run / "language_model").iterdir()) == ["5gram.bin", "attrs.json", "unigrams.txt"]
    assert not list(run.glob(".lm-build*"))  # the build folder is gone


def test_processor_with_lm_reads_the_run_and_decodes_the_same(run):
    "transformers' Wav2Vec2ProcessorWithLM (deprecated, still used) loads the run directory and agrees with our decoder."
    from transformers import Wav2Vec2ProcessorWithLM
    from nynorsk_asr.config import load_run_config
    from nynorsk_asr.ctc import utterance_log_probs
    from nynorsk_asr.lm import load_decoder, lm_texts
    from nynorsk_asr.model import load_run_model
    from nynorsk_asr.prep import load_eval_split
    cfg = load_run_config(run)
    model, processor = load_run_model(run, "cpu")
    rows, _ = load_eval_split(run, cfg, "test")
    lps = utterance_log_probs(model, [np.asarray(x, np.float32) for x in rows["input_values"][:12]], progress=False)
    ours = lm_texts(load_decoder(run, processor), lps, cfg.lm_beam_width)
    with_lm = Wav2Vec2ProcessorWithLM.from_pretrained(str(run))
    theirs = [with_lm.decode(lp, beam_width=cfg.lm_beam_width).text for lp in lps]
    assert theirs == ours and all(ours)


def test_card_carries_both_decoders(run):
    from huggingface_hub import ModelCard
    card = ModelCard.load(run / "README.md")
    names = {r.metric_name for r in card.data.eval_results}
    assert {"Test WER (greedy decoding, training normalisation)", "Test WER (n-gram LM decoding, training normalisation)",
            "Test CER (n-gram LM decoding, training normalisation)"} <= names  # synthetic data: not NPSC's published one
    text = (run / "README.md").read_text()
    lm = json.loads((run / "eval/test_lm.json").read_text())
    assert f"beam search with the run's n-gram LM (alpha {lm['decoder_params']['alpha']}" in text
    assert "## Language model" in text and "estimated from 2001 sentences" in text and "held_out_sentence 1" in text


def test_alphabet_that_does_not_match_the_tokenizer_is_named(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoint-*"))
    alphabet = json.loads((copy / "alphabet.json").read_text())
    alphabet["labels"] = [("ß" if l == "a" else l) for l in alphabet["labels"]]  # an LM built for another vocabulary
    (copy / "alphabet.json").write_text(json.dumps(alphabet))
    out = subprocess.run(cli("evaluate", str(copy), "--decoder", "lm"), capture_output=True, text=True)
    assert out.returncode == 2 and "does not match the run's tokenizer" in out.stderr, out.stderr[-2000:]
    assert "'ß'" in out.stderr and "'a'" in out.stderr


def test_missing_lmplz_says_how_to_build_it(run, tmp_path):
    env = {**os.environ, "NYNORSK_KENLM_BIN": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = ("import sys, nynorsk_asr.lm as lm; sys.prefix = sys.argv[1]; "
            "from nynorsk_asr.cli import main; main(['lm', sys.argv[2]])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(run)], capture_output=True, text=True, env=env)
    assert out.returncode == 3 and "make kenlm" in out.stderr, out.stderr[-2000:]


def test_push_dry_run_sends_the_lm_layout(run):
    "The LM goes with the model in the layout Wav2Vec2ProcessorWithLM reads; the KenLM binary is not mistaken for a pickle."
    out = subprocess.run([sys.executable, "-m", "nynorsk_asr.cli", "push", str(run), "--repo_id", "kari/demo-lm", "--dry_run"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    sent = {line.split()[-1] for line in out.stdout.splitlines() if line.startswith("  ") and len(line.split()) == 3}
    lm_files = {p.relative_to(run).as_posix() for p in (run / "language_model").iterdir()}
    assert lm_files <= sent and {"alphabet.json", "lm_report.json", "eval/test_lm.json", "eval/validation_lm_search.json"} <= sent
    assert not any(f.startswith("checkpoint-") or f.endswith(".ipynb") or f == "training_args.bin" for f in sent)


def test_transformers_pipeline_decodes_the_run_with_its_lm(run):
    "What a user of the pushed model runs: `pipeline(...)` on the run directory uses its LM and writes our beam search's text."
    from transformers import pipeline
    from nynorsk_asr.config import load_run_config
    from nynorsk_asr.ctc import utterance_log_probs
    from nynorsk_asr.lm import load_decoder, lm_texts
    from nynorsk_asr.model import load_run_model
    from nynorsk_asr.prep import load_eval_split
    pipe = pipeline("automatic-speech-recognition", model=str(run), device="cpu")
    assert pipe.type == "ctc_with_lm"
    cfg = load_run_config(run)
    model, processor = load_run_model(run, "cpu")
    rows, _ = load_eval_split(run, cfg, "test")
    clips = [np.asarray(x, np.float32) for x in rows["input_values"][:12]]
    lps = utterance_log_probs(model, clips, batch_size=1, progress=False)  # one clip at a time, as the pipeline sees them
    from pyctcdecode.constants import DEFAULT_BEAM_WIDTH  # the width the pipeline's decoder uses
    ours = lm_texts(load_decoder(run, processor), lps, DEFAULT_BEAM_WIDTH)
    theirs = [pipe({"raw": x, "sampling_rate": 16000})["text"] for x in clips]
    assert theirs == ours and all(ours)
