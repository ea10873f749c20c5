"""The OpenAI Agents SDK, its default model, through `breakerbox serve` (tests/it/agents.rs).

    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=fake python tests/agents/agents_sdk.py

An agent with one function tool is asked a question that needs it. The SDK's default model speaks
the Responses API. Prints `TOOL CALLED: <city>` when the model called the tool, then the final
answer after `FINAL: `; exits 1 with the error when the run fails.
"""

import os
import sys

# No traces are sent anywhere: the only network is the gateway.
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from agents import Agent, Runner, function_tool  # noqa: E402


@function_tool
def lookup_status(service: str) -> str:
    """Look up the current status of a service."""
    print(f"TOOL CALLED: {service}", flush=True)
    return f"{service} is healthy"


def main() -> int:
    agent = Agent(
        name="on-call",
        instructions="You answer questions about service health. Use lookup_status.",
        tools=[lookup_status],
    )
    try:
        result = Runner.run_sync(agent, "Is the billing service healthy?", max_turns=4)
    except Exception as e:  # the test prints it whole
        print(f"ERROR: {type(e).__name__}: {e}", flush=True)
        return 1
    print(f"FINAL: {result.final_output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
