"""The team's own background jobs."""
