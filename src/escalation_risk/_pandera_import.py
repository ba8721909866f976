"""Import pandera without letting it import ``pyspark.pandas``.

pandera's package import tries ``import pyspark.pandas`` (to let pandas-on-Spark patch
pandas types for pandera's own Spark typing, which this library does not use). With
the ``spark`` extra installed that costs about a second at every import of the package
and prints a pandas-version warning, even for a run on the local engine. The import is
made to fail for that one moment, exactly as when PySpark is absent; Spark code that
wants ``pyspark.pandas`` later can still import it.
"""

from __future__ import annotations

import sys


def import_pandera() -> None:
    """Import pandera once, with ``pyspark.pandas`` unavailable while it loads."""
    if "pandera" in sys.modules or "pyspark.pandas" in sys.modules:
        return
    sys.modules["pyspark.pandas"] = None  # type: ignore[assignment]  # import -> ImportError
    try:
        import pandera  # noqa: F401
        import pandera.pandas  # noqa: F401
    finally:
        if sys.modules.get("pyspark.pandas", 0) is None:
            del sys.modules["pyspark.pandas"]
