"""What each ``output`` makes: the producer registry, thumbnails, series and sprite sheets with
their WebVTT, mp4/webm/gif through PyAV's encoder in a child process, metadata."""
