"""Prefill and decode speed of the embedded local models (llama.cpp on the CPU).

Usage::

    python benchmarks/local_speed.py [local/smollm2-135m local/qwen2.5-coder-0.5b ...]
        [--threads N] [--prompt-tokens 512] [--decode-tokens 128] [--repeats 3]

Per model it reports load time, prefill tokens/s (a fresh prompt of ``--prompt-tokens`` tokens
evaluated from an empty KV cache), decode tokens/s (greedy, through llama-cpp's own token generator,
ignoring EOS so every run decodes the same number of tokens), and one end-to-end ``LocalModel.generate`` call, the
path the episode loop uses. Each figure is the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from mulligan.events import Message
from mulligan.models.base import GenerateParams
from mulligan.models.local import LocalModel, default_threads, run_in_llama_thread

FILLER = (
    "def is_prime(n):\n    if n < 2:\n        return False\n    for d in range(2, int(n ** 0.5) + 1):\n"
    "        if n % d == 0:\n            return False\n    return True\n\n"
)


def measure(
    name: str, *, threads: int, prompt_tokens: int, decode_tokens: int, repeats: int
) -> None:
    """Print load, prefill, decode and end-to-end figures for one model."""
    model = LocalModel.from_name(name, n_threads=threads, n_ctx=4096)
    start = time.perf_counter()
    model.load()
    load_s = time.perf_counter() - start
    llm = model._llm  # the benchmark times raw llama.cpp, below the chat layer
    assert llm is not None

    def raw_speeds() -> tuple[list[float], list[float]]:
        assert llm is not None
        base = llm.tokenize((FILLER * 200).encode(), add_bos=False)
        prefill: list[float] = []
        decode: list[float] = []
        for r in range(repeats):
            # A different first token each repeat, so no KV prefix is reused.
            prompt = llm.tokenize(f"# run {r}\n".encode(), add_bos=False) + base
            prompt = prompt[:prompt_tokens]
            llm.reset()
            # llama-cpp's own generator (the one create_chat_completion drives), greedy; it does
            # not stop at EOS, so every repeat decodes exactly decode_tokens tokens. The first
            # token arrives after the prefill; the rest are pure decode steps.
            tokens = llm.generate(prompt, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, reset=True)
            start = time.perf_counter()
            next(tokens)
            first = time.perf_counter()
            prefill.append(len(prompt) / (first - start))
            for _ in range(decode_tokens):
                next(tokens)
            decode.append(decode_tokens / (time.perf_counter() - first))
            tokens.close()
        llm.reset()
        return prefill, decode

    # On the llama thread, like every llama.cpp call (calling from a second live thread would
    # itself slow llama.cpp down; see mulligan.models.local).
    prefill, decode = run_in_llama_thread(raw_speeds)

    # End to end: chat template, tokenisation, sampling, detokenisation, worker thread.
    messages = [
        Message(role="system", content="You are a careful Python programmer."),
        Message(role="user", content="Write a function is_prime(n) and explain it briefly."),
    ]
    params = GenerateParams(max_tokens=decode_tokens, temperature=0.0)
    completion = asyncio.run(model.generate(messages, params))
    e2e = (completion.prompt_tokens + completion.completion_tokens) / completion.latency_s
    asyncio.run(model.aclose())

    print(
        f"{name:28s} threads={threads} load={load_s:5.2f}s "
        f"prefill={statistics.median(prefill):6.1f} tok/s ({prompt_tokens} tok) "
        f"decode={statistics.median(decode):5.1f} tok/s ({decode_tokens} tok) | generate: "
        f"{completion.prompt_tokens}+{completion.completion_tokens} tok in "
        f"{completion.latency_s:.2f}s ({e2e:.1f} tok/s overall, finish={completion.finish_reason})"
    )


def main() -> None:
    """Parse arguments and measure each model in turn."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "models", nargs="*", default=["local/smollm2-135m", "local/qwen2.5-coder-0.5b"]
    )
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for name in args.models:
        measure(
            name,
            threads=args.threads,
            prompt_tokens=args.prompt_tokens,
            decode_tokens=args.decode_tokens,
            repeats=args.repeats,
        )


if __name__ == "__main__":
    main()
