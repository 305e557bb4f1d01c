"""``python -m mulligan``: the same command line as the installed ``mulligan`` command."""

from mulligan.cli import main

if __name__ == "__main__":  # importing this module (as tests that walk the package do) runs nothing
    main()
