/* render.js: Cliq's replies as HTML, the way Cliq shows them.
 *
 * The browser twin of host/cliq/render.c (the terminal renderer): the same
 * structure (render → message | banner | form | form_modification | widget
 * | link preview | status | list), the same lists of known fields, and
 * what neither knows is shown as JSON, never dropped. Every piece of text
 * from a reply goes through esc() (or safeUrl() for links and images): the
 * output is an HTML string built from escaped parts only, so node can test
 * it without a DOM (tests/browser/test_render.js) and the page can set it
 * as innerHTML.
 *
 * Clickable parts carry what a click does in a data-act attribute (JSON):
 * {do: "button" | "applet_button" | "unfurl_button" | "say" | "copy", ...};
 * forms and bot questions are real <form>s with data-form / data-context.
 * The page (console.js) turns them into calls with the *Call() functions
 * below, which shape them as `cliqhost invoke` does (host/cliq/callbody.c).
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.CliqRender = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  /* ---- small helpers ---------------------------------------------------- */

  var ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

  /* The one escaping function: any value as text safe in HTML content and
   * in quoted attributes. */
  function esc(v) {
    if (v === undefined || v === null) return '';
    return String(v).replace(/[&<>"'`]/g, function (c) { return ESCAPES[c]; });
  }

  function isObj(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }
  function str(o, k) { return isObj(o) && typeof o[k] === 'string' ? o[k] : null; }
  function has(o, k) { return isObj(o) && Object.prototype.hasOwnProperty.call(o, k); }

  /* A value as compact JSON text (escaped), as render.c's compact(). */
  function json(v) {
    var s;
    try { s = JSON.stringify(v); } catch (e) { s = String(v); }
    return esc(s === undefined ? String(v) : s);
  }

  /* Strings as they are, the rest as JSON (render.c's scalar()). */
  function scalar(v) { return typeof v === 'string' ? esc(v) : json(v); }

  /* A URL Cliq would open (http, https, mailto, tel, sms, sip), escaped for
   * an attribute; null for anything else (javascript:, data:, ...). */
  function safeUrl(u) {
    if (typeof u !== 'string') return null;
    var t = u.trim();
    if (!/^(https?:\/\/|mailto:|tel:|sms:|sip:)/i.test(t)) return null;
    return esc(t);
  }

  function act(a) { return ' data-act="' + esc(JSON.stringify(a)) + '"'; }

  /* The keys of `o` a renderer does not know, each as "key: JSON". */
  function rest(o, known) {
    var out = '';
    if (!isObj(o)) return out;
    Object.keys(o).forEach(function (k) {
      if (known.indexOf(k) >= 0) return;
      out += '<div class="cq-unknown"><span class="cq-key">' + esc(k) + ':</span> <code>' +
             json(o[k]) + '</code></div>';
    });
    return out;
  }

  /* The fields each part shows; what is not here is shown by rest(). The
   * lists of host/cliq/render.c, plus what only a page can show (a card's
   * thumbnail, styles' colours, instant buttons in the text); the node test
   * checks they stay a superset of render.c's. */
  var KNOWN = {
    message: ['text', 'bot', 'card', 'slides', 'buttons', 'suggestions', 'context', 'styles',
              'references'],
    card: ['title', 'theme', 'thumbnail', 'icon'],
    input: ['type', 'format', 'name', 'label', 'mandatory', 'value', 'placeholder', 'hint',
            'options', 'trigger_on_change', 'max_selections', 'multiple', 'data_source',
            'boundary', 'min_selections', 'disabled'],
    form: ['type', 'title', 'name', 'hint', 'button_label', 'inputs', 'action', 'actions'],
    widget: ['type', 'tabs', 'active_tab', 'data_type', 'sections', 'header', 'footer', 'info'],
    link: ['type', 'title', 'description', 'provider_url', 'fields', 'actions',
           'dynamic_actions', 'thumbnail_url', 'image_url'],
    status: ['status', 'title', 'message', 'note', 'footer']
  };

  /* ---- Cliq's markup ---------------------------------------------------- */

  /* Text with Cliq's markup as HTML: ```blocks```, `code`, [label](url),
   * [label]($n) instant buttons (refs: the message's references), *bold*,
   * _italics_, ~strike~, {@id} and @name mentions, #channels, line breaks.
   * Code and links are set aside first so the markers inside them stay. */
  function markup(text, refs) {
    if (typeof text !== 'string') return scalar(text);
    var held = [];
    function hold(html) { held.push(html); return '\u0000' + (held.length - 1) + '\u0000'; }
    /* NUL marks what is held: the text's own (a browser shows U+FFFD
     * for it anyway) must not name a held piece. */
    var s = text.replace(/\u0000/g, '\ufffd').replace(/```\n?([\s\S]*?)```\n?/g, function (m, code) {
      return hold('<pre class="cq-pre">' + esc(code) + '</pre>');
    });
    s = s.replace(/`([^`\n]+)`/g, function (m, code) {
      return hold('<code class="cq-code">' + esc(code) + '</code>');
    });
    s = s.replace(/\[([^\]\n]+)\]\(([^)\s]+)\)/g, function (m, label, target) {
      var ref = /^\$(\w+)$/.exec(target);
      if (ref) {
        var r = isObj(refs) ? refs[ref[1]] : null;
        if (isObj(r) && isObj(r.object))
          return hold(button(Object.assign({ label: label }, r.object), 'cq-instant'));
        return hold('<span class="cq-unknown">' + esc(m) + '</span>');
      }
      var url = safeUrl(target);
      if (!url) return hold(esc(m));
      return hold('<a class="cq-link" href="' + url + '" target="_blank" rel="noopener noreferrer">' +
                  esc(label) + '</a>');
    });
    s = esc(s);
    s = s.replace(/\*([^*\n]+)\*/g, '<b>$1</b>');
    s = s.replace(/(^|[^\w])_([^_\n]+)_(?!\w)/g, '$1<i>$2</i>');
    s = s.replace(/(^|[^\w])~([^~\n]+)~(?!\w)/g, '$1<s>$2</s>');
    s = s.replace(/\{@([^}\n]+)\}/g, '<span class="cq-mention">@$1</span>');
    s = s.replace(/(^|\s)@([A-Za-z0-9][\w.-]*)/g, '$1<span class="cq-mention">@$2</span>');
    s = s.replace(/(^|\s)#([A-Za-z0-9][\w-]*)/g, '$1<span class="cq-channel">#$2</span>');
    s = s.replace(/\n/g, '<br>');
    return s.replace(/\u0000(\d+)\u0000/g, function (m, i) { return held[+i]; });
  }

  /* ---- buttons ---------------------------------------------------------- */

  var ACTION_TARGET = { 'invoke.function': 'name', 'open.url': 'web', 'preview.url': 'url',
                        'copy': 'text', 'system.api': 'api' };

  /* A message button {label, type +/-, key, hint, action{type, data,
   * confirm}}, or a widget's flat {label, type, name, id, url, api,
   * emotion, disabled}. */
  function button(b, extraClass) {
    var label = str(b, 'label') !== null ? b.label : '?';
    var type = str(b, 'type');
    var cls = 'cq-btn' + (extraClass ? ' ' + extraClass : '');
    if (type === '+') cls += ' cq-btn-plus';
    else if (type === '-') cls += ' cq-btn-minus';
    if (str(b, 'emotion')) cls += ' cq-btn-' + esc(b.emotion);
    var title = [];
    if (str(b, 'hint')) title.push(b.hint);
    var a = null, href = null, atype = null, target = null;
    var action = isObj(b) ? b.action : null;
    if (isObj(action)) {
      atype = str(action, 'type');
      var data = action.data;
      target = isObj(data) && atype && ACTION_TARGET[atype] ? data[ACTION_TARGET[atype]] : data;
      if (atype === 'invoke.function' && isObj(data) && typeof data.name === 'string') {
        a = { do: 'button', name: data.name, label: label };
        if (has(b, 'key')) a.key = b.key;
        if (isObj(b.arguments)) a.arguments = b.arguments;
      } else if (atype === 'open.url' && isObj(data)) {
        href = safeUrl(data.web);
      } else if (atype === 'preview.url' && isObj(data)) {
        href = safeUrl(data.url);
      } else if (atype === 'copy' && isObj(data)) {
        a = { do: 'copy', text: data.text };
      }
      if (a && isObj(action.confirm)) a.confirm = action.confirm;
    } else if (type) {
      atype = type;
      target = str(b, 'name') || str(b, 'url') || str(b, 'api');
      if (type === 'invoke.function' && str(b, 'name'))
        a = { do: 'applet_button', name: b.name, id: str(b, 'id') || str(b, 'name'), label: label };
      else if (type === 'open.url') href = safeUrl(b.url);
    }
    if (atype) title.push(atype + (typeof target === 'string' ? ' ' + target : target ? ' ' + JSON.stringify(target) : ''));
    if (has(b, 'key')) title.push('key ' + b.key);
    var attrs = ' class="' + cls + '" data-action-type="' + esc(atype || '') + '"' +
                (title.length ? ' title="' + esc(title.join(' \u00b7 ')) + '"' : '');
    var confirm = isObj(action) && isObj(action.confirm)
      ? '<span class="cq-confirm">confirm: ' + esc(str(action.confirm, 'title') || '') + '</span>' : '';
    if (b && b.disabled === true)
      return '<button type="button"' + attrs + ' disabled>' + esc(label) + '</button>' + confirm;
    if (href)
      return '<a' + attrs + ' href="' + href + '" target="_blank" rel="noopener noreferrer">' +
             esc(label) + '</a>' + confirm;
    if (a) return '<button type="button"' + attrs + act(a) + '>' + esc(label) + '</button>' + confirm;
    /* system.api and anything else: shown, with what it would do, but a
     * console cannot start a call or a chat. */
    return '<button type="button"' + attrs + ' disabled>' + esc(label) + '</button>' +
           '<span class="cq-btn-note">' + esc(atype || '?') +
           (target !== undefined && target !== null ? ' ' + scalar(target) : '') + '</span>' + confirm;
  }

  function buttons(list) {
    if (!Array.isArray(list) || !list.length) return '';
    return '<div class="cq-buttons">' + list.map(function (b) {
      return isObj(b) ? button(b) : '<code class="cq-unknown">' + json(b) + '</code>';
    }).join('') + '</div>';
  }

  /* ---- slides ----------------------------------------------------------- */

  /* A table {headers: [...], rows: [{header: value} | [value, ...]]}. */
  function table(headers, rows) {
    if (!Array.isArray(headers) || !headers.length) return '<code class="cq-unknown">' + json(rows) + '</code>';
    var names = headers.map(function (h) { return typeof h === 'string' ? h : JSON.stringify(h); });
    var out = '<table class="cq-table"><thead><tr>' +
              names.map(function (h) { return '<th>' + esc(h) + '</th>'; }).join('') + '</tr></thead><tbody>';
    (Array.isArray(rows) ? rows : []).forEach(function (row) {
      out += '<tr>' + names.map(function (h, c) {
        var v = Array.isArray(row) ? row[c] : isObj(row) ? row[h] : undefined;
        return '<td>' + (v === undefined ? '' : typeof v === 'string' ? markup(v) : json(v)) + '</td>';
      }).join('') + '</tr>';
    });
    return out + '</tbody></table>';
  }

  /* Label data [{"Key": "Value"}, ...] (or the {label, value} variant). */
  function labels(data) {
    if (!Array.isArray(data)) return data === undefined ? '' : '<code class="cq-unknown">' + json(data) + '</code>';
    var out = '<dl class="cq-labels">';
    data.forEach(function (item) {
      if (!isObj(item)) { out += '<dt></dt><dd>' + scalar(item) + '</dd>'; return; }
      var keys = Object.keys(item);
      if (str(item, 'label') !== null && has(item, 'value') && keys.length === 2) {
        out += '<dt>' + esc(item.label) + '</dt><dd>' + scalar(item.value) + '</dd>';
        return;
      }
      keys.forEach(function (k) { out += '<dt>' + esc(k) + '</dt><dd>' + scalar(item[k]) + '</dd>'; });
    });
    return out + '</dl>';
  }

  function slide(s) {
    var type = str(s, 'type') || '?';
    var data = isObj(s) ? s.data : undefined;
    var out = '<div class="cq-slide cq-slide-' + esc(type) + '">';
    if (str(s, 'title')) out += '<div class="cq-slide-title">' + esc(s.title) + '</div>';
    if (type === 'table' && isObj(data)) out += table(data.headers, data.rows);
    else if (type === 'list' && Array.isArray(data))
      out += '<ul class="cq-list">' + data.map(function (it) {
        return '<li>' + (typeof it === 'string' ? markup(it) : json(it)) + '</li>';
      }).join('') + '</ul>';
    else if (type === 'label' && Array.isArray(data)) out += labels(data);
    else if (type === 'images' && Array.isArray(data))
      out += '<div class="cq-images">' + data.map(image).join('') + '</div>';
    else if (type === 'text' && typeof data === 'string') out += '<div class="cq-text">' + markup(data) + '</div>';
    else out += '<div class="cq-unknown">(' + esc(type) + ' slide) <code>' + json(data) + '</code></div>';
    if (isObj(s)) out += rest(s, ['type', 'title', 'data']);
    return out + '</div>';
  }

  function image(u) {
    var url = safeUrl(u);
    if (!url) return '<code class="cq-unknown">image: ' + scalar(u) + '</code>';
    return '<img class="cq-image" src="' + url + '" alt="' + url + '" referrerpolicy="no-referrer" loading="lazy">';
  }

  /* ---- messages --------------------------------------------------------- */

  function suggestionList(list) {
    return '<div class="cq-suggestions">' + list.map(function (it) {
      var t = str(it, 'text');
      if (t === null) return '<code class="cq-unknown">' + json(it) + '</code>';
      return '<button type="button" class="cq-chip"' + act({ do: 'say', text: t }) + '>' + esc(t) + '</button>';
    }).join('') + '</div>';
  }

  /* A bot context: the questions the bot will ask, as a form whose answers
   * go to the bot's context handler. */
  function context(c) {
    var id = str(c, 'id') || '?';
    var params = Array.isArray(c.params) ? c.params : [];
    var out = '<form class="cq-context" data-context="' + esc(JSON.stringify({ id: id })) + '">' +
              '<div class="cq-context-head">context ' + esc(id) +
              (typeof c.timeout === 'number' ? ' (timeout ' + esc(c.timeout) + ' s)' : '') + '</div>';
    params.forEach(function (q, i) {
      var name = str(q, 'name') || '?';
      var sugg = isObj(q) && isObj(q.suggestions) && Array.isArray(q.suggestions.list) ? q.suggestions.list : [];
      out += '<label class="cq-question"><span>' + esc(str(q, 'question') || name) + '</span>' +
             '<input type="text" name="' + esc(name) + '" data-name="' + esc(name) + '"' +
             (sugg.length ? ' list="cq-ctx-' + esc(id) + '-' + i + '"' : '') + '></label>';
      if (sugg.length)
        out += '<datalist id="cq-ctx-' + esc(id) + '-' + i + '">' + sugg.map(function (s) {
          return '<option value="' + esc(str(s, 'text') || '') + '">';
        }).join('') + '</datalist><div class="cq-suggestions">' + sugg.map(function (s) {
          var t = str(s, 'text');
          if (t === null) return '<code class="cq-unknown">' + json(s) + '</code>';
          return '<button type="button" class="cq-chip"' + act({ do: 'fill', name: name, text: t }) + '>' + esc(t) + '</button>';
        }).join('') + '</div>';
    });
    out += '<button type="submit" class="cq-btn">Answer</button>' +
           rest(c, ['id', 'timeout', 'params']) + '</form>';
    return out;
  }

  function message(m) {
    var styles = isObj(m.styles) ? m.styles : null;
    var bg = styles && str(styles, 'background') ? ' cq-bg-' + esc(styles.background) : '';
    var out = '<div class="cq-message' + bg + '">';
    if (isObj(m.bot)) {
      out += '<div class="cq-bot">' + (safeUrl(m.bot.image) ? '<img class="cq-bot-image" src="' +
             safeUrl(m.bot.image) + '" alt="" referrerpolicy="no-referrer">' : '') +
             '<span class="cq-bot-name">' + esc(str(m.bot, 'name') || '') + '</span>' +
             rest(m.bot, ['name', 'image']) + '</div>';
    } else if (has(m, 'bot')) {
      out += '<div class="cq-unknown">bot: <code>' + json(m.bot) + '</code></div>';
    }
    var card = isObj(m.card) ? m.card : null;
    if (card) {
      var theme = str(card, 'theme') || 'default';
      out += '<div class="cq-card cq-theme-' + esc(theme) + '"><div class="cq-card-head">';
      var thumb = safeUrl(card.thumbnail) || safeUrl(card.icon);
      if (thumb) out += '<img class="cq-thumb" src="' + thumb + '" alt="" referrerpolicy="no-referrer">';
      out += '<span class="cq-card-title">' + esc(str(card, 'title') || '') + '</span>' +
             '<span class="cq-card-theme">' + esc(theme) + '</span></div>' + rest(card, KNOWN.card);
    } else if (has(m, 'card')) {
      out += '<div class="cq-unknown">card: <code>' + json(m.card) + '</code></div>';
    }
    if (typeof m.text === 'string')
      out += '<div class="cq-text">' + (styles && styles.markdown === false
        ? esc(m.text).replace(/\n/g, '<br>') : markup(m.text, m.references)) + '</div>';
    else if (has(m, 'text')) out += '<div class="cq-unknown">text: <code>' + json(m.text) + '</code></div>';
    if (Array.isArray(m.slides)) out += m.slides.map(slide).join('');
    else if (has(m, 'slides')) out += '<div class="cq-unknown">slides: <code>' + json(m.slides) + '</code></div>';
    out += buttons(m.buttons);
    if (has(m, 'buttons') && !Array.isArray(m.buttons))
      out += '<div class="cq-unknown">buttons: <code>' + json(m.buttons) + '</code></div>';
    if (card) out += '</div>';
    if (isObj(m.suggestions) && Array.isArray(m.suggestions.list)) out += suggestionList(m.suggestions.list);
    else if (has(m, 'suggestions')) out += '<div class="cq-unknown">suggestions: <code>' + json(m.suggestions) + '</code></div>';
    if (isObj(m.context)) out += context(m.context);
    else if (has(m, 'context')) out += '<div class="cq-unknown">context: <code>' + json(m.context) + '</code></div>';
    if (styles) out += rest(styles, ['background', 'markdown']);
    if (isObj(m.references)) {
      /* References the text does not use are shown, not dropped. */
      var used = typeof m.text === 'string' ? m.text : '';
      Object.keys(m.references).forEach(function (k) {
        if (used.indexOf('($' + k + ')') < 0)
          out += '<div class="cq-unknown">reference ' + esc(k) + ': <code>' + json(m.references[k]) + '</code></div>';
      });
    } else if (has(m, 'references')) {
      out += '<div class="cq-unknown">references: <code>' + json(m.references) + '</code></div>';
    }
    return out + rest(m, KNOWN.message) + '</div>';
  }

  /* ---- functions: banners, forms ---------------------------------------- */

  function banner(b) {
    var status = (str(b, 'status') || '').toLowerCase();
    var mark = status === 'success' ? '\u2714' : status === 'failure' ? '\u2718' : '\u2022';
    return '<div class="cq-banner cq-banner-' + esc(status || 'none') + '"><span class="cq-mark">' + mark +
           '</span> ' + markup(str(b, 'text') || '') + rest(b, ['type', 'text', 'status']) + '</div>';
  }

  /* An option's label and value, from {label, value} or a plain value. */
  function option(o) {
    if (isObj(o)) return { label: str(o, 'label') !== null ? o.label : String(o.value), value: o.value };
    return { label: String(o), value: o };
  }

  function isChosen(value, o) {
    if (Array.isArray(value)) return value.some(function (v) { return isChosen(v, o); });
    if (isObj(value)) return value.value === o.value;
    return value !== undefined && value !== null && String(value) === String(o.value);
  }

  var TEXT_FORMATS = { email: 'email', tel: 'tel', url: 'url', password: 'password' };

  /* One form input as a real control inside <div class="cq-field"
   * data-name data-type>; the page reads values back from it. */
  function input(inp, formName) {
    var type = str(inp, 'type') || '?';
    var name = str(inp, 'name') || '?';
    var id = 'cq-f-' + esc(formName || 'form') + '-' + esc(name);
    var req = inp.mandatory === true ? ' required' : '';
    var dis = inp.disabled === true ? ' disabled' : '';
    var change = inp.trigger_on_change === true ? ' data-change="1"' : '';
    var ph = str(inp, 'placeholder') ? ' placeholder="' + esc(inp.placeholder) + '"' : '';
    var value = inp.value;
    var opts = Array.isArray(inp.options) ? inp.options.map(option) : [];
    var out = '<div class="cq-field cq-input-' + esc(type) + '" data-name="' + esc(name) + '" data-type="' +
              esc(type) + '"' + change + '>';
    var label = '<label class="cq-label" for="' + id + '">' + esc(str(inp, 'label') || name) +
                (inp.mandatory === true ? ' <span class="cq-req">*</span>' : '') + '</label>';
    var val = value === undefined || value === null ? '' : ' value="' + esc(isObj(value) ? value.value : value) + '"';
    var control;
    if (type === 'text' || type === 'number' || type === 'date' || type === 'datetime' || type === 'location') {
      var html = type === 'text' ? TEXT_FORMATS[str(inp, 'format')] || 'text'
               : type === 'datetime' ? 'datetime-local' : type === 'location' ? 'text' : type;
      control = '<input id="' + id + '" type="' + html + '" name="' + esc(name) + '"' + val + ph + req + dis + '>';
    } else if (type === 'textarea') {
      control = '<textarea id="' + id + '" name="' + esc(name) + '"' + ph + req + dis + '>' +
                esc(typeof value === 'string' ? value : '') + '</textarea>';
    } else if (type === 'hidden') {
      control = '<input type="hidden" name="' + esc(name) + '"' + val + '>' +
                '<span class="cq-hidden">hidden: ' + esc(name) + ' = ' + scalar(value) + '</span>';
      label = '';
    } else if ((type === 'select' || type === 'native_select') && !opts.length && str(inp, 'data_source')) {
      control = '<input id="' + id + '" type="text" name="' + esc(name) + '"' + val + ph + req + dis +
                '><span class="cq-note">from ' + esc(inp.data_source) + '</span>';
    } else if (type === 'select' || type === 'native_select' || type === 'catalogue') {
      control = '<select id="' + id + '" name="' + esc(name) + '"' + req + dis +
                (type === 'catalogue' ? ' multiple' : '') + '><option value=""' +
                (value === undefined ? ' selected' : '') + '>' + esc(str(inp, 'placeholder') || '') + '</option>' +
                opts.map(function (o) {
                  return '<option value="' + esc(o.value) + '"' + (isChosen(value, o) ? ' selected' : '') + '>' +
                         esc(o.label) + '</option>';
                }).join('') + '</select>';
    } else if (type === 'dynamic_select' || type === 'dynamic_catalogue') {
      control = '<input id="' + id + '" type="text" name="' + esc(name) + '" data-dynamic="1" autocomplete="off"' +
                ' list="' + id + '-options"' + val + ph + req + dis + '><datalist id="' + id + '-options">' +
                opts.map(function (o) { return '<option value="' + esc(o.value) + '" label="' + esc(o.label) + '">'; }).join('') +
                '</datalist>';
    } else if (type === 'radio' || type === 'checkbox') {
      control = '<div class="cq-choices" id="' + id + '">' + opts.map(function (o) {
        return '<label class="cq-choice"><input type="' + type + '" name="' + esc(name) + '" value="' + esc(o.value) +
               '" data-label="' + esc(o.label) + '"' + (isChosen(value, o) ? ' checked' : '') + dis + '> ' +
               esc(o.label) + '</label>';
      }).join('') + '</div>';
    } else if (type === 'toggle') {
      control = '<label class="cq-toggle"><input id="' + id + '" type="checkbox" name="' + esc(name) + '"' +
                (value === true || value === 'true' ? ' checked' : '') + dis + '><span class="cq-slider"></span></label>';
    } else if (type === 'file') {
      control = '<input id="' + id + '" type="file" name="' + esc(name) + '"' +
                (inp.multiple === true ? ' multiple' : '') + req + dis + '>';
    } else {
      control = '<code class="cq-unknown">(' + esc(type) + ' input) ' + json(inp) + '</code>';
    }
    out += label + control;
    var notes = [];
    if (str(inp, 'format') && type !== 'text') notes.push('format ' + inp.format);
    if (has(inp, 'max_selections')) notes.push('at most ' + inp.max_selections);
    if (has(inp, 'min_selections')) notes.push('at least ' + inp.min_selections);
    if (has(inp, 'boundary')) notes.push('boundary ' + JSON.stringify(inp.boundary));
    if (inp.trigger_on_change === true) notes.push('calls form_change');
    if (notes.length) out += '<span class="cq-note">' + esc(notes.join(', ')) + '</span>';
    if (str(inp, 'hint')) out += '<div class="cq-hint">' + esc(inp.hint) + '</div>';
    return out + rest(inp, KNOWN.input) + '</div>';
  }

  /* The function a form's submission calls: `action` or the older
   * `actions.submit`. */
  function formAction(f) {
    var a = isObj(f.action) ? f.action : isObj(f.actions) && isObj(f.actions.submit) ? f.actions.submit : null;
    return a;
  }

  function form(f) {
    var a = formAction(f);
    var name = str(f, 'name') || '';
    var meta = { name: name, fn: a && str(a, 'name') ? a.name : null };
    var out = '<form class="cq-form" data-form="' + esc(JSON.stringify(meta)) + '" novalidate>' +
              '<div class="cq-form-title">' + esc(str(f, 'title') || '') + '</div>';
    if (str(f, 'hint')) out += '<div class="cq-hint">' + esc(f.hint) + '</div>';
    (Array.isArray(f.inputs) ? f.inputs : []).forEach(function (inp) {
      out += isObj(inp) ? input(inp, name) : '<code class="cq-unknown">' + json(inp) + '</code>';
    });
    out += '<div class="cq-form-actions"><button type="submit" class="cq-btn cq-btn-plus"' +
           (meta.fn ? '' : ' disabled') + '>' + esc(str(f, 'button_label') || 'Submit') + '</button>' +
           (a ? '<span class="cq-note">' + esc((str(a, 'type') || '?') + ' ' + (str(a, 'name') || '')) + '</span>' : '') +
           '</div>';
    return out + rest(f, KNOWN.form) + '</form>';
  }

  function formModification(m) {
    var out = '<div class="cq-formmod"><div class="cq-formmod-head">form modification</div><ul>';
    (Array.isArray(m.actions) ? m.actions : []).forEach(function (a) {
      out += '<li><b>' + esc(str(a, 'type') || '?') + '</b> ' + esc(str(a, 'name') || '') +
             (isObj(a) && isObj(a.input) ? input(a.input, 'mod') : '') +
             (isObj(a) ? rest(a, ['type', 'name', 'input']) : '') + '</li>';
    });
    return out + '</ul>' + rest(m, ['type', 'actions']) + '</div>';
  }

  /* ---- widgets ---------------------------------------------------------- */

  function element(e) {
    var type = str(e, 'type') || '?';
    if (type === 'title')
      return '<div class="cq-w-title">' + esc(str(e, 'text') || '') + buttons(e.buttons) + '</div>';
    if (type === 'text' || type === 'subtext')
      return '<div class="cq-w-' + type + '">' + markup(str(e, 'text') || '') + '</div>';
    if (type === 'divider') return '<hr class="cq-w-divider">';
    if (type === 'buttons') return buttons(e.buttons);
    if (type === 'fields')
      return '<div class="cq-w-fields">' + labels(isObj(e.data) && e.data.data ? e.data.data : e.data) + '</div>';
    if (type === 'table' && e.headers) return '<div class="cq-w-table">' + table(e.headers, e.rows) + '</div>';
    return '<div class="cq-unknown">(' + esc(type) + ') <code>' + json(e) + '</code></div>';
  }

  function widget(w) {
    var out = '<div class="cq-widget"><div class="cq-widget-kind">widget: ' + esc(str(w, 'data_type') || 'sections') + '</div>';
    var active = str(w, 'active_tab');
    if (Array.isArray(w.tabs) && w.tabs.length)
      out += '<div class="cq-tabs">' + w.tabs.map(function (t) {
        var id = str(t, 'id') || '?';
        return '<button type="button" class="cq-tab' + (active === id ? ' cq-tab-active' : '') + '" data-tab="' + esc(id) +
               '"' + act({ do: 'tab', id: id }) + '>' + esc(str(t, 'label') || id) + '</button>' +
               (isObj(t) ? rest(t, ['id', 'label']) : '');
      }).join('') + '</div>';
    if (isObj(w.header))
      out += '<div class="cq-w-header">' + esc(str(w.header, 'title') || '') + buttons(w.header.buttons) +
             rest(w.header, ['title', 'buttons']) + '</div>';
    if (isObj(w.info)) {
      var info = w.info;
      out += '<div class="cq-w-info"><div class="cq-w-title">' + esc(str(info, 'title') || '') + '</div>' +
             (str(info, 'description') ? '<div class="cq-w-text">' + markup(info.description) + '</div>' : '') +
             (has(info, 'image_url') ? image(info.image_url) : '') +
             (isObj(info.button) ? '<div class="cq-buttons">' + button(info.button) + '</div>' : '') +
             rest(info, ['title', 'description', 'image_url', 'button']) + '</div>';
    }
    (Array.isArray(w.sections) ? w.sections : []).forEach(function (s) {
      out += '<div class="cq-w-section" data-section="' + esc(str(s, 'id') || '?') + '">' +
             (Array.isArray(s.elements) ? s.elements : []).map(element).join('') +
             rest(s, ['id', 'elements']) + '</div>';
    });
    if (isObj(w.footer))
      out += '<div class="cq-w-footer">' + esc(str(w.footer, 'text') || '') + buttons(w.footer.buttons) +
             rest(w.footer, ['text', 'buttons']) + '</div>';
    return out + rest(w, KNOWN.widget) + '</div>';
  }

  /* ---- link previews, extension statuses, lists ------------------------- */

  function linkPreview(l) {
    var out = '<div class="cq-unfurl cq-link-preview">';
    var provider = safeUrl(l.provider_url);
    if (has(l, 'provider_url'))
      out += '<div class="cq-unfurl-provider">' + (provider ? '<a href="' + provider + '" target="_blank" rel="noopener noreferrer">' +
             provider + '</a>' : scalar(l.provider_url)) + '</div>';
    out += '<div class="cq-unfurl-title">' + esc(str(l, 'title') || '') + '</div>';
    if (str(l, 'description')) out += '<div class="cq-unfurl-desc">' + markup(l.description) + '</div>';
    if (has(l, 'thumbnail_url') || has(l, 'image_url')) out += image(l.thumbnail_url || l.image_url);
    if (isObj(l.fields)) out += labels(l.fields.data) + rest(l.fields, ['data']);
    else if (has(l, 'fields')) out += '<div class="cq-unknown">fields: <code>' + json(l.fields) + '</code></div>';
    if (Array.isArray(l.actions)) out += '<div class="cq-buttons">' + l.actions.map(linkAction).join('') + '</div>';
    if (l.dynamic_actions === true) out += '<span class="cq-note">more actions from unfurl_dynamic_action</span>';
    return out + rest(l, KNOWN.link) + '</div>';
  }

  function linkAction(a) {
    if (!isObj(a)) return '<code class="cq-unknown">' + json(a) + '</code>';
    var d = { do: 'unfurl_button', label: str(a, 'label') || '?' };
    if (has(a, 'params')) d.params = a.params;
    if (isObj(a.confirm)) d.confirm = a.confirm;
    return '<button type="button" class="cq-btn"' + act(d) + '>' + esc(d.label) + '</button>' +
           rest(a, ['type', 'label', 'params', 'confirm']);
  }

  function extensionStatus(s) {
    var ok = String(s.status) === '200';
    var out = '<div class="cq-status ' + (ok ? 'cq-status-ok' : 'cq-status-fail') + '"><b>status ' + scalar(s.status) +
              '</b>' + (str(s, 'title') ? ': ' + esc(s.title) : '');
    if (str(s, 'message')) out += '<div class="cq-text">' + markup(s.message) + '</div>';
    if (Array.isArray(s.note)) out += '<ul class="cq-list">' + s.note.map(function (n) { return '<li>' + scalar(n) + '</li>'; }).join('') + '</ul>';
    else if (has(s, 'note')) out += '<div class="cq-unknown">note: <code>' + json(s.note) + '</code></div>';
    if (str(s, 'footer')) out += '<div class="cq-w-footer">' + markup(s.footer) + '</div>';
    return out + rest(s, KNOWN.status) + '</div>';
  }

  /* A list: command suggestions {title, description, imageurl}, a dynamic
   * select's or Deluge's {label, value}, unfurl actions {label, ...}. */
  function list(items) {
    if (!items.length) return '<div class="cq-empty">(an empty list)</div>';
    return '<ul class="cq-suggest">' + items.map(function (it) {
      if (str(it, 'title') !== null) {
        var img = safeUrl(it.imageurl);
        return '<li class="cq-suggest-item">' + (img ? '<img class="cq-thumb" src="' + img + '" alt="" referrerpolicy="no-referrer">' : '') +
               '<span class="cq-suggest-title">' + esc(it.title) + '</span>' +
               (str(it, 'description') ? '<span class="cq-suggest-desc">' + esc(it.description) + '</span>' : '') +
               rest(it, ['title', 'description', 'imageurl']) + '</li>';
      }
      if (str(it, 'label') !== null && typeof it.value === 'string')
        return '<li class="cq-suggest-item"><span class="cq-suggest-title">' + esc(it.label) + '</span> <code>' +
               esc(it.value) + '</code>' + rest(it, ['label', 'value']) + '</li>';
      if (str(it, 'label') !== null) return '<li class="cq-suggest-item">' + linkAction(it) + '</li>';
      if (str(it, 'text') !== null) return '<li class="cq-suggest-item">' + esc(it.text) + rest(it, ['text']) + '</li>';
      return '<li class="cq-suggest-item">' + scalar(it) + '</li>';
    }).join('') + '</ul>';
  }

  /* A reply's `output` as Cliq shows it (render.c's render_output). */
  function render(output) {
    var out;
    if (output === undefined || output === null || output === '')
      out = '<div class="cq-empty">(an empty reply: the user sees nothing)</div>';
    else if (typeof output === 'string') out = '<div class="cq-message"><div class="cq-text">' + markup(output) + '</div></div>';
    else if (Array.isArray(output)) out = list(output);
    else if (!isObj(output)) out = '<code class="cq-unknown">' + json(output) + '</code>';
    else {
      var type = str(output, 'type') || '';
      if (type === 'banner') out = banner(output);
      else if (type === 'form') out = form(output);
      else if (type === 'form_modification') out = formModification(output);
      else if (type === 'applet') out = widget(output);
      else if (type === 'link') out = linkPreview(output);
      else if (!has(output, 'text') && Array.isArray(output.options))
        out = '<div class="cq-options-head">options</div>' + list(output.options) + rest(output, ['options']);
      else if (!has(output, 'text') && Array.isArray(output.suggestions))
        out = '<div class="cq-options-head">suggestions</div>' + list(output.suggestions) + rest(output, ['suggestions']);
      else if (!has(output, 'text') && has(output, 'status') && (has(output, 'title') || has(output, 'message')))
        out = extensionStatus(output);
      else if (!has(output, 'text') && has(output, 'status') && Object.keys(output).length === 1)
        out = extensionStatus(output);
      else out = message(output);
    }
    return '<div class="cq-reply">' + out + '</div>';
  }

  /* A reply body as the host sent it (text or parsed JSON): the `output`
   * of Cliq's envelope rendered, anything else shown as it is. */
  function renderBody(body) {
    var v = body;
    if (typeof body === 'string') {
      if (body === '') return '<div class="cq-empty">(no body)</div>';
      try { v = JSON.parse(body); } catch (e) { return '<pre class="cq-raw">' + esc(body) + '</pre>'; }
    }
    if (isObj(v) && has(v, 'output')) {
      var extra = rest(v, ['output']);
      return render(v.output) + extra;
    }
    return '<div class="cq-unknown">not Cliq\'s {"output": ...} envelope:</div><pre class="cq-raw">' +
           esc(JSON.stringify(v, null, 2)) + '</pre>';
  }

  /* ---- what a click sends ----------------------------------------------- *
   * The bodies of POST /console/api/call, shaped as `cliqhost invoke` takes
   * them: TEXT, --arg KEY=VALUE pairs (args) and --value NAME=VALUE pairs
   * (values, in order; objects and lists as JSON text, as callbody.c's
   * loose_value reads them). */

  function pairs(o) {
    var out = {};
    if (!isObj(o)) return out;
    Object.keys(o).forEach(function (k) {
      var v = o[k];
      out[k] = typeof v === 'string' ? v : JSON.stringify(v);
    });
    return out;
  }

  /* A message button with invoke.function: the function's button handler,
   * TEXT the button's label, the key as arguments.key. */
  function buttonCall(a) {
    var args = pairs(a.arguments);
    if (a.key !== undefined) args.key = typeof a.key === 'string' ? a.key : JSON.stringify(a.key);
    return { type: 'function', name: a.name, handler: 'button_handler', text: a.label, args: args };
  }

  /* A widget button with invoke.function: the function's applet_button,
   * TEXT the button's id. */
  function appletButtonCall(a) {
    return { type: 'function', name: a.name, handler: 'applet_button_handler', text: a.id };
  }

  function unfurlButtonCall(a, link) {
    return { type: 'link_preview', name: '-', handler: 'unfurl_button_action_handler',
             text: link || '', args: pairs(a.params) };
  }

  /* A form's submission (handler form_handler), change (form_change_handler:
   * the changed field last) or dynamic select's query (form_values_handler:
   * the field and what was typed last). values: [[name, value], ...]. */
  function formCall(meta, handler, values) {
    var v = {};
    values.forEach(function (p) { v[p[0]] = typeof p[1] === 'string' ? p[1] : JSON.stringify(p[1]); });
    return { type: 'function', name: meta.fn, handler: handler, text: meta.name, values: v };
  }

  /* A widget's tab clicked: its view handler with event tab_click and the
   * tab's id as target.id. */
  function tabCall(widget, id) {
    return { type: 'widget', name: widget, handler: 'view_handler', text: 'tab_click', params: { 'target.id': id } };
  }

  function messageCall(bot, text) {
    return { type: 'bot', name: bot, handler: 'message_handler', text: text };
  }

  function contextCall(bot, id, answers) {
    return { type: 'bot', name: bot, handler: 'context_handler', text: id, values: pairs(answers) };
  }

  /* A form after a form_change's form_modification: a new form object
   * (the old one is not changed). Unknown actions are kept aside in
   * `_unapplied` so the page shows them. */
  function applyModification(f, mod) {
    var out = JSON.parse(JSON.stringify(f));
    var inputs = Array.isArray(out.inputs) ? out.inputs : (out.inputs = []);
    var unapplied = [];
    function at(name) {
      for (var i = 0; i < inputs.length; i++) if (isObj(inputs[i]) && inputs[i].name === name) return i;
      return -1;
    }
    (isObj(mod) && Array.isArray(mod.actions) ? mod.actions : []).forEach(function (a) {
      var i = at(str(a, 'name'));
      var t = str(a, 'type');
      if (t === 'remove' && i >= 0) inputs.splice(i, 1);
      else if (t === 'clear' && i >= 0) delete inputs[i].value;
      else if (t === 'enable' && i >= 0) delete inputs[i].disabled;
      else if (t === 'disable' && i >= 0) inputs[i].disabled = true;
      else if (t === 'update' && i >= 0 && isObj(a.input)) inputs[i] = Object.assign({}, inputs[i], a.input);
      else if (t === 'add_before' && i >= 0 && isObj(a.input)) inputs.splice(i, 0, a.input);
      else if (t === 'add_after' && i >= 0 && isObj(a.input)) inputs.splice(i + 1, 0, a.input);
      else unapplied.push(a);
    });
    if (unapplied.length) out._unapplied = unapplied;
    return out;
  }

  /* ---- the journal's shapes ---------------------------------------------- *
   * The API's answers, in one shape for the page whichever the host sends:
   * an entry's parts nested ({request, dispatch, reply: {status, body, ms},
   * interim, late, http, posts, log, cpu_ms, memory_bytes}), or flat with
   * its happenings in one list of events ({type, name, handler, signature,
   * key, body, status, reply (text), reply_ms, peak_bytes, log: [{kind:
   * "log" | "http" | "post" | "respond" | "interim" | "late_result" |
   * "late_reply", ...}]}). Events of other kinds are kept in `other`, to be
   * shown as JSON. */

  function normaliseEntry(e) {
    if (!isObj(e)) return { other: [e] };
    var out = Object.assign({}, e);
    out.dispatch = isObj(e.dispatch) ? e.dispatch : { type: e.type, name: e.name, handler: e.handler };
    out.request = isObj(e.request) ? e.request : { body: e.body, signature: e.signature, key: e.key };
    if (isObj(e.reply) && has(e.reply, 'body')) out.reply = e.reply;
    else if (has(e, 'reply') && e.reply !== null) out.reply = { status: e.status, body: e.reply, ms: e.reply_ms };
    else out.reply = null;
    if (out.memory_bytes === undefined && e.peak_bytes !== undefined) out.memory_bytes = e.peak_bytes;
    var events = Array.isArray(e.log) && e.log.some(isObj) ? e.log : null;
    if (events) {
      out.log = [];
      out.http = Array.isArray(e.http) ? e.http.slice() : [];
      out.posts = Array.isArray(e.posts) ? e.posts.slice() : [];
      out.late = Array.isArray(e.late) ? e.late.slice() : [];
      out.other = [];
      events.forEach(function (ev) {
        var k = str(ev, 'kind');
        if (k === 'log') out.log.push((str(ev, 'level') ? ev.level + ' ' : '') + (typeof ev.line === 'string' ? ev.line : JSON.stringify(ev.line)));
        else if (typeof ev === 'string') out.log.push(ev);
        else if (k === 'http') out.http.push(ev);
        else if (k === 'post' || k === 'respond') out.posts.push(Object.assign({ target: ev.url }, ev));
        else if (k === 'interim') out.interim = has(ev, 'body') ? ev : { body: ev };
        else if (k === 'late_result') out.late.push(Object.assign({}, ev, { body: ev.body }));
        else if (k === 'late_reply') out.late.push(Object.assign({}, ev, { body: undefined }));
        else out.other.push(ev);
      });
    }
    return out;
  }

  /* GET calls: a list, or {calls: [...], ...}. Summaries get `ms`. */
  function normaliseList(v) {
    var list = Array.isArray(v) ? v : isObj(v) && Array.isArray(v.calls) ? v.calls : [];
    return list.map(function (c) {
      if (!isObj(c) || c.ms !== undefined || c.reply_ms === undefined) return c;
      return Object.assign({}, c, { ms: c.reply_ms });
    });
  }

  /* POST call: {id, reply: {status, body, ms}} or {id, status, reply:
   * <the body>}; answers {id, reply: {status, body, ms}}. */
  function normaliseAnswer(r) {
    if (!isObj(r)) return { id: undefined, reply: { body: r } };
    if (isObj(r.reply) && has(r.reply, 'body')) return { id: r.id, reply: r.reply };
    return { id: r.id, reply: { status: r.status, body: r.reply, ms: r.ms } };
  }

  /* POST calls/<id>/replay: {id, old, new} (replies), or {id, status,
   * reply, old: the replayed entry}; answers {id, old, new} as replies. */
  function normaliseReplay(r) {
    if (!isObj(r)) return { id: undefined, old: null, new: { body: r } };
    var old = r.old;
    if (isObj(old) && has(old, 'id')) old = normaliseEntry(old).reply; /* an entry, not a reply */
    var fresh = has(r, 'new') ? r.new : normaliseAnswer(r).reply;
    return { id: r.id, old: old, new: fresh };
  }

  return {
    normaliseEntry: normaliseEntry, normaliseList: normaliseList,
    normaliseAnswer: normaliseAnswer, normaliseReplay: normaliseReplay,
    esc: esc, safeUrl: safeUrl, markup: markup, render: render, renderBody: renderBody,
    KNOWN: KNOWN, buttonCall: buttonCall, appletButtonCall: appletButtonCall,
    unfurlButtonCall: unfurlButtonCall, tabCall: tabCall, formCall: formCall, messageCall: messageCall,
    contextCall: contextCall, applyModification: applyModification
  };
});
