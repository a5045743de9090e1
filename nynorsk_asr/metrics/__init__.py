"""`evaluate` metric modules (`wer/`, `cer/`) shipped inside the package, so they load by path, offline or online.

They are loaded with `nynorsk_asr.scoring.load_metric`; both count errors with `nynorsk_asr.scoring.error_counts`.
"""
