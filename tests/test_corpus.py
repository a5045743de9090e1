"""The honest synthetic corpus: real text split by sentence, held-out speakers, varied acoustics, and its refusals."""
import json
import pytest
import soundfile as sf
from conftest import run_main
from nynorsk_asr.errors import ConfigError, DataUnavailableError
from nynorsk_asr.synth import check_held_out, corpus_plan, make_synthetic_corpus, text_sources, HELD_OUT_SPEAKERS, MIN_TRAIN_SPEAKERS
from nynorsk_asr.texts import gimp_help_dir, gimp_help_sentences

SMALL = {"train": 40, "validation": 8, "test": 12}
HONEST = dict(text="templates+gimp-help-nn", speakers="disjoint", acoustics="varied")


def test_the_plan_keeps_held_out_sentences_and_speakers_out_of_training(tmp_path):
    plan = corpus_plan(SMALL, seed=3, cache_dir=tmp_path, **HONEST)
    by = {s: [u for u in plan if u["split"] == s] for s in ("train", "validation", "test")}
    assert {s: len(v) for s, v in by.items()} == SMALL
    train_sentences = {s for u in by["train"] for s in u["sentences"]}
    train_speakers = {u["speaker"] for u in by["train"]}
    for split in ("validation", "test"):
        assert not {s for u in by[split] for s in u["sentences"]} & train_sentences
        assert not {u["speaker"] for u in by[split]} & train_speakers
        assert {u["speaker"] for u in by[split]} <= {f"spk-{v}" for v in _variants(plan, split)}
    # both text sources appear, and utterances join up to three sentences
    assert any(len(u["sentences"]) > 1 for u in plan) and max(len(u["sentences"]) for u in plan) <= 3
    assert plan == corpus_plan(SMALL, seed=3, cache_dir=tmp_path, **HONEST)  # seeded
    assert plan != corpus_plan(SMALL, seed=4, cache_dir=tmp_path, **HONEST)


def _variants(plan, split):
    return {u["variant"].lower() for u in plan if u["split"] == split}


def test_a_full_plan_has_30_training_voices_and_disjoint_held_out_ones(tmp_path):
    plan = corpus_plan({"train": 600, "validation": 60, "test": 120}, seed=0, cache_dir=tmp_path, **HONEST)
    speakers = {s: {u["speaker"] for u in plan if u["split"] == s} for s in ("train", "validation", "test")}
    assert len(speakers["train"]) >= MIN_TRAIN_SPEAKERS
    assert len(speakers["test"]) == HELD_OUT_SPEAKERS["test"] and len(speakers["validation"]) == HELD_OUT_SPEAKERS["validation"]
    assert not (speakers["train"] & speakers["test"]) and not (speakers["train"] & speakers["validation"])


def test_an_overlapping_plan_is_refused_naming_the_overlap(tmp_path):
    plan = corpus_plan(SMALL, seed=3, cache_dir=tmp_path, **HONEST)
    leaked = [dict(u) for u in plan]
    test_row = next(u for u in leaked if u["split"] == "test")
    train_row = next(u for u in leaked if u["split"] == "train")
    test_row["sentences"] = [train_row["sentences"][0]]
    with pytest.raises(ConfigError, match=f"{test_row['utterance_id']} \\(test\\): its sentence .* is also in training"):
        check_held_out(leaked)
    leaked = [dict(u) for u in plan]
    val_row = next(u for u in leaked if u["split"] == "validation")
    val_row["speaker"] = train_row["speaker"]
    with pytest.raises(ConfigError, match=f"its speaker {train_row['speaker']} also speaks in training"):
        check_held_out(leaked)
    check_held_out(leaked, disjoint_speakers=False)  # the template corpus shares its voices by design


