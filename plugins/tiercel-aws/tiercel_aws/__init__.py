"""AWS plugin for Tiercel: S3 storage (:mod:`tiercel_aws.storage`), S3 and SQS tasks and the SQS trigger."""

__version__ = "0.1.0"
