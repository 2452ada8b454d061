"""Stage demo: write the built-in demo dataset in the competition's layout.

Usage: python stages/demo.py OUT_DIR

Calls :func:`rainforest.synthetic.dataset.make_demo_dataset`.
"""

import _environment  # noqa: F401  (first: runs this script with the project's Python)

from rainforest.runner import run_stage
from rainforest.synthetic.dataset import make_demo_dataset


def main(settings, out_dir):
    make_demo_dataset(out_dir, settings.demo)


if __name__ == "__main__":
    run_stage("demo", main)
