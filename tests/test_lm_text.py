"The LM's text at corpus size: streamed in bounded memory, and `bench lm` measuring it against the text held in memory."
import json, subprocess, sys
import pytest
from conftest import cli

STREAM = """
import resource, sys
from nynorsk_asr.lm import write_lm_text
report, types = write_lm_text(sys.argv[2], [], [], [sys.argv[1]], sort_memory="50M")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, report["sentences"], report["removed_by_reason"].get("duplicate", 0))
"""


@pytest.mark.slow
def test_lm_text_memory_does_not_grow_with_the_text(tmp_path):
    "A text 8x larger costs the streaming path no more memory than the vocabulary it adds (the text is never held)."
    from nynorsk_asr.bench_lm import lm_corpus
    peaks = {}
    for mb in (6, 48):
        lm_corpus(tmp_path / f"t{mb}.txt", mb, vocabulary=2000)  # the same vocabulary: only the text's length differs
        out = subprocess.run([sys.executable, "-c", STREAM, str(tmp_path / f"t{mb}.txt"), str(tmp_path / f"lm{mb}.txt")],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        peak, sentences, dups = map(int, out.stdout.split())
        assert sentences > 0 and dups > 0
        peaks[mb] = peak
    assert peaks[48] - peaks[6] < 40, peaks  # MB: 42 MB more text, next to nothing more memory


@pytest.mark.slow
def test_bench_lm_reports_throughput_memory_and_the_lmplz_share(tmp_path):
    out = subprocess.run(cli("bench", "lm", "--megabytes", "2", "--results", str(tmp_path / "r.jsonl")), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {r["bench"]: r for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())}
    assert set(rows) == {"lm", "lm-memory"}
    speed, mem = rows["lm"], rows["lm-memory"]
    assert speed["unit"] == "megabytes_per_second" and speed["ours"] > 0 and speed["baseline"] > 0
    assert speed["ratio"] == pytest.approx(speed["ours"] / speed["baseline"], rel=0.01)
    assert 0 < speed["lmplz_share_ours"] < 1 and mem["unit"] == "peak_rss_mb" and mem["ours"] > 0
    from nynorsk_asr.bench import reproduce_command
    assert reproduce_command(speed) == "nynorsk-asr bench lm --megabytes 2 --order 3"
