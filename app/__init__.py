"""qthumb's HTTP face: settings, the Qencode wire format, the task model and its store."""
