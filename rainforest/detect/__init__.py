"""Detecting species in recordings: scoring windows (:mod:`~rainforest.detect.scoring`),
per-species thresholds (:mod:`~rainforest.detect.thresholds`), detections and
their writers (:mod:`~rainforest.detect.detections`, :mod:`~rainforest.detect.raven`)
and the ``rainforest-detect`` command (:mod:`~rainforest.detect.cli`).

Kept free of imports, so importing one module imports only what it needs.
"""
