"""The bot benchmarks/scale.py runs: one model answer and two API requests per event.

On each completed call it asks the model for a summary, places a call (holding
one of the key's call-creation slots) and reads the account: what a callback
bot does, without the dial policy and business hours in the way.
"""

from __future__ import annotations

from agentkit import Bot, CallCompleted, Context

bot = Bot("scale")

FROM = "+40264000111"


@bot.on("call.completed")
async def act(ctx: Context[CallCompleted]) -> None:
    call = ctx.event.data
    await ctx.llm.summarise(f"Call {call.id} from {call.from_}: the caller asks for a callback.",
                            use_platform=False)
    await ctx.api.calls.create(from_=FROM, to="+442079460123")
    await ctx.api.account.retrieve()
