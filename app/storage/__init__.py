"""Where files are kept: ``Objects``, the one storage interface, over a folder or an S3 bucket;
qthumb's own files on it (temporary results and uploads, local or in a bucket); ``s3://`` URLs
and boto3 clients; and which file names are videos."""
