"""``python -m dpe_cli`` works like ``dpe`` (torchrun needs the module form)."""

from dpe_cli.cli import main

if __name__ == "__main__":
    main()
