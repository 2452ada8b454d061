"""Stage train: fit one classifier per fold of the split on the other folds' windows and their augmented copies, then any pseudo-label rounds.

Usage: python stages/train.py WINDOWS_H5 SPLIT_CSV AUGMENTED_H5 POOL_H5 WINDOW_EMBEDDINGS_H5 AUGMENTED_EMBEDDINGS_H5 POOL_EMBEDDINGS_H5 MODEL_KERAS VALIDATION_SCORES_CSV LIVE_DIR ROUND_MODELS_DIR PSEUDO_LABELS_CSV ROUNDS_JSON PSEUDO_LABEL_COUNTS_CSV

Calls :func:`rainforest.training.train_model`; the paths are the fields of
:class:`rainforest.training.TrainingFiles`, in order. The classifier reads the
windows' spectrograms, or with model.architecture: embedding_head their
embeddings (the embed stage's files). The model is the holdout's one model,
the folds' ensemble or their refit; the validation scores are each fold's
windows scored by its own model. With pseudo_label.rounds above 0, each
round scores the pool (the pool stage's windows) and trains again on the
confident windows as labels.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.runner import run_stage
from rainforest.training import TrainingFiles, train_model


def main(
    settings,
    windows,
    split,
    augmented,
    pool,
    window_embeddings,
    augmented_embeddings,
    pool_embeddings,
    model,
    validation_scores,
    live_dir,
    round_models,
    pseudo_labels,
    rounds,
    pseudo_label_counts,
):
    files = TrainingFiles(
        windows=windows,
        split=split,
        augmented=augmented,
        pool=pool,
        window_embeddings=window_embeddings,
        augmented_embeddings=augmented_embeddings,
        pool_embeddings=pool_embeddings,
        model=model,
        validation_scores=validation_scores,
        live_dir=live_dir,
        round_models=round_models,
        pseudo_labels=pseudo_labels,
        rounds=rounds,
        pseudo_label_counts=pseudo_label_counts,
    )
    train_model(model=settings.model, settings=settings.train, pseudo_label=settings.pseudo_label, files=files)


if __name__ == "__main__":
    run_stage("train", main)
