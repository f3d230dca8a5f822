"""``python -m minitransformer``: see cli.py."""
from .cli import main

main()
