"""The complete schema: importing this module registers every model module on ``Base.metadata``.

Alembic's environment and the tests use it, so a model module added by a feature is never missed.
Add one import line per feature model module.
"""

from storage import models

metadata = models.Base.metadata
