// The console's renderer of Cliq's replies (host/serve/console/render.js),
// tested without a browser: it builds HTML strings from escaped parts only,
// so node can check what it shows. Run: node --test tests/browser/test_render.js
// Fixtures: tests/browser/fixtures/render-cases.json (replies captured from
// `cliqhost invoke ... --json` on scripts/, and hand-made ones for every
// shape of docs/cliq-formats.md §3).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const R = require(path.join(root, 'host', 'serve', 'console', 'render.js'));
const cases = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'render-cases.json'), 'utf8'));

function fixture(name) {
  const c = cases.find((x) => x.name === name);
  assert.ok(c, `fixture ${name}`);
  return c.body;
}
function html(name) { return R.renderBody(fixture(name)); }

// The data-act attributes of an HTML string, decoded.
function acts(h) {
  const out = [];
  const re = /data-act="([^"]*)"/g;
  let m;
  while ((m = re.exec(h)))
    out.push(JSON.parse(m[1].replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>').replace(/&#96;/g, '`').replace(/&amp;/g, '&')));
  return out;
}

function has(h, s) { assert.ok(h.includes(s), `expected ${JSON.stringify(s)} in:\n${h}`); }

test('the deploy card: title, theme, label slide and both buttons with their keys', () => {
  const h = html('deploy');
  has(h, 'class="cq-card cq-theme-modern-inline"');
  has(h, '<span class="cq-card-title">Approval needed</span>');
  has(h, '<b>Scott</b> wants to deploy <b>api</b> to production.');
  has(h, '<div class="cq-slide-title">Details</div>');
  has(h, '<dt>Service</dt><dd>api</dd>');
  has(h, '<dt>Environment</dt><dd>Production, needs an approval</dd>');
  assert.match(h, /<button type="button" class="cq-btn cq-btn-plus"[^>]*>Approve<\/button>/);
  assert.match(h, /<button type="button" class="cq-btn cq-btn-minus"[^>]*>Reject<\/button>/);
  assert.deepEqual(acts(h), [
    { do: 'button', name: 'approval', label: 'Approve', key: 'approve:api:prod' },
    { do: 'button', name: 'approval', label: 'Reject', key: 'reject:api:prod' },
  ]);
});

test('clicking Reject sends the button call as invoke builds it', () => {
  const reject = acts(html('deploy'))[1];
  assert.deepEqual(R.buttonCall(reject), {
    type: 'function', name: 'approval', handler: 'button_handler', text: 'Reject',
    args: { key: 'reject:api:prod' },
  });
});

test('the approval form renders as a real form, and its submission is form_handler', () => {
  const h = html('approval-reject-form');
  assert.match(h, /<form class="cq-form" data-form="[^"]*"/);
  has(h, '<div class="cq-form-title">Reject the deploy</div>');
  has(h, 'Tell the requester why api should not go to prod.');
  has(h, '<input type="hidden" name="target" value="api:prod">');
  assert.match(h, /<textarea id="[^"]+" name="reason" placeholder="Failing checks on staging" required><\/textarea>/);
  has(h, '<option value="tomorrow">Tomorrow</option>');
  has(h, '<option value="next_week">Next week</option>');
  has(h, '<option value="never">Not planned</option>');
  assert.match(h, /<button type="submit" class="cq-btn cq-btn-plus">Reject<\/button>/);
  const meta = JSON.parse(/data-form="([^"]*)"/.exec(h)[1].replace(/&quot;/g, '"'));
  assert.deepEqual(meta, { name: 'reject_reason', fn: 'approval' });
  // What the page sends on submit: --value pairs, a select as {label, value} JSON text.
  assert.deepEqual(R.formCall(meta, 'form_handler', [['target', 'api:prod'], ['reason', 'holiday'],
                                                      ['retry', { label: 'Tomorrow', value: 'tomorrow' }]]), {
    type: 'function', name: 'approval', handler: 'form_handler', text: 'reject_reason',
    values: { target: 'api:prod', reason: 'holiday', retry: '{"label":"Tomorrow","value":"tomorrow"}' },
  });
});

test('the submitted form answers a card with its label slide and a Reopen button', () => {
  const h = html('approval-form-submitted');
  has(h, '<span class="cq-card-title">Rejected</span>');
  has(h, '<dt>Reason</dt><dd>holiday</dd>');
  has(h, '<dt>Try again</dt><dd>Tomorrow</dd>');
  assert.deepEqual(acts(h), [{ do: 'button', name: 'approval', label: 'Reopen', key: 'approve:api:prod' }]);
});

test('every slide type', () => {
  const h = html('slides-every-type');
  has(h, '<thead><tr><th>Date</th><th>Amount</th></tr></thead>');
  has(h, '<tr><td>2024-01-02</td><td>20</td></tr>');
  has(h, '<tr><td>2024-01-03</td><td>35</td></tr>'); // a row given as a list
  has(h, '<dt>Asset Type</dt><dd>Mobile</dd>');
  has(h, '<dt>Preferred OS</dt><dd>Android</dd>'); // the {label, value} variant
  has(h, '<ul class="cq-list"><li>one</li><li>two</li></ul>');
  has(h, '<img class="cq-image" src="https://example.com/a.png"');
  has(h, 'free <b>text</b>');
  has(h, '(percentage_chart slide) <code>{&quot;series&quot;:[1,2]}</code>'); // unknown: as JSON
});

test('the table of a message action', () => {
  const h = html('stats-table');
  has(h, '<tr><td>Sender</td><td>Scott Fisher</td></tr>');
  has(h, '<span class="cq-card-title">Stats</span>');
});

test('buttons of every action type', () => {
  const h = html('buttons-every-action');
  assert.match(h, /<a class="cq-btn cq-btn-plus"[^>]*title="Open in a new tab · open.url https:\/\/mail.zoho.com\/ · key k1" href="https:\/\/mail.zoho.com\/" target="_blank" rel="noopener noreferrer">open mail<\/a>/);
  has(h, 'confirm: Generate Webhooks');
  assert.match(h, /<button type="button" class="cq-btn cq-btn-minus" data-action-type="system.api"[^>]* disabled>Call<\/button><span class="cq-btn-note">system.api audiocall\/123<\/span>/);
  assert.match(h, /href="https:\/\/example.com\/p"[^>]*>Preview<\/a>/);
  assert.ok(!h.includes('javascript:alert') || h.includes('<span class="cq-btn-note">open.url javascript:alert(1)</span>'));
  assert.ok(!/href="javascript/i.test(h));
  const a = acts(h);
  assert.deepEqual(a[0], { do: 'button', name: 'authentication', label: 'Create Webhook',
                           confirm: { title: 'Generate Webhooks', description: 'Connect to GitLab' } });
  assert.deepEqual(a[1], { do: 'copy', text: 'abc' });
});

test('banners', () => {
  const ok = html('banner-success');
  has(ok, '<div class="cq-banner cq-banner-success"><span class="cq-mark">\u2714</span> Saved');
  const bad = html('banner-failure');
  has(bad, '<div class="cq-banner cq-banner-failure"><span class="cq-mark">\u2718</span> Nothing to approve');
});

test('bot suggestions are chips that say their text', () => {
  const h = html('bot-suggestions');
  has(h, '<span class="cq-bot-name">Helper</span>');
  assert.deepEqual(acts(h), [{ do: 'say', text: 'report' }, { do: 'say', text: 'help' }]);
  assert.deepEqual(R.messageCall('helper', 'report'),
                   { type: 'bot', name: 'helper', handler: 'message_handler', text: 'report' });
});

test('context questions are a form for the context handler', () => {
  const h = html('helper-context');
  has(h, '<form class="cq-context" data-context="{&quot;id&quot;:&quot;feedback&quot;}">');
  has(h, 'context feedback (timeout 300 s)');
  has(h, '<span>How do you like cliqhost?</span><input type="text" name="rating"');
  has(h, '<option value="Great">');
  assert.deepEqual(acts(h), [{ do: 'fill', name: 'rating', text: 'Great' }, { do: 'fill', name: 'rating', text: 'Fine' },
                             { do: 'fill', name: 'rating', text: 'Not yet' }]);
  has(h, '<span>What should it do next?</span><input type="text" name="wish"');
  assert.deepEqual(R.contextCall('helper', 'feedback', { rating: 'Great', wish: 'More' }), {
    type: 'bot', name: 'helper', handler: 'context_handler', text: 'feedback',
    values: { rating: 'Great', wish: 'More' },
  });
});

test('command suggestions are a list', () => {
  const h = html('deploy-suggestions');
  has(h, '<span class="cq-suggest-title">staging</span><span class="cq-suggest-desc">Pre-release, mirrors production</span>');
  assert.equal((h.match(/class="cq-suggest-item"/g) || []).length, 3);
});

test('Cliq markup: bold, italics, strike, code, blocks, links, mentions, channels, instant buttons', () => {
  const h = html('markup');
  has(h, '<b>bold</b> <i>italic</i> <s>strike</s> <code class="cq-code">code</code>');
  has(h, '<a class="cq-link" href="https://zoho.com" target="_blank" rel="noopener noreferrer">Zoho</a>');
  has(h, '<span class="cq-mention">@123456</span> <span class="cq-mention">@Scott</span> <span class="cq-channel">#general</span>');
  has(h, '<pre class="cq-pre">block *not bold*\n</pre>');
  assert.deepEqual(acts(h), [{ do: 'button', name: 'answer', label: 'Yes', arguments: { a: '1' } }]);
  assert.equal(R.markup('[x](javascript:alert(1))'), '[x](javascript:alert(1))');
  assert.equal(R.markup('snake_case_name and 2*3*4'), 'snake_case_name and 2<b>3</b>4');
});

test('a form with every input type', () => {
  const h = html('form-every-input');
  has(h, 'value="Harold Finch" placeholder="John Reese" required>');
  assert.match(h, /<input id="[^"]+" type="email" name="email">/);
  assert.match(h, /<textarea id="[^"]+" name="notes"><\/textarea>/);
  assert.match(h, /type="number" name="count"/);
  assert.match(h, /type="date" name="day"/);
  assert.match(h, /type="datetime-local" name="at"/);
  assert.match(h, /data-name="asset-type" data-type="select" data-change="1"/);
  has(h, 'calls form_change');
  assert.match(h, /<select id="[^"]+" name="size">/);
  assert.match(h, /name="model" data-dynamic="1"/);
  has(h, '<span class="cq-note">from channels</span>');
  has(h, '<input type="radio" name="os" value="ios" data-label="iOS" checked> iOS');
  has(h, '<input type="checkbox" name="extras" value="charger" data-label="Charger"> Charger');
  has(h, 'at most 2');
  assert.match(h, /<label class="cq-toggle"><input id="[^"]+" type="checkbox" name="automated_reports" checked>/);
  has(h, 'boundary {&quot;radius&quot;:5}');
  assert.match(h, /type="file" name="photo" multiple>/);
  has(h, '<span class="cq-hidden">hidden: target = api:prod</span>');
  has(h, ' multiple><option value="" selected></option><option value="a">A</option>');
  has(h, '(mystery input) {&quot;type&quot;:&quot;mystery&quot;');
  has(h, '<span class="cq-key">version:</span> <code>1</code>'); // a field render.c does not know either
  has(h, '>Raise Request</button><span class="cq-note">invoke.function formFunctionLatest</span>');
});

test('the older form shape names its function in actions.submit', () => {
  const h = html('form-older-actions');
  has(h, 'data-form="{&quot;name&quot;:&quot;old&quot;,&quot;fn&quot;:&quot;oldfn&quot;}"');
});

test('form_change: a form modification is applied to the form', () => {
  const f = fixture('form-every-input').output;
  const after = R.applyModification(f, fixture('form-modification').output);
  const names = after.inputs.map((i) => i.name);
  assert.ok(!names.includes('mobile-os')); // added after asset-type, then removed
  const added = R.applyModification(f, { type: 'form_modification', actions: [
    { type: 'add_after', name: 'asset-type', input: { type: 'text', name: 'imei', label: 'IMEI' } },
    { type: 'add_before', name: 'username', input: { type: 'text', name: 'first' } },
    { type: 'disable', name: 'email' }, { type: 'clear', name: 'username' },
    { type: 'update', name: 'notes', input: { label: 'Remarks' } },
    { type: 'remove', name: 'photo' }, { type: 'explode', name: 'os' } ] });
  const n = added.inputs.map((i) => i.name);
  assert.equal(n[0], 'first');
  assert.equal(n[n.indexOf('asset-type') + 1], 'imei');
  assert.ok(!n.includes('photo'));
  assert.equal(added.inputs.find((i) => i.name === 'email').disabled, true);
  assert.equal(added.inputs.find((i) => i.name === 'username').value, undefined);
  assert.equal(added.inputs.find((i) => i.name === 'notes').label, 'Remarks');
  assert.deepEqual(added._unapplied, [{ type: 'explode', name: 'os' }]);
  assert.equal(f.inputs.find((i) => i.name === 'username').value, 'Harold Finch'); // the original is kept
  const h = R.render(added);
  has(h, '<span class="cq-key">_unapplied:</span>'); // shown, not dropped
  assert.match(h, /type="email" name="email" disabled>/);
  const mod = html('form-modification');
  has(mod, '<b>add_after</b> asset-type');
  has(mod, '<b>remove</b> mobile-os');
});

test('options for a dynamic select', () => {
  const h = html('form-values-options');
  has(h, '<span class="cq-suggest-title">Google Pixel 8</span> <code>pixel_8</code>');
});

test('widgets: tabs, sections, elements, buttons, info', () => {
  const h = html('widget-sections');
  assert.match(h, /<button type="button" class="cq-tab cq-tab-active" data-tab="services"[^>]*>Services<\/button>/);
  assert.deepEqual(R.tabCall('status', 'other'),
                   { type: 'widget', name: 'status', handler: 'view_handler', text: 'tab_click', params: { 'target.id': 'other' } });
  has(h, '<div class="cq-w-text">Healthy since 09:12</div>');
  has(h, '<hr class="cq-w-divider">');
  has(h, '<div class="cq-w-subtext">small</div>');
  has(h, '<dt>Owner</dt><dd>Scott</dd>');
  has(h, '(activity) <code>');
  assert.deepEqual(acts(h), [{ do: 'tab', id: 'services' }, { do: 'tab', id: 'other' },
                             { do: 'applet_button', name: 'restart', id: 'api', label: 'Restart' }]);
  assert.deepEqual(R.appletButtonCall(acts(h)[2]),
                   { type: 'function', name: 'restart', handler: 'applet_button_handler', text: 'api' });
  const info = html('widget-info');
  has(info, '<div class="cq-w-title">Nothing here</div>');
  assert.deepEqual(acts(info), [{ do: 'applet_button', name: 'add', id: 'add', label: 'Add' }]);
});

test('link previews and their actions', () => {
  const h = html('link-preview');
  has(h, '<div class="cq-unfurl-title">Build 1432</div>');
  has(h, '<dt>Branch</dt><dd>main</dd>');
  assert.deepEqual(acts(h), [{ do: 'unfurl_button', label: 'Rerun', params: { build: '1432' } }]);
  assert.deepEqual(R.unfurlButtonCall(acts(h)[0], 'https://ci.example.com/builds/1432'), {
    type: 'link_preview', name: '-', handler: 'unfurl_button_action_handler',
    text: 'https://ci.example.com/builds/1432', args: { build: '1432' },
  });
  assert.deepEqual(acts(html('unfurl-dynamic-actions')), [{ do: 'unfurl_button', label: 'Retry', params: { id: '9' } }]);
});

test('extension statuses', () => {
  const h = html('extension-status');
  has(h, '<div class="cq-status cq-status-fail"><b>status 400</b>: Sorry');
  has(h, '<li>one</li>');
  has(html('extension-ok'), '<div class="cq-status cq-status-ok"><b>status 200</b>');
});

test('unknown fields are shown as JSON, never dropped', () => {
  const h = html('unknown-fields');
  has(h, '<span class="cq-key">mystery:</span> <code>{&quot;a&quot;:[1,2]}</code>');
  has(h, '<span class="cq-key">sparkle:</span> <code>1</code>');
  has(h, '<span class="cq-key">glow:</span> <code>true</code>');
  has(h, 'cq-bg-red');
  has(R.renderBody('{"not":"an envelope"}'), 'not Cliq\'s {"output": ...} envelope:</div><pre class="cq-raw">{\n  &quot;not&quot;');
  has(R.renderBody('plain text, not JSON'), '<pre class="cq-raw">plain text, not JSON</pre>');
  has(R.renderBody({ output: 'x', extra: 1 }), '<span class="cq-key">extra:</span>');
});

test('empty replies and plain strings', () => {
  has(html('empty'), '(an empty reply: the user sees nothing)');
  has(html('plain-string'), '<div class="cq-text">Hello, Scott :smile:</div>');
});

test('text from a script is escaped everywhere', () => {
  const h = html('script-html');
  assert.ok(!h.includes('<img src=x'), h);
  assert.ok(!h.includes('<script'), h);
  assert.ok(!h.includes('<b>x</b>'), h);
  has(h, '&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &#39;single&#39; &amp; <code class="cq-code">tick</code>');
  has(R.esc('<>&"\'`'), '&lt;&gt;&amp;&quot;&#39;&#96;');
  has(h, '<span class="cq-card-title">&lt;script&gt;alert(1)&lt;/script&gt;</span>');
  assert.equal(acts(h)[0].name, 'f"><script>'); // kept as data, inside an escaped attribute
});

