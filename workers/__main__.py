"""``python -m qthumb.workers``: the worker pool (``workers.tasks.consumer``)."""

import os
import signal

try:
    from qthumb.workers.tasks.consumer import main

    main()
except KeyboardInterrupt:
    # Ctrl-C (the whole process group's) before the pool's own handlers are in place (its
    # modules loading, its backends opening): end as that signal ends a process, quietly, not
    # with a traceback of whatever it interrupted. Once running, huey hands tasks back first.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    raise
