"""Fault injection: bad rows, kills at seeded random points, failed commands on a finished run, two processes on
one run directory, a read-only directory, and private values in what a run publishes."""
import json, os, random, shutil, signal, stat, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import soundfile as sf
from conftest import TINY, cli, flags, one_line_error, run_main, snapshot, tone

SEED = 1234  # the kill points are random, and reproducible


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


@pytest.mark.slow
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
    "kill -9 at a random logged step after a random checkpoint (and a half-written later one): the resumed run ends where an unbroken run ends."
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
    last = last_complete_checkpoint(run)
    assert int(last.name.split("-")[1]) >= after
    # what a kill in the middle of a save leaves: a higher-numbered checkpoint with part of its files
    broken = run / f"checkpoint-{int(last.name.split('-')[1]) + TINY['save_steps']}"
    broken.mkdir(exist_ok=True); (broken / "model.safetensors").write_bytes(b"half a file")
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resuming from {last}" in out.stdout and (run / f"incomplete-{broken.name}").is_dir()
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# --- the second probe: hostile and careless use of a finished run (each case failed before it was mended) ---

@pytest.fixture(scope="module")
def with_lm(finished, tmp_path_factory):
    "The finished tiny run with its LM, evaluated with both decoders, and its card."
    run = tmp_path_factory.mktemp("withlm") / "run"
    shutil.copytree(finished, run, ignore=shutil.ignore_patterns("checkpoint-*"))
    for cmd in (cli("lm", str(run)), cli("evaluate", str(run), "--decoder", "both"), cli("card", str(run))):
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
    return run


@pytest.fixture
def copy_run(with_lm, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(with_lm, dest)
    return dest


def listed(stdout: str) -> list[str]:
    return [line.split()[-1] for line in stdout.splitlines() if line.startswith("  ") and len(line.split()) == 3]


def test_push_sends_regular_files_of_the_run_only_judged_by_their_bytes(copy_run, tmp_path, capsys):
    "Links out of the run (a token behind a .png name, a password behind a .json), a pickle named .png: all stay."
    import pickle, struct, zlib
    secret = tmp_path / "secret.txt"; secret.write_text("hf_abcdefghijklmnopqrstuvwxyz1234\n")
    creds = tmp_path / "creds.json"; creds.write_text(json.dumps({"password": "hunter2hunter2"}))
    (copy_run / "plots" / "evil.png").symlink_to(secret)
    (copy_run / "eval" / "creds.json").symlink_to(creds)
    (copy_run / "plots" / "linked").symlink_to(tmp_path, target_is_directory=True)
    (copy_run / "plots" / "p0.png").write_bytes(pickle.dumps({"a": 1}, protocol=0))
    code, out, err = run_main(capsys, "push", copy_run, "--repo_id", "kari/test", "--dry_run")
    assert code == 0, err
    sent = listed(out)
    for bad in ("plots/evil.png", "eval/creds.json", "plots/p0.png"): assert bad not in sent, bad
    assert not any(f.startswith("plots/linked") for f in sent)
    from nynorsk_asr.publish import select_files
    keep = select_files(copy_run)[1]
    assert keep["plots/evil.png"].startswith("symbolic link") and keep["plots/linked"].startswith("symbolic link")
    assert keep["plots/p0.png"] == "bytes are not a PNG image"
    # a token-shaped string inside a real PNG (a binary file) is found by the scan
    def chunk(kind, data): return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)) +
           chunk(b"tEXt", b"Comment\x00hf_abcdefghijklmnopqrstuvwxyz1234") + chunk(b"IDAT", zlib.compress(b"\x00\x00")) +
           chunk(b"IEND", b""))
    (copy_run / "plots" / "note.png").write_bytes(png)
    code, out, err = run_main(capsys, "push", copy_run, "--repo_id", "kari/test", "--dry_run")
    one_line_error(err, 8, "plots/note.png", "token-shaped string")
    assert code == 8


