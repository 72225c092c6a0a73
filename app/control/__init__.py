"""What the mock's control endpoints (``/_qthumb/``, ``app.api.control_routes``) do to one API
key's state beyond its fault rules: remove all of it (``reset``), and export it as one archive
or load one (``state``, also ``QTHUMB_INIT_DIR`` at start)."""
