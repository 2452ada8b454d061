"""Training throughput: windows per second of the train stage, and where an epoch's time goes.

```
python -m benchmarks.training                      # params.yaml, 3 epochs, twice: about 2 minutes on 2 cores
python -m benchmarks.training --full               # all epochs, then evaluate and submit: test LWLRAP too
python -m benchmarks.training --code before=../old-checkout --code after=.   # two versions of the code
python -m benchmarks.training -S train.batch_size=64 -S train.learning_rate=0.004
python -m benchmarks.training --profile            # the epoch split into input pipeline, model step, validation
```

Each run is a fresh process (``--code`` puts that checkout's ``rainforest`` first on its
``sys.path``) that trains on the pipeline's window set in this directory
(``data/features/windows.h5``, ``data/split.csv``, ``data/features/augmented.h5``), so
run it after ``dvc repro train`` or ``dvc checkout``. Without ``--full`` a run trains
``--epochs`` epochs (3) with early stopping off: enough to measure throughput, not to
score a model. Windows per second is the windows trained on (epochs x windows) over the
whole ``train_model`` call (loading the windows, building the model, tracing, every epoch's
validation scoring, saving), wall time and process CPU time beside it: the CPU time shows
contention from other work on a shared machine. Figures are medians of ``--repeats``.

:func:`training_throughput` returns one run's figures; :func:`epoch_profile` the split of an
epoch for the code this module imports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

WINDOWS = "data/features/windows.h5"
SPLIT = "data/split.csv"
AUGMENTED = "data/features/augmented.h5"
WINDOW_EMBEDDINGS = "data/features/window_embeddings.h5"
AUGMENTED_EMBEDDINGS = "data/features/augmented_embeddings.h5"
POOL = "data/features/pool.h5"
POOL_EMBEDDINGS = "data/features/pool_embeddings.h5"


def _settings(params_path: str | Path, overrides: dict[str, object]):
    from rainforest.config import settings_from_dict

    values = yaml.safe_load(Path(params_path).read_text())
    for key, value in overrides.items():
        section, *path = key.split(".")
        target = values[section]
        for name in path[:-1]:
            target = target[name]
        target[path[-1]] = value
    return settings_from_dict(values)


def training_throughput(
    overrides: dict[str, object] | None = None,
    *,
    full: bool = False,
    epochs: int = 3,
    params_path: str | Path = "params.yaml",
    output_dir: str | Path | None = None,
) -> dict[str, object]:
    """Train once in this process with ``params_path`` and ``overrides``; return its figures.

    Parameters
    ----------
    overrides
        ``{"train.batch_size": 64, ...}`` applied to the settings.
    full
        Train as the train stage does (all epochs, early stopping as set), then run evaluate
        and submit on the model to score validation and test LWLRAP. Otherwise train
        ``epochs`` epochs with early stopping off, for throughput only.

    Returns
    -------
    dict
        ``epochs`` run, ``windows`` per epoch, ``train_wall_s``, ``train_cpu_s``,
        ``windows_per_s`` (epochs x windows / wall), ``epoch_s`` (the median epoch after
        the first, validation scoring included) and ``epoch_windows_per_s`` (windows / that),
        ``model_md5``, and with ``full`` ``validation_lwlrap`` and ``test_lwlrap``.
    """
    import hashlib

    from rainforest import training

    epoch_times = _time_epochs(training)

    overrides = dict(overrides or {})
    if not full:
        overrides = {"train.epochs": epochs, "train.early_stopping_patience": 0, **overrides}
    settings = _settings(params_path, overrides)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(output_dir or scratch)
        out.mkdir(parents=True, exist_ok=True)
        wall, cpu = time.perf_counter(), time.process_time()
        files: dict[str, str | Path] = {
            "windows": WINDOWS,
            "split": SPLIT,
            "augmented": AUGMENTED,
            "window_embeddings": WINDOW_EMBEDDINGS,
            "augmented_embeddings": AUGMENTED_EMBEDDINGS,
            "model": out / "model.keras",
            "validation_scores": out / "validation_scores.csv",
            "live_dir": out / "train",
        }
        if hasattr(training, "PseudoLabels"):  # a checkout with pseudo-label rounds
            files |= {
                "pool": POOL,
                "pool_embeddings": POOL_EMBEDDINGS,
                "round_models": out / "rounds",
                "pseudo_labels": out / "pseudo_labels.csv",
                "rounds": out / "rounds.json",
                "pseudo_label_counts": out / "pseudo_label_counts.csv",
            }
            training.train_model(
                model=settings.model,
                settings=settings.train,
                pseudo_label=settings.pseudo_label,
                files=training.TrainingFiles(**files),
            )
        elif hasattr(training, "TrainingFiles"):
            training.train_model(model=settings.model, settings=settings.train, files=training.TrainingFiles(**files))  # type: ignore[call-arg]  # that signature
        else:  # a checkout from before TrainingFiles takes the paths one by one
            paths = {name if name == "live_dir" else f"{name}_path": path for name, path in files.items()}
            training.train_model(model=settings.model, settings=settings.train, **paths)  # type: ignore[arg-type]  # that signature
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        epochs_run = json.loads((out / "train" / "metrics.json").read_text())["step"] + 1
        windows = _training_windows(settings)
        figures: dict[str, object] = {
            "epochs": epochs_run,
            "windows": windows,
            "train_wall_s": round(wall, 1),
            "train_cpu_s": round(cpu, 1),
            "windows_per_s": round(epochs_run * windows / wall, 1),
            # After the first epoch (which traces the model): the rate an epoch more costs.
            "epoch_s": round(statistics.median(epoch_times[1:] or epoch_times), 2),
            "epoch_windows_per_s": round(windows / statistics.median(epoch_times[1:] or epoch_times), 1),
            "model_md5": hashlib.md5((out / "model.keras").read_bytes()).hexdigest(),
        }
        if full:
            figures.update(_score(settings, out))
    return figures


def _time_epochs(training) -> list[float]:
    """Record each epoch's wall time in the returned list, with a callback put in the place of
    the trainer's progress bar (``rainforest.training.TqdmCallback``, in every version)."""
    import keras

    times: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    training.TqdmCallback = EpochTimer
    return times


