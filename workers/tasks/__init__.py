"""Running a task: huey's consumer, a task's claim-heartbeat-finish run, the pipeline (a
library with no store or queue), sources, destinations (temporary storage, S3), the limits
known once the source is probed, and the failures a format can raise."""
