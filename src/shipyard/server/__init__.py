"""``shipyard server``: the team server, one authenticated HTTP API over a project's services
(the REST API under ``/api/v1`` and the MLflow tracking protocol under ``/api/2.0/mlflow``)."""
