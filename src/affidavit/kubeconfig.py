"""One way to reach the Kubernetes API: a kubeconfig file, or the Pod's service account.

The webhook, the operator and the CLI all need a client, and each used to build its own with
its own error message. They now share this one, so "cannot load credentials" reads the same
everywhere and names where the credentials were looked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from affidavit.errors import ClusterError


def api_client(kubeconfig: Path | None) -> Any:
    """An ApiClient from ``kubeconfig``, or from the Pod's service account when it is None.

    Raises:
        ClusterError: the kubeconfig cannot be read or parsed, or (in a Pod) the service
            account's token and CA are not mounted.
    """
    try:
        if kubeconfig is not None:
            return config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration)
    except (
        config.ConfigException,
        OSError,
        yaml.YAMLError,
        UnicodeDecodeError,
        TypeError,
        AttributeError,
        KeyError,
        ValueError,
    ) as e:  # a file that is not a kubeconfig (binary, a list, a string) fails in the client
        where = str(kubeconfig) if kubeconfig else "the in-cluster service account"
        raise ClusterError(
            f"cannot load Kubernetes credentials from {where}: {e}",
            hint="pass --kubeconfig FILE, or run inside a pod with a service account",
        ) from e


#: Which owner kinds (API group, kind) create which child kinds: the built-in controllers. An
#: owner reference to any other kind (a bare Pod naming a Deployment as its controller, with
#: its uid, which anyone in the namespace can read) is not a controller that made it.
CREATORS: Mapping[str, frozenset[tuple[str, str]]] = {
    "Pod": frozenset(
        {
            ("apps", "ReplicaSet"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("batch", "Job"),
            ("", "ReplicationController"),
        }
    ),
    "ReplicaSet": frozenset({("apps", "Deployment")}),
    "Job": frozenset({("batch", "CronJob")}),
}


def owner_readers(api: Any) -> dict[tuple[str, str], Any]:
    """The read call for each controller kind a Pod's owner chain can name, by (group, kind):
    the one table the webhook's owner check and the operator's re-check both follow."""
    apps, batch, core = client.AppsV1Api(api), client.BatchV1Api(api), client.CoreV1Api(api)
    return {
        ("apps", "ReplicaSet"): apps.read_namespaced_replica_set,
        ("apps", "Deployment"): apps.read_namespaced_deployment,
        ("apps", "StatefulSet"): apps.read_namespaced_stateful_set,
        ("apps", "DaemonSet"): apps.read_namespaced_daemon_set,
        ("batch", "Job"): batch.read_namespaced_job,
        ("batch", "CronJob"): batch.read_namespaced_cron_job,
        ("", "ReplicationController"): core.read_namespaced_replication_controller,
        # not an owner: the template a StatefulSet's current revision keeps (owners.py)
        ("apps", "ControllerRevision"): apps.read_namespaced_controller_revision,
    }
