"""Preparation on an NPSC raw-layout fixture and a folder corpus: kept rows, report counts, cleaned texts."""
import json, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
from nynorsk_asr.config import load_config
from nynorsk_asr.data import load_npsc_raw
from nynorsk_asr.prep import prepare, prepare_run


def npsc_cfg(root, tmp_path, **kw):
    return load_config("npsc-nynorsk", dataset_name=str(root), output_dir=str(tmp_path / "run"),
                       cache_dir=str(tmp_path / "cache"), **kw)


def test_npsc_raw_loader_selects_nynorsk_and_matches_clips(npsc_root, tmp_path):
    root, expected = npsc_root
    ds, problems = load_npsc_raw(root, "16K_mp3_nynorsk", "train", tmp_path / "cache")
    train_ids = {u for u in expected if u.startswith(("20170110", "20170124"))}
    assert set(ds["utterance_id"]) == train_ids  # Bokmål rows left out, every Nynorsk row present
    assert problems.as_dict() == {"malformed_json_row": {"count": 1, "examples": ["20170110.json:" + str(
        sum(1 for _ in open(root / "data/train/20170110.json")))]}}
    with_path = {r["utterance_id"]: r["audio"]["path"] for r in ds}
    missing = [u for u, (reason, _) in expected.items() if reason == "missing_audio"]
    assert all(with_path[u] is None for u in missing)
    assert all(Path(p).is_file() for u, p in with_path.items() if u not in missing)
    both, _ = load_npsc_raw(root, "16K_mp3", "train", tmp_path / "cache")
    assert len(both) == len(ds) + 1  # the Bokmål row


def test_prepare_npsc_fixture_keeps_good_rows_and_counts_every_drop(npsc_root, tmp_path):
    root, expected = npsc_root
    cfg = npsc_cfg(root, tmp_path)
    data, processor = prepare_run(cfg)
    report = json.loads((tmp_path / "run/prep_report.json").read_text())

    kept = {u: t for u, t in zip(data["train"]["utterance_id"], data["train"]["text"])}
    kept.update(zip(data["eval"]["utterance_id"], data["eval"]["text"]))
    good = {u: text for u, (reason, text) in expected.items() if reason is None}
    assert kept == good  # no good row lost, every cleaned text as expected (train+validation, and test)

    train_and_validation = {u for u in expected if not u.startswith("20170207")}
    assert len(data["train"]) == sum(expected[u][0] is None for u in train_and_validation)
    want = {}
    for u, (reason, _) in expected.items():
        if reason: want[reason] = want.get(reason, 0) + 1
    want["malformed_json_row"] = 1
    assert report["dropped_total_by_reason"] == want
    train_report = report["splits"]["train"]
    assert train_report["rows"] == train_report["kept"] + train_report["dropped"]
    fixed = train_report["fixed_by_kind"]
    assert fixed["downmixed_2ch"]["count"] == 2 and fixed["resampled_from_8000"]["count"] == 2
    assert fixed["unknown_characters_deleted"]["count"] == 2
    corrupt = train_report["dropped_by_reason"]["corrupt_audio"]["examples"]
    assert all(u in expected and expected[u][0] == "corrupt_audio" for u in corrupt)

    # model input: normalised float32 at 16 kHz, input_length in samples
    row = data["train"][0]
    x = np.asarray(row["input_values"], dtype=np.float32)
    assert row["input_length"] == len(x) and abs(x.mean()) < 1e-3 and abs(x.std() - 1) < 1e-2
    # the seed's vocabulary layout
    vocab = json.loads((tmp_path / "run/vocab.json").read_text())
    by_id = sorted(vocab, key=vocab.get)
    assert list(vocab) == by_id and by_id[0] == "|" and by_id[-2:] == ["[UNK]", "[PAD]"]
    assert by_id[1:-2] == sorted(by_id[1:-2]) and len(processor.tokenizer) == len(vocab)
    assert (tmp_path / "run/config.yaml").is_file()


def test_second_prepare_is_served_from_cache(npsc_root, tmp_path, monkeypatch):
    root, _ = npsc_root
    cfg = npsc_cfg(root, tmp_path)
    first = prepare(cfg)
    import nynorsk_asr.prep as prep
    def boom(*a, **k): raise AssertionError("decoded again although the prepared split is cached")
    monkeypatch.setattr(prep, "_prepare_batch", boom)
    second = prepare(cfg)
    assert second["train"]["utterance_id"] == first["train"]["utterance_id"]
    # a changed preparation setting is a different cache entry
    with pytest.raises(AssertionError, match="decoded again"):
        prepare(npsc_cfg(root, tmp_path, max_duration_in_seconds=20.0))


