// The gemma4.cpp chat page: talks to this server's /v1/chat/completions with streaming, shows the
// model's thinking in a collapsible block, keeps the conversation in the browser (localStorage), and
// sends attached images and sounds as data: URIs. No build step, no dependencies.
'use strict';

const $ = (id) => document.getElementById(id);
const STORE = 'gemma4.chat';
const KEY = 'gemma4.apiKey';
const THINK = 'gemma4.think';

let conversation = load();
let attachments = [];  // {kind: 'image'|'audio', name, dataUrl}
let controller = null;
let modelName = '';

function load() {
  try {
    const c = JSON.parse(localStorage.getItem(STORE) || '[]');
    return Array.isArray(c) ? c : [];
  } catch (e) {
    return [];
  }
}

function save() {
  try {
    localStorage.setItem(STORE, JSON.stringify(conversation));
  } catch (e) {
    // Too large for the browser's storage (big attachments): keep the text only.
    const light = conversation.map((m) => ({...m, attachments: []}));
    try { localStorage.setItem(STORE, JSON.stringify(light)); } catch (e2) { /* give up quietly */ }
  }
}

function headers() {
  const h = {'Content-Type': 'application/json'};
  const key = localStorage.getItem(KEY);
  if (key) h['Authorization'] = 'Bearer ' + key;
  return h;
}

// fetch that asks for an API key once when the server wants one.
async function api(path, init) {
  let res = await fetch(path, {...init, headers: headers()});
  if (res.status === 401) {
    const key = window.prompt('This server needs an API key:');
    if (key) {
      localStorage.setItem(KEY, key);
      res = await fetch(path, {...init, headers: headers()});
    }
  }
  return res;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function scrollDown() {
  const m = $('messages');
  m.scrollTop = m.scrollHeight;
}

// One message on the page; returns the parts that streaming fills in.
function renderMessage(msg) {
  const div = el('div', 'message ' + msg.role);
  for (const a of msg.attachments || []) {
    if (a.kind === 'image') {
      const img = el('img');
      img.src = a.dataUrl;
      img.alt = a.name;
      div.appendChild(img);
    } else {
      const audio = el('audio');
      audio.controls = true;
      audio.src = a.dataUrl;
      div.appendChild(audio);
    }
  }
  const thinking = el('details', 'thinking');
  thinking.appendChild(el('summary', '', 'Thinking'));
  const thinkingText = el('div', 'text', msg.reasoning || '');
  thinking.appendChild(thinkingText);
  thinking.hidden = !msg.reasoning;
  div.appendChild(thinking);
  const content = el('div', 'content', msg.content || '');
  div.appendChild(content);
  const calls = el('div', 'toolcalls');
  for (const c of msg.tool_calls || []) calls.appendChild(el('div', 'toolcall', '\u2192 ' + c.function.name + ' ' + c.function.arguments));
  div.appendChild(calls);
  const meta = el('div', 'meta', msg.meta || '');
  div.appendChild(meta);
  if (msg.error) div.appendChild(el('div', 'error', msg.error));
  if (msg.role === 'assistant') div.dataset.done = '1';
  $('messages').appendChild(div);
  scrollDown();
  return {div, thinking, thinkingText, content, calls, meta};
}

function renderAll() {
  $('messages').textContent = '';
  for (const m of conversation) renderMessage(m);
}

// The conversation as the API wants it: attachments become content parts.
function apiMessages() {
  return conversation.filter((m) => !m.error || m.content).map((m) => {
    if (m.role === 'user' && m.attachments && m.attachments.length) {
      const parts = m.attachments.map((a) => {
        if (a.kind === 'image') return {type: 'image_url', image_url: {url: a.dataUrl}};
        const format = /mpeg|mp3/.test(a.dataUrl.slice(0, 40)) ? 'mp3' : 'wav';
        return {type: 'input_audio', input_audio: {data: a.dataUrl.split(',')[1], format}};
      });
      if (m.content) parts.push({type: 'text', text: m.content});
      return {role: 'user', content: parts};
    }
    const out = {role: m.role, content: m.content || ''};
    if (m.tool_calls && m.tool_calls.length) out.tool_calls = m.tool_calls;
    return out;
  });
}

// Server-sent events from a fetch response: yields each data object until [DONE].
async function* events(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const {done, value} = await reader.read();
    if (done) return;
    buf += decoder.decode(value, {stream: true});
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of block.split('\n')) {
        if (!line.startsWith('data: ')) continue;  // comments keep the connection alive
        const data = line.slice(6);
        if (data === '[DONE]') return;
        yield JSON.parse(data);
      }
    }
  }
}

function setBusy(busy) {
  $('send').hidden = busy;
  $('stop').hidden = !busy;
}

