"""``python -m octogen_source.sync``: the ``octogen-sync`` command."""

import sys

from octogen_source.commands.sync import main

if __name__ == "__main__":
    sys.exit(main())
