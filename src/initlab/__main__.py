"""``python -m initlab``: the command line."""

from initlab.cli import main

main()
