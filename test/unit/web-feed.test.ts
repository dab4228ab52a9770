// The diagram feed pushes a drawing only when it changed, and the trace
// highlight names the diagram's groups; both on small fakes of a lab's model.
import { expect } from 'chai';
import { DiagramFeed } from '../../src/web/feed.js';
import { Limiter } from '../../src/web/limit.js';
import { newToken, sameToken, TOKEN_SHAPE } from '../../src/web/tokens.js';
import type { NetModel } from '../../src/workshop/model.js';
import { sleep } from '../../src/util/wait.js';

const model = (routes: string[], takenAt: string): NetModel => ({
  lab: 'ws-1',
  backend: 'netns',
  takenAt,
  underlay: '192.168.10.0/24',
  namespaces: [{ id: 'master', kind: 'node', name: 'master', node: 'master', links: [], routes: routes.map((dst) => ({ dst, dev: 'eth0' })) as NetModel['namespaces'][number]['routes'], neighbours: [], fdb: [] }],
  nodeRoutes: [],
});

describe('web: the diagram feed', () => {
  it('sends a drawing on the first read and again only when the kernel\'s view changed, not when only the time did', async () => {
    let routes = ['10.10.0.0/24'];
    let reads = 0;
    const feed = new DiagramFeed({ read: async () => model(routes, new Date(Date.UTC(2026, 0, 1, 0, 0, reads++)).toISOString()) }, { intervalMs: 5, limiter: new Limiter(1) });
    const got: { type: string; svg?: string }[] = [];
    const w = { send: (m: object) => got.push(m as { type: string }) };
    feed.add(w);
    await sleep(60);
    expect(reads).to.be.greaterThan(3);
    expect(got.map((m) => m.type)).to.deep.equal(['diagram']);
    routes = ['10.10.0.0/24', '10.10.1.0/24'];
    await sleep(60);
    expect(got.length).to.equal(2);
    expect(got[1].svg).to.include('10.10.1.0/24');
    // A page that joins later gets the last drawing at once.
    const late: object[] = [];
    const lw = { send: (m: object) => late.push(m) };
    feed.add(lw);
    expect(late.length).to.equal(1);
    feed.remove(w);
    feed.remove(lw);
    expect(feed.watching).to.equal(0);
  });

  it('stops reading the kernel when nobody watches', async () => {
    let reads = 0;
    const feed = new DiagramFeed({ read: async () => (reads++, undefined) }, { intervalMs: 5, limiter: new Limiter(1) });
    const w = { send: () => undefined };
    feed.add(w);
    await sleep(30);
    feed.remove(w);
    await sleep(20);
    const after = reads;
    await sleep(40);
    expect(reads).to.equal(after);
  });
});

describe('web: tokens', () => {
  it('are 128 random bits in a fixed shape, compared whole', () => {
    const a = newToken();
    expect(a).to.match(TOKEN_SHAPE);
    expect(newToken()).to.not.equal(a);
    expect(sameToken(a, a)).to.equal(true);
    expect(sameToken(a, a.slice(0, -1) + (a.endsWith('A') ? 'B' : 'A'))).to.equal(false);
    expect(sameToken(a, a.slice(0, 10))).to.equal(false);
  });
});

describe('web: the limiter', () => {
  it('runs at most n at once', async () => {
    const l = new Limiter(2);
    let now = 0;
    let most = 0;
    await Promise.all(Array.from({ length: 6 }, () => l.run(async () => {
      most = Math.max(most, ++now);
      await sleep(5);
      now--;
    })));
    expect(most).to.equal(2);
  });
});
