// The participant's page: the live diagram and the lab's status over one
// WebSocket, a terminal over another, trace, exercises and challenges over
// small JSON requests. Everything is relative to this page's secret path.
'use strict';
const base = location.pathname.endsWith('/') ? location.pathname : location.pathname + '/';
const $ = (id) => document.getElementById(id);
const wsUrl = (path) => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${base}${path}`;
let seat = null;
let names = { nodes: [], pods: [] };
let litIds = [];

async function api(path, opts = {}) {
  const r = await fetch(base + 'api/' + path, { method: opts.method || 'GET', headers: opts.body ? { 'content-type': 'application/json' } : {}, body: opts.body ? JSON.stringify(opts.body) : undefined });
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
const labApi = (path, opts) => api(`labs/${seat.lab}/${path}`, opts);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fillSelect(sel, options) {
  const keep = sel.value;
  sel.replaceChildren(...options.map((o) => el('option', { value: o }, o)));
  if (options.includes(keep)) sel.value = keep;
}

// --- status and diagram ---------------------------------------------------
let upOnce = false;
function showStatus(s) {
  const was = seat && seat.status;
  seat = s;
  $('lab-name').textContent = `${s.labFile} · ${s.lab}`;
  $('lab-status').textContent = s.status + (s.since ? ` since ${s.since.slice(11, 19)} UTC` : '');
  $('lab-status').className = `badge ${s.status}`;
  $('lab-error').textContent = s.error || '';
  $('up').hidden = !(s.status === 'down' || s.status === 'failed');
  if (s.status === 'up' && (was !== 'up' || !upOnce)) {
    upOnce = true;
    loadExercises();
    loadChallenges();
  }
}

function showDiagram(m) {
  $('diagram').innerHTML = m.svg;
  $('diagram-time').textContent = `read at ${m.takenAt.slice(11, 19)} UTC`;
  names = { nodes: m.nodes, pods: m.pods };
  const pods = m.pods.map((p) => p.name);
  fillSelect($('term-target'), [...m.nodes, ...pods]);
  fillSelect($('trace-from'), pods);
  fillSelect($('trace-to'), pods);
  if ($('trace-from').value === $('trace-to').value && pods.length > 1) $('trace-to').value = pods.find((p) => p !== $('trace-from').value);
  light(litIds);
}

function light(ids) {
  litIds = ids;
  for (const g of document.querySelectorAll('#diagram g.hl')) g.classList.remove('hl');
  for (const id of ids) document.getElementById(id)?.classList.add('hl');
}

let pickNext = 'from';
$('diagram').addEventListener('click', (ev) => {
  const g = ev.target.closest && ev.target.closest('g[id^="pod-"]');
  if (!g) return;
  const pod = g.id.slice(4);
  $(`trace-${pickNext}`).value = pod;
  pickNext = pickNext === 'from' ? 'to' : 'from';
});

function connectEvents() {
  const ws = new WebSocket(wsUrl(`ws/labs/${seat.lab}/events`));
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'status') showStatus(m.seat);
    else if (m.type === 'diagram') showDiagram(m);
    else if (m.type === 'diagram-error') $('diagram-time').textContent = `could not read the kernel: ${m.message}`;
  };
  ws.onclose = () => {
    $('lab-status').textContent = 'disconnected: reconnecting…';
    setTimeout(connectEvents, 2000);
  };
}

$('up').onclick = async () => showStatus(await labApi('up', { method: 'POST' }));

// --- terminal -----------------------------------------------------------
const term = new Terminal({ fontSize: 13, convertEol: false, cursorBlink: true, scrollback: 2000 });
const fit = new FitAddon.FitAddon();
term.loadAddon(fit);
term.open($('terminal'));
fit.fit();
window.cnilabTerminal = term;
let termWs = null;
term.onData((d) => termWs && termWs.readyState === 1 && termWs.send(JSON.stringify({ type: 'input', data: d })));
term.onResize(({ cols, rows }) => termWs && termWs.readyState === 1 && termWs.send(JSON.stringify({ type: 'resize', cols, rows })));
window.addEventListener('resize', () => fit.fit());

$('term-open').onclick = () => {
  const target = $('term-target').value;
  if (!target) return;
  if (termWs) termWs.close();
  term.reset();
  const ws = new WebSocket(wsUrl(`ws/labs/${seat.lab}/terminal?target=${encodeURIComponent(target)}&cols=${term.cols}&rows=${term.rows}`));
  termWs = ws;
  $('term-state').textContent = `connecting to ${target}…`;
  ws.onopen = () => {
    $('term-state').textContent = `shell on ${target}`;
    term.focus();
  };
  ws.onmessage = (e) => term.write(e.data);
  ws.onclose = (e) => {
    if (termWs === ws) $('term-state').textContent = `closed${e.reason ? ` (${e.reason})` : ''}`;
  };
};

// --- trace ----------------------------------------------------------------
$('trace-run').onclick = async () => {
  const from = $('trace-from').value;
  const to = $('trace-to').value;
  $('trace-state').textContent = `tracing ${from} → ${to} (with a capture at every hop)…`;
  $('trace-hops').replaceChildren();
  light([]);
  try {
    const r = await labApi('trace', { method: 'POST', body: { from, to } });
    const c = r.capture;
    $('trace-state').textContent = `${r.delivered ? 'delivered' : 'not delivered'}${c ? ` · ${c.received}/${c.sent} pings answered · ${c.allSeen ? 'seen at every hop' : 'not seen at every hop'}` : ''}${r.problem ? ` · ${r.problem}` : ''}`;
    $('trace-state').dataset.delivered = String(r.delivered);
    $('trace-hops').replaceChildren(
      ...r.hops.map((h) => el('li', { 'data-ids': h.ids.join(' '), onmouseenter: () => light(h.ids), onmouseleave: () => light(r.hops.flatMap((x) => x.ids)) }, `[${h.at}] ${h.text}`, h.packets !== undefined ? el('span', { class: 'count' }, ` · ${h.packets} packets`) : '')),
    );
    light(r.hops.flatMap((h) => h.ids));
  } catch (e) {
    $('trace-state').textContent = `trace failed: ${e.message}`;
  }
};

// --- exercises --------------------------------------------------------------
async function loadExercises() {
  const list = await labApi('exercises').catch(() => []);
  if (!list.length) return $('exercises').replaceChildren(el('p', { class: 'muted' }, 'This lab has no exercises.'));
  $('exercises').replaceChildren(
    ...list.map((x) => {
      const out = el('pre', { hidden: '' });
      const answer = el('pre', { hidden: '' }, x.answer || '');
      const box = el('div', { class: 'exercise' }, el('h3', {}, `${x.index + 1}. ${x.title}`));
      if (x.explain) box.append(el('p', {}, x.explain));
      if (x.question) box.append(el('p', {}, el('b', {}, 'Question: '), x.question));
      x.try.forEach((t, j) =>
        box.append(
          el('div', {}, el('code', {}, t), ' ', el('button', { onclick: async (ev) => {
            ev.target.disabled = true;
            out.hidden = false;
            out.textContent = 'running…';
            try {
              out.textContent = (await labApi(`exercises/${x.index}/${j}`, { method: 'POST' })).output;
            } catch (e) {
              out.textContent = e.message;
            }
            ev.target.disabled = false;
          } }, 'Run')),
        ),
      );
      box.append(out);
      if (x.answer) box.append(el('button', { onclick: () => (answer.hidden = !answer.hidden) }, 'Show the answer'), answer);
      return box;
    }),
  );
}

// --- challenges ---------------------------------------------------------------
function showAttempt(a, verdict) {
  $('challenge-current').hidden = !a;
  if (!a) return;
  $('challenge-title').textContent = `${a.title} (${a.outcome}${a.outcome === 'open' ? '' : a.secondsToFix !== undefined ? ` in ${a.secondsToFix}s` : ''})`;
  $('challenge-story').textContent = a.story;
  $('challenge-hints').replaceChildren(...a.hints.map((h) => el('li', {}, h)));
  $('challenge-teaches').textContent = a.teaches || '';
  $('challenge-teaches').hidden = !a.teaches;
  if (verdict) {
    $('challenge-status').className = `verdict ${verdict.passed ? 'pass' : 'fail'}`;
    $('challenge-status').textContent = verdict.passed ? '✔ fixed: every check passes' : `✘ not fixed yet: ${verdict.results.filter((r) => !r.ok).length} of ${verdict.results.length} checks fail`;
    $('challenge-results').replaceChildren(...verdict.results.map((r) => el('li', { class: r.ok ? 'ok' : 'bad' }, r.name)));
  }
}

async function loadChallenges() {
  const c = await labApi('challenges').catch(() => ({ list: [] }));
  if (!c.list.length) return $('challenge-list').replaceChildren(el('p', { class: 'muted' }, 'This lab has no challenges.'));
  $('challenge-list').replaceChildren(
    ...c.list.map((x) => el('div', {}, el('button', { 'data-challenge': x.name, onclick: () => startChallenge(x.name) }, 'Start'), ` ${x.title} `, el('span', { class: 'muted' }, `(${x.name}, ${x.hints} hints)`))),
  );
  showAttempt(c.attempt);
}

async function startChallenge(name) {
  $('challenge-status').className = 'verdict';
  $('challenge-status').textContent = 'breaking the lab…';
  $('challenge-results').replaceChildren();
  try {
    showAttempt(await labApi(`challenges/${name}`, { method: 'POST' }));
    $('challenge-status').textContent = 'Something is broken. Look around, repair it, then Check.';
  } catch (e) {
    $('challenge-status').textContent = e.message;
  }
}

$('challenge-check').onclick = async () => {
  $('challenge-status').textContent = 'checking against the kernel…';
  try {
    const r = await labApi('challenge/check', { method: 'POST' });
    showAttempt(r.attempt, r);
  } catch (e) {
    $('challenge-status').textContent = e.message;
  }
};
$('challenge-hint').onclick = async () => showAttempt(await labApi('challenge/hint', { method: 'POST' }));
$('challenge-giveup').onclick = async () => {
  $('challenge-status').textContent = 'applying the fix…';
  const r = await labApi('challenge/giveup', { method: 'POST' });
  showAttempt(r.attempt);
  $('challenge-status').className = `verdict ${r.fixed ? 'pass' : 'fail'}`;
  $('challenge-status').textContent = `the fix: ${r.fix.map((f) => f.command).join(' ; ')}${r.fixed ? ' · applied, every check passes' : ''}`;
};

(async () => {
  const me = await api('me');
  showStatus(me.seat);
  connectEvents();
})();
