// `cnilab serve`: the workshop in a browser. An HTTP server (node:http) and
// WebSockets (ws) on one port. Every path starts with a secret token: /p/<token>/
// for a participant, who reaches their own lab and nothing else; /i/<token>/ for
// the instructor; /join/<token>/ hands a visitor a seat of their own when the
// server gives one lab per visitor. Anything else is 403 or 404, before any
// lab is touched.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ROOT } from '../lab/paths.js';
import { targetByName, NoSuchTargetError } from '../runner/targets.js';
import { inspectLab } from '../workshop/inspect.js';
import { shellArgv } from '../workshop/shell.js';
import { Classroom, SEAT_LAB, type ClassroomOptions, type Seat } from './classroom.js';
import { DiagramFeed } from './feed.js';
import { Limiter } from './limit.js';
import { loadPty, PtySession, sizeOf } from './terminal.js';
import { newToken, sameToken, TOKEN_SHAPE } from './tokens.js';
import * as actions from './lab-actions.js';

export interface ServeOptions extends ClassroomOptions {
  port: number;
  listen: string;
  /** Seats made at start, each with its link; none when each visitor gets one. */
  participants: number;
  perVisitor: boolean;
  /** How often a watched lab's kernel is read for the diagram. */
  intervalMs: number;
  /** Kernel reads (for diagrams) at the same time, across all labs. */
  readsAtOnce: number;
}

export interface Served {
  port: number;
  base: string;
  instructorUrl: string;
  joinUrl?: string;
  classroom: Classroom;
  participantUrl(seat: Seat): string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const STATIC = join(ROOT, 'src', 'web', 'static');
const XTERM = join(ROOT, 'node_modules', '@xterm');
/** The files a page may load, by name: nothing else on disk is reachable. */
const ASSETS: Record<string, { file: string; type: string }> = {
  'xterm.js': { file: join(XTERM, 'xterm', 'lib', 'xterm.js'), type: 'text/javascript' },
  'xterm.css': { file: join(XTERM, 'xterm', 'css', 'xterm.css'), type: 'text/css' },
  'addon-fit.js': { file: join(XTERM, 'addon-fit', 'lib', 'addon-fit.js'), type: 'text/javascript' },
  'participant.js': { file: join(STATIC, 'participant.js'), type: 'text/javascript' },
  'instructor.js': { file: join(STATIC, 'instructor.js'), type: 'text/javascript' },
  'style.css': { file: join(STATIC, 'style.css'), type: 'text/css' },
};
const PAGES = { participant: join(STATIC, 'participant.html'), instructor: join(STATIC, 'instructor.html') };

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'",
};

function send(res: ServerResponse, status: number, body: string | Buffer, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, ...SECURITY_HEADERS });
  res.end(body);
}

const sendJson = (res: ServerResponse, data: unknown, status = 200) => send(res, status, JSON.stringify(data));

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 16_384) throw new HttpError(413, 'request body too large');
    chunks.push(c as Buffer);
  }
  if (!size) return {};
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error();
    return v;
  } catch {
    throw new HttpError(400, 'the body must be a JSON object');
  }
}

