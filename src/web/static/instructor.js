// The instructor's page: every participant's lab, live over one WebSocket.
'use strict';
const base = location.pathname.endsWith('/') ? location.pathname : location.pathname + '/';
const $ = (id) => document.getElementById(id);
const seats = new Map();

async function api(path, method = 'POST') {
  const r = await fetch(base + 'api/' + path, { method });
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function button(label, fn) {
  const b = document.createElement('button');
  b.textContent = label;
  b.onclick = fn;
  return b;
}

function render() {
  const rows = [...seats.values()].sort((a, b) => a.id - b.id).map((s) => {
    const tr = document.createElement('tr');
    tr.id = `seat-${s.id}`;
    const v = s.verify;
    const c = s.challenge;
    const link = document.createElement('td');
    if (s.url) {
      const a = document.createElement('a');
      a.href = s.url;
      a.textContent = 'participant page';
      link.append(a);
    }
    const ops = document.createElement('td');
    ops.append(button('up', () => api(`seats/${s.id}/up`)), button('reset', () => api(`seats/${s.id}/reset`)), button('down', () => api(`seats/${s.id}/down`)), button('verify', () => api(`seats/${s.id}/verify`)));
    tr.append(
      cell(String(s.id)),
      cell(`${s.labFile} (${s.lab})`),
      cell(s.status + (s.error ? `: ${s.error}` : ''), s.status === 'failed' ? 'fail' : s.status === 'up' ? 'pass' : ''),
      cell(s.since ? s.since.replace('T', ' ').slice(0, 19) + ' UTC' : '-'),
      cell(v ? `${v.passed}/${v.total}` : '-', v ? (v.passed === v.total ? 'pass' : 'fail') : ''),
      cell(`${s.exercises.tried}/${s.exercises.total}`),
      cell(c ? `${c.name}: ${c.outcome}, ${c.hintsUsed} hints, ${c.checks} checks` : '-', c ? (c.outcome === 'fixed' ? 'pass' : c.outcome === 'open' ? 'fail' : '') : ''),
      link,
      ops,
    );
    return tr;
  });
  document.querySelector('#seats tbody').replaceChildren(...rows);
}

function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${base}ws/events`);
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'seats') for (const s of m.seats) seats.set(s.id, s);
    if (m.type === 'seat') seats.set(m.seat.id, { ...m.seat, url: seats.get(m.seat.id)?.url ?? m.seat.url });
    render();
  };
  ws.onclose = () => setTimeout(connect, 2000);
}

$('add').onclick = async () => {
  const s = await api('seats');
  seats.set(s.id, s);
  render();
};
$('up-all').onclick = () => api('up-all');
$('down-all').onclick = () => {
  if (confirm('Tear every participant lab down?')) api('down-all');
};
api('seats', 'GET').then((r) => {
  if (r.joinUrl) $('join').textContent = `visitors join at ${r.joinUrl}`;
  for (const s of r.seats) seats.set(s.id, s);
  render();
});
connect();
