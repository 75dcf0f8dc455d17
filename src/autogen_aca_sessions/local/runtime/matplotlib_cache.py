"""A matplotlib font cache for a pool's kernels, made once per pool instead of once per kernel.

Without one every kernel spends seconds building its own font list on its first pyplot import.
The server user's cache is copied when it has one; otherwise it is built once in the background
(kernels started meanwhile build their own).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from pathlib import Path

from .signals import kill_process_group

__all__ = ["prepare_matplotlib_cache"]

logger = logging.getLogger(__name__)


async def prepare_matplotlib_cache(directory: Path) -> asyncio.Task[None] | None:
    """Fill ``directory`` with a font list; returns the background build when one was needed."""
    if await asyncio.to_thread(_copy_matplotlib_cache, directory):
        return None
    return asyncio.ensure_future(_build_matplotlib_cache(directory))


def _copy_matplotlib_cache(directory: Path) -> bool:
    """Give kernels the server user's matplotlib font list, if it has one (True when copied)."""
    directory.mkdir(parents=True, exist_ok=True)
    env_dir = os.environ.get("MPLCONFIGDIR")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for source in (Path(env_dir) if env_dir else None, Path(xdg) / "matplotlib"):
        if source is None or not source.is_dir():
            continue
        copied = False
        for entry in source.glob("fontlist-*.json"):
            shutil.copy2(entry, directory / entry.name)
            copied = True
        if copied:
            return True
    return False


async def _build_matplotlib_cache(directory: Path) -> None:
    env = dict(os.environ, MPLCONFIGDIR=str(directory), MPLBACKEND="Agg")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import matplotlib.font_manager",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        logger.warning("could not build the matplotlib font cache: %s", exc)
        return
    try:
        await process.wait()
    finally:
        if process.returncode is None:
            kill_process_group(process)
            await process.wait()
