"""Community group chats: greet newcomers with a private-chat link; link a group to a community."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, Button, SendText, keyboard
from bot.conversation.router import Router
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
    if not parts or len(parts) > 2 or parts[1:] not in ([], ["staff"], ["residents"]):
        return [SendText("group/link_usage", {"unknown": " ".join(parts[1:]) if parts else ""})]
    purpose = "staff" if parts[1:] == ["staff"] else "residents"
    code = parts[0].lower()
    linkable = await ctx.services.communities.organised_by(ctx.user_id)
    community = next((c for c in linkable if c.code == code), None)
    if community is None:
        known = await ctx.services.communities.by_code(code)
        if known is not None:  # a community they do not organise: a refused attempt, on the record
            await ctx.services.access.refused(ctx.user_id, "linkgroup", {"chat": ctx.chat_id, "community": code})
        codes = [{"code": c.code, "name": c.name} for c in linkable]
        context = {"code": parts[0], "known": known.name if known else None, "codes": codes}
        return [SendText("group/unknown_code", context)]
    title = ctx.incoming.chat_title or str(ctx.chat_id)
    await ctx.services.communities.link_group(ctx.chat_id, community.code, title, purpose, ctx.user_id)
    await ctx.services.access.audit(ctx.user_id, "linkgroup", {"chat": ctx.chat_id, "community": community.code})
    return [SendText("group/linked", {"community": community.name, "purpose": purpose})]
