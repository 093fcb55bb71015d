"""The feature store: definitions (entities, feature views), point-in-time training data
(``offline``), the online store (``online``), and the service that ties them to the catalog
(``service``, ``project.features``).

Definitions in Python::

    from shipyard.features import EntityDefinition, Feature, FeatureViewDefinition

    applicant = EntityDefinition("applicant", ["applicant_id"], owner="risk-team")
    payments = FeatureViewDefinition(
        "payments", source="payments", entity="applicant", timestamp="paid_at", ttl="30d",
        features=[Feature("late_payments", "int", "Payments more than 30 days late.")],
    )
"""

from shipyard.features.definitions import (
    Entity,
    EntityDefinition,
    Feature,
    FeatureView,
    FeatureViewDefinition,
)

__all__ = ["Entity", "EntityDefinition", "Feature", "FeatureView", "FeatureViewDefinition"]
