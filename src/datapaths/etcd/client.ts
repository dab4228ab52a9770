// A small etcd v3 client over etcd's JSON gateway (/v3/kv/*, /v3/watch): the
// few calls a flannel-like agent needs, with Node's own HTTP and no gRPC stack.
// Every call uses node:http rather than fetch: a CNI plugin lives for one call,
// and loading fetch's machinery costs it (and each node's agent) more than the calls themselves.
import { request, type IncomingMessage } from 'node:http';
import { connectInAmbientNetns } from '../../net/thread-netns.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** The key just after every key with this prefix: etcd's range_end for a prefix scan. */
function prefixEnd(prefix: string): string {
  const buf = Buffer.from(prefix);
  buf[buf.length - 1]++;
  return buf.toString('base64');
}

export interface KeyValue {
  key: string;
  value: string;
  modRevision: number;
}

export interface WatchEvent {
  type: 'PUT' | 'DELETE';
  kv: KeyValue;
}

interface RawKv {
  key: string;
  value?: string;
  mod_revision?: string;
}

const toKv = (kv: RawKv): KeyValue => ({ key: unb64(kv.key), value: unb64(kv.value), modRevision: Number(kv.mod_revision ?? 0) });

export class Etcd {
  constructor(readonly endpoint: string) {}

  private call<T>(path: string, body: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      // From the namespace of the node asking: a CNI daemon serving several nodes is in none of them.
      const req = request(`${this.endpoint}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, createConnection: connectInAmbientNetns }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 500) >= 300) reject(new Error(`etcd ${path}: HTTP ${res.statusCode} ${text}`));
          else resolve(JSON.parse(text) as T);
        });
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const r = await this.call<{ kvs?: RawKv[] }>('/v3/kv/range', { key: b64(key) });
    return r.kvs?.[0] ? toKv(r.kvs[0]) : undefined;
  }

  /** Every key under a prefix, and the store revision the answer was read at. */
  async list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const r = await this.call<{ kvs?: RawKv[]; header: { revision: string } }>('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix) });
    return { kvs: (r.kvs ?? []).map(toKv), revision: Number(r.header.revision) };
  }

  async put(key: string, value: string): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(value) });
  }

  async delete(key: string): Promise<void> {
    await this.call('/v3/kv/deleterange', { key: b64(key) });
  }

  /** Write `key` only if nobody has: the atomic step that makes a lease ours. */
  async createIfAbsent(key: string, value: string): Promise<boolean> {
    const r = await this.call<{ succeeded?: boolean }>('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
      success: [{ request_put: { key: b64(key), value: b64(value) } }],
    });
    return r.succeeded === true;
  }

  /** Replace `key` only if nobody wrote it since `modRevision`: compare-and-swap for read-modify-write records. */
  async putIfUnchanged(key: string, value: string, modRevision: number): Promise<boolean> {
    const r = await this.call<{ succeeded?: boolean }>('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(modRevision) }],
      success: [{ request_put: { key: b64(key), value: b64(value) } }],
    });
    return r.succeeded === true;
  }

  /** Stream changes under a prefix from `fromRevision` on, until `signal` aborts. */
  async watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[]) => void | Promise<void>, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix), start_revision: String(fromRevision) } });
    // node:http, not fetch: fetch loads undici, which costs an agent more CPU and memory at start than all its etcd calls.
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(`${this.endpoint}/v3/watch`, { method: 'POST', signal, headers: { 'content-type': 'application/json' }, createConnection: connectInAmbientNetns }, resolve);
      req.on('error', reject);
      req.end(body);
    });
    if ((res.statusCode ?? 500) >= 300) {
      res.resume();
      throw new Error(`etcd watch: HTTP ${res.statusCode}`);
    }
    res.setEncoding('utf8');
    let buffered = '';
    for await (const chunk of res as AsyncIterable<string>) {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { result?: { events?: { type?: string; kv: RawKv }[] } };
        const events = msg.result?.events ?? [];
        if (events.length) await onEvents(events.map((e) => ({ type: e.type === 'DELETE' ? 'DELETE' : 'PUT', kv: toKv(e.kv) })));
      }
    }
  }
}
