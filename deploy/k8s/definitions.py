"""The Kubernetes code location: the project's definitions, each step in its own pod (`k8s_job_executor`).

The Helm values (deploy/helm/values.yaml) start the code server on this file. Running every step as a
Kubernetes Job is what makes the training assets' `dagster-k8s/config` op tags (one `nvidia.com/gpu`)
take effect: the K8sRunLauncher alone starts one pod per run and reads only run-level tags.
Locally, and in docker-compose, use `assets.definitions` (workspace.yaml) instead.
"""

import dagster as dg
from dagster_k8s import k8s_job_executor

from assets.definitions import defs as project_defs

defs = dg.Definitions.merge(project_defs, dg.Definitions(executor=k8s_job_executor))