def test_the_corpus_report_names_sources_and_out_of_vocabulary_rates(tmp_path):
    root = make_synthetic_corpus(SMALL, seed=5, cache_dir=tmp_path, num_workers=2, **HONEST)
    report = json.loads((root / "corpus.json").read_text())
    assert [s["source"] for s in report["sources"]] == ["templates", "gimp-help-nn"]
    assert report["sources"][1]["licence"] == "GFDL-1.2-or-later"
    test = report["splits"]["test"]
    assert test["speakers"] <= HELD_OUT_SPEAKERS["test"] and test["utterances"] == SMALL["test"]
    assert 0 < test["out_of_vocabulary"]["oov_token_rate"] < 1  # the manual's words are not all in 40 training clips
    rows = [json.loads(l) for l in (root / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == sum(SMALL.values())
    for r in rows:  # lengths follow the plan: silence and pauses included, no clipping
        audio, rate = sf.read(root / r["path"], dtype="float32")
        a = r["acoustics"]
        assert len(audio) / rate > a["lead"] + a["trail"] + sum(a["pauses"])
        assert abs(audio).max() <= 0.99 + 1e-4
    assert sum(bool(r["acoustics"]["noise"]) for r in rows) > 0
    assert not (root / "parts").exists()


def test_text_sources_and_their_errors(tmp_path):
    assert text_sources("templates+gimp-help-nn") == ["templates", "gimp-help-nn"]
    with pytest.raises(ConfigError, match="'wikipedia' is neither a text source"):
        text_sources("templates+wikipedia")
    empty = tmp_path / "mine.txt"
    empty.write_text("The layer dialog.\n12 34 56\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"the text source {empty} has no usable Nynorsk sentence in its 2 lines"):
        corpus_plan(SMALL, seed=0, text=str(empty), speakers="disjoint", acoustics="clean", cache_dir=tmp_path)
    own = tmp_path / "own.txt"
    own.write_text("\n".join(f"Eg har {w} bøker i hylla mi heime." for w in ["to", "tre", "fire", "fem", "seks", "sju",
                                                                            "åtte", "ni", "ti", "elleve"] * 3), encoding="utf-8")
    plan = corpus_plan({"train": 4, "validation": 1, "test": 2}, seed=0, text=str(own), speakers="disjoint", cache_dir=tmp_path)
    assert {u["text"] for u in plan} <= {f"eg har {w} bøker i hylla mi heime" for w in
                                         ["to", "tre", "fire", "fem", "seks", "sju", "åtte", "ni", "ti", "elleve"]}


def test_a_missing_manual_names_its_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NYNORSK_ASR_GIMP_HELP", str(tmp_path / "nowhere"))
    monkeypatch.setattr("nynorsk_asr.texts.GIMP_HELP", {**__import__("nynorsk_asr.texts").texts.GIMP_HELP,
                                                         "dirs": (str(tmp_path / "none"),)})
    with pytest.raises(DataUnavailableError, match="install it with `make gimp-help`.*gimp-help-nn"):
        gimp_help_dir()
    code, out, err = run_main(capsys, "prepare", "--output_dir", tmp_path / "run", "--synth_text", "gimp-help-nn",
                              "--cache_dir", tmp_path / "cache")
    assert code == 3 and "gimp-help-nn" in err and len(err.strip().splitlines()) == 1, err


def test_the_manual_gives_thousands_of_clean_nynorsk_sentences(tmp_path):
    sentences, report = gimp_help_sentences(tmp_path)
    assert report["sentences"] == len(sentences) > 3000 and report["word_types"] > 4000
    assert {"english", "contains_digit", "markup_or_symbols"} <= set(report["dropped"])
    assert all(s == s.lower() and not any(c.isdigit() for c in s) for s in sentences)
    assert not {"the", "and", "ikke"} & {w for s in sentences for w in s.split()}
    assert gimp_help_sentences(tmp_path) == (sentences, report)  # cached


def test_the_outside_set_is_from_neither_source(tmp_path):
    from nynorsk_asr.outside import outside_sentences
    from nynorsk_asr.synth import synthetic_sentences
    sentences = outside_sentences()
    manual = set(gimp_help_sentences(tmp_path)[0])
    templates = set(synthetic_sentences(3000))
    assert len(sentences) == len(set(sentences)) == 40
    assert not set(sentences) & (manual | templates)
    known = {w for s in manual | templates for w in s.split()}
    tokens = [w for s in sentences for w in s.split()]
    assert sum(w not in known for w in tokens) / len(tokens) > 0.2  # words from elsewhere, not recombined ones


def test_the_outside_set_goes_through_the_hf_pipeline(lm_run, capsys):
    code, out, err = run_main(capsys, "evaluate", lm_run, "--outside")
    assert code == 0, err
    result = json.loads((lm_run / "eval" / "outside.json").read_text())
    assert result["all"]["utterances"] == 40 and result["clean"]["utterances"] == result["noisy"]["utterances"] == 20
    assert all(0 <= result[k]["cer"] for k in ("all", "clean", "noisy"))
    assert {u["snr_db"] is None for u in result["utterances"][::2]} == {True}
    assert all(10 <= u["snr_db"] <= 20 for u in result["utterances"][1::2])
    assert "outside set through the HF pipeline: all CER" in out and "eval/outside.json" in out
    # unseen voices: none of the run's training speakers reads them
    from nynorsk_asr.synth import speaker_sets, espeak_variants
    assert {u["speaker"] for u in result["utterances"]} <= {s["speaker"] for s in speaker_sets(espeak_variants(), 42)["test"]}
