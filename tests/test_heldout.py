"Held-out splits are scored on every row that decodes, under both normalisations; training filters only decide what is learned."
import json, shutil
from pathlib import Path
import numpy as np
import soundfile as sf
from conftest import one_line_error, run_main


def test_held_out_preparation_keeps_every_row_that_decodes(npsc_root, tmp_path):
    from nynorsk_asr.config import load_config
    from nynorsk_asr.prep import prepare_split
    root, expected = npsc_root
    cfg = load_config("npsc-nynorsk", dataset_name=str(root), cache_dir=str(tmp_path / "cache"), output_dir=str(tmp_path / "run"))
    train, _ = prepare_split(cfg, "train")
    held, report = prepare_split(cfg, "train", held_out=True)
    kept = set(held["utterance_id"])
    unreadable = {"corrupt_audio", "empty_file", "missing_audio"}
    for uid, (reason, _) in expected.items():
        if not uid.startswith("20170110"): continue
        if reason in unreadable: assert uid not in kept, (uid, reason)       # nothing to score: counted, not kept
        else: assert uid in kept, (uid, reason)                              # a digit, <inaudible>, 31 s, 0.4 s, silence: scored
    assert len(held) > len(train)
    fixed = report["fixed_by_kind"]
    count = lambda kind: sum(r == kind and u in kept for u, (r, _) in expected.items())
    assert fixed["reference_contains_digit"]["count"] == count("contains_digit") == 1
    assert fixed["reference_inaudible"]["count"] == count("inaudible") == 1
    assert fixed["reference_empty_after_cleaning"]["count"] == count("empty_after_cleaning") == 2
    assert fixed["silent"]["count"] == count("silent") == 1
    assert set(report["dropped_by_reason"]) <= unreadable | {"malformed_json_row"}, report["dropped_by_reason"]  # a row that is no row
    long = [d for d, u in zip(held["duration"], held["utterance_id"]) if expected[u][0] == "too_long"]
    assert long and long[0] > 30


