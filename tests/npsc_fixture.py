"""Build a small copy of NPSC's raw layout (data/<split>/<date>.json + <date>_16K_mp3.tar.gz) for tests.

Every clip is an MP3 written with soundfile. Besides good rows in both written standards, the fixture
holds one row of each kind of bad input preparation must survive, and `EXPECTED` says what must happen
to each row. Run it as a script to make a bigger fixture for throughput measurements:

    python tests/npsc_fixture.py /tmp/npsc --good 200
"""
from __future__ import annotations
import argparse, io, json, tarfile
from pathlib import Path
import numpy as np
import soundfile as sf

SPLIT_DAYS = {"train": ["20170110", "20170124"], "eval": ["20170209"], "test": ["20170207"]}
MEETING_START = "095504"


def tone(seconds: float, rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    "A speech-like test signal: a few harmonics with a slow amplitude envelope and a little noise."
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110 + 40 * rng.random()
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    x = (0.2 * x / np.abs(x).max() + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    return np.stack([x] * channels, 1) if channels > 1 else x


def mp3_bytes(x: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="MP3")
    return buf.getvalue()


# (kind, language, text, seconds, rate, channels, audio mutation, expected drop reason or None, expected text)
CASES = [
    ("good", "nn-NO", "Stortingets møte er lovleg sett.", 2.5, 16000, 1, None, None, "stortingets møte er lovleg sett"),
    ("good_hesitation", "nn-NO", "<ee> eg vil takke representanten for svaret", 3.0, 16000, 1, None, None,
     "eee eg vil takke representanten for svaret"),
    ("good_accent", "nn-NO", "Det var ein god idé frå Müller, president!", 3.0, 16000, 1, None, None,
     "det var ein god ide frå muller president"),
    ("good_44k", "nn-NO", "Vi må sjå på saka", 2.0, 44100, 1, None, None, "vi må sjå på saka"),
    ("good_48k_stereo", "nn-NO", "Eg er ikkje einig", 2.0, 48000, 2, None, None, "eg er ikkje einig"),
    ("good_8k", "nn-NO", "Takk for ordet", 1.5, 8000, 1, None, None, "takk for ordet"),
    ("good_unknown_chars", "nn-NO", "Kva betyr «Ж» her", 2.0, 16000, 1, None, None, "kva betyr her"),
    ("bokmaal", "nb-NO", "Stortingets møte er lovlig satt", 2.0, 16000, 1, None, "not_selected", None),
    ("digits", "nn-NO", "Vi har brukt 300 millionar", 2.0, 16000, 1, None, "contains_digit", None),
    ("inaudible", "nn-NO", "<inaudible> og det er rett", 2.0, 16000, 1, None, "inaudible", None),
    ("empty_text", "nn-NO", "", 2.0, 16000, 1, None, "empty_after_cleaning", None),
    ("punct_text", "nn-NO", "– … ?", 2.0, 16000, 1, None, "empty_after_cleaning", None),
    ("short_text", "nn-NO", "ja", 1.0, 16000, 1, None, "text_too_short", None),
    ("too_short", "nn-NO", "kort", 0.4, 16000, 1, None, "too_short", None),
    ("too_long", "nn-NO", "dette var eit langt innlegg", 31.0, 16000, 1, None, "too_long", None),
    ("ctc_infeasible", "nn-NO", "dette er altfor mange bokstavar for eit så kort klipp", 0.9, 16000, 1, None,
     "text_longer_than_frames", None),
    ("silence", "nn-NO", "her er det stilt", 2.0, 16000, 1, "silence", "silent", None),
    ("corrupt", "nn-NO", "denne fila er øydelagd", 2.0, 16000, 1, "garbage", "corrupt_audio", None),
    ("empty_file", "nn-NO", "denne fila er tom", 2.0, 16000, 1, "empty", "empty_file", None),
    ("truncated_header", "nn-NO", "berre starten av fila er att", 2.0, 16000, 1, "truncated_header", "corrupt_audio", None),
    ("truncated_half", "nn-NO", "halve fila er borte", 3.0, 16000, 1, "truncated_half", None, "halve fila er borte"),
    ("missing_clip", "nn-NO", "klippet manglar", 2.0, 16000, 1, "missing", "missing_audio", None),
]


def npsc_like_seconds(rng, median: float = 6.0) -> float:
    "A duration like NPSC's sentences: log-normal around `median` seconds, cut to [1, 20] s."
    return float(np.clip(rng.lognormal(np.log(median), 0.6), 1.0, 20.0))


def make_npsc_fixture(root, good_per_day: int = 2, seed: int = 0, durations: str = "short") -> dict:
    """Write the fixture under `root`; return {utterance_id: (expected drop reason or None, expected text)}.

    Each bad case appears once (on the first train day); good rows (`good_per_day` extra per day, plus the
    `good*` cases) appear on every day. `not_selected` rows are Bokmål and must not appear in Nynorsk configs.
    `durations`: "short" (extra rows of 2-8 s) or "npsc" (NPSC-like: 1-20 s, median 6 s).
    """
    if durations not in ("short", "npsc"): raise ValueError(f"durations={durations!r}: use 'short' or 'npsc'")
    root = Path(root)
    expected, sid = {}, 1000
    rng = np.random.default_rng(seed)
    for split, days in SPLIT_DAYS.items():
        split_dir = root / "data" / split
        split_dir.mkdir(parents=True, exist_ok=True)
        for d_i, day in enumerate(days):
            rows, clips = [], {}
            cases = [c for c in CASES if c[0].startswith("good") or (split == "train" and d_i == 0)]
            seconds = [2.0 + rng.random() * 6 if durations == "short" else npsc_like_seconds(rng) for _ in range(good_per_day)]
            cases += [(f"good_extra{i}", "nn-NO", "vi tek ordet og går vidare", s, 16000, 1,
                       None, None, "vi tek ordet og går vidare") for i, s in enumerate(seconds)]
            start = 1000
            for kind, lang, text, seconds, rate, ch, mutation, reason, clean in cases:
                sid += 1
                end = start + int(seconds * 1000)
                row = {"sentence_id": sid, "sentence_order": sid, "speaker_id": 10 + sid % 3, "meeting_date": day,
                       "speaker_name": "Representant", "sentence_text": text, "sentence_language_code": lang,
                       "text": text, "start_time": start, "end_time": end, "normsentence_text": text,
                       "transsentence_text": text, "translated": 0}
                rows.append(row)
                name = f"{day}-{MEETING_START}_{start}_{end}.mp3"
                if mutation != "missing":
                    x = tone(seconds, rate, ch, seed=sid)
                    if mutation == "silence": x = np.zeros_like(x)
                    data = mp3_bytes(x, rate)
                    if mutation == "garbage": data = b"\x00garbage, not an mp3 frame\xff" * 50
                    if mutation == "empty": data = b""
                    if mutation == "truncated_header": data = data[:100]
                    if mutation == "truncated_half": data = data[: len(data) // 2]  # valid frames, then nothing
                    clips[name] = data
                start = end + 500
                if reason != "not_selected": expected[f"{day}_{sid}"] = (reason, clean)
            with open(split_dir / f"{day}.json", "w", encoding="utf-8") as f:
                for r in rows: f.write(json.dumps(r, ensure_ascii=False) + "\n")
                if split == "train" and d_i == 0: f.write('{"sentence_id": 1, "broken json\n')
            with tarfile.open(split_dir / f"{day}_16K_mp3.tar.gz", "w:gz") as tar:
                for name, data in clips.items():
                    info = tarfile.TarInfo(f"audio/{name}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return expected


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("--good", type=int, default=2, help="extra good rows per meeting day")
    p.add_argument("--durations", choices=["short", "npsc"], default="short",
                   help="extra rows of 2-8 s, or NPSC-like (1-20 s, median 6 s)")
    a = p.parse_args()
    exp = make_npsc_fixture(a.root, a.good, durations=a.durations)
    print(f"wrote {a.root}: {len(exp)} Nynorsk rows, {sum(r is None for r, _ in exp.values())} of them good")
