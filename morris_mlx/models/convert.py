"""Converting a Hugging Face model (hub id or local folder) to MLX with mlx-lm's converter: the source is
fetched, pickle weights re-saved as safetensors only when allowed, the RoPE keys fixed, and a manifest with
the source's fingerprint written beside the result, which appears whole or not at all."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from morris_mlx.atomic import atomic_dir, file_digests, write_json
from morris_mlx.errors import MorrisError
from morris_mlx.models.default import MANIFEST
from morris_mlx.models.fingerprint import fingerprint_model
from morris_mlx.models.rope import fix_rope_config
from morris_mlx.paths import models_dir, overlaps

log = logging.getLogger("morris")

HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]


@dataclass
class ConvertOptions:
    hf_path: str
    mlx_path: str | None = None
    quantize: bool = False
    q_bits: int = 4
    q_group_size: int = 64
    dtype: str | None = None
    revision: str | None = None
    force: bool = False
    trust_remote_code: bool = False
    allow_pickle: bool = False


def fetch_source(hf_path: str, revision: str | None, allow_pickle: bool = False) -> tuple[Path, str]:
    """A local directory for `hf_path`, downloading through huggingface-hub when it is a hub id."""
    local = Path(hf_path).expanduser()
    if local.is_dir():
        return local, "local"
    if local.suffix or hf_path.startswith((".", "/", "~")) or hf_path.count("/") != 1:
        raise MorrisError(f"{hf_path} is neither a local directory nor a hub id like org/name")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        patterns = [*HUB_PATTERNS, "*.bin"] if allow_pickle else HUB_PATTERNS
        path = snapshot_download(hf_path, revision=revision, allow_patterns=patterns)
    except RepositoryNotFoundError:
        raise MorrisError(
            f"hub repository {hf_path} does not exist or needs a token (huggingface-cli login)"
        ) from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise MorrisError(
            f"cannot download {hf_path}: the hub is unreachable ({type(exc).__name__}); download it on a "
            "connected machine and pass its folder to --hf-path, or use `morris setup-default` offline"
        ) from None
    return Path(path), "hub"


def default_output(options: ConvertOptions) -> Path:
    if options.mlx_path:
        return Path(options.mlx_path).expanduser()
    local = Path(options.hf_path).expanduser().is_dir()
    name = Path(options.hf_path).name if local else options.hf_path.replace("/", "--")
    return models_dir() / f"{name}{f'-{options.q_bits}bit' if options.quantize else ''}"


def convert_model(options: ConvertOptions) -> Path:
    """Convert `options.hf_path` to MLX; returns the output folder."""
    out = default_output(options)
    if out.exists() and not out.is_dir():
        raise MorrisError(f"--mlx-path {out} is a file; pass a folder for the converted model")
    source = Path(options.hf_path).expanduser()
    if source.is_dir() and overlaps(source, out):  # --force would replace the source
        raise MorrisError(f"--mlx-path {out} overlaps --hf-path {source}; choose a folder outside it")
    if (out / MANIFEST).is_file() and not options.force:
        raise MorrisError(f"{out} already holds a converted model; pass --force to replace it")
    if out.exists() and not (out / MANIFEST).is_file() and any(out.iterdir()) and not options.force:
        raise MorrisError(f"{out} exists and is not a model we converted; choose another --mlx-path")
    source, origin = fetch_source(options.hf_path, options.revision, options.allow_pickle)
    with contextlib.ExitStack() as stack:
        source, resaved = safetensors_source(source, options, stack)
        _convert(options, source, origin, out, resaved)
    return out


def safetensors_source(
    source: Path, options: ConvertOptions, stack: contextlib.ExitStack
) -> tuple[Path, bool]:
    """`source`, or with --allow-pickle and pickle weights only, a temporary safetensors copy of it."""
    from morris_mlx.models.resolve import check_model_dir
    from morris_mlx.pickled import pickled_files, resave_model

    if options.allow_pickle and not any(source.glob("*.safetensors")) and pickled_files(source):
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="morris-resave-")))
        return check_model_dir(resave_model(source, scratch / source.name, options.trust_remote_code)), True
    return check_model_dir(source), False


def _convert(options: ConvertOptions, source: Path, origin: str, out: Path, resaved: bool) -> None:
    from mlx_lm.convert import convert

    with atomic_dir(out, overwrite=True) as tmp:
        staging = tmp / "model"
        try:
            convert(
                str(source),
                str(staging),
                quantize=options.quantize,
                q_bits=options.q_bits if options.quantize else None,
                q_group_size=options.q_group_size if options.quantize else None,
                dtype=options.dtype,
                trust_remote_code=options.trust_remote_code,
            )
        except (ValueError, KeyError) as exc:
            raise MorrisError(f"mlx-lm cannot convert {options.hf_path}: {exc}") from None
        for item in staging.iterdir():
            shutil.move(str(item), tmp / item.name)
        staging.rmdir()
        fix_rope_config(tmp)
        files = file_digests(tmp)  # check_model_dir compares sizes on every load
        write_json(
            tmp / MANIFEST,
            {
                "source": options.hf_path,
                "origin": origin,
                "revision": options.revision,
                "source_fingerprint": fingerprint_model(source),
                "quantized": options.quantize,
                "q_bits": options.q_bits if options.quantize else None,
                "dtype": options.dtype,
                "resaved_from_pickle": resaved,
                "files": files,
            },
        )
