"""/mydata and /deleteme: a resident's rights over their personal information (PIPL)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, Button, EditText, SendText, keyboard
from bot.conversation.router import Router

router = Router("priv")


@router.command("mydata", private_only=True, in_menu=True)
async def my_data(ctx: Ctx) -> Sequence[Action]:
    data = await ctx.services.residents.my_data(ctx.user_id)
    return [SendText("privacy/mydata", {"data": data, "telegram_id": ctx.user_id})]


@router.command("deleteme", private_only=True, in_menu=True)
async def delete_me(ctx: Ctx) -> Sequence[Action]:
    buttons = keyboard(
        [
            Button("privacy.confirm_delete", data=router.data("delete", 1)),
            Button("privacy.keep", data=router.data("delete", 0)),
        ]
    )
    return [SendText("privacy/confirm_delete", buttons=buttons)]


@router.callback("delete", int)
async def confirm_delete(ctx: Ctx) -> Sequence[Action]:
    if ctx.args[0] != 1:
        return [EditText("privacy/kept")]
    await ctx.services.volunteers.leave(ctx.user_id)  # their shift places go to whoever waits next
    deleted = await ctx.services.residents.delete(ctx.user_id)
    await ctx.store.clear_user(ctx.user_id)
    return [EditText("privacy/deleted", {"had_data": deleted})]
