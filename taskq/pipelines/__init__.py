"""DAG pipelines shaped like a Polyaxonfile (``kind: dag``): operations, dependencies,
trigger policies, events and conditions."""
