"""Stage demo: write the built-in demo dataset in the competition's layout.

Usage: python stages/demo.py OUT_DIR
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from pathlib import Path

from rainforest.runner import run_stage
from rainforest.synthetic.dataset import make_demo_dataset
from rainforest.synthetic.profiles import load_species_profiles


def main(settings, out_dir):
    make_demo_dataset(Path(out_dir), settings.demo, load_species_profiles())


if __name__ == "__main__":
    run_stage("demo", main)
