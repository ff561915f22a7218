"""theradose: open software for theranostics.

Importing the package has no side effects; subpackages are imported on demand.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("theradose")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
