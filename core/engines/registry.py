"""Engine policies by id: the registry the planner looks engines up in."""

from __future__ import annotations

from core.catalog import UnknownChoiceError
from core.engines.base import EnginePolicy
from core.engines.litert_lm import LiteRtLmPolicy
from core.engines.llama_cpp import LlamaCppPolicy
from core.engines.mistralrs import MistralRsPolicy
from core.engines.mlx import MlxPolicy
from core.engines.ollama import OllamaPolicy
from core.engines.ort_genai import OrtGenAiPolicy
from core.engines.transformers import TransformersPolicy
from core.engines.transformers_js import TransformersJsPolicy
from core.engines.vllm import VllmPolicy
from core.engines.vllm_metal import VllmMetalPolicy

ENGINES: dict[str, EnginePolicy] = {
    policy.id: policy
    for policy in (
        TransformersPolicy(), LlamaCppPolicy(), OllamaPolicy(), VllmPolicy(), MlxPolicy(), LiteRtLmPolicy(),
        VllmMetalPolicy(),
        TransformersJsPolicy(), OrtGenAiPolicy(), MistralRsPolicy(),
    )
}


def engine_policy(name: str) -> EnginePolicy:
    """Look an engine up by id or alias, case-insensitively."""
    key = name.strip().lower()
    for policy in ENGINES.values():
        if key == policy.id or key in policy.aliases:
            return policy
    raise UnknownChoiceError("engine", name, ENGINES)
