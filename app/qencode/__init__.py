"""Qencode's language: the output kinds (one class each), the ``start_encode2`` query parsed
into them and its lenient field readers, the limits a query must keep, the clip window maths,
and the wire format of the status object (``images[]``, ``videos[]``)."""
