"""qthumb's own files and S3: the layout of temporary results and uploads (local or in a
bucket), ``s3://`` URLs and boto3 clients, and which file names are videos."""
