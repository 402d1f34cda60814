import { describe, expect, it } from 'vitest';

import { sampleEvent } from '../../fakes';
import { groupRequests } from './requests';
import type { Source } from '../../gen/Source';

const NOW = 1_800_000_000;

/** Jelmore's one failed request: uvicorn/nginx's line, then "Invalid API key", then "Request
 * completed" 401, a few milliseconds apart (newest first, as the timeline lists them). */
function jelmoreFailure(seq: number, ip: string, atUs: number) {
  const base = { instance: 'jelmore-1', ip, path: '/api/v1/v1/sessions', method: 'POST' };
  return [
    sampleEvent(seq + 2, { ...base, source: 'service', kind: 'auth', status: 401, message: 'Request completed', time_us: atUs + 4_000 }, NOW),
    sampleEvent(seq + 1, { ...base, source: 'service', kind: 'auth', status: null, message: 'Invalid API key', time_us: atUs + 3_000 }, NOW),
    sampleEvent(seq, { ...base, source: 'proxy', kind: 'auth', status: 401, time_us: atUs }, NOW),
  ];
}

describe('one request, one row', () => {
  it('folds the lines a service writes for one request into one row led by the proxy line', () => {
    const rows = groupRequests(jelmoreFailure(1, '203.0.113.9', NOW * 1e6));
    expect(rows.length, 'three lines of one request are one row').toBe(1);
    expect(rows[0]!.lead.source, 'the proxy line leads').toBe('proxy');
    expect(rows[0]!.parts.length, 'and every line is kept as a part').toBe(3);
  });

  it('keeps a burst of requests as one row per request, however they interleave', () => {
    const t = NOW * 1e6;
    const burst = [...jelmoreFailure(20, '203.0.113.9', t + 900_000), ...jelmoreFailure(10, '203.0.113.9', t + 450_000), ...jelmoreFailure(1, '203.0.113.9', t)];
    const rows = groupRequests(burst);
    expect(rows.length, 'three requests in one second are three rows, not one').toBe(3);
    expect(
      rows.every((r) => r.parts.length === 3),
      'each with its three lines',
    ).toBe(true);
  });

  it('never joins lines of different addresses, paths, statuses or instances, nor markers', () => {
    const t = NOW * 1e6;
    const rows = groupRequests([
      sampleEvent(5, { source: 'service', ip: '198.51.100.1', time_us: t + 3 }, NOW),
      sampleEvent(4, { source: 'service', path: '/other', time_us: t + 2 }, NOW),
      sampleEvent(3, { source: 'service', status: 200, time_us: t + 1 }, NOW),
      sampleEvent(2, { source: 'agent', kind: 'log', status: null, message: 'The log was rotated', time_us: t + 1 }, NOW),
      sampleEvent(1, { time_us: t }, NOW),
    ]);
    expect(rows.length, 'five lines, five rows').toBe(5);
  });

  it('leaves lines of one source two seconds apart as two requests', () => {
    const t = NOW * 1e6;
    const rows = groupRequests([sampleEvent(2, { source: 'service', message: 'Invalid API key', time_us: t + 2_500_000 }, NOW), sampleEvent(1, { time_us: t }, NOW)]);
    expect(rows.length, 'too far apart to be one request').toBe(2);
  });

  it('folds a burst of unparsed lines from one log (a backtrace) into one row, and no more', () => {
    const t = NOW * 1e6;
    const line = (seq: number, at: number, source: Source = 'service') =>
      sampleEvent(seq, { kind: 'unparsed', outcome: 'info', source, ip: null, path: null, status: null, message: `frame ${seq}`, time_us: at }, NOW);
    const rows = groupRequests([line(20, t + 5_000_000), line(4, t + 3_000, 'proxy'), line(3, t + 2_000), line(2, t + 1_000), line(1, t)]);
    expect(
      rows.map((r) => r.parts.length),
      'a later line, another log\'s line, then three lines of one burst',
    ).toEqual([1, 1, 3]);
  });

  it("folds a burst of Gatehouse's own requests (a checks run) into one row, and not the operator's", () => {
    const t = NOW * 1e6;
    const probe = (seq: number, at: number) => sampleEvent(seq, { kind: 'rate_limit', outcome: 'failure', status: 429, flags: 32, time_us: at }, NOW);
    const rows = groupRequests([
      sampleEvent(9, { kind: 'rate_limit', outcome: 'failure', status: 429, time_us: t + 40_000 }, NOW),
      ...Array.from({ length: 30 }, (_, i) => probe(30 - i, t + (30 - i) * 1_000)),
    ]);
    expect(
      rows.map((r) => r.parts.length),
      "a client's own 429 stays a row of its own; the burst of 30 probes is one row",
    ).toEqual([1, 30]);
  });
});
