"""`nynorsk-asr push`: what a trained run would publish, the privacy scan, the card, and every refusal, on real run
directories. The Hub itself is out of reach: the upload is checked against a stand-in API and an unreachable endpoint."""
import json, os, shutil, subprocess
from pathlib import Path
import pytest
from huggingface_hub import ModelCard
from conftest import TINY, cli, flags

TINY_PUSH = {**TINY, "max_steps": 6, "eval_steps": 3, "save_steps": 3}
# every file of a trained, evaluated run that a model repository holds (no LM in this run)
EXPECTED = ["README.md", "config.json", "config.yaml", "eval/test_greedy.json", "model.safetensors",
            "plots/training_curves.png", "prep_report.json", "preprocessor_config.json", "processor_config.json",
            "tokenizer_config.json", "train_record.json", "trainer_state.json", "vocab.json"]


def run_cli(*args, env=None):
    return subprocess.run(cli(*args), capture_output=True, text=True, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache):
    run = tmp_path_factory.mktemp("push") / "tiny-nynorsk"
    for args in (("train", *flags(**TINY_PUSH, output_dir=run, cache_dir=cache)), ("evaluate", str(run))):
        out = run_cli(*args)
        assert out.returncode == 0, out.stderr[-3000:]
    (run / "train.ipynb").write_text(json.dumps({"cells": [], "source": str(run)}))  # an executed notebook: stays
    return run


@pytest.fixture
def copy_of(trained, tmp_path):
    "A private copy of the trained run, for tests that change it."
    dest = tmp_path / trained.name
    shutil.copytree(trained, dest)
    return dest


def listed_files(stdout: str) -> list[str]:
    "The file names of a push listing ('  <size> <unit>  <path>' lines)."
    return [line.split()[-1] for line in stdout.splitlines() if line.startswith("  ") and len(line.split()) == 3]


def test_dry_run_lists_exactly_the_model_repository_files(trained):
    out = run_cli("push", str(trained), "--repo_id", "kari/tiny-nynorsk", "--dry_run")
    assert out.returncode == 0, out.stderr
    assert listed_files(out.stdout) == EXPECTED
    assert "(private)" in out.stdout and "no local paths, secrets or e-mail addresses" in out.stdout
    kept = out.stdout.split("kept back: ")[1].splitlines()[0]
    assert "checkpoint" in kept and "pickle" in kept and "executed notebook" in kept, kept
    # what stays: every checkpoint file, training_args.bin, the notebook
    assert any(p.name == "optimizer.pt" for p in trained.glob("checkpoint-*/*")) and (trained / "training_args.bin").is_file()
    assert not list(trained.glob(".push-*")), "the staging folder was left behind"


def test_first_push_writes_the_card_and_a_changed_run_regenerates_it(copy_of):
    (copy_of / "README.md").unlink(missing_ok=True)
    out = run_cli("push", str(copy_of), "--repo_id", "kari/tiny-nynorsk", "--dry_run")
    assert out.returncode == 0 and "README.md written" in out.stdout, out.stdout + out.stderr
    again = run_cli("push", str(copy_of), "--repo_id", "kari/tiny-nynorsk", "--dry_run")
    assert "README.md" in again.stdout and "regenerated" not in again.stdout and "written" not in again.stdout
    assert run_cli("evaluate", str(copy_of), "--split", "validation").returncode == 0  # the run changes
    third = run_cli("push", str(copy_of), "--repo_id", "kari/tiny-nynorsk", "--dry_run")
    assert "regenerated: the run changed since it was written" in third.stdout
    assert "eval/validation_greedy.json" in listed_files(third.stdout)
    assert "validation" in ModelCard.load(copy_of / "README.md").content.lower()


def test_planted_path_and_token_are_refused_naming_both(copy_of, tmp_path):
    token = "hf_" + "Q7" * 17
    record = json.loads((copy_of / "train_record.json").read_text())
    record["note"] = f"data from {tmp_path}/recordings"
    (copy_of / "train_record.json").write_text(json.dumps(record, indent=1))
    result = json.loads((copy_of / "eval" / "test_greedy.json").read_text())
    (copy_of / "eval" / "test_greedy.json").write_text(json.dumps({**result, "pushed_with": token}, indent=1))
    out = run_cli("push", str(copy_of), "--repo_id", "kari/tiny-nynorsk", "--dry_run", env={"HF_TOKEN": token})
    assert out.returncode == 8, out.stdout + out.stderr
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "train_record.json:line" in err and f"{tmp_path}/recordings" in err  # the path is shown: it is the user's own
    assert "eval/test_greedy.json:line" in err and "value of $HF_TOKEN" in err and token not in err  # the token is not
    ok = run_cli("push", str(copy_of), "--repo_id", "kari/tiny-nynorsk", "--dry_run", "--override_privacy_scan",
                 env={"HF_TOKEN": token})
    assert ok.returncode == 0 and "privacy scan overridden" in ok.stdout


