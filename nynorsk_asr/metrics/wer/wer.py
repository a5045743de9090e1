"""Word error rate as an `evaluate` metric module, shipped inside nynorsk_asr so it loads offline.

Load it with `evaluate.load(<path to this folder>)` (see `nynorsk_asr.scoring.load_metric`).
WER = (substitutions + deletions + insertions) / words in the references, pooled over the corpus.
"""
import datasets
import evaluate
from nynorsk_asr.scoring import error_counts

_DESCRIPTION = "Corpus-level word error rate computed with jiwer: edit operations over reference words."
_KWARGS = """
Args:
    predictions: list of hypothesis strings.
    references: list of reference strings (must be as many as predictions).
Returns:
    wer: float, total word edits divided by total reference words.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Wer(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
            reference_urls=["https://en.wikipedia.org/wiki/Word_error_rate"])

    def _compute(self, predictions=None, references=None):
        if not references: raise ValueError("WER needs at least one reference")
        errors, length = error_counts(list(references), list(predictions), "word")
        return {"wer": errors / length if length else float(errors > 0)}
