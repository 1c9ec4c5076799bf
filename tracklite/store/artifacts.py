"""A recorder's ``artifacts/`` folder: safe paths, atomic saves, listing and loading.

An artifact path is always relative to ``artifacts/`` and can never leave it: absolute paths,
``..`` components and symbolic links that point outside are refused before anything is written.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from . import atomic


def safe_relative(path: str | os.PathLike[str] | None, argument: str = "artifact_path") -> str:
    """Normalise an artifact path to ``a/b/c`` form, or ``""`` for the root.

    Raises ``ValueError`` naming ``argument`` when the path is absolute, climbs with ``..``, or
    holds NUL or control characters.
    """
    if path is None:
        return ""
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"{argument} must be a str path, got {type(path).__name__}")
    text = text.replace("\\", "/")
    if "\x00" in text or any(ord(c) < 0x20 for c in text):
        raise ValueError(f"{argument} {text!r} holds a control character")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise ValueError(
            f"{argument} {text!r} is absolute; artifact paths are relative to the recorder's "
            "artifacts/ folder"
        )
    parts = [part for part in PurePosixPath(text).parts if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{argument} {text!r} climbs out of the artifacts/ folder with '..'")
    return "/".join(parts)


def resolve(artifacts_dir: Path, relative: str, argument: str = "artifact_path") -> Path:
    """The real location of ``relative`` inside ``artifacts_dir``, refusing symlink escapes."""
    target = artifacts_dir.joinpath(*relative.split("/")) if relative else artifacts_dir
    base = os.path.realpath(artifacts_dir)
    real = os.path.realpath(target)
    if real != base and not real.startswith(base + os.sep):
        raise ValueError(
            f"{argument} {relative!r} leads outside the artifacts/ folder through a symbolic link"
        )
    return target


def pickle_object(name: str, obj: Any) -> bytes:
    """Serialise ``obj`` with cloudpickle; ``TypeError`` naming the object if it cannot be."""
    import cloudpickle

    try:
        return cloudpickle.dumps(obj, protocol=pickle.DEFAULT_PROTOCOL)  # type: ignore[no-any-return]
    except Exception as exc:
        raise TypeError(
            f"cannot pickle object {name!r} of type {type(obj).__name__}: {exc}"
        ) from exc


def write_artifact(artifacts_dir: Path, relative: str, data: bytes) -> None:
    """Write ``data`` to ``artifacts/<relative>`` atomically."""
    target = resolve(artifacts_dir, relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    resolve(artifacts_dir, relative)  # the parent folders now exist: re-check links
    atomic.write_bytes(target, data)


def save_file(artifacts_dir: Path, relative: str, source: Path) -> None:
    """Copy a local file into ``artifacts/<relative>`` atomically (content, not a link)."""
    target = resolve(artifacts_dir, relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    resolve(artifacts_dir, relative)
    with open(source, "rb") as src:
        atomic.publish(target, lambda dst: shutil.copyfileobj(src, dst, 1 << 20))


def plan_directory(source: Path) -> list[tuple[Path, str]]:
    """Every regular file under ``source`` as (real path, relative posix path).

    Symbolic links inside the tree are copied as their targets when those targets lie inside
    ``source``; a link that points outside it is refused before anything is copied.
    """
    base = os.path.realpath(source)
    plan: list[tuple[Path, str]] = []
    for folder, dirs, files in os.walk(source, followlinks=False):
        here = Path(folder)
        for name in list(dirs):
            link = here / name
            if link.is_symlink():
                real = os.path.realpath(link)
                if not real.startswith(base + os.sep):
                    raise ValueError(
                        f"local_path {source} holds symbolic link {link} pointing outside it "
                        f"({real}); refusing to follow it"
                    )
                # A link to a folder inside the tree: its files are saved where the link is.
                for sub_real, sub_rel in plan_directory(Path(real)):
                    rel = (link / sub_rel).relative_to(source).as_posix()
                    plan.append((sub_real, rel))
        for name in files:
            path = here / name
            real = os.path.realpath(path)
            if not (real == base or real.startswith(base + os.sep)):
                raise ValueError(
                    f"local_path {source} holds symbolic link {path} pointing outside it "
                    f"({real}); refusing to follow it"
                )
            if not os.path.isfile(real):
                continue  # sockets, fifos, dangling links: nothing to copy
            plan.append((Path(real), path.relative_to(source).as_posix()))
    return plan


def list_children(artifacts_dir: Path, relative: str) -> list[str]:
    """Immediate children of ``artifacts/<relative>`` as prefixed relative paths, sorted."""
    folder = resolve(artifacts_dir, relative)
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    prefix = f"{relative}/" if relative else ""
    return [prefix + name for name in names if not name.startswith(atomic.TEMP_PREFIX)]


def load_object(artifacts_dir: Path, relative: str, unpickler: type[Any] = pickle.Unpickler) -> Any:
    """Unpickle ``artifacts/<relative>`` in place (no temporary copy)."""
    target = resolve(artifacts_dir, relative, "name")
    with open(target, "rb") as handle:
        data = handle.read()
    return unpickler(io.BytesIO(data)).load()
