"""Facts the content review corrected must stay corrected (see the "Facts checked for content" notes)."""

from __future__ import annotations

import content
from content.quiz_bank import Card, Question, load_bank, load_cards

POCKET_PARK_NOTICE = "关于推动“口袋公园”建设的通知"
SLOGAN = "300米见绿"
SORTING_STANDARD = "19095"
CITY_GUIDES = "各地生活垃圾分类指南"


def test_load_bank_cites_sources_correctly_and_completes_questions() -> None:
    bank = load_bank(content.ROOT)
    questions = [q for track in bank.tracks.values() for q in track]
    cards = [c for track in load_cards(content.ROOT).values() for c in track]
    items: list[Question | Card] = [*questions, *cards]
    problems: list[str] = []

    for q in questions:
        question = q.zh_Hans.question.rstrip()
        # A question cut off after a law's name ("按照《民法典》？") asks nothing.
        if question.endswith(("》？", "》?")):
            problems.append(f"{q.id}: zh question stops after a title: {question}")
        # GB/T 19095-2019 lists lamps, household chemicals and batteries as hazardous waste, not medicines.
        if "药" in question and "垃圾" in question and SORTING_STANDARD in q.source.zh_Hans:
            problems.append(f"{q.id}: a question on medicines cites GB/T 19095: {q.source.zh_Hans}")
        # The slogan is common garden-city guidance; the 2022 pocket-park notice does not state it.
        if question.startswith("园林城市建设中常说") and POCKET_PARK_NOTICE in q.source.zh_Hans:
            problems.append(f"{q.id}: the slogan question cites the pocket-park notice: {q.source.zh_Hans}")

    for item in items:
        source, text = item.source.zh_Hans, item.zh_Hans.model_dump_json()
        if "(" in source or ")" in source:
            problems.append(f"{item.id}: half-width bracket in zh_Hans source: {source}")
        if SLOGAN in text and "园林城市" not in source:
            problems.append(f"{item.id}: the slogan is not cited as garden-city guidance: {source}")
        if "过期药" in text and "垃圾" in text and CITY_GUIDES not in source:
            problems.append(f"{item.id}: sorting of medicines does not cite city waste-sorting guides: {source}")

    assert problems == []