// Every word of every string and number in a reply appears in what is
// rendered: the renderer never drops anything silently.
function words(v, out) {
  if (typeof v === 'string') (v.match(/[A-Za-z0-9]{2,}/g) || []).forEach((w) => out.add(w));
  else if (typeof v === 'number') out.add(String(v));
  else if (Array.isArray(v)) v.forEach((x) => words(x, out));
  else if (v && typeof v === 'object') Object.keys(v).forEach((k) => words(v[k], out));
  return out;
}

for (const c of cases) {
  test(`nothing is dropped: ${c.name}`, () => {
    const h = R.renderBody(c.body);
    const missing = [...words(c.body, new Set())].filter((w) => !h.includes(w));
    assert.deepEqual(missing, [], `words of the reply not in the rendering:\n${h}`);
  });
}

// The fields host/cliq/render.c knows (its known[] lists) are known here too,
// so the terminal and the page show the same things.
test('the known fields are a superset of the terminal renderer\'s', () => {
  const src = fs.readFileSync(path.join(root, 'host', 'cliq', 'render.c'), 'utf8');
  const map = { message: 'message', input: 'input', form: 'form', widget: 'widget',
                link_preview: 'link', extension_status: 'status' };
  const re = /static void (\w+)\([^)]*\)\s*\{\s*static const char \*const known\[\] = \{([^}]*)\}/g;
  let m;
  const seen = [];
  while ((m = re.exec(src))) {
    const mine = R.KNOWN[map[m[1]]];
    assert.ok(mine, `render.c's ${m[1]} has known fields; render.js has no list for it`);
    const theirs = [...m[2].matchAll(/"([^"]+)"/g)].map((x) => x[1]);
    const lacking = theirs.filter((k) => !mine.includes(k));
    assert.deepEqual(lacking, [], `render.c's ${m[1]} knows fields render.js does not`);
    seen.push(m[1]);
  }
  assert.deepEqual(seen.sort(), Object.keys(map).sort());
});

