// The official openai npm package against gemma4 serve: chat streamed and not, tools, thinking,
// errors as the SDK's error classes, concurrency (exact and default numerics), a disconnect in the
// middle of a stream, completions and the model list. The test model has random weights: the checks
// are about structure, equality and guarantees, not about what the text says.
import test from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, tokenId, waitFor } from './harness.mjs';

const srv = await startServer(['--parallel', '4', '--ctx', '1024', '--max-tokens', '400', '--alias', 'tiny']);
const client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'none', maxRetries: 0 });
test.after(async () => assert.equal(await srv.stop(), 0, 'gemma4 serve exits with status 0 on SIGTERM'));

const user = (content) => [{ role: 'user', content }];

async function collect(stream) {
  const out = { content: '', reasoning: '', calls: [], finish: null, usage: null, chunks: 0 };
  for await (const chunk of stream) {
    out.chunks++;
    if (chunk.usage) out.usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.content) out.content += c.delta.content;
      if (c.delta.reasoning_content) out.reasoning += c.delta.reasoning_content;
      for (const t of c.delta.tool_calls || []) out.calls.push(t);
      if (c.finish_reason) out.finish = c.finish_reason;
    }
  }
  return out;
}

test('models.list names the served model', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['tiny']);
});

test('chat: streamed and not streamed give the same greedy answer', async () => {
  const plain = await client.chat.completions.create({ model: 'tiny', messages: user('Tell me about the sea'), max_tokens: 24, temperature: 0 });
  assert.equal(plain.object, 'chat.completion');
  assert.equal(plain.choices[0].message.role, 'assistant');
  assert.ok(['stop', 'length'].includes(plain.choices[0].finish_reason));
  assert.ok(plain.usage.completion_tokens > 0);
  const streamed = await collect(await client.chat.completions.create({
    model: 'tiny', messages: user('Tell me about the sea'), max_tokens: 24, temperature: 0, stream: true,
    stream_options: { include_usage: true } }));
  assert.equal(streamed.content, plain.choices[0].message.content);
  assert.equal(streamed.finish, plain.choices[0].finish_reason);
  assert.equal(streamed.usage.completion_tokens, plain.usage.completion_tokens);
  assert.ok(streamed.chunks >= 3);
});

const tools = [{
  type: 'function',
  function: {
    name: 'get_weather', description: 'Current weather',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['C', 'F'] } },
                  required: ['city', 'unit'], additionalProperties: false },
  },
}];

test('tools: a required call comes back as tool_calls, and its result can be sent back', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny', messages: user('Weather in Oslo?'), tools, tool_choice: 'required', parallel_tool_calls: false,
    max_tokens: 200, temperature: 0 });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.tool_calls.length, 1);
  const call = c.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  const args = JSON.parse(call.function.arguments);
  assert.deepEqual(Object.keys(args).sort(), ['city', 'unit']);
  assert.ok(['C', 'F'].includes(args.unit));
  assert.ok([...args.city].length <= 12);
  // The conversation goes on with the tool's answer, matched by the call's id.
  const next = await client.chat.completions.create({
    model: 'tiny', tools, max_tokens: 8, temperature: 0,
    messages: [...user('Weather in Oslo?'), c.message, { role: 'tool', tool_call_id: call.id, content: '{"temp": -3}' }] });
  assert.equal(next.object, 'chat.completion');
  // A tool_call_id that matches nothing is refused, naming the field.
  await assert.rejects(client.chat.completions.create({
    model: 'tiny', tools, max_tokens: 8,
    messages: [...user('Weather?'), c.message, { role: 'tool', tool_call_id: 'call_nope', content: '1' }] }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages[2].tool_call_id');
  // Streamed, a named function.
  const s = await collect(await client.chat.completions.create({
    model: 'tiny', messages: user('Weather?'), tools, tool_choice: { type: 'function', function: { name: 'get_weather' } },
    max_tokens: 200, temperature: 0, stream: true }));
  assert.equal(s.finish, 'tool_calls');
  assert.equal(s.calls[0].function.name, 'get_weather');
  JSON.parse(s.calls[0].function.arguments);
});

test('thinking: switched per request, reasoning_content streamed as deltas', async () => {
  const off = await client.chat.completions.create({ model: 'tiny', messages: user('Hmm'), max_tokens: 1 });
  const on = await client.chat.completions.create({ model: 'tiny', messages: user('Hmm'), max_tokens: 1,
                                                    chat_template_kwargs: { enable_thinking: true } });
  assert.ok(on.usage.prompt_tokens > off.usage.prompt_tokens, 'the system turn enables thinking');
  // The random model is made to open its thought channel (a bias on <|channel>); a JSON answer
  // has to follow it, so the channel is where the text goes.
  const request = {
    model: 'tiny', messages: user('Think first'), max_tokens: 40, temperature: 0, reasoning_effort: 'high',
    logit_bias: { [tokenId('<|channel>')]: 100 }, response_format: { type: 'json_object' } };
  const plain = await client.chat.completions.create(request);
  const reasoning = plain.choices[0].message.reasoning_content;
  assert.equal(typeof reasoning, 'string');
  assert.ok(reasoning.length > 0);
  const streamed = await collect(await client.chat.completions.create({ ...request, stream: true }));
  assert.equal(streamed.reasoning, reasoning);
  assert.equal(streamed.content, plain.choices[0].message.content ?? '');
});

