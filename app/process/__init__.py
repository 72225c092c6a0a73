"""Processes: the ``qthumb serve | api | worker`` commands, the ASGI application they serve, the
worker pool and its watch, the container's health check (children are ``app.children``')."""
