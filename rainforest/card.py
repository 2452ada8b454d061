"""The model card: what a trained model needs besides its weights, stored in its ``.keras`` archive.

The card holds the audio and feature settings a model's input was made with,
the species it scores and, for a head on embeddings, the embedding model it
reads. It is plain JSON inside the archive, so a process that only plans a
detection run (a Dask client, ``rainforest-detect`` checking its arguments)
reads it without loading TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rainforest.config import FeatureSettings, SpectrogramSettings
from rainforest.errors import ModelError

#: Archive member holding the model's card.
CARD_NAME = "rainforest_card.json"


@dataclass(frozen=True)
class EmbeddingCard:
    """The pretrained model whose embeddings a head was trained on, so that
    inference computes the same ones: its name in
    :data:`rainforest.embedding.EMBEDDING_MODELS`, the SHA-256 of its file and
    its licence (a head inherits it). For a model read from a file
    (``embedding.model: onnx``) also the file, as ``embedding.onnx_file`` named
    it, and its descriptor's fields (:class:`rainforest.config.OnnxDescriptor`)."""

    model: str
    sha256: str
    licence: str
    file: str | None = None
    descriptor: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Its fields, without those that are None (a BirdNET card is as it always was)."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    def to_attrs(self) -> dict[str, str]:
        """Its fields as an embedding file's attributes: text, the descriptor as JSON."""
        return {
            key: json.dumps(value, sort_keys=True) if key == "descriptor" else str(value)
            for key, value in self.to_dict().items()
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> EmbeddingCard:
        """The card an embedding file's attributes (:meth:`to_attrs`) hold."""
        return cls(
            str(attrs["model"]),
            str(attrs["sha256"]),
            str(attrs["licence"]),
            str(attrs["file"]) if "file" in attrs else None,
            json.loads(str(attrs["descriptor"])) if "descriptor" in attrs else None,
        )


@dataclass(frozen=True)
class ModelCard:
    """What a user of the model needs besides the weights: the audio and
    feature settings its input was made with, the species it scores, and for
    an ``embedding_head`` the embedding model it reads. ``labels`` are the
    species' names, in the order of ``species``, where the dataset had a
    ``species.csv`` (else None, and the card is written without them)."""

    spectrogram_settings: SpectrogramSettings
    species: list[str]
    embedding: EmbeddingCard | None = None
    labels: list[str] | None = None

    def to_json(self) -> str:
        values = {
            "sample_rate": self.spectrogram_settings.sample_rate,
            "features": self.spectrogram_settings.features.model_dump(),
            "species": self.species,
        }
        if self.embedding is not None:
            values["embedding"] = self.embedding.to_dict()
        if self.labels is not None:
            values["labels"] = self.labels
        return json.dumps(values, indent=2, sort_keys=True)

    def display_names(self) -> list[str]:
        """How figures name the species: ``s3 Dark-eyed Junco`` with labels, else ``s3``."""
        if self.labels is None:
            return list(self.species)
        return [f"{species} {label}" for species, label in zip(self.species, self.labels)]

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        values = json.loads(text)
        embedding = EmbeddingCard(**values["embedding"]) if "embedding" in values else None
        labels = [str(label) for label in values["labels"]] if "labels" in values else None
        spectrogram_settings = SpectrogramSettings(int(values["sample_rate"]), FeatureSettings(**values["features"]))
        return cls(spectrogram_settings, list(values["species"]), embedding, labels)


def reading_model(path: Path) -> contextlib.AbstractContextManager:
    """A context in which reading the model archive ``path`` fails with one
    :class:`ModelError` naming the file, not a zip or Keras traceback.

    Raises
    ------
    ModelError
        At once if ``path`` is not a file; inside the context, if it is not
        an archive written by :func:`rainforest.model.save_model`.
    """
    if not path.is_file():
        raise ModelError(f"{path}: model not found; train one with dvc repro train, or give another model file")
    return _model_errors(path)


@contextlib.contextmanager
def _model_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ModelError(f"{path}: not a model saved by the train stage ({type(error).__name__}: {error})") from None


def load_card(path: str | Path) -> ModelCard:
    """The card stored with a model by :func:`rainforest.model.save_model`,
    read without loading TensorFlow.

    Raises
    ------
    ModelError
        If the file is missing or is not a model saved by this project.
    """
    path = Path(path)
    with reading_model(path), zipfile.ZipFile(path) as archive:
        return ModelCard.from_json(archive.read(CARD_NAME))