// The journal's two shapes (nested as the brief describes it, flat with one
// list of events as host/serve/journal.c writes it) come out the same.
test('a flat journal entry is read into its parts, unknown events kept', () => {
  const flat = {
    id: 7, seq: 9, at: '2026-12-07T00:40:00.123Z', kind: 'cliq', type: 'command', name: 'deploy',
    handler: 'execution_handler', signature: 'valid', key: 0, status: 200, reply_ms: 4, cpu_ms: 1.5,
    peak_bytes: 2048, body: '{"type":"command"}', reply: '{"output":{"text":"hi"}}',
    log: [{ kind: 'log', level: 'info', line: 'deploying' }, { kind: 'http', method: 'GET', url: 'https://x', status: 200, ms: 3 },
          { kind: 'post', method: 'POST', url: 'channel ops', status: 204, ms: 2 },
          { kind: 'respond', method: 'POST', url: 'https://cliq/r', status: 200, ms: 5 },
          { kind: 'late_result', body: '{"output":"later"}' }, { kind: 'late_reply', outcome: 'delivered' },
          { kind: 'interim', body: '{"output":{"text":"working"}}' }, { kind: 'mystery', x: 1 }],
  };
  const e = R.normaliseEntry(flat);
  assert.deepEqual(e.dispatch, { type: 'command', name: 'deploy', handler: 'execution_handler' });
  assert.deepEqual(e.request, { body: '{"type":"command"}', signature: 'valid', key: 0 });
  assert.deepEqual(e.reply, { status: 200, body: '{"output":{"text":"hi"}}', ms: 4 });
  assert.equal(e.memory_bytes, 2048);
  assert.deepEqual(e.log, ['info deploying']);
  assert.deepEqual(e.http.map((h) => h.url), ['https://x']);
  assert.deepEqual(e.posts.map((p) => [p.kind, p.target]), [['post', 'channel ops'], ['respond', 'https://cliq/r']]);
  assert.deepEqual(e.late.map((l) => l.body), ['{"output":"later"}', undefined]);
  assert.equal(e.late[1].outcome, 'delivered');
  assert.deepEqual(e.interim, { kind: 'interim', body: '{"output":{"text":"working"}}' });
  assert.deepEqual(e.other, [{ kind: 'mystery', x: 1 }]);
  has(R.renderBody(e.reply.body), '<div class="cq-text">hi</div>');

  const nested = { id: 1, dispatch: { type: 'bot' }, request: { body: {} }, reply: { status: 200, body: { output: 'x' }, ms: 2 },
                   log: ['a line'], http: [], posts: [] };
  const n = R.normaliseEntry(nested);
  assert.deepEqual(n.reply, nested.reply);
  assert.deepEqual(n.log, ['a line']);
  assert.equal(R.normaliseEntry({ id: 2, status: null, reply: null }).reply, null); // no reply yet
});

