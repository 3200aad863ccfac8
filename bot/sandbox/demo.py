"""Demo data for the sandbox: the demo community, its groups and one simulated person in every role."""

from __future__ import annotations

from dataclasses import dataclass

import content
from bot.app import App
from bot.domain.proposals import Rules
from bot.domain.roles import Role
from bot.sandbox.demo_volunteers import seed_volunteers
from bot.sandbox.emulator import Emulator
from bot.seed import import_communities

COMMUNITY = "demo"
STARTER_POINTS = 60
ORGANISER_ID = 1000006
RESIDENTS_GROUP = -1001000000001
STAFF_GROUP = -1001000000002


@dataclass(frozen=True)
class Persona:
    user_id: int
    name: str
    language_code: str
    role: Role
    building: str | None  # None: not registered yet, so onboarding can be tried
    role_label: str  # shown on the sandbox page only

    def to_view(self) -> dict[str, object]:
        return {
            "id": self.user_id,
            "name": self.name,
            "language_code": self.language_code,
            "role": self.role.value,
            "role_label": self.role_label,
            "registered": self.building is not None,
        }


PERSONAS = (
    Persona(1000001, "小李", "zh-hans", Role.RESIDENT, None, "新居民（未注册）/ new resident"),
    Persona(1000002, "王阿姨", "zh-hans", Role.RESIDENT, "2", "居民 / resident"),
    Persona(1000003, "Anna", "en", Role.RESIDENT, None, "resident (English, new)"),
    Persona(1000004, "小陈", "zh-hans", Role.VOLUNTEER, "3", "志愿者 / volunteer"),
    Persona(1000005, "老张", "zh-hans", Role.GRID_WORKER, "1", "网格员 / grid worker"),
    Persona(1000006, "刘主任", "zh-hans", Role.ORGANISER, "1", "组织者 / organiser"),
    Persona(1000007, "李师傅理发", "zh-hans", Role.SERVICE_POINT, "5", "服务点 / service point"),
)


async def seed_database(app: App) -> None:
    """Idempotent: the sandbox database keeps its state between runs, so only what is missing is added."""
    await import_communities(app.services, content.ROOT / "demo" / "community.yaml")
    community = await app.services.communities.by_code(COMMUNITY)
    assert community is not None
    await app.services.communities.link_group(RESIDENTS_GROUP, COMMUNITY, "示范社区居民群", "residents")
    await app.services.communities.link_group(STAFF_GROUP, COMMUNITY, "示范社区工作群", "staff")
    for persona in PERSONAS:
        if persona.building is None or await app.services.residents.profile(persona.user_id) is not None:
            continue
        locale = "en" if persona.language_code.startswith("en") else "zh_Hans"
        await app.services.residents.give_consent(persona.user_id, persona.name, locale)
        building = community.building(persona.building)
        await app.services.residents.join(persona.user_id, community.id, building.id if building else None)
        if persona.role != Role.RESIDENT:
            await app.services.access.grant(persona.user_id, persona.role, COMMUNITY, actor=None)
    await app.services.rewards.import_rewards(content.ROOT / "rewards" / "demo.yaml", COMMUNITY)
    for persona in PERSONAS:
        if persona.building is not None and persona.role in (Role.RESIDENT, Role.VOLUNTEER):
            # A starting balance so redeeming can be tried at once; the key makes it once per database.
            note = "沙盒体验积分 / sandbox starter points"
            await app.services.points.grant(
                ORGANISER_ID, persona.user_id, STARTER_POINTS, note, f"demo:{persona.user_id}"
            )
    await seed_volunteers(app, content.ROOT / "demo" / "volunteers.yaml", ORGANISER_ID, COMMUNITY)
    async with app.uow() as uow:
        rules = await uow.proposals.rules(community.id)
    if rules is None:
        # The demo community has a handful of residents: 3 supports (not the default 30) send a proposal to the
        # vote, so the whole 居民提案制 path can be tried here. Set once, as its organiser; /proposalrules changes it.
        await app.services.proposals.set_rules(ORGANISER_ID, Rules(threshold=3, collect_days=14, vote_days=3))


def seed_emulator(emulator: Emulator) -> None:
    """The simulated Telegram side: the people and the two community groups."""
    for persona in PERSONAS:
        emulator.create_user(persona.name, language_code=persona.language_code, user_id=persona.user_id)
        if persona.building is not None:
            # Registered personas joined through the bot in their story: they have a chat with it, so the bot may
            # write to them first (notices, report updates), as Telegram allows once a person has started the bot.
            emulator.started.add((persona.user_id, emulator.bot().id))
    everyone = [p.user_id for p in PERSONAS]
    staff = [p.user_id for p in PERSONAS if p.role in (Role.ORGANISER, Role.GRID_WORKER)]
    emulator.create_group("示范社区居民群", [PERSONAS[5].user_id, *everyone[:5]], chat_id=RESIDENTS_GROUP)
    emulator.create_group("示范社区工作群", staff[::-1], chat_id=STAFF_GROUP)
