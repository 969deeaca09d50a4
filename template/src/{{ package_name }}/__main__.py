"""Allow ``python -m <package>`` as well as the console script."""

from .cli import app

app(prog_name=__package__)
