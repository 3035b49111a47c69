"""Hypothesis strategies shared by the importer and link tests: configs changed in structure."""

from pathlib import Path

from hypothesis import strategies as st

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"
SHIPPED = sorted(path.stem for path in CONFIGS.glob("*.json"))

# Gemma 4 configs carry the most structure (sharing, per-layer heads, two encoders): drawn more often.
GEMMA_4 = [name for name in SHIPPED if name.startswith("gemma-4")]
LAYER_TYPES = st.sampled_from(["sliding_attention", "full_attention"])
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=False), st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
LAYER_KEYS = st.sampled_from([" 4 ", "\u0661", "0_0", "-1", "+1", "01", "", "0", "4", "5", "999999", "1e2", "4.0"])
ENCODER_FIELDS = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                  "head_dim", "patch_size", "pooling_kernel_size", "position_embedding_size", "subsampling_conv_channels",
                  "conv_kernel_size", "output_proj_dims", "model_type", "image_size", "vision_use_head"]


@st.composite
def structural_change(draw, document: dict) -> None:
    """Change the shape of `document` (a parsed config.json) in place, the way a crafted or
    damaged file would: a layer count that disagrees with the per-layer lists, KV sharing
    past the owners, odd per-layer overrides, encoders with missing or hostile fields."""
    section = document.get("text_config", document)
    layers = section.get("num_hidden_layers", 4)
    sizes = st.sampled_from([0, 1, layers - 1, layers, layers, layers + 1]) | st.integers(0, 64)

    def per_layer(items: st.SearchStrategy) -> st.SearchStrategy:
        """A list of a drawn length made by repeating a short drawn pattern (long lists stay cheap to draw)."""
        return sizes.flatmap(lambda n: st.lists(items, min_size=1, max_size=4).map(lambda pattern: (pattern * n)[:n]))

    for change in draw(st.lists(st.sampled_from(
        ["layers", "shared", "layer_types", "widths", "dense_layers", "overrides", "encoder", "drop", "experts", "window"]
    ), min_size=1, max_size=3)):  # fmt: skip
        if change == "layers":
            layers = draw(st.sampled_from([0, 1, 2, layers - 1, layers + 1, 1000, 1001, 10**9]) | ODD_VALUES)
            section["num_hidden_layers"] = layers
            layers = layers if isinstance(layers, int) and not isinstance(layers, bool) and 0 < layers <= 1_100 else 4
        elif change == "shared":
            # Near the layer count is where sharing runs out of cache owners.
            near_all = st.sampled_from([layers - 1, layers - 2, layers - 3, layers - 5, layers // 2, layers])
            section["num_kv_shared_layers"] = draw(near_all | st.integers(-2, layers + 2) | ODD_VALUES)
        elif change == "layer_types":
            section["layer_types"] = draw(per_layer(LAYER_TYPES) | per_layer(LAYER_TYPES | ODD_VALUES) | ODD_VALUES)
        elif change == "widths":
            section["intermediate_size"] = draw(per_layer(st.integers(-2, 70_000) | st.booleans()) | ODD_VALUES)
        elif change == "dense_layers":
            section["mlp_only_layers"] = draw(st.lists(st.integers(-2, layers + 2) | ODD_VALUES, max_size=6) | ODD_VALUES)
        elif change == "overrides":
            override = st.dictionaries(st.sampled_from(["head_dim", "num_key_value_heads", "other"]), st.integers(-2, 5_000) | ODD_VALUES, max_size=2)
            section["per_layer_config"] = draw(st.dictionaries(LAYER_KEYS, override | ODD_VALUES, max_size=4) | ODD_VALUES)
        elif change == "encoder":
            key = draw(st.sampled_from(["vision_config", "audio_config"]))
            encoder = document.get(key)
            if isinstance(encoder, dict) and draw(st.booleans()):
                present = sorted(field for field in ENCODER_FIELDS if field in encoder)
                fields = st.sampled_from(present) if present and draw(st.booleans()) else st.sampled_from(ENCODER_FIELDS)
                for field in draw(st.lists(fields, min_size=1, max_size=3)):
                    if draw(st.booleans()):
                        encoder.pop(field, None)
                    else:
                        encoder[field] = draw(
                            st.integers(-5, 10**7) | ODD_VALUES | st.lists(st.integers(-5, 200) | st.booleans(), max_size=3)
                        )
            else:
                document[key] = draw(ODD_VALUES)
        elif change == "drop":
            keys = sorted(section)
            if keys:
                section.pop(draw(st.sampled_from(keys)))
        elif change == "experts":
            section.update(enable_moe_block=draw(st.booleans() | ODD_VALUES), num_experts=draw(st.integers(-1, 300) | ODD_VALUES),
                           top_k_experts=draw(st.integers(-1, 300)), moe_intermediate_size=draw(st.integers(-1, 5_000)))
        else:
            section["sliding_window"] = draw(st.integers(-2, 10**9) | ODD_VALUES)
