"""Qencode's language: the ``start_encode2`` query parsed into typed values and its lenient
field readers, the limits a query must keep, the clip window maths, and the wire format of the
status object (``images[]``, ``videos[]``)."""
