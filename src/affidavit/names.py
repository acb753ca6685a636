"""The names processes and the chart must agree on, defined once.

The operator publishes the policy index under a ConfigMap name and key that the webhook reads,
the chart grants RBAC on and the demo waits for; the CRDs' group and version are served by the
apiserver, watched by the operator and written in every policy. A name spelled twice drifts, and
a drifted name fails quietly (a webhook waiting forever for an index nobody publishes), so each
lives here, and a test checks the chart's copies against this module.
"""

from __future__ import annotations

from typing import Final

#: The API group and version of AccountabilityPolicy, RegionPolicy and AccountabilityException.
GROUP: Final = "affidavit.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

#: The ConfigMap (in the release's namespace) the operator publishes the policy index in,
#: and the key holding the index's JSON.
INDEX_CONFIGMAP: Final = "affidavit-policy-index"
INDEX_KEY: Final = "index.json"

#: The annotation the mutating webhook writes on every AccountabilityException: the API server's
#: authenticated name of whoever last wrote its spec (``affidavit.admission.stamp``); the
#: operator copies it into the index, and decisions record it.
REQUESTED_BY_ANNOTATION: Final = f"{GROUP}/requested-by"
#: Beside it, the groups the API server authenticated that writer in (a JSON array): who the
#: writer may act as (impersonate, or mint a token for) is asked with them.
REQUESTED_BY_GROUPS_ANNOTATION: Final = f"{GROUP}/requested-by-groups"