def test_folder_corpus_with_wav_problems(tmp_path):
    rate = 16000
    t = np.arange(2 * rate) / rate
    x = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    sf.write(tmp_path / "ok.wav", x, rate)
    nan = x.copy(); nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, rate, subtype="FLOAT")
    inf = x.copy(); inf[5] = np.inf
    sf.write(tmp_path / "inf.wav", inf, rate, subtype="FLOAT")
    sf.write(tmp_path / "flac44.flac", np.stack([x, x], 1), 44100)
    (tmp_path / "empty.wav").write_bytes(b"")
    wav = (tmp_path / "ok.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(wav[:30])  # header cut in the middle
    rows = [("ok.wav", "Eit godt klipp"), ("nan.wav", "ikkje eit tal"), ("inf.wav", "uendeleg"),
            ("flac44.flac", "Stereo på 44,1 kHz"), ("empty.wav", "tom fil"), ("cut.wav", "kutta fil"),
            ("gone.wav", "borte vekk")]
    (tmp_path / "manifest.jsonl").write_text("".join(
        json.dumps({"path": p, "text": t, "speaker": "s1"}, ensure_ascii=False) + "\n" for p, t in rows) + "{oops\n")
    cfg = load_config("demo", dataset_name=str(tmp_path / "manifest.jsonl"), train_split_name="train",
                      eval_split_name="train", output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    data = prepare(cfg)
    assert data["train"]["text"] == ["eit godt klipp"]  # "44,1" holds digits, the rest are broken
    report = json.loads((tmp_path / "run/prep_report.json").read_text())["splits"]["train"]
    assert {k: v["count"] for k, v in report["dropped_by_reason"].items()} == {
        "non_finite_samples": 2, "contains_digit": 1, "empty_file": 1, "corrupt_audio": 1, "missing_file": 1,
        "malformed_json_row": 1}
    assert report["rows"] == 8 and report["kept"] == 1


def test_cli_prepare_offline(npsc_root, tmp_path):
    root, expected = npsc_root
    n_train = sum(r is None for u, (r, _) in expected.items() if not u.startswith("20170207"))
    n_test = sum(r is None for u, (r, _) in expected.items() if u.startswith("20170207"))
    out = subprocess.run([sys.executable, "-m", "nynorsk_asr.cli", "prepare", "--preset", "npsc-nynorsk",
                          "--dataset_name", str(root), "--output_dir", str(tmp_path / "run"),
                          "--cache_dir", str(tmp_path / "cache")],
                         capture_output=True, text=True, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert "dropped     2 corrupt_audio" in out.stdout and "malformed_json_row" in out.stdout
    assert f"train: {n_train} utterances, eval: {n_test} utterances" in out.stdout
    assert (tmp_path / "run/prep_report.json").is_file() and (tmp_path / "run/vocab.json").is_file()
    bad = subprocess.run([sys.executable, "-m", "nynorsk_asr.cli", "prepare", "--min_duration_in_seconds", "-1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "min_duration_in_seconds=-1" in bad.stderr


def test_hub_route_maps_npsc_parquet_columns(tmp_path, monkeypatch):
    "The hub's parquet conversion cannot be reached here; a stand-in with NPSC's columns checks the mapping and filter."
    import io
    import datasets
    from datasets import Dataset, Features, Value
    buf = io.BytesIO()
    sf.write(buf, np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1, 16000, format="MP3")
    rows = {"sentence_id": [1, 2, 3], "meeting_date": ["20170207"] * 3, "speaker_id": [5, 6, 7],
            "text": ["Eg er her no", "Jeg er her nå", "Du òg, president"],
            "sentence_language_code": ["nn-NO", "nb-NO", "nn-NO"], "audio": [{"bytes": buf.getvalue(), "path": "x.mp3"}] * 3}
    feats = Features({"sentence_id": Value("int64"), "meeting_date": Value("string"), "speaker_id": Value("int64"),
                      "text": Value("string"), "sentence_language_code": Value("string"),
                      "audio": {"bytes": Value("binary"), "path": Value("string")}})
    calls = []
    def fake_load_dataset(name, config=None, split=None, revision=None):
        calls.append((name, config, split, revision))
        return Dataset.from_dict(rows, features=feats)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    cfg = load_config("npsc-nynorsk", output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"),
                      train_split_name="test", eval_split_name="test")
    data = prepare(cfg)
    assert calls[0] == ("NbAiLab/NPSC", "16K_mp3_nynorsk", "test", "refs/convert/parquet")
    assert data["train"]["utterance_id"] == ["20170207_1", "20170207_3"]  # the Bokmål row is filtered out
    assert data["train"]["text"] == ["eg er her no", "du og president"] and data["train"]["speaker"] == ["5", "7"]
    assert abs(data["train"]["duration"][0] - 2.0) < 0.1  # decoded from the parquet bytes


def test_changed_audio_file_invalidates_the_prepared_cache(tmp_path, monkeypatch):
    "Rewriting a clip in place (same name, same size) makes preparation decode again and see the new audio."
    import os, nynorsk_asr.prep as prep
    rate = 16000
    tone = lambda seconds, f: (0.3 * np.sin(2 * np.pi * f * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
    sf.write(tmp_path / "a.wav", tone(2.0, 220), rate)
    sf.write(tmp_path / "b.wav", tone(1.5, 330), rate)
    (tmp_path / "metadata.csv").write_text("file_name,text\na.wav,eg er her\nb.wav,du og\n")
    cfg = load_config("demo", dataset_name=str(tmp_path), train_split_name="train", eval_split_name="train",
                      output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    first = prepare(cfg)["train"]
    assert first["duration"] == pytest.approx([2.0, 1.5])
    calls = []
    real = prep._prepare_batch
    monkeypatch.setattr(prep, "_prepare_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    prepare(cfg)
    assert not calls  # unchanged: served from the cache
    before = os.stat(tmp_path / "a.wav")
    sf.write(tmp_path / "a.wav", tone(2.0, 440), rate)  # new content, same length and size
    os.utime(tmp_path / "a.wav", ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert os.path.getsize(tmp_path / "a.wav") == before.st_size
    second = prepare(cfg)["train"]
    assert calls, "the changed clip was not decoded again"
    new = np.asarray(second[0]["input_values"], np.float32)
    old = np.asarray(first[0]["input_values"], np.float32)
    assert new.shape == old.shape and not np.allclose(new, old)  # the 440 Hz tone, not the cached 220 Hz one


def test_download_npsc_raw_asks_for_one_rate_and_its_files_load(npsc_root, tmp_path, monkeypatch):
    "Against a stand-in for the Hub's snapshot_download that serves the fixture: only one rate's files come, and they load."
    import fnmatch, shutil
    import huggingface_hub
    from nynorsk_asr.data import download_npsc_raw, is_npsc_raw
    root, expected = npsc_root
    hub = tmp_path / "hub"
    shutil.copytree(root, hub)
    (hub / "data" / "train" / "20170110_48K_mp3.tar.gz").write_bytes(b"the 48 kHz clips: not asked for")
    (hub / "README.md").write_text("the dataset card")
    calls = []
    def snapshot_download(repo_id, repo_type=None, revision=None, local_dir=None, allow_patterns=None):
        calls.append((repo_id, repo_type, revision))
        for p in hub.rglob("*"):
            rel = p.relative_to(hub).as_posix()
            if p.is_file() and any(fnmatch.fnmatch(rel, pat) for pat in allow_patterns):
                (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy(p, Path(local_dir) / rel)
        return str(local_dir)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    got = download_npsc_raw("16K_mp3_nynorsk", str(tmp_path / "NPSC"), revision="abc123")
    assert calls == [("NbAiLab/NPSC", "dataset", "abc123")] and is_npsc_raw(got)
    files = {p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()}
    assert not any("48K" in f for f in files) and "README.md" not in files and any(f.endswith("_16K_mp3.tar.gz") for f in files)
    ds, _ = load_npsc_raw(got, "16K_mp3_nynorsk", "train", tmp_path / "cache")
    assert set(ds["utterance_id"]) == {u for u in expected if u.startswith(("20170110", "20170124"))}
    with pytest.raises(Exception, match="not an NPSC config"):
        download_npsc_raw("16K_wav", str(tmp_path / "x"))
