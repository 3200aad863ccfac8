"""``sicheng export survey ID``: the results and one line per response; a named survey's respondents masked, an
anonymous survey's lines naming nobody (no name, no Telegram id, no building); an unknown survey is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.app import App
from bot.services.surveys import SurveyDraft
from storage.uow import SqlUnitOfWork
from tests.conftest import sqlite_copy
from tests.integration.test_surveys import answer_all
from tests.integration.test_volunteers_cli import invoke, on_app
from tests.support.campaigns import ORGANISER, organiser, populate
from tests.support.points import FakeClock

PEOPLE = {
    13812345671: "王小明",
    13812345672: "李小红",
    13812345673: "张小华",
    13812345674: "赵小兰",
    13812345675: "孙小军",
}


@pytest.fixture
def surveys(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Two surveys answered by the same two residents: an anonymous one and a named one."""
    url = sqlite_copy(sqlite_template, tmp_path / "cli.db")
    monkeypatch.setenv("SICHENG_DATABASE__URL", url)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))

    async def fill(app: App) -> tuple[int, int]:
        community = await app.services.communities.add("demo", "示范社区", [("1", "1号楼")])
        await organiser(app, clock())
        async with app.transactions.scope() as uow:
            assert isinstance(uow, SqlUnitOfWork)
            for telegram_id, name in PEOPLE.items():
                resident = await uow.residents.add(telegram_id, "zh_Hans", clock())
                await uow.residents.update(resident.id, consent_at=clock(), consent_version="t",
                                           community_id=community.id, building_id=community.buildings[0].id,
                                           display_name=name)  # fmt: skip
            await uow.commit()
        ids = []
        for anonymous in (True, False):
            draft = app.services.surveys.from_library("twice_yearly", community.id)
            draft = SurveyDraft(**{**draft.__dict__, "anonymous": anonymous})
            survey = await app.services.surveys.create(ORGANISER, draft)
            for n, telegram_id in enumerate(PEOPLE):
                await answer_all(app, telegram_id, survey.id, score=1 + n % 5, suggestion=f"建议{n}号")
                await app.services.surveys.submit(telegram_id, survey.id)
            ids.append(survey.id)
        return ids[0], ids[1]

    return on_app(url, fill, clock)


def cells(path: Path, sheet: int) -> list[list[object]]:
    book = load_workbook(path)
    return [list(row) for row in book.worksheets[sheet].iter_rows(values_only=True)]


def test_export_anonymous_survey_names_nobody(surveys: tuple[int, int], tmp_path: Path) -> None:
    anonymous, _ = surveys
    out = tmp_path / "anonymous.xlsx"
    result = invoke("export", "survey", str(anonymous), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "5 response(s)" in result.output
    summary, lines = cells(out, 0), cells(out, 1)
    assert summary[1] == ["提交人数", None, 5, None]
    assert lines[0][:3] == ["序号", "提交日期", "1. 您对小区的环境卫生（垃圾分类、楼道和公共区域保洁）满意吗？"]
    text = repr(lines)
    assert "建议0号" in text and "建议1号" in text
    for telegram_id, name in PEOPLE.items():
        assert str(telegram_id)[:4] not in text and name[0] not in text and "1号楼" not in text


def test_export_of_an_anonymous_survey_with_fewer_than_five_holds_back_its_answers(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_copy(sqlite_template, tmp_path / "few.db")
    monkeypatch.setenv("SICHENG_DATABASE__URL", url)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))

    async def fill(app: App) -> int:
        community = await app.services.communities.add("demo", "示范社区", [("1", "1号楼")])
        await organiser(app, clock())
        await populate(app, [13812345671, 13812345672], clock())
        survey = await app.services.surveys.create(
            ORGANISER, app.services.surveys.from_library("twice_yearly", community.id)
        )
        for telegram_id in (13812345671, 13812345672):
            await answer_all(app, telegram_id, survey.id, suggestion="只有两个人")
            await app.services.surveys.submit(telegram_id, survey.id)
        return survey.id

    survey_id = on_app(url, fill, clock)
    out = tmp_path / "few.xlsx"
    assert invoke("export", "survey", str(survey_id), "--out", str(out)).exit_code == 0
    summary, lines = cells(out, 0), cells(out, 1)
    assert summary[1] == ["提交人数", None, 2, None] and len(lines) == 1  # the count, and no answers
    assert "只有两个人" not in repr(summary + lines)


def test_export_named_survey_masks_residents(surveys: tuple[int, int], tmp_path: Path) -> None:
    _, named = surveys
    out = tmp_path / "named.xlsx"
    assert invoke("export", "survey", str(named), "--out", str(out), "--lang", "en").exit_code == 0
    lines = cells(out, 1)
    assert lines[0][:4] == ["No.", "Submitted on", "Resident", "Building"]
    assert {line[2] for line in lines[1:]} >= {"王** · 1381*******", "李** · 1381*******"}
    assert "13812345671" not in repr(lines)


def test_export_unknown_survey_is_refused(surveys: tuple[int, int], tmp_path: Path) -> None:
    result = invoke("export", "survey", "999", "--out", str(tmp_path / "x.xlsx"))
    assert result.exit_code == 1 and "no survey with number 999" in result.output
    assert not (tmp_path / "x.xlsx").exists()
