"""The ``octogen-sync`` command (also ``python -m octogen_source`` and ``pipelines/sync.py``).

``sync``: arguments and ``main``; ``demo``: the ``--demo`` run; ``extras``: one line naming the extra to
install when an optional dependency is missing (the BigQuery commands' entry points go through it).
"""
