"""`python -m appban`: the command line."""

from appban.cli import main

main()
