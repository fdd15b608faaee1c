// The chat page at GET /, driven in headless Chromium (Debian's chromium, through playwright-core):
// a typed message gets a streamed answer, the thinking switch reaches the request, thinking shows in
// a block that folds away, the conversation survives a reload, and an attached image is sent.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './harness.mjs';

// Greedy by default, so the page's answer can be compared with the API's.
const srv = await startServer(['--parallel', '2', '--ctx', '1024', '--max-tokens', '24', '--temp', '0', '--alias', 'tiny']);
const profile = mkdtempSync(path.join(tmpdir(), 'gemma4-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
test.after(async () => {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  assert.equal(await srv.stop(), 0);
});

// What the API answers to the request the page makes for `text` (thinking off).
async function apiAnswer(text) {
  const r = await fetch(srv.url + '/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: text }], chat_template_kwargs: { enable_thinking: false } }),
  });
  return (await r.json()).choices[0].message.content;
}

test('a typed message gets a streamed answer', async () => {
  // A prompt whose greedy answer is not empty (the model is random: some prompts end at once).
  let prompt = null;
  let expected = '';
  for (const p of ['Hello there', 'What is a star?', 'Write a poem', 'Good morning', 'Why?', 'Tell me more']) {
    expected = await apiAnswer(p);
    if (expected.trim().length > 0) {
      prompt = p;
      break;
    }
  }
  assert.ok(prompt, 'one of the prompts has a non-empty answer');

  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => { if (r.url().endsWith('/v1/chat/completions')) requests.push(JSON.parse(r.postData())); });
  await page.goto(srv.url + '/');
  await page.waitForFunction(() => document.getElementById('model').textContent === 'tiny');
  // Count the updates of the answer: a streamed answer grows in several steps.
  await page.evaluate(() => {
    window.__updates = 0;
    new MutationObserver(() => { window.__updates++; })
      .observe(document.getElementById('messages'), { subtree: true, characterData: true, childList: true });
  });
  await page.fill('#input', prompt);
  await page.press('#input', 'Enter');
  await page.waitForSelector('.message.assistant[data-done="1"]', { timeout: 60000 });
  assert.equal(await page.textContent('.message.user .content'), prompt);
  assert.equal(await page.textContent('.message.assistant .content'), expected);
  assert.ok(await page.evaluate(() => window.__updates) > 3, 'the answer was streamed in pieces');
  assert.equal(requests.length, 1);
  assert.equal(requests[0].stream, true);
  assert.equal(requests[0].chat_template_kwargs.enable_thinking, false);
  assert.equal(await page.isVisible('.message.assistant .error'), false);

  // The thinking switch goes with the next request; the conversation is sent whole.
  await page.check('#think');
  await page.fill('#input', 'And then?');
  await page.press('#input', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('.message.assistant[data-done="1"]').length === 2, null, { timeout: 60000 });
  assert.equal(requests[1].chat_template_kwargs.enable_thinking, true);
  assert.deepEqual(requests[1].messages.map((m) => m.role), ['user', 'assistant', 'user']);
  assert.equal(requests[1].messages[1].content, expected);

  // The conversation is kept in the browser.
  await page.reload();
  await page.waitForSelector('.message.assistant[data-done="1"]');
  assert.equal(await page.locator('.message').count(), 4);
  assert.equal(await page.isChecked('#think'), true);
  await page.click('#new');
  assert.equal(await page.locator('.message').count(), 0);
  await page.close();
});

test('thinking is shown in a block that folds away when the answer is done', async () => {
  const page = await context.newPage();
  await page.goto(srv.url + '/');
  // A scripted stream with reasoning (the random model does not think by itself).
  const chunk = (delta, finish = null) =>
    'data: ' + JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] }) + '\n\n';
  await page.route('**/v1/chat/completions', (route) => route.fulfill({
    status: 200, contentType: 'text/event-stream',
    body: chunk({ role: 'assistant', content: '' }) + chunk({ reasoning_content: 'Let me ' }) +
          chunk({ reasoning_content: 'think.' }) + chunk({ content: 'Forty-two.' }) + chunk({}, 'stop') + 'data: [DONE]\n\n',
  }));
  await page.fill('#input', 'Meaning of life?');
  await page.press('#input', 'Enter');
  await page.waitForSelector('.message.assistant[data-done="1"]');
  assert.equal(await page.textContent('.message.assistant details.thinking .text'), 'Let me think.');
  assert.equal(await page.isVisible('.message.assistant details.thinking'), true);
  assert.equal(await page.evaluate(() => document.querySelector('.message.assistant details.thinking').open), false);
  assert.equal(await page.textContent('.message.assistant .content'), 'Forty-two.');
  await page.click('#new');
  await page.close();
});

test('an attached image is sent as a data: URI (this text-only model refuses it)', async () => {
  const page = await context.newPage();
  await page.goto(srv.url + '/');
  let sent = null;
  page.on('request', (r) => { if (r.url().endsWith('/v1/chat/completions')) sent = JSON.parse(r.postData()); });
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC', 'base64');
  await page.setInputFiles('#file', { name: 'dot.png', mimeType: 'image/png', buffer: png });
  await page.waitForSelector('#attachments .chip');
  await page.fill('#input', 'What is this?');
  await page.press('#input', 'Enter');
  await page.waitForSelector('.message.assistant[data-done="1"]');
  const parts = sent.messages[0].content;
  assert.equal(parts[0].type, 'image_url');
  assert.ok(parts[0].image_url.url.startsWith('data:image/png;base64,'));
  assert.equal(parts[1].text, 'What is this?');
  assert.match(await page.textContent('.message.assistant .error'), /takes no images or audio/);
  assert.equal(await page.locator('.message.user img').count(), 1);
  await page.click('#new');
  await page.close();
});
