"""atdata.ray: write a ``ray.data.Dataset`` into a Repo as one entry; read an entry back."""

from ._version import __version__

__all__ = ["__version__"]