def test_transcribe_never_writes_into_the_run_and_names_each_input_once(with_lm, tmp_path, capsys):
    before = snapshot(with_lm)
    audio = tmp_path / "audio"; audio.mkdir()
    sf.write(audio / "config.wav", tone(1.5), 16000)
    for target in (with_lm, with_lm / "eval", with_lm / "language_model"):
        code, out, err = run_main(capsys, "transcribe", with_lm, audio / "config.wav", "--output_dir", target)
        one_line_error(err, 2, "--output_dir", "never replace")
        assert code == 2 and "file(s)" not in out  # refused before the model loads
    assert snapshot(with_lm) == before
    for d in ("d1", "d2"): (tmp_path / d).mkdir(); sf.write(tmp_path / d / "a.wav", tone(1.0 + len(d) * 0.1), 16000)
    sf.write(tmp_path / "a-2.wav", tone(2.5), 16000)
    out_dir = tmp_path / "out"
    code, out, err = run_main(capsys, "transcribe", with_lm, tmp_path / "d1/a.wav", tmp_path / "d2/a.wav",
                              tmp_path / "a-2.wav", "--output_dir", out_dir, "--format", "json")
    assert code == 0, err
    seconds = {p.stem: json.loads(p.read_text())["audio_seconds"] for p in out_dir.glob("*.json")}
    assert seconds == {"a": 1.2, "a-3": 1.2, "a-2": 2.5}, seconds


