"""Opens a run's galaxies.fits, galaxies.vot and galaxies.ecsv with astropy (development only; never run
by cargo test) and checks: the row count, that all three have the same columns, that every label column
equals labels.csv, and that 64-bit ids are exact integers. Prints one line per file.

    /work/venv/bin/python crates/driver/tests/check_tables_astropy.py OUT_DIR
"""
import sys
import warnings
from pathlib import Path

import numpy as np
from astropy.io import ascii
from astropy.table import Table

out = Path(sys.argv[1])
labels = Table.read(out / "labels.csv", format="ascii.csv", converters={"id": [ascii.convert_numpy(str)]})
names = None
for name in ["galaxies.fits", "galaxies.vot", "galaxies.ecsv"]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = Table.read(out / name)
    assert len(t) == len(labels), (name, len(t), len(labels))
    names = names or t.colnames
    assert t.colnames == names, (name, t.colnames, names)
    for slug in labels.colnames[1:]:
        col = "label_" + slug.replace("-", "_")
        assert np.array_equal(np.asarray(t[col]), np.asarray(labels[slug])), (name, col)
    ids = [str(v) for v in t["id"]]
    assert ids == [str(v) for v in labels["id"]], (name, "id")
    print(f"{name}: {len(t)} rows, {len(t.colnames)} columns, id dtype {t['id'].dtype}, "
          f"labels equal labels.csv, {len(caught)} warnings")