def _training_windows(settings) -> int:
    from rainforest.split import read_split
    from rainforest.training import load_training_data, select_training_windows

    # The first fold's model: the holdout's only one.
    train, _ = load_training_data(WINDOWS, read_split(SPLIT), 0, AUGMENTED, use_augmented=settings.train.use_augmented)
    return len(select_training_windows(train, settings.train)["targets"])


def _score(settings, out: Path) -> dict[str, float]:
    from rainforest.evaluate import evaluate_model
    from rainforest.submit import write_submission

    evaluate_model(
        settings=settings.evaluate,
        model_path=out / "model.keras",
        windows_path=WINDOWS,
        validation_scores_path=out / "validation_scores.csv",
        events_path="data/features/events.csv",
        metrics_path=out / "validation.json",
        plots_dir=out / "plots",
        detector_path=out / "detector.json",
    )
    write_submission(
        dataset_dir=settings.data.dataset_dir,
        settings=settings.submit,
        model_path=out / "model.keras",
        submission_path=out / "submission.csv",
        metrics_path=out / "test.json",
        species_path=out / "test_species.csv",
    )
    return {
        "validation_lwlrap": json.loads((out / "validation.json").read_text())["lwlrap"],
        "test_lwlrap": json.loads((out / "test.json").read_text())["lwlrap"],
    }


