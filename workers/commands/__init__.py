"""The ``qthumb`` console script and its offline commands (``thumbnail``, ``thumbnails``,
``run``): no server, the same pipeline, bars on a terminal."""
