"""Verdicts given on the review page, and bringing them back into training."""

#: Columns of the ``verdicts.csv`` the review page exports, in this order.
VERDICT_COLUMNS = [
    "recording", "file", "start", "end", "species", "label", "score", "low_freq", "high_freq", "reason", "verdict",
]
