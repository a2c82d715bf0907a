"""Show the RoPE trap on a model folder written the transformers 5 way (rope_theta only inside
rope_parameters): base-model logits of mlx-lm against transformers, without and with the top-level keys
that morris_mlx.models.rope adds. docs/rope-trap.md quotes its output.

    python scripts/check_rope_trap.py [MODEL_DIR]     # default: a tiny random Llama-shaped model
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np


def logits_gap(model_dir: Path, overrides: dict) -> float:
    import mlx.core as mx
    import torch
    from mlx_lm.utils import load
    from transformers import AutoModelForCausalLM

    tokens = list(range(5, 69))
    model, _ = load(str(model_dir), model_config=overrides)
    ours = np.array(model(mx.array([tokens]))[0].astype(mx.float32))
    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        theirs = ref(torch.tensor([tokens])).logits[0].numpy()
    return float(np.abs(ours - theirs).max())


def main() -> None:
    from morris_mlx.models.random_model import build_random_model
    from morris_mlx.models.rope import model_rope_overrides

    with tempfile.TemporaryDirectory() as tmp:
        if len(sys.argv) > 1:
            model_dir = Path(tmp) / "model"
            shutil.copytree(sys.argv[1], model_dir)
        else:
            model_dir = build_random_model(Path(tmp) / "tiny", shape="tiny", seed=0)
        config = json.loads((model_dir / "config.json").read_text())
        theta = config.pop("rope_theta", None) or config["rope_parameters"]["rope_theta"]
        config.pop("rope_scaling", None)
        config["rope_parameters"] = {**config.get("rope_parameters", {}), "rope_theta": theta}
        (model_dir / "config.json").write_text(json.dumps(config))  # as transformers 5 writes it
        print(f"rope_theta {theta} only in rope_parameters:")
        print(f"  max |logit difference| mlx-lm vs transformers, config as written: {logits_gap(model_dir, {}):.3g}")
        fixed = logits_gap(model_dir, model_rope_overrides(model_dir))
        print(f"  with the top-level keys morris adds:                              {fixed:.3g}")


if __name__ == "__main__":
    main()
