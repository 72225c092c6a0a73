"""Video and gif encoding: the ``EncodePlan`` a video output makes (``plan.py``, with the audio
track's part in ``audio_track.py``), the child process that carries it out with PyAV
(``encode.py``, ``python -I -m qthumb.workers.outputs.encoding.encode``), and the owning call
that runs that child under its deadline and reads its progress (``run.py``)."""
