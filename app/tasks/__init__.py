"""Tasks: the model and its legal states, the store and its database (SQLite or PostgreSQL,
numbered migrations), the queue, the callback outbox and its delivery, recovery of stuck tasks,
typed results, and the one place settings become engines (``backends``)."""
