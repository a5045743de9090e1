"The results of record: a trained run recorded and checked against a band, the generated pages fresh, README's figures recorded."
import json, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import one_line_error, run_main

ROOT = Path(__file__).parents[1]


def test_a_trained_run_is_recorded_once_and_checked_against_its_band(lm_run, tmp_path, capsys):
    runs = tmp_path / "runs.jsonl"
    bands = tmp_path / "bands.yaml"
    bands.write_text("templates:\n  test_greedy_cer: [0.0, 1.0]\n  test_lm_wer: [0.0, 1.5]\n")  # lm_run's preset
    code, out, err = run_main(capsys, "record", lm_run, "--results", runs, "--bands", bands)
    assert code == 0, err
    assert "appended to" in out and "inside the 'templates' band" in out
    record = json.loads(runs.read_text())
    ev = json.loads((lm_run / "eval" / "test_greedy.json").read_text())
    assert record["figures"]["test_greedy_cer"] == round(ev["cer"], 5) and record["model_fingerprint"] == ev["model_fingerprint"]
    assert record["curve"] and record["steps"] > 0 and record["machine"]["hardware"]
    code, out, _ = run_main(capsys, "record", lm_run, "--results", runs)
    assert code == 0 and "already in" in out and len(runs.read_text().splitlines()) == 1
    # a band the run leaves: the record is still written (the truth), then exit 9 names the figure
    bands.write_text("templates:\n  test_greedy_cer: [0.0, 0.00001]\n")
    code, _, err = run_main(capsys, "record", lm_run, "--bands", bands)
    one_line_error(err, 9, "test_greedy_cer", "is outside [0.0, 1e-05]")


def test_a_bad_bands_file_or_record_line_is_one_line(tmp_path, capsys):
    bands = tmp_path / "bands.yaml"
    bands.write_text("demo:\n  test_greedy_cer: 0.01\n")
    code, _, err = run_main(capsys, "record", tmp_path, "--bands", bands)
    assert code == 9
    one_line_error(err, 9, "demo.test_greedy_cer is 0.01", "[low, high]")
    from nynorsk_asr.results import read_jsonl
    from nynorsk_asr.errors import RecordError
    bad = tmp_path / "runs.jsonl"
    bad.write_text('{"preset": "demo"}\n[1, 2]\n')
    with pytest.raises(RecordError, match="runs.jsonl, line 2: a list, not an object"): read_jsonl(bad)


def test_the_generated_pages_are_fresh_and_a_stale_one_is_found(tmp_path):
    "RESULTS.md, bench/demo.png, the index notebook's summary and README.md are what the records give; editing a record shows."
    ok = subprocess.run([sys.executable, ".ci/render_results.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    copy = tmp_path / "repo"
    for part in (".ci", "bench", "nbs", "README.md", "RESULTS.md"):
        (shutil.copytree if (ROOT / part).is_dir() else shutil.copy)(ROOT / part, copy / part)
    runs = copy / "bench" / "runs.jsonl"
    rows = [json.loads(l) for l in runs.read_text().splitlines()]
    latest_demo = max(i for i, r in enumerate(rows) if r["preset"] == "demo")  # the record the demo summary quotes
    rows[latest_demo]["figures"]["test_greedy_cer"] = 0.0222
    runs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stale = subprocess.run([sys.executable, str(copy / ".ci" / "render_results.py"), "--check"], capture_output=True, text=True)
    assert stale.returncode == 1
    for says in ("RESULTS.md differs", "bench/demo.png was not drawn from the latest demo record", "the demo summary is not the latest"):
        assert says in stale.stderr, stale.stderr
    fixed = subprocess.run([sys.executable, str(copy / ".ci" / "render_results.py")], capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr
    assert "| greedy | 0.0222 |" in (copy / "README.md").read_text()


def test_readme_quotes_no_figure_that_no_record_holds():
    from nynorsk_asr.results import unrecorded_figures, results_page, read_jsonl, load_bands, run_summary, latest_run
    records = (results_page(read_jsonl(ROOT / "bench/results.jsonl"), read_jsonl(ROOT / "bench/runs.jsonl"), load_bands(ROOT / "bench/bands.yaml")),
               run_summary(latest_run(read_jsonl(ROOT / "bench/runs.jsonl"))))
    readme = (ROOT / "README.md").read_text()
    assert unrecorded_figures(readme, *records) == []
    assert unrecorded_figures(readme + "\nTraining is 3.7x faster and takes 4321 s.\n", *records) == ["3.7x", "4321 s"]
    assert len(readme.encode()) <= 8 * 1024, len(readme.encode())