def epoch_profile(
    overrides: dict[str, object] | None = None, params_path: str | Path = "params.yaml", repeats: int = 2
) -> dict[str, dict[str, float]]:
    """Where one epoch's time goes, each part timed alone (median of ``repeats``):

    - ``input pipeline``: one pass over :func:`rainforest.training.training_dataset` (reads,
      SpecAugment, mixup, batching) with no model;
    - ``model step``: forward, backward and optimiser update on one epoch's worth of fixed
      batches (``train_on_batch``), no input pipeline;
    - ``validation``: what the trainer does after each epoch to score the validation windows;
    - ``fit epoch``: one real epoch of ``model.fit`` with everything together (after a first,
      tracing epoch).

    Returns ``{part: {"wall_s": ..., "cpu_s": ...}}`` plus ``model`` with the model's
    multiply-adds per window (``macs``) and the achieved GFLOP/s of the model step.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from rainforest import training
    from rainforest.model import WeightedBinaryCrossentropy, build_model
    from rainforest.split import read_split

    settings = _settings(params_path, dict(overrides or {}))
    ts = settings.train
    train, validation = training.load_training_data(
        WINDOWS, read_split(SPLIT), 0, AUGMENTED, use_augmented=ts.use_augmented
    )
    inputs = getattr(training, "in_memory", lambda rows: rows)(train["inputs"])
    n_species = train["targets"].shape[1]
    labels = training._labels(train, ts, n_species)
    training.make_deterministic(ts.seed)
    mean, variance = training.input_statistics(inputs)
    model = build_model(settings.model, tuple(inputs.shape[1:]), n_species, mean=mean, variance=variance)
    model.compile(optimizer=training._optimizer(ts, 1000), loss=WeightedBinaryCrossentropy())
    n = len(labels)

    def timed(function) -> dict[str, float]:
        runs = []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            runs.append((time.perf_counter() - wall, time.process_time() - cpu))
        return {"wall_s": statistics.median(r[0] for r in runs), "cpu_s": statistics.median(r[1] for r in runs)}

    dataset = training.training_dataset(inputs, labels, ts)
    parts = {"input pipeline": timed(lambda: sum(1 for _ in dataset))}
    batch = np.asarray(inputs[0 : ts.batch_size], dtype=np.float32), labels[: ts.batch_size]
    model.train_on_batch(*batch)
    steps = n // ts.batch_size
    parts["model step"] = timed(lambda: [model.train_on_batch(*batch) for _ in range(steps)])
    parts["model step"] = {key: value * n / (steps * ts.batch_size) for key, value in parts["model step"].items()}
    validation_labels = training._labels(validation, ts, n_species)
    selection = training.BestEpochSelection(
        validation["inputs"],
        validation["targets"],
        0,
        False,
        **({"labels": validation_labels} if hasattr(training, "in_memory") else {}),
    )
    selection.set_model(model)
    fit_options = {}
    if hasattr(training, "ordered_batches"):  # the code before: a predict pass and an evaluate pass
        fit_options["validation_data"] = training.ordered_batches(validation["inputs"], 256, validation_labels)

        def validate():
            selection.on_epoch_end(0, {})
            model.evaluate(fit_options["validation_data"], verbose=0)
    else:

        def validate():
            selection.on_epoch_end(0, {})

    validate()
    parts["validation"] = timed(validate)
    model.fit(dataset, epochs=1, verbose=0, callbacks=[selection], **fit_options)
    parts["fit epoch"] = timed(lambda: model.fit(dataset, epochs=1, verbose=0, callbacks=[selection], **fit_options))
    macs = model_macs(model, tuple(inputs.shape[1:]))
    parts["model"] = {
        "macs": macs,
        "gflop_per_window": 3 * 2 * macs / 1e9,
        "step_gflop_per_s": 3 * 2 * macs * n / parts["model step"]["wall_s"] / 1e9,
    }
    del tf, keras
    return parts


def model_macs(model, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass of one window through the convolutions and dense layers,
    counted from the layers' output shapes (the rest, normalisation and pooling, is a few %)."""
    import keras
    import numpy as np

    probe = keras.Model(model.inputs, [layer.output for layer in model.layers[1:]])
    outputs = probe(np.zeros((1, *input_shape), np.float32))
    total = 0
    for layer, output in zip(model.layers[1:], outputs):
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        # A convolution's kernel is (kh, kw, in, out): each output value costs kh * kw * in.
        per_output = int(np.prod(kernel.shape[:-1]))
        total += per_output * int(np.prod(output.shape[1:]))
    return total


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a plain float32 size x size matrix product with TensorFlow on this machine (all cores)."""
    import tensorflow as tf

    a, b = tf.random.normal((size, size)), tf.random.normal((size, size))
    product = tf.function(lambda: tf.matmul(a, b))
    product().numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        product().numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def _child(arguments: list[str]) -> None:
    # python -m benchmarks.training --child JSON: one run in this process, figures as JSON on the last line.
    request = json.loads(arguments[0])
    if request.get("profile"):
        result = {
            "profile": epoch_profile(request["overrides"], repeats=request["repeats"]),
            "matmul_gflops": matmul_gflops(),
        }
    else:
        result = training_throughput(request["overrides"], full=request["full"], epochs=request["epochs"])
    import rainforest

    result["rainforest"] = str(Path(rainforest.__file__).parent)
    print("RESULT " + json.dumps(result))


# A child process: the checkout's rainforest first on sys.path, this file loaded by its path
# (the checkout may have a benchmarks package of its own, without this module).
_CHILD = """import importlib.util, sys
code, module_path, request = sys.argv[1:]
if code:
    sys.path.insert(0, code)