def test_evaluation_scores_every_row_under_both_normalisations(lm_run, tmp_path, capsys):
    "A held-out copy with a digit row, an <inaudible> row, a 45 s row and an unreadable file: every readable row is scored."
    corpus = tmp_path / "heldout"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    rows = [("a", "Vi har brukt 300 millionar"), ("b", "<inaudible> og det er rett"), ("c", "eg vil takke representanten"),
            ("d", "eit langt innlegg om ferja"), ("e", "denne fila er øydelagd")]
    for name, _ in rows:
        seconds = 45.0 if name == "d" else 2.0
        sf.write(corpus / f"{name}.wav", (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
    (corpus / "e.wav").write_bytes(b"not a wav file at all" * 20)
    (corpus / "metadata.csv").write_text("file_name,text,speaker,split\n" + "".join(f"{n}.wav,{t},s1,test\n" for n, t in rows))
    run = tmp_path / "run"
    shutil.copytree(lm_run, run, ignore=shutil.ignore_patterns("checkpoint-*", "eval"))
    code, out, err = run_main(capsys, "evaluate", run, "--split", "test", "--decoder", "both", "--dataset_name", corpus)
    assert code == 0, err
    for decoder in ("greedy", "lm"):
        r = json.loads((run / "eval" / f"test_{decoder}.json").read_text())
        assert r["utterances_in_split"] == 4 and r["utterances_dropped_in_preparation"] == 1  # only the unreadable file
        assert r["utterances_windowed"] == 1                                                   # 45 s: decoded in windows
        t, p = r["scores"]["training"], r["scores"]["published"]
        assert t["rows_scored"] == 4 and p["rows_scored"] == 4
        assert t["rows_the_training_filters_drop"] == {"contains_digit": ["a"], "inaudible": ["b"]}
        assert (r["wer"], r["cer"]) == (t["wer"], t["cer"]) and r["normalisation"] == "training"
        refs = {u["utterance_id"]: (u["reference"], u["published_reference"]) for u in r["utterances"]}
        assert refs["a"] == ("vi har brukt millionar", "vi har brukt tre hundre millionar")
        assert refs["b"] == ("og det er rett", "xxx og det er rett")


MODEL_ONLY = ["config.json", "model.safetensors", "vocab.json", "tokenizer_config.json", "preprocessor_config.json",
              "processor_config.json", "special_tokens_map.json"]


def test_evaluate_model_scores_a_folder_as_the_run_scores_itself(lm_run, tmp_path, capsys):
    "A run's model saved alone, and again with its LM in the Wav2Vec2ProcessorWithLM layout: same rows, same code, same scores."
    alone, with_lm = tmp_path / "alone", tmp_path / "with-lm"
    alone.mkdir()
    for name in MODEL_ONLY:
        if (lm_run / name).is_file(): shutil.copy(lm_run / name, alone / name)
    shutil.copytree(alone, with_lm)
    shutil.copytree(lm_run / "language_model", with_lm / "language_model"); shutil.copy(lm_run / "alphabet.json", with_lm)
    own = {d: json.loads((lm_run / "eval" / f"test_{d}.json").read_text()) for d in ("greedy", "lm")}
    data = ["--preset", lm_run / "config.yaml"]  # the run's own config: its data and rules
    code, out, err = run_main(capsys, "evaluate", "--model", alone, *data, "--output_dir", tmp_path / "out-alone")
    assert code == 0, err
    got = json.loads((tmp_path / "out-alone" / "eval" / "test_greedy.json").read_text())
    assert got["model"] == str(alone) and got["model_fingerprint"] == own["greedy"]["model_fingerprint"]
    assert (got["wer"], got["cer"], got["scores"]) == (own["greedy"]["wer"], own["greedy"]["cer"], own["greedy"]["scores"])
    code, _, err = run_main(capsys, "evaluate", "--model", alone, *data, "--output_dir", tmp_path / "x", "--decoder", "lm")
    one_line_error(err, 2, "ships no language model")
    code, out, err = run_main(capsys, "evaluate", "--model", with_lm, *data, "--output_dir", tmp_path / "out-lm", "--decoder", "both")
    assert code == 0, err
    got = json.loads((tmp_path / "out-lm" / "eval" / "test_lm.json").read_text())
    assert got["scores"] == own["lm"]["scores"] and got["decoder_params"]["alpha"] == own["lm"]["decoder_params"]["alpha"]
    # side by side: the run and the folder's scores, per speaker, and where they differ
    code, out, err = run_main(capsys, "compare", lm_run, tmp_path / "out-lm", "--plot", tmp_path / "cmp.png")
    assert code == 0, err
    assert f"| {lm_run.name}:greedy | test | greedy | {own['greedy']['wer']:.4f} |" in out and "| speaker |" in out
    assert "differ most" in out and (tmp_path / "cmp.png").stat().st_size > 1000


def test_evaluate_model_refuses_what_is_not_a_ctc_model(lm_run, tmp_path, capsys):
    bare = tmp_path / "encoder"
    bare.mkdir()
    conf = json.loads((lm_run / "config.json").read_text()); conf["architectures"] = ["Wav2Vec2Model"]
    (bare / "config.json").write_text(json.dumps(conf))
    code, _, err = run_main(capsys, "evaluate", "--model", bare, "--output_dir", tmp_path / "o")
    one_line_error(err, 2, "is a Wav2Vec2Model model, not a CTC one")
    code, _, err = run_main(capsys, "evaluate", "--model", "NbAiLab/nb-wav2vec2-1b-nynorsk", "--output_dir", tmp_path / "o")
    one_line_error(err, 7, "could not reach the Hugging Face hub")
    code, _, err = run_main(capsys, "evaluate", lm_run, "--model", bare)
    one_line_error(err, 2, "a RUN_DIR or --model")
