"""What every AWS component shares: where AWS is and who we are (Kestra's property names)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AwsConnection(BaseModel):
    """Region, endpoint and credentials; anything unset comes from the usual AWS chain
    (environment, `~/.aws`, instance or task role), as the AWS CLI finds them."""

    region: str | None = Field(None, description="AWS region (default: `AWS_REGION`/`AWS_DEFAULT_REGION` or the profile's).")
    endpointOverride: str | None = Field(None, description="Endpoint URL of an S3- or SQS-compatible service "
                                                           "(MinIO, LocalStack, moto); default: AWS_ENDPOINT_URL or AWS.")
    accessKeyId: str | None = Field(None, description="Access key id (default: the AWS credential chain).")
    secretKeyId: str | None = Field(None, description="Secret access key; never logged.")
    sessionToken: str | None = Field(None, description="Session token of temporary credentials; never logged.")

    def client(self, service: str) -> Any:
        import boto3

        session = boto3.session.Session(aws_access_key_id=self.accessKeyId, aws_secret_access_key=self.secretKeyId,
                                        aws_session_token=self.sessionToken, region_name=self.region)
        return session.client(service, endpoint_url=self.endpointOverride or None)
