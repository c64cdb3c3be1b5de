"""Operations on Databricks: Unity Catalog privilege preflight (``privileges``) and
the bundle's job-task helpers (``jobs``)."""
