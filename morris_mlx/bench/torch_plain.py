"""The reference our torch path is measured against: plain `generate` with an unmerged PEFT adapter."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from morris_mlx.bench.measure import summarise
from morris_mlx.prompts import article_messages


def generate_plain_peft(
    model_dir: Path,
    mlx_adapter: Path,
    scratch: Path,
    max_tokens: int,
    repeats: int,
    device: str,
    load_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """`load_kwargs` are the same from_pretrained options (dtype, quantization) our path ran with."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

    from morris_mlx.backends.torch_backend import quiet_peft
    from morris_mlx.export.actions import export_peft

    peft_dir = export_peft(mlx_adapter, scratch / "plain-peft", model=str(model_dir), force=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir, **load_kwargs)
    if not getattr(base, "hf_quantizer", None):  # bitsandbytes has placed the weights already
        base = base.to(device)
    with quiet_peft():
        model = PeftModel.from_pretrained(base, str(peft_dir)).eval()
    ids = tokenizer.apply_chat_template(
        article_messages("network slicing"), add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"].to(device)
    ttft, decode = [], []
    for run in range(repeats + 1):
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
        kwargs = {"input_ids": ids, "max_new_tokens": max_tokens, "do_sample": False, "streamer": streamer}
        started = time.perf_counter()
        output: list[Any] = []
        thread = threading.Thread(target=lambda out=output, kw=kwargs: out.append(model.generate(**kw)))
        thread.start()
        first = None
        for _ in streamer:
            if first is None:
                first = time.perf_counter() - started
        thread.join()
        total = time.perf_counter() - started
        if run:
            ttft.append(first or total)
            generated = output[0].shape[1] - ids.shape[1]
            decode.append((generated - 1) / max(total - (first or 0), 1e-9))
    return {"time_to_first_token_s": summarise(ttft), "decode_tokens_per_second": summarise(decode)}
