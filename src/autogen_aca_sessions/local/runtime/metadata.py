"""What ``GET /metadata`` reports about a pool's runtime: its language runtime, packages and kernel.

Worked out once per pool (reading every installed distribution takes ~0.1 s) from the server's
own interpreter, which is the one kernels run.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime

from ..config import PoolType

__all__ = ["KernelInfo", "NameVersion", "PoolRuntimeInfo", "runtime_info"]


@dataclass(frozen=True)
class NameVersion:
    """A named thing and its version (a runtime, a package, the kernel)."""

    name: str
    """Its name (``Python``, ``numpy``, ``python3``)."""
    version: str
    """Its version string."""


@dataclass(frozen=True)
class KernelInfo:
    """The Jupyter kernel sessions of a Python pool run."""

    name: str
    """The kernel name (``python3``)."""
    version: str
    """The kernel implementation's version (ipykernel's)."""
    display_name: str
    """The name a notebook front end shows."""
    language: str
    """The kernel's language (``python``)."""
    language_version: str
    """The language version (``3.11.7``)."""
    protocol_version: str
    """The Jupyter messaging protocol version the kernel speaks."""


@dataclass(frozen=True)
class PoolRuntimeInfo:
    """What ``GET /metadata`` reports about the pool's runtime."""

    runtimes: list[NameVersion]
    """The language runtimes sessions run (one Python, or bash for Shell pools)."""
    pre_installed_packages: list[NameVersion]
    """Distributions importable by session code, sorted by lower-cased name."""
    jupyter_kernel: KernelInfo | None
    """The Jupyter kernel; ``None`` for Shell pools."""
    created_at: datetime
    """When the pool was started."""
    last_updated_at: datetime
    """When the runtime last changed (packages are fixed per pool: the start time)."""


def runtime_info(pool_type: PoolType, created_at: datetime) -> PoolRuntimeInfo:
    """Runtime facts of the kernel's interpreter (the server's own: it is the same one). Blocking."""
    packages: dict[str, NameVersion] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata is not None else None
        if not name:
            continue
        key = name.lower().replace("_", "-")
        packages.setdefault(key, NameVersion(name=name, version=dist.version or ""))
    ordered = [packages[key] for key in sorted(packages)]
    if pool_type is PoolType.SHELL:
        bash_version = ""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["bash", "-c", "echo $BASH_VERSION"], capture_output=True, timeout=10, check=False, text=True
            )
            bash_version = out.stdout.strip()
        return PoolRuntimeInfo(
            runtimes=[NameVersion("bash", bash_version)],
            pre_installed_packages=ordered,
            jupyter_kernel=None,
            created_at=created_at,
            last_updated_at=created_at,
        )
    try:
        ipykernel_version = importlib.metadata.version("ipykernel")
    except importlib.metadata.PackageNotFoundError:
        ipykernel_version = ""
    python_version = ".".join(str(p) for p in sys.version_info[:3])
    try:
        from ipykernel._version import kernel_protocol_version as protocol_version
    except ImportError:
        protocol_version = ""
    return PoolRuntimeInfo(
        runtimes=[NameVersion("Python", python_version)],
        pre_installed_packages=ordered,
        jupyter_kernel=KernelInfo(
            name="python3",
            version=ipykernel_version,
            display_name="Python 3 (ipykernel)",
            language="python",
            language_version=python_version,
            protocol_version=str(protocol_version),
        ),
        created_at=created_at,
        last_updated_at=created_at,
    )