spec = importlib.util.spec_from_file_location("training_benchmark", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.main(["--child", request])
"""


def _run(code: str | None, request: dict) -> dict:
    code_dir = str(Path(code).resolve()) if code is not None else ""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, code_dir, str(Path(__file__).resolve()), json.dumps(request)],
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.exit(f"benchmarks.training: a run failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _parse_override(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    return key, yaml.safe_load(value)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a configuration running the rainforest package of checkout DIR (repeatable)",
    )
    parser.add_argument(
        "-S",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a params override for every configuration, e.g. train.batch_size=64",
    )
    parser.add_argument("--full", action="store_true", help="train all epochs and score test LWLRAP")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per throughput run (default 3)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration; medians shown (default 2)")
    parser.add_argument("--profile", action="store_true", help="split an epoch into its parts instead")
    args = parser.parse_args(argv)
    overrides = dict(_parse_override(item) for item in args.set)
    label = ", ".join(args.set) or "params.yaml"
    configurations = [tuple(item.split("=", 1)) for item in args.code] or [("this checkout", None)]
    if args.profile:
        print("| code | part | wall s per epoch | CPU s per epoch |")
        print("|---|---|---:|---:|")
        for name, code in configurations:
            result = _run(code, {"profile": True, "overrides": overrides, "repeats": args.repeats})
            for part, figures in result["profile"].items():
                if part != "model":
                    print(f"| {name} | {part} | {figures['wall_s']:.2f} | {figures['cpu_s']:.2f} |")
            model = result["profile"]["model"]
            print(
                f"| {name} | model: {model['macs'] / 1e6:.1f} M multiply-adds per window forward, "
                f"{model['gflop_per_window']:.3f} GFLOP per window trained; model step "
                f"{model['step_gflop_per_s']:.1f} GFLOP/s, float32 matmul {result['matmul_gflops']:.1f} GFLOP/s | | |"
            )
        return
    print(
        "| code | settings | epochs run | windows/s | windows/s per epoch after the first | train wall s "
        "| train CPU s | validation LWLRAP | test LWLRAP |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, code in configurations:
        runs = [
            _run(code, {"overrides": overrides, "full": args.full, "epochs": args.epochs}) for _ in range(args.repeats)
        ]

        def median(key):
            return statistics.median(run[key] for run in runs)  # noqa: B023 (called in this iteration only)

        scores = f"{median('validation_lwlrap'):.5f} | {median('test_lwlrap'):.5f}" if args.full else "| "
        print(
            f"| {name} | {label} | {median('epochs'):g} | {median('windows_per_s'):.1f} | "
            f"{median('epoch_windows_per_s'):.1f} | {median('train_wall_s'):.1f} | {median('train_cpu_s'):.1f} | "
            f"{scores} |"
        )
        if len({run["model_md5"] for run in runs}) > 1:
            print(f"| {name}: the {len(runs)} runs wrote different model files | | | | | | | | |")


if __name__ == "__main__":
    main()
