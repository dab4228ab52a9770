import { expect } from 'chai';
import { waitUntil, WaitTimeoutError } from '../../src/util/wait.js';
import { rejectionOf } from '../helpers/errors.js';

describe('waitUntil', () => {
  it('returns what the probe answered once it answers', async () => {
    let calls = 0;
    const v = await waitUntil(() => (++calls >= 3 ? `after ${calls}` : undefined), { timeoutMs: 2000, intervalMs: 1, what: 'three calls' });
    expect(v).to.equal('after 3');
  });

  it('fails naming what it waited for, and the hint', async () => {
    const e = await rejectionOf(waitUntil(() => false, { timeoutMs: 30, intervalMs: 5, what: 'etcd on master to become healthy', hint: () => 'see /x/etcd.log' }));
    expect(e).to.be.instanceOf(WaitTimeoutError);
    expect(e.message).to.equal('timed out after 0.03 s waiting for etcd on master to become healthy; see /x/etcd.log');
  });

  it('ends at once with the error a probe throws', async () => {
    let calls = 0;
    const e = await rejectionOf(
      waitUntil(() => {
        calls++;
        throw new Error('fatal line in the log');
      }, { timeoutMs: 5000, what: 'x' }),
    );
    expect(e.message).to.equal('fatal line in the log');
    expect(calls).to.equal(1);
  });
});
