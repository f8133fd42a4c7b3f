"""Command groups of the ``atdata`` command, one module each.

A module here (not starting with ``_``) defines ``register(subparsers)``: it adds its
subcommands with ``parents=[common_options()]`` (for ``--json`` and ``--debug``) and sets
``handler=`` to a function ``(args, out) -> int | None``. ``common_options``, ``Output``
and ``examples`` come from ``._base``, never from ``atdata.local.cli`` (which imports
this package). The CLI finds modules by listing this package, so adding a command
touches no other file.
"""

__all__: list[str] = []
