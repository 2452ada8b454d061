"""Stage embed: a pretrained model's embedding of every window, augmented window and pool window.

Usage: python stages/embed.py WINDOWS_H5 AUGMENTED_H5 POOL_H5 WINDOW_EMBEDDINGS_H5 AUGMENTED_EMBEDDINGS_H5 POOL_EMBEDDINGS_H5

Each output holds one embedding per row of its input (``embeddings``, float32,
(n, dimension)) and, as file attributes, the embedding model's name, the
SHA-256 of its file and its licence (for a user's ONNX model also its path and
descriptor). With ``embedding.model: none`` (the
default: the CNN trains on spectrograms) all three outputs are small placeholders
that name no model, so the stage costs nothing and changes nothing downstream.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.embedding import embed_window_sets
from rainforest.runner import run_stage


def main(
    settings,
    windows_path,
    augmented_path,
    pool_path,
    window_embeddings_path,
    augmented_embeddings_path,
    pool_embeddings_path,
):
    embed_window_sets(
        {
            windows_path: window_embeddings_path,
            augmented_path: augmented_embeddings_path,
            pool_path: pool_embeddings_path,
        },
        model=settings.embedding.model,
        onnx_file=settings.embedding.onnx_file,
    )


if __name__ == "__main__":
    run_stage("embed", main)
