"""Domain logic several checks (and the CLI) share: Kubernetes and KubeVirt semantics
(eviction strategies, requests, node matching), disks' access modes, migration causes
and readiness verdicts. Pure functions of a ClusterState; checks import from here and
never from each other."""
