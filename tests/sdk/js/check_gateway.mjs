#!/usr/bin/env node
// Talk to a running `breakerbox serve --demo` gateway with the official JS/TS clients (`openai`,
// `@anthropic-ai/sdk`), unchanged, and check that each gets a valid reply (or the error class it
// documents) in its own protocol, whichever provider answered.
//
// Usage: node check_gateway.mjs http://127.0.0.1:PORT   (after `npm ci` in this folder)
//
// Expects the demo gateway: the route `default` over the chain anthropic → openai (simulated, no
// fault set). Faults and breakers are set through `/control` and cleared after every check.
// Prints one line per check and exits non-zero if any check fails.

import Anthropic from '@anthropic-ai/sdk';
import { VERSION as ANTHROPIC_VERSION } from '@anthropic-ai/sdk/version';
import OpenAI from 'openai';
import { VERSION as OPENAI_VERSION } from 'openai/version';

if (process.argv.length !== 3) {
  console.error('usage: node check_gateway.mjs http://127.0.0.1:PORT');
  process.exit(2);
}
const BASE = process.argv[2].replace(/\/+$/, '');
const ROUTE = 'default';
// A route whose first target speaks the Responses API: a Responses client's same-protocol path.
const SAME = 'resp';

// As an agent would set them: ANTHROPIC_BASE_URL=BASE, OPENAI_BASE_URL=BASE/v1, any key. Healthy
// checks keep the clients' own retries; where a failure is expected, none.
const ANT = new Anthropic({ baseURL: BASE, apiKey: 'sk-ant-anything', timeout: 30_000 });
const OAI = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'sk-anything', timeout: 30_000 });
const ANT0 = ANT.withOptions({ maxRetries: 0 });
const OAI0 = OAI.withOptions({ maxRetries: 0 });

const WEATHER = {
  type: 'object',
  properties: {
    location: { type: 'string', description: 'City name' },
    unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
  },
  required: ['location'],
};
const ANT_TOOLS = [{ name: 'get_weather', description: 'Current weather', input_schema: WEATHER }];
const OAI_TOOLS = [
  {
    type: 'function',
    function: { name: 'get_weather', description: 'Current weather', parameters: WEATHER },
  },
];
const HELLO = [{ role: 'user', content: 'Why is the sky blue?' }];
const ASK_WEATHER = [{ role: 'user', content: 'What is the weather in Paris?' }];

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${typeof message === 'function' ? message() : message}`);
}
const show = (value) => JSON.stringify(value)?.slice(0, 300);

// --- the gateway's /control ------------------------------------------------------------------

async function control(command) {
  const response = await fetch(`${BASE}/control`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(command),
  });
  const body = await response.json();
  assert(response.status === 200 && body.ok, () => `${show(command)} → ${response.status} ${show(body)}`);
}
const setFault = (provider, fault) => control({ action: 'set_fault', provider, fault });
const trip = (provider) => control({ action: 'trip', provider });

async function clean() {
  for (const provider of ['anthropic', 'openai']) {
    await setFault(provider, 'none');
    await control({ action: 'reset', provider });
  }
}

const withFaults = (faults, run) => async () => {
  for (const [provider, fault] of Object.entries(faults)) await setFault(provider, fault);
  return run();
};
const withTripped = (provider, run) => async () => {
  await trip(provider);
  return run();
};

function expectModel(model, answeredBy) {
  if (answeredBy === 'anthropic') {
    assert(typeof model === 'string' && model.startsWith('claude'), `model ${show(model)}: expected anthropic's (claude-…)`);
  } else {
    assert(model === 'gpt-5', `model ${show(model)}: expected openai's gpt-5`);
  }
}

// --- OpenAI client ---------------------------------------------------------------------------