class RecordingApi:
    "Stands in for huggingface_hub.HfApi; keeps the staged folder's files as upload_folder saw them."
    def __init__(self, exists=False, private=True): self.calls, self.exists, self.private = [], exists, private
    def repo_exists(self, repo_id, **kw): return self.exists
    def repo_info(self, repo_id, **kw): return type("Info", (), {"private": self.private})()
    def create_repo(self, repo_id, **kw): self.calls.append(("create_repo", kw)); return f"https://huggingface.co/{repo_id}"
    def create_branch(self, repo_id, **kw): self.calls.append(("create_branch", kw))
    def upload_folder(self, **kw):
        folder = Path(kw["folder_path"])
        self.files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        self.calls.append(("upload_folder", kw))
        return type("Commit", (), {"commit_url": "https://huggingface.co/kari/x/commit/1"})()


def test_upload_sends_the_listed_files_and_the_card_loads(trained, tmp_path):
    from nynorsk_asr.publish import push_run
    api = RecordingApi()
    summary = push_run(trained, "kari/tiny-nynorsk", revision="v1", api=api, log=lambda *a: None)
    assert [c[0] for c in api.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[0][1]["private"] is True and api.calls[1][1]["branch"] == "v1"
    upload = api.calls[2][1]
    assert sorted(api.files) == EXPECTED == upload["allow_patterns"] == summary["files"]
    assert upload["revision"] == "v1" and summary["pushed"]
    card = tmp_path / "README.md"
    card.write_bytes(api.files["README.md"])
    data = ModelCard.load(card).data.to_dict()
    metrics = {m["type"] for r in data["model-index"][0]["results"] for m in r["metrics"]}
    assert {"wer", "cer"} <= metrics
    config = api.files["config.yaml"].decode()
    assert "output_dir: tiny-nynorsk\n" in config and str(trained.parent) not in config and "cache_dir: null" in config


def test_existing_public_repository_is_not_pushed_to_when_private_was_asked(trained):
    from nynorsk_asr.publish import push_run
    from nynorsk_asr.errors import PushFailedError
    api = RecordingApi(exists=True, private=False)
    with pytest.raises(PushFailedError, match="already exists and is public; pass --public"):
        push_run(trained, "kari/tiny-nynorsk", api=api, log=lambda *a: None)
    assert api.calls == []
    push_run(trained, "kari/tiny-nynorsk", private=False, api=api, log=lambda *a: None)
    assert [c[0] for c in api.calls] == ["upload_folder"]


def test_unreachable_hub_is_one_line_saying_nothing_was_committed(trained):
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_" + "z" * 34}
    out = run_cli("push", str(trained), "--repo_id", "kari/tiny-nynorsk", env=env)
    assert out.returncode == 7, out.stdout + out.stderr
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1 and "push to kari/tiny-nynorsk failed" in err and "nothing from this push was committed" in err, err


def test_no_token_says_how_to_log_in(trained, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_OFFLINE="0")
    out = subprocess.run(cli("push", str(trained), "--repo_id", "kari/tiny-nynorsk"), capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "hf auth login" in out.stderr and "--dry_run" in out.stderr, out.stderr


@pytest.mark.parametrize("repo_id", ["tiny-nynorsk", "kari/tiny/nynorsk", "kari/tiny nynorsk", "/tiny"])
def test_bad_repo_id_is_refused_before_any_work(repo_id, tmp_path):
    out = run_cli("push", str(tmp_path / "no-such-run"), "--repo_id", repo_id, "--dry_run")
    assert out.returncode == 2 and repr(repo_id) in out.stderr, out.stderr


def test_run_without_a_model_gets_the_message_evaluate_gives(copy_of):
    (copy_of / "model.safetensors").unlink()
    push = run_cli("push", str(copy_of), "--repo_id", "kari/tiny-nynorsk", "--dry_run")
    evaluate = run_cli("evaluate", str(copy_of))
    assert push.returncode == evaluate.returncode == 4
    assert push.stderr.split("error: ", 1)[1] == evaluate.stderr.split("error: ", 1)[1]
