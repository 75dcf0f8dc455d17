"""The public disk images the local runtime serves: the host's Python on a read-only root.

Every public image is the same root file system (the host's, read-only, private directories
hidden) with an empty disk; the names exist so that SDK code written for Azure
(``disk="python-3.12"``, the default ``"ubuntu"``) works unchanged. The Python actually
served is the server's own interpreter, whatever version the name says; ``tags`` tell which.
"""

from __future__ import annotations

import platform
import sys

from .models import PublicImage

__all__ = ["PUBLIC_IMAGES", "public_image"]

_PYTHON = platform.python_version()
_SERVED = {"python": _PYTHON, "interpreter": sys.executable, "os": platform.platform(terse=True)}


def _image(name: str, description: str) -> PublicImage:
    return PublicImage(name=name, description=description, tags=dict(_SERVED))


PUBLIC_IMAGES: tuple[PublicImage, ...] = (
    _image("python-3.12", f"The host's Python {_PYTHON} and /usr, read-only, with the sandbox's own disk."),
    _image("python-3.13", f"The host's Python {_PYTHON} (served for any python-3.x name)."),
    _image("python-3.14", f"The host's Python {_PYTHON} (served for any python-3.x name)."),
    _image(
        "ubuntu", "The host's /usr and tools, read-only, with the sandbox's own disk (the SDK's default)."
    ),
)
"""Every public image, in the order the public-images route lists them."""


def public_image(name: str) -> PublicImage | None:
    """The public image called ``name`` (letter case ignored; ``python3.12`` as the spec spells it too)."""
    wanted = name.strip().lower()
    for image in PUBLIC_IMAGES:
        if image.name in (wanted, wanted.replace("python3.", "python-3.")):
            return image
    return None
