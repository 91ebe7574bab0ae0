"""The Edge Tool loop: call the model, run the Edge Tools it asks for, call it again (D4, D35-D38).

:class:`EdgeTools` does step 5 of the pipeline: it checks ``edgee_tool_ids`` against the key
and restores a pending turn into the history (so the rest of the pipeline, compression
included, sees the conversation the provider will get). The core then hands the request over
to an :class:`EdgeLoop` when Edge Tools are in play for it (an ``edgee_tool_ids`` list or the
key's hydrated tools). Each round sends the conversation so far, with the Edge Tool
definitions after the client's own ``tools``. What happens with the model's answer:

- no Edge Tool call: that is the answer (with ``usage`` summed over the rounds, D36);
- only Edge Tool calls: they run, the assistant message and one ``role: tool`` message per
  call are appended, and the model is asked again, at most :data:`MAX_EDGE_ROUNDS` times
  (then 502 ``edge_tool_loop_limit``);
- Edge Tool and client calls together: the Edge Tools run, the whole turn is held in the
  :class:`PendingStore`, and the client gets only its own calls with ``edgee_pending_id``.

Every answer that ran an Edge Tool carries ``edgee_tools_executed`` (``call.extras``, D1).

Streams follow the same loop (D38): content deltas are relayed as they come; tool-call deltas
are held until the round ends, because only then is it known whether they are the client's;
a round that ends in Edge Tool calls is not shown at all (its finish chunk is dropped) and the
next round continues the same client stream under the first round's id, ``created`` and model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from gateproof.reference_gateway import _errors
from gateproof.reference_gateway._auth import Principal
from gateproof.reference_gateway._call import ChatCall
from gateproof.reference_gateway._edge_tools import (
    CORRECT_RULES,
    MAX_EDGE_ROUNDS,
    EdgeRules,
    EdgeSelection,
    run_edge_tool,
    select_edge_tools,
)
from gateproof.reference_gateway._errors import GatewayError
from gateproof.reference_gateway._events import DONE, Chunk, Done, StreamFailure, StreamItem
from gateproof.reference_gateway._pending import PendingStore, PendingTurn, splice_pending
from gateproof.reference_gateway._usage import Usage

__all__ = ["EdgeLoop", "EdgeTools", "add_usage"]

#: one round's complete answer (None: the client left and nothing was billed)
SendRound = Callable[[ChatCall], Awaitable[dict[str, Any] | None]]
#: one round's client stream items, as the relay yields them (raises GatewayError before it starts)
OpenRound = Callable[[ChatCall], Awaitable[AsyncIterator[StreamItem]]]

_IDENTITY = ("id", "object", "created", "model", "system_fingerprint")


def add_usage(a: Usage, b: Usage) -> Usage:
    """The usage of two provider calls together (every count adds)."""
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        cached_tokens=a.cached_tokens + b.cached_tokens,
        reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
    )


def _name(call: Mapping[str, Any]) -> str:
    function = call.get("function")
    return str(function.get("name")) if isinstance(function, Mapping) else ""


def _arguments(call: Mapping[str, Any]) -> Any:
    function = call.get("function")
    return function.get("arguments") if isinstance(function, Mapping) else None


class EdgeTools:
    """The gateway's Edge Tool state: the rules it follows and the turns it holds."""

    def __init__(self, rules: EdgeRules = CORRECT_RULES, store: PendingStore | None = None) -> None:
        self.rules = rules
        self.store = store if store is not None else PendingStore()

    def admit(self, body: dict[str, Any], principal: Principal) -> tuple[dict[str, Any], tuple[str, ...]]:
        """Step 5 of the pipeline: the body with a pending turn restored, and the Edge Tools in play.

        Unknown or not activated ``edgee_tool_ids`` are 400 ``invalid_edgee_tool_ids`` (D5); an
        unknown, expired, reused or foreign ``edgee_pending_id``, or one whose turn is not in
        ``messages``, is 400 ``invalid_edgee_pending_id`` (D4, D37). The id is used up here.
        """
        selection = select_edge_tools(
            body.get("edgee_tool_ids"),
            activated=principal.edge_tools,
            hydrated=principal.hydrated_edge_tools,
            rules=self.rules,
        )
        pending_id = body.get("edgee_pending_id")
        if pending_id is not None and self.rules.honour_pending:
            turn = self.store.peek(pending_id, principal.name)
            messages = body.get("messages")
            body = {
                **body,
                "messages": splice_pending(list(messages) if isinstance(messages, list) else [], turn),
            }
            if self.rules.single_use:
                self.store.discard(str(pending_id))
        return body, selection.names if selection is not None else ()

    def loop(self, call: ChatCall, principal: Principal) -> EdgeLoop | None:
        """The loop for a call with Edge Tools in play (None without any)."""
        if not call.edge_tools:
            return None
        return EdgeLoop(
            call, EdgeSelection(call.edge_tools), store=self.store, owner=principal.name, rules=self.rules
        )


