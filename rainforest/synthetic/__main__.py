"""``python -m rainforest.synthetic profiles SOURCE_CSV OUT_CSV``.

Derives the species profile table from the competition's ``train_tp.csv``;
see :func:`rainforest.synthetic.profiles.main`.
"""

from rainforest.synthetic.profiles import main

if __name__ == "__main__":
    raise SystemExit(main())
