"""``python -m notifykit``: the same as the ``notifykit`` script."""

from notifykit.cli import main

main()
