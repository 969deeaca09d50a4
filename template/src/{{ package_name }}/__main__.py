"""``python -m <package>`` runs the command line."""

from .cli import app
from .settings import APP_COMMAND

app(prog_name=APP_COMMAND)
