"""The web console at ``/ui/``: sign-in and its session cookie, the task list and a task's
page, the playground; its templates and static files live beside it."""
