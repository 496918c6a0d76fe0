/* console.js: the console page. The journal on the left (live through
 * Server-Sent Events), the selected call on the right, its reply rendered
 * as Cliq shows it (render.js), and click-through: buttons, forms, bot
 * messages and questions become calls to POST /console/api/call, shaped as
 * `cliqhost invoke` shapes them, and their answers render under the reply.
 *
 * Every string from the host or a script reaches the page through
 * CliqRender.esc (directly or inside render.js); innerHTML is only ever set
 * to HTML built that way. */
(function () {
  'use strict';
  var R = window.CliqRender;
  var esc = R.esc;
  var meta = document.querySelector('meta[name="cliqhost-console-secret"]');
  var SECRET = meta ? meta.getAttribute('content') : '';
  var calls = [];          /* summaries, newest first */
  var selected = null;     /* the selected entry's id */

  function $(sel, root) { return (root || document).querySelector(sel); }

  function showError(msg) {
    var e = $('#error');
    e.textContent = msg;
    e.hidden = false;
    clearTimeout(showError.t);
    showError.t = setTimeout(function () { e.hidden = true; }, 8000);
  }

  /* One API call: JSON in and out, the secret in its header. */
  function api(method, path, body) {
    var init = { method: method, headers: { 'X-Cliqhost-Console': SECRET }, credentials: 'same-origin' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch('/console/api/' + path, init).then(function (r) {
      return r.text().then(function (t) {
        var v = null;
        try { v = t ? JSON.parse(t) : null; } catch (e) { v = t; }
        if (!r.ok) {
          var why = v && v.error ? v.error : typeof v === 'string' ? v : r.statusText;
          throw new Error(method + ' ' + path + ': ' + r.status + ' ' + why);
        }
        return v;
      });
    });
  }

  /* ---- the journal list ---- */

  function when(at) {
    if (at === undefined || at === null) return '';
    var d = new Date(typeof at === 'number' && at < 1e12 ? at * 1000 : at);
    if (isNaN(d.getTime())) return String(at);
    return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }

  function statusClass(s) {
    return typeof s === 'number' && s >= 200 && s < 300 ? 'st-ok' : s === undefined || s === null ? '' : 'st-err';
  }

  function what(c) {
    var d = c.dispatch || c;
    return [d.type, d.name, d.handler].filter(function (x) { return x !== undefined && x !== null && x !== ''; }).join(' ');
  }

  function rowHtml(c) {
    var status = c.status !== undefined ? c.status : c.reply && c.reply.status;
    var ms = c.ms !== undefined ? c.ms : c.reply && c.reply.ms;
    return '<td>' + esc(when(c.at)) + '</td><td>' + esc(c.kind || '') + '</td><td title="' + esc(what(c)) + '">' +
           esc(what(c)) + '</td><td class="' + statusClass(status) + '">' + esc(status === undefined ? '' : status) +
           '</td><td>' + esc(ms === undefined || ms === null ? '' : ms) + '</td>';
  }

  function drawCalls(freshId) {
    var body = $('#calls tbody');
    body.innerHTML = calls.map(function (c) {
      return '<tr class="call' + (String(c.id) === String(selected) ? ' selected' : '') +
             (String(c.id) === String(freshId) ? ' fresh' : '') + '" data-id="' + esc(c.id) + '">' + rowHtml(c) + '</tr>';
    }).join('');
    $('#calls-empty').hidden = calls.length > 0;
  }

  function upsert(c) {
    for (var i = 0; i < calls.length; i++) {
      if (String(calls[i].id) === String(c.id)) { calls[i] = Object.assign({}, calls[i], c); return false; }
    }
    calls.unshift(c);
    return true;
  }

  /* The list's answer merged with what is shown, by id: a call that came
   * live while the list was on its way (it may be newer than the list) is
   * kept, and fields that came live win over the list's older copy. Rows
   * the list lacks stay on top, above the list's (newest first). */
  function mergeCalls(list) {
    var shown = {};
    calls.forEach(function (c) { shown[String(c.id)] = c; });
    var inList = {};
    var merged = list.filter(function (c) { return c && c.id !== undefined; }).map(function (c) {
      inList[String(c.id)] = true;
      var had = shown[String(c.id)];
      return had ? Object.assign({}, c, had) : c;
    });
    calls = calls.filter(function (c) { return !inList[String(c.id)]; }).concat(merged);
  }

  function loadCalls() {
    return api('GET', 'calls').then(function (list) {
      mergeCalls(R.normaliseList(list));
      drawCalls();
    }).catch(function (e) { showError(e.message); });
  }

  function listen() {
    if (!window.EventSource) return;
    var live = $('#live');
    var es = new EventSource('/console/api/events?secret=' + encodeURIComponent(SECRET));
    es.onopen = function () {
      live.textContent = 'live';
      live.className = 'live live-on';
      /* The stream starts at the journal as it is when it opens: a call
       * made after the first list was read and before this is in neither,
       * and after a reconnect (the host drops a page that reads too
       * slowly) calls may have been missed. So the list is read again
       * each time the stream opens, merged with what is shown. */
      loadCalls();
    };
    es.onerror = function () { live.textContent = 'reconnecting'; live.className = 'live live-off'; };
    es.addEventListener('call', function (ev) {
      var c;
      try { c = JSON.parse(ev.data); } catch (e) { return; }
      if (!c || c.id === undefined) return;
      c = R.normaliseList([c])[0];
      upsert(c);
      drawCalls(c.id);
      if (String(c.id) === String(selected)) select(c.id, true);
    });
  }

  /* ---- the selected call ---- */

  /* JSON as a tree of <details>, objects and arrays folded past depth 1. */
  function tree(v, depth) {
    if (v === null || typeof v !== 'object') {
      var cls = typeof v === 'string' ? 's' : typeof v === 'number' ? 'n' : 'b';
      return '<span class="' + cls + '">' + esc(JSON.stringify(v)) + '</span>';
    }
    var isArr = Array.isArray(v);
    var keys = Object.keys(v);
    if (!keys.length) return isArr ? '[]' : '{}';
    var inner = keys.map(function (k) {
      return '<div>' + (isArr ? '' : '<span class="k">' + esc(JSON.stringify(k)) + '</span>: ') + tree(v[k], depth + 1) + '</div>';
    }).join('');
    return '<details' + (depth < 1 ? ' open' : '') + '><summary>' + (isArr ? '[' + keys.length + ']' : '{' + keys.length + '}') +
           '</summary><div class="json-tree">' + inner + '</div></details>';
  }

  function jsonBlock(v) {
    if (typeof v === 'string') {
      try { v = JSON.parse(v); } catch (e) { return '<pre class="cq-raw">' + esc(v) + '</pre>'; }
    }
    return '<div class="json-tree">' + tree(v, 0) + '</div>';
  }

  function facts(pairs) {
    return '<dl class="facts">' + pairs.filter(function (p) { return p[1] !== undefined && p[1] !== null && p[1] !== ''; })
      .map(function (p) { return '<dt>' + esc(p[0]) + '</dt><dd>' + esc(typeof p[1] === 'object' ? JSON.stringify(p[1]) : p[1]) + '</dd>'; })
      .join('') + '</dl>';
  }

  /* Rows of objects as a table: the preferred columns first, then any
   * other key a row has (nothing is left out). */
  function rowsTable(preferred, rows) {
    if (!Array.isArray(rows) || !rows.length) return '<p class="muted">none</p>';
    var headers = preferred.filter(function (h) { return rows.some(function (r) { return r && r[h] !== undefined; }); });
    rows.forEach(function (r) {
      Object.keys(r || {}).forEach(function (k) { if (headers.indexOf(k) < 0) headers.push(k); });
    });
    return '<table class="rows"><tr>' + headers.map(function (h) { return '<th>' + esc(h) + '</th>'; }).join('') + '</tr>' +
      rows.map(function (r) {
        return '<tr>' + headers.map(function (h) {
          var v = r[h];
          return '<td>' + esc(v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : v) + '</td>';
        }).join('') + '</tr>';
      }).join('') + '</table>';
  }

  /* A reply {status, body, ms} (or a bare body) as Cliq shows it. */
  function replyBody(r) {
    return r && typeof r === 'object' && !Array.isArray(r) && 'body' in r ? r.body : r;
  }

  function replyMeta(r) {
    if (!r || typeof r !== 'object' || !('body' in r)) return '';
    return '<div class="muted">' + esc([r.status !== undefined ? 'HTTP ' + r.status : '', r.ms !== undefined ? r.ms + ' ms' : '',
      r.at !== undefined ? when(r.at) : '', r.outcome || ''].filter(Boolean).join(' \u00b7 ')) + '</div>';
  }

  /* The origin of a rendered reply: which component answered, so a click
   * in it knows where to send (a bot's message box, a link's buttons). */
  function chat(r, origin) {
    return '<div class="chat" data-origin="' + esc(JSON.stringify(origin || {})) + '">' + replyMeta(r) +
           R.renderBody(replyBody(r)) + botBox(origin) + '<div class="answers"></div></div>';
  }

  function botBox(origin) {
    if (!origin || origin.type !== 'bot' || !origin.name) return '';
    return '<form class="msgbox"><input name="message" placeholder="Message ' + esc(origin.name) +
           '" autocomplete="off"><button type="submit" class="tool">Send</button></form>';
  }

  /* Forms rendered from a reply keep their reply object, so a
   * form_modification can be applied to it. */
  function attachForms(root, r) {
    var body = replyBody(r);
    if (typeof body === 'string') { try { body = JSON.parse(body); } catch (e) { return; } }
    var out = body && body.output;
    if (out && out.type === 'form') {
      var f = root.querySelector('form.cq-form');
      if (f) f.cqForm = out;
    }
  }

  function originOf(e) {
    var d = e.dispatch || {};
    var o = { type: d.type, name: d.name, handler: d.handler };
    var body = e.request && e.request.body;
    if (typeof body === 'string') { try { body = JSON.parse(body); } catch (x) { body = null; } }
    if (body && body.params && typeof body.params.url === 'string') o.link = body.params.url;
    return o;
  }

  function detailHtml(e) {
    var d = e.dispatch || {};
    var req = e.request || {};
    var out = '<h2>' + esc(what(e) || e.kind || 'call') + '</h2>' +
      facts([['id', e.id], ['at', when(e.at)], ['kind', e.kind], ['signature', req.signature], ['key', req.key],
             ['dispatch', [d.type, d.name, d.handler].filter(Boolean).join(' / ')],
             ['cpu', e.cpu_ms !== undefined ? e.cpu_ms + ' ms' : undefined],
             ['memory', e.memory_bytes !== undefined ? e.memory_bytes + ' bytes' : undefined],
             ['truncated', e.truncated ? 'yes' : undefined]]) +
      '<div class="actions"><button type="button" class="tool" id="replay">Replay</button></div>' +
      '<div id="replay-out"></div>' +
      '<h3>Reply</h3>' + (e.reply ? chat(e.reply, originOf(e)) : '<p class="muted">no reply yet</p>');
    if (e.interim) out += '<h3>Interim reply (the deadline passed)</h3>' + chat(e.interim, originOf(e));
    if (Array.isArray(e.late) && e.late.length)
      out += '<h3>Late replies and req:respond</h3>' + e.late.map(function (l) {
        if (l && typeof l === 'object' && l.body === undefined)
          return facts([['late reply', [l.outcome, l.reason, l.status].filter(function (x) { return x !== undefined && x !== null; }).join(': ')]]);
        return chat(l, originOf(e));
      }).join('');
    out += '<h3>Request body</h3>' + jsonBlock(req.body === undefined ? null : req.body) +
      '<h3>http.request</h3>' + rowsTable(['method', 'url', 'status', 'ms', 'error'], e.http) +
      '<h3>cliq.post_* and req:respond</h3>' + rowsTable(['kind', 'target', 'token', 'status', 'ms', 'error'], e.posts) +
      '<h3>Log</h3>' + (Array.isArray(e.log) && e.log.length
        ? '<pre class="log">' + esc(e.log.map(function (l) { return typeof l === 'string' ? l : JSON.stringify(l); }).join('\n')) + '</pre>'
        : '<p class="muted">none</p>');
    if (Array.isArray(e.other) && e.other.length) out += '<h3>Other events</h3><pre class="cq-raw">' +
      esc(e.other.map(function (x) { return JSON.stringify(x); }).join('\n')) + '</pre>';
    return out;
  }

  function select(id, keepScroll) {
    selected = id;
    drawCalls();
    return api('GET', 'calls/' + encodeURIComponent(id)).then(function (raw) {
      if (String(selected) !== String(id)) return;
      var e = R.normaliseEntry(raw);
      var pane = $('#detail');
      var top = pane.scrollTop;
      pane.innerHTML = detailHtml(e || {});
      var first = pane.querySelector('.chat');
      if (first && e.reply) attachForms(first, e.reply);
      if (keepScroll) pane.scrollTop = top;
      $('#replay').addEventListener('click', function () { replay(id); });
    }).catch(function (err) { showError(err.message); });
  }

  function replay(id) {
    var out = $('#replay-out');
    out.innerHTML = '<p class="muted">replaying\u2026</p>';
    api('POST', 'calls/' + encodeURIComponent(id) + '/replay', {}).then(function (raw) {
      var r = R.normaliseReplay(raw);
      out.innerHTML = '<h3>Replay</h3><div class="side-by-side replay"><div class="old"><h4>before (call ' + esc(id) +
        ')</h4>' + chat(r.old, {}) + '</div><div class="new"><h4>now (call ' + esc(r.id) + ')</h4>' + chat(r.new, {}) + '</div></div>';
    }).catch(function (err) { out.innerHTML = ''; showError(err.message); });
  }

  /* ---- click-through ---- */

  function originFrom(el) {
    var c = el.closest('.chat');
    try { return c ? JSON.parse(c.getAttribute('data-origin')) : {}; } catch (e) { return {}; }
  }

  /* A place for a call's answer under the reply it came from. */
  function slotFor(from, call) {
    var c = from.closest('.chat');
    var answers = c ? c.querySelector('.answers') : $('#detail');
    var slot = document.createElement('div');
    slot.innerHTML = '<div class="answer-head">' + esc(call.type + ' ' + (call.name || '') + ' ' + call.handler +
      (call.text ? ' \u201c' + call.text + '\u201d' : '')) + '</div><p class="muted">waiting\u2026</p>';
    answers.appendChild(slot);
    return slot;
  }

  function showAnswer(slot, call, raw) {
    var r = R.normaliseAnswer(raw);
    var origin = { type: call.type, name: call.name, handler: call.handler };
    slot.innerHTML = slot.firstChild.outerHTML + chat(r.reply, origin);
    attachForms(slot, r.reply);
    return r;
  }

  /* Sends a call made by a click and renders its answer under the reply it
   * came from. */
  function send(from, call) {
    var slot = slotFor(from, call);
    return api('POST', 'call', call).then(function (raw) { return showAnswer(slot, call, raw); })
      .catch(function (e) { slot.innerHTML = slot.firstChild.outerHTML + '<p class="st-err">' + esc(e.message) + '</p>'; });
  }

  /* A form's values as Cliq sends them: text as strings, a select or radio
   * as {label, value}, checkboxes as a list of them, a toggle as a boolean.
   * Returns [[name, value], ...] in the form's order. */
  function formValues(form) {
    var out = [];
    form.querySelectorAll('.cq-field').forEach(function (f) {
      var name = f.getAttribute('data-name');
      var type = f.getAttribute('data-type');
      var v;
      if (type === 'radio') {
        var r = f.querySelector('input:checked');
        if (!r) return;
        v = { label: r.getAttribute('data-label'), value: r.value };
      } else if (type === 'checkbox') {
        v = [];
        f.querySelectorAll('input:checked').forEach(function (c) { v.push({ label: c.getAttribute('data-label'), value: c.value }); });
        if (!v.length) return;
      } else if (type === 'toggle') {
        v = f.querySelector('input').checked;
      } else if (f.querySelector('select')) {
        var s = f.querySelector('select');
        var chosen = Array.prototype.filter.call(s.options, function (o) { return o.selected && o.value !== ''; });
        if (!chosen.length) return;
        var items = chosen.map(function (o) { return { label: o.textContent, value: o.value }; });
        v = s.multiple ? items : items[0];
      } else if (type === 'file') {
        var fi = f.querySelector('input');
        if (!fi.files || !fi.files.length) return;
        v = Array.prototype.map.call(fi.files, function (x) { return x.name; }).join(',');
      } else {
        var i = f.querySelector('input, textarea');
        if (!i || i.value === '') return;
        v = i.value;
        if (i.getAttribute('data-dynamic')) {
          var opt = Array.prototype.find.call(f.querySelectorAll('datalist option'), function (o) { return o.value === v; });
          if (opt) v = { label: opt.getAttribute('label') || v, value: v };
        }
      }
      out.push([name, v]);
    });
    return out;
  }

  function formMeta(form) {
    try { return JSON.parse(form.getAttribute('data-form')); } catch (e) { return {}; }
  }

  /* A form_change answer: a form_modification is applied to the form in
   * place (values kept); anything else is shown under it. */
  function formChange(form, field) {
    var m = formMeta(form);
    if (!m.fn) return;
    var values = formValues(form).filter(function (p) { return p[0] !== field; });
    var mine = formValues(form).filter(function (p) { return p[0] === field; });
    values = values.concat(mine.length ? mine : [[field, '']]);
    var call = R.formCall(m, 'form_change_handler', values);
    api('POST', 'call', call).then(function (r) {
      var body = replyBody(R.normaliseAnswer(r).reply);
      if (typeof body === 'string') { try { body = JSON.parse(body); } catch (e) { body = null; } }
      var out = body && body.output;
      if (!out || out.type !== 'form_modification' || !form.cqForm) {
        showAnswer(slotFor(form, call), call, r); /* shown as it is, under the form */
        return;
      }
      var kept = formValues(form);
      form.cqForm = R.applyModification(form.cqForm, out);
      var holder = document.createElement('div');
      holder.innerHTML = R.render(form.cqForm);
      var fresh = holder.querySelector('form.cq-form');
      fresh.cqForm = form.cqForm;
      form.replaceWith(fresh);
      restore(fresh, kept);
    }).catch(function (e) { showError(e.message); });
  }

  function restore(form, kept) {
    kept.forEach(function (p) {
      var f = form.querySelector('.cq-field[data-name="' + CSS.escape(p[0]) + '"]');
      if (!f) return;
      var v = p[1];
      var vals = Array.isArray(v) ? v.map(function (x) { return x.value; }) : [v && typeof v === 'object' ? v.value : v];
      f.querySelectorAll('input[type=radio], input[type=checkbox]').forEach(function (i) {
        if (f.getAttribute('data-type') === 'toggle') i.checked = v === true;
        else i.checked = vals.indexOf(i.value) >= 0;
      });
      var s = f.querySelector('select');
      if (s) Array.prototype.forEach.call(s.options, function (o) { o.selected = vals.indexOf(o.value) >= 0; });
      var t = f.querySelector('input[type=text], input[type=email], input[type=tel], input[type=url], input[type=password], ' +
                              'input[type=number], input[type=date], input[type=datetime-local], textarea');
      if (t && typeof vals[0] === 'string') t.value = vals[0];
    });
  }

  var typing = null;
  function dynamicQuery(form, input) {
    var m = formMeta(form);
    if (!m.fn) return;
    clearTimeout(typing);
    typing = setTimeout(function () {
      var field = input.closest('.cq-field').getAttribute('data-name');
      var values = formValues(form).filter(function (p) { return p[0] !== field; }).concat([[field, input.value]]);
      api('POST', 'call', R.formCall(m, 'form_values_handler', values)).then(function (r) {
        var body = replyBody(R.normaliseAnswer(r).reply);
        if (typeof body === 'string') { try { body = JSON.parse(body); } catch (e) { body = null; } }
        var opts = body && body.output && Array.isArray(body.output.options) ? body.output.options : [];
        var list = document.getElementById(input.getAttribute('list'));
        if (list) list.innerHTML = opts.map(function (o) {
          return '<option value="' + esc(o && o.value) + '" label="' + esc(o && o.label) + '">';
        }).join('');
      }).catch(function (e) { showError(e.message); });
    }, 250);
  }

  document.addEventListener('click', function (ev) {
    var row = ev.target.closest('#calls tr.call');
    if (row) { select(row.getAttribute('data-id')); return; }
    var el = ev.target.closest('[data-act]');
    if (!el) return;
    var a;
    try { a = JSON.parse(el.getAttribute('data-act')); } catch (e) { return; }
    if (a.confirm && !window.confirm([a.confirm.title, a.confirm.description].filter(Boolean).join('\n') || 'Go on?')) return;
    var origin = originFrom(el);
    if (a.do === 'button') send(el, R.buttonCall(a));
    else if (a.do === 'applet_button') send(el, R.appletButtonCall(a));
    else if (a.do === 'unfurl_button') send(el, R.unfurlButtonCall(a, origin.link));
    else if (a.do === 'tab' && origin.type === 'widget' && origin.name) send(el, R.tabCall(origin.name, a.id));
    else if (a.do === 'say' && origin.type === 'bot') send(el, R.messageCall(origin.name, a.text));
    else if (a.do === 'fill') {
      var box = el.closest('form.cq-context');
      var target = box && box.querySelector('input[data-name="' + CSS.escape(a.name) + '"]');
      if (target) target.value = a.text;
    } else if (a.do === 'copy' && navigator.clipboard) navigator.clipboard.writeText(String(a.text || ''));
  });

  document.addEventListener('submit', function (ev) {
    var f = ev.target;
    if (f.id === 'new-call-form') { ev.preventDefault(); newCall(f); return; }
    if (f.classList.contains('cq-form')) {
      ev.preventDefault();
      var m = formMeta(f);
      if (m.fn) send(f, R.formCall(m, 'form_handler', formValues(f)));
    } else if (f.classList.contains('cq-context')) {
      ev.preventDefault();
      var ctx = JSON.parse(f.getAttribute('data-context'));
      var answers = {};
      f.querySelectorAll('input[data-name]').forEach(function (i) { answers[i.getAttribute('data-name')] = i.value; });
      send(f, R.contextCall(originFrom(f).name, ctx.id, answers));
    } else if (f.classList.contains('msgbox')) {
      ev.preventDefault();
      var input = f.querySelector('input');
      if (!input.value) return;
      send(f, R.messageCall(originFrom(f).name, input.value));
      input.value = '';
    }
  });

  document.addEventListener('change', function (ev) {
    var field = ev.target.closest('.cq-field[data-change]');
    var form = ev.target.closest('form.cq-form');
    if (field && form) formChange(form, field.getAttribute('data-name'));
  });

  document.addEventListener('input', function (ev) {
    if (ev.target.getAttribute && ev.target.getAttribute('data-dynamic')) {
      var form = ev.target.closest('form.cq-form');
      if (form) dynamicQuery(form, ev.target);
    }
  });

  /* ---- the new-call panel ---- */

  function lines(text) {
    var o = {};
    String(text || '').split('\n').forEach(function (l) {
      var i = l.indexOf('=');
      if (l.trim() && i > 0) o[l.slice(0, i).trim()] = l.slice(i + 1);
    });
    return o;
  }

  function newCall(f) {
    var el = f.elements;
    var call = { type: el.type.value, name: el.name.value || '-', handler: el.handler.value, text: el.text.value };
    var args = lines(el.args.value), values = lines(el.values.value);
    if (Object.keys(args).length) call.args = args;
    if (Object.keys(values).length) call.values = values;
    api('POST', 'call', call).then(function (r) {
      if (r && r.id !== undefined) {
        upsert({ id: r.id, kind: 'console', type: call.type, name: call.name, handler: call.handler });
        select(r.id);
      }
    }).catch(function (e) { showError(e.message); });
  }

  $('#new-call-toggle').addEventListener('click', function () {
    var p = $('#new-call');
    p.hidden = !p.hidden;
  });

  if (!SECRET || SECRET.indexOf('{{') === 0) {
    showError('This page was not served by cliqhost (no console secret): the API cannot be reached.');
  } else {
    /* #call=ID opens that call (a link to one call, and for tests). */
    var deep = /^#call=(.+)$/.exec(location.hash);
    loadCalls().then(function () { if (deep) select(decodeURIComponent(deep[1])); });
    listen();
  }
})();
