"""What the two settings for regions of every length buy: oneDNN's or torch's own convolutions, and when the heap is trimmed.

    python bench/regions_ablation.py --run runs/demo --minutes 10,60
    python bench/regions_ablation.py --run runs/demo --minutes 2,4 --arch npsc-nynorsk --precision int8
    python bench/regions_ablation.py --positional_conv 1024

Each cell is one `Transcriber(run, "greedy").transcribe_file` in a fresh process (Silero's VAD, the CLI's defaults), on
recordings of the run's test clips (`recording_from_split`), run and sampled by `run_measured` as `bench transcribe`
runs its own: the peak is the process's resident memory, model loading included. Printed per setting: the real-time
factor of both recordings, the speed against the old setting (oneDNN, trim after every region) on the short one, both
peaks and their ratio. Each conv setting is forced here; the package picks one by the model's size (`native_convs` in
13a_infer) and trims with `HeapTrimmer`. Compare rows of one run only: the machine's speed drifts between runs.
"""
from __future__ import annotations
import argparse, contextlib, json, sys, tempfile
from pathlib import Path

SETTINGS = [("onednn", "every"), ("onednn", "never"), ("onednn", "trimmer"), ("native", "every"), ("native", "never"),
            ("native", "trimmer")]


def child(run: str, wav: str, convs: str, heap: str, precision: str) -> None:
    import nynorsk_asr.stream, nynorsk_asr.transcribe
    from nynorsk_asr.infer import HeapTrimmer, native_convs, release_heap
    # each way forced, whatever native_convs would choose for this model's size
    nynorsk_asr.stream.native_convs = contextlib.nullcontext if convs == "onednn" else lambda model: native_convs()
    trims = [0]
    def counted(trimmer):
        def call():
            done = trimmer()
            trims[0] += bool(done)
            return done
        return call
    nynorsk_asr.transcribe.HeapTrimmer = {"every": lambda: counted(release_heap), "never": lambda: counted(lambda: False),
                                          "trimmer": lambda: counted(HeapTrimmer())}[heap]
    result = nynorsk_asr.transcribe.Transcriber(run, "greedy", precision=precision).transcribe_file(wav, progress=False)
    print(json.dumps({"rtf": result["real_time_factor"], "trims": trims[0], "text": result["text"]}))


def positional_conv(channels: int, frames=range(200, 800, 23)) -> None:
    "wav2vec2's positional conv (`channels` in 16 groups, 128 taps) on lengths of 4 to 16 s of audio: oneDNN against torch's own kernel."
    import time, torch
    from nynorsk_asr.infer import largest_conv_macs, native_convs
    conv = torch.nn.Conv1d(channels, channels, 128, padding=64, groups=16).eval()
    def seconds(context, shift=0):
        with torch.inference_mode(), context():
            t0 = time.perf_counter()
            for n in frames: conv(torch.randn(1, channels, n + shift))
            return time.perf_counter() - t0
    seconds(contextlib.nullcontext, shift=1)  # warm, on other lengths: each timed one is new to oneDNN, as a region is
    onednn, native = seconds(contextlib.nullcontext), seconds(native_convs)
    print(f"positional conv, {channels} channels ({largest_conv_macs(conv):,} multiply-adds a step), {len(frames)} lengths: "
          f"oneDNN {onednn:.3f} s, torch's own {native:.3f} s -> oneDNN {native / onednn:.2f}x faster")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="runs/demo")
    p.add_argument("--minutes", default="10,60", help="the short and the long recording")
    p.add_argument("--arch", help="replace the run's model by this preset's architecture, random weights (speed and memory only)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8"])
    p.add_argument("--positional_conv", type=int, metavar="CHANNELS", help="time only wav2vec2's positional conv at this width "
                   "(1024: wav2vec2-large, 128: the demo), both kernels")
    p.add_argument("--child", nargs=4, metavar=("RUN", "WAV", "CONVS", "HEAP"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child: return child(*a.child, a.precision)
    if a.positional_conv: return positional_conv(a.positional_conv)
    from nynorsk_asr.bench import run_measured
    from nynorsk_asr.longform import recording_from_split
    minutes = [float(m) for m in a.minutes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(a.run).resolve()
        wavs = []
        for m in minutes:
            wavs.append(f"{tmp}/r{m:g}.wav")
            recording_from_split(run, wavs[-1], minutes=m)
        if a.arch:
            from nynorsk_asr.bench_transcribe import _random_weights_run
            run = _random_weights_run(run, a.arch, Path(tmp) / "model")
        rows = []
        for convs, heap in SETTINGS:
            got = []
            for wav in wavs:
                m = run_measured([sys.executable, __file__, "--child", str(run), wav, convs, heap, "--precision", a.precision])
                if m.returncode: sys.exit(f"{convs}/{heap} on {wav} failed:\n{m.stderr[-2000:]}")
                got.append({**json.loads(m.stdout.strip().splitlines()[-1]), "peak_mb": m.peak_mb})
            rows.append((convs, heap, got))
            print(f"{convs:7s} {heap:8s} " + "  ".join(f"{m:g} min: RTF {g['rtf']:.5f} peak {g['peak_mb']:.0f} MB trims {g['trims']}"
                                                      for m, g in zip(minutes, got)), flush=True)
    base = rows[0][2][0]["rtf"]
    short, long = (f"{m:g} min" for m in minutes)
    print(f"\n| convolutions | heap trimmed | RTF {short} | {long} | speed vs oneDNN + every region | peak {short} | {long} "
          f"| {long} / {short} | trims {long} | transcript of {short} as the first row's |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for convs, heap, (s, l) in rows:
        print(f"| {convs} | {heap} | {s['rtf']:.5f} | {l['rtf']:.5f} | {base / s['rtf']:.2f}x | {s['peak_mb']:.0f} MB | "
              f"{l['peak_mb']:.0f} MB | {l['peak_mb'] / s['peak_mb']:.3f} | {l['trims']} | {s['text'] == rows[0][2][0]['text']} |")
    print(f"\n{sys.argv[0]} {' '.join(sys.argv[1:])}  (precision {a.precision})")


if __name__ == "__main__":
    main()
