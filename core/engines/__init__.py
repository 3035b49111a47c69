"""Engine policies by id: how each serving engine keeps the KV cache and working memory."""

from __future__ import annotations

from core.catalog import UnknownChoiceError
from core.engines.base import ActivationModel, EnginePolicy, minimum
from core.engines.transformers import TransformersPolicy

ENGINES: dict[str, EnginePolicy] = {policy.id: policy for policy in (TransformersPolicy(),)}


def engine_policy(name: str) -> EnginePolicy:
    """Look an engine up by id or alias, case-insensitively."""
    key = name.strip().lower()
    for policy in ENGINES.values():
        if key == policy.id or key in policy.aliases:
            return policy
    raise UnknownChoiceError("engine", name, ENGINES)


__all__ = ["ENGINES", "ActivationModel", "EnginePolicy", "engine_policy", "minimum"]
