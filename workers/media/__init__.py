"""Reading media: the probe, exact frames by seeking and decoding (one reader, or several over
runs of GOPs), colour conversion (HDR tone mapping in ``deep_colour``), scaling and encoding
one image."""
