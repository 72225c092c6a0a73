"""Child processes: the one supervisor that starts, watches, restarts and stops every
long-lived child, and the parent-death signal that no child outlives its parent by. Any layer
may start a child through these; they import no other qthumb package."""
