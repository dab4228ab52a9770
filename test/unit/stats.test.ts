import { expect } from 'chai';
import { cv, figureStats, median, medianInterval, percentile, relativeHalfWidth, summarize } from '../../src/bench/stats.js';

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

describe('bench statistics: the interval of the median', () => {
  it('is min..max below nine samples and says what it covers (95% needs six)', () => {
    expect(medianInterval([3, 1, 2])).to.deep.equal({ lo: 1, hi: 3, level: 0.75 });
    expect(medianInterval([5, 4, 3, 2, 1]).level).to.equal(0.9375);
    expect(medianInterval([6, 5, 4, 3, 2, 1])).to.deep.equal({ lo: 1, hi: 6, level: 1 - 2 / 64 });
    expect(medianInterval([1]).level).to.equal(0);
  });
  it('drops order statistics from both ends as n grows, keeping at least 95%', () => {
    const ten = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    expect(medianInterval(ten)).to.deep.include({ lo: 2, hi: 9 });
    const twenty = Array.from({ length: 20 }, (_, i) => i + 1);
    const ci = medianInterval(twenty);
    expect([ci.lo, ci.hi]).to.deep.equal([6, 15]);
    expect(ci.level).to.be.within(0.95, 0.96);
  });
  it('CV and relative half-width', () => {
    expect(cv([10, 10, 10])).to.equal(0);
    expect(cv([9, 11])).to.be.closeTo(Math.SQRT2 / 10, 1e-12);
    expect(relativeHalfWidth({ lo: 9, hi: 11, level: 0.95 }, 10)).to.be.closeTo(0.1, 1e-12);
    const f = figureStats([1, 2, 3, 4, 5, 6]);
    expect(f).to.deep.include({ n: 6, median: 3.5, min: 1, max: 6 });
    expect(f.ci).to.deep.include({ lo: 1, hi: 6 });
  });
});
