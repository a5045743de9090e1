"""`nynorsk-asr bench prep|train|infer` at tiny sizes: both figures reported, and what they compare holds (no timing asserts)."""
import json, subprocess, sys
import pytest


def run_bench(tmp_path, *args):
    results = tmp_path / "results.jsonl"
    out = subprocess.run([sys.executable, "-m", "nynorsk_asr.cli", "bench", *args, "--results", str(results)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(l) for l in results.read_text().splitlines()]
    for r in lines:
        assert {"bench", "unit", "ours", "baseline", "ratio", "machine", "commit", "timestamp"} <= set(r)
        assert r["ours"] > 0 and r["baseline"] > 0
        assert abs(r["ratio"] - r["ours"] / r["baseline"]) <= 0.01 * r["ratio"]  # ratio of the unrounded figures
        assert r["bench"] in out.stdout
    return lines, out.stdout


def test_bench_prep(tmp_path):
    lines, _ = run_bench(tmp_path, "prep", "--n_clips", "6", "--workers", "2")
    assert [r["bench"] for r in lines] == ["prep-mp3", "prep-wav"]
    assert all(r["raw_decoder_limit"] > 0 and r["baseline_name"].startswith("datasets map") for r in lines)


@pytest.mark.slow
def test_bench_train(tmp_path):
    lines, _ = run_bench(tmp_path, "train", "--steps", "4", "--batch_size", "2")
    assert [(r["bench"], r["unit"]) for r in lines] == [("train-demo", "audio_seconds_per_second"), ("train-demo", "samples_per_second"),
                                                       ("train-demo-onednn", "samples_per_second")]  # the last on CPU only
    r = lines[0]
    # ours batches by length: pairs of NPSC-like clips drawn at random would pad ~20%, length-bucketed ones < 5%
    assert r["padding_fraction_ours"] < 0.05, r["padding_fraction_ours"]
    assert r["precision_baseline"] == "fp32" and r["precision_ours"] == "fp32"  # CPU: fp16 would silently be fp32
    assert r["steps_timed"] == 2 and r["batch_size"] == 2
    conv = lines[2]  # ours with PyTorch's default convolutions: measured, not copied from ours
    assert conv["baseline_name"].startswith("ours with") and conv["baseline"] > 0 and conv["baseline"] != conv["ours"]


def test_bench_infer(tmp_path):
    # batches of one: no padding, so ours and the pipeline must write the same (non-empty: random weights babble) text
    lines, _ = run_bench(tmp_path, "infer", "--n_clips", "4", "--batch_size", "1", "--busy", "1")
    assert [r["bench"] for r in lines] == ["infer", "infer-int8", "infer-loaded", "infer-loaded-int8"]
    r = lines[0]
    assert r["bench"] == "infer" and r["clips"] == 4
    assert r["transcripts_nonempty"] == 1.0 and r["transcripts_identical"] == 1.0
    assert abs(r["real_time_factor_ours"] - 1 / r["ours"]) < 1e-3 * r["real_time_factor_ours"] + 1e-5
    # ours imports the package first (idle threads sleep); the pipeline baseline and "torch's defaults" do not
    assert (r["omp_wait_policy_ours"], r["omp_wait_policy_baseline"]) == ("PASSIVE", None)
    int8 = lines[1]
    assert int8["precision"] == "int8" and 0 <= int8["transcripts_identical_to_fp32"] <= 1 and int8["speedup_over_fp32"] > 0
    for loaded in lines[2:]:
        assert loaded["unit"] == "slowdown_loaded_vs_quiet" and loaded["busy_processes"] == 1
        assert (loaded["omp_wait_policy_ours"], loaded["omp_wait_policy_torch_defaults"]) == ("PASSIVE", None)
        assert loaded["seconds_loaded_ours"] > 0 and loaded["seconds_quiet_torch_defaults"] > 0


@pytest.mark.parametrize("module", ["nynorsk_asr.recipe", "nynorsk_asr.cli"])
def test_modules_run_as_programs(module):
    # bench transcribe runs both with `python -m`; a guard that took an imported IPython for a notebook kernel once
    # made the recipe's main silently do nothing (exit 0, no output)
    out = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "usage:" in out.stderr, (out.returncode, out.stdout[-300:], out.stderr[-300:])


@pytest.mark.parametrize("dirty", [False, True])
def test_a_result_says_when_its_tree_had_uncommitted_changes(monkeypatch, dirty):
    "A figure measured on uncommitted code is not credited to the commit alone: the line and RESULTS.md's table say so."
    import nynorsk_asr.bench as bench
    monkeypatch.setattr(bench, "git_provenance", lambda *a: {"git_commit": "0123456789abcdef", "git_dirty": dirty})
    r = bench.bench_result("infer", "audio_seconds_per_second", 2.0, 1.0, arch="demo")
    assert r["commit"] == "0123456789abcdef" and r.get("commit_dirty", False) is dirty
    row = bench.results_table([r]).splitlines()[-1]
    assert ("`01234567` + uncommitted changes" in row) is dirty and "`01234567`" in row
    assert "commit_dirty" not in bench.format_result(r)


def test_regions_ablation_runs_every_setting(lm_run):
    "bench/regions_ablation.py: all six settings on two short recordings, the trimmer trimming less often than every region."
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "bench" / "regions_ablation.py"
    out = subprocess.run([sys.executable, str(script), "--run", str(lm_run), "--minutes", "0.5,1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [l.split(" | ") for l in out.stdout.splitlines() if l.startswith("| onednn") or l.startswith("| native")]
    settings = {(r[0].strip("| "), r[1]): r for r in rows}
    assert list(settings) == [("onednn", "every"), ("onednn", "never"), ("onednn", "trimmer"), ("native", "every"),
                              ("native", "never"), ("native", "trimmer")]
    trims = {k: int(r[8]) for k, r in settings.items()}  # on the longer recording
    assert trims[("onednn", "never")] == trims[("native", "never")] == 0
    assert trims[("native", "every")] == trims[("onednn", "every")] > max(trims[("native", "trimmer")], trims[("onednn", "trimmer")])
    assert min(trims[("native", "trimmer")], trims[("onednn", "trimmer")]) >= 1, trims
    assert settings[("onednn", "every")][4] == "1.00x"
