"""Pull-request previews: what a change to a stack does, readable without cluster credentials.

- ``preview``: the preview as data (versioned by ``preview.schema.json``).
- ``markdown``: the preview as a pull-request comment (``templates/preview.md.j2``).
- ``capacity``: pods and GPUs per pool at min and max replicas, before and after.
- ``cli``: ``modelplane preview FILE --base GIT_REV|FILE``.
"""
