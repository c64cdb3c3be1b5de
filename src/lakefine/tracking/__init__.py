"""MLflow tracking: ``client`` (where runs go, reachability, retries while a server
restarts), ``runs`` (what a run logs, finding an unfinished one) and ``registry``
(model names and aliases, local or Unity Catalog)."""
