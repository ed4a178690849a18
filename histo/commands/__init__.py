"""Sub-commands of the ``histo`` CLI, one module each (``add_arguments`` + ``run``)."""
