"""Dataset.fingerprint hashes each table a block of rows at a time: the same value as all at once."""

import hashlib

import pandas as pd

from escalation_risk.contract import CONTRACT_1_1, TABLE_ORDER
from escalation_risk.dataset import frame


def _whole(ds) -> str:
    """The fingerprint as written before blocks: every table hashed at once."""
    h = hashlib.sha256()
    for name in TABLE_ORDER:
        df = getattr(ds, name)
        if name in CONTRACT_1_1 and not len(df) and not CONTRACT_1_1[name]:
            continue
        if name in CONTRACT_1_1:
            df = df.drop(columns=[c for c in CONTRACT_1_1[name] if df[c].isna().all()])
        h.update(name.encode())
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def test_the_fingerprint_in_blocks_is_the_whole_tables(small_district, monkeypatch) -> None:
    ds = small_district
    assert max(len(getattr(ds, n)) for n in TABLE_ORDER) > 100
    whole = _whole(ds)
    assert ds.fingerprint() == whole
    monkeypatch.setattr(frame, "FINGERPRINT_ROWS", 7)  # many blocks, the last one short
    assert ds.fingerprint() == whole
    changed = frame.Dataset(**{**{n: getattr(ds, n) for n in TABLE_ORDER},
                               "incidents": ds.incidents.iloc[:-1]})
    assert changed.fingerprint() != whole