def test_scores_of_another_model_are_never_published(copy_run, tmp_path, capsys):
    "Evaluate waits for the lock; card and push refuse scores whose model or LM fingerprint is not the run's now."
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from nynorsk_asr.rundir import run_lock\n"
                               "with run_lock(sys.argv[1], 'nynorsk-asr train'):\n print('held', flush=True); time.sleep(60)",
                               str(copy_run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out, err = run_main(capsys, "evaluate", copy_run)
        one_line_error(err, 6, "nynorsk-asr train")
        assert code == 6
    finally: holder.kill(); holder.wait()
    from safetensors.torch import load_file, save_file
    weights = load_file(copy_run / "model.safetensors")
    name = next(iter(weights)); weights[name] = weights[name] + 1.0
    save_file(weights, copy_run / "model.safetensors", metadata={"format": "pt"})  # new weights, old scores
    for cmd in (("card", copy_run), ("push", copy_run, "--repo_id", "kari/t", "--dry_run")):
        code, out, err = run_main(capsys, *cmd)
        one_line_error(err, 4, "scores another model", "nynorsk-asr evaluate")
        assert code == 4
    code, out, err = run_main(capsys, "evaluate", copy_run, "--decoder", "both")
    assert code == 0, err
    (copy_run / "language_model" / "unigrams.txt").write_text("ein\nto\n")
    shutil.copy(copy_run / "language_model" / "5gram.bin", tmp_path / "lm.bin")
    with open(copy_run / "language_model" / "5gram.bin", "ab") as f: f.write(b"\0" * 64)  # another LM binary (it still loads)
    code, out, err = run_main(capsys, "card", copy_run)
    if code == 0:  # KenLM may refuse the longer file itself; either way the old LM scores are not published
        pytest.fail("card accepted LM scores of another language model")
    assert code == 4 and ("another language model" in err or "does not load" in err), err
    shutil.copy(tmp_path / "lm.bin", copy_run / "language_model" / "5gram.bin")
    code, out, err = run_main(capsys, "card", copy_run)
    assert code == 0, err


def test_partial_evaluation_never_replaces_the_splits_result(copy_run, capsys):
    whole = (copy_run / "eval" / "test_greedy.json").read_bytes()
    code, out, err = run_main(capsys, "evaluate", copy_run, "--max_samples", 2)
    assert code == 0, err
    assert "the first ones only" in out and (copy_run / "eval" / "test_greedy_first2.json").is_file()
    assert (copy_run / "eval" / "test_greedy.json").read_bytes() == whole
    code, out, err = run_main(capsys, "card", copy_run)
    assert code == 0, err
    from huggingface_hub import ModelCard
    n = json.loads(whole)["utterances_evaluated"]
    assert f"({n} utterances" in (copy_run / "README.md").read_text() and "(2 utterances" not in (copy_run / "README.md").read_text()
    for bad in ("-3", "0"):
        code, out, err = run_main(capsys, "evaluate", copy_run, "--max_samples", bad)
        one_line_error(err, 2, "--max_samples"); assert code == 2


def truncate(path: Path, keep: float = 0.5):
    data = path.read_bytes(); path.write_bytes(data[:int(len(data) * keep)])


@pytest.mark.parametrize("damage, commands, says", [
    ("truncate model.safetensors", ["evaluate", "lm", "transcribe", "push"], "model.safetensors is damaged"),
    ("remove config.json", ["evaluate", "transcribe", "push"], "config.json is missing"),
    ("drop y from vocab.json", ["evaluate", "transcribe", "lm"], "vocab.json has"),
    ("truncate language_model/5gram.bin", ["evaluate --decoder lm", "transcribe", "push"], "5gram.bin"),
    ("garble alphabet.json", ["evaluate --decoder lm", "transcribe"], "alphabet.json"),
    ("empty eval/test_greedy.json", ["card", "push"], "test_greedy.json is not JSON"),
])
def test_damaged_run_files_are_one_line_naming_the_file_and_the_way_out(copy_run, tmp_path, capsys, damage, commands, says):
    how, rel = damage.split(" ", 1) if not damage.startswith("drop") else ("drop", "vocab.json")
    target = copy_run / rel
    if how == "truncate": truncate(target)
    elif how == "remove": target.unlink()
    elif how == "drop": vocab = json.loads(target.read_text()); del vocab["y"]; target.write_text(json.dumps(vocab))
    elif how == "garble": target.write_text("{not json")
    elif how == "empty": target.write_text("")
    sf.write(tmp_path / "clip.wav", tone(1.5), 16000)
    before = snapshot(copy_run)
    for command in commands:
        cmd, *extra = command.split()
        args = {"evaluate": [copy_run, *extra], "lm": [copy_run], "card": [copy_run],
                "transcribe": [copy_run, tmp_path / "clip.wav", "--output_dir", tmp_path / "out"],
                "push": [copy_run, "--repo_id", "kari/t", "--dry_run"]}[cmd]
        code, out, err = run_main(capsys, cmd, *args)
        assert err.strip(), (command, code, out)
        line = one_line_error(err, 4, says)
        assert code == 4, (command, code, line)
        assert "nynorsk-asr" in line.split("error: ", 1)[1] or "restore" in line or "remove" in line, line  # the way out
    assert snapshot(copy_run) == before, "a refused command changed the run"


@pytest.mark.parametrize("flags_, says", [
    (["--batch_size", "0"], "batch_size"), (["--batch_size", "-2"], "batch_size"),
    (["--chunk_length_s", "0"], "chunk_length_s"), (["--chunk_length_s", "-5"], "chunk_length_s"),
    (["--chunk_length_s", "7"], "more than twice"), (["--chunk_length_s", "nan"], "chunk_length_s"),
    (["--chunk_length_s", "inf"], "chunk_length_s"), (["--stride_length_s", "-1", "--chunk_length_s", "4", "--vad", "none"], "stride_length_s"),
    (["--pad_variants", "0"], "pad_variants"), (["--pad_variants", "9"], "pad_variants"),
])
def test_transcribe_settings_are_checked_before_any_work(with_lm, tmp_path, capsys, flags_, says):
    sf.write(tmp_path / "clip.wav", tone(1.5), 16000)
    code, out, err = run_main(capsys, "transcribe", with_lm, tmp_path / "clip.wav", "--output_dir", tmp_path / "out", *flags_)
    one_line_error(err, 2, says)
    assert code == 2 and "file(s)" not in out and not (tmp_path / "out").exists()


@pytest.mark.parametrize("key, value, says", [
    ("learning_rate", "inf", "finite"), ("learning_rate", "nan", "finite"), ("seed", "-1", "seed"),
    ("seed", "99999999999999999999999", "seed"), ("warmup_steps", "-3", "warmup_steps"),
])
def test_train_settings_are_checked_before_any_work(tmp_path, capsys, key, value, says):
    code, out, err = run_main(capsys, "train", "--output_dir", tmp_path / "run", f"--{key}", value)
    one_line_error(err, 2, says)
    assert code == 2 and not (tmp_path / "run").exists()


def mount_tmpfs(path: Path, options: str) -> bool:
    "A tmpfs at `path` (root only); False where it cannot be mounted."
    path.mkdir(parents=True, exist_ok=True)
    return os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                                                capture_output=True).returncode == 0


