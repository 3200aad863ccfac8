"""The 随手拍 categories cover what residents report most and the evaluations check, each routed to the right role."""

from __future__ import annotations

from bot.domain.roles import Role
from content.report_categories import load_report_policy


def test_load_categories_covers_dogs_thrown_objects_blocked_stairwells_noise_and_smoking() -> None:
    categories = {c.key: c for c in load_report_policy().categories}
    assert {"dogs", "thrown", "blocked", "noise", "smoking"} <= set(categories)
    assert categories["dogs"].name("zh_Hans").startswith("不文明养犬") and categories["smoking"].track == "sanitary"


def test_load_categories_sends_thrown_objects_and_food_to_organisers_fast() -> None:
    categories = {c.key: c for c in load_report_policy().categories}
    # 高空抛物 endangers people: organisers (property management, police) within half a day, not a grid round.
    assert categories["thrown"].role is Role.ORGANISER and categories["thrown"].hours == 12
    assert categories["food"].role is Role.ORGANISER
    assert all(c.role is Role.GRID_WORKER for k, c in categories.items() if k in ("dogs", "blocked", "noise"))


def test_load_categories_lets_residents_skip_photos_where_a_photo_is_unsafe_or_impossible() -> None:
    categories = {c.key: c for c in load_report_policy().categories}
    assert all(categories[k].photo_optional for k in ("thrown", "noise", "smoking", "dogs"))
    assert not categories["blocked"].photo_optional  # a blocked stairwell can be photographed
