"""``python -m sedinfer``: the same command line as the ``sedinfer`` script."""

from sedinfer.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