test('the list, a call\'s answer and a replay in either shape', () => {
  assert.deepEqual(R.normaliseList({ calls: [{ id: 2, reply_ms: 5 }], kept: 1 }), [{ id: 2, reply_ms: 5, ms: 5 }]);
  assert.deepEqual(R.normaliseList([{ id: 1, ms: 3 }]), [{ id: 1, ms: 3 }]);
  assert.deepEqual(R.normaliseList('nonsense'), []);
  assert.deepEqual(R.normaliseAnswer({ id: 3, status: 200, late: false, reply: { output: 'hi' } }),
                   { id: 3, reply: { status: 200, body: { output: 'hi' }, ms: undefined } });
  assert.deepEqual(R.normaliseAnswer({ id: 3, reply: { status: 200, body: '{}', ms: 1 } }),
                   { id: 3, reply: { status: 200, body: '{}', ms: 1 } });
  const flatReplay = R.normaliseReplay({ id: 9, status: 200, reply: { output: 'new' }, replay_of: 7,
                                         old: { id: 7, type: 'command', status: 200, reply_ms: 4, reply: '{"output":"old"}' } });
  assert.deepEqual(flatReplay.old, { status: 200, body: '{"output":"old"}', ms: 4 });
  assert.deepEqual(flatReplay.new.body, { output: 'new' });
  assert.equal(flatReplay.id, 9);
  const nestedReplay = R.normaliseReplay({ id: 9, old: { status: 200, body: 'a' }, new: { status: 200, body: 'b' } });
  assert.deepEqual([nestedReplay.old.body, nestedReplay.new.body], ['a', 'b']);
});

