"""The model card: valid YAML metadata with WER and CER, a table equal to the log history, byte-identical
regeneration, and every metric equal to the eval JSON."""
import json, subprocess, sys
from pathlib import Path
import pytest
from huggingface_hub import ModelCard
from conftest import TINY, cli

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    "A tiny run made by papermill executing nbs/train.ipynb end to end (prepare, train, evaluate, card)."
    run = tmp_path_factory.mktemp("cardrun")
    cache = tmp_path_factory.mktemp("cache")
    params = [a for k, v in {**TINY, "output_dir": str(run), "cache_dir": str(cache)}.items() for a in ("-p", k, str(v))]
    out = subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "nbs/train.ipynb"), str(run / "train.ipynb"),
                          *params, "--kernel", "python3"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    return run


def test_papermill_run_produced_the_whole_run_directory(evaluated):
    for name in ("config.yaml", "prep_report.json", "vocab.json", "model.safetensors", "trainer_state.json",
                 "train_record.json", "eval/test_greedy.json", "plots/training_curves.png", "plots/test_errors.png",
                 "README.md", "train.ipynb"):
        assert (evaluated / name).is_file(), name
    nb = json.loads((evaluated / "train.ipynb").read_text())
    tags = [c["metadata"].get("tags", []) for c in nb["cells"]]
    assert ["parameters"] in tags and ["injected-parameters"] in tags
    assert json.loads((evaluated / "train_record.json").read_text())["global_step"] == TINY["max_steps"]


def test_card_metadata_parses_and_holds_wer_and_cer(evaluated):
    card = ModelCard.load(evaluated / "README.md")
    results = {(r.metric_type, r.dataset_split, r.metric_name.split("(")[1].split(" decoding")[0]): r
               for r in card.data.eval_results}
    for decoder, named in (("greedy", "greedy"), ("lm", "n-gram LM")):  # the notebook builds the LM by default
        ev = json.loads((evaluated / f"eval/test_{decoder}.json").read_text())
        assert results[("wer", "test", named)].metric_value == ev["wer"]
        assert results[("cer", "test", named)].metric_value == ev["cer"]
    assert len(results) == 4
    assert card.data.language == ["nn"] and card.data.license == "apache-2.0"


def test_results_table_rows_equal_the_log_history(evaluated):
    text = (evaluated / "README.md").read_text()
    table = text.split("### Training results", 1)[1]
    rows = [l for l in table.splitlines() if l.startswith("| ") and "Training Loss" not in l]
    state = json.loads((evaluated / "trainer_state.json").read_text())
    evals = [h for h in state["log_history"] if "eval_loss" in h]
    assert len(rows) == len(evals) == 3
    for row, h in zip(rows, evals):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert int(cells[2]) == h["step"]
        assert float(cells[3]) == round(h["eval_loss"], 4)
        assert float(cells[4]) == round(h["eval_wer"], 4) and float(cells[5]) == round(h["eval_cer"], 4)
    header = [l for l in table.splitlines() if "Training Loss" in l][0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["Training Loss", "Epoch", "Step", "Validation Loss", "Wer", "Cer"]


def test_regeneration_is_byte_identical(evaluated):
    before = (evaluated / "README.md").read_bytes()
    plot = (evaluated / "plots/training_curves.png").read_bytes()
    out = subprocess.run(cli("card", str(evaluated)), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (evaluated / "README.md").read_bytes() == before
    assert (evaluated / "plots/training_curves.png").read_bytes() == plot


def test_every_metric_in_the_card_comes_from_the_run(evaluated):
    text = (evaluated / "README.md").read_text()
    ev = json.loads((evaluated / "eval/test_greedy.json").read_text())
    record = json.loads((evaluated / "train_record.json").read_text())
    assert f"WER {ev['wer']:.4f}, CER {ev['cer']:.4f}" in text
    assert f"{record['audio_seconds_per_second']} audio-seconds per second" in text
    assert "![Learning curves](plots/training_curves.png)" in text
    prep = json.loads((evaluated / "prep_report.json").read_text())
    for split, r in prep["splits"].items():
        assert f"| {split} | {r['rows']} | {r['kept']} |" in text and r["fingerprint"] in text


def test_card_explains_what_is_missing(tmp_path):
    from nynorsk_asr.card import write_card
    with pytest.raises(FileNotFoundError, match="config.yaml is missing"):
        write_card(tmp_path)
