"""What every engine policy answers: tokens each cache layer keeps, and working memory."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, TypeAlias

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.kv_cache import KvLayerGroup
from core.params import ParameterCount
from core.architecture import TextConfig

# Formulas take plain ints (the scalar estimate) or numpy arrays (the sweep) alike.
Tokens: TypeAlias = "int | np.ndarray"


def minimum(a: Tokens, b: Tokens) -> Tokens:
    """min() for ints, np.minimum for arrays, so one formula serves both paths."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.minimum(a, b)
    return min(a, b)


class ActivationModel(BaseModel):
    """Working memory of a forward pass: linear in tokens, plus a fixed part per sequence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bytes_per_token: float = Field(ge=0)
    bytes_per_sequence: float = Field(ge=0)
    basis: str


class EnginePolicy(ABC):
    """One serving engine's memory policy."""

    id: str
    display_name: str
    aliases: tuple[str, ...] = ()

    @abstractmethod
    def retained_tokens(self, group: KvLayerGroup, sequence_tokens: Tokens) -> Tokens:
        """Tokens one sequence keeps in each layer of `group` once it holds `sequence_tokens`."""

    @abstractmethod
    def activations(
        self, text: TextConfig, params: ParameterCount, tensor_parallel: int
    ) -> ActivationModel:
        """Peak working memory of the forward pass, summed over tensor-parallel ranks."""

    def report(self, **figures: Any) -> dict[str, Any]:
        """Engine-specific start-up figures (none for engines that log none)."""
        return {}
