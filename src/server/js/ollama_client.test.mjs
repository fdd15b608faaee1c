// The ollama npm package against gemma4 serve: chat and generate, streamed and not, tools, format,
// thinking, the listing endpoints and errors.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { startServer } from './harness.mjs';

const srv = await startServer(['--parallel', '2', '--ctx', '1024', '--max-tokens', '400', '--alias', 'tiny']);
const ollama = new Ollama({ host: srv.url });
test.after(async () => assert.equal(await srv.stop(), 0));

test('list, show, version', async () => {
  const list = await ollama.list();
  assert.equal(list.models[0].name, 'tiny');
  assert.equal(list.models[0].details.format, 'gguf');
  const show = await ollama.show({ model: 'tiny' });
  assert.ok(show.capabilities.includes('tools'));
  assert.equal(show.model_info['general.architecture'], 'gemma4');
  assert.equal(typeof (await ollama.version()).version, 'string');
});

test('chat: streamed and not streamed give the same greedy answer', async () => {
  const messages = [{ role: 'user', content: 'Tell me a story' }];
  const options = { temperature: 0, num_predict: 20 };
  const plain = await ollama.chat({ model: 'tiny', messages, options });
  assert.equal(plain.done, true);
  assert.equal(plain.message.role, 'assistant');
  assert.ok(plain.eval_count > 0);
  let content = '';
  let last = null;
  for await (const part of await ollama.chat({ model: 'tiny', messages, options, stream: true })) {
    content += part.message.content;
    last = part;
  }
  assert.equal(content, plain.message.content);
  assert.equal(last.done, true);
  assert.equal(last.done_reason, plain.done_reason);
});

test('generate: streamed, with the context carried to the next request', async () => {
  const first = await ollama.generate({ model: 'tiny', prompt: 'Hello', options: { temperature: 0, num_predict: 6 } });
  assert.ok(Array.isArray(first.context) && first.context.length > 0);
  let text = '';
  let final = null;
  for await (const part of await ollama.generate({ model: 'tiny', prompt: 'More', context: first.context, stream: true,
                                                  options: { temperature: 0, num_predict: 4 } })) {
    text += part.response;
    final = part;
  }
  assert.equal(final.done, true);
  assert.ok(final.prompt_eval_count > first.context.length);
});

test('tools and format', async () => {
  const tools = [{ type: 'function', function: { name: 'add', description: 'Adds',
    parameters: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, required: ['a', 'b'] } } }];
  const r = await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'Add 2 and 3' }], tools,
                                options: { temperature: 0, num_predict: 30 } });
  assert.equal(r.done, true);
  // The call (Ollama shape: no ids) and its result go back into the conversation.
  const history = [{ role: 'user', content: 'Add 2 and 3' },
                   { role: 'assistant', content: '', tool_calls: [{ function: { name: 'add', arguments: { a: 2, b: 3 } } }] },
                   { role: 'tool', content: '5', tool_name: 'add' }];
  const next = await ollama.chat({ model: 'tiny', messages: history, tools, options: { num_predict: 4 } });
  assert.equal(next.done, true);
  const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
  const j = await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'json' }], format: schema,
                                options: { temperature: 0, num_predict: 200 } });
  assert.equal(typeof JSON.parse(j.message.content).ok, 'boolean');
});

test('think switches thinking on per request', async () => {
  const ask = (think) => ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'Think' }], think,
                                       options: { num_predict: 1 } });
  const off = await ask(false);
  const on = await ask(true);
  assert.ok(on.prompt_eval_count > off.prompt_eval_count, 'the system turn enables thinking');
  assert.equal((await ask('high')).prompt_eval_count, on.prompt_eval_count);
});

test('errors are ResponseErrors with the message', async () => {
  await assert.rejects(ollama.chat({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
                       (e) => e.name === 'ResponseError' && e.status_code === 404 && /this server serves: tiny/.test(e.error));
  await assert.rejects(ollama.chat({ model: 'tiny', messages: [{ role: 'robot', content: 'x' }], stream: false }),
                       (e) => e.status_code === 400 && /messages\[0\]\.role: unknown role/.test(e.error));
  await assert.rejects(ollama.generate({ model: 'tiny', prompt: 'x', options: { num_predict: 100000 } }),
                       (e) => e.status_code === 400 && /num_predict/.test(e.error));
});
