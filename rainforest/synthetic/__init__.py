"""Synthetic demo data in the competition's layout.

The demo dataset lets the whole pipeline run without the (large, licensed)
competition audio. It imitates the Rainforest Connection Species Audio
Detection data: 24 species whose frequency bands and call durations are the
real ones (see ``resources/species_profiles.csv``), calls of several distinct
shapes, varied backgrounds (coloured noise, rain, insect choruses, wind),
low-SNR calls and lookalike calls of other animals in the same bands.

Modules, in the order the data flows:

``profiles``
    The species profile table: reading it, deriving it from the
    competition's labels, and the command line that writes it.
``call_models``
    Each species' call: its shape kind, fixed shape parameters, band and
    durations.
``call_synthesis``
    The samples of one call, per-call jitter and lookalike calls.
``noise``
    Band-limited noise and FFT helpers shared by calls and backgrounds.
``backgrounds``
    Field-recording backgrounds: coloured noise, insect choruses, wind, rain.
``dataset``
    Planning and rendering recordings, and writing the dataset; the module's
    docstring gives the layout written and the SNR used throughout.

The middle is pure functions on arrays
(:func:`~rainforest.synthetic.call_synthesis.synthesize_call`,
:func:`~rainforest.synthetic.backgrounds.synthesize_background`,
:func:`~rainforest.synthetic.dataset.render_recording`); files are read and
written only at the edges
(:func:`~rainforest.synthetic.profiles.load_species_profiles`,
:func:`~rainforest.synthetic.dataset.make_demo_dataset`).

Command line: ``python -m rainforest.synthetic profiles SOURCE_CSV OUT_CSV``.

This file imports nothing, on purpose: a stage's deps in ``dvc.yaml`` list the
modules it imports, and importing any module of the package runs this file.
"""
