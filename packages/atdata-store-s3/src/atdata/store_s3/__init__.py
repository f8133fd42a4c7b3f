"""atdata.store_s3: S3DataStore (being written, issue 4)."""
