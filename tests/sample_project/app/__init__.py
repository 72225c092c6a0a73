"""The team's own web app (the name FastAPI's tutorial gives it)."""
