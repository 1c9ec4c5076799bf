"""``python -m tracklite``: the command line."""

from tracklite.cli.main import run

if __name__ == "__main__":
    run()
