"""bench/gpu_check.sh --dry-run: the GPU check's whole path (NPSC-shaped corpus, papermill end to end, bench
train and infer) on a CPU with a tiny model, so a lent GPU's minutes are never lost to a typo."""
import json, os, subprocess, sys
import pytest
from pathlib import Path

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_gpu_check_dry_run(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"), "PYTHON": sys.executable}
    out = subprocess.run(["bash", "bench/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=1200)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    got = tmp_path / "out"
    record = json.loads((got / "train_record.json").read_text())
    assert record["precision"] == "fp32" and record["global_step"] == 4 and record["train_samples"] > 20
    ev = json.loads((got / "test_greedy.json").read_text())
    assert ev["split"] == "test" and ev["utterances_evaluated"] > 0
    card = (got / "README.md").read_text()
    assert "model-index:" in card
    # on NPSC the card reports the published normalisation, and shows the run beside the published models
    assert "greedy decoding, published normalisation)" in card and ev["scores"]["published"]["rows_scored"] > 0
    assert "Next to the published models" in card and "NbAiLab/wav2vec2-large-voxrex-npsc-nynorsk" in card
    lines = [json.loads(l) for l in (got / "gpu.jsonl").read_text().splitlines()]
    assert [(r["bench"], r["unit"]) for r in lines] == [("train-demo", "audio_seconds_per_second"),
                                                       ("train-demo", "samples_per_second"),
                                                       ("train-demo-onednn", "samples_per_second"),  # dry run: CPU
                                                       ("infer", "audio_seconds_per_second"),
                                                       ("infer-int8", "audio_seconds_per_second")]  # dry run: CPU
    nb = json.loads((got / "train.ipynb").read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert "step 4/4" in (got / "train.log").read_text()