// The text a page shows for an HTML string: its tags left out, but the
// attributes a reader sees kept (a title on hover, an image's src as the
// image, a link's target, an input's placeholder and value), entities
// decoded.
function visible(h) {
  return h.replace(/<[^>]*>/g, (tag) => ' ' + [...tag.matchAll(/\b(?:title|src|href|placeholder|value)="([^"]*)"/g)]
    .map((m) => m[1]).join(' ') + ' ')
    .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>')
    .replace(/&#96;/g, '`').replace(/&amp;/g, '&');
}

// The terminal renderer (host/cliq/render.c, what `cliqhost invoke` prints)
// and the page show the same things: for every fixture, each word of the
// reply the page shows is in the terminal's text, and each the terminal
// shows is on the page (for the details Cliq does not show, such as a
// button's action, in the page's markup, which a click acts on). CTest gives the path of render_dump (the
// terminal renderer over the fixtures) in CLIQHOST_RENDER_DUMP.
const dump = process.env.CLIQHOST_RENDER_DUMP;
test('the terminal and the page show the same words of every reply', { skip: !dump && 'CLIQHOST_RENDER_DUMP not set' }, () => {
  const out = require('node:child_process').execFileSync(dump, [path.join(__dirname, 'fixtures', 'render-cases.json')],
    { encoding: 'utf8' });
  const terminal = {};
  let name = null;
  for (const line of out.split('\n')) {
    if (line.startsWith('=== ')) { name = line.slice(4); terminal[name] = ''; } else if (name !== null) terminal[name] += line + '\n';
  }
  assert.deepEqual(Object.keys(terminal), cases.map((c) => c.name));
  const differ = [];
  for (const c of cases) {
    const body = c.body && typeof c.body === 'object' && !Array.isArray(c.body) ? { output: c.body.output } : {};
    const h = R.renderBody(body), shown = visible(h);
    const t = terminal[c.name];
    for (const w of words(body.output, new Set())) {
      if (t.includes(w) && !h.includes(w)) differ.push(`${c.name}: "${w}" in the terminal, not on the page`);
      if (shown.includes(w) && !t.includes(w)) differ.push(`${c.name}: "${w}" shown on the page, not in the terminal`);
    }
  }
  assert.deepEqual(differ, []);
});

// Markup sets code and links aside behind NUL-delimited numbers; a script's
// text holding the same bytes must not pull a held piece (or "undefined")
// into the message.
test('text holding the markup\'s own placeholders shows them as text', () => {
  const h = R.markup('[docs](https://example.com) \u00000\u0000 and \u00007\u0000');
  assert.equal((h.match(/<a /g) || []).length, 1, h);
  assert.ok(!h.includes('undefined'), h);
  assert.ok(!h.includes('\u0000'), h);
});
