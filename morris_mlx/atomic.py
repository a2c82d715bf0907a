"""Crash-safe writes: nothing a later load could mistake for a complete artifact.

Files go to a temp name in the same folder, are fsynced, then renamed over the target. Directories are
built under a `.partial` name and renamed into place only when complete; a directory can carry a manifest
(size and sha256 of every file, written last) that a later load checks, because a rename proves the
writer finished but not that the bytes are still the ones it wrote (a full disk, a bad copy, bit rot).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from morris_mlx.errors import MorrisError

MANIFEST_FILENAME = "manifest.json"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it is fsynced and renamed to `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    # mkstemp makes 0600 files; artifacts should get the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_file_target(target: str | os.PathLike, flag: str) -> Path:
    """`target` as a file `atomic_path` can write, checked before any long work that would end in writing
    it: not a folder, and below no file (the first ancestor that exists must be a folder)."""
    target = Path(target).expanduser()
    if target.is_dir():
        raise MorrisError(f"{flag} {target} is a folder; pass the path of a file")
    for ancestor in target.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise MorrisError(f"{flag} {target}: {ancestor} is a file, not a folder; choose another path")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise MorrisError(f"{flag} {target}: cannot write into {ancestor}; choose another path")
            break
    return target


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(target: str | os.PathLike, rows: list[dict]) -> None:
    write_text(target, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_digests(directory: str | os.PathLike, names: Iterable[str] | None = None) -> dict[str, dict]:
    """{name: {"size", "sha256"}} for `names` in `directory` that exist (default: every file below it,
    by relative POSIX path)."""
    directory = Path(directory)
    if names is None:
        paths = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST_FILENAME)
    else:
        paths = [directory / n for n in names if (directory / n).is_file()]
    return {
        p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in paths
    }


def verify_files(
    directory: str | os.PathLike, files: dict[str, Any], what: str, fix: str, full: bool = True
) -> None:
    """MorrisError naming the first file of `files` ({name: {"size", "sha256"}}) that is missing, has
    another size or (with `full`) other bytes than recorded. `what` names the artifact, `fix` the cure."""
    directory = Path(directory)
    for name, expected in sorted(files.items()):
        path = directory / name
        if not isinstance(expected, dict) or not path.is_file():
            raise MorrisError(f"{what} is incomplete: {name} is missing; {fix}")
        size = path.stat().st_size
        if "size" in expected and size != expected["size"]:
            raise MorrisError(
                f"{what} is corrupt or truncated: {name} is {size:,} bytes, {expected['size']:,} when written; {fix}"
            )
        if full and "sha256" in expected and sha256_file(path) != expected["sha256"]:
            raise MorrisError(
                f"{what} is corrupt or truncated: {name} does not match its recorded sha256; {fix}"
            )


def write_manifest(directory: str | os.PathLike) -> Path:
    """Record every file below `directory` in its manifest.json (call it last)."""
    path = Path(directory) / MANIFEST_FILENAME
    write_json(path, {"files": file_digests(directory)})
    return path


def verify_manifest(directory: str | os.PathLike, what: str, fix: str) -> bool:
    """Check `directory` against its manifest.json; False when it has none (written before manifests)."""
    path = Path(directory) / MANIFEST_FILENAME
    if not path.is_file():
        return False
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        raise MorrisError(
            f"{what} is corrupt or truncated: its {MANIFEST_FILENAME} is unreadable; {fix}"
        ) from None
    verify_files(directory, files, what, fix)
    return True


def _fsync_tree(directory: Path) -> None:
    """fsync every file below `directory`: a renamed directory must not hold files whose data never
    reached the disk (libraries such as mx.save_safetensors do not fsync)."""
    for path in directory.rglob("*"):
        if path.is_file():
            with contextlib.suppress(OSError), open(path, "rb") as fh:
                os.fsync(fh.fileno())
        elif path.is_dir():
            _fsync_dir(path)


def remove_stale_temps(directory: str | os.PathLike) -> list[str]:
    """Delete what a killed writer left in `directory`: `atomic_path`'s hidden temp files and
    `atomic_dir`'s `.partial` folders. Neither is ever mistaken for a finished file, but after a kill -9
    they are dead weight (a fused 7B model's worth, at worst). Call only where no other writer is at work."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for item in directory.iterdir():
        if item.name.startswith(".") and item.name.endswith(".tmp") and item.is_file():
            item.unlink(missing_ok=True)
        elif item.name.endswith(".partial") and item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        elif item.name.startswith(".") and item.name.endswith(".old") and _replaced(item):
            _remove(item)
        else:
            continue
        removed.append(item.name)
    return removed


def _replaced(old: Path) -> bool:
    """Whether `old`, an `atomic_dir` name `.<target>.<random>.old`, is what a swap replaced (its target
    is back in place), not the only copy left by a kill between the two renames."""
    target = old.name[1 : -len(".old")].rsplit(".", 1)[0]
    return bool(target) and (old.parent / target).exists()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = False, manifest: bool = False) -> Iterator[Path]:
    """Build a directory under `<target>.partial`; rename it to `target` only if the block succeeds.

    With `manifest`, a manifest.json of every file is written last, for `verify_manifest` on load.
    """
    target = Path(target)
    if target.is_symlink():
        # The link stays and points at the new folder: the swap happens where it leads.
        target = target.resolve()
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    try:
        partial.mkdir(parents=True)
    except OSError as exc:
        raise MorrisError(
            f"cannot create {partial} to build {target.name} in ({exc.strerror or exc}); "
            f"make {partial.parent} writable or choose another path"
        ) from None
    try:
        yield partial
        _fsync_tree(partial)
        if manifest:
            write_manifest(partial)
        _fsync_dir(partial)
        if target.exists():
            if not overwrite:
                raise FileExistsError(target)
            # A name of our own: a user's `<target>.old` backup is never touched.
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            old.rmdir()  # only its unique name is wanted: the target (a folder or a file) moves there
            try:
                os.replace(target, old)
            except OSError as exc:
                raise MorrisError(
                    f"cannot replace {target} ({exc.strerror or exc}); if it is a mount point, "
                    "write into a folder inside it"
                ) from None
            os.replace(partial, target)
            _remove(old)
        else:
            os.replace(partial, target)
        _fsync_dir(target.parent)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
