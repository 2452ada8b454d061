"""Detecting species in recordings: scoring windows (:mod:`~rainforest.detect.scoring`),
per-species thresholds (:mod:`~rainforest.detect.thresholds`), detections
(:mod:`~rainforest.detect.detections`; their files' formats are in :mod:`rainforest.events`)
and the ``rainforest-detect`` command (:mod:`~rainforest.detect.cli`).

Kept free of imports, so importing one module imports only what it needs.
"""