def test_write_failures_are_exit_5_before_the_work_and_leave_nothing(with_lm, tmp_path, capsys):
    "A read-only or full output folder, a file given as the folder, a read-only run: exit 5, one line, no temporary file."
    clips = []
    for i in range(2):
        clips.append(tmp_path / f"c{i}.wav"); sf.write(clips[-1], tone(2.0 + i), 16000)
    (tmp_path / "a-file").write_text("x")
    code, out, err = run_main(capsys, "transcribe", with_lm, *clips, "--output_dir", tmp_path / "a-file")
    one_line_error(err, 5, "a-file", "not a folder"); assert code == 5 and "file(s)" not in out
    ro, full, ro_run = tmp_path / "ro", tmp_path / "full", tmp_path / "rorun"
    if not (mount_tmpfs(ro, "ro,size=1m") and mount_tmpfs(full, "size=4k") and mount_tmpfs(ro_run, "size=64m")):
        pytest.skip("needs root and tmpfs mounts for a read-only and a full disk")
    try:
        code, out, err = run_main(capsys, "transcribe", with_lm, *clips, "--output_dir", ro)
        one_line_error(err, 5, str(ro)); assert code == 5 and "file(s)" not in out
        (full / "filler").write_bytes(b"x" * 4096)  # the disk is full: the (empty) probe fits, the transcripts do not
        code, out, err = run_main(capsys, "transcribe", with_lm, *clips, "--output_dir", full, "--format", "json")
        line = one_line_error(err, 5, "2 of 2 input(s)", "c0.wav", "c1.wav")  # the second input was tried after the first failed
        assert code == 5, line
        assert sorted(p.name for p in full.iterdir()) == ["filler"], "a temporary file was left behind"
        shutil.copytree(with_lm, ro_run / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(ro_run)], check=True)
        for cmd in (("evaluate", ro_run / "run"), ("card", ro_run / "run")):
            code, out, err = run_main(capsys, *cmd)
            one_line_error(err, 5, str(ro_run / "run"), "a copy of the run"); assert code == 5, cmd
    finally:
        for m in (ro, full, ro_run): subprocess.run(["umount", str(m)], capture_output=True)


def test_header_decides_before_decoding(tmp_path):
    "A 31-minute clip is dropped as too long without being decoded; a header claiming 2 Hz is refused, not resampled."
    import tracemalloc
    from nynorsk_asr.prep import decode_audio
    sf.write(tmp_path / "long.wav", np.zeros(31 * 60 * 8000, np.int16), 8000, subtype="PCM_16")
    tracemalloc.start()
    x, fixes, reason = decode_audio({"path": str(tmp_path / "long.wav"), "bytes": None}, 16000, max_seconds=30.0)
    peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    assert reason == "too_long" and peak < 5e6, (reason, peak)
    sf.write(tmp_path / "two-hz.wav", (np.sin(np.arange(70000)) * 1000).astype(np.int16), 2, subtype="PCM_16")
    tracemalloc.start()
    x, fixes, reason = decode_audio({"path": str(tmp_path / "two-hz.wav"), "bytes": None}, 16000, max_seconds=30.0)
    peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    assert reason == "bad_sample_rate" and peak < 5e6, (reason, peak)


