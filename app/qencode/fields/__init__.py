"""Readers of a query's fields, as lenient as Qencode (numbers as strings, ``1``/``"1"``/``true``
flags, one object or a list), each raising ``BadQuery`` / ``FieldRequired`` naming the field's
path: plain values and sizes (``values.py``), destinations, logos, an image file's name and a
video's own fields. ``app.qencode.formats`` reads each output kind with them."""
