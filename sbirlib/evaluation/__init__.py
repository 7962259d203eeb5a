"""The one evaluator: retrieval metrics, fine-grained accuracy, embedding extraction, baselines."""

from sbirlib.evaluation.metrics import (
    AP_VARIANTS,
    DISTANCES,
    MAPK_NORMS,
    PK_DENOMS,
    TIE_RULES,
    MetricResult,
    average_precision,
    fg_accuracy,
    fg_ranks,
    pack_bits,
    pairwise_distances,
    parse_metric,
    retrieval_metrics,
    unpack_bits,
)
from sbirlib.evaluation.retrieval import evaluate_category, evaluate_fg, extract_embeddings, fg_gallery
from sbirlib.evaluation.baselines import (
    blurred_pixel_features,
    category_references,
    pixel_baseline_fg,
    random_ranking,
)

__all__ = [
    "extract_embeddings", "evaluate_fg", "evaluate_category", "fg_gallery",
    "blurred_pixel_features", "pixel_baseline_fg", "random_ranking", "category_references",
    "AP_VARIANTS", "DISTANCES", "MAPK_NORMS", "PK_DENOMS", "TIE_RULES", "MetricResult",
    "average_precision", "fg_accuracy", "fg_ranks", "pack_bits", "pairwise_distances",
    "parse_metric", "retrieval_metrics", "unpack_bits",
]