async function send(text) {
  const user = {role: 'user', content: text, attachments};
  attachments = [];
  renderAttachments();
  conversation.push(user);
  renderMessage(user);
  const msg = {role: 'assistant', content: '', reasoning: ''};
  const view = renderMessage(msg);
  delete view.div.dataset.done;
  view.div.classList.add('streaming');
  save();
  setBusy(true);
  controller = new AbortController();
  const started = performance.now();
  let firstToken = 0;
  let usage = null;
  try {
    const res = await api('/v1/chat/completions', {
      method: 'POST',
      signal: controller.signal,
      body: JSON.stringify({
        model: modelName || undefined,
        messages: apiMessages(),
        stream: true,
        stream_options: {include_usage: true},
        chat_template_kwargs: {enable_thinking: $('think').checked},
      }),
    });
    if (!res.ok) {
      let detail = res.status + ' ' + res.statusText;
      try { detail = (await res.json()).error.message; } catch (e) { /* keep the status */ }
      throw new Error(detail);
    }
    view.thinking.open = true;
    for await (const ev of events(res)) {
      if (ev.error) throw new Error(ev.error.message || String(ev.error));
      if (ev.usage) usage = ev.usage;
      const choice = ev.choices && ev.choices[0];
      if (!choice) continue;
      const d = choice.delta || {};
      if ((d.content || d.reasoning_content) && !firstToken) firstToken = performance.now();
      if (d.reasoning_content) {
        msg.reasoning += d.reasoning_content;
        view.thinking.hidden = false;
        view.thinkingText.textContent = msg.reasoning;
      }
      if (d.content) {
        msg.content += d.content;
        view.content.textContent = msg.content;
      }
      for (const c of d.tool_calls || []) {
        (msg.tool_calls = msg.tool_calls || []).push(c);
        view.calls.appendChild(el('div', 'toolcall', '\u2192 ' + c.function.name + ' ' + c.function.arguments));
      }
      if (choice.finish_reason) msg.finish = choice.finish_reason;
      scrollDown();
    }
    const secs = (performance.now() - started) / 1000;
    if (usage) {
      const gen = (performance.now() - (firstToken || started)) / 1000;
      msg.meta = usage.completion_tokens + ' tokens, ' + (gen > 0 ? (usage.completion_tokens / gen).toFixed(1) : '-') +
                 ' tokens/s, ' + secs.toFixed(1) + ' s' + (msg.finish && msg.finish !== 'stop' ? ' (' + msg.finish + ')' : '');
    }
  } catch (e) {
    msg.error = e.name === 'AbortError' ? 'stopped' : e.message;
    view.div.appendChild(el('div', 'error', msg.error));
  } finally {
    view.meta.textContent = msg.meta || '';
    view.thinking.open = false;  // thinking folds away once the answer is there
    view.div.classList.remove('streaming');
    view.div.dataset.done = '1';
    conversation.push(msg);
    save();
    setBusy(false);
    controller = null;
  }
}

function renderAttachments() {
  const box = $('attachments');
  box.textContent = '';
  attachments.forEach((a, i) => {
    const chip = el('span', 'chip', (a.kind === 'image' ? '\u{1F5BC} ' : '\u{1F50A} ') + a.name);
    const x = el('button', '', '\u00d7');
    x.type = 'button';
    x.title = 'Remove';
    x.onclick = () => { attachments.splice(i, 1); renderAttachments(); };
    chip.appendChild(x);
    box.appendChild(chip);
  });
}

$('file').addEventListener('change', (e) => {
  for (const f of e.target.files) {
    const reader = new FileReader();
    reader.onload = () => {
      attachments.push({kind: f.type.startsWith('audio/') ? 'audio' : 'image', name: f.name, dataUrl: reader.result});
      renderAttachments();
    };
    reader.readAsDataURL(f);
  }
  e.target.value = '';
});

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('input').value.trim();
  if ((!text && !attachments.length) || controller) return;
  $('input').value = '';
  send(text);
});

$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('composer').requestSubmit();
  }
});

$('stop').addEventListener('click', () => { if (controller) controller.abort(); });

$('new').addEventListener('click', () => {
  if (controller) controller.abort();
  conversation = [];
  save();
  renderAll();
});

$('think').checked = localStorage.getItem(THINK) === '1';
$('think').addEventListener('change', () => localStorage.setItem(THINK, $('think').checked ? '1' : '0'));

(async () => {
  renderAll();
  try {
    const res = await api('/v1/models', {method: 'GET'});
    if (res.ok) {
      const j = await res.json();
      modelName = j.data && j.data[0] ? j.data[0].id : '';
      $('model').textContent = modelName;
    }
  } catch (e) { /* the page still works */ }
  $('input').focus();
})();
