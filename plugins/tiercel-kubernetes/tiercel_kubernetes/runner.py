"""``kubernetes.Kubernetes``: run a script task's commands as a pod on a Kubernetes cluster.

The model only declares properties; the work is in :mod:`tiercel_kubernetes._run`, loaded (with
lightkube) when a task first runs, so listing plugins and validating flows stay cheap.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from tiercel import Example, RunContext, Runner, ScriptJob, ScriptResult


class Config(BaseModel):
    """How to reach the cluster, instead of the usual kubeconfig."""

    model_config = ConfigDict(extra="forbid")

    masterUrl: str = Field(description="API server URL (`https://kubernetes.example.com:6443`).")
    oauthToken: str | None = Field(None, description="Bearer token (a service account's), usually `{{ secret('…') }}`.")
    caCertData: str | None = Field(None, description="PEM of the CA that signed the API server's certificate.")
    clientCertData: str | None = Field(None, description="PEM client certificate, for certificate login.")
    clientKeyData: str | None = Field(None, description="PEM client key, for certificate login.")
    trustCerts: bool = Field(False, description="Skip TLS verification of the API server (never in production).")


class Kubernetes(Runner):
    """Run script commands as a Kubernetes pod: one pod per attempt, from a pinned image.

    Needs no `exec` (often forbidden by cluster policy): the input files travel in a ConfigMap
    mounted into the pod (at most about 1 MiB in all) and are copied into an `emptyDir` working
    directory (`WORKING_DIR`, `/tiercel/work`); the output files matching the task's
    `outputFiles` (a `**` matches one directory level here), and everything written to
    `OUTPUT_DIR`, come back as a tar stream in the pod's log after the commands end. stdout
    and stderr are told apart in the one log stream by a per-attempt token. The image needs
    `/bin/sh`, `cp`, `mkfifo`, `tar` and `base64` (busybox, Debian, Alpine and the
    python/node images all have them).

    A timeout or a kill deletes the pod (SIGTERM, then SIGKILL after `killGracePeriod`); so does
    the end of the attempt (`delete`). The pod is labelled with the task run and tracked with the
    attempt: a pod left by a worker that died is deleted before the next attempt starts (or, with
    `resume: true`, re-attached to: its log read from the start, no second run).
    The cluster is the one of `config`, else the usual kubeconfig (`KUBECONFIG`,
    `~/.kube/config`) or the in-cluster service account.
    """

    type: ClassVar[str] = "kubernetes.Kubernetes"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.ee.kubernetes.runner.Kubernetes",)
    examples: ClassVar[list[Example]] = [
        Example(
            "The same shell task, as a pod",
            """\
id: kubernetes_runner_example
namespace: company.team
tasks:
  - id: shell
    type: scripts.Shell
    containerImage: debian:12-slim
    taskRunner:
      type: kubernetes.Kubernetes
      namespace: data-jobs
      resources:
        requests: {cpu: 500m, memory: 256Mi}
        limits: {memory: 512Mi}
    outputFiles:
      - report.txt
    commands:
      - uname -a > report.txt
""",
            run=False,
        ),
    ]

    image: str | None = Field(None, description="Image to run; a script task's `containerImage` fills it.")
    namespace: str = Field("default", description="Namespace the pod runs in.")
    config: Config | None = Field(
        None, description="Cluster address and credentials; the usual kubeconfig when omitted."
    )
    pullPolicy: Literal["ALWAYS", "IF_NOT_PRESENT", "NEVER"] | None = Field(
        None,
        description="Image pull policy of the container (Always, IfNotPresent, Never); the cluster's default when omitted.",
    )
    resources: dict[str, dict[str, str]] | None = Field(
        None, description="Container resources: `{requests: {cpu: 500m, memory: 256Mi}, limits: {memory: 1Gi}}`."
    )
    serviceAccountName: str | None = Field(None, description="Service account the pod runs as.")
    nodeSelector: dict[str, str] | None = Field(None, description="Node labels the pod must be scheduled on.")
    tolerations: list[dict[str, Any]] | None = Field(None, description="Pod tolerations, as in a pod spec.")
    labels: dict[str, str] | None = Field(None, description="Extra labels of the pod.")
    annotations: dict[str, str] | None = Field(None, description="Annotations of the pod.")
    imagePullSecrets: list[str] | None = Field(None, description="Names of the secrets used to pull the image.")
    user: int | None = Field(None, description="UID the commands run as (`securityContext.runAsUser`).")
    resume: bool = Field(
        False,
        description="After a worker died mid-attempt, re-attach to the pod it started (its log is read from the "
        "start) instead of deleting it and starting anew. Off by default: a new attempt sees changed inputs.",
    )
    delete: bool = Field(True, description="Delete the pod (and its input ConfigMap) once the attempt ends.")
    waitUntilRunning: timedelta = Field(
        timedelta(minutes=10), description="How long the pod may take to start (scheduling, image pull)."
    )
    killGracePeriod: timedelta = Field(
        timedelta(seconds=2), description="Time between SIGTERM and SIGKILL when the pod is deleted."
    )

    async def run(self, ctx: RunContext, job: ScriptJob) -> ScriptResult:
        from tiercel_kubernetes._run import run_job

        return await run_job(self, ctx, job)
