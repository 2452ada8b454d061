"""The pipeline's settings: one typed, validated object read from ``params.yaml``.

Every stage calls :func:`load_settings` before doing any work, so a wrong value
stops the pipeline with a message naming the key, what is wrong and what is
allowed, before anything is read or written.

Settings that travel together through the library travel as one object, built
from validated sections: :class:`SpectrogramSettings` (``audio.sample_rate`` and
``features``) and :class:`ScoringSettings` (a hop and a batch size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rainforest.errors import ConfigError

# Strict: YAML's true is not the integer 1, nor 2.5 the integer 2 (an integer
# is still a valid float).
Integer = Annotated[int, Strict()]
Number = Annotated[float, Strict()]
PositiveFloat = Annotated[Number, Field(gt=0)]
PositiveInt = Annotated[Integer, Field(gt=0)]
Seed = Annotated[Integer, Field(ge=0)]


class _Section(BaseModel):
    # Unknown keys are typos until proven otherwise: refuse them.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _ordered_range(name: str, low: float, high: float) -> None:
    if low > high:
        raise ValueError(f"{name} must be [low, high] with low <= high, got [{low}, {high}]")


def _check_ordered(value: tuple[float, float], info: ValidationInfo) -> tuple[float, float]:
    # A field validator, not a model validator, so the error's location (and
    # the message) is the range's own dotted key, e.g. augment.gain.db.
    _ordered_range(str(info.field_name), *value)
    return value


class DataSettings(_Section):
    dataset_dir: Path
    # Where the training events come from: competition (train_tp.csv and
    # train_fp.csv), raven (a Raven selection table beside each recording) or
    # audacity (an Audacity label track beside each): the formats of
    # rainforest.events.DATASET_FORMATS (a test keeps the two lists equal).
    annotations: Literal["competition", "raven", "audacity"]
    # The Raven tables' column holding each selection's species.
    species_column: Annotated[str, Strict(), Field(min_length=1)]
    # Reviewed labels read besides the dataset's (labels.csv and recordings/,
    # written by rainforest-review import); see rainforest.events.dataset.
    reviews_dir: Path


class DemoSettings(_Section):
    seed: Seed
    n_train_recordings: Annotated[Integer, Field(ge=2)]
    n_test_recordings: PositiveInt
    duration_seconds: Annotated[Number, Field(ge=5)]
    sample_rate: Annotated[Integer, Field(ge=32000)]
    snr_db: tuple[Number, Number]
    lookalikes_per_recording: Annotated[Number, Field(ge=0)]
    max_species_per_test_recording: PositiveInt

    _check_snr_db = field_validator("snr_db")(_check_ordered)


class AudioSettings(_Section):
    sample_rate: Annotated[Integer, Field(ge=1000, le=384000)]


class FeatureSettings(_Section):
    n_fft: Annotated[Integer, Field(ge=64, le=16384)]
    hop_length: PositiveInt
    n_mels: Annotated[Integer, Field(ge=8, le=512)]
    fmin: Annotated[Number, Field(ge=0)]
    fmax: PositiveFloat
    window_seconds: PositiveFloat

    # Field validators (fields are validated in declaration order, so n_fft and
    # fmin are in info.data) so that errors name features.hop_length / features.fmax.
    @field_validator("hop_length")
    @classmethod
    def _check_hop_length(cls, hop_length: int, info: ValidationInfo) -> int:
        n_fft = info.data.get("n_fft")
        if n_fft is not None and hop_length > n_fft:
            raise ValueError(f"hop_length ({hop_length}) must not exceed n_fft ({n_fft}): frames would skip audio")
        return hop_length

    @field_validator("fmax")
    @classmethod
    def _check_fmax(cls, fmax: float, info: ValidationInfo) -> float:
        fmin = info.data.get("fmin")
        if fmin is not None and fmin >= fmax:
            raise ValueError(f"fmin ({fmin}) must be below fmax ({fmax})")
        return fmax


@dataclass(frozen=True)
class SpectrogramSettings:
    """What a log-mel spectrogram and its windows are made with, travelling
    together: the rate recordings are read at (``audio.sample_rate``) and the
    ``features`` section. A window set and a model card hold them too."""

    sample_rate: int
    features: FeatureSettings

    @property
    def window_frames(self) -> int:
        """Number of spectrogram frames in one window (at least one)."""
        return max(1, round(self.features.window_seconds * self.sample_rate / self.features.hop_length))


def _or_auto(accepts: Callable[[object], bool], expected: str) -> Callable[[object], object]:
    """A before-validator for a setting that is ``auto`` or a value ``accepts``
    takes: one line that says what is expected, instead of pydantic's one per
    member of the union."""

    def check(value):
        if value == "auto" or accepts(value):
            return value
        raise ValueError(f"must be {expected}, or auto")

    return check


def _whole_number(lowest: int, highest: int | None = None) -> Callable[[object], bool]:
    # type() and not isinstance(): true and false are not numbers here.
    return lambda value: type(value) is int and lowest <= value and (highest is None or value <= highest)


class EtlSettings(_Section):
    workers: Annotated[Integer, Field(ge=1, le=64)]
    # stop: the first unreadable recording stops etl; skip: leave it out and
    # list it in the etl report (metrics/etl_report.json).
    on_unreadable: Literal["stop", "skip"]
    background_windows: Annotated[Integer, Field(ge=0, le=100)]
    # Windows cut along each event, each centred on an equal share of it: a
    # song longer than a window is seen whole, at several offsets. "auto":
    # from the labelled calls of each species (rainforest.etl.windows_per_call).
    windows_per_event: Annotated[Integer, Field(ge=1, le=20)] | Literal["auto"]

    _check_windows_per_event = field_validator("windows_per_event", mode="before")(
        _or_auto(_whole_number(1, 20), "a whole number from 1 to 20")
    )


class SplitSettings(_Section):
    seed: Seed
    # 1: hold out validation_fraction; K >= 2: K-fold cross-validation; auto:
    # from the labelled recordings per species (rainforest.split.choose_folds).
    folds: Annotated[Integer, Field(ge=1, le=20)] | Literal["auto"]
    validation_fraction: Annotated[Number, Field(gt=0, lt=0.5)]

    _check_folds = field_validator("folds", mode="before")(
        _or_auto(_whole_number(1, 20), "a whole number from 1 (a holdout) to 20")
    )


class NoiseSettings(_Section):
    enabled: bool
    snr_db: tuple[Number, Number]

    _check_snr_db = field_validator("snr_db")(_check_ordered)


class GainSettings(_Section):
    enabled: bool
    db: tuple[Number, Number]

    _check_db = field_validator("db")(_check_ordered)


class TimeShiftSettings(_Section):
    enabled: bool
    max_seconds: PositiveFloat


class PitchShiftSettings(_Section):
    enabled: bool
    semitones: tuple[Number, Number]

    @field_validator("semitones")
    @classmethod
    def _check_semitones(cls, semitones: tuple[float, float], info: ValidationInfo) -> tuple[float, float]:
        _check_ordered(semitones, info)
        if max(abs(s) for s in semitones) > 12:
            raise ValueError("semitones must lie within [-12, 12]")
        return semitones


class TimeStretchSettings(_Section):
    enabled: bool
    rate: tuple[PositiveFloat, PositiveFloat]

    @field_validator("rate")
    @classmethod
    def _check_rate(cls, rate: tuple[float, float], info: ValidationInfo) -> tuple[float, float]:
        _check_ordered(rate, info)
        if not (0.5 <= rate[0] and rate[1] <= 2.0):
            raise ValueError("rate must lie within [0.5, 2.0]")
        return rate


class AugmentSettings(_Section):
    seed: Seed
    workers: Annotated[Integer, Field(ge=1, le=64)]
    copies: Annotated[Integer, Field(ge=0, le=20)]
    noise: NoiseSettings
    gain: GainSettings
    time_shift: TimeShiftSettings
    pitch_shift: PitchShiftSettings
    time_stretch: TimeStretchSettings


#: The folder of user-supplied embedding models (``embedding.onnx_file``): the
#: embed stage depends on it, so replacing a model or its descriptor reruns
#: what it must.
EMBEDDING_MODELS_DIR = "embedding_models"


class EmbeddingSettings(_Section):
    # A model of rainforest.embedding.EMBEDDING_MODELS: none, birdnet-v2.4 or
    # onnx (listed here, not imported: every stage reads the settings, few
    # need the models; a test keeps the two lists equal).
    model: Literal["none", "birdnet-v2.4", "onnx"]
    # For model onnx: the ONNX file, with its descriptor beside it (the same
    # name ending in .yaml, read by OnnxDescriptor).
    onnx_file: Annotated[str, Strict()] = f"{EMBEDDING_MODELS_DIR}/model.onnx"

    @field_validator("onnx_file")
    @classmethod
    def _check_onnx_file(cls, onnx_file: str) -> str:
        path = PurePosixPath(onnx_file)
        if path.is_absolute() or ".." in path.parts or path.parts[:1] != (EMBEDDING_MODELS_DIR,):
            raise ValueError(
                f"must be a path inside the project's {EMBEDDING_MODELS_DIR}/ folder, which the embed stage "
                f"depends on, e.g. {EMBEDDING_MODELS_DIR}/perch_v2.onnx: copy or link the model there"
            )
        if path.suffix != ".onnx":
            raise ValueError("must name an .onnx file")
        return onnx_file

    @model_validator(mode="after")
    def _check_file_exists(self) -> EmbeddingSettings:
        # Here, in the check stage, not in embed: a missing model stops the run
        # before DVC deletes any output.
        if self.model == "onnx":
            for path, what in [
                (Path(self.onnx_file), "the ONNX model"),
                (descriptor_path(self.onnx_file), "its descriptor"),
            ]:
                if not path.is_file():
                    raise ValueError(
                        f"embedding.onnx_file: {path} ({what}) not found; put the model and its descriptor in "
                        f"{EMBEDDING_MODELS_DIR}/ (docs/model.md, 'Your own embedding model')"
                    )
        return self


def descriptor_path(onnx_file: str | Path) -> Path:
    """The descriptor of an ONNX embedding model: beside it, the same name ending in ``.yaml``.

    Examples
    --------
    >>> descriptor_path("embedding_models/perch_v2.onnx").as_posix()
    'embedding_models/perch_v2.yaml'
    """
    return Path(onnx_file).with_suffix(".yaml")


class OnnxPreprocessing(_Section):
    # Applied to each window in this order, after it is fitted to the model's
    # rate and length. remove_mean: subtract the window's mean. peak: scale the
    # window so its largest absolute sample is this (Perch's cards recommend
    # 0.25); windows quieter than rainforest.embedding.PEAK_FLOOR are scaled
    # as if that loud.
    remove_mean: bool = False
    peak: PositiveFloat | None = None


class OnnxDescriptor(_Section):
    """What the pipeline needs to know to run a user's ONNX embedding model.

    Read from the YAML file beside the model (:func:`descriptor_path`); see
    docs/model.md for the fields and an example (Perch v2).
    """

    # Audio the model takes: one window of window_seconds at sample_rate Hz,
    # float32 samples in [-1, 1], as input tensor `input` of shape (batch, samples).
    sample_rate: Annotated[Integer, Field(ge=1000)]
    window_seconds: PositiveFloat
    input: Annotated[str, Strict(), Field(min_length=1)]
    # The embedding: output tensor `output` of shape (batch, dimension).
    output: Annotated[str, Strict(), Field(min_length=1)]
    dimension: PositiveInt
    preprocessing: OnnxPreprocessing = OnnxPreprocessing()
    # The licence of the model's weights, in words (a head trained on its
    # embeddings inherits it); it goes on the model card.
    licence: Annotated[str, Strict(), Field(min_length=1)]
    # Optional: the file's SHA-256, refused if the file has another.
    sha256: Annotated[str, Strict(), Field(pattern="^[0-9a-f]{64}$")] | None = None


def load_descriptor(path: str | Path) -> OnnxDescriptor:
    """Read and validate an ONNX embedding model's descriptor.

    Raises
    ------
    ConfigError
        If the file is missing or not YAML, or any field is missing, unknown
        or invalid; the message names the file and every offending field.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "m.yaml").write_text("sample_rate: 32000\nwindow_seconds: 5.0\n"
    ...     "input: inputs\noutput: embedding\ndimension: 1536\nlicence: Apache-2.0\n")
    >>> load_descriptor(folder / "m.yaml").dimension
    1536
    """
    values = _read_yaml_mapping(
        Path(path), what="descriptor of an ONNX embedding model", missing="write it beside the model (docs/model.md)"
    )
    try:
        return OnnxDescriptor.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_format_errors(error, str(path), reference="docs/model.md")) from None


class ModelSettings(_Section):
    architecture: Literal["baseline", "cnn", "resnet", "embedding_head"]
    frequency_channel: bool
    filters: Annotated[list[PositiveInt], Field(min_length=1, max_length=6)]
    # dense: a hidden layer of dense_units; linear: none; auto: dense, except for
    # embedding_head, which trains both and keeps the one with the higher
    # out-of-fold LWLRAP (rainforest.training.candidate_heads).
    head: Literal["auto", "dense", "linear"] = "auto"
    dense_units: PositiveInt
    dropout: Annotated[Number, Field(ge=0, lt=1)]


class SpecAugmentSettings(_Section):
    time_masks: Annotated[Integer, Field(ge=0, le=10)]
    max_time_frames: Annotated[Integer, Field(ge=1)]
    frequency_masks: Annotated[Integer, Field(ge=0, le=10)]
    max_frequency_bins: Annotated[Integer, Field(ge=1)]


class TrainSettings(_Section):
    seed: Seed
    epochs: PositiveInt
    batch_size: PositiveInt
    learning_rate: Annotated[Number, Field(gt=0, le=1)]
    loss: Literal["masked_bce", "softmax_crossentropy"]
    unknown_label_weight: Annotated[Number, Field(ge=0, le=1)]
    use_false_positives: bool
    use_augmented: bool
    optimizer: Literal["adam", "adamw"]
    weight_decay: Annotated[Number, Field(ge=0, le=1)]
    schedule: Literal["constant", "cosine"]
    # auto: rainforest.training.epoch_choice (on a holdout: 8 and true; when
    # cross-validating: 0 and false, all epochs, the last one kept).
    early_stopping_patience: Annotated[Integer, Field(ge=0)] | Literal["auto"]
    select_best_epoch: bool | Literal["auto"]

    _check_patience = field_validator("early_stopping_patience", mode="before")(
        _or_auto(_whole_number(0), "a whole number of epochs (0: never stop early)")
    )
    _check_selection = field_validator("select_best_epoch", mode="before")(
        _or_auto(lambda value: type(value) is bool, "true or false")
    )

    spec_augment: SpecAugmentSettings
    mixup_alpha: Annotated[Number, Field(ge=0, le=10)]
    # ensemble: the folds' models, their scores averaged; refit: one more
    # model trained on every labelled recording for the epochs the folds kept;
    # auto: refit when cross-validating, the holdout's model otherwise
    # (rainforest.training.final_model_choice).
    final_model: Literal["auto", "ensemble", "refit"]

    @model_validator(mode="after")
    def _check(self) -> TrainSettings:
        if self.loss == "softmax_crossentropy" and self.use_false_positives:
            raise ValueError(
                "loss softmax_crossentropy needs one present species per window: set "
                "use_false_positives: false (false-positive windows have none)"
            )
        return self


class PseudoLabelSettings(_Section):
    # Rounds of train, pseudo-label, train again after the first model (0: none,
    # the pipeline as without a pool); rainforest.pseudo_labels.
    rounds: Annotated[Integer, Field(ge=0, le=10)]
    # Where the pool's unlabelled windows come from: the time of the training
    # recordings (every recording in train/) that no labelled window or event
    # covers, a folder of recordings (pool_dir, a dependency of the pool
    # stage, empty by default), and, for competitions only, the test
    # recordings (the test figures are then transductive: metrics/test.json
    # says so).
    training_recordings: bool
    pool_dir: Path
    use_test_recordings: bool
    # Windows cut from each pool recording, at random where free (seeded by its id).
    windows_per_recording: Annotated[Integer, Field(ge=1, le=1000)]
    # A pool window scoring at least positive_score for a species becomes a
    # positive of it; at most absence_score, a known absence; at most
    # max_per_species of each per species and round, so a common species does
    # not swamp the rest. weight: the loss weight of a pseudo-label (a
    # person's label weighs 1).
    positive_score: Annotated[Number, Field(gt=0, lt=1)]
    absence_score: Annotated[Number, Field(gt=0, lt=1)]
    max_per_species: Annotated[Integer, Field(ge=1)]
    weight: Annotated[Number, Field(gt=0, le=1)]

    @model_validator(mode="after")
    def _check(self) -> PseudoLabelSettings:
        if self.absence_score >= self.positive_score:
            raise ValueError(
                f"absence_score ({self.absence_score}) must be below positive_score ({self.positive_score}): a "
                "window cannot be both a species' positive and its known absence"
            )
        return self


class EvaluateSettings(_Section):
    # Each species' detection threshold is the lowest validation score that
    # reaches this precision (see rainforest.detect.thresholds.select_thresholds).
    target_precision: Annotated[Number, Field(gt=0, le=1)]
    worst_examples: Annotated[Integer, Field(ge=1, le=48)]


@dataclass(frozen=True)
class ScoringSettings:
    """How windows are slid over a recording and scored: a window starts every
    ``hop_seconds``, and ``batch_size`` windows are scored at a time (``submit``'s
    settings, or ``rainforest-detect``'s options)."""

    hop_seconds: float
    batch_size: int


class SubmitSettings(_Section):
    workers: Annotated[Integer, Field(ge=1, le=64)]
    hop_seconds: PositiveFloat
    batch_size: PositiveInt
    aggregation: Literal["max", "mean_top_k"]
    top_k: PositiveInt

    @property
    def scoring(self) -> ScoringSettings:
        """The settings of :func:`rainforest.detect.scoring.score_windows`."""
        return ScoringSettings(hop_seconds=self.hop_seconds, batch_size=self.batch_size)


class Settings(_Section):
    data: DataSettings
    demo: DemoSettings
    audio: AudioSettings
    features: FeatureSettings
    etl: EtlSettings
    split: SplitSettings
    augment: AugmentSettings
    embedding: EmbeddingSettings
    model: ModelSettings
    train: TrainSettings
    pseudo_label: PseudoLabelSettings
    evaluate: EvaluateSettings
    submit: SubmitSettings

    @model_validator(mode="after")
    def _check(self) -> Settings:
        nyquist = self.audio.sample_rate / 2
        if self.features.fmax > nyquist:
            raise ValueError(
                f"features.fmax ({self.features.fmax}) must be at most half of audio.sample_rate ({nyquist})"
            )
        window_samples = self.features.window_seconds * self.audio.sample_rate
        if window_samples < self.features.n_fft:
            raise ValueError(
                f"features.window_seconds ({self.features.window_seconds}) must hold at "
                f"least one FFT frame (n_fft / sample_rate = "
                f"{self.features.n_fft / self.audio.sample_rate:.4f} s)"
            )
        head, embedding = self.model.architecture == "embedding_head", self.embedding.model != "none"
        if head != embedding:
            raise ValueError(
                f"model.architecture ({self.model.architecture}) and embedding.model ({self.embedding.model}) "
                "disagree: the embedding_head architecture trains on a pretrained model's embeddings, so set "
                "both (model.architecture: embedding_head, embedding.model: birdnet-v2.4 or onnx) or neither "
                "(embedding.model: none)"
            )
        if self.pseudo_label.rounds and self.train.loss != "masked_bce":
            raise ValueError(
                f"pseudo_label.rounds ({self.pseudo_label.rounds}) needs train.loss: masked_bce: a pseudo-label is "
                "one species' presence or absence, which softmax_crossentropy's one species per window cannot take"
            )
        if self.submit.hop_seconds > self.features.window_seconds:
            raise ValueError(
                f"submit.hop_seconds ({self.submit.hop_seconds}) must not exceed "
                f"features.window_seconds ({self.features.window_seconds}): "
                "windows would skip audio"
            )
        return self


def _format_errors(error: ValidationError, source: str, *, reference: str = "params.yaml in the project") -> str:
    lines = [f"{source}: {error.error_count()} invalid setting(s):"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        got = f" (got {item.get('input')!r})"
        if not key:
            # A check across sections (Settings._check): its message starts
            # with the key it is about, and its input is the whole file.
            lines.append(f"  {item['msg'].removeprefix('Value error, ')}")
        elif item["type"] == "missing":
            lines.append(f"  {key}: missing; add it (see {reference})")
        elif item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key; check its spelling against {reference}{got}")
        else:
            lines.append(f"  {key}: {item['msg'].removeprefix('Value error, ')}{got}")
    return "\n".join(lines)


def settings_from_dict(values: dict, source: str = "params.yaml") -> Settings:
    """Validate a nested mapping of settings, as read from ``params.yaml``."""
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_format_errors(error, source)) from None


def load_settings(path: str | Path = "params.yaml") -> Settings:
    """Read and validate the settings file.

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or any value is invalid. The
        message names every offending key.
    """
    values = _read_yaml_mapping(Path(path), what="settings file", missing="run from the project root")
    return settings_from_dict(values, source=str(path))


def _read_yaml_mapping(path: Path, *, what: str, missing: str) -> dict:
    """The mapping the YAML file ``path`` holds; ``what`` names the file and
    ``missing`` says what to do when it is not there."""
    try:
        values = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found; {missing}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    return values
