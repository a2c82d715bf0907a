"""Reading and writing safetensors files as plain numpy arrays, whatever the dtype.

Adapters move between MLX and PEFT as transposes and renames only, so no framework is needed: bf16
tensors travel as their raw 16-bit patterns (numpy has no bfloat16) and come out bit-identical.
Reading goes through the reference parser (`safetensors.deserialize`), which rejects corrupt files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from morris_mlx.atomic import write_bytes
from morris_mlx.errors import MorrisError

# safetensors dtype -> numpy dtype holding the same bits (BF16 as raw uint16).
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
}


@dataclass
class Tensor:
    """A tensor's bits plus its safetensors dtype tag (the numpy dtype alone cannot say BF16)."""

    dtype: str
    array: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def transposed(self) -> Tensor:
        return Tensor(self.dtype, np.ascontiguousarray(self.array.T))

    def to_float32(self) -> np.ndarray:
        if self.dtype == "BF16":
            return (self.array.astype(np.uint32) << 16).view(np.float32)
        return self.array.astype(np.float32)


def read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """All tensors and the metadata of a safetensors file; MorrisError if it is corrupt or unsupported."""
    import safetensors

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MorrisError(f"cannot read {path}: {exc.strerror}; check the path and permissions") from None
    try:
        entries = safetensors.deserialize(raw)
        header_len = int.from_bytes(raw[:8], "little")
        metadata = json.loads(raw[8 : 8 + header_len]).get("__metadata__") or {}
    except Exception as exc:  # noqa: BLE001 - the Rust parser raises several types for bad bytes
        raise MorrisError(
            f"{path} is not a valid safetensors file ({exc}); it is corrupt or truncated: "
            "copy or train it again"
        ) from None
    tensors: dict[str, Tensor] = {}
    for name, info in entries:
        dtype = info["dtype"]
        if dtype not in DTYPES:
            raise MorrisError(
                f"{path}: tensor {name} has dtype {dtype}; adapters must be F32, F16, BF16 or F64"
            )
        array = np.frombuffer(info["data"], dtype=DTYPES[dtype]).reshape(info["shape"])
        tensors[name] = Tensor(dtype, array)
    return tensors, metadata


def serialize(tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors bytes for `tensors` (names sorted, data 8-byte aligned as the spec asks)."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name]
        if tensor.dtype not in DTYPES:
            raise ValueError(f"unsupported dtype {tensor.dtype}")
        data = np.ascontiguousarray(tensor.array, dtype=DTYPES[tensor.dtype]).tobytes()
        header[name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    return len(header_bytes).to_bytes(8, "little") + header_bytes + b"".join(blobs)


def write_safetensors(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    write_bytes(path, serialize(tensors, metadata))


def read_header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header alone (no weights read: cheap on 14 GB)."""
    try:
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len))
    except (OSError, ValueError) as exc:
        raise MorrisError(
            f"cannot read the safetensors header of {path} ({exc}); is the model directory complete?"
        ) from None
    return {name: tuple(info["shape"]) for name, info in header.items() if name != "__metadata__"}


def map_safetensors(path: Path) -> dict[str, Tensor]:
    """Every tensor of a (possibly large) safetensors file as a read-only memory map, header order.

    Used to stream a fused model into a GGUF one tensor at a time instead of holding it all in memory.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        if header_len <= 0 or 8 + header_len > size:
            raise MorrisError(f"{path} is not a valid safetensors file (bad header length); write it again")
        try:
            header = json.loads(fh.read(header_len))
        except ValueError:
            raise MorrisError(f"{path} has a corrupt safetensors header; write it again") from None
    start = 8 + header_len
    tensors: dict[str, Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = info["dtype"], tuple(info["shape"])
        begin, end = info["data_offsets"]
        if dtype not in DTYPES:
            raise MorrisError(f"{path}: tensor {name} has dtype {dtype}, which this exporter does not read")
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * DTYPES[dtype].itemsize or start + end > size:
            raise MorrisError(f"{path}: tensor {name} lies outside the file; the file is truncated")
        array = np.memmap(path, dtype=DTYPES[dtype], mode="r", offset=start + begin, shape=shape or (1,))
        tensors[name] = Tensor(dtype, array if shape else array.reshape(()))
    return tensors
