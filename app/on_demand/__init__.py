"""Frames, storyboards and animations by URL (``/v1/thumbnail.*``, ``/v1/storyboard.*``,
``/v1/animated.*``): what a URL asks for (``asks``), the API process's side (``service``: the
caches and the frame server child), and the routes."""
