"""The complete schema: importing this module registers every model module on ``Base.metadata``.

Alembic's environment and the tests use it, so a model module added by a feature is never missed.
Add one import line per feature model module.
"""

from storage import (
    campaign_models,  # noqa: F401
    dashboard_models,  # noqa: F401
    job_models,  # noqa: F401
    messaging_models,  # noqa: F401
    models,
    points_models,  # noqa: F401
    proposal_models,  # noqa: F401
    quiz_models,  # noqa: F401
    report_models,  # noqa: F401
    survey_models,  # noqa: F401
    volunteer_models,  # noqa: F401
)

metadata = models.Base.metadata
