"""Plain-language one-liners for the terms the pages use, shown where each term appears."""

from __future__ import annotations

from core.catalog import PHONE_KINDS, Accelerator, WeightFormat

TERMS: dict[str, str] = {
    "KV cache": "The model's short-term memory of the conversation: keys and values kept for every token so far. It grows with context length and with the number of requests served at once.",
    "sliding window": "Most Gemma 4 layers only look back a fixed number of tokens (512 or 1,024), so their memory stops growing after that: the main reason generic calculators overstate Gemma 4.",
    "KV-shared": "The last layers of E2B and E4B reuse earlier layers' memory instead of keeping their own.",
    "PLE": "Per-layer embeddings: a large lookup table in E2B and E4B that can stay in ordinary RAM instead of GPU memory.",
    "effective (B)": "E2B and E4B are quoted by their 'effective' size: parameters without the embedding tables, which are looked up rather than computed.",
    "weight format": "How the model's numbers are stored. Fewer bits per weight means a smaller, faster model; 4-bit formats lose a little quality.",
    "runtime": "The software that runs the model (vLLM, llama.cpp, Ollama, MLX, transformers). Each keeps memory its own way.",
    "tensor parallel": "Several GPUs serve one model together, each holding a slice of every layer.",
    "n_ubatch": "llama.cpp's batch size: how many prompt tokens it processes in one step. Larger is faster at reading prompts but needs more working memory.",
    "MFU": "Model FLOPs utilisation: the share of the chip's peak arithmetic a real run achieves while reading a prompt (30-50% is typical).",
    "Pareto frontier": "The options no other option beats on both memory and quality at once: the sensible choices.",
    "naive": "What a typical online calculator says: parameters x bytes x 1.2, and every layer keeping the whole context.",
    "headroom": "Memory left over once the model, its cache and the runtime's own needs are in place.",
    "offload": "Part of the model kept in ordinary RAM and run by the CPU when the GPU is full: it runs, but much slower.",
    "context": "How many tokens (about 3/4 of a word each) one conversation or document can hold.",
    "concurrent sequences": "Requests served at the same time; each holds its own context in memory.",
    "tokens/s": "Words appear at about 3/4 of this rate. Reading speed is about 5-8 tokens/s; chat feels instant above 20.",
    "quality": "Mean of the release benchmark scores, each as a share of the best Gemma 4 model's (1 = best).",
}

# Families and well-known formats, in words a non-specialist follows.
FORMAT_FAMILIES = {
    "checkpoint": "the original weights as Google published them (16 bits per weight)",
    "hf-quant": "a compressed copy for vLLM or transformers",
    "gguf": "a single-file download for llama.cpp, Ollama and LM Studio",
    "mlx": "Apple's format for Macs (MLX)",
    "litertlm": "a single-file bundle for Google's LiteRT-LM (phones, laptops, the Raspberry Pi)",
    "onnx": "ONNX graphs for transformers.js in the browser and ONNX Runtime GenAI (split into .onnx_data files)",
    "isq": "the original weights, quantised by mistral.rs as it loads them (--isq; nothing extra to download)",
}
FORMAT_NOTES = {
    "awq": "AWQ: 4-bit weights tuned on sample text to keep quality",
    "gptq": "GPTQ: 4-bit weights tuned on sample text to keep quality",
    "nvfp4": "NVFP4: NVIDIA's 4-bit number format (native on Blackwell GPUs)",
    "mxfp4": "MXFP4: a 4-bit number format shared by groups of 32 weights",
    "fp8": "FP8: 8-bit floating point, close to the original quality",
    "qat": "QAT: Google trained the model to be stored in 4 bits, so it loses less quality",
    "ud-": "Unsloth's dynamic quant: more bits for the sensitive layers",
    "iq": "an 'importance' quant: fewer bits, chosen weight by weight",
    "_k": "a k-quant: blocks of 256 weights sharing scales",
    "bnb": "bitsandbytes: 4-bit weights compressed as the model loads",
}


def term(name: str) -> str:
    return TERMS[name]


def explain_format(weight_format: WeightFormat) -> str:
    """'GGUF Q4_K_M: a single-file download for llama.cpp..., about 4.8 bits per weight; ...'."""
    notes = [FORMAT_FAMILIES[weight_format.family]]
    for fragment, note in FORMAT_NOTES.items():
        if fragment in weight_format.id:
            notes.append(note)
            break
    bits = weight_format.main_bits
    if bits < 16:
        notes.append(f"about {bits:.1f} bits per weight against 16 in the original")
    return f"{weight_format.display_name}: " + "; ".join(notes) + "."


def device_word(accelerator: Accelerator) -> str:
    """What to call the device: a GPU is a GPU, a Pi or a phone is not."""
    if accelerator.kind in ("datacenter", "workstation", "consumer", "laptop"):
        return "GPU"
    if accelerator.kind == "apple":
        return "Mac"
    if accelerator.kind in PHONE_KINDS:
        return "phone"
    return "device"
