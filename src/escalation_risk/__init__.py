"""escalation_risk: early warning of disputes likely to turn into crimes (民转刑).

The public API is this page; everything else is importable but not promised.
"""

from .contract import CONTRACT_VERSION
from .dataset import DataValidationError, Dataset, load_dataset

__version__ = "0.1.0"

__all__ = [
    "CONTRACT_VERSION",
    "DataValidationError",
    "Dataset",
    "load_dataset",
    "__version__",
]
