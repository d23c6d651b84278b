"""distbp.__version__: the installed package's version; from pyproject.toml in a bare checkout."""
import re
from pathlib import Path


def version():
    from importlib import metadata
    try:
        return metadata.version("distbp")
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M)
        except OSError:
            found = None
        return found.group(1) + "+checkout" if found else "0+unknown"