const openaiStream = (answeredBy) => async () => {
  const stream = await OAI.chat.completions.create({
    model: ROUTE,
    messages: HELLO,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  const ids = new Set();
  const models = new Set();
  for await (const chunk of stream) {
    ids.add(chunk.id);
    models.add(chunk.model);
    assert(chunk.object === 'chat.completion.chunk', chunk.object);
    if (chunk.usage) {
      assert(chunk.choices.length === 0, 'the usage chunk has choices: []');
      usage = chunk.usage;
    }
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
  }
  assert(ids.size === 1, `chunk ids differ: ${[...ids]}`);
  assert(models.size === 1, `chunk models differ: ${[...models]}`);
  const [model] = models;
  expectModel(model, answeredBy);
  assert(text.trim(), 'no text');
  assert(finish === 'stop', `finish_reason ${show(finish)}`);
  assert(usage && usage.completion_tokens > 0 && usage.prompt_tokens > 0, () => `usage ${show(usage)}`);
  assert(usage.total_tokens === usage.prompt_tokens + usage.completion_tokens, () => show(usage));
  return `${model}, ${text.split(/\s+/).length} words, usage ${usage.prompt_tokens}+${usage.completion_tokens}`;
};

const openaiWhole = (answeredBy) => async () => {
  const { data: completion, request_id } = await OAI.chat.completions
    .create({ model: ROUTE, messages: HELLO })
    .withResponse();
  const choice = completion.choices[0];
  expectModel(completion.model, answeredBy);
  assert(completion.object === 'chat.completion', completion.object);
  assert(choice.finish_reason === 'stop', choice.finish_reason);
  assert(choice.message.role === 'assistant' && choice.message.content?.trim(), () => show(choice.message));
  assert(!choice.message.tool_calls?.length, () => show(choice.message.tool_calls));
  const usage = completion.usage;
  assert(usage.completion_tokens > 0 && usage.prompt_tokens > 0, () => show(usage));
  assert(usage.total_tokens === usage.prompt_tokens + usage.completion_tokens, () => show(usage));
  assert(request_id, 'no x-request-id');
  return `${completion.model}, id ${completion.id}, usage ${usage.prompt_tokens}+${usage.completion_tokens}`;
};

// The helper that accumulates a stream into a ChatCompletion (and checks its consistency).
const openaiToolStreamHelper = (answeredBy) => async () => {
  const stream = OAI.chat.completions.stream({
    model: ROUTE,
    messages: ASK_WEATHER,
    tools: OAI_TOOLS,
    stream_options: { include_usage: true },
  });
  const completion = await stream.finalChatCompletion();
  const choice = completion.choices[0];
  expectModel(completion.model, answeredBy);
  assert(choice.finish_reason === 'tool_calls', choice.finish_reason);
  const calls = choice.message.tool_calls ?? [];
  assert(calls.length === 1, () => show(calls));
  const [call] = calls;
  assert(call.type === 'function' && call.function.name === 'get_weather' && call.id, () => show(call));
  const args = JSON.parse(call.function.arguments);
  assert(typeof args.location === 'string', () => show(args));
  assert(completion.usage?.completion_tokens > 0, () => show(completion.usage));
  return `tool_calls ${call.function.name}(${call.function.arguments}) id ${call.id}`;
};

const openaiToolWhole = (answeredBy) => async () => {
  const completion = await OAI.chat.completions.create({ model: ROUTE, messages: ASK_WEATHER, tools: OAI_TOOLS });
  const choice = completion.choices[0];
  expectModel(completion.model, answeredBy);
  assert(choice.finish_reason === 'tool_calls', choice.finish_reason);
  const calls = choice.message.tool_calls ?? [];
  assert(calls.length === 1, () => show(calls));
  const [call] = calls;
  assert(call.function.name === 'get_weather' && call.id, () => show(call));
  const args = JSON.parse(call.function.arguments);
  assert(typeof args.location === 'string', () => show(args));
  return `tool_calls ${call.function.name}(${call.function.arguments}) id ${call.id}`;
};

// `tool_choice: "none"`: the tools are offered, but the model must answer in words.
const openaiToolChoiceNone = (answeredBy) => async () => {
  const completion = await OAI.chat.completions.create({
    model: ROUTE,
    messages: ASK_WEATHER,
    tools: OAI_TOOLS,
    tool_choice: 'none',
  });
  const choice = completion.choices[0];
  expectModel(completion.model, answeredBy);
  assert(!choice.message.tool_calls?.length, () => `a tool call despite tool_choice none: ${show(choice.message.tool_calls)}`);
  assert(choice.finish_reason === 'stop', choice.finish_reason);
  assert(choice.message.content, () => show(choice.message));
  return `${choice.message.content.split(/\s+/).length} words, no tool call`;
};

// --- Anthropic client ------------------------------------------------------------------------

const anthropicWhole = (answeredBy) => async () => {
  const message = await ANT.messages.create({ model: ROUTE, max_tokens: 300, messages: HELLO });
  expectModel(message.model, answeredBy);
  assert(message.type === 'message' && message.role === 'assistant', () => show(message));
  assert(message.content.map((b) => b.type).join() === 'text', () => show(message.content));
  assert(message.content[0].text.trim(), 'no text');
  assert(message.stop_reason === 'end_turn', message.stop_reason);
  assert(message.usage.input_tokens > 0 && message.usage.output_tokens > 0, () => show(message.usage));
  return `${message.model}, id ${message.id}, usage ${message.usage.input_tokens}+${message.usage.output_tokens}`;
};

const anthropicStream = (answeredBy) => async () => {
  const stream = ANT.messages.stream({ model: ROUTE, max_tokens: 300, messages: HELLO });
  let text = '';
  stream.on('text', (delta) => {
    text += delta;
  });
  const message = await stream.finalMessage();
  expectModel(message.model, answeredBy);
  assert(text.trim(), 'no text');
  assert(message.content.map((b) => b.type).join() === 'text', () => show(message.content));
  assert(message.content[0].text === text, () => show([text, message.content]));
  assert(message.stop_reason === 'end_turn', message.stop_reason);
  assert(message.usage.input_tokens > 0 && message.usage.output_tokens > 0, () => show(message.usage));
  return `${message.model}, ${text.split(/\s+/).length} words, usage ${message.usage.input_tokens}+${message.usage.output_tokens}`;
};

const anthropicToolStream = (answeredBy) => async () => {
  const stream = ANT.messages.stream({ model: ROUTE, max_tokens: 300, messages: ASK_WEATHER, tools: ANT_TOOLS });
  const starts = [];
  let json = '';
  for await (const event of stream) {
    if (event.type === 'content_block_start') starts.push([event.index, event.content_block.type]);
    if (event.type === 'content_block_delta' && event.delta.type === 'input_json_delta') json += event.delta.partial_json;
  }
  const message = await stream.finalMessage();
  expectModel(message.model, answeredBy);
  assert(starts.every(([index], i) => index === i), () => `block indices ${show(starts)}`);
  const tools = message.content.filter((b) => b.type === 'tool_use');
  assert(tools.length === 1, () => show(message.content));
  const [tool] = tools;
  assert(tool.name === 'get_weather' && tool.id, () => show(tool));
  assert(typeof tool.input?.location === 'string', () => show(tool.input));
  assert(show(JSON.parse(json)) === show(tool.input), () => show([json, tool.input]));
  assert(message.stop_reason === 'tool_use', message.stop_reason);
  return `blocks ${show(starts)}, ${tool.name}(${show(tool.input)}) id ${tool.id}`;
};

const anthropicToolWhole = (answeredBy) => async () => {
  const message = await ANT.messages.create({ model: ROUTE, max_tokens: 300, messages: ASK_WEATHER, tools: ANT_TOOLS });
  expectModel(message.model, answeredBy);
  const tools = message.content.filter((b) => b.type === 'tool_use');
  assert(tools.length === 1, () => show(message.content));
  const [tool] = tools;
  assert(tool.name === 'get_weather' && tool.id, () => show(tool));
  assert(typeof tool.input?.location === 'string', () => show(tool.input));
  assert(message.stop_reason === 'tool_use', message.stop_reason);
  return `content ${show(message.content.map((b) => b.type))}, ${tool.name}(${show(tool.input)})`;
};

// --- errors ----------------------------------------------------------------------------------

const raises = (call, expected, { status, retryAfter = false, mentions } = {}) => async () => {
  let result;
  try {
    result = await call();
  } catch (e) {
    if (!(e instanceof expected)) throw new Error(`${e?.constructor?.name} (${e?.status}): ${e?.message}; expected ${expected.name}`);
    const details = [`${e.constructor.name} ${e.status ?? ''}`.trim()];
    if (status !== undefined) assert(e.status === status, `status ${e.status}, expected ${status}: ${e.message}`);
    if (retryAfter) {
      const value = e.headers?.get('retry-after');
      assert(value && Number(value) >= 1, `retry-after ${show(value)}`);
      details.push(`retry-after ${value}`);
    }
    if (mentions) {
      assert(e.message.includes(mentions), `${show(e.message)} does not mention ${mentions}`);
      details.push(`message names \`${mentions}\``);
    }
    return details.join(', ');
  }
  throw new Error(`no exception (got ${show(result)}); expected ${expected.name}`);
};

async function anthropicStreamText(client = ANT0) {
  const stream = client.messages.stream({ model: ROUTE, max_tokens: 300, messages: HELLO });
  const message = await stream.finalMessage();
  return `${message.content[0]?.text} [${message.model}]`;
}

async function anthropicWholeText(client = ANT0, model = ROUTE) {
  const message = await client.messages.create({ model, max_tokens: 300, messages: HELLO });
  return `${message.content[0]?.text} [${message.model}]`;
}

async function openaiStreamText(client = OAI0) {
  const stream = await client.chat.completions.create({
    model: ROUTE,
    messages: HELLO,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  for await (const chunk of stream) for (const c of chunk.choices) text += c.delta.content ?? '';
  return text;
}

async function openaiWholeText(client = OAI0, model = ROUTE) {
  const completion = await client.chat.completions.create({ model, messages: HELLO });
  return `${completion.choices[0].message.content} [${completion.model}]`;
}

// Per-request control: a chain by header, whose backup continues a reply cut after five words.
// The stream ends with an SSE comment naming the backup, which the clients skip.
const SPLICED = { headers: { 'x-breakerbox-chain': 'spliced' } };

async function anthropicSplicedStream() {
  const stream = ANT0.messages.stream({ model: ROUTE, max_tokens: 300, messages: HELLO }, SPLICED);
  let text = '';
  stream.on('text', (delta) => (text += delta));
  const message = await stream.finalMessage();
  const words = text.split(/\s+/).filter(Boolean).length;
  assert(message.stop_reason === 'end_turn', message.stop_reason);
  assert(message.content[0]?.text === text && words > 5, text);
  assert(message.usage.output_tokens >= words, () => `${show(message.usage)} for ${words} words`);
  return `${words} words, usage ${message.usage.input_tokens}+${message.usage.output_tokens}`;
}

async function openaiSplicedStream() {
  const stream = await OAI0.chat.completions.create(
    { model: ROUTE, messages: HELLO, stream: true, stream_options: { include_usage: true } },
    SPLICED,
  );
  let text = '';
  let last;
  for await (const chunk of stream) {
    for (const c of chunk.choices) text += c.delta.content ?? '';
    last = chunk;
  }
  const words = text.split(/\s+/).filter(Boolean).length;
  assert(last.model === 'claude-haiku-4-5', last.model);
  assert(last.usage.completion_tokens >= words, () => `${show(last.usage)} for ${words} words`);
  return `${words} words, the usage chunk names ${last.model}`;
}

// A live stream that breaks after text reached the client must end in an error, never look whole.
async function anthropicCutStream() {
  const received = [];
  let message;
  try {
    const stream = ANT0.messages.stream({ model: ROUTE, max_tokens: 300, messages: HELLO });
    stream.on('text', (delta) => received.push(delta));
    message = await stream.finalMessage();
  } catch (e) {
    assert(e instanceof Anthropic.APIError, `${e?.constructor?.name}: ${e?.message}`);
    assert(received.length > 0, 'the error came before any text: the cut should be mid-stream');
    return `${e.constructor.name} after ${received.length} text deltas: ${String(e.message).slice(0, 120)}`;
  }
  throw new Error(`the stream finished cleanly (${message.stop_reason}, ${received.length} deltas): a cut reply looked whole`);
}

async function openaiCutStream() {
  const received = [];
  let finish = null;
  try {
    const stream = await OAI0.chat.completions.create({
      model: ROUTE,
      messages: HELLO,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        if (choice.delta.content) received.push(choice.delta.content);
        finish = choice.finish_reason ?? finish;
      }
    }
  } catch (e) {
    assert(e instanceof OpenAI.APIError, `${e?.constructor?.name}: ${e?.message}`);
    assert(received.length > 0, 'the error came before any text: the cut should be mid-stream');
    return `${e.constructor.name} after ${received.length} text deltas: ${String(e.message).slice(0, 120)}`;
  }
  throw new Error(`the stream finished cleanly (finish_reason ${show(finish)}, ${received.length} deltas): a cut reply looked whole`);
}

// --- OpenAI client, Responses API ------------------------------------------------------------

const RESP_TOOLS = [{ type: 'function', name: 'get_weather', description: 'Current weather', parameters: WEATHER, strict: false }];

function expectResponseUsage(usage) {
  assert(usage && usage.input_tokens > 0 && usage.output_tokens > 0, () => `usage ${show(usage)}`);
  assert(usage.total_tokens === usage.input_tokens + usage.output_tokens, () => show(usage));
  assert(usage.input_tokens_details?.cached_tokens >= 0, () => show(usage));
}

const responsesCreateStream = (answeredBy, model = ROUTE) => async () => {
  const stream = await OAI.responses.create({ model, input: 'Why is the sky blue?', stream: true });
  let text = '';
  let final = null;
  const types = [];
  const numbers = [];
  for await (const event of stream) {
    types.push(event.type);
    numbers.push(event.sequence_number);
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') final = event.response;
  }
  assert(types[0] === 'response.created' && types[1] === 'response.in_progress', () => show(types.slice(0, 3)));
  assert(types.at(-1) === 'response.completed', () => show(types.slice(-3)));
  assert(numbers.every((n, i) => n === i), 'sequence_number counts up from 0');
  assert(text.trim(), 'no text');
  assert(final.status === 'completed', final.status);
  assert(final.output[0].content[0].text === text, () => show([final.output, text]));
  expectModel(final.model, answeredBy);
  expectResponseUsage(final.usage);
  return `${final.model}, ${types.length} events, usage ${final.usage.input_tokens}+${final.usage.output_tokens}`;
};

const responsesCreateWhole = (answeredBy, model = ROUTE) => async () => {
  const { data: response, request_id } = await OAI.responses
    .create({ model, instructions: 'Be brief.', input: [{ role: 'user', content: 'Hi' }] })
    .withResponse();
  assert(response.object === 'response' && response.status === 'completed', response.status);
  assert(response.id.startsWith('resp_'), response.id);
  assert(response.output_text.trim(), 'no output_text');
  // The request's fields come back in the response object, the gateway's own or (passed
  // through) the upstream's.
  assert(response.instructions === 'Be brief.', response.instructions);
  expectModel(response.model, answeredBy);
  expectResponseUsage(response.usage);
  assert(request_id, 'no x-request-id');
  return `${response.model}, id ${response.id}`;
};

const responsesStreamHelper = (answeredBy, model = ROUTE) => async () => {
  const deltas = [];
  const stream = OAI.responses.stream({ model, input: 'Why is the sky blue?' });
  stream.on('response.output_text.delta', (event) => {
    deltas.push(event.delta);
    assert(event.snapshot.endsWith(event.delta), "the helper's snapshot");
  });
  const final = await stream.finalResponse();
  assert(final.output_text === deltas.join(''), () => show([final.output_text, deltas]));
  expectModel(final.model, answeredBy);
  expectResponseUsage(final.usage);
  return `${final.model}, ${deltas.length} deltas`;
};

const responsesToolRoundTrip = (answeredBy, model = ROUTE) => async () => {
  const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const final = await OAI.responses.stream({ model, input: ask, tools: RESP_TOOLS }).finalResponse();
  const calls = final.output.filter((item) => item.type === 'function_call');
  assert(calls.length === 1, () => show(final.output));
  const [call] = calls;
  assert(call.name === 'get_weather' && call.id.startsWith('fc_'), () => show(call));
  const args = JSON.parse(call.arguments);
  assert(typeof args.location === 'string', () => show(args));
  const input = [...ask, ...final.output, { type: 'function_call_output', call_id: call.call_id, output: 'Sunny, 21 C' }];
  const answer = await OAI.responses.create({ model, input, tools: RESP_TOOLS });
  assert(answer.status === 'completed', answer.status);
  assert(!answer.output.some((item) => item.type === 'function_call'), () => show(answer.output));
  assert(answer.output_text.trim(), 'no answer after the tool result');
  expectModel(answer.model, answeredBy);
  return `${call.name}(${call.arguments}) -> ${show(answer.output_text.slice(0, 40))}`;
};

async function responsesWholeText(client = OAI0) {
  const response = await client.responses.create({ model: ROUTE, input: 'hi' });
  return `${response.output_text} [${response.model}]`;
}

async function responsesStreamText(client = OAI0) {
  const stream = await client.responses.create({ model: ROUTE, input: 'hi', stream: true });
  let text = '';
  for await (const event of stream) if (event.type === 'response.output_text.delta') text += event.delta;
  return text;
}

// A Responses stream that breaks after text: `response.failed`, and the helper has no final response.
async function responsesCutStream() {
  const received = [];
  const types = [];
  const stream = OAI0.responses.stream({ model: ROUTE, input: 'Why is the sky blue?' });
  stream.on('event', (event) => types.push(event.type));
  stream.on('response.output_text.delta', (event) => received.push(event.delta));
  let final;
  try {
    final = await stream.finalResponse();
  } catch (e) {
    assert(received.length > 0, 'the failure came before any text: the cut should be mid-stream');
    assert(types.at(-1) === 'response.failed', () => show(types.slice(-3)));
    assert(!types.includes('response.completed'), 'completed after a cut');
    return `response.failed after ${received.length} deltas; finalResponse: ${String(e.message).slice(0, 80)}`;
  }
  assert(final.status === 'failed', `the stream ended ${final.status}: a cut reply looked whole`);
  assert(types.at(-1) === 'response.failed' && !types.includes('response.completed'), () => show(types.slice(-3)));
  assert(received.length > 0, 'the failure came before any text: the cut should be mid-stream');
  return `response.failed after ${received.length} deltas (status ${final.status}, error ${show(final.error)})`;
}

const BOTH_RATE_LIMITED = { anthropic: 'rate_limit:retry_after=3s', openai: 'rate_limit:retry_after=3s' };
const CUT = { anthropic: 'stream_cut:after=5' };

const CHECKS = [
  ['openai: responses.create stream (anthropic answered)', responsesCreateStream('anthropic')],
  ['openai: responses.create stream (openai answered)', withTripped('anthropic', responsesCreateStream('openai'))],
  ['openai: responses.create whole (anthropic answered)', responsesCreateWhole('anthropic')],
  ['openai: responses.create whole (openai answered)', withTripped('anthropic', responsesCreateWhole('openai'))],
  ['openai: responses.stream() finalResponse (anthropic answered)', responsesStreamHelper('anthropic')],
  ['openai: responses.stream() finalResponse (openai answered)', withTripped('anthropic', responsesStreamHelper('openai'))],
  // The Responses API to a Responses target: passed through.
  ['openai: responses.create stream, same protocol', responsesCreateStream('responses', SAME)],
  ['openai: responses.create whole, same protocol', responsesCreateWhole('responses', SAME)],
  ['openai: responses.stream() finalResponse, same protocol', responsesStreamHelper('responses', SAME)],
  ['openai: responses function call round trip, same protocol', responsesToolRoundTrip('responses', SAME)],
  ['openai: responses function call round trip (anthropic)', responsesToolRoundTrip('anthropic')],
  ['openai: responses function call round trip (openai)', withTripped('anthropic', responsesToolRoundTrip('openai'))],
  [
    'both rate limited: responses.create -> RateLimitError 429 + retry-after',
    withFaults(BOTH_RATE_LIMITED, raises(() => responsesWholeText(), OpenAI.RateLimitError, { status: 429, retryAfter: true })),
  ],
  [
    'both rate limited: responses stream -> RateLimitError 429 + retry-after',
    withFaults(BOTH_RATE_LIMITED, raises(() => responsesStreamText(), OpenAI.RateLimitError, { status: 429, retryAfter: true })),
  ],
  [
    'responses previous_response_id -> BadRequestError 400',
    raises(() => OAI0.responses.create({ model: ROUTE, input: 'hi', previous_response_id: 'resp_1' }), OpenAI.BadRequestError, {
      status: 400,
      mentions: 'previous_response_id',
    }),
  ],
  ['anthropic stream_cut: responses stream ends in response.failed', withFaults(CUT, responsesCutStream)],
  ['openai: chat.completions stream + usage (anthropic answered)', openaiStream('anthropic')],
  ['openai: chat.completions not streamed (anthropic answered)', openaiWhole('anthropic')],
  ['anthropic: messages.create not streamed', anthropicWhole('anthropic')],
  ['anthropic: messages.stream finalMessage', anthropicStream('anthropic')],
  ['anthropic tripped: anthropic messages.create (openai answered)', withTripped('anthropic', anthropicWhole('openai'))],
  ['anthropic tripped: anthropic messages.stream (openai answered)', withTripped('anthropic', anthropicStream('openai'))],
  [
    'anthropic overloaded: anthropic messages.stream fails over invisibly (openai answered)',
    withFaults({ anthropic: 'overloaded' }, anthropicStream('openai')),
  ],
  ['anthropic tripped: openai chat.completions stream (openai answered)', withTripped('anthropic', openaiStream('openai'))],
  ['openai: chat.completions.stream() tool call (anthropic answered)', openaiToolStreamHelper('anthropic')],
  ['openai: tool call not streamed (anthropic answered)', openaiToolWhole('anthropic')],
  ['anthropic: tool_use streamed', anthropicToolStream('anthropic')],
  ['anthropic tripped: anthropic tool_use streamed (openai answered)', withTripped('anthropic', anthropicToolStream('openai'))],
  ['anthropic tripped: anthropic tool_use not streamed (openai answered)', withTripped('anthropic', anthropicToolWhole('openai'))],
  ['openai: tool_choice none -> words, no tool call (anthropic answered)', openaiToolChoiceNone('anthropic')],
  ['openai: its own model name is routed (gpt-*)', async () => (await openaiWholeText(OAI0, 'gpt-5-mini')).slice(0, 40)],
  ['anthropic: its own model name is routed (claude-*)', async () => (await anthropicWholeText(ANT0, 'claude-haiku-4-5')).slice(0, 40)],
  [
    'openai: unknown model -> NotFoundError 404 naming the routes',
    raises(() => openaiWholeText(OAI0, 'no-such-model'), OpenAI.NotFoundError, { status: 404, mentions: ROUTE }),
  ],
  [
    'anthropic: unknown model -> NotFoundError 404 naming the routes',
    raises(() => anthropicWholeText(ANT0, 'no-such-model'), Anthropic.NotFoundError, { status: 404, mentions: ROUTE }),
  ],
  [
    'both rate limited: openai stream -> RateLimitError 429 + retry-after',
    withFaults(BOTH_RATE_LIMITED, raises(() => openaiStreamText(), OpenAI.RateLimitError, { status: 429, retryAfter: true })),
  ],
  [
    'both rate limited: anthropic stream -> RateLimitError 429 + retry-after',
    withFaults(BOTH_RATE_LIMITED, raises(() => anthropicStreamText(), Anthropic.RateLimitError, { status: 429, retryAfter: true })),
  ],
  [
    'both rate limited: anthropic not streamed -> RateLimitError 429 + retry-after',
    withFaults(BOTH_RATE_LIMITED, raises(() => anthropicWholeText(), Anthropic.RateLimitError, { status: 429, retryAfter: true })),
  ],
  [
    'both overloaded: anthropic stream -> OverloadedError 529',
    withFaults({ anthropic: 'overloaded', openai: 'overloaded' }, raises(() => anthropicStreamText(), Anthropic.OverloadedError, { status: 529 })),
  ],
  [
    'anthropic bad_request: anthropic stream -> BadRequestError 400',
    withFaults({ anthropic: 'bad_request' }, raises(() => anthropicStreamText(), Anthropic.BadRequestError, { status: 400 })),
  ],
  [
    'anthropic bad_request, openai rate limited: openai not streamed -> still BadRequestError 400',
    withFaults(
      { anthropic: 'bad_request', openai: 'rate_limit:retry_after=3s' },
      raises(() => openaiWholeText(), OpenAI.BadRequestError, { status: 400 }),
    ),
  ],
  ['anthropic stream_cut, continued: messages.stream reads one message', withFaults(CUT, anthropicSplicedStream)],
  ['anthropic stream_cut, continued: chat.completions stream', withFaults(CUT, openaiSplicedStream)],
  ['anthropic stream_cut: anthropic messages.stream throws mid-stream', withFaults(CUT, anthropicCutStream)],
  ['anthropic stream_cut: openai chat.completions stream throws mid-stream', withFaults(CUT, openaiCutStream)],
  ['anthropic stream_cut: anthropic not streamed -> complete answer (openai answered)', withFaults(CUT, anthropicWhole('openai'))],
  ['anthropic stream_cut: openai not streamed -> complete answer (openai answered)', withFaults(CUT, openaiWhole('openai'))],
];

const failures = [];
const started = performance.now();
console.log(`@anthropic-ai/sdk ${ANTHROPIC_VERSION}, openai ${OPENAI_VERSION}, node ${process.versions.node}, gateway ${BASE}`);
await clean();
for (const [name, run] of CHECKS) {
  const t0 = performance.now();
  try {
    const detail = await run();
    console.log(`ok   ${name}${detail ? `: ${detail}` : ''} [${Math.round(performance.now() - t0)} ms]`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL ${name}: ${e?.constructor?.name}: ${e?.message}`);
  } finally {
    try {
      await clean();
    } catch (e) {
      failures.push(`${name} (cleanup)`);
      console.log(`FAIL ${name}: cleanup: ${e?.message}`);
    }
  }
}
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`gateway (js): ${CHECKS.length - failures.length} passed, ${failures.length} failed in ${seconds} s`);
process.exit(failures.length ? 1 : 0);
