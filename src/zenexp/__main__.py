"""`python -m zenexp`: the same as the `zenexp` command."""

from zenexp.cli import main

if __name__ == "__main__":
    main()
