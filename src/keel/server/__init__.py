"""The team server: one keel for many clients over REST, with tokens and roles.

``keel server`` serves the workspace's store and blobs over HTTP. It speaks
MLflow's tracking REST API (``/api/2.0/mlflow/...`` and the
``mlflow-artifacts`` endpoints), so an existing MLflow client pointed at it
keeps working, and its runs are keel runs like any other.
"""
