"""Processes: the ``qthumb serve | api | worker`` commands and their supervisor, children that
die with their parent, Prometheus metrics across processes, the container's health check."""
