"""The dashboard's survey page and /stats surveys show the same numbers (one computation), small buildings are not
broken down on either, free text is listed for organisers, and grid workers do not see survey results."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.surveys import SurveyError
from tests.integration.test_surveys import answer_all
from tests.support.campaigns import populate
from tests.support.dashboard import COMMUNITY, GRID_WORKER, ORGANISER, DashboardWorld, dashboard_world


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[DashboardWorld]:
    async with dashboard_world(tmp_path, sqlite_template) as built:
        yield built


def attribute(html: str, name: str) -> str:
    found = re.search(rf'id="results"[^>]*\b{name}="([^"]*)"', html)
    assert found, f"no {name} on the results"
    return found.group(1)


async def test_dashboard_chart_and_stats_surveys_show_the_same_numbers(world: DashboardWorld) -> None:
    app, now = world.app, world.clock()
    await populate(app, range(7000, 7006), now, community=COMMUNITY, building="1")
    await populate(app, range(7100, 7102), now, community=COMMUNITY, building="2")
    community = await app.services.communities.by_code(COMMUNITY)
    assert community is not None
    survey = await app.services.surveys.create(
        ORGANISER, app.services.surveys.from_library("twice_yearly", community.id)
    )
    for n, telegram_id in enumerate([*range(7000, 7006), *range(7100, 7102)]):
        suggestion = "楼下快递柜旁边的灯坏了" if n == 0 else ""
        await answer_all(app, telegram_id, survey.id, score=1 + n % 5, suggestion=suggestion)
        await app.services.surveys.submit(telegram_id, survey.id)

    client = await world.client(ORGANISER)
    page = await client.get(f"/dashboard/surveys?c={COMMUNITY}&s={survey.id}")
    assert page.status == 200
    html = await page.text()
    replies = await world.chat(ORGANISER).send(f"/stats surveys {survey.id}")
    stats = replies[-1]

    results = await app.services.surveys.results(ORGANISER, survey.id)
    assert results.respondents == 8 and results.index is not None and results.satisfied_share is not None
    assert attribute(html, "data-respondents") == "8" and "提交人数：<b>8</b>" in stats
    assert attribute(html, "data-index") == f"{results.index:.1f}"
    assert f"满意度指数：<b>{results.index}</b>" in stats
    assert f"满意率：<b>{results.satisfied_share}%</b>" in stats
    assert attribute(html, "data-satisfied") == f"{results.satisfied_share:.1f}%"
    # Per question: the chart's bars carry each scale question's index, the message says the same.
    bars = dict(re.findall(r'class="bar"[^>]*data-label="([^"]+)" data-value="([^"]+)"', html))
    for r in results.questions:
        if r.index is not None:
            label = r.question.text["zh_Hans"]
            assert float(bars[label]) == r.index
            assert f"指数 {r.index} · 满意率" in stats
    # Building 1 has 6 respondents (shown on both), building 2 has 2 (shown on neither).
    big, small = community.building("1"), community.building("2")
    assert big is not None and small is not None
    assert 'data-hidden-groups="1"' in html and "另有 1 个楼栋提交人数不足 5 人" in stats
    building_index = next(g.index for g in results.buildings if g.name == big.name)
    assert float(bars[big.name]) == building_index and f"{big.name}：6 人 · 指数 {building_index}" in stats
    assert small.name not in html.split('id="results"')[1] and small.name not in stats
    assert "楼下快递柜旁边的灯坏了" in html and "楼下快递柜旁边的灯坏了" in stats


async def test_grid_worker_sees_no_survey_results(world: DashboardWorld) -> None:
    client = await world.client(GRID_WORKER)
    page = await client.get("/dashboard/surveys")
    html = await page.text()
    assert page.status == 200 and "满意度测评的结果只对社区组织者开放" in html
    assert 'href="/dashboard/surveys"' not in html


QUESTIONS = """打分 您对小区停车秩序满意吗？
单选 您多久参加一次志愿活动？ | 每周 | 每月 | 很少
多选? 您希望增加哪些设施？ | 充电桩 | 口袋公园 | 快递柜
填空(100)? 其他建议"""


async def test_organiser_creates_a_survey_from_scratch_and_bad_input_changes_nothing(world: DashboardWorld) -> None:
    client = await world.client(ORGANISER)
    form = await client.get(f"/dashboard/surveys/new?c={COMMUNITY}")
    assert form.status == 200 and 'name="questions"' in await form.text()
    csrf = await world.csrf(client, f"/dashboard/surveys/new?c={COMMUNITY}")
    community = await world.app.services.communities.by_code(COMMUNITY)
    assert community is not None
    world_building = community.buildings[0].id
    fields = {"csrf": csrf, "c": COMMUNITY, "title": "停车与设施小调查", "opens": "2026-12-01 09:00",
              "closes": "2026-11-30 09:00", "questions": QUESTIONS, "anonymous": "1"}  # fmt: skip

    backwards = await client.post("/dashboard/surveys/new", data=fields, allow_redirects=False)
    assert backwards.status == 400 and "结束时间必须晚于开始时间" in await backwards.text()
    bad_line = await client.post("/dashboard/surveys/new", data=fields | {"questions": "问答 哪里最脏？"})
    assert bad_line.status == 400 and "第 1 行看不懂" in await bad_line.text()
    both = await client.post(
        "/dashboard/surveys/new",
        data=fields | {"closes": "2026-12-05 18:00", "role": "volunteer", f"b{world_building}": "1"},
    )
    assert both.status == 400 and "测评只能发给全社区、指定楼栋或某一类角色" in await both.text()
    forged = await client.post("/dashboard/surveys/new", data=fields | {"csrf": "x", "closes": "2026-12-20 09:00"})
    assert forged.status == 403
    assert await world.app.services.surveys.for_organiser(ORGANISER) == []

    fields |= {"opens": "", "closes": "2026-12-05 18:00"}  # the world's clock: 2026-11-26 10:00 in Shanghai
    created = await client.post("/dashboard/surveys/new", data=fields, allow_redirects=False)
    assert created.status == 303, await created.text()
    (overview,) = await world.app.services.surveys.for_organiser(ORGANISER)
    survey = overview.survey
    assert created.headers["Location"] == f"/dashboard/surveys?c={COMMUNITY}&s={survey.id}"
    assert survey.status.value == "open" and survey.anonymous and survey.title == {"zh_Hans": "停车与设施小调查"}
    kinds = [(q.kind.value, q.required, len(q.options)) for q in survey.questions]
    assert kinds == [("scale", True, 0), ("single", True, 3), ("multi", False, 3), ("text", False, 0)]
    assert survey.questions[3].limit == 100 and survey.audience.kind.value == "all"


async def test_organiser_ends_a_survey_early_and_answers_stop(world: DashboardWorld) -> None:
    app = world.app
    await populate(app, [7200], world.clock(), community=COMMUNITY, building="1")
    community = await app.services.communities.by_code(COMMUNITY)
    assert community is not None
    survey = await app.services.surveys.create(
        ORGANISER, app.services.surveys.from_library("twice_yearly", community.id)
    )
    await answer_all(app, 7200, survey.id)  # answered, not yet submitted

    worker = await world.client(GRID_WORKER)
    csrf = await world.csrf(worker, "/dashboard/")
    refused = await worker.post(f"/dashboard/surveys/{survey.id}/end", data={"csrf": csrf}, allow_redirects=False)
    assert refused.status == 404
    client = await world.client(ORGANISER)
    page = await client.get(f"/dashboard/surveys?c={COMMUNITY}&s={survey.id}")
    assert f'data-end="{survey.id}"' in await page.text() and "现在结束测评" in await page.text()
    no_token = await client.post(f"/dashboard/surveys/{survey.id}/end", data={}, allow_redirects=False)
    assert no_token.status == 403
    csrf = await world.csrf(client, f"/dashboard/surveys?c={COMMUNITY}&s={survey.id}")
    ended = await client.post(f"/dashboard/surveys/{survey.id}/end", data={"csrf": csrf}, allow_redirects=False)
    assert ended.status == 303
    (overview,) = await app.services.surveys.for_organiser(ORGANISER)
    assert overview.survey.status.value == "closed"
    with pytest.raises(SurveyError) as late:
        await app.services.surveys.submit(7200, survey.id)
    assert late.value.code == "closed"
    again = await client.post(f"/dashboard/surveys/{survey.id}/end", data={"csrf": csrf}, allow_redirects=False)
    assert again.status == 409
    page = await client.get(f"/dashboard/surveys?c={COMMUNITY}&s={survey.id}")
    assert f'data-end="{survey.id}"' not in await page.text()
