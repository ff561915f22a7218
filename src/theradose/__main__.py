"""``python -m theradose`` runs the command-line interface."""

from theradose.cli import main

if __name__ == "__main__":
    main()
