"""Sample classes and their codec (private; the public face is :mod:`atdata.sample`).

- ``fields``: field annotations -> ``FieldSpec`` (what every consumer of a type reads).
- ``packable``: ``PackableSample`` and ``@packable``: the class machinery.
- ``required``: required fields raise ``MissingField`` naming class and field.
- ``codec``: the per-class decode/pack functions, generated from the field specs.
- ``dictsample``: ``DictSample``, any msgpack map.
- ``keys``: ``new_key``, unique time-sortable sample keys.
"""