class EdgeLoop:
    """The Edge Tool loop of one request."""

    def __init__(
        self,
        call: ChatCall,
        selection: EdgeSelection,
        *,
        store: PendingStore,
        owner: str,
        rules: EdgeRules = CORRECT_RULES,
    ) -> None:
        self._call = call
        self._selection = selection
        self._store = store
        self._owner = owner
        self._rules = rules
        self._executed: list[dict[str, Any]] = []
        self._rounds = 0
        self.usage = Usage()
        messages = call.body.get("messages")
        self._messages: list[Any] = list(messages) if isinstance(messages, list) else []

    # -- the rounds ----------------------------------------------------------------------------------

    def round_call(self) -> ChatCall:
        """The call for the next round: the history so far and the Edge Tools after the client's tools."""
        body = dict(self._call.body)
        body["messages"] = list(self._messages)
        definitions = self._selection.definitions()
        if definitions:
            tools = body.get("tools")
            body["tools"] = [*(tools if isinstance(tools, list) else []), *definitions]
        return dataclasses.replace(self._call, body=body)

    def _edge(self, calls: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        edge = [call for call in calls if _name(call) in self._selection]
        client = [call for call in calls if _name(call) not in self._selection]
        return edge, client

    def _run(self, edge: list[dict[str, Any]]) -> dict[str, str]:
        """Run the Edge Tool calls of one round; their results by tool_call_id."""
        if self._rounds >= MAX_EDGE_ROUNDS:
            raise _errors.edge_tool_loop_limit(MAX_EDGE_ROUNDS)
        self._rounds += 1
        self._call.trace.edge_tool_rounds += 1
        results: dict[str, str] = {}
        for call in edge:
            result = run_edge_tool(_name(call), _arguments(call), rules=self._rules)
            results[str(call.get("id"))] = result.content
            self._executed.append({"name": _name(call), "success": result.success})
        self._call.extras.set("edgee_tools_executed", list(self._executed))
        return results

    def _continue(self, calls: list[dict[str, Any]], results: Mapping[str, str], content: Any) -> None:
        """Append the assistant's Edge Tool calls and their results to the history."""
        self._messages.append({"role": "assistant", "content": content, "tool_calls": calls})
        self._messages.extend(
            {"role": "tool", "tool_call_id": str(call.get("id")), "content": results[str(call.get("id"))]}
            for call in calls
        )

    def _hold(self, calls: list[dict[str, Any]], results: Mapping[str, str]) -> None:
        """Keep a mixed turn for the client's next request (D4)."""
        pending_id = self._store.put(PendingTurn(self._owner, tuple(calls), dict(results)))
        self._call.extras.set("edgee_pending_id", pending_id)

    # -- complete answers ----------------------------------------------------------------------------

    async def complete(self, send: SendRound) -> dict[str, Any] | None:
        """The final answer after every round (``usage`` summed), or None when the client left."""
        while True:
            body = await send(self.round_call())
            if body is None:
                return None
            self._add(Usage.from_edgee(body.get("usage")))
            choices = body.get("choices")
            choice: dict[str, Any] = (
                choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
            )
            found = choice.get("message")
            message: dict[str, Any] = found if isinstance(found, dict) else {}
            calls = [call for call in message.get("tool_calls") or [] if isinstance(call, dict)]
            edge, client = self._edge(calls)
            if not edge:
                break
            results = self._run(edge)
            if client:
                self._hold(calls, results)
                shown = client if self._rules.hide_edge_calls else calls
                body = {
                    **body,
                    "choices": [
                        {**choice, "message": {**message, "tool_calls": shown}, "finish_reason": "tool_calls"}
                    ],
                }
                break
            self._continue(edge, results, message.get("content"))
        return {**body, "usage": self.usage.to_edgee()}

    # -- streams -------------------------------------------------------------------------------------

    async def stream(
        self,
        first: AsyncIterator[StreamItem],
        open_round: OpenRound,
        *,
        include_usage: bool,
        on_usage: Callable[[Usage | None], None],
        on_failure: Callable[[GatewayError], None],
    ) -> AsyncIterator[StreamItem]:
        """The client's stream over every round; ``first`` is the first round's relay.

        The rounds' relays must be made with ``include_usage=False`` and no extras: their usage
        reaches this loop through :meth:`round_usage`, and the closing chunk is this loop's.
        ``on_usage`` hears the summed usage once (None when the stream failed); ``on_failure``
        hears the failures this loop makes itself (the relays report their own).
        """
        identity: dict[str, Any] | None = None
        role_sent = False
        items = first
        while True:
            held: dict[int, dict[str, Any]] = {}
            finish: dict[str, Any] | None = None
            completed = False
            async for item in items:
                if isinstance(item, StreamFailure):
                    on_usage(None)
                    yield item
                    return
                if isinstance(item, Done):
                    completed = True
                    continue
                data = dict(item.data)
                if identity is None:
                    identity = {name: data[name] for name in _IDENTITY if name in data}
                else:
                    data.update(identity)
                choices = data.get("choices")
                if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
                    continue
                choice = dict(choices[0])
                delta = dict(choice.get("delta") or {})
                for fragment in delta.pop("tool_calls", None) or []:
                    if isinstance(fragment, dict):
                        _merge_fragment(held, fragment)
                if role_sent:
                    delta.pop("role", None)
                elif "role" in delta:
                    role_sent = True
                choice["delta"] = delta
                data["choices"] = [choice]
                if choice.get("finish_reason") is not None:
                    finish = data
                elif "role" in delta or delta.get("content") or delta.get("refusal"):
                    yield Chunk(data)
            if not completed:
                error = _errors.internal_error()
                on_usage(None)
                on_failure(error)
                yield StreamFailure(error)
                return
            calls = [held[index] for index in sorted(held)]
            edge, client = self._edge(calls)
            assert identity is not None  # a completed round sent at least its finish chunk
            if not edge:
                async for closing in self._close(identity, calls, finish, include_usage, on_usage):
                    yield closing
                return
            try:
                results = self._run(edge)
            except GatewayError as error:
                on_usage(None)
                on_failure(error)
                yield StreamFailure(error)
                return
            if client:
                self._hold(calls, results)
                shown = client if self._rules.hide_edge_calls else calls
                async for closing in self._close(identity, shown, finish, include_usage, on_usage):
                    yield closing
                return
            self._continue(edge, results, None)
            try:
                items = await open_round(self.round_call())
            except GatewayError as error:
                on_usage(None)
                on_failure(error)
                yield StreamFailure(error)
                return

    def round_usage(self, usage: Usage | None) -> None:
        """A round relay's ``on_usage``: adds up the rounds' usage."""
        if usage is not None:
            self._add(usage)

    def _add(self, usage: Usage) -> None:
        self.usage = add_usage(self.usage, usage) if self._rules.sum_usage else usage

    async def _close(
        self,
        identity: Mapping[str, Any],
        calls: list[dict[str, Any]],
        finish: Mapping[str, Any] | None,
        include_usage: bool,
        on_usage: Callable[[Usage | None], None],
    ) -> AsyncIterator[StreamItem]:
        """The client's tool calls, the finish chunk, the closing chunk (D1) and ``[DONE]``."""
        for index, call in enumerate(calls):
            delta = {"tool_calls": [{**call, "index": index}]}
            yield Chunk({**identity, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        closing_finish = dict(finish) if finish is not None else {**identity, "choices": []}
        choices = closing_finish.get("choices") or [{"index": 0, "delta": {}, "finish_reason": "stop"}]
        choice = dict(choices[0])
        if calls:
            choice["finish_reason"] = "tool_calls"
        closing_finish["choices"] = [choice]
        yield Chunk(closing_finish)
        on_usage(self.usage)
        edgee = self._call.extras.render(self.usage)
        if include_usage or edgee:
            closing: dict[str, Any] = {**identity, "object": "chat.completion.chunk", "choices": []}
            if include_usage:
                closing["usage"] = self.usage.to_edgee()
            yield Chunk({**closing, **edgee})
        yield DONE


def _merge_fragment(held: dict[int, dict[str, Any]], fragment: Mapping[str, Any]) -> None:
    """Join one streamed tool-call fragment into the call it belongs to (by ``index``)."""
    index = fragment.get("index")
    if not isinstance(index, int):
        index = len(held)
    call = held.setdefault(index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    if fragment.get("id"):
        call["id"] = fragment["id"]
    if fragment.get("type"):
        call["type"] = fragment["type"]
    function = fragment.get("function")
    if isinstance(function, Mapping):
        if function.get("name"):
            call["function"]["name"] += str(function["name"])
        if function.get("arguments"):
            call["function"]["arguments"] += str(function["arguments"])
