"""`python -m gantoolkit ...` is `gantool ...`."""

from gantoolkit.cli import main

if __name__ == "__main__":
    main()
