"""Reviewing detections: choosing which to listen to, the review page, and verdicts back into training."""
