"""The feature store: definitions (entities, feature views), point-in-time training data
(``offline``), the online store (``online``), and the service that ties them to the catalog
(``service``)."""