test('json_schema output parses and validates', async () => {
  const schema = { type: 'object', properties: { answer: { enum: ['yes', 'no'] }, score: { type: 'integer', minimum: 1, maximum: 5 } },
                   required: ['answer', 'score'], additionalProperties: false };
  const r = await client.chat.completions.create({
    model: 'tiny', messages: user('Answer in JSON'), max_tokens: 300, temperature: 0.8, seed: 4,
    response_format: { type: 'json_schema', json_schema: { name: 'verdict', schema, strict: true } } });
  assert.equal(r.choices[0].finish_reason, 'stop');
  const v = JSON.parse(r.choices[0].message.content);
  assert.deepEqual(Object.keys(v).sort(), ['answer', 'score']);
  assert.ok(['yes', 'no'].includes(v.answer));
  assert.ok(Number.isInteger(v.score) && v.score >= 1 && v.score <= 5);
});

test('errors arrive as the SDK error classes with the field named', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: [] }),
                       (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'messages');
  await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'wizard', content: 'x' }] }),
                       (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages[0].role');
  await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: user('x'), temperature: 'warm' }),
                       (e) => e instanceof OpenAI.BadRequestError && /temperature: must be a number/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: user('x') }),
                       (e) => e instanceof OpenAI.NotFoundError && /this server serves: tiny/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: user('x '.repeat(2000)) }),
                       (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded' &&
                                /the conversation is \d+ tokens, \d+ over the context's 1023/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: user('x'), max_tokens: 100000 }),
                       (e) => e instanceof OpenAI.BadRequestError && e.param === 'max_tokens');
});

test('a client that disconnects in mid-stream frees its slot', async () => {
  const before = await srv.metric('gemma4_generations_cancelled_total');
  const stream = await client.chat.completions.create({ model: 'tiny', messages: user('Go on and on'), max_tokens: 400,
                                                        temperature: 0.9, stream: true });
  let n = 0;
  for await (const chunk of stream) {  // leaving the loop closes the connection
    if (chunk.choices[0]?.delta?.content && ++n >= 3) break;
  }
  await waitFor(async () => (await srv.metric('gemma4_generations_cancelled_total')) === before + 1, 'the cancellation');
  await waitFor(async () => (await srv.metric('gemma4_slots_active')) === 0, 'the slot to be free');
  const next = await client.chat.completions.create({ model: 'tiny', messages: user('Next'), max_tokens: 2 });
  assert.equal(next.object, 'chat.completion');
});

test('completions: text prompt and token prompt', async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 5, temperature: 0, echo: true });
  assert.ok(r.choices[0].text.startsWith('Once upon a time'));
  const t = await client.completions.create({ model: 'tiny', prompt: [2, 40, 41, 42], max_tokens: 3, temperature: 0 });
  assert.equal(t.usage.prompt_tokens, 4);
});

// N concurrent greedy requests give exactly what the same requests give one at a time, in the
// reference numerics (--exact) and in the default fast ones.
for (const mode of [['--exact'], []]) {
  test(`concurrent greedy requests equal sequential ones (${mode.length ? 'exact' : 'default'} numerics)`, async () => {
    const s = await startServer(['--parallel', '4', '--ctx', '512', ...mode]);
    try {
      const c = new OpenAI({ baseURL: s.url + '/v1', apiKey: 'none', maxRetries: 0 });
      const prompts = Array.from({ length: 6 }, (_, i) => `Request ${i}: ${'abcdefghij'.slice(i)}`);
      const ask = (p) => c.chat.completions.create({ model: 'tiny', messages: user(p), max_tokens: 16, temperature: 0 })
                          .then((r) => r.choices[0].message.content);
      const alone = [];
      for (const p of prompts) alone.push(await ask(p));
      const together = await Promise.all(prompts.map(ask));
      assert.deepEqual(together, alone);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
}

test('an API key is checked', async () => {
  const s = await startServer(['--api-key', 'k3y', '--parallel', '1']);
  try {
    const bad = new OpenAI({ baseURL: s.url + '/v1', apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    const good = new OpenAI({ baseURL: s.url + '/v1', apiKey: 'k3y', maxRetries: 0 });
    assert.equal((await good.models.list()).data.length, 1);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});
