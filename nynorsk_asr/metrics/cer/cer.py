"""Character error rate as an `evaluate` metric module, shipped inside nynorsk_asr so it loads offline.

Load it with `evaluate.load(<path to this folder>)` (see `nynorsk_asr.scoring.load_metric`).
CER = (substitutions + deletions + insertions) / characters in the references (spaces included),
pooled over the corpus.
"""
import datasets
import evaluate
from nynorsk_asr.scoring import error_counts

_DESCRIPTION = "Corpus-level character error rate computed with jiwer: edit operations over reference characters."
_KWARGS = """
Args:
    predictions: list of hypothesis strings.
    references: list of reference strings (must be as many as predictions).
Returns:
    cer: float, total character edits divided by total reference characters.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Cer(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
            reference_urls=["https://en.wikipedia.org/wiki/Word_error_rate"])

    def _compute(self, predictions=None, references=None):
        if not references: raise ValueError("CER needs at least one reference")
        errors, length = error_counts(list(references), list(predictions), "char")
        return {"cer": errors / length if length else float(errors > 0)}
