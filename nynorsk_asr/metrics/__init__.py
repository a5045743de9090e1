"""Metric modules for `evaluate`, shipped in the package so they load by path, offline or online.

`error_counts` is the one definition of an error rate's numerator and denominator; the `wer` and `cer`
modules and `nynorsk_asr.evaluation.utterance_errors` all use it.
"""
import jiwer


def error_counts(references, hypotheses, unit: str = "word") -> tuple[int, int]:
    "(substitutions + deletions + insertions, reference length) over all pairs, in words or characters."
    if unit not in ("word", "char"): raise ValueError(f"unit={unit!r}: use 'word' or 'char'")
    out = (jiwer.process_words if unit == "word" else jiwer.process_characters)(references, hypotheses)
    return out.substitutions + out.deletions + out.insertions, out.substitutions + out.deletions + out.hits
