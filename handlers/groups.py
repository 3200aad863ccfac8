"""Community group chats: greet newcomers with a private-chat link; link a group to a community."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, Button, SendText, keyboard
from bot.conversation.router import Router
from bot.domain.errors import Forbidden
from bot.domain.residents import make_deep_link
from bot.domain.roles import Role

router = Router("grp")


@router.on("new_members")
async def greet(ctx: Ctx) -> Sequence[Action]:
    """Never ask anything in the group: the button opens a private chat with the community's deep link."""
    people = [m.first_name for m in ctx.incoming.new_members if not m.is_bot]
    bot = ctx.settings.get("bot_username", "")
    if not people or not bot:
        return []
    community = await ctx.services.communities.community_of_group(ctx.chat_id)
    payload = make_deep_link(community.code) if community else ""
    url = f"https://t.me/{bot}?start={payload}"
    names = "、".join(people) if ctx.locale == "zh_Hans" else ", ".join(people)
    context = {"names": names, "community": community.name if community else None}
    return [SendText("group/welcome", context, buttons=keyboard([Button("group.open_private", url=url)]))]


@router.command("linkgroup", role=Role.ORGANISER)
async def link_group(ctx: Ctx) -> Sequence[Action]:
    """``/linkgroup <community> [staff]`` in a group: residents' group (default) or the staff handling group."""
    if ctx.incoming.is_private:
        return [SendText("group/link_in_group")]
    parts = ctx.incoming.args.split()
    if not parts:
        return [SendText("group/link_usage")]
    purpose = "staff" if parts[1:2] == ["staff"] else "residents"
    community = await ctx.services.communities.by_code(parts[0])
    if community is None or ctx.resident is None or not ctx.resident.has_role(Role.ORGANISER, community.id):
        raise Forbidden(role="organiser")
    title = ctx.incoming.chat_title or str(ctx.chat_id)
    await ctx.services.communities.link_group(ctx.chat_id, community.code, title, purpose, ctx.user_id)
    await ctx.services.access.audit(ctx.user_id, "linkgroup", {"chat": ctx.chat_id, "community": community.code})
    return [SendText("group/linked", {"community": community.name, "purpose": purpose})]
