"""`python -m` runs the command line."""

from .cli import app

app()
