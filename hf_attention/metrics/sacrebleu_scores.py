"""An `evaluate` metric module: sacreBLEU's corpus BLEU and chrF, with their signatures.

evaluate's own "sacrebleu" and "chrf" modules are downloaded from the Hub, which is not always reachable; this one is
loaded by path (`evaluate.load(<this file>)`) and needs only the `sacrebleu` package. Each import is on its own line
because evaluate reads a module's imports line by line to check its requirements.
"""

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = """Corpus-level BLEU (Papineni et al. 2002) and chrF (Popovic 2015) as computed by sacreBLEU
(Post 2018), with sacreBLEU's default settings: 13a tokenization, exponential smoothing, chrF with character
n-grams up to 6 and beta 2. Scores are on a 0-100 scale."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of detokenized hypothesis strings.
    references: list of lists of reference strings (one list per prediction, all of the same length), or a list of
        strings for a single reference each.
Returns:
    bleu: corpus BLEU (0-100), bleu_signature: sacreBLEU's signature for it,
    chrf: corpus chrF (0-100), chrf_signature,
    precisions: the four n-gram precisions, brevity_penalty, sys_len, ref_len.
"""

_CITATION = """@inproceedings{post-2018-call,
  title = "A Call for Clarity in Reporting {BLEU} Scores",
  author = "Post, Matt",
  booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
  year = "2018",
  pages = "186--191",
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SacrebleuScores(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Sequence(datasets.Value("string")),
                    }
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions, references):
        if references and isinstance(references[0], str):
            references = [[reference] for reference in references]
        counts = {len(refs) for refs in references}
        if len(counts) > 1:
            raise ValueError(f"every prediction needs the same number of references, found counts {sorted(counts)}")
        # sacreBLEU wants one stream per reference position: [[ref_1 of every sentence], [ref_2 ...], ...].
        streams = [list(stream) for stream in zip(*references, strict=True)]
        bleu = sacrebleu.metrics.BLEU()
        chrf = sacrebleu.metrics.CHRF()
        bleu_score = bleu.corpus_score(predictions, streams)
        chrf_score = chrf.corpus_score(predictions, streams)
        return {
            "bleu": bleu_score.score,
            "bleu_signature": str(bleu.get_signature()),
            "chrf": chrf_score.score,
            "chrf_signature": str(chrf.get_signature()),
            "precisions": bleu_score.precisions,
            "brevity_penalty": bleu_score.bp,
            "sys_len": bleu_score.sys_len,
            "ref_len": bleu_score.ref_len,
        }
