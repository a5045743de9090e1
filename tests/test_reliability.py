"""Fault injection: bad rows, kills at seeded random points, failed commands on a finished run, two processes on
one run directory, a read-only directory, and private values in what a run publishes."""
import json, os, random, signal, stat, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
from test_train import TINY, cli, flags

SEED = 1234  # the kill points are random, and reproducible


def tone(seconds, f=220.0, rate=16000):
    return (0.3 * np.sin(2 * np.pi * f * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def snapshot(run: Path) -> dict:
    "Every file of a run directory with its bytes (the lock file aside: taking it creates it)."
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache):
    "A tiny run trained and evaluated through the CLI, then left alone."
    run = tmp_path_factory.mktemp("finished")
    for cmd in (cli("train", *flags(**TINY, output_dir=run, cache_dir=cache)), cli("evaluate", str(run)), cli("card", str(run))):
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
    return run


def test_manifest_with_every_bad_row_kind(tmp_path):
    "Each row's fate, listed: kept (with its text), renamed, or dropped for a named reason with its line."
    sf.write(tmp_path / "ok.wav", tone(2.0), 16000)
    sf.write(tmp_path / "ok2.wav", tone(1.8, 330), 16000)
    sf.write(tmp_path / "whole.wav", tone(2.0, 440), 16000)
    wav = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(wav[:44 + (len(wav) - 44) * 3 // 10])  # header intact, 30% of the samples
    lines = [
        b'{"id": "a", "path": "ok.wav", "text": "eg er her"}',                  # 1 kept
        b'{"id": "b", "path": "ok2.wav", "text": "d\xf8r er open"}',              # 2 not UTF-8 (Latin-1)
        b'["ok.wav", "ein liste, ikkje eit objekt"]',                          # 3 JSON, not an object
        b'{"id": "c", "path": "cut.wav", "text": "dette klippet er kutta av"}',  # 4 truncated WAV
        b'{"id": "a", "path": "ok.wav", "text": "eg er her"}',                  # 5 a copy of line 1
        b'{"id": "a", "path": "ok2.wav", "text": "ho kjem no"}',                # 6 same id, other clip: renamed a#2
        b'{"id": "d", "path": "ok.wav"}',                                        # 7 no transcript
        b'{"id": "e", "path": "gone.wav", "text": "borte"}',                    # 8 missing file
        b'{oops',                                                                 # 9 not JSON
    ]
    (tmp_path / "metadata.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    from nynorsk_asr.config import load_config
    from nynorsk_asr.prep import prepare
    cfg = load_config("demo", dataset_name=str(tmp_path), train_split_name="train", eval_split_name="train",
                      output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    data = prepare(cfg)["train"]
    assert dict(zip(data["utterance_id"], data["text"])) == {"a": "eg er her", "a#2": "ho kjem no"}
    report = json.loads((tmp_path / "run/prep_report.json").read_text())["splits"]["train"]
    assert {k: v["examples"] for k, v in report["dropped_by_reason"].items()} == {
        "not_utf8": ["metadata.jsonl:2 (byte 41: b'\\xf8r e')"], "row_not_an_object": ["metadata.jsonl:3 (a JSON list)"],
        "truncated_audio": ["c"], "duplicate_row": ["a"], "row_without_text": ["metadata.jsonl:7"],
        "missing_file": ["e"], "malformed_json_row": ["metadata.jsonl:9"]}
    assert report["fixed_by_kind"]["duplicate_id_renamed"] == {"count": 1, "examples": ["a#2"]}
    assert report["rows"] == 9 and report["kept"] == 2 and report["dropped"] == 7


def test_kill_during_prepare_then_rerun(tmp_path):
    "kill -9 at random points of a cold preparation (synthesis, decoding, cache writes): the rerun's data is the unbroken one's."
    rng = random.Random(SEED)
    small = dict(synth_train_size=60, synth_validation_size=8, synth_test_size=8)
    ref = tmp_path / "ref"
    out = subprocess.run(cli("prepare", *flags(**small, output_dir=ref, cache_dir=tmp_path / "refcache")), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    run, cache = tmp_path / "run", tmp_path / "cache"
    cmd = cli("prepare", *flags(**small, output_dir=run, cache_dir=cache))
    for _ in range(3):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(2.0, 9.0))
        os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    # timings differ, and fingerprints name each cache's own files
    volatile = ("prep_seconds", "audio_seconds_per_second", "fingerprint", "corpus_fingerprint")
    strip = lambda r: {s: {k: v for k, v in sec.items() if k not in volatile}
                       for s, sec in json.loads(r.read_text())["splits"].items()}
    assert strip(run / "prep_report.json") == strip(ref / "prep_report.json")
    assert (run / "vocab.json").read_bytes() == (ref / "vocab.json").read_bytes()
    from nynorsk_asr.config import load_run_config
    from nynorsk_asr.prep import prepare
    a, b = prepare(load_run_config(run), write_report=False), prepare(load_run_config(ref), write_report=False)
    for split in ("train", "eval"):
        assert a[split]["utterance_id"] == b[split]["utterance_id"] and a[split]["text"] == b[split]["text"]
        assert all(np.array_equal(x, y) for x, y in zip(a[split].with_format("numpy")["input_values"],
                                                        b[split].with_format("numpy")["input_values"]))
    assert not list((cache / "prepared").glob("*.tmp*"))  # what the kills left was cleaned up


def test_kill_during_training_then_resume_gives_the_unbroken_result(tmp_path, cache, finished):
    "kill -9 at a random logged step after a random checkpoint; the resumed run ends where an unbroken run ends."
    rng = random.Random(SEED + 1)
    run = tmp_path / "run"
    cmd = cli("train", *flags(**TINY, output_dir=run, cache_dir=cache))
    from nynorsk_asr.train import last_complete_checkpoint
    after = rng.choice([10, 20])
    # the kill waits for a progress line, not a time: a sleep after the checkpoint raced a fast machine to the end
    kill_at = rng.choice(range(after + TINY["logging_steps"], TINY["max_steps"], TINY["logging_steps"]))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    deadline, seen = time.time() + 300, []
    while time.time() < deadline and (line := proc.stdout.readline()):
        seen.append(line)
        if line.startswith(f"step {kill_at}/"): break
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    assert seen and seen[-1].startswith(f"step {kill_at}/"), seen[-5:]
    assert int(last_complete_checkpoint(run).name.split("-")[1]) >= after
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    evals = lambda r: [(h["step"], round(h["eval_wer"], 6), round(h["eval_cer"], 6), round(h["eval_loss"], 4))
                       for h in json.loads((r / "trainer_state.json").read_text())["log_history"] if "eval_wer" in h]
    assert evals(run) == evals(finished)
    record = json.loads((run / "train_record.json").read_text())
    inv = record["invocations"]
    assert len(inv) == 2 and inv[0]["start_step"] == 0 and not inv[0]["finished"] and inv[1]["finished"]
    assert inv[1]["start_step"] == inv[0]["end_step"] >= after and inv[1]["end_step"] == TINY["max_steps"]
    assert record["wall_seconds"] == pytest.approx(sum(i["wall_seconds"] for i in inv), abs=0.2)
    assert record["resumed_from"] == f"checkpoint-{inv[1]['start_step']}"


def test_rerun_of_a_finished_run_changes_nothing(finished, cache):
    before = snapshot(finished)
    out = subprocess.run(cli("train", *flags(**TINY, output_dir=finished, cache_dir=cache)), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "is finished (step 30); nothing to do" in out.stdout
    assert snapshot(finished) == before


@pytest.mark.parametrize("args,code,says", [
    (["prepare", "--dataset_name", "/no/such/dir"], 2, "differs in dataset_name ('synthetic' -> '/no/such/dir')"),
    (["train", "--learning_rate", "0.5"], 2, "differs in learning_rate (0.0014 -> 0.5); these cannot change"),
    (["train", "--max_steps", "60"], 2, "--allow_changes max_steps"),
    (["prepare", "--config_file", "/no/such.yaml"], 2, "config file /no/such.yaml does not exist"),
])
def test_failed_command_leaves_a_finished_run_byte_identical(finished, cache, args, code, says):
    before = snapshot(finished)
    base = {**TINY, "output_dir": finished, "cache_dir": cache}
    for k in [a.lstrip("-") for a in args[1::2]]: base.pop(k, None)
    out = subprocess.run(cli(*args[:1], *flags(**base), *args[1:]), capture_output=True, text=True)
    assert out.returncode == code, (out.returncode, out.stderr[-2000:])
    assert says in out.stderr and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert snapshot(finished) == before


def test_errors_are_one_line_with_their_own_exit_status(tmp_path, finished):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("learning_rate: [1e-3\n")
    cases = [(cli("prepare", "--config_file", str(bad_yaml), "--output_dir", str(tmp_path / "r1")), 2, "is not valid YAML at line"),
             (cli("prepare", "--dataset_name", str(tmp_path / "nothing"), "--output_dir", str(tmp_path / "r2")), 2, "no such file or folder"),
             (cli("evaluate", str(tmp_path)), 4, "a run directory (made by"),
             (cli("card", str(tmp_path)), 4, "config.yaml is missing"),
             (cli("prepare", "--preset", "npsc-nynorsk", "--output_dir", str(tmp_path / "r3"), "--cache_dir", str(tmp_path / "c")),
              7, "could not reach the Hugging Face hub")]
    for cmd, code, says in cases:
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert out.returncode == code and says in out.stderr, (cmd, out.returncode, out.stderr[-1500:])
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr[-1500:]
    debug = subprocess.run([*cli("--debug", "evaluate", str(tmp_path))], capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_second_process_on_a_run_directory_is_told_who_holds_it(tmp_path, cache):
    run = tmp_path / "run"
    first = subprocess.Popen(cli("train", *flags(**{**TINY, "max_steps": 200}, output_dir=run, cache_dir=cache)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / ".lock.json").is_file(): time.sleep(0.1)
        out = subprocess.run(cli("train", *flags(**{**TINY, "max_steps": 200}, output_dir=run, cache_dir=cache)),
                             capture_output=True, text=True)
        assert out.returncode == 6, out.stderr[-2000:]
        assert f"is in use by process {first.pid} (nynorsk-asr" in out.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL); first.wait()



def test_read_only_run_directory(tmp_path, cache):
    "A folder the process may not write: one line naming it, exit status 5 (root ignores permissions: a read-only bind is used then)."
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        # root writes through permission bits; a read-only filesystem stops it too
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True)
        if mounted.returncode != 0: pytest.skip("root, and no read-only mount available here")
    else:
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        out = subprocess.run(cli("prepare", *flags(synth_train_size=20, synth_validation_size=4, synth_test_size=4,
                                                   output_dir=ro / "run", cache_dir=cache)), capture_output=True, text=True)
        assert out.returncode == 5, (out.returncode, out.stderr[-2000:])
        assert str(ro / "run") in out.stderr and "Traceback" not in out.stderr
    finally:
        if os.geteuid() == 0: subprocess.run(["umount", str(ro)])
        else: ro.chmod(stat.S_IRWXU)


def test_published_files_hold_no_private_values(tmp_path, cache, monkeypatch):
    "A run on a dataset under a private folder, with HF_TOKEN set: no published file holds the path or the token."
    private = tmp_path / "home" / "kari" / "private-data"
    private.mkdir(parents=True)
    rows = []
    for i, text in enumerate(["eg er her", "du og eg", "vi tek ordet", "ho kjem no", "det er fint"] * 4):
        sf.write(private / f"c{i}.wav", tone(1.5 + 0.1 * i, 150 + 20 * i), 16000)
        rows.append({"path": f"c{i}.wav", "text": text, "split": "train" if i < 16 else "test"})
    (private / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    token = "hf_" + "x" * 34
    run = tmp_path / "run"
    env = {**os.environ, "HF_TOKEN": token}
    for cmd in (cli("train", *flags(**{**TINY, "max_steps": 4, "eval_steps": 2, "save_steps": 2}, dataset_name=private,
                                    train_split_name="train", eval_split_name="test", output_dir=run, cache_dir=cache)),
                cli("evaluate", str(run)), cli("card", str(run))):
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
    published = [run / "README.md", run / "train_record.json", run / "prep_report.json", *run.glob("eval/*.json"),
                 run / "config.json", run / "trainer_state.json"]
    for p in published:
        text = p.read_text(errors="replace")
        assert str(tmp_path) not in text and "kari" not in text, p.name
        assert token not in text, p.name
    assert "private-data" in (run / "README.md").read_text()  # named by its folder's name only
