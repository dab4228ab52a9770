import { expect } from 'chai';
import { median, percentile, summarize } from '../../src/bench/stats.js';

describe('bench statistics', () => {
  it('takes the median of odd and even counts, whatever the order', () => {
    expect(median([5, 1, 3])).to.equal(3);
    expect(median([4, 1, 3, 2])).to.equal(2.5);
  });
  it('uses nearest rank for percentiles', () => {
    const ten = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    expect(percentile(ten, 90)).to.equal(9);
    expect(percentile(ten, 100)).to.equal(10);
    expect(percentile(ten, 0)).to.equal(1);
    expect(percentile([7], 90)).to.equal(7);
  });
  it('summarizes and refuses an empty sample', () => {
    expect(summarize([3, 1, 2])).to.deep.equal({ n: 3, median: 2, p90: 3, min: 1, max: 3 });
    expect(() => median([])).to.throw(/no samples/);
  });
});
