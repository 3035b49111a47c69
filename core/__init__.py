"""Architecture-exact accelerator memory planning for the Gemma 4 family (pure, typed, no UI)."""

from core.catalog import Catalog, CatalogError, UnknownChoiceError, load_catalog
from core.estimate import MemoryEstimate, MemoryRequest, PlanningError, estimate
from core.fit import FitResult, fit, fit_matrix
from core.params import ParameterCount, count_parameters
from core.sweep import sweep

__all__ = [
    "Catalog",
    "CatalogError",
    "FitResult",
    "MemoryEstimate",
    "MemoryRequest",
    "ParameterCount",
    "PlanningError",
    "UnknownChoiceError",
    "count_parameters",
    "estimate",
    "fit",
    "fit_matrix",
    "load_catalog",
    "sweep",
]