/** Refuse an upgrade with a plain HTTP status: no WebSocket, no shell. */
function refuse(socket: Duplex, status: number, message: string): void {
  socket.write(`HTTP/1.1 ${status} ${message.replace(/[\r\n]/g, ' ')}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.destroy();
}

export async function serve(opts: ServeOptions, exercisesTotal: number): Promise<Served> {
  await loadPty();
  const classroom = new Classroom(opts, exercisesTotal);
  const instructorToken = newToken();
  const joinToken = opts.perVisitor ? newToken() : undefined;
  for (let i = 0; i < opts.participants; i++) classroom.addSeat();

  const reads = new Limiter(opts.readsAtOnce);
  const feeds = new Map<number, DiagramFeed>();
  const feedOf = (seat: Seat) => {
    let f = feeds.get(seat.id);
    if (!f) {
      f = new DiagramFeed(
        {
          read: async () => {
            const inst = seat.status === 'up' ? seat.inst : undefined;
            return inst && inspectLab(inst.backend, inst.state.state, inst.lab.topology.nodes.map((n) => n.name));
          },
        },
        { intervalMs: opts.intervalMs, limiter: reads },
      );
      feeds.set(seat.id, f);
    }
    return f;
  };
  const terminals = new Map<number, Set<PtySession>>();
  const instructorWatchers = new Set<WebSocket>();

  classroom.on('change', (seat: Seat) => {
    const summary = classroom.summary(seat);
    const f = feeds.get(seat.id);
    if (f) {
      if (seat.status !== 'up') f.reset();
      f.broadcast({ type: 'status', seat: summary });
      if (seat.status === 'up') f.nudge();
    }
    if (seat.status !== 'up') for (const t of terminals.get(seat.id) ?? []) t.close();
    for (const w of instructorWatchers) w.send(JSON.stringify({ type: 'seat', seat: summary }));
  });

  const seatByToken = (token: string) => (TOKEN_SHAPE.test(token) ? classroom.seats.find((s) => sameToken(s.token, token)) : undefined);
  const isInstructor = (token: string) => TOKEN_SHAPE.test(token) && sameToken(instructorToken, token);

  /** The seat's own lab, by the name in the path: another's is 403, a name that is no seat's lab 404. */
  function ownLab(seat: Seat, lab: string): Seat {
    if (!SEAT_LAB.test(lab) || !classroom.seats.some((s) => s.lab === lab)) throw new HttpError(404, `no lab named "${lab}"`);
    if (lab !== seat.lab) throw new HttpError(403, 'not your lab');
    return seat;
  }
  const upInst = (seat: Seat) => {
    if (seat.status !== 'up' || !seat.inst) throw new HttpError(409, `lab ${seat.lab} is ${seat.status}`);
    return seat.inst;
  };

  let base = '';
  const participantUrl = (seat: Seat) => `${base}/p/${seat.token}/`;

  async function participantApi(seat: Seat, method: string, rest: string[], req: IncomingMessage): Promise<unknown> {
    if (rest[0] === 'me' && method === 'GET') return { seat: classroom.summary(seat), exercises: seat.inst ? actions.exercises(seat.inst).length : 0 };
    if (rest[0] !== 'labs' || !rest[1]) throw new HttpError(404, 'not found');
    ownLab(seat, rest[1]);
    const [what, a, b] = rest.slice(2);
    // The challenge's own actions are named; other path parts after the first are values.
    const route = what === 'challenge' ? `${method} challenge ${a ?? ''}` : `${method} ${what ?? ''}${a !== undefined ? ' *' : ''}${b !== undefined ? ' *' : ''}`;
    switch (route) {
      case 'POST up':
        void classroom.up(seat).catch(() => undefined);
        return classroom.summary(seat);
      case 'GET exercises':
        return actions.exercises(upInst(seat));
      case 'POST exercises * *': {
        const out = await actions.runExerciseItem(upInst(seat), Number(a), Number(b));
        seat.tried.add(Number(a));
        classroom.emit('change', seat);
        return { output: out };
      }
      case 'POST trace': {
        const q = await body(req);
        return actions.trace(upInst(seat), String(q.from ?? ''), String(q.to ?? ''));
      }
      case 'GET challenges':
        return actions.challenges(upInst(seat));
      case 'POST challenges *': {
        const r = await actions.startChallenge(upInst(seat), a, `participant ${seat.id}`);
        emitAndNudge(seat);
        return r;
      }
      case 'POST challenge check': {
        const r = await actions.checkChallenge(upInst(seat));
        classroom.emit('change', seat);
        return r;
      }
      case 'POST challenge hint': {
        const r = actions.hintChallenge(upInst(seat));
        classroom.emit('change', seat);
        return r;
      }
      case 'POST challenge giveup': {
        const r = await actions.giveUpChallenge(upInst(seat));
        emitAndNudge(seat);
        return r;
      }
    }
    throw new HttpError(404, 'not found');
  }
  const emitAndNudge = (seat: Seat) => {
    classroom.emit('change', seat);
    feeds.get(seat.id)?.nudge();
  };

  async function instructorApi(method: string, rest: string[]): Promise<unknown> {
    const all = () => ({ seats: classroom.seats.map((s) => ({ ...classroom.summary(s), url: participantUrl(s) })), joinUrl: joinToken ? `${base}/join/${joinToken}/` : undefined });
    const route = `${method} ${rest.join(' ')}`;
    if (route === 'GET seats') return all();
    if (route === 'POST seats') {
      const s = classroom.addSeat();
      return { ...classroom.summary(s), url: participantUrl(s) };
    }
    if (route === 'POST up-all') {
      for (const s of classroom.seats) void classroom.up(s).catch(() => undefined);
      return all();
    }
    if (route === 'POST down-all') {
      await classroom.downAll();
      return all();
    }
    if (rest[0] === 'seats' && rest.length === 3 && method === 'POST') {
      const seat = /^\d+$/.test(rest[1]) ? classroom.seat(Number(rest[1])) : undefined;
      if (!seat) throw new HttpError(404, `no participant ${rest[1]}`);
      const op = { up: () => classroom.up(seat), reset: () => classroom.reset(seat), down: () => classroom.down(seat), verify: () => classroom.verify(seat) }[rest[2]];
      if (!op) throw new HttpError(404, 'not found');
      void op().catch(() => undefined);
      return classroom.summary(seat);
    }
    throw new HttpError(404, 'not found');
  }

  function asset(res: ServerResponse, name: string | undefined): void {
    const a = name !== undefined && Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!a) throw new HttpError(404, 'not found');
    send(res, 200, readFileSync(a.file), a.type);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const parts = url.pathname.split('/').slice(1);
    const [area, token = '', ...rest] = parts;
    const method = req.method ?? 'GET';
    if (rest.at(-1) === '') rest.pop();
    if (area === 'p') {
      const seat = seatByToken(token);
      if (!seat) throw new HttpError(403, 'unknown link');
      if (!rest.length) return send(res, 200, readFileSync(PAGES.participant), 'text/html');
      if (rest[0] === 'assets') return asset(res, rest[1]);
      if (rest[0] === 'api') return sendJson(res, await participantApi(seat, method, rest.slice(1), req));
    } else if (area === 'i') {
      if (!isInstructor(token)) throw new HttpError(403, 'unknown link');
      if (!rest.length) return send(res, 200, readFileSync(PAGES.instructor), 'text/html');
      if (rest[0] === 'assets') return asset(res, rest[1]);
      if (rest[0] === 'api') return sendJson(res, await instructorApi(method, rest.slice(1)));
    } else if (area === 'join') {
      if (!joinToken || !TOKEN_SHAPE.test(token) || !sameToken(joinToken, token)) throw new HttpError(403, 'unknown link');
      let seat: Seat;
      try {
        seat = classroom.addSeat();
      } catch (e) {
        throw new HttpError(503, (e as Error).message);
      }
      void classroom.up(seat).catch(() => undefined);
      res.writeHead(303, { location: `/p/${seat.token}/`, ...SECURITY_HEADERS });
      return void res.end();
    } else throw new HttpError(403, 'a link with its token is needed');
    throw new HttpError(404, 'not found');
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      const status = e instanceof HttpError ? e.status : e instanceof actions.BadRequest ? 400 : 500;
      if (!res.headersSent) sendJson(res, { error: (e as Error).message }, status);
      else res.end();
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 65_536 });
  server.on('upgrade', (req, socket, head) => {
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const origin = req.headers.origin;
      if (origin && new URL(origin).host !== req.headers.host) return refuse(socket, 403, 'Forbidden');
      const [area, token = '', ws, ...rest] = url.pathname.split('/').slice(1);
      if (area === 'i' && isInstructor(token) && ws === 'ws' && rest.join('/') === 'events') {
        return wss.handleUpgrade(req, socket, head, (w) => {
          instructorWatchers.add(w);
          w.on('close', () => instructorWatchers.delete(w));
          w.send(JSON.stringify({ type: 'seats', seats: classroom.seats.map((s) => ({ ...classroom.summary(s), url: participantUrl(s) })) }));
        });
      }
      const seat = area === 'p' ? seatByToken(token) : undefined;
      if (!seat) return refuse(socket, 403, 'Forbidden');
      if (ws !== 'ws' || rest[0] !== 'labs' || !rest[1] || rest.length !== 3) return refuse(socket, 404, 'Not Found');
      try {
        ownLab(seat, rest[1]);
      } catch (e) {
        return refuse(socket, (e as HttpError).status, (e as HttpError).status === 403 ? 'Forbidden' : 'Not Found');
      }
      if (rest[2] === 'events') return wss.handleUpgrade(req, socket, head, (w) => watch(seat, w));
      if (rest[2] === 'terminal') {
        if (seat.status !== 'up' || !seat.inst) return refuse(socket, 409, 'Conflict');
        const inst = seat.inst;
        let t;
        try {
          t = targetByName(inst.backend, inst.state.state, inst.lab.topology.nodes.map((n) => n.name), url.searchParams.get('target') ?? '');
        } catch (e) {
          if (e instanceof NoSuchTargetError) return refuse(socket, 404, 'Not Found');
          throw e;
        }
        const argv = shellArgv(inst.backend, seat.lab, t.node, t.pod);
        const size = sizeOf({ cols: Number(url.searchParams.get('cols')), rows: Number(url.searchParams.get('rows')) });
        return wss.handleUpgrade(req, socket, head, (w) => openTerminal(seat, w, argv, size));
      }
      return refuse(socket, 404, 'Not Found');
    } catch {
      refuse(socket, 400, 'Bad Request');
    }
  });

  function watch(seat: Seat, w: WebSocket): void {
    const feed = feedOf(seat);
    const watcher = { send: (m: object) => w.readyState === w.OPEN && w.send(JSON.stringify(m)) };
    watcher.send({ type: 'status', seat: classroom.summary(seat) });
    feed.add(watcher);
    w.on('close', () => feed.remove(watcher));
  }

  function openTerminal(seat: Seat, w: WebSocket, argv: string[], size: { cols: number; rows: number }): void {
    const set = terminals.get(seat.id) ?? new Set<PtySession>();
    terminals.set(seat.id, set);
    const session = new PtySession(argv, size, {
      output: (d) => w.readyState === w.OPEN && w.send(d),
      exited: (code) => {
        set.delete(session);
        if (w.readyState === w.OPEN) w.close(1000, `exit ${code}`);
      },
    });
    set.add(session);
    w.on('message', (raw) => {
      let m: { type?: string; data?: unknown; cols?: unknown; rows?: unknown };
      try {
        m = JSON.parse(String(raw));
      } catch {
        return;
      }
      if (m.type === 'input' && typeof m.data === 'string') session.input(m.data);
      else if (m.type === 'resize') session.resize(sizeOf(m));
    });
    w.on('close', () => {
      set.delete(session);
      session.close();
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.listen, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const host = opts.listen === '0.0.0.0' || opts.listen === '::' ? hostname() : opts.listen.includes(':') ? `[${opts.listen}]` : opts.listen;
  base = `http://${host}:${port}`;

  return {
    port,
    base,
    instructorUrl: `${base}/i/${instructorToken}/`,
    joinUrl: joinToken ? `${base}/join/${joinToken}/` : undefined,
    classroom,
    participantUrl,
    async close() {
      for (const set of terminals.values()) for (const t of set) t.close();
      for (const c of wss.clients) c.terminate();
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closed;
      await classroom.downAll();
    },
  };
}
