"""Where tasks are kept: the database (SQLite or PostgreSQL, ``db.py``), its migrations
(``schema.py``), the task store on it (``sql_store.py``) and what a status reads of a row
(``task_rows.py``)."""
