"""``sicheng stats awareness`` and ``sicheng content import`` from the command line."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import content
from bot.cli import app
from content.quiz_bank import load_bank
from tests.integration.test_quiz_awareness import quiz_service
from tests.support.points import make_world
from tests.support.quiz import play

NEW_QUESTION = {
    "id": "gar-900",
    "difficulty": 1,
    "tags": ["爱绿护绿"],
    "correct": [0],
    "source": {"zh_Hans": "《城市绿化条例》", "en": "Regulations on Urban Greening"},
    "zh_Hans": {
        "question": "看到有人攀折绿化带的花木，怎么做合适？",
        "options": ["礼貌劝阻", "跟着折"],
        "explanation": "爱护绿化人人有责，可以礼貌劝阻。",
    },
    "en": {
        "question": "Someone breaks branches off a hedge. What is best?",
        "options": ["Ask politely to stop", "Join in"],
        "explanation": "Caring for greenery is everyone's job; ask them politely to stop.",
    },
}


async def _fixture(url: str) -> None:
    world = await make_world(url)
    try:
        quiz = quiz_service(world, round_size=8)
        await world.resident(6001, "1")
        await play(quiz, 6001, "garden", [True] * 8)
    finally:
        await world.aclose()


def test_stats_awareness_prints_a_table(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cli.db"
    path.write_bytes(sqlite_template.read_bytes())
    monkeypatch.setenv("SICHENG_DATABASE__URL", f"sqlite+aiosqlite:///{path}")
    asyncio.run(_fixture(f"sqlite+aiosqlite:///{path}"))

    result = CliRunner().invoke(app, ["stats", "awareness", "--community", "demo"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "示范社区 (demo), last 30 days"
    assert lines[1].split() == [
        "scope",
        "registered",
        "civilised",
        "sanitary",
        "garden",
        "food_safety",
        "active_30d",
        "avg_score",
    ]
    # The organiser is staff, not counted; nobody is registered in 2号楼, so its shares are "—", not 0%.
    assert lines[2].split() == ["(community)", "1", "0%", "0%", "100%", "0%", "100%", "100%"]
    assert lines[3].split()[:2] == ["1号楼", "1"]
    assert lines[4].split() == ["2号楼", "0", "—", "—", "—", "—", "—", "—"]

    missing = CliRunner().invoke(app, ["stats", "awareness", "--community", "nowhere"])
    assert missing.exit_code == 1


def test_content_import_appends_a_valid_file_and_refuses_a_broken_one(tmp_path: Path) -> None:
    root = tmp_path / "content"
    shutil.copytree(content.ROOT / "questions", root / "questions")
    source = tmp_path / "new.yaml"
    source.write_text(yaml.safe_dump({"track": "garden", "questions": [NEW_QUESTION]}, allow_unicode=True))

    result = CliRunner().invoke(app, ["content", "import", str(source), "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "imported 1 question(s)" in result.output
    assert load_bank(root).get("gar-900") is not None

    again = CliRunner().invoke(app, ["content", "import", str(source), "--root", str(root)])
    assert again.exit_code == 1
    assert "duplicate id" in again.output