def test_shared_manifest_counts_each_unreadable_line_once(tmp_path):
    rows = [b'{"path": "c%d.wav", "text": "eg er her no", "split": "%s"}' % (i, s)
            for i, s in enumerate([b"train"] * 4 + [b"validation"] * 2 + [b"test"] * 2)]
    for i in range(8): sf.write(tmp_path / f"c{i}.wav", tone(1.5 + 0.1 * i), 16000)
    (tmp_path / "metadata.jsonl").write_bytes(b"\n".join(rows[:3] + [b"{oops"] + rows[3:6] + [b"[1, 2]"] + rows[6:]) + b"\n")
    from nynorsk_asr.config import load_config
    from nynorsk_asr.prep import prepare_splits
    cfg = load_config("demo", dataset_name=str(tmp_path), output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"),
                      train_split_name="train+validation", eval_split_name="test")
    _, reports = prepare_splits(cfg)
    assert sum(r["rows"] for r in reports.values()) == 10  # the manifest's 10 lines, each counted once
    assert reports["train"]["dropped_by_reason"]["malformed_json_row"]["count"] == 1
    assert "malformed_json_row" not in reports["test"]["dropped_by_reason"]


def test_fifo_and_odd_file_names(with_lm, tmp_path):
    "A FIFO is named and skipped (never opened), the next file is done; a WAV whose name is not UTF-8 is transcribed."
    fifo = tmp_path / "a.wav"; os.mkfifo(fifo)
    sf.write(tmp_path / "b.wav", tone(1.5), 16000)
    odd = os.fsdecode(bytes(tmp_path / "f") + b"\xf8r.wav")
    with open(odd, "wb") as f: sf.write(f, tone(1.5), 16000, format="WAV")
    out = subprocess.run(cli("transcribe", str(with_lm), str(fifo), str(tmp_path / "b.wav"), odd, "--output_dir",
                             str(tmp_path / "out")), capture_output=True, text=True, timeout=300)
    assert out.returncode == 3, out.stderr[-2000:]
    assert "a.wav: not a regular file" in out.stderr.strip().splitlines()[-1] and "1 of 3 input(s)" in out.stderr
    assert (tmp_path / "out" / "b.json").is_file()
    assert json.loads((tmp_path / "out" / (Path(odd).stem + ".json")).read_bytes())["audio"] == "f\ufffdr.wav"


def test_hand_edited_card_is_not_replaced_by_push(copy_run, capsys):
    card = copy_run / "README.md"
    card.write_text(card.read_text() + "\nA note the author added by hand.\n")
    edited = card.read_bytes()
    code, out, err = run_main(capsys, "push", copy_run, "--repo_id", "kari/t", "--dry_run")
    one_line_error(err, 2, "edited by hand", "--keep_card"); assert code == 2
    assert card.read_bytes() == edited
    code, out, err = run_main(capsys, "push", copy_run, "--repo_id", "kari/t", "--dry_run", "--keep_card")
    assert code == 0 and "README.md" in listed(out) and card.read_bytes() == edited, err


def test_prepare_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    for name, text in (("config.yaml", "project: my thesis\n"), ("vocab.json", '{"a": 0}')):
        folder = tmp_path / name.split(".")[0]; folder.mkdir(); (folder / name).write_text(text)
        code, out, err = run_main(capsys, "prepare", "--output_dir", folder, "--synth_train_size", "8")
        one_line_error(err, 4, name, "--output_dir"); assert code == 4
        assert (folder / name).read_text() == text


def test_alphabet_in_another_order_says_so(copy_run, capsys):
    alphabet = json.loads((copy_run / "alphabet.json").read_text())
    labels = alphabet["labels"]; i, j = labels.index("a"), labels.index("b"); labels[i], labels[j] = labels[j], labels[i]
    (copy_run / "alphabet.json").write_text(json.dumps(alphabet))
    code, out, err = run_main(capsys, "evaluate", copy_run, "--decoder", "lm")
    one_line_error(err, 2, "in another order"); assert code == 2
